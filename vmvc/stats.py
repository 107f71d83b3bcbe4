"""Statistics on samples: medians with bootstrap confidence intervals, ratios, outliers.

Benchmarks on a shared host are noisy and skewed (a single hiccup makes one run slow), so
every summary is built around the median, and its uncertainty comes from the bootstrap
rather than from a normal approximation. Outliers are flagged for the reader, never dropped:
dropping them would hide exactly the variance a user needs to see.

All results are plain JSON values (floats, ints, lists, None) because they are stored in the
result document's ``statistics`` field and must render again years later without numpy.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats as sps

from vmvc.results import ResultDocument, Sample

METHOD = "bootstrap percentile (BCa if possible) of the median"
# Ratios the claims need: VM and container against native, and VM against container.
RATIO_PAIRS: tuple[tuple[str, str], ...] = (
    ("libvirt", "native"),
    ("docker", "native"),
    ("libvirt", "docker"),
)
# Iglewicz and Hoaglin's recommended cut-off for the modified Z-score.
OUTLIER_Z = 3.5
# 0.6745 is the 0.75 quantile of the standard normal: it makes MAD comparable to a stdev.
_MAD_TO_Z = 0.6745
# Used when MAD is 0 (more than half the values equal): mean absolute deviation * this is
# the same consistency constant for the mean deviation (sqrt(pi/2)).
_MEAN_AD_TO_SIGMA = 1.253314
# needs_more_repetitions runs after every trial: a few hundred resamples are plenty to
# decide "narrow enough yet?", and keep the runner responsive.
QUICK_RESAMPLES = 400

GroupKey = tuple[str, str, str, str]  # host, backend, workload, metric
Statistic = Callable[..., Any]


def plain_float(value: Any) -> float | None:
    """numpy scalar -> float; NaN/inf -> None (JSON has no NaN)."""
    if value is None:
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def rng_for(seed: int, *key: object) -> np.random.Generator:
    """A generator per group: a group's CI must not change when another backend is added."""
    label = "\x1f".join(str(part) for part in key).encode()
    return np.random.default_rng([seed, zlib.crc32(label)])


def _median_of(values: np.ndarray) -> float:
    return float(np.median(values))


def group_samples(doc: ResultDocument) -> dict[GroupKey, list[Sample]]:
    """Measured samples (warmups excluded) by (host, backend, workload, metric).

    Groups are ordered host, then backend in the canonical order (native, docker, libvirt),
    then workload and metric; samples inside a group are in repetition order.
    """
    order = {name: index for index, name in enumerate(doc.backends())}
    groups: dict[GroupKey, list[Sample]] = {}
    for sample in doc.measured():
        key = (sample.host, sample.backend, sample.workload, sample.metric)
        groups.setdefault(key, []).append(sample)

    def sort_key(key: GroupKey) -> tuple[str, int, str, str, str]:
        host, backend, workload, metric = key
        return host, order.get(backend, len(order)), backend, workload, metric

    return {
        key: sorted(groups[key], key=lambda s: (s.repetition, s.timestamp))
        for key in sorted(groups, key=sort_key)
    }


def bootstrap_ci(
    samples: Sequence[Sequence[float]],
    statistic: Statistic,
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    rng: np.random.Generator | None = None,
) -> tuple[float, float] | None:
    """Bootstrap CI of ``statistic(*samples, axis=-1)``, samples resampled independently.

    BCa first (it corrects for bias and skew); when BCa is degenerate (ties, tiny n, the
    jackknife of a median collapsing) the percentile interval of the *same* bootstrap
    distribution is used. Returns None when any sample has fewer than 2 values (a single
    value has no spread to resample) and the point value itself when all data are constant
    (scipy would otherwise return NaN for a distribution it rightly calls degenerate).
    """
    arrays = [np.asarray(sample, dtype=float) for sample in samples]
    if not arrays or any(array.size < 2 for array in arrays):
        return None
    point = plain_float(statistic(*arrays, axis=-1))
    if point is None:
        return None
    if all(np.ptp(array) == 0 for array in arrays):
        return point, point
    with warnings.catch_warnings():
        # Degenerate BCa and 0/0 in its acceleration are handled below, not user news.
        warnings.simplefilter("ignore", category=RuntimeWarning)
        warnings.simplefilter("ignore", category=sps.DegenerateDataWarning)
        result = sps.bootstrap(
            tuple(arrays),
            statistic,
            n_resamples=resamples,
            confidence_level=confidence,
            method="BCa",
            paired=False,
            vectorized=True,
            rng=rng,
        )
        low, high = result.confidence_interval
        if not (np.isfinite(low) and np.isfinite(high)):
            result = sps.bootstrap(
                tuple(arrays),
                statistic,
                n_resamples=0,
                confidence_level=confidence,
                method="percentile",
                paired=False,
                vectorized=True,
                bootstrap_result=result,
            )
            low, high = result.confidence_interval
    low_f, high_f = plain_float(low), plain_float(high)
    if low_f is None or high_f is None:
        return None
    return low_f, high_f


