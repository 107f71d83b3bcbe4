"""Recovery: the same failures injected on every engine, each reported on its own (C08).

A backend with RECOVER declares the failure kinds it can inject
(`Backend.recovery_plans`: vmvc.backends.capabilities.FailureKind -> RecoveryPlan, what is
killed and what restarts it); this workload fails each kind once per trial, each on an
instance that has not failed before (see below), and times what happens:

workload_process  the process serving the workload (the vmvc agent) dies by SIGKILL.
instance          the instance itself is SIGKILLed from the host (a container's PID 1, a
                  VM's QEMU process).
guest_kernel_panic  the guest's own kernel panics (VMs only: a container has no kernel).

recovery_s: the kill to the agent's next ready marker; detect_s: the kill to the moment the
engine recorded the death (see each plan's `detect_basis`). Each sample carries the kind in
`metadata.failure`, so every statistic keys it as its own metric, `recovery_s@instance`
(vmvc.keys), as scale does per instance count.

A kind whose engine has no automatic restart (`restarted_by` None: libvirt for a killed
QEMU) gets no time: the workload watches the dead instance for [workload.recovery]
no_restart_watch_s and, when the engine still says it is not running and no ready marker
came, records `no_restart_watch_s@<kind>` (how long it watched) - the report prints "no
automatic restart" there instead of a time. If it did come back after all, that is recorded
as a recovery time, with `restarted_by` saying nothing was declared. Such a kind is watched
in the first trial of a repetition only: a further trial would watch the same nothing again.

No deliberate delay is inside a measured interval: the engines' own delays are part of
their mechanism (Docker waits 100 ms before its first restart). Every kind fails an
instance that has not failed before ([workload.recovery] trials per repetition and kind),
unless its plan says its restarter keeps no count of earlier failures
(RecoveryPlan.shares_instance): Docker doubles its restart delay for each further crash of
a container that ran less than 10 s, so a second crash of the same container would measure
that back-off. Kinds that may share run on one instance, one after the other, each timed
from its own kill, the kind nothing restarts last (vmvc.bench.recovery.instance_groups): a
VM's three kinds cost one boot instead of three.
"""

from __future__ import annotations

import time

from vmvc.agent.protocol import AgentError, marker, wait_ready
from vmvc.backends.base import Instance
from vmvc.backends.capabilities import Capability, Crash, FailureKind, RecoveryPlan
from vmvc.bench.base import Measurement
from vmvc.bench.lifecycle_tools import LifecycleContext, LifecycleResult, seconds

_POLL_S = 0.1
# How long, after a watch in which nothing restarted the instance, the engine may still take
# to record the death (lxc's monitor exited 2+ s after its container's init once, in a CI
# run): the watch is about restarts, detect_s about the engine, so one must not cut the
# other short.
DETECT_WAIT_S = 10.0


class RecoveryWorkload:
    name = "recovery"
    requires = frozenset({Capability.RECOVER})

    def run(self, context: LifecycleContext) -> LifecycleResult:
        """Each trial fails every planned kind once: on a fresh instance per kind, or on one
        shared by the kinds whose restarters keep no count of failures."""
        measured: list[Measurement] = []
        trials = context.config.workload.recovery.trials
        plans = planned_kinds(context.backend.recovery_plans())
        for trial in range(1, trials + 1):
            # A kind nothing restarts is an outcome, not a time: watched once per repetition.
            kinds = [(k, p) for k, p in plans if p.restarted_by is not None or trial == 1]
            for group in instance_groups(kinds):
                names = ", ".join(str(kind) for kind, _ in group)
                context.phase(f"recovery: {names} trial {trial}/{trials}")
                measured += one_instance(context, group, trial)
        return LifecycleResult(measured)


Planned = tuple[FailureKind, RecoveryPlan]


def planned_kinds(plans: dict[FailureKind, RecoveryPlan]) -> list[Planned]:
    """The backend's declared kinds in FailureKind order (the report's order)."""
    return [(kind, plans[kind]) for kind in FailureKind if kind in plans]


