"""Podman's RECOVER: a container under podman's own restart policy, talked to across restarts.

An ordinary vmvc podman container is attached once (`podman start --attach --interactive`,
the agent serving commands on its stdin, `--log-driver none`); a restarted container is not
reattached, and an attach made after a restart would miss the new run's ready marker
(conmon's attach socket replays nothing). So an instance provisioned with `restart_on_crash`
(only the recovery workload's) is created differently:

- `--restart on-failure:5`: podman has no daemon; conmon, the container's monitor, runs its
  exit command `podman container cleanup` when the container's process dies, and that
  cleanup applies the restart policy (a new conmon and a new container process, at once:
  no restart delay, unlike Docker's 100 ms);
- `--log-driver k8s-file` into the instance's work dir: conmon appends every line, with the
  time it read it, across restarts; a thread here follows the file and stamps each line
  with conmon's time (on the monotonic clock), as Docker's follower uses dockerd's;
- the agent in `idle` mode, commands by `podman exec AGENT run ...` (Docker's model: one
  exec per task), so the agent answers whichever run of the container is current.

The crash is a SIGKILL from the host to the container's process as `podman inspect` gives
it (State.Pid, read before the kill is timed: the agent under runc, the gVisor sandbox
under runsc); the engine's "it died" time is State.FinishedAt of the killed run, the time
of the exit file conmon wrote. That time comes from the kernel's coarse file clock (one
tick, 4 ms at HZ=250, behind the real time), so a death conmon saw at once can read a few
ms before the kill: measured -0.003 to +0.001 s here, and recorded as it is.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import threading
import time
from pathlib import Path
from typing import Any

from vmvc.agent.protocol import AgentError, LineLog, split_framed
from vmvc.backends.base import InstanceSpec
from vmvc.backends.capabilities import Crash, FailureKind, RecoveryPlan
from vmvc.backends.engine_clock import KilledAt, engine_time, to_monotonic
from vmvc.backends.podman_engine.cli import Engine, PodmanError
from vmvc.paths import atomic_write_text, cache_dir, make_dirs

# Five restarts, like Docker's MaximumRetryCount: a container that cannot start does not
# loop for the rest of the run.
RESTART_POLICY = "on-failure:5"
RUNTIME_WRAPPERS = "oci-runtimes"  # in the cache dir, see restart_engine
LOG_FILE = "agent.log"  # conmon's k8s-file log, in the instance's work dir (not mounted)
# How often the follower looks for new lines; their times are conmon's, so this only
# delays when a waiter sees a line, never the time it is recorded at.
FOLLOW_POLL_S = 0.01
STOP_TIMEOUT_S = 5.0


RESTARTED_BY = (
    "podman restart policy on-failure (conmon's exit command `podman container cleanup` "
    "restarts it; no delay)"
)
DETECT_BASIS = "State.FinishedAt (conmon's exit file; the kernel's coarse file clock)"
# Under runc the agent is the container's process on the host (State.Pid), as in Docker:
# "the workload process dies" and "the instance dies" are the same kill, both measured.
RUNC_PLANS = {
    FailureKind.WORKLOAD_PROCESS: RecoveryPlan(
        "SIGKILL to the agent, which is the container's main process (PID 1 inside)",
        RESTARTED_BY,
        DETECT_BASIS,
    ),
    FailureKind.INSTANCE: RecoveryPlan(
        "SIGKILL to the container's PID 1 from the host (here the agent itself)",
        RESTARTED_BY,
        DETECT_BASIS,
    ),
}


def log_path(spec: InstanceSpec) -> Path:
    return spec.workdir / LOG_FILE


def restart_options(spec: InstanceSpec) -> list[str]:
    """`podman create` options of a restart_on_crash container (instead of an attached
    stdin and no log): the restart policy, and a log that survives restarts."""
    return [
        "--restart",
        RESTART_POLICY,
        "--log-driver",
        "k8s-file",
        "--log-opt",
        f"path={log_path(spec)}",
    ]


def restart_engine(engine: Engine) -> Engine:
    """The engine for a restart_on_crash container. Podman's exit command names the OCI
    runtime but not its flags (podman 4.3 runs `podman ... --runtime /usr/bin/runsc
    container cleanup ID`, no `--runtime-flag`), so its restart would run runsc on another
    platform and network; a runtime with flags is therefore named by a wrapper script that
    passes them on every call (one `sh` exec per runtime call). The wrapper lives in the
    cache, not the instance's work dir: a container left by a dead run must still be
    removable (podman refuses to stop a container whose runtime is missing, and its
    sandbox would live on). Podman's default runtime has no flags: used as it is."""
    if engine.runtime is None or not engine.runtime_flags:
        return engine
    flags = " ".join(shlex.quote(f"--{flag}") for flag in engine.runtime_flags)
    script = f'#!/bin/sh\nexec {shlex.quote(engine.runtime)} {flags} "$@"\n'
    digest = hashlib.sha256(script.encode()).hexdigest()[:16]
    wrapper = make_dirs(cache_dir() / RUNTIME_WRAPPERS) / f"{Path(engine.runtime).name}-{digest}"
    if not wrapper.is_file() or wrapper.read_text() != script:
        atomic_write_text(wrapper, script, mode=0o755)
    return Engine(runtime=str(wrapper))


