"""The density workload on real engines: its figures against the host's own MemAvailable.

While vmvc's series runs, the test reads the host itself at every phase change with psutil
(an independent reader of /proc/meminfo) plus the free pages on the kernel's per-CPU lists
(its own reading of /proc/zoneinfo: MemAvailable leaves them out, and since Linux 6.7 they
swing by tens to hundreds of MiB around a burst of starts); a phase is announced right after
vmvc has taken its reading at the previous N, so both readers see the host at (nearly) the
same moment.
The marginal cost per container vmvc reports must agree with the slope of the test's own
drops at the same N within TOLERANCE. This host is shared (other benchmarks start
and stop processes of hundreds of MiB), which is why the comparison is between two readers
at the same moments and not against a fixed expected figure.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from vmvc.backends.base import Backend
from vmvc.bench.base import Measurement
from vmvc.config import Config

from .test_lifecycle import Harness, backends, harness  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration

MIB = 2**20
# Agreement of vmvc's marginal cost with the host's own drop per extra container: 1 MiB
# per instance (a ~30 MiB step of another tenant between the two readers) or 20 %.
TOLERANCE_MIB, TOLERANCE_FRACTION = 1.0, 0.20


class HostReadings(list[str]):
    """The harness's phase list: records psutil's MemAvailable (median of 5) at each phase."""

    def __init__(self) -> None:
        super().__init__()
        self.available: dict[str, float] = {}

    def append(self, phase: str) -> None:
        reads = []
        for _ in range(5):
            reads.append(psutil.virtual_memory().available / MIB + per_cpu_free_mib())
            time.sleep(0.05)
        self.available[phase] = statistics.median(reads)
        super().append(phase)


def per_cpu_free_mib() -> float:
    """Pages on the per-CPU free lists: every `count:` after a zone's `pagesets` line."""
    pages, inside = 0, False
    for line in Path("/proc/zoneinfo").read_text().splitlines():
        words = line.split()
        if line.startswith("Node"):
            inside = False
        elif words == ["pagesets"]:
            inside = True
        elif inside and words[:1] == ["count:"]:
            pages += int(words[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / MIB


def by_key(measured: list[Measurement]) -> dict[tuple[str, int | None], Measurement]:
    return {(m.metric, m.metadata.get("n")): m for m in measured}


def test_container_marginal_cost_agrees_with_the_hosts_own_drop(
    harness: Harness,  # noqa: F811
    backends: dict[str, Backend],  # noqa: F811
    small_config: Config,
) -> None:
    config = small_config.model_copy(deep=True)
    config.workload.density.counts = [1, 8, 16, 32]
    readings = HostReadings()
    harness.phases = readings
    measured = by_key(harness.result("density", backends["docker"], config).measurements)

    # "density: N up, host read" is announced right after vmvc read the host at N.
    at = readings.available
    baseline = at["density: 1 up"]  # announced right after vmvc's baseline read
    counts = [1, 8, 16, 32]
    own_drops = [baseline - at[f"density: {n} up, host read"] for n in counts]
    own_marginal = float(np.polyfit(counts, own_drops, 1)[0])
    marginal = measured[("marginal_mib", None)]
    tolerance = max(TOLERANCE_MIB, TOLERANCE_FRACTION * abs(own_marginal))
    assert marginal.value == pytest.approx(own_marginal, abs=tolerance), (
        f"vmvc {marginal.value:.2f} MiB per container, host's own drop {own_marginal:.2f}; "
        f"vmvc drops {[measured[('host_drop_mib', n)].value for n in counts]}, "
        f"host's own {[round(d, 1) for d in own_drops]}"
    )
    assert {n for metric, n in measured if metric == "host_drop_mib"} == {1, 8, 16, 32}
    assert marginal.metadata["points"] == 4 and marginal.metadata["r_squared"] is not None
    assert marginal.metadata["engine_daemons"] == ["containerd", "dockerd"]
    first = measured[("first_instance_mib", None)]
    breakdown = first.metadata["breakdown"]
    assert 0 < breakdown["instance_own_mib"] < 64  # cgroup + shim PSS: a breakdown only
    fits = measured.get(("density_instances", None))
    if marginal.value > 0:
        assert fits is not None and fits.value > 1


def test_one_vm_round(
    harness: Harness,  # noqa: F811
    backends: dict[str, Backend],  # noqa: F811
    small_config: Config,
) -> None:
    config = small_config.model_copy(deep=True)
    config.workload.density.vm_counts = [1, 2]
    measured = by_key(harness.result("density", backends["libvirt"], config).measurements)
    assert {n for metric, n in measured if metric == "host_drop_mib"} == {1, 2}
    first = measured[("first_instance_mib", None)]
    # QEMU's PSS after the guest touched touch_mib: far more than any container's.
    assert first.metadata["breakdown"]["instance_own_mib"] > 100
    assert "virtlogd" in first.metadata["engine_daemons"]
    assert ("marginal_mib", None) in measured
    assert measured[("marginal_mib", None)].metadata["slope_ci_low"] is None  # two counts