def instance_groups(kinds: list[Planned]) -> list[list[Planned]]:
    """Which kinds fail which instance (pure): the kinds that may share
    (RecoveryPlan.shares_instance) one instance, the restarted ones first and at most one
    that nothing restarts after them (it ends the instance); every other kind an instance
    of its own. Within a group, and among the rest, FailureKind order is kept."""
    sharing = [(k, p) for k, p in kinds if p.shares_instance]
    restarted = [(k, p) for k, p in sharing if p.restarted_by is not None]
    terminal = [(k, p) for k, p in sharing if p.restarted_by is None]
    shared = restarted + terminal[:1]
    rest = [(k, p) for k, p in kinds if (k, p) not in shared]
    return ([shared] if shared else []) + [[planned] for planned in rest]


def one_instance(context: LifecycleContext, group: list[Planned], trial: int) -> list[Measurement]:
    """One fresh instance, failed by each kind of `group` in turn."""
    backend = context.backend
    spec = context.make_spec(backend.name, restart_on_crash=True)
    measured: list[Measurement] = []
    with backend.provision(context.artefacts, spec) as instance:
        instance.wait_ready(context.config.timeouts.boot_s)
        for kind, plan in group:
            measured += fail_once(context, instance, kind, plan, trial)
    return measured


def fail_once(
    context: LifecycleContext, instance: Instance, kind: FailureKind, plan: RecoveryPlan, trial: int
) -> list[Measurement]:
    """Kill a ready instance the way `kind` says and time what brings it back."""
    watch_s = context.config.workload.recovery.no_restart_watch_s
    boot_s = context.config.timeouts.boot_s
    crash = context.backend.crash(instance, kind)
    start = len(instance.log)
    try:
        crashed = time.monotonic()
        crash.crash()
        if plan.restarted_by is None:
            came_back = watch_for_restart(crash, instance, start, watch_s, boot_s)
            if came_back is None:
                watched = time.monotonic() - crashed
                detected = await_detection(crash, DETECT_WAIT_S)
                return no_restart(crash, trial, watched, crashed, detected)
            ready_at = came_back
        else:
            _, info = wait_ready(instance.log, boot_s, start=start)
            ready_at = info.at
        detected = crash.detected_at()
    finally:
        crash.remove()
    instance.run("ping", [], 30)  # the agent answers again: it is really back
    # The ready marker it had before this kill, and the ones since: 2 after one recovery.
    since_kill = len(instance.log) - start  # > 0: a ready marker came
    markers = 1 + ready_markers(instance.log.tail(since_kill))
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


def watch_for_restart(
    crash: Crash, instance: Instance, start: int, watch_s: float, boot_s: float
) -> float | None:
    """Watch a killed instance for `watch_s`: the time of a ready marker if it came back,
    None if it stayed down (no marker, and the engine says it is not running at the end).
    Running again at the end of the watch, its ready marker is waited for like any
    restart's, up to `boot_s`: a slow boot is not mistaken for no restart."""
    deadline = time.monotonic() + watch_s
    while (left := deadline - time.monotonic()) > 0:
        try:
            _, info = wait_ready(instance.log, min(_POLL_S, left), start=start)
        except AgentError:  # no marker yet, or the instance's output ended for good
            if instance.log.closed:
                time.sleep(min(_POLL_S, max(0.0, left)))
            continue
        return info.at
    if not crash.running():
        return None
    _, info = wait_ready(instance.log, boot_s, start=start)
    return info.at


def await_detection(crash: Crash, bound_s: float) -> float | None:
    """When the engine recorded the death, waited for up to `bound_s` where the plan names a
    basis for it (None: not recorded by then, or no basis: unknown, never invented)."""
    deadline = time.monotonic() + bound_s
    while (at := crash.detected_at()) is None and crash.detect_basis:
        if time.monotonic() >= deadline:
            break
        time.sleep(_POLL_S)
    return at


def no_restart(
    crash: Crash, trial: int, watched: float, crashed: float, detected: float | None
) -> list[Measurement]:
    """The outcome of a kill nothing restarted: how long it was watched, and when the engine
    saw the death."""
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
