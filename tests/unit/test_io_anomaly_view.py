"""The results table flags every backend whose disk I/O beats native (only a cache can),
not only the pair C03 judges: a sandbox (gVisor answers O_DIRECT from its own page cache)
or a second container engine is checked by the same rule (vmvc.claims.is_io_anomaly)."""

from __future__ import annotations

import pytest

from vmvc.export.view import faster_than_native
from vmvc.results import Sample


def samples(higher_is_better: bool) -> list[Sample]:
    return [
        Sample(
            backend="gvisor",
            workload="io",
            metric="m",
            value=1.0,
            unit="x",
            repetition=0,
            higher_is_better=higher_is_better,
        )
    ]


@pytest.mark.parametrize(
    ("ratio", "higher_is_better", "expected"),
    [
        (6.11, True, 5.11),  # throughput 6x native: a cache answered
        (1.04, True, None),  # within the 5 % noise
        (0.50, True, None),  # slower than native: an overhead, not an anomaly
        (0.90, False, 0.10),  # latency 10 % below native's
        (1.83, False, None),  # latency above native's
    ],
)
def test_faster_than_native(ratio: float, higher_is_better: bool, expected: float | None) -> None:
    found = faster_than_native("io/seqread_1m_mib_s", ratio, samples(higher_is_better), 0.05)
    assert found == pytest.approx(expected) if expected is not None else found is None


def test_only_the_disk_io_figures_c03_reads_are_checked() -> None:
    assert faster_than_native("memory/bandwidth_mib_s", 2.0, samples(True), 0.05) is None
    # a latency row is shown, but C03 decides on the throughput rows: the same set here
    assert faster_than_native("io/randread_4k_lat_us", 0.5, samples(False), 0.05) is None
    assert faster_than_native("io/x", 2.0, [], 0.05) is None
