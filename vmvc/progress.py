"""Showing a run as it goes: a rich live dashboard on a terminal, plain log lines otherwise."""

from __future__ import annotations

import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from vmvc.results import Sample

# The figure shown per workload while the run goes (the one claims are judged on).
HEADLINE = {
    "startup": "total_s",
    "footprint": "total_mib",
    "cpu": "events_per_s",
    "memory": "bandwidth_mib_s",
    "io": "randread_4k_iops",
}


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


@dataclass
class BackendState:
    phase: str = "waiting"
    trials_done: int = 0
    failures: int = 0
    values: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


class RunTracker:
    """State shared by both views: what is running, what is done, how long is left."""

    def __init__(
        self,
        backends: list[str],
        workloads: list[str],
        trials_per_rep: int,
        repetitions: int,
        warmups: int,
    ) -> None:
        self.backends = backends
        self.workloads = workloads
        self.total_trials = trials_per_rep * (repetitions + warmups)
        self.repetitions = repetitions
        self.started = time.monotonic()
        self.done_trials = 0
        self.trial_seconds: list[float] = []
        self._trial_started = time.monotonic()
        self.current = ""
        self.state = {b: BackendState() for b in backends}

    def trial_started(self, backend: str, kind: str, repetition: int, warmup: bool) -> None:
        self._trial_started = time.monotonic()
        label = "warmup" if warmup else f"repetition {repetition + 1}/{self.repetitions}"
        self.current = f"{backend} · {kind} · {label}"

    def trial_finished(self, backend: str, ok: bool) -> None:
        self.done_trials += 1
        self.trial_seconds.append(time.monotonic() - self._trial_started)
        state = self.state[backend]
        state.trials_done += 1
        state.failures += 0 if ok else 1
        state.phase = "idle" if ok else "failed"

    def sample(self, sample: Sample) -> None:
        if not sample.warmup:
            self.state[sample.backend].values[f"{sample.workload}/{sample.metric}"].append(
                sample.value
            )

    def eta_seconds(self) -> float | None:
        if not self.trial_seconds:
            return None
        remaining = max(0, self.total_trials - self.done_trials)
        return remaining * statistics.mean(self.trial_seconds)

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


class LiveView:
    """A redrawn dashboard: per backend phase, progress, partial medians; elapsed and ETA."""

    def __init__(self, tracker: RunTracker, console: Console | None = None) -> None:
        self.tracker = tracker
        self.console = console or Console(stderr=True)
        self.messages: list[str] = []
        self.live = Live(
            self._render(), console=self.console, refresh_per_second=4, transient=False
        )

    def __enter__(self) -> LiveView:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.update(self._render())
        self.live.__exit__(None, None, None)

    def _render(self) -> Group:
        t = self.tracker
        header = Text.assemble(
            ("vmvc bench ", "bold"),
            f"trial {min(t.done_trials + 1, t.total_trials)}/{t.total_trials}  ",
            f"elapsed {_clock(t.elapsed())}  ",
            f"left ~{_clock(t.eta_seconds())}  ",
            (t.current, "cyan"),
        )
        table = Table(expand=False, box=None, pad_edge=False)
        table.add_column("backend", style="bold")
        table.add_column("phase")
        table.add_column("trials")
        shown = [w for w in t.workloads if w in HEADLINE]
        for workload in shown:
            table.add_column(f"{workload} ({HEADLINE[workload]})", justify="right")
        for backend in t.backends:
            state = t.state[backend]
            cells = []
            for workload in shown:
                values = state.values.get(f"{workload}/{HEADLINE[workload]}", [])
                cells.append(
                    f"{_fmt(statistics.median(values))} (n={len(values)})" if values else "–"
                )
            failed = f" [red]{state.failures} failed[/red]" if state.failures else ""
            table.add_row(backend, state.phase, f"{state.trials_done}{failed}", *cells)
        return Group(header, table, *[Text(m, style="yellow") for m in self.messages[-4:]])

    def _refresh(self) -> None:
        self.live.update(self._render())

    def trial_started(self, backend: str, kind: str, repetition: int, warmup: bool) -> None:
        self.tracker.trial_started(backend, kind, repetition, warmup)
        self._refresh()

    def phase(self, backend: str, text: str) -> None:
        self.tracker.state[backend].phase = text
        self._refresh()

    def sample(self, sample: Sample) -> None:
        self.tracker.sample(sample)
        self._refresh()

    def trial_finished(self, backend: str, kind: str, ok: bool, message: str) -> None:
        self.tracker.trial_finished(backend, ok)
        self._refresh()

    def message(self, text: str) -> None:
        self.messages.append(text)
        self._refresh()


class PlainLog:
    """One plain line per event: for pipes, CI logs and --plain (no redraw, no colour)."""

    def __init__(self, tracker: RunTracker, stream: TextIO | None = None) -> None:
        self.tracker = tracker
        self.stream = stream or sys.stderr

    def __enter__(self) -> PlainLog:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def _line(self, text: str) -> None:
        print(f"[{_clock(self.tracker.elapsed())}] {text}", file=self.stream, flush=True)

    def trial_started(self, backend: str, kind: str, repetition: int, warmup: bool) -> None:
        self.tracker.trial_started(backend, kind, repetition, warmup)
        t = self.tracker
        self._line(f"trial {t.done_trials + 1}/{t.total_trials}: {t.current}")

    def phase(self, backend: str, text: str) -> None:
        self.tracker.state[backend].phase = text
        self._line(f"  {backend}: {text}")

    def sample(self, sample: Sample) -> None:
        self.tracker.sample(sample)
        if HEADLINE.get(sample.workload) == sample.metric:
            self._line(
                f"  {sample.backend} {sample.workload} {sample.metric} = "
                f"{_fmt(sample.value)} {sample.unit}"
            )

    def trial_finished(self, backend: str, kind: str, ok: bool, message: str) -> None:
        self.tracker.trial_finished(backend, ok)
        eta = _clock(self.tracker.eta_seconds())
        self._line(f"  {backend} {kind}: {'done' if ok else 'FAILED: ' + message} (left ~{eta})")

    def message(self, text: str) -> None:
        self._line(f"note: {text}")
