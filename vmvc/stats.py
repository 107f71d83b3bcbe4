"""Statistics on samples: medians with exact distribution-free intervals, ratios, outliers.

Benchmarks on a shared host are noisy and skewed (a single hiccup makes one run slow), so
every summary is built around the median. Its interval is the order-statistic interval and
a ratio's is the Mann-Whitney interval of the log shift (vmvc.intervals): both have a known
coverage at the n they are computed from, and where n is too small for the stated confidence
no interval is given at all — the summary then says how many repetitions it needs, and the
reports show the range (min-max), which is not a confidence interval. Outliers are flagged
for the reader, never dropped: dropping them would hide exactly the variance a user needs.

A metric measured at several instance counts (scale) is one group per count
(vmvc.keys): ``all_ready_s@N=3``.

The result is a typed `vmvc.analysed.Statistics` of plain JSON values (floats, ints, lists,
None), stored in the result document's ``statistics`` field: it must render again years
later without numpy. Which backends are compared comes from their kinds (doc.backend_info),
never from their names: every other backend against the native baseline, and the VM against
the container.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats as sps

from vmvc import catalogue, curves
from vmvc import intervals as iv
from vmvc.analysed import Ratio, Statistics, Summary
from vmvc.keys import metric_key, split_key
from vmvc.results import ResultDocument, Sample

# Stored with the statistics: a report of an older result whose method differs recomputes.
METHOD = (
    "median: order-statistic interval (Le Boudec 2010, Thm 2.1); ratio of medians: "
    "Mann-Whitney interval of the log shift (Hodges-Lehmann)"
)
CONFIDENCE = iv.CONFIDENCE
# Iglewicz and Hoaglin's recommended cut-off for the modified Z-score.
OUTLIER_Z = 3.5
# 0.6745 is the 0.75 quantile of the standard normal: it makes MAD comparable to a stdev.
_MAD_TO_Z = 0.6745
# Used when MAD is 0 (more than half the values equal): mean absolute deviation * this is
# the same consistency constant for the mean deviation (sqrt(pi/2)).
_MEAN_AD_TO_SIGMA = 1.253314

GroupKey = tuple[str, str, str, str]  # host, backend, workload, metric (metric@N=n for scale)


def plain_float(value: Any) -> float | None:
    """numpy scalar -> float; NaN/inf -> None (JSON has no NaN)."""
    if value is None:
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def _median_of(values: np.ndarray) -> float:
    return float(np.median(values))


def group_key(sample: Sample) -> GroupKey:
    return (
        sample.host,
        sample.backend,
        sample.workload,
        metric_key(sample.metric, sample.metadata),
    )


def group_samples(doc: ResultDocument, host: str | None = None) -> dict[GroupKey, list[Sample]]:
    """Measured samples (warmups excluded) by (host, backend, workload, metric key).

    Groups are ordered host, then backend in report order (ResultDocument.order_backends),
    then workload and metric; samples inside a group are in repetition order. A metric
    measured per instance count is one group per count (see vmvc.keys).
    """
    order = {name: index for index, name in enumerate(doc.backends())}
    groups: dict[GroupKey, list[Sample]] = {}
    for sample in doc.measured():
        if host is not None and sample.host != host:
            continue
        groups.setdefault(group_key(sample), []).append(sample)

    def sort_key(key: GroupKey) -> tuple[str, int, str, str, str]:
        host, backend, workload, metric = key
        return host, order.get(backend, len(order)), backend, workload, metric

    return {
        key: sorted(groups[key], key=lambda s: (s.repetition, s.timestamp))
        for key in sorted(groups, key=sort_key)
    }


def median_ci(
    values: Sequence[float], *, confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """The median's order-statistic interval; None when n is too small (n < 6 for 95 %)."""
    return iv.median_ci(values, confidence)


