"""Recovery: the same failures injected on every engine, each reported on its own (C08).

A backend with RECOVER declares the failure kinds it can inject
(`Backend.recovery_plans`: vmvc.backends.capabilities.FailureKind -> RecoveryPlan, what is
killed and what restarts it); this workload runs one fresh instance per kind and trial and
times what happens:

workload_process  the process serving the workload (the vmvc agent) dies by SIGKILL.
instance          the instance itself is SIGKILLed from the host (a container's PID 1, a
                  VM's QEMU process).
guest_kernel_panic  the guest's own kernel panics (VMs only: a container has no kernel).

recovery_s: the kill to the agent's next ready marker; detect_s: the kill to the moment the
engine recorded the death (see each plan's `detect_basis`). Each sample carries the kind in
`metadata.failure`, so every statistic keys it as its own metric, `recovery_s@instance`
(vmvc.keys), as scale does per instance count.

A kind whose engine has no automatic restart (`restarted_by` None: libvirt for a killed
QEMU) gets no time: the workload watches the dead instance for NO_RESTART_WATCH_S and,
when the engine still says it is not running and no ready marker came, records
`no_restart_watch_s@<kind>` (how long it watched) - the report prints "no automatic
restart" there instead of a time. If it did come back after all, that is recorded as a
recovery time, with `restarted_by` saying nothing was declared. Such a kind is watched in
the first trial of a repetition only: a further trial would watch the same nothing again.

No deliberate delay is inside a measured interval: the engines' own delays are part of
their mechanism (Docker waits 100 ms before its first restart). Every trial uses a fresh
instance that fails once ([workload.recovery] trials per repetition and kind): Docker
doubles its restart delay for each further crash of a container that ran less than 10 s,
so a second crash of the same container would measure that back-off.
"""

from __future__ import annotations

import time

from vmvc.agent.protocol import AgentError, marker, wait_ready
from vmvc.backends.base import Instance
from vmvc.backends.capabilities import Capability, Crash, FailureKind, RecoveryPlan
from vmvc.bench.base import Measurement
from vmvc.bench.lifecycle_tools import LifecycleContext, LifecycleResult, seconds

# How long a dead instance is watched for a restart its engine does not promise: far longer
# than any engine here takes to *start* one (Docker ~0.3 s; libvirt resets a panicked guest
# within 0.04 s of its crashed event); an instance running again at the end of the watch is
# then waited for like any restart, so a slow boot is not mistaken for no restart.
NO_RESTART_WATCH_S = 5.0
_POLL_S = 0.1


class RecoveryWorkload:
    name = "recovery"
    requires = frozenset({Capability.RECOVER})

    def run(self, context: LifecycleContext) -> LifecycleResult:
        """Each kind and trial on a fresh instance: Docker doubles its restart delay per
        crash of the same container."""
        measured: list[Measurement] = []
        trials = context.config.workload.recovery.trials
        plans = planned_kinds(context.backend.recovery_plans())
        for trial in range(1, trials + 1):
            for kind, plan in plans:
                if plan.restarted_by is None and trial > 1:
                    continue  # an outcome, not a time: watched once per repetition
                context.phase(f"recovery: {kind} trial {trial}/{trials}")
                measured += one_trial(context, kind, plan, trial)
        return LifecycleResult(measured)


def planned_kinds(plans: dict[FailureKind, RecoveryPlan]) -> list[tuple[FailureKind, RecoveryPlan]]:
    """The backend's declared kinds in FailureKind order (the report's order)."""
    return [(kind, plans[kind]) for kind in FailureKind if kind in plans]


def one_trial(
    context: LifecycleContext, kind: FailureKind, plan: RecoveryPlan, trial: int
) -> list[Measurement]:
    backend, timeout = context.backend, context.config.timeouts.boot_s
    spec = context.make_spec(backend.name, restart_on_crash=True)
    with backend.provision(context.artefacts, spec) as instance:
        instance.wait_ready(timeout)
        crash = backend.crash(instance, kind)
        try:
            start = len(instance.log)
            crashed = time.monotonic()
            crash.crash()
            if plan.restarted_by is None:
                came_back = watch_for_restart(crash, instance, start, NO_RESTART_WATCH_S)
                if came_back is None:
                    detected = crash.detected_at()
                    return no_restart(crash, trial, crashed, detected)
                ready_at = came_back
            else:
                _, info = wait_ready(instance.log, timeout, start=start)
                ready_at = info.at
            detected = crash.detected_at()
        finally:
            crash.remove()
        instance.run("ping", [], 30)  # the agent answers again: it is really back
        markers = ready_markers(instance.log.tail(len(instance.log)))
    restarted_by = plan.restarted_by or "unknown: the backend declares no automatic restart"
    measured = [
        seconds(
            "recovery_s",
            ready_at - crashed,
            trial=trial,
            failure=str(kind),
            how=crash.how,
            restarted_by=restarted_by,
            ready_markers=markers,
            **crash.detail("recover"),
        )
    ]
    if detected is not None:
        measured.append(
            seconds(
                "detect_s",
                detected - crashed,
                trial=trial,
                failure=str(kind),
                basis=crash.detect_basis,
            )
        )
    return measured


def watch_for_restart(crash: Crash, instance: Instance, start: int, watch_s: float) -> float | None:
    """Watch a killed instance for `watch_s`: the time of a ready marker if it came back,
    None if it stayed down (no marker, and the engine says it is not running at the end)."""
    deadline = time.monotonic() + watch_s
    while (left := deadline - time.monotonic()) > 0:
        try:
            _, info = wait_ready(instance.log, min(_POLL_S, left), start=start)
        except AgentError:  # no marker yet, or the instance's output ended for good
            if instance.log.closed:
                time.sleep(min(_POLL_S, max(0.0, left)))
            continue
        return info.at
    return None if not crash.running() else _late_ready(instance, start)


def _late_ready(instance: Instance, start: int) -> float:
    """Running again at the end of the watch: its ready marker must follow within a boot."""
    _, info = wait_ready(instance.log, NO_RESTART_WATCH_S, start=start)
    return info.at


def no_restart(
    crash: Crash, trial: int, crashed: float, detected: float | None
) -> list[Measurement]:
    """The outcome of a kill nothing restarted: how long it was watched, and when the engine
    saw the death."""
    watched = time.monotonic() - crashed
    measured = [
        seconds(
            "no_restart_watch_s",
            watched,
            trial=trial,
            failure=str(crash.kind),
            how=crash.how,
            outcome="no automatic restart",
        )
    ]
    if detected is not None:
        measured.append(
            seconds(
                "detect_s",
                detected - crashed,
                trial=trial,
                failure=str(crash.kind),
                basis=crash.detect_basis,
            )
        )
    return measured


def ready_markers(lines: list[str]) -> int:
    """Ready markers the instance printed over its life: 2 after one crash and recovery."""
    return sum(1 for line in lines if marker("READY")(line))
