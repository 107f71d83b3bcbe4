"""Per-N metrics as curves: scale's all_ready_s against N, per backend, and a line where one fits.

The scale workload records the time until N instances launched at once are all ready, for
each N (vmvc.keys: ``all_ready_s@N=3``), and each N already has its own summary (median,
interval). This step lines those medians up by N as one curve per (host, backend) and fits
a least-squares line through them. The slope (seconds per extra instance) is named only
where a line fits (vmvc.linefit: at least three counts, r² at the floor); elsewhere the
curve says why not, and the report shows the points alone. On a CPU-bound host the curve is
flat up to the core count and rises past it (each booting instance keeps a core busy): the
knee at the core count is then the finding, which a single slope would hide.

Part of the analysis step (vmvc.stats.summarize): computed once and stored with the
statistics; the claims (C05) and the reports read it there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vmvc.analysed import Curve, CurvePoint, Summary
from vmvc.keys import split_key
from vmvc.linefit import R2_FLOOR, fit_line
from vmvc.results import ResultDocument

# (workload, metric) measured per instance count and shown as a curve with a fitted line.
CURVE_METRICS: tuple[tuple[str, str], ...] = (("scale", "all_ready_s"),)
# A knee at the core count: flat (within this factor) from the smallest N to the core count,
# and more than this factor higher at the largest N past the cores.
KNEE_RISE = 1.25


def knee_at_cores(points: list[CurvePoint], cpus: int | None, rise: float = KNEE_RISE) -> bool:
    """A CPU-saturation knee: flat up to the host's CPU count, then rising.

    Needs two points at or below the core count (else flatness is not seen) and one past
    it: the median at the largest N <= cores within `rise` of the smallest N's, and the
    largest N's more than `rise` times the one at the cores.
    """
    if not cpus:
        return False
    below = [p for p in points if p.n <= cpus]
    past = [p for p in points if p.n > cpus]
    if len(below) < 2 or not past or below[0].median <= 0:
        return False
    flat = below[-1].median <= rise * below[0].median
    return flat and past[-1].median > rise * below[-1].median


def _conditions(
    doc: ResultDocument, host: str, backend: str, workload: str, metric: str
) -> dict[str, Any]:
    """host_cpus and the refused counts, from the latest sample of that curve."""
    found = [
        s
        for s in doc.measured()
        if (s.host, s.backend, s.workload, s.metric) == (host, backend, workload, metric)
    ]
    return dict(found[-1].metadata) if found else {}


def curve_of(
    summaries: list[Summary], r2_floor: float = R2_FLOOR, host_cpus: int | None = None
) -> Curve | None:
    """The curve through the summaries of one (host, backend, workload, metric@N=...).

    A line fits where vmvc.linefit says so and the curve has no knee at `host_cpus`: three
    points across a knee can reach r² 0.95 (1, 2, 5 on two cores), and a slope through a
    knee describes neither side of it.
    """
    by_n = {}
    for summary in summaries:
        _base, n = split_key(summary.metric)
        if n is not None:
            by_n[n] = summary
    if not by_n:
        return None
    first = next(iter(by_n.values()))
    base, _n = split_key(first.metric)
    points = [
        CurvePoint(
            n=n,
            median=s.median,
            ci_low=s.ci_low,
            ci_high=s.ci_high,
            min=s.min,
            max=s.max,
            repetitions=s.n,
        )
        for n, s in sorted(by_n.items())
    ]
    curve = Curve(
        host=first.host,
        backend=first.backend,
        workload=first.workload,
        metric=base,
        unit=first.unit,
        points=points,
        r2_floor=r2_floor,
        host_cpus=host_cpus,
        knee=knee_at_cores(points, host_cpus),
    )
    fit = fit_line([p.n for p in points], [p.median for p in points])
    if fit is None:
        curve.note = "no slope: one instance count is a point, not a curve"
        return curve
    curve.r_squared = fit.r_squared
    curve.fits = fit.fits(r2_floor) and not curve.knee
    curve.note = fit.why_not(r2_floor)
    if curve.knee:
        curve.note = (
            f"no slope: the curve bends at the {host_cpus} host CPUs "
            f"(r\N{SUPERSCRIPT TWO} = {fit.r_squared:.2f} across the knee)"
        )
    if curve.fits:
        curve.slope, curve.intercept = fit.slope, fit.intercept
    return curve


def build(
    doc: ResultDocument, summaries: Iterable[Summary], r2_floor: float = R2_FLOOR
) -> list[Curve]:
    """Every curve of CURVE_METRICS in the summaries, in the summaries' order."""
    groups: dict[tuple[str, str, str, str], list[Summary]] = {}
    for summary in summaries:
        base, n = split_key(summary.metric)
        if n is not None and (summary.workload, base) in CURVE_METRICS:
            key = (summary.host, summary.backend, summary.workload, base)
            groups.setdefault(key, []).append(summary)
    curves = []
    for (host, backend, workload, metric), members in groups.items():
        seen = _conditions(doc, host, backend, workload, metric)
        cpus = seen.get("host_cpus")
        cpus = cpus if isinstance(cpus, int) and not isinstance(cpus, bool) else None
        curve = curve_of(members, r2_floor, cpus)
        if curve is None:
            continue
        refused = seen.get("refused_counts")
        if isinstance(refused, list):
            curve.refused_counts = [n for n in refused if isinstance(n, int)]
        if isinstance(seen.get("refused"), str):
            curve.refused = seen["refused"]
        curves.append(curve)
    return curves
