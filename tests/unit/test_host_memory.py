"""vmvc.bench.host_memory and the density workload's samples, on recorded /proc readings.

host-meminfo-{1,2,3}.txt are three reads of this host's /proc/meminfo 0.3 s apart;
dockerd-smaps_rollup.txt is dockerd's /proc/PID/smaps_rollup. The readings with instances
up are the recorded ones with MemAvailable lowered by a known amount, so the arithmetic
(first instance, marginal slope, breakdown, noise) can be checked exactly.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vmvc.bench import density as density_workload
from vmvc.bench.host_memory import (
    DensityPoint,
    DensityRefused,
    HostReading,
    account,
    check_counts,
    density,
    median_reading,
    parse_meminfo,
    parse_smaps_rollup_pss,
    per_cpu_free_pages,
    read_host,
)
from vmvc.config import load_config

DATA = Path(__file__).parent.parent / "data"
READS = [(DATA / f"host-meminfo-{i}.txt").read_text() for i in (1, 2, 3)]
KIB = 1024
# MemAvailable of the three recorded reads, kB.
AVAILABLE_KB = (23582648, 23590728, 23589704)


def lowered(text: str, mib: float) -> str:
    """A recorded /proc/meminfo with MemAvailable lowered by `mib`."""

    def lower(match: re.Match[str]) -> str:
        return f"MemAvailable:   {int(match[1]) - round(mib * 1024)} kB"

    return re.sub(r"MemAvailable:\s+(\d+) kB", lower, text)


def reading_with_drop(mib: float) -> HostReading:
    return median_reading([lowered(text, mib) for text in READS])


def test_meminfo_fields_are_bytes() -> None:
    parsed = parse_meminfo(READS[0])
    assert parsed["MemAvailable"] == AVAILABLE_KB[0] * KIB
    assert parsed["MemTotal"] == 24684096 * KIB
    assert parsed["HugePages_Total"] == 0  # a count, not kB: kept as it is


def test_meminfo_without_memavailable_is_refused() -> None:
    text = "\n".join(line for line in READS[0].splitlines() if "MemAvailable" not in line)
    with pytest.raises(ValueError, match="no MemAvailable"):
        parse_meminfo(text)


def test_reading_is_the_median_of_the_reads_and_records_their_spread() -> None:
    reading = median_reading(READS)
    assert reading.available_mib == pytest.approx(sorted(AVAILABLE_KB)[1] / 1024)
    assert reading.available_spread_mib == pytest.approx(
        (max(AVAILABLE_KB) - min(AVAILABLE_KB)) / 1024
    )
    assert reading.reads == 3
    assert {"Cached", "Shmem", "MemFree"} <= set(reading.fields_mib)


ZONEINFO = (DATA / "zoneinfo-2cpu.txt").read_text()  # this host's, 2 CPUs, 3 zones
ZONEINFO_PCP_PAGES = 13200  # the `count:` lines under every zone's "pagesets", summed


def test_per_cpu_free_pages_are_counted_from_every_zones_pagesets() -> None:
    assert per_cpu_free_pages(ZONEINFO) == ZONEINFO_PCP_PAGES
    # the other `count`-like figures of a zone (nr_free_pages, high, batch) are not
    assert per_cpu_free_pages("Node 0, zone Normal\n  pages free 5\n        count: 3\n") == 0


def test_available_memory_includes_the_per_cpu_free_lists() -> None:
    """Pages parked on per-CPU lists are free but not in MemAvailable: added back, else the
    lists' drift (tens to hundreds of MiB after a burst) reads as instances' memory."""
    plain = median_reading(READS)
    with_lists = median_reading(READS, [ZONEINFO] * len(READS), page_size=4096)
    parked = ZONEINFO_PCP_PAGES * 4096 / 2**20
    assert with_lists.fields_mib["PerCpuFree"] == pytest.approx(parked)
    assert with_lists.available_mib == pytest.approx(plain.available_mib + parked)
    # one reading whose lists hold 100 MiB more is 100 MiB more available, not less
    fuller = ZONEINFO.replace("count:    65", f"count:    {65 + 25600}", 1)
    assert fuller != ZONEINFO
    moved = median_reading(READS[:1], [fuller], page_size=4096)
    assert moved.available_mib - median_reading(READS[:1], [ZONEINFO]).available_mib == (
        pytest.approx(100.0)
    )
    with pytest.raises(ValueError, match="one /proc/zoneinfo read per"):
        median_reading(READS, [ZONEINFO])


def test_read_host_reads_as_often_as_asked_with_pauses_between() -> None:
    texts = iter(READS)
    pauses: list[float] = []
    reading = read_host(
        3, 0.25, read=lambda: next(texts), sleep=pauses.append, read_zones=lambda: ""
    )
    assert pauses == [0.25, 0.25]
    assert reading.reads == 3


def test_smaps_rollup_pss() -> None:
    text = (DATA / "dockerd-smaps_rollup.txt").read_text()
    assert parse_smaps_rollup_pss(text) == 88234 * KIB
    assert parse_smaps_rollup_pss("Rss: 4 kB\n") is None


def series(drops: dict[int, float], daemons: float = 0.0, own: float = 2.0) -> list[DensityPoint]:
    return [
        DensityPoint(n, reading_with_drop(drop), {"dockerd": 88.0 + daemons}, [own] * n)
        for n, drop in drops.items()
    ]


def test_first_instance_and_marginal_cost_are_host_drops() -> None:
    # 10 MiB for the first container (daemons grew 3), then 4 MiB for each more.
    points = series({1: 10.0, 8: 38.0, 16: 70.0, 32: 134.0}, daemons=3.0)
    result = account(median_reading(READS), {"dockerd": 88.0}, points, drift_mib=1.0)
    assert result.first_instance_mib == pytest.approx(10.0, abs=0.01)
    assert result.marginal is not None
    assert result.marginal.slope == pytest.approx(4.0, abs=0.01)
    assert result.first_breakdown["daemons_growth_mib"] == pytest.approx(3.0)
    assert result.first_breakdown["instance_own_mib"] == pytest.approx(2.0)
    assert result.first_breakdown["unattributed_mib"] == pytest.approx(5.0, abs=0.01)
    # Summed per-instance PSS grows 2 MiB per instance: a breakdown, not the figure.
    assert result.breakdown_slopes["instances_own_mib"] == pytest.approx(2.0)
    assert result.above_noise  # 124 MiB over 32 instances against ~8 MiB of read spread
    interval = result.marginal_interval
    assert interval is not None and interval.low <= 4.0 <= interval.high
    assert [p["n"] for p in result.points_metadata] == [1, 8, 16, 32]


def test_a_drop_within_the_noise_does_not_stand_above_it() -> None:
    points = series({1: 10.0, 2: 14.0})
    result = account(median_reading(READS), {"dockerd": 88.0}, points, drift_mib=30.0)
    assert result.noise_mib == pytest.approx(30.0)  # the drift is larger than the read spread
    assert not result.above_noise


def test_readings_that_stray_from_a_line_are_noise_too() -> None:
    # Baseline and end agree (no drift), but the middle readings jump by 150 MiB.
    points = series({1: -200.0, 8: -100.0, 16: 80.0, 32: -30.0})
    result = account(median_reading(READS), {}, points, drift_mib=0.0)
    assert result.noise_mib > 100
    assert not result.above_noise  # a rise of 170 MiB is not 5x the scatter


def test_two_counts_give_a_slope_but_no_interval() -> None:
    result = account(median_reading(READS), {}, series({1: 250.0, 2: 500.0}))
    assert result.marginal is not None and result.marginal.slope == pytest.approx(250.0, 0.01)
    assert result.marginal_interval is None  # no degree of freedom left for an error


def test_the_series_must_start_at_one_instance() -> None:
    with pytest.raises(ValueError, match="start at N=1"):
        account(median_reading(READS), {}, series({2: 8.0, 4: 16.0}))


def test_guard_refuses_a_series_that_would_not_fit() -> None:
    check_counts("libvirt", 600.0, 0.5, [1, 2, 4], 5000.0)  # 2400 <= 2500: fits
    with pytest.raises(DensityRefused, match=r"N=8 on libvirt.*largest that fits: 4"):
        check_counts("libvirt", 600.0, 0.5, [1, 2, 4, 8], 5000.0)


def test_density_needs_a_positive_marginal_cost() -> None:
    assert density(20000.0, 4.0) == 5000.0
    assert density(20000.0, 0.0) is None
    assert density(20000.0, -1.5) is None


def test_samples_say_how_they_were_counted() -> None:
    config = load_config("quick")
    points = series({1: 10.0, 4: 22.0, 8: 38.0})
    baseline = median_reading(READS)
    result = account(baseline, {"dockerd": 88.0}, points, drift_mib=0.5)
    measured = {
        (m.metric, m.metadata.get("n")): m
        for m in density_workload.measurements(
            result, baseline.available_mib, 0.5, ["dockerd"], config
        )
    }
    assert {key for key in measured if key[0] == "host_drop_mib"} == {
        ("host_drop_mib", n) for n in (1, 4, 8)
    }
    marginal = measured[("marginal_mib", None)]
    assert marginal.value == pytest.approx(4.0, abs=0.01)
    assert marginal.metadata["slope_ci_low"] is not None  # three counts: an interval
    fits = measured[("density_instances", None)]
    assert fits.value == pytest.approx(baseline.available_mib / 4.0, rel=0.01)
    assert fits.higher_is_better and fits.unit == "instances"
    first = measured[("first_instance_mib", None)]
    assert first.value == pytest.approx(10.0, abs=0.01)
    assert "MemAvailable" in first.metadata["method"]
    assert first.metadata["touch_mib"] == config.workload.density.touch_mib


def test_one_count_gives_the_first_instance_only() -> None:
    config = load_config("quick")
    baseline = median_reading(READS)
    result = account(baseline, {}, series({1: 10.0}))
    metrics = {m.metric for m in density_workload.measurements(result, 20000.0, 0.0, [], config)}
    assert metrics == {"host_drop_mib", "first_instance_mib"}


def test_vms_get_the_short_series_by_kind() -> None:
    config = load_config("default")

    class Kind:
        def __init__(self, kind: str) -> None:
            self.kind = kind

    assert density_workload.series(config, Kind("vm")) == [1, 2, 4]  # type: ignore[arg-type]
    assert density_workload.series(config, Kind("container")) == [1, 16, 32, 64]  # type: ignore[arg-type]


def test_the_measuring_process_growth_is_not_an_instance_cost() -> None:
    points = [
        DensityPoint(1, reading_with_drop(15.0), {}, [2.0], harness_growth_mib=5.0),
        DensityPoint(2, reading_with_drop(19.0), {}, [2.0, 2.0], harness_growth_mib=5.0),
    ]
    result = account(median_reading(READS), {}, points)
    assert result.first_instance_mib == pytest.approx(10.0, abs=0.01)
    assert result.points_metadata[0]["harness_growth_mib"] == 5.0


def test_one_step_of_another_tenant_drags_least_squares_more_than_theil_sen() -> None:
    # 4 MiB per instance, and another tenant freed 200 MiB before the last reading.
    drops = {1: 10.0, 4: 22.0, 8: 38.0, 12: 54.0, 16: 70.0, 20: 86.0, 24: 102.0 - 200.0}
    result = account(median_reading(READS), {}, series(drops))
    assert result.robust_slope is not None and result.marginal is not None
    assert result.robust_slope[0] == pytest.approx(4.0, abs=0.05)
    assert abs(result.marginal.slope - 4.0) > 2.0


def test_other_tenants_process_growth_is_taken_out_of_the_corrected_slope() -> None:
    # 4 MiB per instance (2 of it the instance's own PSS, 1 daemon growth at first); another
    # tenant's process of 200 MiB started before the N=16 reading.
    drops = {1: 10.0, 8: 38.0, 16: 70.0 + 200.0}
    points = [
        DensityPoint(
            n,
            reading_with_drop(drop),
            {"dockerd": 89.0},
            [2.0] * n,
            harness_growth_mib=0.5,
            all_processes_growth_mib=1.0 + 2.0 * n + 0.5 + (200.0 if n == 16 else 0.0),
        )
        for n, drop in drops.items()
    ]
    result = account(median_reading(READS), {"dockerd": 88.0}, points)
    assert result.marginal is not None and result.marginal.slope > 10  # dragged by the tenant
    assert result.tenant_corrected_slope == pytest.approx(4.0, abs=0.05)
    assert result.points_metadata[2]["other_processes_growth_mib"] == pytest.approx(200.0)
    unread = account(median_reading(READS), {}, series({1: 10.0, 8: 38.0}))
    assert unread.tenant_corrected_slope is None
