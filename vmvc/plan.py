"""Which trials a repetition runs, and which workloads an instance trial measures.

Start-up and idle footprint come from every boot (one after the other, never overlapping
with anything else measured), so every repetition has an instance trial. The other
workloads may be limited to the first N measured repetitions (`[run.workload_repetitions]`):
a VM boot under emulation costs seconds, and a short profile can repeat the cheap,
per-boot figures often enough for honest intervals while it samples the expensive ones.

Warm-up repetitions boot each backend once and measure only what every repetition
measures: they warm the host's caches (kernel, base disk, image layers) for the instance
trials; the lifecycle workloads, which always come after those, need no warm-up of their
own and would cost many boots (scale alone boots several instances).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from vmvc.catalogue import FAILURES
from vmvc.config import LIFECYCLE_WORKLOADS, STEADY_WORKLOADS, Config, host_cores

INSTANCE_TRIAL = "instance"
INSTANCE_WORKLOADS = ("startup", "footprint", *STEADY_WORKLOADS)
# The kinds of backend the claims compare (vmvc.results.ResultDocument.ratio_pairs).
JUDGED_KINDS = ("native", "container", "vm")
# Lifecycle workloads every backend runs whatever `lifecycle_backends` says: the spectrum
# view's isolation facts and host system calls are per backend.
SPECTRUM_WORKLOADS = ("isolation",)


@dataclass
class Plan:
    """The trials of one repetition, in run order, and what its instance trials measure."""

    repetition: int
    warmup: bool
    trials: list[tuple[str, str]] = field(default_factory=list)  # (backend, kind)
    instance_workloads: list[str] = field(default_factory=list)


def wanted(workload: str, repetition: int, caps: Mapping[str, int]) -> bool:
    """Whether measured repetition `repetition` (0-based) includes `workload`."""
    return workload not in caps or repetition < caps[workload]


def instance_workloads(
    workloads: Sequence[str], caps: Mapping[str, int], repetition: int
) -> list[str]:
    """What an instance trial of this repetition measures (warm-ups: negative repetitions)."""
    chosen = [w for w in workloads if w in INSTANCE_WORKLOADS]
    if repetition >= 0:
        return [w for w in chosen if wanted(w, repetition, caps)]
    every_time = [w for w in chosen if w not in caps]
    # Only capped workloads chosen (e.g. `-w cpu` with a capped cpu): warm up on them.
    return every_time or chosen


def trial_kinds(workloads: Sequence[str], caps: Mapping[str, int], repetition: int) -> list[str]:
    """The trial kinds one repetition runs per backend, in run order."""
    kinds = [INSTANCE_TRIAL] if instance_workloads(workloads, caps, repetition) else []
    if repetition < 0:
        return kinds
    return kinds + [
        w for w in workloads if w in LIFECYCLE_WORKLOADS and wanted(w, repetition, caps)
    ]


def judged_backends(kinds: Mapping[str, str]) -> set[str]:
    """The backends the claims compare, from (backend -> kind) in the run's order: the
    first of each judged kind."""
    first: dict[str, str] = {}
    for name, kind in kinds.items():
        first.setdefault(kind, name)
    return {first[kind] for kind in JUDGED_KINDS if kind in first}


def runs_lifecycle(kind: str, backend: str, judged: set[str], lifecycle_backends: str) -> bool:
    """Whether a trial kind runs on a backend under `[run] lifecycle_backends` (the
    capabilities are asked separately: vmvc.bench.lifecycle.applies)."""
    if kind == INSTANCE_TRIAL or kind in SPECTRUM_WORKLOADS or lifecycle_backends == "all":
        return True
    return backend in judged


def repetitions_of(workload: str, config: Config) -> int:
    """Measured repetitions of `workload` at the profile's minimum repetition count."""
    caps = config.run.workload_repetitions
    return min(config.run.repetitions, caps.get(workload, config.run.repetitions))


def vm_boots(config: Config) -> dict[str, int]:
    """VM boots the run needs at its minimum repetitions, per trial kind (warm-ups included).

    instance: one boot gives start-up, footprint and the steady workloads; clone: the source
    and the clone; recovery: a fresh instance per failure kind and trial, and the reboot
    after the one failure a VM comes back from by rebooting (its kernel's panic); scale:
    every instance of every N; isolation: once per run (facts do not change between
    repetitions).
    """
    settings = config.workload
    per_trial = {
        INSTANCE_TRIAL: 1,
        "clone": 2,
        "recovery": (len(FAILURES) + 1) * settings.recovery.trials,
        "scale": sum(settings.scale.resolve(host_cores())),
        "density": max(settings.density.vm_counts),  # instances stay up as N grows
        "provision": 0,
        "portability": 0,
    }
    caps = config.run.workload_repetitions
    boots: dict[str, int] = {}
    for repetition in range(-config.run.warmups, config.run.repetitions):
        for kind in trial_kinds(config.workloads, caps, repetition):
            if kind == "isolation":
                boots[kind] = 1
            else:
                boots[kind] = boots.get(kind, 0) + per_trial[kind]
    return boots