def parse_log_line(raw: str) -> tuple[float | None, str, bool] | None:
    """One k8s-file line (`TIME STREAM F|P TEXT`, conmon's format) as (epoch time, text,
    whether the line is complete: P marks a part of a longer line); None if not one."""
    parts = raw.rstrip("\n").split(" ", 3)
    if len(parts) < 3 or parts[1] not in ("stdout", "stderr"):
        return None
    tag = parts[2].split(":")[0]  # "F" or "P"; later conmons may append fields after ":"
    if tag not in ("F", "P"):
        return None
    text = parts[3] if len(parts) == 4 else ""
    return engine_time(parts[0]), text, tag == "F"


class LogFollower:
    """Follows conmon's k8s-file log into a LineLog across restarts, each line stamped
    with conmon's time; the log closes when `end` is called (after the container's removal:
    a killed container's file is still written by its next run)."""

    def __init__(self, path: Path, log: LineLog, name: str) -> None:
        self.path, self.log = path, log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name=f"{name}-log", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        offset, buffer, parts = 0, b"", []
        try:
            while True:
                stopping = self._stop.is_set()  # read once more after the stop: the tail
                data = self._read_from(offset)
                offset += len(data)
                buffer += data
                *complete, buffer = buffer.split(b"\n")
                for raw in complete:
                    parts = self._feed(raw.decode("utf-8", errors="replace"), parts)
                if stopping:
                    return
                if not data:
                    self._stop.wait(FOLLOW_POLL_S)
        finally:
            self.log.close()

    def _read_from(self, offset: int) -> bytes:
        try:
            with self.path.open("rb") as handle:
                handle.seek(offset)
                return handle.read()
        except FileNotFoundError:  # conmon creates it when the container starts
            return b""

    def _feed(self, raw: str, parts: list[str]) -> list[str]:
        """Feed one complete line to the log; returns the parts of a line still open."""
        parsed = parse_log_line(raw)
        if parsed is None:
            return parts
        wall, text, complete = parsed
        if not complete:
            return [*parts, text]
        at = time.monotonic() if wall is None else to_monotonic(wall)
        self.log.feed(("".join(parts) + text).encode() + b"\n", at=at)
        return []

    def end(self) -> None:
        self._stop.set()
        self._thread.join(timeout=STOP_TIMEOUT_S)


class Restartable:
    """A restart_on_crash container: started detached, its output followed from conmon's
    log file, each task a `podman exec` of the agent (any run of the container answers)."""

    def __init__(self, engine: Engine, spec: InstanceSpec, log: LineLog, agent: str) -> None:
        self.engine, self.name, self.agent = engine, spec.name, agent
        self.follower = LogFollower(log_path(spec), log, spec.name)
        try:
            self.engine.call("start", spec.name)
        except BaseException:
            self.follower.end()  # the caller removes the container; no thread outlives it
            raise

    def run(self, task_id: str, workload: str, args: list[str], timeout: float) -> list[str]:
        try:
            output = self.engine.call(
                "exec", self.name, self.agent, "run", task_id, workload, *args, timeout=timeout
            )
        except PodmanError as exc:
            raise AgentError(str(exc)) from None
        return split_framed(output, task_id)

    def end(self) -> None:
        """After the container was removed: read the log to its end and close it."""
        self.follower.end()


def inspect_state(engine: Engine, name: str) -> dict[str, Any]:
    """`podman inspect` of one container: its State block and RestartCount; {} if gone."""
    try:
        entry = json.loads(engine.call("inspect", "--type", "container", name))[0]
    except (PodmanError, ValueError, LookupError):
        return {}
    return {**dict(entry.get("State") or {}), "RestartCount": entry.get("RestartCount")}


class PodmanCrash(Crash):
    """SIGKILL to the container's process from the host; podman's restart policy acts."""

    def __init__(self, engine: Engine, name: str, kind: FailureKind, plan: RecoveryPlan) -> None:
        super().__init__(kind, plan)
        self.engine, self.name = engine, name
        state = inspect_state(engine, name)  # looked up before the kill is timed
        self.pid = int(state.get("Pid") or 0)
        if self.pid <= 0:
            raise PodmanError(f"podman gives no process for container {name}")
        self.killed = KilledAt()

    def crash(self) -> None:
        self.killed.kill(self.pid)

    def running(self) -> bool:
        return bool(inspect_state(self.engine, self.name).get("Running"))

    def detected_at(self) -> float | None:
        """FinishedAt of the killed run (wall clock) on the monotonic clock; the restart
        count and the gap to the new run's start go to the details."""
        state = inspect_state(self.engine, self.name)
        finished = engine_time(str(state.get("FinishedAt") or ""))
        restarted = engine_time(str(state.get("StartedAt") or ""))
        self.details["recover"] = {
            "restart_count": state.get("RestartCount"),
            "restart_gap_s": None
            if finished is None or restarted is None
            else round(restarted - finished, 6),
        }
        if finished is None or finished < self.killed.wall - 1.0:
            return None  # not this kill's (a zero time, or an earlier run's)
        after_kill = finished - self.killed.wall
        if after_kill < 0:
            # The exit file's coarse clock (one tick) read before the kill: a death cannot be
            # seen before it happened, so the kill's time, and the reading in the details.
            self.details["recover"]["finished_before_kill_s"] = round(-after_kill, 6)
            finished = self.killed.wall
        return self.killed.on_monotonic(finished)
