"""vmvc.stats: summaries, bootstrap CIs, ratios, outliers and the repetition rule."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from vmvc import stats


def _cpu_doc(build_doc, values: dict[str, list[float]]):
    return build_doc({b: {"cpu/events_per_s": v} for b, v in values.items()})


def test_summary_of_a_normal_distribution(build_doc):
    values = np.random.default_rng(1).normal(100.0, 10.0, 200).tolist()
    summary = stats.summarize(_cpu_doc(build_doc, {"native": values}))["summaries"][0]
    assert summary["n"] == 200
    assert summary["median"] == pytest.approx(100, abs=2.5)
    assert summary["mean"] == pytest.approx(100, abs=2.5)
    assert summary["stdev"] == pytest.approx(10, rel=0.15)
    assert summary["cv"] == pytest.approx(0.1, rel=0.15)
    assert summary["ci_low"] < summary["median"] < summary["ci_high"]
    assert summary["ci_low"] < 100 < summary["ci_high"]
    assert summary["min"] == min(values) and summary["max"] == max(values)
    assert summary["values"] == values  # raw values kept, in repetition order
    assert summary["unit"] == "events/s" and summary["higher_is_better"] is True


def test_summary_of_a_skewed_distribution_centres_on_the_median(build_doc):
    values = np.random.default_rng(2).lognormal(0.0, 0.5, 101).tolist()
    summary = stats.summarize(_cpu_doc(build_doc, {"native": values}))["summaries"][0]
    assert summary["median"] == pytest.approx(1.0, abs=0.12)  # exp(mu)
    assert summary["mean"] > summary["median"]  # the right tail pulls the mean up
    assert summary["ci_low"] < 1.0 < summary["ci_high"]


def test_median_ci_covers_the_true_median_about_95_percent_of_the_time():
    # 200 simulated experiments of 15 repetitions from a skewed distribution whose true
    # median is 1. The median's bootstrap CI is known to under-cover slightly at n = 15
    # (the bootstrap distribution of a median is discrete); 88-99 % is the honest band.
    started = time.monotonic()
    rng = np.random.default_rng(20240501)
    hits = 0
    experiments = 200
    for _ in range(experiments):
        values = rng.lognormal(0.0, 0.5, 15)
        ci = stats.median_ci(values, resamples=2000, rng=rng)
        assert ci is not None
        hits += ci[0] <= 1.0 <= ci[1]
    coverage = hits / experiments
    assert 0.88 <= coverage <= 0.99, coverage
    assert time.monotonic() - started < 10


def test_outliers_are_flagged_by_repetition_and_never_dropped(build_doc):
    values = [100.0, 101.0, 99.0, 102.0, 98.0, 100.5, 160.0]
    doc = _cpu_doc(build_doc, {"native": values})
    summary = stats.summarize(doc)["summaries"][0]
    assert summary["outliers"] == [7]  # the 7th repetition
    assert summary["n"] == 7 and 160.0 in summary["values"]
    assert summary["max"] == 160.0


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
    pairs = {(r["numerator"], r["denominator"]) for r in result["ratios"]}
    assert pairs == {("libvirt", "native"), ("docker", "native"), ("libvirt", "docker")}
    vm = stats.find_ratio(result, "libvirt", "native", "cpu", "events_per_s")
    assert vm is not None
    native = stats.find(result, "native", "cpu", "events_per_s")
    libvirt = stats.find(result, "libvirt", "cpu", "events_per_s")
    assert vm["ratio"] == pytest.approx(libvirt["median"] / native["median"])
    assert vm["ratio"] == pytest.approx(636 / 2313, rel=0.08)
    assert vm["ci_low"] < vm["ratio"] < vm["ci_high"]
    assert (vm["n_num"], vm["n_den"]) == (7, 9)
    assert vm["unit"] == "events/s" and vm["host"] == "local"


def test_ratios_only_for_measured_pairs(build_doc):
    doc = _cpu_doc(build_doc, {"native": [1.0, 2.0, 3.0], "docker": [1.0, 2.0, 3.0]})
    result = stats.summarize(doc)
    assert [(r["numerator"], r["denominator"]) for r in result["ratios"]] == [("docker", "native")]
    assert stats.find_ratio(result, "libvirt", "docker", "cpu", "events_per_s") is None
    assert stats.find(result, "libvirt", "cpu", "events_per_s") is None


def test_single_repetition_has_no_ci(build_doc):
    doc = _cpu_doc(build_doc, {"native": [2313.0], "libvirt": [636.0, 640.0]})
    result = stats.summarize(doc)
    summary = stats.find(result, "native", "cpu", "events_per_s")
    assert summary["n"] == 1 and summary["median"] == 2313.0
    assert summary["ci_low"] is None and summary["ci_high"] is None
    assert summary["stdev"] is None and summary["cv"] is None
    assert summary["outliers"] == []
    ratio = stats.find_ratio(result, "libvirt", "native", "cpu", "events_per_s")
    assert ratio["ratio"] == pytest.approx(638 / 2313)
    assert ratio["ci_low"] is None and ratio["ci_high"] is None


def test_constant_values_give_a_zero_width_ci(build_doc):
    doc = build_doc(
        {
            "docker": {"scale/density_instances": [1800.0] * 5},
            "libvirt": {"scale/density_instances": [90.0] * 5},
        }
    )
    result = stats.summarize(doc)
    summary = stats.find(result, "docker", "scale", "density_instances")
    assert summary["ci_low"] == summary["ci_high"] == 1800.0
    assert summary["stdev"] == 0.0 and summary["outliers"] == []
    ratio = stats.find_ratio(result, "libvirt", "docker", "scale", "density_instances")
    assert ratio["ci_low"] == ratio["ci_high"] == pytest.approx(0.05)


def test_warmups_are_excluded(build_doc):
    doc = build_doc(
        {"native": {"cpu/events_per_s": [100.0, 101.0, 99.0]}},
        warmups={"native": {"cpu/events_per_s": [10.0]}},
    )
    summary = stats.summarize(doc)["summaries"][0]
    assert summary["n"] == 3 and summary["min"] == 99.0


def test_statistics_are_plain_json_and_reproducible(realistic_doc):
    first = stats.summarize(realistic_doc, seed=7)
    again = stats.summarize(realistic_doc, seed=7)
    assert first == again
    text = json.dumps(first, allow_nan=False)
    assert json.loads(text) == first
    assert first["method"] == stats.METHOD
    assert (first["confidence"], first["resamples"], first["seed"]) == (0.95, 2000, 7)
    for summary in first["summaries"]:
        assert type(summary["median"]) is float


def test_ci_relative_width():
    assert stats.ci_relative_width([5.0]) is None
    assert stats.ci_relative_width([5.0, 5.0, 5.0]) == 0.0
    width = stats.ci_relative_width([90.0, 100.0, 110.0, 95.0, 105.0])
    assert width is not None and 0 < width < 0.3
    assert stats.ci_relative_width([0.0, 0.0, 1.0, -1.0]) == math.inf


def test_needs_more_repetitions(build_doc):
    rng = np.random.default_rng(5)
    tight = build_doc({"native": {"cpu/events_per_s": (1000 * rng.uniform(0.99, 1.01, 8))}})
    wide = build_doc({"native": {"cpu/events_per_s": (1000 * rng.uniform(0.6, 1.4, 8))}})
    single = build_doc({"native": {"cpu/events_per_s": [1000.0]}})
    assert stats.needs_more_repetitions(tight, 0.10) is False
    assert stats.needs_more_repetitions(wide, 0.10) is True
    assert stats.needs_more_repetitions(single, 0.10) is True  # one value: CI unknown
    started = time.monotonic()
    stats.needs_more_repetitions(build_doc(
        {b: {f"io/m{i}_iops": list(rng.uniform(1, 2, 20)) for i in range(20)}
         for b in ("native", "docker", "libvirt")}
    ), 0.10)  # fmt: skip
    assert time.monotonic() - started < 3  # cheap enough to run after every trial


def test_groups_are_kept_apart_per_host(build_doc):
    a = build_doc({"native": {"cpu/events_per_s": [1.0, 2.0]}}, host="alpha")
    b = build_doc({"native": {"cpu/events_per_s": [5.0, 6.0]}}, host="beta")
    a.samples += b.samples
    result = stats.summarize(a)
    assert stats.find(result, "native", "cpu", "events_per_s") is None  # no "local"
    assert stats.find(result, "native", "cpu", "events_per_s", host="beta")["median"] == 5.5
