"""One self-contained HTML page: verdicts, charts, tables and every raw sample.

The page works offline and asks no other host for anything: plotly.js, CSS and the small
script for sorting and filtering are inlined once, fonts are the system's. Jinja2 escapes
every string from the result; chart data travels as JSON in a
`<script type="application/json">` block with `<`, `>` and `&` written as \\u escapes.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from vmvc.export.charts import Chart, ChartBuilder, backend_color
from vmvc.export.view import EMULATION_WARNING, VERDICT_CLASSES, ReportView, build_view
from vmvc.formatting import format_exact, format_number, format_value
from vmvc.results import ResultDocument

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def render_html(doc: ResultDocument) -> str:
    view = build_view(doc)
    charts = ChartBuilder(view).build()
    sections: dict[str, list[Chart]] = {}
    for chart in charts:
        sections.setdefault(chart.section, []).append(chart)
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            view=view,
            doc=doc,
            sections=sections,
            chart_json=Markup(script_json([c.spec() for c in charts])),
            plotly_js=Markup(_plotly_js()) if charts else "",
            css=Markup(_asset("report.css", "</style")),
            js=Markup(_asset("report.js", "</script")),
            emulation_warning=EMULATION_WARNING,
            samples=_sample_rows(view),
            verdict_classes=VERDICT_CLASSES,
            fmt_value=format_value,
            short_label=view.short_label,
            colors={b: backend_color(doc, b, view.backends) for b in view.backends},
            confidence=view.statistics.confidence,
            config_json=json.dumps(doc.config, indent=1, sort_keys=True, default=str),
        )
    )


@functools.cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@functools.cache
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return _inert(get_plotlyjs(), "</script")


@functools.cache
def _asset(name: str, closer: str) -> str:
    return _inert((TEMPLATES / name).read_text(encoding="utf-8"), closer)


def _inert(text: str, closer: str) -> str:
    """Inlined code must not close its own <script>/<style> element early."""
    if closer in text.lower():
        raise ValueError(f"inline asset contains {closer!r}")
    return text


def script_json(value: Any) -> str:
    """JSON safe inside a <script> element: no tag, comment or entity can start in it."""
    text = json.dumps(_finite_only(value), ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _finite_only(value: Any) -> Any:
    """NaN and infinities are not JSON; JSON.parse would reject the whole block."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_only(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_only(v) for v in value]
    return value


def _sample_rows(view: ReportView) -> list[dict[str, Any]]:
    outliers: set[tuple] = set()
    for s in view.statistics.summaries:
        for rep in s.outliers:
            outliers.add((s.host, s.backend, s.workload, s.metric, rep))
    rows = []
    for s in view.doc.samples:
        flags = ["warmup"] if s.warmup else []
        if not s.warmup and (s.host, s.backend, s.workload, s.metric, s.repetition) in outliers:
            flags.append("outlier")
        rows.append(
            {
                "host": s.host,
                "backend": s.backend,
                "label": view.short_label(s.backend),
                "workload": s.workload,
                "metric": s.metric,
                "value": format_number(s.value),
                "exact": format_exact(s.value),
                "unit": s.unit,
                "repetition": s.repetition,
                "flags": ", ".join(flags),
                "metadata": ", ".join(
                    f"{k}={format_value(v)}" for k, v in sorted(s.metadata.items())
                ),
            }
        )
    return rows
