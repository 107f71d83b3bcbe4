"""Showing a run as it goes: a rich live dashboard on a terminal, plain log lines otherwise.

`RunTracker` holds what both views show: which trial runs, what each backend and workload
has done, partial medians and the time left. `LiveView` redraws it in place on a terminal;
`PlainLog` writes one ASCII line per event (pipes, CI logs, `--plain`), never an escape code.
Both implement the runner's `Observer` protocol (vmvc.events): they take typed events and
never parse text.
"""

from __future__ import annotations

import re
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from vmvc import events
from vmvc.catalogue import FAILURES
from vmvc.events import (
    Event,
    PhaseChanged,
    PlannedTrial,
    RunPlanned,
    SampleRecorded,
    TrialFailed,
    TrialFinished,
    TrialStarted,
    WorkloadFailed,
)
from vmvc.keys import metric_key, split_key, split_variant
from vmvc.plan import INSTANCE_TRIAL, INSTANCE_WORKLOADS
from vmvc.results import ResultDocument, Sample

# The figure shown per workload while the run goes (the one claims are judged on). A workload
# not listed shows the first metric it reports.
HEADLINE = {
    "startup": "total_s",
    "footprint": "total_mib",
    "cpu": "events_per_s",
    "memory": "bandwidth_mib_s",
    "io": "randread_4k_iops",
    "provision": "define_s",
    "clone": "clone_s",
    "scale": "all_ready_s",
    "density": "first_instance_mib",
    "recovery": "recovery_s",
    "portability": "export_s",
}

NOTES_SHOWN = 4
# (backend, trial shape): the unit a duration is learnt for. The shape is the trial kind and
# what it measures, which differs between repetitions when some workloads are limited to
# the first ones (a boot alone vs a boot and the steady workloads); see PlannedTrial.shape.
Pair = tuple[str, str]

# CSI/OSC escape sequences and other control characters: an error message can carry a
# guest's console output, which must neither garble the dashboard nor reach a plain log.
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)?|[\x00-\x1f\x7f]")


def clean(text: str) -> str:
    """`text` without escape sequences or control characters (tabs and newlines: a space)."""
    return _CONTROL.sub(lambda m: " " if m.group(0) in "\t\n\r" else "", text).strip()


def failure_text(backend: str, workload: str, event: WorkloadFailed | TrialFailed) -> str:
    """How a failure reads in the notes: '<backend> <workload> repetition <n>: <message>'."""
    repetition = event.trial.repetition if isinstance(event, TrialFailed) else event.repetition
    number = "warmup" if repetition < 0 else f"repetition {repetition + 1}"
    return f"{backend} {workload} {number}: {event.message}"


