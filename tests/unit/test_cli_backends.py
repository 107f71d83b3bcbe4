"""What `vmvc bench` hands the run for the backends asked for: a profile's spectrum trims
(`lifecycle_backends`, `steady_backends`, `spectrum_repetitions`) apply to `--backend all`
(or none named), never to a backend named on the command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from vmvc import cli, orchestrate
from vmvc.config import Config


class Captured(Exception):
    def __init__(self, config: Config) -> None:
        self.config = config


def config_of(args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    def capture(config: Config, **_: Any) -> None:
        raise Captured(config)

    monkeypatch.setattr(orchestrate, "run_bench", capture)
    monkeypatch.setattr(cli, "_installed_backends", lambda: ["native", "docker", "gvisor"])
    monkeypatch.setattr("vmvc.cleanup.warn_about_leftovers", lambda _console: None)
    monkeypatch.setenv("VMVC_WORKDIR", str(tmp_path / "work"))
    monkeypatch.setattr(sys, "argv", ["vmvc", "bench", *args, "-o", str(tmp_path / "out")])
    with pytest.raises(Captured) as caught:
        cli.main()
    return caught.value.config


def test_all_keeps_the_quick_profiles_spectrum_trims(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = config_of(["-b", "all", "-p", "quick"], tmp_path, monkeypatch).run
    assert (run.lifecycle_backends, run.steady_backends, run.spectrum_repetitions) == (
        "judged",
        "judged",
        4,
    )


def test_a_named_backend_is_measured_in_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_of(["-b", "gvisor", "-w", "cpu", "-p", "quick"], tmp_path, monkeypatch)
    assert config.backends == ["gvisor"]
    run = config.run
    assert (run.lifecycle_backends, run.steady_backends, run.spectrum_repetitions) == (
        "all",
        "all",
        None,
    )
