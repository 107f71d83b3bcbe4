"""Which trials a repetition runs, and which workloads an instance trial measures.

Start-up and idle footprint come from every boot (one after the other, never overlapping
with anything else measured), so every repetition has an instance trial. The other
workloads may be limited to the first N measured repetitions (`[run.workload_repetitions]`):
a VM boot under emulation costs seconds, and a short profile can repeat the cheap,
per-boot figures often enough for honest intervals while it samples the expensive ones.

Warm-up repetitions boot each backend once and measure only what every repetition
measures: they warm the host's caches (kernel, base disk, image layers) for the instance
trials; the lifecycle workloads, which always come after those, need no warm-up of their
own and would cost many boots (scale alone boots several instances). The first warm-up's
instance, once its (discarded) start-up and footprint are taken, is a fresh instance that
nothing measured shares the host with: the isolation facts are observed there instead of
in a boot of their own (a full VM's boot is 9 s under TCG).

Beyond the backends the claims compare (native, the first container, the first VM) the
rest of the spectrum may get less, by `[run]` keys: `lifecycle_backends` (the lifecycle
workloads), `steady_backends` (cpu, memory, I/O) and `spectrum_repetitions` (how many
measured boots give its start-up and footprint). The quick profile uses all three.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from vmvc.config import LIFECYCLE_WORKLOADS, STEADY_WORKLOADS, Config, RunSettings, host_cores

INSTANCE_TRIAL = "instance"
INSTANCE_WORKLOADS = ("startup", "footprint", *STEADY_WORKLOADS)
# The kinds of backend the claims compare (vmvc.results.ResultDocument.ratio_pairs).
JUDGED_KINDS = ("native", "container", "vm")
# Lifecycle workloads every backend runs whatever `lifecycle_backends` says: the spectrum
# view's isolation facts and host system calls are per backend.
SPECTRUM_WORKLOADS = ("isolation",)
ISOLATION = "isolation"


@dataclass
class Plan:
    """The trials of one repetition, in run order, and what its instance trials measure."""

    repetition: int
    warmup: bool
    trials: list[tuple[str, str]] = field(default_factory=list)  # (backend, kind)
    # backend -> what its instance trial measures (the spectrum may measure less)
    instance_workloads: dict[str, list[str]] = field(default_factory=dict)


def wanted(workload: str, repetition: int, caps: Mapping[str, int]) -> bool:
    """Whether measured repetition `repetition` (0-based) includes `workload`."""
    return workload not in caps or repetition < caps[workload]


def isolation_in_warmup(workloads: Sequence[str], warmups: int) -> bool:
    """Whether the first warm-up's instances observe the isolation facts (see above): only
    when there is a warm-up, and it boots (some instance workload is chosen)."""
    return (
        warmups > 0 and ISOLATION in workloads and any(w in INSTANCE_WORKLOADS for w in workloads)
    )


def instance_workloads(
    workloads: Sequence[str], caps: Mapping[str, int], repetition: int, *, warmups: int = 0
) -> list[str]:
    """What an instance trial of this repetition measures (warm-ups: negative repetitions;
    the first warm-up adds the isolation facts when isolation_in_warmup says so)."""
    chosen = [w for w in workloads if w in INSTANCE_WORKLOADS]
    if repetition >= 0:
        return [w for w in chosen if wanted(w, repetition, caps)]
    every_time = [w for w in chosen if w not in caps]
    # Only capped workloads chosen (e.g. `-w cpu` with a capped cpu): warm up on them.
    measured = every_time or chosen
    if repetition == -warmups and isolation_in_warmup(workloads, warmups):
        return [*measured, ISOLATION]
    return measured


def trial_kinds(
    workloads: Sequence[str], caps: Mapping[str, int], repetition: int, *, warmups: int = 0
) -> list[str]:
    """The trial kinds one repetition runs per backend, in run order."""
    measures = instance_workloads(workloads, caps, repetition, warmups=warmups)
    kinds = [INSTANCE_TRIAL] if measures else []
    if repetition < 0:
        return kinds
    in_warmup = isolation_in_warmup(workloads, warmups)
    return kinds + [
        w
        for w in workloads
        if w in LIFECYCLE_WORKLOADS
        and wanted(w, repetition, caps)
        and not (w == ISOLATION and in_warmup)
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


def runs_trial(
    kind: str, backend: str, repetition: int, judged: set[str], settings: RunSettings
) -> bool:
    """Whether a repetition's trial of this kind runs on this backend: the lifecycle rule
    above, and past `spectrum_repetitions` no more measured boots of an unjudged backend."""
    if not runs_lifecycle(kind, backend, judged, settings.lifecycle_backends):
        return False
    cap = settings.spectrum_repetitions
    if kind == INSTANCE_TRIAL and backend not in judged and cap is not None:
        return repetition < cap
    return True


def spectrum_measures(
    measures: Sequence[str], backend: str, judged: set[str], steady_backends: str
) -> list[str]:
    """What a backend's instance trial measures under `[run] steady_backends`: with
    "judged", the spectrum's other backends leave out the steady workloads."""
    if steady_backends == "all" or backend in judged:
        return list(measures)
    return [w for w in measures if w not in STEADY_WORKLOADS]


def repetitions_of(workload: str, config: Config) -> int:
    """Measured repetitions of `workload` at the profile's minimum repetition count."""
    caps = config.run.workload_repetitions
    return min(config.run.repetitions, caps.get(workload, config.run.repetitions))


def vm_boots(config: Config) -> dict[str, int]:
    """VM boots the run needs at its minimum repetitions, per trial kind (warm-ups included).

    instance: one boot gives start-up, footprint and the steady workloads; clone: the source
    and the clone; recovery: per trial, one instance a VM's failure kinds share (their
    restarters count no failures: RecoveryPlan.shares_instance) and the reboot after the one
    failure a VM comes back from by rebooting (its kernel's panic); scale:
    every instance of every N; isolation: once per run (facts do not change between
    repetitions), and no boot of its own when the first warm-up observes them.
    """
    settings = config.workload
    per_trial = {
        INSTANCE_TRIAL: 1,
        "clone": 2,
        "recovery": 2 * settings.recovery.trials,
        "scale": sum(settings.scale.resolve(host_cores())),
        "density": max(settings.density.vm_counts),  # instances stay up as N grows
        "provision": 0,
        "portability": 0,
    }
    caps = config.run.workload_repetitions
    boots: dict[str, int] = {}
    for repetition in range(-config.run.warmups, config.run.repetitions):
        for kind in trial_kinds(config.workloads, caps, repetition, warmups=config.run.warmups):
            if kind == "isolation":
                boots[kind] = 1
            else:
                boots[kind] = boots.get(kind, 0) + per_trial[kind]
    return boots
