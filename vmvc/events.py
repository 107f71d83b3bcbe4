"""What the runner tells its observer as a run goes: typed events, never text to parse.

The runner gives the whole plan once (`RunPlanned`: every trial it may run, up to the
maximum repetitions, in run order), then one event per step. The live view and the plain
log (vmvc.progress) build everything they show from these: they never re-derive the plan
nor read a backend, workload or repetition back out of a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from vmvc.results import Sample


@dataclass(frozen=True)
class PlannedTrial:
    """One trial of the plan: an instance trial measures several workloads, a lifecycle
    trial one (`measures` is then just its kind)."""

    backend: str
    kind: str
    repetition: int  # 0-based; negative: a warm-up
    measures: tuple[str, ...]
    done: bool = False  # succeeded in the run this one resumes: it is skipped

    @property
    def warmup(self) -> bool:
        return self.repetition < 0

    @property
    def shape(self) -> str:
        """What the trial does, for learning its duration: a boot alone and a boot with the
        steady workloads take very different times."""
        return f"{self.kind}:{'+'.join(self.measures)}"


@dataclass(frozen=True)
class RunPlanned:
    """The plan, given once before the first trial. Trials of repetitions past the minimum
    run only while the stopping rule asks for more and the time budget lasts."""

    backends: tuple[str, ...]
    workloads: tuple[str, ...]
    trials: tuple[PlannedTrial, ...]
    repetitions: int  # the minimum of measured repetitions
    max_repetitions: int
    warmups: int
    time_budget_s: float


@dataclass(frozen=True)
class TrialStarted:
    trial: PlannedTrial


@dataclass(frozen=True)
class PhaseChanged:
    backend: str
    text: str


@dataclass(frozen=True)
class SampleRecorded:
    sample: Sample


@dataclass(frozen=True)
class WorkloadFailed:
    """One workload of a trial failed (the trial may go on with the others)."""

    backend: str
    workload: str
    repetition: int
    error_kind: str  # agent, parse, tool, os, instance, engine
    message: str


@dataclass(frozen=True)
class TrialFinished:
    trial: PlannedTrial
    seconds: float


@dataclass(frozen=True)
class TrialFailed:
    trial: PlannedTrial
    seconds: float
    error_kind: str
    message: str


@dataclass(frozen=True)
class Note:
    """Something the run decided (another repetition, the time budget, why it stopped)."""

    text: str


Event = (
    RunPlanned
    | TrialStarted
    | PhaseChanged
    | SampleRecorded
    | WorkloadFailed
    | TrialFinished
    | TrialFailed
    | Note
)


class Observer(Protocol):
    """The live view, the plain log, or a test's recorder."""

    def notify(self, event: Event) -> None: ...
