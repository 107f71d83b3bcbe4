"""Distribution-free confidence intervals with a known coverage at every n.

Two methods, both exact rather than asymptotic, so an interval printed as "95 %" covers the
true value at least 95 % of the time at the very n it was computed from:

* **Median of one group** — the order-statistic interval (Le Boudec, *Performance Evaluation
  of Computer and Communication Systems*, 2010, Thm 2.1 and App. A): the number of values
  below the true median is Binomial(n, 1/2), so [X(j), X(n+1-j)] covers it with probability
  1 - 2 P(B <= j-1). The largest j whose coverage is still >= the confidence is used. For
  95 % this needs n >= 6 ([min, max] of 6 values covers 96.9 %); [min, max] of 3 values
  covers only 75 %, which is why three repetitions get no interval at all.
* **Ratio of two groups' medians** — the Mann-Whitney (Hodges-Lehmann) interval for the
  shift of the log values (Hollander & Wolfe, *Nonparametric Statistical Methods*, 3.3):
  among the n*m pairwise differences log a_i - log b_j, the c-th smallest and c-th largest
  bound the shift, where P(U <= c-1) <= alpha/2 under the exact null distribution of the
  Mann-Whitney U. Exact when the two groups differ by a scale factor (the usual model for
  timings and throughputs: same shape, other speed); for 95 % it needs 4 + 4 values.
  tests/unit/test_coverage.py measures its coverage on lognormal data, including groups
  with different spreads, where the scale model does not hold exactly.

No resampling, so the same values always give the same interval.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as sps

CONFIDENCE = 0.95
# Up to this many pairs (n*m) the exact null distribution of U is computed; beyond it the
# normal approximation with continuity correction is within a rank of the exact bound.
_EXACT_PAIRS = 2500


@functools.lru_cache(maxsize=256)
def median_ranks(n: int, confidence: float = CONFIDENCE) -> tuple[int, int, float] | None:
    """(j, k, coverage) with [X(j), X(k)] (1-based) covering the median, or None if n is too small.

    coverage is the exact probability (continuous data), at least ``confidence``.
    """
    if n < 1:
        return None
    alpha = 1.0 - confidence
    cdf = sps.binom.cdf(np.arange(n), n, 0.5)
    j = int(np.searchsorted(cdf, alpha / 2, side="right"))  # number of k with cdf(k) <= a/2
    j = min(j, (n + 1) // 2)
    if j < 1:
        return None
    return j, n + 1 - j, float(1.0 - 2.0 * cdf[j - 1])


@functools.lru_cache(maxsize=16)
def median_min_n(confidence: float = CONFIDENCE) -> int:
    """The fewest values whose median gets an interval at this confidence (6 for 95 %)."""
    n = 1
    while median_ranks(n, confidence) is None:
        n += 1
    return n


def median_ci(
    values: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """The order-statistic interval of the median, or None when n is too small for it."""
    array = np.sort(np.asarray(values, dtype=float))
    ranks = median_ranks(int(array.size), confidence)
    if ranks is None:
        return None
    j, k, _ = ranks
    return float(array[j - 1]), float(array[k - 1])


@functools.lru_cache(maxsize=64)
def _mwu_cdf(n: int, m: int) -> np.ndarray:
    """Exact null CDF of the Mann-Whitney U for sizes n and m (no ties).

    Recurrence on the largest of the n + m values: with probability n/(n+m) it belongs to
    the first group and exceeds all m of the second (U grows by m), else U is unchanged.
    """
    previous = [np.ones(1) for _ in range(m + 1)]  # n = 0: U is 0
    for i in range(1, n + 1):
        current = [np.ones(1)]
        for j in range(1, m + 1):
            size = i * j + 1
            first = np.zeros(size)
            first[j : j + previous[j].size] = previous[j]
            second = np.zeros(size)
            second[: current[j - 1].size] = current[j - 1]
            current.append(i / (i + j) * first + j / (i + j) * second)
        previous = current
    return np.cumsum(previous[m])


@functools.lru_cache(maxsize=256)
def shift_rank(n: int, m: int, confidence: float = CONFIDENCE) -> tuple[int, float] | None:
    """(c, coverage): the c-th smallest and largest pairwise difference bound the shift.

    None when the sizes are too small for this confidence.
    """
    if n < 1 or m < 1:
        return None
    alpha = 1.0 - confidence
    if n * m <= _EXACT_PAIRS:
        cdf = _mwu_cdf(n, m)
        c = int(np.searchsorted(cdf, alpha / 2, side="right"))  # P(U <= c-1) <= alpha/2
        if c < 1:
            return None
        return c, float(1.0 - 2.0 * cdf[c - 1])
    z = float(sps.norm.ppf(1.0 - alpha / 2))
    c = math.floor(n * m / 2 - z * math.sqrt(n * m * (n + m + 1) / 12) + 0.5)
    return (c, confidence) if c >= 1 else None


@functools.lru_cache(maxsize=16)
def ratio_min_n(confidence: float = CONFIDENCE) -> int:
    """The fewest values per group (equal sizes) for a ratio interval (4 for 95 %)."""
    n = 1
    while shift_rank(n, n, confidence) is None:
        n += 1
    return n


def ratio_ci(
    top: Sequence[float], bottom: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """Interval of median(top) / median(bottom) from the log-shift interval, or None.

    None when a group is too small for the confidence or holds a value <= 0 (no log).
    """
    a = np.asarray(top, dtype=float)
    b = np.asarray(bottom, dtype=float)
    if a.size == 0 or b.size == 0 or np.any(a <= 0) or np.any(b <= 0):
        return None
    rank = shift_rank(int(a.size), int(b.size), confidence)
    if rank is None:
        return None
    c, _ = rank
    differences = np.sort(np.subtract.outer(np.log(a), np.log(b)).ravel())
    return float(np.exp(differences[c - 1])), float(np.exp(differences[-c]))
