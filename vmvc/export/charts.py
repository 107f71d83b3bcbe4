"""Plotly figure specs (plain dicts, no plotly import) for the HTML report.

Every trace that belongs to one backend carries `meta.backend`, so the page's backend
checkboxes can hide it. Text plotly draws (names, categories, hover text) passes through
`plot_text`: plotly interprets a subset of HTML in labels, escaped text shows literally.
Hover text uses the shared `format_number`, so a chart never shows other digits than the
tables. Colours go by the backend's kind (doc.backend_info), one palette per kind, so a
backend vmvc does not know gets a colour of its own too; titles come from vmvc.catalogue.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import numpy as np

from vmvc import catalogue
from vmvc.analysed import Summary
from vmvc.catalogue import form_rank, metric_title, order_metrics, workload_title
from vmvc.export.view import ReportView, metric_order, ratio_estimate, summary_index
from vmvc.formatting import format_estimate, format_number
from vmvc.keys import display, metric_key, split_form, split_key
from vmvc.results import ResultDocument, Sample

# Per kind, the first backend's colour first; a second backend of a kind takes the next.
KIND_COLORS = {
    "native": ("#64748b", "#475569"),
    "container": ("#2563eb", "#0891b2", "#7c3aed"),
    "vm": ("#ea580c", "#ca8a04", "#b91c1c"),
    "sandbox": ("#16a34a", "#9333ea", "#db2777", "#0d9488", "#65a30d"),
    "system": ("#0f766e", "#be185d"),
}
PHASE_COLORS = {
    "create_s": "#94a3b8",
    "spawn_s": "#a78bfa",
    "firmware_kernel_s": "#f97316",
    "initramfs_s": "#fbbf24",
    "userspace_s": "#a3e635",
    "start_s": "#60a5fa",
    "ready_s": "#34d399",
}
FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
GRID = "#e5e7eb"

# Resources whose ratio to native shows virtualization overhead (claim C03).
OVERHEAD_METRICS = tuple(
    (workload, metric, metric_title(workload, metric))
    for workload, metric in (
        ("cpu", "events_per_s"),
        ("memory", "bandwidth_mib_s"),
        ("memory", "latency_ns"),
        ("io", "randread_4k_iops"),
        ("io", "randwrite_4k_iops"),
        ("io", "randread_4k_lat_us"),
        ("io", "randwrite_4k_lat_us"),
        ("io", "seqread_1m_mib_s"),
        ("io", "seqwrite_1m_mib_s"),
    )
)
IO_GROUPS = (
    ("iops", ["randread_4k_iops", "randwrite_4k_iops"], "4k random IOPS"),
    ("lat", ["randread_4k_lat_us", "randwrite_4k_lat_us"], "4k random latency"),
    ("seq", ["seqread_1m_mib_s", "seqwrite_1m_mib_s"], "1M sequential throughput"),
)
LIFECYCLE = ("clone", "provision", "recovery", "portability")


def plot_text(value: Any) -> str:
    """Text for plotly labels, shown literally (plotly reads tags and entities in labels)."""
    return html.escape(str(value), quote=False)


@dataclass
class Chart:
    """One figure; `log` is None without a log-scale switch, else the initial state."""

    section: str
    id: str
    title: str
    data: list[dict[str, Any]]
    layout: dict[str, Any]
    note: str = ""
    log: bool | None = None

    def spec(self) -> dict[str, Any]:
        return {"id": self.id, "data": self.data, "layout": self.layout}


def backend_color(doc: ResultDocument, backend: str, backends: list[str]) -> str:
    """The colour of the backend's kind, the next one for each further backend of it."""
    kind = doc.record(backend).kind
    palette = KIND_COLORS[kind]
    same = [b for b in backends if doc.record(b).kind == kind]
    if backend not in same:
        return "#888888"
    return palette[same.index(backend) % len(palette)]


