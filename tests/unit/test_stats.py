"""vmvc.stats: summaries, bootstrap CIs, ratios, outliers and the repetition rule."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from vmvc import intervals, stats
from vmvc.analysed import Statistics


def _cpu_doc(build_doc, values: dict[str, list[float]]):
    return build_doc({b: {"cpu/events_per_s": v} for b, v in values.items()})


def test_summary_of_a_normal_distribution(build_doc):
    values = np.random.default_rng(1).normal(100.0, 10.0, 200).tolist()
    summary = stats.summarize(_cpu_doc(build_doc, {"native": values})).summaries[0]
    assert summary.n == 200
    assert summary.median == pytest.approx(100, abs=2.5)
    assert summary.mean == pytest.approx(100, abs=2.5)
    assert summary.stdev == pytest.approx(10, rel=0.15)
    assert summary.cv == pytest.approx(0.1, rel=0.15)
    assert summary.ci_low < summary.median < summary.ci_high
    assert summary.ci_low < 100 < summary.ci_high
    assert summary.min == min(values) and summary.max == max(values)
    assert summary.values == values  # raw values kept, in repetition order
    assert summary.unit == "events/s" and summary.higher_is_better is True


def test_summary_of_a_skewed_distribution_centres_on_the_median(build_doc):
    values = np.random.default_rng(2).lognormal(0.0, 0.5, 101).tolist()
    summary = stats.summarize(_cpu_doc(build_doc, {"native": values})).summaries[0]
    assert summary.median == pytest.approx(1.0, abs=0.12)  # exp(mu)
    assert summary.mean > summary.median  # the right tail pulls the mean up
    assert summary.ci_low < 1.0 < summary.ci_high


def test_median_interval_is_the_order_statistic_interval():
    # Le Boudec Thm 2.1: [X(j), X(n+1-j)] with binomial(n, 1/2) bounds. At n = 6 that is
    # [min, max] (coverage 1 - 2/64); at n = 10 the 2nd and 9th values; below 6 nothing.
    assert stats.median_ci([3.0, 1.0, 2.0, 5.0, 4.0]) is None
    assert stats.median_ci([6.0, 1.0, 3.0, 2.0, 5.0, 4.0]) == (1.0, 6.0)
    assert stats.median_ci(list(range(1, 11))) == (2.0, 9.0)
    assert intervals.median_ranks(6) == (1, 6, pytest.approx(1 - 2 / 64))
    assert intervals.median_min_n() == 6
    # At 50 % confidence the interval would be much narrower (and cover half the time).
    assert intervals.median_ranks(10, 0.5)[:2] == (4, 7)


def test_ratio_interval_is_the_mann_whitney_interval_of_the_log_shift():
    assert intervals.ratio_min_n() == 4  # 1 / C(8, 4) = 1/70 <= 0.025; 3 + 3: 1/20 is not
    assert intervals.shift_rank(3, 3) is None
    assert intervals.shift_rank(4, 4) == (1, pytest.approx(1 - 2 / 70))
    # Tables of Hollander & Wolfe: 6 + 6 at two-sided 0.05 use the 6th smallest difference.
    assert intervals.shift_rank(6, 6)[0] == 6
    low, high = stats.ratio_ci([2.0, 2.2, 1.9, 2.1], [1.0, 1.05, 0.95, 1.02])
    # c = 1: the extreme pairwise ratios, min(top)/max(bottom) and max(top)/min(bottom).
    assert (low, high) == (pytest.approx(1.9 / 1.05), pytest.approx(2.2 / 0.95))
    assert stats.ratio_ci([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) is None  # 3 + 3 is too few
    assert stats.ratio_ci([0.0, 1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0]) is None  # no log of 0


def test_scale_metrics_are_grouped_per_instance_count(build_doc):
    doc = build_doc(
        {"docker": {"scale/all_ready_s": [0.18, 0.22, 0.31]}, "libvirt": {}},
    )
    for sample, n in zip(doc.samples, (1, 2, 3), strict=True):
        sample.metadata = {"n": n}
    summaries = stats.summarize(doc).summaries
    assert [s.metric for s in summaries] == [f"all_ready_s@N={n}" for n in (1, 2, 3)]
    assert all(s.n == 1 and s.outliers == [] for s in summaries)


def test_outliers_are_flagged_by_repetition_and_never_dropped(build_doc):
    values = [100.0, 101.0, 99.0, 102.0, 98.0, 100.5, 160.0]
    doc = _cpu_doc(build_doc, {"native": values})
    summary = stats.summarize(doc).summaries[0]
    assert summary.outliers == [7]  # the 7th repetition
    assert summary.n == 7 and 160.0 in summary.values
    assert summary.max == 160.0


def test_outlier_rule_is_the_modified_z_score():
    # Normal data: a 3.5 cut-off flags well under 1 % of values (MAD wobbles at n = 20).
    rng = np.random.default_rng(3)
    flagged = sum(len(stats.outlier_indices(rng.normal(50, 1, 20))) for _ in range(100))
    assert flagged / 2000 < 0.01
    assert stats.outlier_indices([10, 10.2, 9.9, 10.1, 30]) == [4]
    assert stats.outlier_indices([5, 5, 5, 5]) == []  # constant: nothing is unusual
    assert stats.outlier_indices([1.0, 100.0]) == []  # too few values to judge


def test_ratios_of_medians_with_independent_bootstrap(build_doc):
    rng = np.random.default_rng(4)
    doc = _cpu_doc(
        build_doc,
        {
            "native": (2313 * rng.uniform(0.95, 1.05, 9)).tolist(),
            "docker": (2437 * rng.uniform(0.95, 1.05, 9)).tolist(),
            "libvirt": (636 * rng.uniform(0.95, 1.05, 7)).tolist(),
        },
    )
    result = stats.summarize(doc)
    pairs = {(r.numerator, r.denominator) for r in result.ratios}
    assert pairs == {("libvirt", "native"), ("docker", "native"), ("libvirt", "docker")}
    vm = result.ratio("libvirt", "native", "cpu", "events_per_s")
    assert vm is not None
    native = result.summary("native", "cpu", "events_per_s")
    libvirt = result.summary("libvirt", "cpu", "events_per_s")
    assert vm.ratio == pytest.approx(libvirt.median / native.median)
    assert vm.ratio == pytest.approx(636 / 2313, rel=0.08)
    assert vm.ci_low < vm.ratio < vm.ci_high
    assert (vm.n_num, vm.n_den) == (7, 9)
    assert vm.unit == "events/s" and vm.host == "local"


def test_ratios_only_for_measured_pairs(build_doc):
    doc = _cpu_doc(build_doc, {"native": [1.0, 2.0, 3.0], "docker": [1.0, 2.0, 3.0]})
    result = stats.summarize(doc)
    assert [(r.numerator, r.denominator) for r in result.ratios] == [("docker", "native")]
    assert result.ratio("libvirt", "docker", "cpu", "events_per_s") is None
    assert result.summary("libvirt", "cpu", "events_per_s") is None


def test_single_repetition_has_no_ci(build_doc):
    doc = _cpu_doc(build_doc, {"native": [2313.0], "libvirt": [636.0, 640.0]})
    result = stats.summarize(doc)
    summary = result.summary("native", "cpu", "events_per_s")
    assert summary.n == 1 and summary.median == 2313.0
    assert summary.ci_low is None and summary.ci_high is None
    assert summary.stdev is None and summary.cv is None
    assert summary.outliers == []
    ratio = result.ratio("libvirt", "native", "cpu", "events_per_s")
    assert ratio.ratio == pytest.approx(638 / 2313)
    assert ratio.ci_low is None and ratio.ci_high is None


def test_constant_values_give_a_zero_width_ci(build_doc):
    doc = build_doc(
        {
            "docker": {"scale/density_instances": [1800.0] * 6},
            "libvirt": {"scale/density_instances": [90.0] * 6},
        }
    )
    result = stats.summarize(doc)
    summary = result.summary("docker", "scale", "density_instances")
    assert summary.ci_low == summary.ci_high == 1800.0
    assert summary.stdev == 0.0 and summary.outliers == []
    ratio = result.ratio("libvirt", "docker", "scale", "density_instances")
    assert ratio.ci_low == ratio.ci_high == pytest.approx(0.05)


def test_warmups_are_excluded(build_doc):
    doc = build_doc(
        {"native": {"cpu/events_per_s": [100.0, 101.0, 99.0]}},
        warmups={"native": {"cpu/events_per_s": [10.0]}},
    )
    summary = stats.summarize(doc).summaries[0]
    assert summary.n == 3 and summary.min == 99.0


def test_statistics_are_plain_json_and_reproducible(realistic_doc):
    first = stats.summarize(realistic_doc)
    again = stats.summarize(realistic_doc)
    assert first == again
    text = json.dumps(first.model_dump(), allow_nan=False)
    assert Statistics.model_validate(json.loads(text)) == first  # round-trips
    assert first.method == stats.METHOD
    assert (first.confidence, first.median_needs_n, first.ratio_needs_n) == (0.95, 6, 4)
    for summary in first.summaries:
        assert type(summary.median) is float


def test_ci_relative_width():
    assert stats.ci_relative_width([5.0] * 5) is None  # too few for an interval
    assert stats.ci_relative_width([5.0] * 6) == 0.0
    width = stats.ci_relative_width([90.0, 100.0, 110.0, 95.0, 105.0, 100.0])
    assert width == pytest.approx(0.2)  # [min, max] at n = 6
    assert stats.ci_relative_width([0.0, 0.0, 0.0, 1.0, -1.0, 0.0]) == math.inf


def test_repetition_rule_looks_at_the_verdict_ratios(build_doc):
    rng = np.random.default_rng(5)

    def doc(n: int, spread: float):
        return build_doc(
            {
                "docker": {"startup/total_s": list(0.2 * rng.uniform(1 - spread, 1 + spread, n))},
                "libvirt": {"startup/total_s": list(8 * rng.uniform(1 - spread, 1 + spread, n))},
            }
        )

    more, why = stats.repetition_status(doc(3, 0.01), 0.10)
    assert more and "libvirt/docker startup/total_s" in why and "too few" in why
    more, why = stats.repetition_status(doc(8, 0.01), 0.10)
    assert not more and "within 10%" in why
    more, why = stats.repetition_status(doc(8, 0.4), 0.10)
    assert more and "wide" in why
    # Five repetitions: the ratio has an interval (4 + 4 suffice), the medians none yet.
    assert stats.repetition_status(doc(5, 0.01), 0.10)[0] is False
    assert stats.needs_more_repetitions(build_doc({"native": {"cpu/events_per_s": [1.0]}}), 0.1)
    started = time.monotonic()
    stats.repetition_status(build_doc(
        {b: {f"io/m{i}_iops": list(rng.uniform(1, 2, 20)) for i in range(20)}
         for b in ("native", "docker", "libvirt")}
    ), 0.10)  # fmt: skip
    assert time.monotonic() - started < 3  # cheap enough to run after every trial


def test_groups_are_kept_apart_per_host(build_doc):
    a = build_doc({"native": {"cpu/events_per_s": [1.0, 2.0]}}, host="alpha")
    b = build_doc({"native": {"cpu/events_per_s": [5.0, 6.0]}}, host="beta")
    a.samples += b.samples
    result = stats.summarize(a)
    assert result.summary("native", "cpu", "events_per_s") is None  # no "local"
    assert result.summary("native", "cpu", "events_per_s", host="beta").median == 5.5
