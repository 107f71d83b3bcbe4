"""Small pure helpers of the lifecycle workloads (no engine needed)."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from vmvc.backends.disk_usage import tree_allocated_bytes
from vmvc.backends.docker_engine.lifecycle import temp_tag
from vmvc.backends.engine_clock import KilledAt, engine_time
from vmvc.bench.lifecycle import LIFECYCLE_WORKLOADS
from vmvc.bench.recovery import ready_markers
from vmvc.config import LIFECYCLE_WORKLOADS as CONFIG_LIFECYCLE_WORKLOADS


def test_engine_time_keeps_nanosecond_fractions() -> None:
    whole = datetime(2026, 11, 29, 12, 5, 58, tzinfo=UTC).timestamp()
    assert engine_time("2026-11-29T12:05:58.492620737Z") == pytest.approx(whole + 0.492620737)
    assert engine_time("2026-11-29T12:05:58Z") == whole
    assert engine_time("0001-01-01T00:00:00Z") is None  # docker's "never"
    assert engine_time("") is None


def test_temp_tag_is_a_valid_lowercase_reference() -> None:
    assert temp_tag("vmvc-20261129T120841Z-0c2add-docker-3", "export") == (
        "vmvc-20261129t120841z-0c2add-docker-3:export"
    )


def test_allocated_bytes_counts_blocks_not_apparent_size(tmp_path: Path) -> None:
    sparse = tmp_path / "sparse"
    with open(sparse, "wb") as handle:
        handle.truncate(64 * 2**20)
    (tmp_path / "dense").write_bytes(b"x" * 8192)
    total = tree_allocated_bytes(tmp_path)
    assert 8192 <= total < 2**20


def test_ready_markers_counts_each_ready_line() -> None:
    lines = [
        "VMVC-READY image=a kernel=k",
        "[    3.9] Kernel panic - not syncing: sysrq triggered crash",
        "noise VMVC-READY image=a kernel=k",
    ]
    assert ready_markers(lines) == 2


def test_every_configurable_lifecycle_workload_is_registered() -> None:
    assert set(LIFECYCLE_WORKLOADS) == set(CONFIG_LIFECYCLE_WORKLOADS)
    for name, workload in LIFECYCLE_WORKLOADS.items():
        assert workload.name == name


def test_a_kill_timed_on_both_clocks_puts_an_engine_time_on_the_monotonic_one() -> None:
    victim = subprocess.Popen(["sleep", "60"])
    killed = KilledAt()
    before_wall, before = time.time(), time.monotonic()
    killed.kill(victim.pid)
    assert victim.wait(timeout=10) == -9  # SIGKILL
    assert before_wall <= killed.wall <= time.time()
    assert before <= killed.monotonic <= time.monotonic()
    # an engine's record 30 ms after the kill is 30 ms after it on the monotonic clock
    assert killed.on_monotonic(killed.wall + 0.03) == pytest.approx(killed.monotonic + 0.03)