def _median_stat(values: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(values, axis=axis)


def median_ci(
    values: Sequence[float],
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    rng: np.random.Generator | None = None,
) -> tuple[float, float] | None:
    """Bootstrap CI of the median (None for n < 2, the value itself for constant data).

    Note: with n = 3 no interval can be wider than [min, max], whose true coverage is only
    75 %; the nominal confidence is reached from about n = 5 on.
    """
    return bootstrap_ci([values], _median_stat, confidence=confidence, resamples=resamples, rng=rng)


def median_ratio_ci(
    numerators: Sequence[Sequence[float]],
    denominators: Sequence[Sequence[float]],
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    rng: np.random.Generator | None = None,
) -> tuple[float, float] | None:
    """CI of (sum of the numerators' medians) / (sum of the denominators' medians).

    With one group on each side this is the plain ratio of medians. Several groups serve
    phase sums such as clone + clone-to-ready. Every group is resampled independently:
    a VM's third repetition has nothing to do with a container's third repetition.
    """
    count = len(numerators)

    def ratio(*groups: np.ndarray, axis: int = -1) -> np.ndarray:
        top = sum(np.median(group, axis=axis) for group in groups[:count])
        bottom = sum(np.median(group, axis=axis) for group in groups[count:])
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.divide(top, bottom)

    return bootstrap_ci(
        [*numerators, *denominators],
        ratio,
        confidence=confidence,
        resamples=resamples,
        rng=rng,
    )


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


def describe(
    values: Sequence[float],
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    rng: np.random.Generator | None = None,
) -> dict[str, Any]:
    """n, median, mean, stdev, cv, min, max and the median's CI of raw values."""
    array = np.asarray(values, dtype=float)
    n = int(array.size)
    mean = float(np.mean(array))
    stdev = float(np.std(array, ddof=1)) if n >= 2 else None
    cv = stdev / abs(mean) if stdev is not None and mean != 0 else None
    ci = median_ci(array, confidence=confidence, resamples=resamples, rng=rng)
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
    }


def _summary(
    key: GroupKey, samples: list[Sample], confidence: float, resamples: int, seed: int
) -> dict[str, Any]:
    host, backend, workload, metric = key
    values = [s.value for s in samples]
    numbers = describe(values, confidence=confidence, resamples=resamples, rng=rng_for(seed, *key))
    return {
        "host": host,
        "backend": backend,
        "workload": workload,
        "metric": metric,
        "unit": samples[0].unit,
        "higher_is_better": samples[0].higher_is_better,
        **numbers,
        "outliers": [samples[i].repetition for i in outlier_indices(values)],
        "values": [float(v) for v in values],
    }


def _ratio(
    numerator: dict[str, Any],
    denominator: dict[str, Any],
    confidence: float,
    resamples: int,
    seed: int,
) -> dict[str, Any]:
    top, bottom = numerator["median"], denominator["median"]
    ratio = top / bottom if bottom != 0 else None
    ci = None
    if ratio is not None:
        rng = rng_for(
            seed,
            numerator["host"],
            numerator["backend"],
            denominator["backend"],
            numerator["workload"],
            numerator["metric"],
        )
        ci = median_ratio_ci(
            [numerator["values"]],
            [denominator["values"]],
            confidence=confidence,
            resamples=resamples,
            rng=rng,
        )
    return {
        "host": numerator["host"],
        "workload": numerator["workload"],
        "metric": numerator["metric"],
        "unit": numerator["unit"],
        "numerator": numerator["backend"],
        "denominator": denominator["backend"],
        "ratio": plain_float(ratio),
        "ci_low": ci[0] if ci else None,
        "ci_high": ci[1] if ci else None,
        "n_num": numerator["n"],
        "n_den": denominator["n"],
    }