def ratio_ci(
    top: Sequence[float], bottom: Sequence[float], *, confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """Interval of median(top) / median(bottom); None when too few values (< 4 each at 95 %)."""
    return iv.ratio_ci(top, bottom, confidence)


def outlier_indices(values: Sequence[float]) -> list[int]:
    """Indices whose modified Z-score exceeds 3.5 (Iglewicz-Hoaglin, as hyperfine warns).

    The median absolute deviation is robust where the stdev is not: one wild value cannot
    hide itself by inflating the spread. When MAD is 0 (most values identical), the mean
    absolute deviation is used instead, so a lone different value is still judged by scale
    rather than flagged just for not being equal. Fewer than 3 values: nothing to judge.
    """
    array = np.asarray(values, dtype=float)
    if array.size < 3:
        return []
    center = np.median(array)
    mad = sps.median_abs_deviation(array)
    if mad > 0:
        scores = _MAD_TO_Z * (array - center) / mad
    else:
        mean_ad = float(np.mean(np.abs(array - center)))
        if mean_ad == 0:
            return []
        scores = (array - center) / (_MEAN_AD_TO_SIGMA * mean_ad)
    return [int(i) for i in np.flatnonzero(np.abs(scores) > OUTLIER_Z)]


def describe(values: Sequence[float], *, confidence: float = CONFIDENCE) -> dict[str, Any]:
    """n, median, mean, stdev, cv, min, max and the median's interval of raw values.

    ``ci_level`` is the exact coverage of the order statistics chosen (at least
    ``confidence``); ``needs_n`` the fewest values that get an interval at all.
    """
    array = np.asarray(values, dtype=float)
    n = int(array.size)
    mean = float(np.mean(array))
    stdev = float(np.std(array, ddof=1)) if n >= 2 else None
    cv = stdev / abs(mean) if stdev is not None and mean != 0 else None
    ci = median_ci(array, confidence=confidence)
    ranks = iv.median_ranks(n, confidence)
    return {
        "n": n,
        "median": _median_of(array),
        "mean": mean,
        "stdev": plain_float(stdev),
        "cv": plain_float(cv),
        "min": float(np.min(array)),
        "max": float(np.max(array)),
        "ci_low": ci[0] if ci else None,
        "ci_high": ci[1] if ci else None,
        "ci_level": ranks[2] if ranks else None,
        "needs_n": iv.median_min_n(confidence),
    }


def _summary(key: GroupKey, samples: list[Sample], confidence: float) -> Summary:
    host, backend, workload, metric = key
    values = [s.value for s in samples]
    return Summary(
        host=host,
        backend=backend,
        workload=workload,
        metric=metric,
        unit=samples[0].unit,
        higher_is_better=samples[0].higher_is_better,
        **describe(values, confidence=confidence),
        outliers=[samples[i].repetition for i in outlier_indices(values)],
        values=[float(v) for v in values],
    )


def ratio_summary(
    top_values: Sequence[float],
    bottom_values: Sequence[float],
    confidence: float = CONFIDENCE,
) -> dict[str, Any]:
    """ratio of medians, its interval (None when too few values) and what it needs."""
    top, bottom = _median_of(np.asarray(top_values)), _median_of(np.asarray(bottom_values))
    ratio = top / bottom if bottom != 0 else None
    ci = ratio_ci(top_values, bottom_values, confidence=confidence) if ratio else None
    return {
        "ratio": plain_float(ratio),
        "ci_low": ci[0] if ci else None,
        "ci_high": ci[1] if ci else None,
        "n_num": len(top_values),
        "n_den": len(bottom_values),
        "needs_n": iv.ratio_min_n(confidence),
    }


def _ratio(numerator: Summary, denominator: Summary, confidence: float) -> Ratio:
    return Ratio(
        host=numerator.host,
        workload=numerator.workload,
        metric=numerator.metric,
        unit=numerator.unit,
        numerator=numerator.backend,
        denominator=denominator.backend,
        **ratio_summary(numerator.values, denominator.values, confidence),
    )


def _ratios(
    summaries: list[Summary], pairs: list[tuple[str, str]], confidence: float
) -> list[Ratio]:
    by_key = {(s.host, s.backend, s.workload, s.metric): s for s in summaries}
    measured = dict.fromkeys((s.host, s.workload, s.metric) for s in summaries)
    ratios = []
    for host, workload, metric in measured:
        for top, bottom in pairs:
            numerator = by_key.get((host, top, workload, metric))
            denominator = by_key.get((host, bottom, workload, metric))
            if numerator and denominator:
                ratios.append(_ratio(numerator, denominator, confidence))
    return ratios


def summarize(doc: ResultDocument, *, confidence: float = CONFIDENCE) -> Statistics:
    """The ``statistics`` block of a result document (see the module docstring).

    One summary per (host, backend, workload, metric key) of the measured samples, and one
    ratio of medians per (host, workload, metric key) for each pair of doc.ratio_pairs() that was
    measured. No resampling: the same file always gives the same intervals.
    """
    summaries = [_summary(key, samples, confidence) for key, samples in group_samples(doc).items()]
    return Statistics(
        curves=curves.build(doc, summaries),
        confidence=confidence,
        method=METHOD,
        median_needs_n=iv.median_min_n(confidence),
        ratio_needs_n=iv.ratio_min_n(confidence),
        summaries=summaries,
        ratios=_ratios(summaries, doc.ratio_pairs(), confidence),
    )


def relative_width(interval: tuple[float, float] | None, center: float) -> float | None:
    """(high - low) / |center|: None without an interval, inf for a zero center with spread."""
    if interval is None:
        return None
    width = interval[1] - interval[0]
    if center == 0:
        return 0.0 if width == 0 else math.inf
    return width / abs(center)


def ci_relative_width(values: Sequence[float], *, confidence: float = CONFIDENCE) -> float | None:
    """Relative width of the median's interval; None while n is too small for one."""
    array = np.asarray(values, dtype=float)
    return relative_width(median_ci(array, confidence=confidence), _median_of(array))


# The ratios the verdicts rest on (vmvc.claims), as (workload, metric, numerator kind,
# denominator kind). The sequential repetition rule waits for these, not for per-backend
# medians.
DECISION_RATIOS: tuple[tuple[str, str, str, str], ...] = (
    ("startup", "total_s", "vm", "container"),  # C01
    ("density", "first_instance_mib", "vm", "container"),  # C02
    *(
        (workload, metric, kind, "native")  # C03, per resource and kind
        for workload, metric in catalogue.steady_resources()
        for kind in ("vm", "container")
    ),
    ("clone", "clone_s", "vm", "container"),  # C04: the clone step alone (boot is C01)
    *(  # C08, per failure kind both a VM and a container can have
        ("recovery", f"recovery_s@{f.name}", "vm", "container")
        for f in catalogue.FAILURES
        if f.container
    ),
    ("density", "density_instances", "container", "vm"),  # C10
)
# C05: the VM/container ratio of the time until N are all ready, at the largest N both
# measured (a per-N key, so it is found at run time: see _largest_common_key).
C05_CURVE = ("scale", "all_ready_s", "vm", "container")
# The headline medians of a run with one backend, which has no ratio at all.
DECISION_MEDIANS = frozenset(
    {
        ("startup", "total_s"),
        ("density", "first_instance_mib"),
        ("cpu", "events_per_s"),
        ("memory", "bandwidth_mib_s"),
        ("io", "randread_4k_iops"),
        ("io", "randwrite_4k_iops"),
    }
)


def largest_common_key(top_keys: list[str], bottom_keys: list[str], base: str) -> str | None:
    """``base@N=k`` for the largest k both sides measured, or None."""
    counts = [
        {n for key in keys if (split := split_key(key))[0] == base and (n := split[1]) is not None}
        for keys in (top_keys, bottom_keys)
    ]
    common = counts[0] & counts[1]
    return metric_key(base, {"n": max(common)}) if common else None


def repetition_status(
    doc: ResultDocument,
    target_ci_width: float,
    *,
    host: str = "local",
    confidence: float = CONFIDENCE,
) -> tuple[bool, str]:
    """(more repetitions needed?, why) for one host's samples: the sequential stopping rule.

    Continue while any ratio a verdict uses (DECISION_RATIOS; else, without any ratio, the
    headline medians) has no interval yet (too few repetitions for the method) or an
    interval wider than ``target_ci_width`` relative to its estimate. The rule looks at the
    widths only, never at where an interval lies against a threshold, so stopping cannot
    favour a verdict; its coverage at the stopping time is simulated in
    tests/unit/test_coverage.py. The run's minimum and maximum repetitions bound it.
    """
    groups = {
        (backend, workload, metric): [s.value for s in samples]
        for (_h, backend, workload, metric), samples in group_samples(doc, host).items()
    }
    checked: list[tuple[str, float | None]] = []
    for workload, metric, top_kind, bottom_kind in DECISION_RATIOS:
        top, bottom = doc.first_of_kind(top_kind), doc.first_of_kind(bottom_kind)
        if top is None or bottom is None:
            continue
        a, b = groups.get((top, workload, metric)), groups.get((bottom, workload, metric))
        if a and b:
            bottom_median = _median_of(np.asarray(b))
            center = _median_of(np.asarray(a)) / bottom_median if bottom_median else 0.0
            width = relative_width(ratio_ci(a, b, confidence=confidence), center)
            checked.append((f"{top}/{bottom} {workload}/{metric}", width))
    workload, base, top_kind, bottom_kind = C05_CURVE
    top, bottom = doc.first_of_kind(top_kind), doc.first_of_kind(bottom_kind)
    if top is not None and bottom is not None:
        key = largest_common_key(
            [m for (b, w, m) in groups if (b, w) == (top, workload)],
            [m for (b, w, m) in groups if (b, w) == (bottom, workload)],
            base,
        )
        if key is not None:
            a, b = groups[(top, workload, key)], groups[(bottom, workload, key)]
            bottom_median = _median_of(np.asarray(b))
            center = _median_of(np.asarray(a)) / bottom_median if bottom_median else 0.0
            width = relative_width(ratio_ci(a, b, confidence=confidence), center)
            checked.append((f"{top}/{bottom} {workload}/{key}", width))
    ratios_found = bool(checked)
    for (backend, workload, metric), values in groups.items():
        if (workload, metric) in DECISION_MEDIANS and not ratios_found:
            width = ci_relative_width(values, confidence=confidence)
            checked.append((f"{backend} {workload}/{metric}", width))
    if not checked:
        return False, "no figure a verdict uses was measured"
    for name, width in checked:
        if width is None:
            return True, f"{name}: too few repetitions for a {confidence:.0%} interval"
        if width > target_ci_width:
            return True, f"{name}: interval {width:.1%} wide, target {target_ci_width:.0%}"
    return False, (
        f"every verdict ratio's {confidence:.0%} interval is within {target_ci_width:.0%} "
        f"({len(checked)} checked)"
    )


def needs_more_repetitions(
    doc: ResultDocument, target_ci_width: float, *, host: str = "local"
) -> bool:
    """True while repetition_status says more repetitions are needed."""
    return repetition_status(doc, target_ci_width, host=host)[0]