def layout(ytitle: str = "", **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "font": {"family": FONT, "size": 12, "color": "#1f2937"},
        "margin": {"l": 64, "r": 16, "t": 64, "b": 56},
        "height": 340,
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "legend": {"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0},
        "yaxis": {
            "title": {"text": plot_text(ytitle)},
            "gridcolor": GRID,
            "zeroline": False,
            "rangemode": "tozero",
            "exponentformat": "SI",
        },
        "xaxis": {"gridcolor": GRID, "automargin": True},
        "hoverlabel": {"font": {"family": FONT}},
        "bargap": 0.25,
    }
    base.update(extra)
    return base


def _error_bars(high: list[float], low: list[float]) -> dict[str, Any]:
    return {
        "type": "data",
        "symmetric": False,
        "array": high,
        "arrayminus": low,
        "color": "#111827",
        "thickness": 1.2,
        "width": 4,
    }


def _bar_text() -> dict[str, Any]:
    return {"textposition": "auto", "insidetextanchor": "middle", "cliponaxis": False}


def _n_order(n: Any) -> tuple[int, float, str]:
    if isinstance(n, int | float) and not isinstance(n, bool):
        return (0, float(n), "")
    return (1, 0.0, str(n))


class ChartBuilder:
    """All charts of a report, per host, in page order."""

    def __init__(self, view: ReportView) -> None:
        self.view = view
        self.stats = view.statistics
        self.summaries = summary_index(self.stats)
        self.measured = view.doc.measured()
        self.thresholds = view.doc.config.get("thresholds") or {}
        self.charts: list[Chart] = []

    def build(self) -> list[Chart]:
        hosts = sorted({s.host for s in self.measured})
        for index, host in enumerate(hosts):
            self.host, self.key = host, f"h{index}"
            self.suffix = f" — {host}" if len(hosts) > 1 else ""
            self._overhead()
            self._startup()
            self._bars("throughput", "cpu", ["events_per_s"], "CPU")
            self._bars(
                "throughput", "memory", ["bandwidth_mib_s", "copy_mib_s"], "Memory bandwidth"
            )
            self._bars("throughput", "memory", ["latency_ns"], "Memory latency", "latency")
            self._bars("footprint", "footprint", None, "Host memory of one idle instance")
            self._scale()
            for group, metrics, title in IO_GROUPS:
                self._bars("io", "io", metrics, title, group)
            for workload in LIFECYCLE:
                self._lifecycle(workload)
        return self.charts

    # -- helpers ------------------------------------------------------------------------
    def _samples(self, workload: str, metric: str | None = None) -> list[Sample]:
        """A workload's samples; of one metric, or of one metric key (recovery_s@instance)."""
        return [
            s
            for s in self.measured
            if s.host == self.host
            and s.workload == workload
            and (metric is None or metric in (s.metric, metric_key(s.metric, s.metadata)))
        ]

    def _metrics(self, workload: str) -> list[str]:
        """Metric keys in catalogue order; a metric measured per form gives one per form."""
        samples = self._samples(workload)
        ordered = []
        for name in order_metrics(workload, {s.metric for s in samples}):
            keys = {metric_key(s.metric, s.metadata) for s in samples if s.metric == name}
            ordered += sorted(keys, key=lambda k: form_rank(workload, split_form(k)[1]))
        return ordered

    def _backends(self, samples: list[Sample]) -> list[str]:
        names = {s.backend for s in samples}
        return [b for b in self.view.backends if b in names]

    def _summary(self, backend: str, workload: str, metric: str) -> Summary | None:
        return self.summaries.get((self.host, backend, workload, metric))

    def _color(self, backend: str) -> str:
        return backend_color(self.view.doc, backend, self.view.backends)

    def _trace(self, backend: str, **fields: Any) -> dict[str, Any]:
        return {
            "name": plot_text(self.view.label(backend)),
            "meta": {"backend": backend},
            "marker": {"color": self._color(backend)},
            **fields,
        }

    def _add(
        self,
        section: str,
        name: str,
        title: str,
        data: list,
        lay: dict,
        note: str = "",
        log: bool | None = None,
    ) -> None:
        if data:
            cid = f"{self.key}-{name}"
            self.charts.append(Chart(section, cid, title + self.suffix, data, lay, note, log))

    def _interval(self) -> str:
        """How whiskers read; no confidence named when no interval could be computed."""
        rows: list[Any] = [*self.stats.summaries, *self.stats.ratios]
        if any(r.ci_low is not None for r in rows):
            confidence = f"{self.stats.confidence:.0%}"
            return f"whiskers: its {confidence} interval where the repetitions allow one"
        return "no whiskers: too few repetitions for an interval"

    # -- charts ---------------------------------------------------------------------------
    def _overhead(self) -> None:
        data = []
        doc = self.view.doc
        native = doc.first_of_kind("native")
        for backend in [b for b in self.view.backends if native and b != native]:
            x, y, low, high, hover = [], [], [], [], []
            for workload, metric, label in OVERHEAD_METRICS:
                summary = self._summary(backend, workload, metric)
                key = (self.host, workload, metric)
                est = ratio_estimate(self.stats, self.summaries, key, (backend, native))
                if summary is None or est is None or not est[0]:
                    continue
                ratio, lo, hi = est
                if summary.higher_is_better:
                    speed, s_lo, s_hi = ratio, lo, hi
                else:  # latency: native/backend, so that higher is better everywhere
                    speed = 1 / ratio
                    s_lo, s_hi = (1 / hi if hi else None), (1 / lo if lo else None)
                x.append(plot_text(label))
                y.append(speed)
                low.append(speed - s_lo if s_lo is not None else 0)
                high.append(s_hi - speed if s_hi is not None else 0)
                hover.append(
                    plot_text(
                        f"{format_estimate(speed, s_lo, s_hi)} \N{MULTIPLICATION SIGN} native speed"
                    )
                    + "<br>"
                    + plot_text(f"{doc.record(backend).label}/native {metric}: ")
                    + format_estimate(ratio, lo, hi)
                )
            if x:
                data.append(
                    self._trace(
                        backend,
                        type="bar",
                        x=x,
                        y=y,
                        customdata=hover,
                        text=[format_number(v) for v in y],
                        error_y=_error_bars(high, low),
                        hovertemplate="%{x}<br>%{customdata}<extra>%{fullData.name}</extra>",
                        **_bar_text(),
                    )
                )
        threshold = self.thresholds.get("c03_overhead_fraction", 0.05)
        band = {
            "type": "rect",
            "xref": "paper",
            "x0": 0,
            "x1": 1,
            "y0": 1 - threshold,
            "y1": 1 + threshold,
            "fillcolor": "#16a34a",
            "opacity": 0.08,
            "line": {"width": 0},
            "layer": "below",
        }
        line = {
            "type": "line",
            "xref": "paper",
            "x0": 0,
            "x1": 1,
            "y0": 1,
            "y1": 1,
            "line": {"color": "#16a34a", "width": 1.5, "dash": "dash"},
        }
        lay = layout(
            "\N{MULTIPLICATION SIGN} native speed", barmode="group", shapes=[band, line], height=380
        )
        note = (
            f"Median ratio to native; {self._interval()}. Higher is better: "
            "throughput is divided by native, latency is native divided by the backend. "
            f"The green band is native ± {threshold:.0%}, the C03 threshold."
        )
        self._add("overhead", "overhead", "Speed relative to native", data, lay, note)

    def _startup(self) -> None:
        samples = self._samples("startup")
        backends = self._backends(samples)
        phases = [m for m in self._metrics("startup") if m != "total_s"]
        data: list[dict[str, Any]] = []
        shown: set[str] = set()
        for backend in backends:
            label = plot_text(self.view.label(backend))
            end = 0.0
            for phase in phases:
                s = self._summary(backend, "startup", phase)
                if s is None:
                    continue
                end += s.median
                estimate = format_estimate(s.median, s.ci_low, s.ci_high)
                data.append(
                    {
                        "type": "bar",
                        "orientation": "h",
                        "name": plot_text(phase),
                        "legendgroup": plot_text(phase),
                        "showlegend": phase not in shown,
                        "meta": {"backend": backend},
                        "y": [label],
                        "x": [s.median],
                        "marker": {
                            "color": PHASE_COLORS.get(phase, "#cbd5e1"),
                            "line": {"color": "#ffffff", "width": 1},
                        },
                        "customdata": [plot_text(f"{phase}: {estimate} s")],
                        "hovertemplate": "%{y}<br>%{customdata}<extra></extra>",
                    }
                )
                shown.add(phase)
            total = self._summary(backend, "startup", "total_s")
            if total is not None or end:
                value = total.median if total is not None else end
                data.append(
                    {
                        "type": "scatter",
                        "mode": "text",
                        "meta": {"backend": backend},
                        "showlegend": False,
                        "hoverinfo": "skip",
                        "y": [label],
                        "x": [max(end, 0)],
                        "text": [f"  {format_number(value)} s"],
                        "textposition": "middle right",
                        "cliponaxis": False,
                    }
                )
        lay = layout(
            "",
            barmode="stack",
            margin={"l": 16, "r": 64, "t": 24, "b": 48},
            legend={"orientation": "v", "x": 1.02, "xanchor": "left", "y": 1, "yanchor": "top"},
            xaxis={
                "title": {"text": "median seconds per phase"},
                "gridcolor": GRID,
                "rangemode": "tozero",
            },
            yaxis={"autorange": "reversed", "automargin": True},
        )
        note = "Median of each phase, total at the end of the bar; hover for the intervals."
        if any(d["type"] == "bar" for d in data):
            self._add("startup", "phases", "Start to ready, by phase", data, lay, note)

        totals = [s for s in samples if s.metric == "total_s"]
        data = []
        for backend in self._backends(totals):
            mine = [s for s in totals if s.backend == backend]
            data.append(
                self._trace(
                    backend,
                    type="box",
                    y=[s.value for s in mine],
                    x=[plot_text(self.view.label(backend))] * len(mine),
                    boxpoints="all",
                    jitter=0.35,
                    pointpos=0,
                    customdata=[
                        f"{format_number(s.value)} s, repetition {s.repetition}" for s in mine
                    ],
                    hovertemplate="%{customdata}<extra>%{fullData.name}</extra>",
                    line={"color": self._color(backend)},
                    fillcolor="rgba(0,0,0,0.03)",
                )
            )
        lay = layout("total_s, seconds", showlegend=False)
        lay["yaxis"]["type"] = "log"
        note = "Each dot is one repetition; the box spans the quartiles, the line is the median."
        self._add("startup", "total", "Start to ready, every repetition", data, lay, note, True)

    def _bars(
        self, section: str, workload: str, metrics: list[str] | None, title: str, group: str = "all"
    ) -> None:
        metrics = [m for m in (metrics or self._metrics(workload)) if self._samples(workload, m)]
        if not metrics:
            return
        units = {self._samples(workload, m)[0].unit for m in metrics}
        data = []
        for backend in self._backends(self._samples(workload)):
            x, y, low, high, hover = [], [], [], [], []
            for metric in metrics:
                s = self._summary(backend, workload, metric)
                if s is None:
                    continue
                lo, hi = s.ci_low, s.ci_high
                x.append(plot_text(display(metric)))
                y.append(s.median)
                low.append(s.median - lo if lo is not None else 0)
                high.append(hi - s.median if hi is not None else 0)
                text = f"{format_estimate(s.median, lo, hi)} {s.unit} (n={s.n})"
                hover.append(plot_text(text))
            if x:
                data.append(
                    self._trace(
                        backend,
                        type="bar",
                        x=x,
                        y=y,
                        customdata=hover,
                        text=[format_number(v) for v in y],
                        error_y=_error_bars(high, low),
                        hovertemplate="%{x}: %{customdata}<extra>%{fullData.name}</extra>",
                        **_bar_text(),
                    )
                )
        lay = layout(units.pop() if len(units) == 1 else "", barmode="group")
        note = f"Median; {self._interval()}."
        self._add(section, f"{workload}-{group}", title, data, lay, note, False)

    def _lifecycle(self, workload: str) -> None:
        """Bars per metric key (one per failure kind for recovery); an outcome recorded
        instead of a time (no_restart_watch_s) is no bar: the tables say it in words."""
        keys = {metric_key(s.metric, s.metadata) for s in self._samples(workload)}
        metrics = [
            key
            for key in metric_order(workload, keys)
            if not getattr(catalogue.metric(workload, split_key(key)[0]), "instead_of", None)
        ]
        units = sorted({self._samples(workload, m)[0].unit for m in metrics})
        for unit in units:
            chosen = [m for m in metrics if self._samples(workload, m)[0].unit == unit]
            title = workload_title(workload)
            if len(units) > 1:
                title = f"{title}: {unit}"
            slug = "".join(c if c.isalnum() else "_" for c in unit)
            self._bars("lifecycle", workload, chosen, title, f"u{units.index(unit)}{slug}")

    def _scale(self) -> None:
        for metric in ("all_ready_s", "memory_mib"):
            title = metric_title("scale", metric)
            title = title[:1].upper() + title[1:]
            samples = [s for s in self._samples("scale", metric) if "n" in s.metadata]
            data = []
            for backend in self._backends(samples):
                by_n: dict[Any, list[float]] = {}
                for s in samples:
                    if s.backend == backend:
                        by_n.setdefault(s.metadata["n"], []).append(s.value)
                ns = sorted(by_n, key=_n_order)
                medians = [float(np.median(by_n[n])) for n in ns]
                unit = samples[0].unit
                data.append(
                    self._trace(
                        backend,
                        type="scatter",
                        mode="lines+markers",
                        x=[plot_text(n) if not isinstance(n, int | float) else n for n in ns],
                        y=medians,
                        line={"color": self._color(backend), "width": 2},
                        error_y=_error_bars(
                            [max(by_n[n]) - m for n, m in zip(ns, medians, strict=True)],
                            [m - min(by_n[n]) for n, m in zip(ns, medians, strict=True)],
                        )
                        | {"color": self._color(backend)},
                        customdata=[
                            plot_text(f"{format_number(m)} {unit}, {len(by_n[n])} repetitions")
                            for n, m in zip(ns, medians, strict=True)
                        ],
                        hovertemplate="N=%{x}: %{customdata}<extra>%{fullData.name}</extra>",
                    )
                )
            if not data:
                continue
            fits = self._fitted_lines(metric)
            data += [line for line, _text in fits if line]
            xaxis = {"title": {"text": "instances started together (N)"}, "gridcolor": GRID}
            ticks = sorted({x for d in data for x in d["x"] if isinstance(x, int | float)})
            if ticks:  # linear axis: a constant cost per instance shows as a straight line
                xaxis |= {"tickvals": ticks, "rangemode": "tozero"}
            lay = layout(samples[0].unit, xaxis=xaxis)
            note = "Median over repetitions; whiskers show the fastest and slowest repetition."
            if fits:
                note += " " + " ".join(text for _line, text in fits)
            self._add("scale", f"scale-{metric}", title, data, lay, note, False)

    def _fitted_lines(self, metric: str) -> list[tuple[dict[str, Any], str]]:
        """Per curve of this host: a dashed fitted line where one fits (else none), and the
        sentence for the caption: the slope and r², or why there is no slope."""
        found = []
        for curve in self.stats.curves:
            if (curve.host, curve.workload, curve.metric) != (self.host, "scale", metric):
                continue
            label = self.view.short_label(curve.backend)
            if not (curve.fits and curve.slope is not None and curve.intercept is not None):
                found.append(({}, f"{label}: {curve.note}."))
                continue
            xs = [curve.points[0].n, curve.points[-1].n]
            r2 = (
                "" if curve.r_squared is None else f", r\N{SUPERSCRIPT TWO} = {curve.r_squared:.2f}"
            )
            text = f"{label}: {format_number(curve.slope)} {curve.unit} per extra instance{r2}."
            line = self._trace(
                curve.backend,
                type="scatter",
                mode="lines",
                x=xs,
                y=[curve.intercept + curve.slope * x for x in xs],
                line={"color": self._color(curve.backend), "width": 1, "dash": "dash"},
                hoverinfo="skip",
                showlegend=False,
            )
            found.append((line, text))
        return found
