"""Trends across saved results: the median of every metric, run after run.

A comparison answers "did this change make it slower?"; history answers "when did it get
slower?". Each point is one run's median (raw values stay in the result files), sorted by
the run's start time and tagged with that host's acceleration, because a run under TCG next
to one under KVM is a step that no code change made. A metric measured per instance count
(scale) is one series per count (``all_ready_s@N=3``, see vmvc.keys): a pooled median
would move whenever the set of counts changes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich import box
from rich.table import Table
from rich.text import Text

from vmvc import stats as st
from vmvc.environment import host_accel
from vmvc.formatting import format_number
from vmvc.keys import display, split_key
from vmvc.results import ResultDocument, ResultFileError, load
from vmvc.safe_text import md_cell

SPARK_BARS = "▁▂▃▄▅▆▇█"


def _expand(paths: Path | str | Iterable[Path | str]) -> list[Path]:
    """Files as given; directories searched recursively for *.json, in name order."""
    items = [paths] if isinstance(paths, (Path, str)) else list(paths)
    files: list[Path] = []
    for item in map(Path, items):
        files.extend(sorted(item.rglob("*.json")) if item.is_dir() else [item])
    return files


def _start_key(doc: ResultDocument) -> tuple[int, datetime | str]:
    """Sort by real time when started_at parses (naive stamps taken as UTC), else as text."""
    try:
        moment = datetime.fromisoformat(doc.started_at)
    except ValueError:
        return 1, doc.started_at
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return 0, moment


def load_runs(
    paths: Path | str | Iterable[Path | str],
) -> tuple[list[tuple[Path, ResultDocument]], list[dict[str, str]]]:
    """(path, document) sorted by started_at, and the files that could not be read.

    A results directory may hold other JSON (exported reports): unreadable files are
    listed with their one-line reason instead of stopping the whole history.
    """
    runs, skipped = [], []
    for path in _expand(paths):
        try:
            runs.append((path, load(path)))
        except ResultFileError as exc:
            skipped.append({"path": str(path), "error": str(exc)})
    runs.sort(key=lambda item: _start_key(item[1]))
    return runs, skipped


def _matches(key: st.GroupKey, metric: str | None) -> bool:
    """--metric WORKLOAD/METRIC (every N of a scale metric, or one: METRIC@N=3), or WORKLOAD."""
    if not metric:
        return True
    workload, _, name = metric.partition("/")
    return key[2] == workload and (not name or name in (key[3], split_key(key[3])[0]))


def history(
    paths: Path | str | Iterable[Path | str], *, metric: str | None = None
) -> dict[str, Any]:
    """Median per run of every (host, backend, workload, metric), oldest run first.

    Returns {"runs": [...], "series": [{..., "points": [{run_id, started_at, accel,
    median, n}]}], "skipped": [{path, error}], "warnings": [...]}.
    """
    runs, skipped = load_runs(paths)
    series: dict[st.GroupKey, dict[str, Any]] = {}
    for _path, doc in runs:
        for key, samples in st.group_samples(doc).items():
            if not _matches(key, metric):
                continue
            entry = series.setdefault(key, _series_head(key, samples))
            entry["points"].append(
                {
                    "run_id": doc.run_id,
                    "started_at": doc.started_at,
                    "accel": host_accel(doc.environment, key[0]),
                    "median": float(np.median([s.value for s in samples])),
                    "n": len(samples),
                }
            )
    return {
        "runs": [_run_info(path, doc) for path, doc in runs],
        "series": list(series.values()),
        "skipped": skipped,
        "warnings": _warnings(runs),
    }


def _series_head(key: st.GroupKey, samples: list[Any]) -> dict[str, Any]:
    host, backend, workload, metric = key
    return {
        "host": host,
        "backend": backend,
        "workload": workload,
        "metric": metric,
        "unit": samples[0].unit,
        "higher_is_better": samples[0].higher_is_better,
        "points": [],
    }


def _run_info(path: Path, doc: ResultDocument) -> dict[str, Any]:
    return {
        "run_id": doc.run_id,
        "started_at": doc.started_at,
        "accel": doc.accel,
        "hostname": doc.environment.get("hostname"),
        "status": doc.status,
        "path": str(path),
    }


def _warnings(runs: list[tuple[Path, ResultDocument]]) -> list[str]:
    """Steps in a trend that come from the conditions, not from the code."""
    warnings = []
    accels = sorted(
        {
            host_accel(doc.environment, host) or "unknown"
            for _, doc in runs
            for host in {s.host for s in doc.measured()} or {"local"}
        }
    )
    if len(accels) > 1:
        warnings.append(
            f"runs mix accelerations ({', '.join(accels)}): VM numbers jump between them"
        )
    hosts = sorted({str(doc.environment.get("hostname") or "unknown") for _, doc in runs})
    if len(hosts) > 1:
        warnings.append(f"runs come from different hosts ({', '.join(hosts)})")
    return warnings


# ---------------------------------------------------------------- rendering


def sparkline(values: list[float | None]) -> str:
    """One block character per run, scaled between the series' min and max."""
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    top = len(SPARK_BARS) - 1
    chars = []
    for value in values:
        if value is None:
            chars.append(" ")
        elif high == low:
            chars.append(SPARK_BARS[top // 2])
        else:
            chars.append(SPARK_BARS[round((value - low) / (high - low) * top)])
    return "".join(chars)


def _num(value: float | None) -> str:
    """The reports' number format (vmvc.formatting), '-' where there is none."""
    return "-" if value is None else format_number(value)


def _cells(entry: dict[str, Any]) -> list[str]:
    medians = [p["median"] for p in entry["points"]]
    first, last = medians[0], medians[-1]
    change = f"{(last - first) / abs(first):+.1%}" if first else "-"
    accels = sorted({p["accel"] or "?" for p in entry["points"]})
    return [
        entry["backend"],
        f"{entry['workload']}/{display(entry['metric'])}",
        entry["unit"],
        str(len(medians)),
        _num(first),
        _num(last),
        change,
        sparkline(medians),
        ",".join(accels),
    ]


HEADERS = ["backend", "metric", "unit", "runs", "first", "last", "change", "trend", "accel"]


def render_table(result: dict[str, Any]) -> Table:
    table = Table(title=f"History of {len(result['runs'])} run(s)", box=box.SIMPLE_HEAD)
    for header in HEADERS:
        numeric = header in {"runs", "first", "last", "change"}
        table.add_column(header, justify="right" if numeric else "left", no_wrap=True)
    for entry in result["series"]:
        table.add_row(*[Text(cell) for cell in _cells(entry)])  # names from files: not markup
    return table


def to_markdown(result: dict[str, Any]) -> str:
    lines = [f"## History of {len(result['runs'])} run(s)", ""]
    lines += [f"> **Warning:** {md_cell(w)}" for w in result["warnings"]]
    if result["warnings"]:
        lines.append("")
    lines.append("| " + " | ".join(HEADERS) + " | medians (oldest first) |")
    lines.append("|" + "|".join("---" for _ in range(len(HEADERS) + 1)) + "|")
    for entry in result["series"]:
        medians = " → ".join(_num(p["median"]) for p in entry["points"])
        cells = [md_cell(cell) for cell in _cells(entry)]
        lines.append("| " + " | ".join(cells) + f" | {md_cell(medians)} |")
    if result["skipped"]:
        lines.append("")
        lines += [
            f"- skipped {md_cell(s['path'])}: {md_cell(s['error'])}" for s in result["skipped"]
        ]
    return "\n".join(lines) + "\n"


def to_json(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=1, allow_nan=False)