def fmt_value(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def text_bar(done: int, total: int, *, width: int = 12, failed: bool = False) -> Text:
    """A bar of block characters: it reads the same in colour, in monochrome and in a
    screen capture (rich's ProgressBar draws done and to-do with one glyph, by colour)."""
    filled = min(width, round(width * done / total)) if total > 0 else 0
    bar = Text("█" * filled, style="red" if failed else "green")
    bar.append("░" * (width - filled), style="dim")
    return bar


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def clock(seconds: float | None) -> str:
    """m:ss (h:mm:ss past an hour); '?' when unknown."""
    if seconds is None:
        return "?"
    minutes, secs = divmod(round(max(seconds, 0.0)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass
class Estimate:
    """Time left: `seconds` until the minimum repetitions are done; if the confidence
    intervals stay wide the runner may add `extra_repetitions`, taking `extra_seconds` more."""

    seconds: float
    rough: list[str] = field(default_factory=list)  # backends with a trial kind not timed yet
    extra_repetitions: int = 0
    extra_seconds: float = 0.0

    def describe(self) -> str:
        text = f"left ~{clock(self.seconds)}"
        if self.rough:
            verb = "has" if len(self.rough) == 1 else "have"
            text += f" (rough until {', '.join(self.rough)} {verb} run once)"
        if self.extra_repetitions:
            more = plural(self.extra_repetitions, "more repetition")
            text += f", up to +{clock(self.extra_seconds)} ({more}) if CIs are wide"
        return text


@dataclass
class Note:
    text: str
    error: bool


@dataclass
class BackendState:
    phase: str = "waiting"
    trials_done: int = 0
    failures: int = 0
    last_failure: str = ""
    values: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    repetitions_done: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    # workload or trial kind -> repetitions (0-based) in which the runner reported it failed
    failed_in: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))

    def failed_repetitions(self, workload: str) -> int:
        """Repetitions of `workload` that failed: its own error, or its instance trial
        failing before the workload gave a value."""
        failed = set(self.failed_in.get(workload, ()))
        if workload in INSTANCE_WORKLOADS:
            lost = self.failed_in.get(INSTANCE_TRIAL, set())
            failed |= lost - self.repetitions_done.get(workload, set())
        return len(failed)


class RunTracker:
    """State shared by both views: what is running, what is done, how long is left.

    Everything comes from the runner's events (vmvc.events): the plan once, then each
    trial's start, phases, samples and end. The estimate learns a duration per (backend,
    trial shape): a VM trial under TCG takes many times a native one, so one mean over all
    trials would be wrong most of the run.
    """

    def __init__(
        self,
        backends: list[str],
        workloads: list[str],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backends = list(backends)
        self.workloads = list(workloads)
        # The runner's plan (RunPlanned); until it arrives the run has no trials.
        self.trials: list[PlannedTrial] = []
        self.repetitions = 0
        self.warmups = 0
        self.max_repetitions = 0
        self.time_budget_s: float | None = None
        self.clock = clock
        self.started = clock()
        self.state = {b: BackendState() for b in self.backends}
        self.done_trials = 0
        self.failed_trials = 0
        self.workload_errors = 0
        self.repetition: int | None = None  # of the trial running or last run
        self.warmup = False
        self.done_in_repetition: set[Pair] = set()
        self.running: Pair | None = None
        self.running_since = self.started
        self.current = ""
        self.durations: dict[Pair, list[float]] = defaultdict(list)
        self.failed_durations: dict[Pair, list[float]] = defaultdict(list)
        # (backend, phase text) -> seconds spent in it: what one workload of an instance
        # trial costs, to price a trial shape not timed yet (see estimate)
        self.phase_durations: dict[tuple[str, str], list[float]] = defaultdict(list)
        self._phase: tuple[str, str, float] | None = None
        self.first_metric: dict[str, str] = {}
        self.units: dict[str, str] = {}
        self.notes: list[Note] = []
        self.finished_seconds: float | None = None
        self.last_seconds = 0.0  # how long the last trial took
        self._resumed: tuple[ResultDocument, str] | None = None

    # -- plan -----------------------------------------------------------------------------

    def pairs_for(self, repetition: int) -> list[Pair]:
        return [(t.backend, t.shape) for t in self.trials if t.repetition == repetition]

    def planned_repetitions(self) -> int:
        """Measured repetitions planned so far: the minimum, or more once the runner adds some."""
        current = self.repetition + 1 if self.repetition is not None else 0
        return max(self.repetitions, current)

    def _repetitions(self, measured: int) -> range:
        return range(-self.warmups, measured)

    @property
    def total_trials(self) -> int:
        return sum(len(self.pairs_for(r)) for r in self._repetitions(self.planned_repetitions()))

    def planned_trials(self, backend: str) -> int:
        measured = self.planned_repetitions()
        return sum(1 for t in self.trials if t.backend == backend and t.repetition < measured)

    def resumed(self, doc: ResultDocument, host: str = "local") -> None:
        """Before a resumed run: once the plan arrives, the trials that succeeded before (the
        runner skips them) count as done, their recorded durations seed the estimate, their
        values the medians."""
        self._resumed = (doc, host)

    def planned(self, plan: RunPlanned) -> None:
        self.trials = list(plan.trials)
        self.repetitions = plan.repetitions
        self.warmups = plan.warmups
        self.max_repetitions = max(plan.max_repetitions, plan.repetitions)
        self.time_budget_s = plan.time_budget_s
        if self._resumed is None:
            return
        doc, host = self._resumed
        done = {(t.backend, t.kind, t.repetition): t for t in self.trials if t.done}
        for record in doc.trials:
            trial = done.get((record.backend, record.kind, record.repetition))
            if record.host != host or record.status != "ok" or trial is None:
                continue
            self.durations[(trial.backend, trial.shape)].append(record.seconds)
            self.done_trials += 1
            self.state[trial.backend].trials_done += 1
        for sample in doc.samples:
            kind = INSTANCE_TRIAL if sample.workload in INSTANCE_WORKLOADS else sample.workload
            if sample.host == host and (sample.backend, kind, sample.repetition) in done:
                self.sample(sample)

    # -- events ---------------------------------------------------------------------------

    def notify(self, event: Event) -> None:
        """Take one event of the runner (vmvc.events) into the state."""
        match event:
            case RunPlanned():
                self.planned(event)
            case TrialStarted(trial=trial):
                self.trial_started(trial)
            case PhaseChanged(backend=backend, text=text):
                self.state[backend].phase = clean(text)
                self._phase_ended()
                self._phase = (backend, text, self.clock())
            case SampleRecorded(sample=sample):
                self.sample(sample)
            case WorkloadFailed():
                self.state[event.backend].failed_in[event.workload].add(event.repetition)
                self.workload_errors += 1
                self.note(failure_text(event.backend, event.workload, event), error=True)
            case TrialFinished(trial=trial):
                self.trial_finished(trial, ok=True)
            case TrialFailed(trial=trial):
                self.state[trial.backend].failed_in[trial.kind].add(trial.repetition)
                self.note(failure_text(trial.backend, trial.kind, event), error=True)
                self.trial_finished(trial, ok=False, message=event.message)
            case events.Note(text=text):
                self.note(text, error=False)

    def trial_started(self, trial: PlannedTrial) -> None:
        if trial.repetition != self.repetition:
            self.repetition = trial.repetition
            self.done_in_repetition = set()
        self.warmup = trial.warmup
        self.running = (trial.backend, trial.shape)
        self.running_since = self.clock()
        label = (
            "warmup"
            if trial.warmup
            else f"repetition {trial.repetition + 1}/{self.planned_repetitions()}"
        )
        self.current = f"{trial.backend} · {trial.kind} · {label}"
        self.state[trial.backend].phase = f"starting {trial.kind}"

    def sample(self, sample: Sample) -> None:
        if sample.warmup:
            return
        # Scale samples are kept per instance count: a median over N = 1, 2, 3 means nothing.
        key = f"{sample.workload}/{metric_key(sample.metric, sample.metadata)}"
        state = self.state[sample.backend]
        state.values[key].append(sample.value)
        state.repetitions_done[sample.workload].add(sample.repetition)
        self.first_metric.setdefault(sample.workload, sample.metric)
        self.units.setdefault(key, sample.unit)

    def _phase_ended(self) -> None:
        if self._phase is not None:
            backend, text, since = self._phase
            self.phase_durations[(backend, text)].append(self.clock() - since)
            self._phase = None

    def trial_finished(self, trial: PlannedTrial, *, ok: bool, message: str = "") -> float:
        """Record the trial's outcome; returns how long it took."""
        self._phase_ended()
        pair = (trial.backend, trial.shape)
        seconds = self.clock() - self.running_since
        self.last_seconds = seconds
        (self.durations if ok else self.failed_durations)[pair].append(seconds)
        self.done_in_repetition.add(pair)
        self.running = None
        self.done_trials += 1
        state = self.state[trial.backend]
        state.trials_done += 1
        if ok:
            # "done" only when no repetition can follow: the runner may add some up to the max.
            most = sum(1 for t in self.trials if t.backend == trial.backend)
            state.phase = "done" if state.trials_done >= most else "waiting"
        else:
            self.failed_trials += 1
            state.failures += 1
            state.last_failure = clean(message)
            state.phase = f"FAILED: {state.last_failure}" if message else "FAILED"
        return seconds

    def note(self, text: str, *, error: bool) -> Note:
        note = Note(clean(text), error)
        self.notes.append(note)
        return note

    def finish(self) -> None:
        self.finished_seconds = self.elapsed()
        self.running = None
        for state in self.state.values():
            if not state.phase.startswith("FAILED"):
                state.phase = "done"

    # -- what the views read --------------------------------------------------------------

    def elapsed(self) -> float:
        if self.finished_seconds is not None:
            return self.finished_seconds
        return self.clock() - self.started

    def errors(self) -> int:
        """Failed trials and workloads that failed inside a trial that went on."""
        return self.failed_trials + self.workload_errors

    def summary(self) -> str:
        """'4 trials, none failed' or '4 trials, 1 failed, 2 workload errors (...)'."""
        failed = f"{self.failed_trials} failed" if self.failed_trials else "none failed"
        text = f"{plural(self.done_trials, 'trial')}, {failed}"
        workload_errors = self.workload_errors
        if workload_errors:
            text += f", {plural(workload_errors, 'workload error')}"
        if self.failed_trials or workload_errors:
            text += " (see 'errors' in the result)"
        return text

    def headline(self, workload: str) -> str | None:
        return HEADLINE.get(workload) or self.first_metric.get(workload)

    def headline_key(self, backend: str, workload: str, n: int | None = None) -> str | None:
        """The headline metric's key: per instance count, the given N or else the largest."""
        metric = self.headline(workload)
        if not metric:
            return None
        values = self.state[backend].values
        per_n = {
            split_key(key.split("/", 1)[1])[1]: key
            for key in values
            if key.startswith(f"{workload}/") and split_key(key.split("/", 1)[1])[0] == metric
        }
        per_n.pop(None, None)
        if not per_n:
            return self._first_variant_key(backend, workload, metric)
        return per_n.get(n) or per_n[max(per_n)]

    def _first_variant_key(self, backend: str, workload: str, metric: str) -> str:
        """A metric measured per failure kind (recovery_s@instance) or in named forms
        (export_bytes@compressed): the first kind in the catalogue's order, else the plain
        metric, else the first form recorded; never a pool of variants."""
        values = self.state[backend].values
        for kind in FAILURES:
            key = f"{workload}/{metric}@{kind.name}"
            if key in values:
                return key
        plain = f"{workload}/{metric}"
        forms = [
            key
            for key in values
            if key.startswith(f"{workload}/")
            and split_variant(key.split("/", 1)[1])[0] == metric
            and split_variant(key.split("/", 1)[1])[1] is not None
        ]
        return plain if plain in values or not forms else forms[0]

    def median(
        self, backend: str, workload: str, n: int | None = None, key: str | None = None
    ) -> tuple[float, int, str] | None:
        """(median, n, unit) of the workload's headline metric so far, or None.

        A metric measured per instance count gives the median at count ``n`` (default: the
        largest count measured so far), never one pooled over the counts; ``key`` (a metric
        key such as ``export_s@compressed``) asks for that group exactly.
        """
        key = f"{workload}/{key}" if key else self.headline_key(backend, workload, n)
        values = self.state[backend].values.get(key) if key else None
        if not key or not values:
            return None
        return statistics.median(values), len(values), self.units.get(key, "")

    def median_label(self, backend: str, workload: str) -> str:
        """'@N=3' ('@instance') when the headline median is one instance count's (failure
        kind's), else ''."""
        key = self.headline_key(backend, workload)
        count = split_key(key.split("/", 1)[1])[1] if key else None
        if count is not None:
            return f" @N={count}"
        variant = split_variant(key.split("/", 1)[1])[1] if key else None
        if variant is None:
            return ""
        # a failure kind reads like a count (@instance), an export form like a name
        return f" @{variant}" if variant in {kind.name for kind in FAILURES} else f" ({variant})"

    def estimate(self) -> Estimate | None:
        """Time left, from the median duration of each (backend, kind) seen so far.

        Counted: the rest of the running trial, the trials of this repetition not run yet,
        and every later repetition up to the minimum (warmups included). Beyond that the
        runner adds repetitions only while a CI is wide and the time budget lasts: those
        are reported apart, as an upper bound. None until a first trial has finished.
        """
        known = {p: statistics.median(d) for p, d in self.durations.items() if d}
        for pair, durations in self.failed_durations.items():
            if durations:
                known.setdefault(pair, statistics.median(durations))
        if self.finished_seconds is not None:
            return Estimate(0.0)
        if not known:
            return None
        now = self.clock()
        rough: set[str] = set()

        def cost(pair: Pair) -> float:
            if pair in known:
                return known[pair]
            fewer = self.without_workloads(pair, known)
            if fewer is not None:
                return fewer
            # Not timed yet: borrow the slowest backend's time for this kind (or any kind).
            rough.add(pair[0])
            same_kind = [v for (_, kind), v in known.items() if kind == pair[1]]
            guess = max(same_kind or known.values())
            if pair == self.running:
                guess = max(guess, now - self.running_since)
            return guess

        def to_run(repetition: int) -> list[Pair]:
            return [
                (t.backend, t.shape)
                for t in self.trials
                if t.repetition == repetition and not t.done
            ]

        seconds = 0.0
        if self.running is not None:
            seconds += max(0.0, cost(self.running) - (now - self.running_since))
        if self.repetition is None:
            later = range(-self.warmups, self.repetitions)
        else:
            rest = [
                p
                for p in to_run(self.repetition)
                if p not in self.done_in_repetition and p != self.running
            ]
            seconds += sum(cost(p) for p in rest)
            later = range(self.repetition + 1, self.repetitions)
        seconds += sum(cost(p) for repetition in later for p in to_run(repetition))
        last_planned = self.repetitions - 1
        if self.repetition is not None:
            last_planned = max(last_planned, self.repetition)
        # Past the minimum the runner starts another repetition (of the plan) only while a
        # CI is wide and its run is within the time budget.
        starts_at = self.elapsed() + seconds
        extra, extra_seconds = 0, 0.0
        for repetition in range(last_planned + 1, self.max_repetitions):
            pairs = to_run(repetition)
            if not pairs:
                break  # the runner stops where its plan ends
            if self.time_budget_s is not None and starts_at > self.time_budget_s:
                break
            length = sum(cost(p) for p in pairs)
            extra, extra_seconds, starts_at = extra + 1, extra_seconds + length, starts_at + length
        ordered = [b for b in self.backends if b in rough]
        return Estimate(seconds, ordered, extra, extra_seconds)

    def without_workloads(self, pair: Pair, known: dict[Pair, float]) -> float | None:
        """A trial shape not timed yet that does less than a timed one of the same backend
        and kind (a later repetition's boot without the I/O): the timed one's duration less
        what its extra workloads took (their phases' median), or None if one is unknown."""
        backend, shape = pair
        kind, _, measures = shape.partition(":")
        wanted = set(measures.split("+"))
        guesses = []
        for (other_backend, other_shape), seconds in known.items():
            other_kind, _, other_measures = other_shape.partition(":")
            extra = set(other_measures.split("+")) - wanted
            if other_backend != backend or other_kind != kind or not extra:
                continue
            if not wanted <= set(other_measures.split("+")):
                continue
            spent = [self.phase_durations.get((backend, name)) for name in extra]
            if all(spent):
                less = sum(statistics.median(d) for d in spent if d)
                guesses.append(max(0.0, seconds - less))
        return min(guesses) if guesses else None

    def describe_estimate(self) -> str:
        estimate = self.estimate()
        return estimate.describe() if estimate else "left: known after the first trial"


def _plan_line(t: RunTracker) -> str:
    warm = f" (+{t.warmups} warmup)" if t.warmups else ""
    more = (
        f", up to {t.max_repetitions} if CIs are wide" if t.max_repetitions > t.repetitions else ""
    )
    return (
        f"{', '.join(t.backends)} x {', '.join(t.workloads)}: "
        f"{plural(t.repetitions, 'repetition')}{warm}{more}, {plural(t.total_trials, 'trial')}"
    )


class LiveView:
    """A redrawn dashboard: per backend progress and phase, per workload partial medians
    with n, elapsed and time left, the latest notes; the final state stays on screen."""

    def __init__(self, tracker: RunTracker, console: Console | None = None) -> None:
        self.tracker = tracker
        self.console = console or Console(stderr=True)
        self.outcome = ""  # set on exit: "finished" or "interrupted"
        # The refresh thread renders while the runner's thread updates the tracker.
        self._lock = threading.RLock()
        self.live = Live(
            console=self.console,
            refresh_per_second=4,
            transient=False,
            get_renderable=self.render,
        )

    def __enter__(self) -> LiveView:
        self.live.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        with self._lock:
            self.outcome = "finished" if exc_type is None else "interrupted"
            if exc_type is None:
                self.tracker.finish()
            else:
                self.tracker.finished_seconds = self.tracker.elapsed()
        # The last refresh (in Live.stop) prints this final state, which then stays.
        self.live.__exit__(None, None, None)

    def render(self) -> RenderableType:
        with self._lock:
            return Group(self._header(), self._backends(), self._medians(), *self._notes())

    def _header(self) -> Text:
        t = self.tracker
        head = Text("vmvc bench ", style="bold")
        if self.outcome:
            good = self.outcome == "finished" and not t.failed_trials and not t.errors()
            head.append(
                f"{self.outcome} after {clock(t.elapsed())}: {t.summary()}",
                style="bold green" if good else "bold red",
            )
            return head
        if not t.trials:
            head.append("planning", style="bold")  # the runner has not given its plan yet
            return head
        number = min(t.done_trials + (1 if t.running else 0), t.total_trials)
        head.append(f"trial {max(number, 1)}/{t.total_trials} · elapsed {clock(t.elapsed())} · ")
        head.append(t.describe_estimate(), style="bold")
        if t.current:
            head.append(f"\nnow: {t.current}", style="cyan")
        return head

    def _backends(self) -> Table:
        t = self.tracker
        table = Table(box=None, pad_edge=False, show_edge=False, padding=(0, 2, 0, 0))
        table.add_column("backend", style="bold", no_wrap=True)
        table.add_column("trials", no_wrap=True)
        table.add_column("", no_wrap=True)
        table.add_column("phase", overflow="ellipsis", no_wrap=True, max_width=60)
        for backend in t.backends:
            state = t.state[backend]
            planned = t.planned_trials(backend)
            count = Text(f"{state.trials_done}/{planned}")
            if state.failures:
                count.append(f" {state.failures} failed", style="bold red")
            phase_style = "red" if state.phase.startswith("FAILED") else ""
            if t.running and t.running[0] == backend:
                phase_style = "cyan"
            bar = text_bar(state.trials_done, planned, failed=bool(state.failures))
            table.add_row(backend, bar, count, Text(state.phase, style=phase_style))
        return table

    def _medians(self) -> Table:
        t = self.tracker
        planned = t.planned_repetitions()
        table = Table(box=None, pad_edge=False, show_edge=False, padding=(0, 2, 0, 0))
        label = "median (n / planned)" if self.outcome else "median so far (n / planned)"
        table.add_column(label, style="bold", no_wrap=True)
        for backend in t.backends:
            table.add_column(backend, justify="right", no_wrap=True)
        for workload in t.workloads:
            metric = t.headline(workload)
            cells = []
            for backend in t.backends:
                state = t.state[backend]
                partial = t.median(backend, workload)
                done = len(state.repetitions_done.get(workload, ()))
                if partial is None:
                    cell = Text(f"- n=0/{planned}", style="dim")
                else:
                    # No unit: the metric's name in the row says it, and width is scarce.
                    value, n, _unit = partial
                    cell = Text(fmt_value(value) + t.median_label(backend, workload))
                    # One value per repetition reads "n=2/3"; a workload with several per
                    # repetition (scale's counts, recovery's trials) says both.
                    progress = f"n={n}/{planned}" if n == done else f"n={n}, {done}/{planned}"
                    cell.append(f" {progress}", style="dim" if done >= planned else "")
                failed = state.failed_repetitions(workload)
                if failed:
                    cell.append(f" ✗{failed}", style="bold red")
                cells.append(cell)
            table.add_row(f"{workload} {metric or ''}".rstrip(), *cells)
        return table

    def _notes(self) -> list[Text]:
        shown = self.tracker.notes[-NOTES_SHOWN:]
        return [
            Text(f"✗ {n.text}" if n.error else f"• {n.text}", style="red" if n.error else "yellow")
            for n in shown
        ]

    def _refresh(self) -> None:
        self.live.refresh()

    # -- Observer -------------------------------------------------------------------------

    def notify(self, event: Event) -> None:
        with self._lock:
            self.tracker.notify(event)
        self._refresh()


class PlainLog:
    """One ASCII line per event, prefixed with the elapsed time: for pipes, CI logs and
    --plain. No redraw, no colour, no escape sequence of any kind."""

    def __init__(self, tracker: RunTracker, stream: TextIO | None = None) -> None:
        self.tracker = tracker
        self.stream = stream or sys.stderr
        self._number = 0

    def __enter__(self) -> PlainLog:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        t = self.tracker
        if exc_type is None:
            t.finish()
        outcome = "finished" if exc_type is None else "interrupted"
        self._line(f"{outcome} after {clock(t.elapsed())}: {t.summary()}")
        for backend in t.backends:
            parts = []
            for workload in t.workloads:
                partial = t.median(backend, workload)
                if partial is not None:
                    value, n, unit = partial
                    name = f"{workload} {t.headline(workload)}{t.median_label(backend, workload)}"
                    parts.append(f"{name} {fmt_value(value)} {unit} (n={n})")
            self._line(f"  {backend}: {'; '.join(parts) if parts else 'no values'}")

    def _line(self, text: str) -> None:
        # ASCII only: a CI log or a C locale must not choke on, or mangle, a line.
        safe = clean(text).encode("ascii", "replace").decode("ascii")
        indent = "  " if text.startswith("  ") else ""
        print(f"[{clock(self.tracker.elapsed())}] {indent}{safe}", file=self.stream, flush=True)

    def notify(self, event: Event) -> None:
        t = self.tracker
        t.notify(event)
        match event:
            case RunPlanned():
                self._line(f"plan: {_plan_line(t)}")
            case TrialStarted(trial=trial):
                self._number = t.done_trials + 1
                label = (
                    "warmup"
                    if trial.warmup
                    else f"repetition {trial.repetition + 1}/{t.planned_repetitions()}"
                )
                self._line(
                    f"trial {self._number}/{t.total_trials}: {trial.backend} {trial.kind} {label}"
                )
            case PhaseChanged(backend=backend, text=text):
                self._line(f"  {backend}: {text}")
            case SampleRecorded(sample=sample):
                self._sample(sample)
            case WorkloadFailed() | events.Note():
                note = t.notes[-1]
                self._line(f"{'error' if note.error else 'note'}: {note.text}")
            case TrialFinished(trial=trial) | TrialFailed(trial=trial):
                failed = isinstance(event, TrialFailed)
                if failed:
                    self._line(f"error: {t.notes[-1].text}")
                why = (
                    f": {event.message}" if isinstance(event, TrialFailed) and event.message else ""
                )
                self._line(
                    f"trial {self._number}/{t.total_trials} {'FAILED' if failed else 'done'}: "
                    f"{trial.backend} {trial.kind} in {t.last_seconds:.1f} s{why}; "
                    f"{t.describe_estimate()}"
                )

    def _sample(self, sample: Sample) -> None:
        t = self.tracker
        if not sample.warmup and t.headline(sample.workload) == sample.metric:
            count = sample.metadata.get("n")
            count = count if isinstance(count, int) else None
            name = metric_key(sample.metric, sample.metadata)
            # The median of this sample's own group (its N, its form), never another's.
            partial = t.median(sample.backend, sample.workload, count, name)
            summary = f" (median {fmt_value(partial[0])}, n={partial[1]})" if partial else ""
            self._line(
                f"  {sample.backend} {sample.workload} {name} = "
                f"{fmt_value(sample.value)} {sample.unit}{summary}"
            )
