"""Which backends exist is what is installed in the `vmvc.backends` entry-point group.

No list of names is written down anywhere outside vmvc/backends: a plugin package that adds an
entry point is a valid `--backend` and part of `all`, and an unknown name is refused with the
installed ones listed. (The end-to-end proof with a real plugin package is
tests/integration/test_plugin.py.)
"""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path
from typing import get_args

import pytest
import typer
from typer.testing import CliRunner

from vmvc import cli, config
from vmvc.backends import base
from vmvc.backends.base import BackendKind, available_backend_classes
from vmvc.config import Config, ConfigError, installed_backend_names, load_config

PLUGIN = EntryPoint("sandboxy", "vmvc_sandboxy:SandboxyBackend", config.BACKEND_ENTRY_POINT_GROUP)


@pytest.fixture
def with_plugin(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The installed entry points plus one plugin's, listed first as a foreign package may be."""
    real = list(config.entry_points(group=config.BACKEND_ENTRY_POINT_GROUP))
    monkeypatch.setattr(config, "entry_points", lambda group: [PLUGIN, *real])
    return [e.name for e in real]


def test_config_reads_the_group_the_backends_are_loaded_from() -> None:
    assert config.BACKEND_ENTRY_POINT_GROUP == base.ENTRY_POINT_GROUP


def test_installed_names_are_the_entry_points() -> None:
    assert set(installed_backend_names()) == set(available_backend_classes())


def test_backends_come_in_the_usual_order_baseline_first() -> None:
    kinds = [cls.kind for cls in available_backend_classes().values()]
    order = get_args(BackendKind)
    assert kinds == sorted(kinds, key=order.index)
    assert kinds[0] == "native"


def test_default_is_every_installed_backend_plugins_after_vmvcs_own(
    with_plugin: list[str],
) -> None:
    assert Config().backends == [*with_plugin, "sandboxy"]
    assert load_config("quick").backends[-1] == "sandboxy"


def test_an_installed_plugin_may_be_named_in_a_config_file(
    with_plugin: list[str], tmp_path: Path
) -> None:
    path = tmp_path / "plugin.toml"
    path.write_text('backends = ["sandboxy"]\n')
    assert load_config(None, path).backends == ["sandboxy"]


def test_an_unknown_backend_in_a_file_is_refused_listing_the_installed(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('backends = ["firecracker"]\n')
    with pytest.raises(ConfigError) as caught:
        load_config(None, path)
    message = str(caught.value)
    assert message.startswith(f"{path}: key 'backends': unknown backend 'firecracker'")
    for name in installed_backend_names():
        assert name in message
    assert "\n" not in message


def test_an_unknown_backend_on_the_command_line_is_named_as_such() -> None:
    with pytest.raises(ConfigError, match=r"^command line: key 'backends': unknown backend 'x'"):
        load_config("quick", None, {"backends": ["x"]})


def test_a_saved_config_of_an_uninstalled_plugin_still_loads() -> None:
    """`vmvc report` of a plugin's result must work after the plugin is uninstalled."""
    assert Config.model_validate({"backends": ["bwrap"]}).backends == ["bwrap"]


def test_a_name_that_cannot_be_an_instance_name_is_refused_even_from_a_saved_config() -> None:
    with pytest.raises(ValueError):
        Config.model_validate({"backends": ["../x"]})


def _bench_app() -> typer.Typer:
    """`vmvc bench` alone: the real command, without the leftover scan of vmvc's callback."""
    app = typer.Typer()
    app.command()(cli.bench)

    @app.callback()
    def _root() -> None:  # keeps `bench` a subcommand
        pass

    return app


def test_bench_refuses_an_unknown_backend_in_one_line_listing_the_installed() -> None:
    result = CliRunner().invoke(_bench_app(), ["bench", "--backend", "firecracker", "--plain"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: unknown backend 'firecracker' (installed: ")
    for name in available_backend_classes():
        assert name in lines[0]
    assert "Traceback" not in result.output


def test_a_plugin_that_fails_to_import_is_one_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken() -> dict[str, type]:
        raise ModuleNotFoundError("No module named 'vmvc_broken'")

    monkeypatch.setattr(base, "available_backend_classes", broken)
    for args in (["--backend", "docker"], []):
        result = CliRunner().invoke(_bench_app(), ["bench", *args, "--plain"])
        assert result.exit_code == 2, result.output
        assert result.output.strip() == (
            "error: cannot load the installed backends: No module named 'vmvc_broken'"
        )
