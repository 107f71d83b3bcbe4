"""Showing a run as it goes: a rich live dashboard on a terminal, plain log lines otherwise.

`RunTracker` holds what both views show: which trial runs, what each backend and workload
has done, partial medians and the time left. `LiveView` redraws it in place on a terminal;
`PlainLog` writes one ASCII line per event (pipes, CI logs, `--plain`), never an escape code.
Both implement the runner's `Observer` protocol.
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

from vmvc.bench.lifecycle import LIFECYCLE_WORKLOADS
from vmvc.config import RunSettings
from vmvc.keys import metric_key, split_key
from vmvc.plan import instance_workloads
from vmvc.plan import trial_kinds as planned_kinds
from vmvc.results import ResultDocument, Sample
from vmvc.runner import INSTANCE_TRIAL, INSTANCE_WORKLOADS

# The figure shown per workload while the run goes (the one claims are judged on). A workload
# not listed shows the first metric it reports.
HEADLINE = {
    "startup": "total_s",
    "footprint": "total_mib",
    "cpu": "events_per_s",
    "memory": "bandwidth_mib_s",
    "io": "randread_4k_iops",
    "provision": "define_s",
    "clone": "clone_to_ready_s",
    "scale": "all_ready_s",
    "recovery": "recovery_s",
    "portability": "export_s",
}

NOTES_SHOWN = 4
# (backend, trial shape): the unit a duration is learnt for. The shape is the trial kind;
# for an instance trial also what it measures, which differs between repetitions when some
# workloads are limited to the first ones (a boot alone vs a boot and the steady workloads).
Pair = tuple[str, str]

# CSI/OSC escape sequences and other control characters: an error message can carry a
# guest's console output, which must neither garble the dashboard nor reach a plain log.
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)?|[\x00-\x1f\x7f]")
# How the runner words a failed trial or workload: "<backend> <workload> repetition <n>: ..."
_ERROR_NOTE = re.compile(r"^(?P<backend>\S+) (?P<workload>\S+) repetition (?P<number>-?\d+): ")


def clean(text: str) -> str:
    """`text` without escape sequences or control characters (tabs and newlines: a space)."""
    return _CONTROL.sub(lambda m: " " if m.group(0) in "\t\n\r" else "", text).strip()


def trial_kinds(workloads: list[str]) -> list[str]:
    """The trial kinds a measured repetition runs per backend when nothing is capped."""
    return [
        k for k in planned_kinds(workloads, {}, 0) if k in LIFECYCLE_WORKLOADS or k == "instance"
    ]


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

    The estimate learns a duration per (backend, trial kind): a VM trial under TCG takes
    many times a native one, so one mean over all trials would be wrong most of the run.
    """

    def __init__(
        self,
        backends: list[str],
        workloads: list[str],
        repetitions: int = 1,
        warmups: int = 0,
        *,
        settings: RunSettings | None = None,
        kinds: list[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        planned: Callable[[str, str], bool] | None = None,
    ) -> None:
        self.backends = list(backends)
        # Whether (trial kind, backend name) is planned: the runner's capability check.
        self.planned = planned or (lambda _kind, _backend: True)
        self.workloads = list(workloads)
        # The plan comes from the trial kinds (durations are learnt per kind and shape).
        self.fixed_kinds = kinds is not None
        self.kinds = list(kinds) if kinds is not None else trial_kinds(self.workloads)
        self.caps = dict(settings.workload_repetitions) if settings else {}
        self.repetitions = settings.repetitions if settings else repetitions
        self.warmups = settings.warmups if settings else warmups
        self.max_repetitions = max(
            settings.max_repetitions if settings else self.repetitions, self.repetitions
        )
        self.time_budget_s = settings.time_budget_s if settings else None
        self.clock = clock
        self.started = clock()
        self.state = {b: BackendState() for b in self.backends}
        self.done_trials = 0
        self.failed_trials = 0
        self.repetition: int | None = None  # of the trial running or last run
        self.warmup = False
        self.done_in_repetition: set[Pair] = set()
        self.running: Pair | None = None
        self.running_since = self.started
        self.current = ""
        self.durations: dict[Pair, list[float]] = defaultdict(list)
        self.failed_durations: dict[Pair, list[float]] = defaultdict(list)
        self.first_metric: dict[str, str] = {}
        self.units: dict[str, str] = {}
        self.notes: list[Note] = []
        self.finished_seconds: float | None = None
        # (backend, kind, repetition) a resumed run skips: they succeeded before
        self.skipped: set[tuple[str, str, int]] = set()

    # -- plan -----------------------------------------------------------------------------

    def kinds_for(self, repetition: int) -> list[str]:
        """The trial kinds of one repetition (negative: a warm-up), as the runner plans them."""
        if self.fixed_kinds:
            return list(self.kinds)
        planned = planned_kinds(self.workloads, self.caps, repetition)
        # a kind the runner planned that this module did not know (self.kinds grew)
        extra = [k for k in self.kinds if k not in trial_kinds(self.workloads)]
        return [k for k in planned if k in self.kinds] + (extra if repetition >= 0 else [])

    def shape(self, kind: str, repetition: int) -> str:
        if kind != INSTANCE_TRIAL or self.fixed_kinds:
            return kind
        return f"{kind}:{'+'.join(instance_workloads(self.workloads, self.caps, repetition))}"

    def pairs_for(self, repetition: int) -> list[Pair]:
        return [
            (b, self.shape(k, repetition))
            for k in self.kinds_for(repetition)
            for b in self.backends
            if self.planned(k, b)
        ]

    @property
    def pairs(self) -> list[Pair]:
        """The trials of a measured repetition beyond every cap (what extra ones run)."""
        return self.pairs_for(max([self.max_repetitions, *self.caps.values()]))

    def planned_repetitions(self) -> int:
        """Measured repetitions planned so far: the minimum, or more once the runner adds some."""
        current = self.repetition + 1 if self.repetition is not None else 0
        return max(self.repetitions, current)

    @property
    def total_trials(self) -> int:
        return sum(len(self.pairs_for(r)) for r in self._repetitions(self.planned_repetitions()))

    def _repetitions(self, measured: int) -> range:
        return range(-self.warmups, measured)

    def planned_trials(self, backend: str) -> int:
        return sum(
            1
            for r in self._repetitions(self.planned_repetitions())
            for b, _ in self.pairs_for(r)
            if b == backend
        )

    def resumed(self, doc: ResultDocument, host: str = "local") -> None:
        """Before a resumed run: the trials that succeeded before (the runner skips them)
        count as done, their recorded durations seed the estimate, their values the medians."""
        for trial in doc.trials:
            if trial.host != host or trial.status != "ok" or trial.backend not in self.state:
                continue
            self.skipped.add((trial.backend, trial.kind, trial.repetition))
            self.durations[(trial.backend, self.shape(trial.kind, trial.repetition))].append(
                trial.seconds
            )
            self.done_trials += 1
            self.state[trial.backend].trials_done += 1
        for sample in doc.samples:
            kind = INSTANCE_TRIAL if sample.workload in INSTANCE_WORKLOADS else sample.workload
            if sample.host == host and (sample.backend, kind, sample.repetition) in self.skipped:
                self.sample(sample)

    # -- events ---------------------------------------------------------------------------

    def trial_started(self, backend: str, kind: str, repetition: int, warmup: bool) -> None:
        if kind not in self.kinds:
            self.kinds.append(kind)  # a kind the runner plans that this module does not know
        if repetition != self.repetition:
            self.repetition = repetition
            self.done_in_repetition = set()
        self.warmup = warmup
        self.running = (backend, self.shape(kind, repetition))
        self.running_since = self.clock()
        label = "warmup" if warmup else f"repetition {repetition + 1}/{self.planned_repetitions()}"
        self.current = f"{backend} · {kind} · {label}"
        self.state[backend].phase = f"starting {kind}"

    def phase(self, backend: str, text: str) -> None:
        self.state[backend].phase = clean(text)

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

    def trial_finished(self, backend: str, kind: str, ok: bool, message: str = "") -> float:
        """Record the trial's outcome; returns how long it took."""
        pair = (backend, self.shape(kind, self.repetition if self.repetition is not None else 0))
        seconds = self.clock() - self.running_since
        (self.durations if ok else self.failed_durations)[pair].append(seconds)
        self.done_in_repetition.add(pair)
        self.running = None
        self.done_trials += 1
        state = self.state[backend]
        state.trials_done += 1
        if ok:
            # "done" only when no repetition can follow: the runner may add some up to the max.
            most = sum(
                1
                for r in self._repetitions(self.max_repetitions)
                for b, _ in self.pairs_for(r)
                if b == backend
            )
            state.phase = "done" if state.trials_done >= most else "waiting"
        else:
            self.failed_trials += 1
            state.failures += 1
            state.last_failure = clean(message)
            state.phase = f"FAILED: {state.last_failure}" if message else "FAILED"
        return seconds

    def message(self, text: str) -> Note:
        """A note from the runner; the runner's failure reports become errors of a workload."""
        text = clean(text)
        match = _ERROR_NOTE.match(text)
        error = bool(match and match["backend"] in self.state)
        if match and error:
            repetition = int(match["number"]) - 1  # the runner counts from 1 for people
            self.state[match["backend"]].failed_in[match["workload"]].add(repetition)
        note = Note(text, error)
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
        return sum(note.error for note in self.notes)

    def summary(self) -> str:
        """'4 trials, none failed' or '4 trials, 1 failed, 2 workload errors (...)'."""
        failed = f"{self.failed_trials} failed" if self.failed_trials else "none failed"
        text = f"{plural(self.done_trials, 'trial')}, {failed}"
        # The runner reports each failed trial once as an error; the rest are workloads
        # that failed inside a trial that went on.
        workload_errors = max(0, self.errors() - self.failed_trials)
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
            return f"{workload}/{metric}"
        return per_n.get(n) or per_n[max(per_n)]

    def median(
        self, backend: str, workload: str, n: int | None = None
    ) -> tuple[float, int, str] | None:
        """(median, n, unit) of the workload's headline metric so far, or None.

        A metric measured per instance count gives the median at count ``n`` (default: the
        largest count measured so far), never one pooled over the counts.
        """
        key = self.headline_key(backend, workload, n)
        values = self.state[backend].values.get(key) if key else None
        if not key or not values:
            return None
        return statistics.median(values), len(values), self.units.get(key, "")

    def median_label(self, backend: str, workload: str) -> str:
        """'@N=3' when the headline median is one instance count's, else ''."""
        key = self.headline_key(backend, workload)
        count = split_key(key.split("/", 1)[1])[1] if key else None
        return "" if count is None else f" @N={count}"

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
            # Not timed yet: borrow the slowest backend's time for this kind (or any kind).
            rough.add(pair[0])
            same_kind = [v for (_, kind), v in known.items() if kind == pair[1]]
            guess = max(same_kind or known.values())
            if pair == self.running:
                guess = max(guess, now - self.running_since)
            return guess

        def to_run(repetition: int) -> list[Pair]:
            return [
                p
                for p in self.pairs_for(repetition)
                if (p[0], p[1].split(":")[0], repetition) not in self.skipped
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
        extra = max(0, self.max_repetitions - 1 - last_planned)
        per_repetition = sum(cost(p) for p in self.pairs) if extra else 0.0
        if extra and self.time_budget_s is not None:
            # The runner starts another repetition only while its run is within the budget.
            starts_at = self.elapsed() + seconds
            if starts_at > self.time_budget_s:
                extra = 0
            elif per_repetition > 0:
                extra = min(extra, int((self.time_budget_s - starts_at) // per_repetition) + 1)
        ordered = [b for b in self.backends if b in rough]
        return Estimate(seconds, ordered, extra, extra * per_repetition)

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

    def trial_started(self, backend: str, kind: str, repetition: int, warmup: bool) -> None:
        with self._lock:
            self.tracker.trial_started(backend, kind, repetition, warmup)
        self._refresh()

    def phase(self, backend: str, text: str) -> None:
        with self._lock:
            self.tracker.phase(backend, text)
        self._refresh()

    def sample(self, sample: Sample) -> None:
        with self._lock:
            self.tracker.sample(sample)
        self._refresh()

    def trial_finished(self, backend: str, kind: str, ok: bool, message: str) -> None:
        with self._lock:
            self.tracker.trial_finished(backend, kind, ok, message)
        self._refresh()

    def message(self, text: str) -> None:
        with self._lock:
            self.tracker.message(text)
        self._refresh()


class PlainLog:
    """One ASCII line per event, prefixed with the elapsed time: for pipes, CI logs and
    --plain. No redraw, no colour, no escape sequence of any kind."""

    def __init__(self, tracker: RunTracker, stream: TextIO | None = None) -> None:
        self.tracker = tracker
        self.stream = stream or sys.stderr
        self._number = 0

    def __enter__(self) -> PlainLog:
        self._line(f"plan: {_plan_line(self.tracker)}")
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

    def trial_started(self, backend: str, kind: str, repetition: int, warmup: bool) -> None:
        t = self.tracker
        t.trial_started(backend, kind, repetition, warmup)
        self._number = t.done_trials + 1
        label = "warmup" if warmup else f"repetition {repetition + 1}/{t.planned_repetitions()}"
        self._line(f"trial {self._number}/{t.total_trials}: {backend} {kind} {label}")

    def phase(self, backend: str, text: str) -> None:
        self.tracker.phase(backend, text)
        self._line(f"  {backend}: {text}")

    def sample(self, sample: Sample) -> None:
        t = self.tracker
        t.sample(sample)
        if not sample.warmup and t.headline(sample.workload) == sample.metric:
            count = sample.metadata.get("n")
            count = count if isinstance(count, int) else None
            partial = t.median(sample.backend, sample.workload, count)
            summary = f" (median {fmt_value(partial[0])}, n={partial[1]})" if partial else ""
            name = metric_key(sample.metric, sample.metadata)
            self._line(
                f"  {sample.backend} {sample.workload} {name} = "
                f"{fmt_value(sample.value)} {sample.unit}{summary}"
            )

    def trial_finished(self, backend: str, kind: str, ok: bool, message: str) -> None:
        t = self.tracker
        seconds = t.trial_finished(backend, kind, ok, message)
        outcome = "done" if ok else "FAILED"
        why = f": {message}" if not ok and message else ""
        self._line(
            f"trial {self._number}/{t.total_trials} {outcome}: {backend} {kind} "
            f"in {seconds:.1f} s{why}; {t.describe_estimate()}"
        )

    def message(self, text: str) -> None:
        note = self.tracker.message(text)
        self._line(f"{'error' if note.error else 'note'}: {note.text}")
