"""Podman's RECOVER without podman: the restart_on_crash container's options, conmon's
k8s-file log followed across a restart, and the engine's times, on output recorded from a
real podman 4.3 (runc) container SIGKILLed once and restarted by its policy."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from vmvc.agent.protocol import LineLog, marker, wait_ready
from vmvc.backends.base import InstanceSpec
from vmvc.backends.capabilities import Capability, FailureKind
from vmvc.backends.gvisor_engine.backend import GvisorBackend
from vmvc.backends.podman_engine.backend import PodmanBackend
from vmvc.backends.podman_engine.cli import Engine
from vmvc.backends.podman_engine.container import create_argv
from vmvc.backends.podman_engine.recovery import (
    LogFollower,
    PodmanCrash,
    engine_time,
    parse_log_line,
    restart_engine,
    restart_options,
)
from vmvc.config import load_config

DATA = Path(__file__).parent / "data" / "podman"
RUN_ID = "20260101T000000Z-rec002"


def spec(tmp_path: Path, *, restart: bool) -> InstanceSpec:
    return InstanceSpec(
        run_id=RUN_ID,
        name=f"vmvc-{RUN_ID}-podman-1",
        workdir=tmp_path / "w",
        restart_on_crash=restart,
    )


def test_podman_times_with_z_or_an_offset_and_gos_zero_time() -> None:
    assert engine_time("2026-12-01T19:00:00.5Z") == pytest.approx(1796151600.5)
    assert engine_time("2026-12-01T20:00:00.5+01:00") == pytest.approx(1796151600.5)
    assert engine_time("2026-12-01T19:00:00.000000001+00:00") == pytest.approx(1796151600.0)
    assert engine_time("0001-01-01T00:00:00Z") is None
    assert engine_time("yesterday") is None


def test_k8s_file_lines_complete_and_partial() -> None:
    assert parse_log_line("2026-12-01T19:00:00.5+00:00 stdout F VMVC-READY a b") == (
        pytest.approx(1796151600.5),
        "VMVC-READY a b",
        True,
    )
    assert parse_log_line("2026-12-01T19:00:00.5+00:00 stderr P part") == (
        pytest.approx(1796151600.5),
        "part",
        False,
    )
    assert parse_log_line("2026-12-01T19:00:00.5+00:00 stdout F ")[1] == ""  # type: ignore[index]
    assert parse_log_line("not a log line") is None


def test_only_a_restart_on_crash_container_gets_the_policy_and_a_log(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    ordinary = create_argv(spec(tmp_path, restart=False), rootfs)
    restarting = create_argv(spec(tmp_path, restart=True), rootfs)
    # the ordinary container exactly as before: stdin open, no log, the agent serving
    assert "--interactive" in ordinary and "--restart" not in ordinary
    assert ordinary[ordinary.index("--log-driver") + 1] == "none"
    assert ordinary[-1] == "serve"
    # the recovery workload's: restarted by podman, its output in a file in the work dir
    assert "--interactive" not in restarting
    assert restarting[-1] == "idle"
    options = restart_options(spec(tmp_path, restart=True))
    assert options == [
        "--restart",
        "on-failure:5",
        "--log-driver",
        "k8s-file",
        "--log-opt",
        f"path={tmp_path / 'w' / 'agent.log'}",
    ]
    assert all(option in restarting for option in options)


def test_runsc_flags_survive_podmans_restart_through_a_cached_wrapper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VMVC_CACHE", str(tmp_path))
    assert restart_engine(Engine()) == Engine()  # podman's default runtime: no flags
    gvisor = Engine(runtime="/usr/bin/runsc", runtime_flags=("platform=ptrace", "network=none"))
    engine = restart_engine(gvisor)
    assert engine.runtime_flags == () and engine.runtime is not None
    wrapper = Path(engine.runtime)
    assert wrapper.parent == tmp_path / "oci-runtimes"
    assert wrapper.read_text().splitlines()[1] == (
        'exec /usr/bin/runsc --platform=ptrace --network=none "$@"'
    )
    assert wrapper.stat().st_mode & 0o777 == 0o755
    assert restart_engine(gvisor) == engine  # one wrapper per runtime and flags, reused


def test_the_follower_reads_both_runs_with_conmons_times(tmp_path: Path) -> None:
    """The recorded log of a container killed once: two ready markers, stamped with the
    time conmon read each line (on the monotonic clock), not when the file was read."""
    path = tmp_path / "agent.log"
    shutil.copy(DATA / "k8s-file-restarted.log", path)
    log = LineLog()
    follower = LogFollower(path, log, "test")
    follower.end()
    assert log.closed
    lines = log.tail(len(log))
    assert sum(1 for line in lines if marker("READY")(line)) == 2
    first, ready = wait_ready(log, 0)
    _, again = wait_ready(log, 0, start=first + 1)
    recorded = [parse_log_line(raw) for raw in path.read_text().splitlines()]
    walls = [entry[0] for entry in recorded if entry and "VMVC-READY" in entry[1]]
    assert again.at - ready.at == pytest.approx(walls[1] - walls[0], abs=1e-3)
    # conmon's times, not when the file was read: recorded before this test ran
    assert again.at < time.monotonic() - 1


def test_the_follower_joins_partial_lines_and_waits_for_the_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.log"
    log = LineLog()
    follower = LogFollower(path, log, "test")  # no file yet: conmon makes it at start
    path.write_text(
        "2026-12-01T19:00:00.1+00:00 stdout P VMVC-\n2026-12-01T19:00:00.2+00:00 stdout F READY x\n"
    )
    _, info = wait_ready(log, 5)
    follower.end()
    assert log.tail(1) == ["VMVC-READY x"]
    assert info.at == pytest.approx(time.monotonic() - (time.time() - 1796151600.2), abs=0.5)


def fake_inspect(monkeypatch: pytest.MonkeyPatch, recording: Path) -> None:
    """`podman inspect` answers the recorded output; every other command fails."""
    script = f'[ "$1" = inspect ] && exec cat {recording}; exit 1'
    monkeypatch.setattr(Engine, "argv", lambda self, *args: ["sh", "-c", script, "podman", *args])


def test_detected_at_is_the_killed_runs_finish_on_the_monotonic_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_inspect(monkeypatch, DATA / "inspect-restarted.json")
    plan = PodmanBackend(load_config("quick")).recovery_plans()[FailureKind.INSTANCE]
    crash = PodmanCrash(Engine(), "vmvc-x", FailureKind.INSTANCE, plan)
    assert crash.pid > 0 and crash.running()
    state = json.loads((DATA / "inspect-restarted.json").read_text())[0]["State"]
    finished = engine_time(state["FinishedAt"])
    assert finished is not None
    crash.killed.wall, crash.killed.monotonic = finished - 0.02, 100.0  # killed 20 ms before it
    assert crash.detected_at() == pytest.approx(100.02)
    details = crash.detail("recover")
    assert details["restart_count"] == 1
    assert 0 < details["restart_gap_s"] < 1
    assert "finished_before_kill_s" not in details
    # The exit file's coarse clock read 3 ms before the kill: seen at the kill, not before.
    crash.killed.wall = finished + 0.003
    assert crash.detected_at() == pytest.approx(100.0)
    assert crash.detail("recover")["finished_before_kill_s"] == pytest.approx(0.003)


def test_podman_and_gvisor_declare_recover_with_podmans_restart_policy() -> None:
    config = load_config("quick")
    for backend in (PodmanBackend(config), GvisorBackend(config)):
        assert Capability.RECOVER in backend.capabilities
        plans = backend.recovery_plans()
        assert FailureKind.GUEST_KERNEL_PANIC not in plans  # no kernel of its own
        for plan in plans.values():
            assert plan.restarted_by and "container cleanup" in plan.restarted_by
            assert plan.detect_basis.startswith("State.FinishedAt")


def test_crash_refuses_an_instance_not_provisioned_to_restart() -> None:
    backend = PodmanBackend(load_config("quick"))
    with pytest.raises(TypeError):
        backend.crash(object(), FailureKind.INSTANCE)  # type: ignore[arg-type]
