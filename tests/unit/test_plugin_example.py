"""The example plugin (examples/vmvc-bwrap) keeps to the public protocol and to vmvc's rules.

Loaded from its source file, not installed: tests/integration/test_plugin.py installs and runs it.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

from vmvc.backends.base import Backend, BackendInfo

PACKAGE = Path(__file__).resolve().parents[2] / "examples" / "vmvc-bwrap" / "vmvc_bwrap"
# What vmvc offers a backend package; anything else of vmvc is private and may change.
PUBLIC = {"vmvc.backends.base", "vmvc.agent.protocol", "vmvc.image.build"}


@pytest.fixture(scope="module")
def plugin() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vmvc_bwrap_backend", PACKAGE / "backend.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and typing look modules up by name
    spec.loader.exec_module(module)
    return module


def _vmvc_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "vmvc" or name.startswith("vmvc.")}


def test_the_plugin_imports_only_vmvcs_public_protocol() -> None:
    used = set().union(*(_vmvc_imports(path) for path in PACKAGE.glob("*.py")))
    assert used, "the plugin should build on vmvc's protocol"
    assert used <= PUBLIC


def test_the_plugin_describes_itself_as_a_sandbox(plugin: ModuleType) -> None:
    backend = plugin.BwrapBackend(config=None)
    assert isinstance(backend, Backend)
    assert backend.info() == BackendInfo("bwrap", "sandbox", "sandbox (bubblewrap)")


def test_the_plugin_refuses_a_remote_host(plugin: ModuleType) -> None:
    remote = SimpleNamespace(name="lab1")
    availability = plugin.BwrapBackend(config=None, host=remote).probe()
    assert not availability.available
    assert "local host only" in availability.reason


def test_the_local_host_is_local_however_vmvc_passes_it(plugin: ModuleType) -> None:
    assert plugin.is_local(None)
    assert plugin.is_local(SimpleNamespace(name="local"))
    assert not plugin.is_local(SimpleNamespace(name="lab1"))


def _options(argv: list[str]) -> list[str]:
    """bwrap's own options: everything before the `--` that starts the agent's command."""
    return argv[: argv.index("--")]


def test_the_sandbox_has_no_network_no_caps_and_dies_with_vmvc(plugin: ModuleType) -> None:
    argv = plugin.sandbox_argv(Path("/img/rootfs"), Path("/w/data"), "run1", "vmvc-bwrap")
    options = _options(argv)
    assert argv[0] == "bwrap"
    for flag in ("--unshare-all", "--die-with-parent", "--new-session", "--clearenv"):
        assert flag in options
    assert "--share-net" not in options  # --unshare-all includes the network namespace
    assert options[options.index("--cap-drop") + 1] == "ALL"
    assert argv[argv.index("--") + 1 :] == ["/opt/vmvc/agent", "serve"]


def test_only_the_instances_data_directory_is_writable(plugin: ModuleType) -> None:
    argv = plugin.sandbox_argv(Path("/img/rootfs"), Path("/w/data"), "run1", "vmvc-bwrap")
    options = _options(argv)
    binds = [
        (flag, options[i + 1], options[i + 2])
        for i, flag in enumerate(options)
        if flag in ("--bind", "--ro-bind", "--dev-bind", "--bind-try", "--dev-bind-try")
    ]
    assert binds == [("--ro-bind", "/img/rootfs", "/"), ("--bind", "/w/data", "/data")]


def test_the_sandbox_carries_its_run_id_for_vmvc_clean(plugin: ModuleType) -> None:
    argv = plugin.sandbox_argv(Path("/r"), Path("/d"), "20261201T000000Z-abc123", "h")
    at = argv.index(plugin.RUN_ID_ENV)
    assert argv[at - 1] == "--setenv" and argv[at + 1] == "20261201T000000Z-abc123"
