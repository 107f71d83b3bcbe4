"""Simulated coverage of every interval method vmvc prints as "95 %".

Each test draws many experiments from skewed data (lognormal, CV 10 %) whose true median
(or ratio of medians) is known, computes the interval exactly as the reports do, and counts
how often it holds the truth. Seeds are fixed, so the tests are stable; 4000 experiments put
the binomial standard error of a coverage near 95 % at 0.35 points.

Coverage measured when this file was written (4000 experiments each):
median (order statistics)            n = 6: 96.6 %, n = 10: 98.2 %, n = 20: 95.9 %
ratio of medians (Mann-Whitney)      n = 6: 96.2 %, n = 10: 95.5 %, n = 20: 95.7 %
ratio, CV 5 % over CV 10 %           n = 6: 96.0 %, n = 10: 94.8 %, n = 20: 94.1 %
ratio, CV 5 % over CV 20 %           n = 6: 95.6 %, n = 10: 93.5 %, n = 20: 92.6 %
phase-sum ratio (C04)                n = 6: 95.9 %, n = 10: 95.6 %, n = 20: 95.0 %
sequential stopping rule (min 5, max 15, target width 10 %, ratio interval): 94.5 % at CV 10 %
(stops at 15.0 repetitions on average), 96.4 % at CV 3 % (stops at 5.7 on average)
"""

from __future__ import annotations

import numpy as np
import pytest

from vmvc import intervals, stats

EXPERIMENTS = 4000
NOMINAL = 0.95
FLOOR = 0.93  # what the issue asks at nominal 95 %


def lognormal(rng: np.random.Generator, median: float, cv: float, size) -> np.ndarray:
    """Lognormal values with this median and coefficient of variation."""
    sigma = np.sqrt(np.log1p(cv**2))
    return median * rng.lognormal(0.0, sigma, size)


def covered(interval: tuple[float, float] | None, truth: float) -> bool:
    assert interval is not None
    return interval[0] <= truth <= interval[1]


@pytest.mark.parametrize("n", [6, 10, 20])
def test_median_interval_coverage(n):
    rng = np.random.default_rng(600 + n)
    data = lognormal(rng, 100.0, 0.10, (EXPERIMENTS, n))
    hits = sum(covered(stats.median_ci(row), 100.0) for row in data)
    coverage = hits / EXPERIMENTS
    assert coverage >= FLOOR, coverage
    # The method's own promise: never below its exact level (minus simulation noise).
    assert coverage >= intervals.median_ranks(n)[2] - 0.015, coverage


@pytest.mark.parametrize("n", [6, 10, 20])
@pytest.mark.parametrize(
    ("cvs", "floor"),
    [
        ((0.10, 0.10), FLOOR),  # the case: exact under the scale model
        ((0.05, 0.10), FLOOR),  # spreads differ by 2x: the scale model is violated
        # Spreads differing by 4x (Behrens-Fisher): 92.6 % at n = 20, a known limit of the
        # method, said in the README; guarded so that it cannot get worse unnoticed.
        ((0.05, 0.20), 0.91),
    ],
)
def test_ratio_interval_coverage(n, cvs, floor):
    # Both sides lognormal: a VM at 8 s over a container at 0.2 s (true ratio 40).
    rng = np.random.default_rng(700 + n)
    tops = lognormal(rng, 8.0, cvs[0], (EXPERIMENTS, n))
    bottoms = lognormal(rng, 0.2, cvs[1], (EXPERIMENTS, n))
    hits = sum(covered(stats.ratio_ci(a, b), 40.0) for a, b in zip(tops, bottoms, strict=True))
    assert hits / EXPERIMENTS >= floor, hits / EXPERIMENTS


@pytest.mark.parametrize("n", [6, 10, 20])
def test_phase_sum_ratio_coverage(n):
    # C04: clone (small, noisy) + clone-to-ready per repetition, VM over container. The
    # truth is the ratio of the medians of the per-repetition sums, found by simulation.
    rng = np.random.default_rng(800 + n)

    def sums(clone: float, ready: float, size) -> np.ndarray:
        return lognormal(rng, clone, 0.3, size) + lognormal(rng, ready, 0.10, size)

    truth = float(np.median(sums(0.02, 8.61, 2_000_000)) / np.median(sums(0.05, 0.27, 2_000_000)))
    tops, bottoms = sums(0.02, 8.61, (EXPERIMENTS, n)), sums(0.05, 0.27, (EXPERIMENTS, n))
    hits = sum(covered(stats.ratio_ci(a, b), truth) for a, b in zip(tops, bottoms, strict=True))
    assert hits / EXPERIMENTS >= FLOOR, hits / EXPERIMENTS


@pytest.mark.parametrize("cv", [0.10, 0.03])
def test_sequential_stopping_rule_keeps_coverage(cv):
    # The runner's rule (vmvc.stats.repetition_status): from the minimum of 5, add one
    # repetition until the ratio's interval is within 10 % of it, at most 15. Optional
    # stopping could bias an interval; stopping on its width alone keeps coverage.
    rng = np.random.default_rng(900)
    experiments, low_n, high_n, target = 2000, 5, 15, 0.10
    hits, stopped_early = 0, 0
    for _ in range(experiments):
        top, bottom = lognormal(rng, 8.0, cv, high_n), lognormal(rng, 0.2, cv, high_n)
        for n in range(low_n, high_n + 1):
            interval = stats.ratio_ci(top[:n], bottom[:n])
            ratio = np.median(top[:n]) / np.median(bottom[:n])
            width = stats.relative_width(interval, ratio)
            if width is not None and width <= target:
                stopped_early += n < high_n
                break
        hits += covered(interval, 40.0)
    assert hits / experiments >= FLOOR, hits / experiments
    if cv < 0.05:
        assert stopped_early > experiments / 2  # the rule does stop early on quiet data


def test_too_few_repetitions_get_no_interval_at_all():
    # [min, max] of 3 values covers the median only 75 % of the time: never a "95 %" CI.
    assert stats.median_ci([1.0, 2.0, 3.0]) is None
    assert stats.ratio_ci([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) is None
    rng = np.random.default_rng(3)
    data = lognormal(rng, 100.0, 0.10, (EXPERIMENTS, 3))
    ranges = np.mean((data.min(axis=1) <= 100.0) & (data.max(axis=1) >= 100.0))
    assert ranges == pytest.approx(0.75, abs=0.02)
