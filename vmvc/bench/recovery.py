"""Recovery: a dead instance brought back by the engine's own restart mechanism (C08).

The backend's RECOVER operation (`Backend.crash`) kills the instance its way and says when
the engine saw it die; this workload times it. recovery_s: the kill to the agent's next
ready marker; detect_s: the kill to the engine recording the death.

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
"""

from __future__ import annotations

import time

from vmvc.agent.protocol import marker, wait_ready
from vmvc.backends.capabilities import Capability
from vmvc.bench.base import Measurement
from vmvc.bench.lifecycle_tools import LifecycleContext, LifecycleResult, seconds


class RecoveryWorkload:
    name = "recovery"
    requires = frozenset({Capability.RECOVER})

    def run(self, context: LifecycleContext) -> LifecycleResult:
        """Each trial on a fresh instance: Docker doubles its restart delay per crash."""
        measured: list[Measurement] = []
        trials = context.config.workload.recovery.trials
        for trial in range(1, trials + 1):
            context.phase(f"recovery: trial {trial}/{trials}")
            measured += one_trial(context, trial)
        return LifecycleResult(measured)


def one_trial(context: LifecycleContext, trial: int) -> list[Measurement]:
    backend, timeout = context.backend, context.config.timeouts.boot_s
    spec = context.make_spec(backend.name, restart_on_crash=True)
    with backend.provision(context.artefacts, spec) as instance:
        instance.wait_ready(timeout)
        crash = backend.crash(instance)
        try:
            start = len(instance.log)
            crashed = time.monotonic()
            crash.crash()
            _, info = wait_ready(instance.log, timeout, start=start)
            detected = crash.detected_at()
        finally:
            crash.remove()
        instance.run("ping", [], 30)  # the agent answers again: it is really back
        markers = ready_markers(instance.log.tail(len(instance.log)))
    measured = [
        seconds(
            "recovery_s",
            info.at - crashed,
            trial=trial,
            how=crash.how,
            ready_markers=markers,
            **crash.detail("recover"),
        )
    ]
    if detected is not None:
        measured.append(
            seconds("detect_s", detected - crashed, trial=trial, basis=crash.detect_basis)
        )
    return measured


def ready_markers(lines: list[str]) -> int:
    """Ready markers the instance printed over its life: 2 after one crash and recovery."""
    return sum(1 for line in lines if marker("READY")(line))