def _ratios(
    summaries: list[dict[str, Any]], confidence: float, resamples: int, seed: int
) -> list[dict[str, Any]]:
    by_key = {(s["host"], s["backend"], s["workload"], s["metric"]): s for s in summaries}
    measured = dict.fromkeys((s["host"], s["workload"], s["metric"]) for s in summaries)
    ratios = []
    for host, workload, metric in measured:
        for top, bottom in RATIO_PAIRS:
            numerator = by_key.get((host, top, workload, metric))
            denominator = by_key.get((host, bottom, workload, metric))
            if numerator and denominator:
                ratios.append(_ratio(numerator, denominator, confidence, resamples, seed))
    return ratios


def summarize(
    doc: ResultDocument, *, confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """The ``statistics`` block of a result document (see the module docstring).

    One summary per (host, backend, workload, metric) of the measured samples, and one ratio
    of medians per (host, workload, metric) for each pair in RATIO_PAIRS that was measured.
    The seed makes the bootstrap reproducible: the same file always gives the same CIs.
    """
    summaries = [
        _summary(key, samples, confidence, resamples, seed)
        for key, samples in group_samples(doc).items()
    ]
    return {
        "confidence": confidence,
        "resamples": resamples,
        "seed": seed,
        "method": METHOD,
        "summaries": summaries,
        "ratios": _ratios(summaries, confidence, resamples, seed),
    }


def ci_relative_width(
    values: Sequence[float],
    *,
    confidence: float = 0.95,
    resamples: int = QUICK_RESAMPLES,
    seed: int = 0,
) -> float | None:
    """(ci_high - ci_low) / |median|: None for n < 2, inf for a zero median with spread."""
    ci = median_ci(values, confidence=confidence, resamples=resamples, rng=rng_for(seed))
    if ci is None:
        return None
    width = ci[1] - ci[0]
    center = abs(_median_of(np.asarray(values, dtype=float)))
    if center == 0:
        return 0.0 if width == 0 else math.inf
    return width / center


# The figures the dynamic repetition count waits for (the claims and report headlines).
DECISION_METRICS = frozenset(
    {
        ("startup", "total_s"),
        ("footprint", "total_mib"),
        ("cpu", "events_per_s"),
        ("memory", "bandwidth_mib_s"),
        ("io", "randread_4k_iops"),
        ("io", "randwrite_4k_iops"),
        ("io", "seqread_1m_mib_s"),
        ("io", "seqwrite_1m_mib_s"),
        ("clone", "clone_to_ready_s"),
        ("recovery", "recovery_s"),
        ("scale", "memory_per_instance_mib"),
    }
)


def needs_more_repetitions(
    doc: ResultDocument,
    target_ci_width: float,
    *,
    confidence: float = 0.95,
    resamples: int = QUICK_RESAMPLES,
    seed: int = 0,
) -> bool:
    """True while any measured metric's median is not yet known to ``target_ci_width``.

    A metric with a single value counts as not known (its CI is undefined), so the runner
    keeps adding repetitions until every metric has at least two and all CIs are narrow
    (or its own budget runs out). Only the metrics verdicts and headlines rest on decide:
    per-N scale points and sub-millisecond phases have huge relative CIs that more
    repetitions would not shrink in any useful way.
    """
    for (_host, _backend, workload, metric), samples in group_samples(doc).items():
        if (workload, metric) not in DECISION_METRICS:
            continue
        width = ci_relative_width(
            [s.value for s in samples], confidence=confidence, resamples=resamples, seed=seed
        )
        if width is None or width > target_ci_width:
            return True
    return False


def find(
    stats: dict[str, Any], backend: str, workload: str, metric: str, host: str = "local"
) -> dict[str, Any] | None:
    """The summary of one (host, backend, workload, metric), or None if not measured."""
    for summary in stats.get("summaries", []):
        if (summary["host"], summary["backend"], summary["workload"], summary["metric"]) == (
            host,
            backend,
            workload,
            metric,
        ):
            return summary
    return None


def find_ratio(
    stats: dict[str, Any],
    numerator: str,
    denominator: str,
    workload: str,
    metric: str,
    host: str = "local",
) -> dict[str, Any] | None:
    """The numerator/denominator ratio of one (host, workload, metric), or None."""
    for ratio in stats.get("ratios", []):
        if (
            ratio["host"],
            ratio["numerator"],
            ratio["denominator"],
            ratio["workload"],
            ratio["metric"],
        ) == (host, numerator, denominator, workload, metric):
            return ratio
    return None
