"""Recovery: a dead instance brought back by the engine's own restart mechanism (C08).

docker   the container runs with restart policy on-failure; its main process (the agent,
         PID 1 inside) is killed from the host with SIGKILL. recovery_s: kill to the agent's
         next ready marker (engine log timestamps; the instance's log follows the restart).
         detect_s: kill to the engine recording the exit (State.FinishedAt).
libvirt  the guest runs with on_crash/on_reboot=restart and `panic=-1`; the agent panics its
         kernel (`echo c > /proc/sysrq-trigger`). recovery_s: crash command to the next ready
         marker on the serial console (the console stream survives the guest's reset).
         detect_s: crash command to libvirt's reboot event for the domain (`panic=-1`: the
         guest kernel resets at once, without a deliberate delay).

Every trial uses a fresh instance that crashes once ([workload.recovery] trials per
repetition): Docker doubles its restart delay for each further crash of a container that
ran less than 10 s, so a second crash of the same container would measure that back-off.
Native: not applicable (nothing restarts the host).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from vmvc.agent.protocol import command_line, marker, wait_ready
from vmvc.backends.docker_engine.backend import DockerBackend, DockerInstance
from vmvc.backends.docker_engine.lifecycle import container_state, engine_time
from vmvc.backends.libvirt_engine.backend import LibvirtBackend, LibvirtInstance
from vmvc.backends.libvirt_engine.lifecycle import RebootWatch
from vmvc.bench.base import Measurement
from vmvc.bench.lifecycle_tools import (
    INSTANCE_BACKENDS,
    per_engine,
    seconds,
)

B = TypeVar("B", DockerBackend, LibvirtBackend)

if TYPE_CHECKING:  # the registry in vmvc.bench.lifecycle imports this module
    from vmvc.bench.lifecycle import LifecycleContext


class RecoveryWorkload:
    name = "recovery"
    applies_to = INSTANCE_BACKENDS

    def run(self, context: LifecycleContext) -> list[Measurement]:
        return per_engine(
            context,
            self.name,
            docker=lambda c, b: _trials(c, b, _docker),
            libvirt=lambda c, b: _trials(c, b, _libvirt),
            otherwise="no engine restarts the host",
        )


def _trials(
    context: LifecycleContext,
    backend: B,
    one: Callable[[LifecycleContext, B, int], list[Measurement]],
) -> list[Measurement]:
    """Each trial on a fresh instance: Docker doubles its restart delay per crash."""
    measured: list[Measurement] = []
    trials = context.config.workload.recovery.trials
    for trial in range(1, trials + 1):
        context.phase(f"recovery: trial {trial}/{trials}")
        measured += one(context, backend, trial)
    return measured


def _docker(context: LifecycleContext, backend: DockerBackend, trial: int) -> list[Measurement]:
    timeout = context.config.timeouts.boot_s
    spec = context.make_spec(backend.name, restart_on_crash=True)
    with backend.provision(context.artefacts, spec) as instance:
        assert isinstance(instance, DockerInstance)
        instance.wait_ready(timeout)
        pid = instance.host_pid()
        start = len(instance.log)
        killed_wall = time.time()
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        _, info = wait_ready(instance.log, timeout, start=start)
        state = container_state(instance.container) or {}
        restart_count = instance.container.attrs.get("RestartCount")
        instance.run("ping", [], 30)  # the agent answers again: it is really back
        markers = ready_markers(instance.log.tail(len(instance.log)))
    finished = engine_time(state.get("FinishedAt", ""))
    restarted = engine_time(state.get("StartedAt", ""))
    measured = [
        seconds(
            "recovery_s",
            info.at - killed,
            trial=trial,
            how="SIGKILL to the container's main process; restart policy on-failure",
            restart_count=restart_count,
            ready_markers=markers,
            restart_delay_s=None
            if finished is None or restarted is None
            else round(restarted - finished, 6),
        )
    ]
    if finished is not None:
        measured.append(
            seconds("detect_s", finished - killed_wall, trial=trial, basis="State.FinishedAt")
        )
    return measured


def _libvirt(context: LifecycleContext, backend: LibvirtBackend, trial: int) -> list[Measurement]:
    timeout = context.config.timeouts.boot_s
    spec = context.make_spec(backend.name, restart_on_crash=True)
    with backend.provision(context.artefacts, spec) as instance:
        assert isinstance(instance, LibvirtInstance)
        instance.wait_ready(timeout)
        if instance.console is None or instance.domain is None:
            raise RuntimeError("guest console is not attached")
        watch = RebootWatch(backend.conn, instance.domain)
        try:
            start = len(instance.log)
            crashed = time.monotonic()
            instance.console.send(command_line(instance.next_task_id(), "crash", []).encode())
            _, info = wait_ready(instance.log, timeout, start=start)
            rebooted = watch.at
        finally:
            watch.close()
        instance.run("ping", [], 30)  # the agent answers again: it is really back
        markers = ready_markers(instance.log.tail(len(instance.log)))
    measured = [
        seconds(
            "recovery_s",
            info.at - crashed,
            trial=trial,
            how="guest kernel panic (sysrq c); panic=-1, on_reboot/on_crash=restart",
            ready_markers=markers,
        )
    ]
    if rebooted is not None:
        measured.append(
            seconds("detect_s", rebooted - crashed, trial=trial, basis="libvirt reboot event")
        )
    return measured


def ready_markers(lines: list[str]) -> int:
    """Ready markers the instance printed over its life: 2 after one crash and recovery."""
    return sum(1 for line in lines if marker("READY")(line))
