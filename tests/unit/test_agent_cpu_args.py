"""The agent's cpu command hands sysbench what the host asked: a time limit (the cpu
workload) or a count of events with no time limit (the isolation workload's fixed mix).

The real agent script runs here; only `sysbench` is a stand-in on PATH that prints its
arguments (the image has the real one)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from vmvc.bench import AGENT_WORKLOADS
from vmvc.bench.isolation import EXPOSURE_MIX
from vmvc.config import Config

AGENT = Path(__file__).resolve().parents[2] / "vmvc" / "agent" / "agent.sh"


def _sysbench_args(tmp_path: Path, args: list[str]) -> list[str]:
    fake = tmp_path / "sysbench"
    fake.write_text('#!/bin/sh\necho "ARGS $*"\n')
    fake.chmod(0o755)
    out = subprocess.run(
        ["sh", str(AGENT), "run", "t1", "cpu", *args],
        env={"PATH": f"{tmp_path}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("ARGS "))
    return line.split()[1:]


def test_the_cpu_workload_runs_for_its_seconds_with_no_event_limit(tmp_path: Path) -> None:
    command = AGENT_WORKLOADS["cpu"].command(Config())
    got = _sysbench_args(tmp_path, command)
    assert got[0] == "cpu"
    assert f"--time={Config().workload.cpu.seconds}" in got
    assert "--events=0" in got  # sysbench's own default: no limit but the time


def test_the_exposure_mix_counts_events_with_no_time_limit(tmp_path: Path) -> None:
    args = dict(EXPOSURE_MIX)["cpu"]
    got = _sysbench_args(tmp_path, list(args))
    assert "--time=0" in got  # 0: no time limit
    assert "--events=200" in got
