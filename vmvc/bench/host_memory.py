"""One memory accounting for footprint (C02) and density (C10): what the whole host loses.

The figure is the drop of the host's MemAvailable (/proc/meminfo), the kernel's own estimate
of the memory that can still be allocated without swapping (Documentation/filesystems/
proc.rst, "MemAvailable"). It charges everything an instance makes the host hold: the
instance's processes, its shim or QEMU, the kernel's page tables and slab for it, and what
the engine daemons grow by. Summed per-process PSS cannot: PSS splits a shared binary's pages
across its users, so the sum over N shims counts the shim binary once while each shim's
share looks tiny (C10 used to say 3.3 MiB per container where the host lost 4-4.6 MiB).
Per-process PSS (instances, engine daemons) is still read, as a breakdown of the drop.

Choices, so every backend is counted the same way:

* Page cache is NOT dropped (no ``echo 3 > /proc/sys/vm/drop_caches``): that would disturb
  everything else on the host and make the baseline unlike a working host. MemAvailable
  already counts clean, reclaimable page cache (the image files instances read) as
  available, so cache growth mostly cancels out; what it does not count (Shmem/tmpfs, dirty
  pages not yet written) is memory the host really cannot hand out. The Cached and Shmem
  deltas are recorded with every point so a reader can see how much cache moved.
* Pages parked on the kernel's per-CPU free lists (the `count:` of every pageset in
  /proc/zoneinfo) are added back: they are free and allocatable, but not in MemFree, so not
  in MemAvailable. Since Linux 6.7 the lists' high marks tune themselves and hold up to
  hundreds of MiB after a burst of frees and allocations, then drain at a few MiB/s:
  measured here, 24 containers started one after another moved them from 47 to 138 MiB,
  and MemAvailable alone then crept back 7.6 MiB/s while nothing ran, where
  MemAvailable + per-CPU free stayed within 0.1 MiB. That drift was most of the readings'
  60-230 MiB scatter (issue 13: the container's few MiB never stood above it).
* Every reading is the median of several reads of /proc/meminfo (and /proc/zoneinfo) a
  short interval apart, after a settle wait; the spread of the baseline reads is recorded as
  the noise floor.
* Each instance runs the same memory-touching workload (vmvc-memtool over a fixed working
  set) before it is counted, so a VM's guest has faulted in pages as a container has.
* First instance's cost = drop from the baseline with 1 instance (engine daemons' growth
  included). Marginal cost = least-squares slope of the drop over N (scipy linregress),
  with a t-interval for the slope: that interval assumes independent normal errors, so it
  is labelled a model-based interval and is given only with at least 3 instance counts
  (one degree of freedom); with two counts the line is exact and says nothing of its error.

Pure arithmetic and the /proc readers live here; vmvc.bench.density drives the instances.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scipy import stats as sps

from vmvc.bench.scalefit import LineFit, fit_line

MIB = 2**20
KIB = 1024
MEMINFO = Path("/proc/meminfo")
ZONEINFO = Path("/proc/zoneinfo")
PAGE_SIZE = 4096  # x86-64; read_host uses the host's own (os.sysconf)
PER_CPU_FREE = "PerCpuFree"  # our field: pages on the per-CPU free lists, MiB
# /proc/meminfo fields kept with every reading (MiB): the figure and what explains it.
FIELDS = ("MemAvailable", "MemFree", "Cached", "Shmem", "AnonPages", "Slab", "PageTables")
SLOPE_CONFIDENCE = 0.95
# The drop at the largest N must exceed this multiple of the noise floor to "stand above" it.
ABOVE_NOISE_FACTOR = 5.0


class DensityRefused(RuntimeError):
    """A requested N would not fit safely in the host's memory (nothing was launched)."""


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo as bytes per field ("MemAvailable:  23417228 kB" -> 23979241472)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if not parts:
            continue
        try:
            number = int(parts[0])
        except ValueError:
            continue
        values[key.strip()] = number * KIB if parts[1:2] == ["kB"] else number
    if "MemAvailable" not in values:
        raise ValueError("no MemAvailable in /proc/meminfo (kernel older than 3.14?)")
    return values


def parse_smaps_rollup_pss(text: str) -> int | None:
    """The Pss line of /proc/PID/smaps_rollup, in bytes (None if absent)."""
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key.strip() == "Pss":
            parts = rest.split()
            return int(parts[0]) * KIB if parts else None
    return None


@dataclass(frozen=True)
class HostReading:
    """The median of several /proc/meminfo reads, MiB per field, and their spread."""

    fields_mib: dict[str, float]
    available_spread_mib: float  # max - min of MemAvailable over the reads
    reads: int

    @property
    def available_mib(self) -> float:
        """MemAvailable plus the per-CPU free lists (where read): what could be allocated."""
        return self.fields_mib["MemAvailable"] + self.fields_mib.get(PER_CPU_FREE, 0.0)


def per_cpu_free_pages(zoneinfo: str) -> int:
    """Pages on the per-CPU free lists: the `count:` lines of every zone's pagesets."""
    total, in_pagesets = 0, False
    for line in zoneinfo.splitlines():
        stripped = line.strip()
        if line.startswith("Node "):
            in_pagesets = False
        elif stripped == "pagesets":
            in_pagesets = True
        elif in_pagesets and stripped.startswith("count:"):
            total += int(stripped.split()[1])
    return total


def median_reading(
    texts: Sequence[str], zoneinfos: Sequence[str] = (), page_size: int = PAGE_SIZE
) -> HostReading:
    """Field-wise median of /proc/meminfo texts, with (when given, one per meminfo read)
    the per-CPU free lists from /proc/zoneinfo (pure: unit-tested on recorded reads)."""
    if not texts:
        raise ValueError("no /proc/meminfo reads")
    if zoneinfos and len(zoneinfos) != len(texts):
        raise ValueError("one /proc/zoneinfo read per /proc/meminfo read")
    parsed = [parse_meminfo(text) for text in texts]
    for values, zoneinfo in zip(parsed, zoneinfos, strict=False):
        values[PER_CPU_FREE] = per_cpu_free_pages(zoneinfo) * page_size
    names = (*FIELDS, PER_CPU_FREE)
    fields = {
        name: statistics.median(p[name] for p in parsed) / MIB
        for name in names
        if all(name in p for p in parsed)
    }
    available = [(p["MemAvailable"] + p.get(PER_CPU_FREE, 0)) / MIB for p in parsed]
    return HostReading(fields, max(available) - min(available), len(parsed))


def _read_zoneinfo() -> str:
    try:
        return ZONEINFO.read_text()
    except OSError:
        return ""  # no per-CPU lists known: counted as none (MemAvailable alone)


def read_host(
    reads: int = 5,
    interval_s: float = 0.2,
    read: Callable[[], str] = MEMINFO.read_text,
    sleep: Callable[[float], None] = time.sleep,
    read_zones: Callable[[], str] = _read_zoneinfo,
) -> HostReading:
    """`reads` reads of /proc/meminfo and /proc/zoneinfo, `interval_s` apart, as their
    median."""
    texts, zones = [], []
    for index in range(reads):
        if index:
            sleep(interval_s)
        texts.append(read())
        zones.append(read_zones())
    return median_reading(texts, zones, os.sysconf("SC_PAGE_SIZE"))


def process_pss_mib(pid: int, proc: Path = Path("/proc")) -> float | None:
    """One process's PSS (not its children's: a daemon's children are instances), or None."""
    try:
        pss = parse_smaps_rollup_pss((proc / str(pid) / "smaps_rollup").read_text())
    except OSError:
        return None
    return None if pss is None else pss / MIB


def all_processes_pss_mib(proc: Path = Path("/proc")) -> float:
    """PSS summed over every process on the host (MiB): what processes hold, without the
    kernel's own memory. Its change, less ours, is the other tenants' churn."""
    total = 0
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                total += parse_smaps_rollup_pss((entry / "smaps_rollup").read_text()) or 0
            except OSError:  # gone meanwhile, or a kernel thread without one
                continue
    return total / MIB


def daemons_pss_mib(pids: Mapping[str, int]) -> dict[str, float]:
    """PSS of each engine daemon still running (name -> MiB)."""
    found = {name: process_pss_mib(pid) for name, pid in pids.items()}
    return {name: round(value, 2) for name, value in found.items() if value is not None}


def check_counts(
    backend: str, per_instance_mib: float, fraction: float, counts: Sequence[int], available: float
) -> None:
    """Refuse (raise) before launching if the largest N would not fit safely: N times the
    backend's conservative estimate must stay within `fraction` of the available memory."""
    limit = available * fraction
    refused = [n for n in counts if per_instance_mib * n > limit]
    if refused:
        fitting = [n for n in counts if n not in refused]
        hint = f"largest that fits: {max(fitting)}" if fitting else "none fits"
        raise DensityRefused(
            f"density N={refused[0]} on {backend} needs about "
            f"{per_instance_mib * refused[0]:.0f} MiB, more than {fraction:.0%} of the "
            f"{available:.0f} MiB available ({hint}); lower [workload.density] counts"
        )


@dataclass(frozen=True)
class DensityPoint:
    """The host with N instances up (each has touched its memory), against the baseline."""

    n: int
    reading: HostReading
    daemons_mib: dict[str, float]
    instances_mib: list[float]  # each instance's own footprint (total_mib), a breakdown
    # The measuring process's own PSS growth since the baseline (client threads, buffers):
    # the observer is not an instance, so it is taken out of the drop.
    harness_growth_mib: float = 0.0
    # Every process's PSS summed, minus the baseline's (None: not read): with ours taken out,
    # what other tenants' processes grew by meanwhile (a diagnostic, not subtracted).
    all_processes_growth_mib: float | None = None


@dataclass(frozen=True)
class SlopeInterval:
    low: float
    high: float
    confidence: float
    method: str = "t-interval of the least-squares slope (normal errors assumed)"


def slope_interval(fit: LineFit, confidence: float = SLOPE_CONFIDENCE) -> SlopeInterval | None:
    """The slope's t-interval, or None below 3 points (no degree of freedom left)."""
    if fit.points < 3 or fit.slope_stderr is None:
        return None
    t = float(sps.t.ppf(0.5 + confidence / 2, fit.points - 2))
    half = t * fit.slope_stderr
    return SlopeInterval(fit.slope - half, fit.slope + half, confidence)


@dataclass(frozen=True)
class Accounting:
    """The first instance's cost and the marginal cost, both as the host's MemAvailable drop."""

    counts: list[int]
    drops_mib: list[float]
    first_instance_mib: float
    first_breakdown: dict[str, float]
    marginal: LineFit | None
    marginal_interval: SlopeInterval | None
    noise_mib: float
    above_noise: bool
    # Slope of the drop with other tenants' process growth taken out (None: not read).
    tenant_corrected_slope: float | None = None
    # Theil-Sen slope of the same drops and its interval (Sen 1968): a cross-check that one
    # step of another tenant's memory cannot drag, unlike least squares.
    robust_slope: tuple[float, float, float] | None = None
    breakdown_slopes: dict[str, float | None] = field(default_factory=dict)
    points_metadata: list[dict[str, Any]] = field(default_factory=list)


def _delta(after: Mapping[str, float], before: Mapping[str, float]) -> float:
    return sum(after.values()) - sum(before[name] for name in after if name in before)


def account(
    baseline: HostReading,
    baseline_daemons: Mapping[str, float],
    points: Sequence[DensityPoint],
    drift_mib: float | None = None,
) -> Accounting:
    """The accounting from a baseline and the readings at each N (pure).

    The noise floor is the largest of the baseline reads' spread, (when given) the drift of
    the host between the baseline and after every instance was removed, and the readings'
    scatter about the fitted line; the drop at the largest N, less the first instance's,
    "stands above the noise" when it exceeds ABOVE_NOISE_FACTOR times that floor.
    """
    if not points or points[0].n != 1:
        raise ValueError("the density series must start at N=1 (the first instance's cost)")
    counts = [p.n for p in points]
    drops = [
        baseline.available_mib - p.reading.available_mib - p.harness_growth_mib for p in points
    ]
    daemon_growth = [_delta(p.daemons_mib, baseline_daemons) for p in points]
    own = [sum(p.instances_mib) for p in points]
    marginal = fit_line(counts, drops)
    noise = max(baseline.available_spread_mib, abs(drift_mib or 0.0), _scatter(counts, drops))
    rise = drops[-1] - drops[0]
    slopes: dict[str, float | None] = {}
    for name, values in (("daemons_growth_mib", daemon_growth), ("instances_own_mib", own)):
        fitted = fit_line(counts, values)
        slopes[name] = None if fitted is None else fitted.slope
    tenants = [
        _tenant_growth(p, growth, mine)
        for p, growth, mine in zip(points, daemon_growth, own, strict=True)
    ]
    corrected = None
    if all(t is not None for t in tenants):
        fitted = fit_line(counts, [d - (t or 0.0) for d, t in zip(drops, tenants, strict=True)])
        corrected = None if fitted is None else fitted.slope
    metadata = [
        {
            "n": p.n,
            "host_drop_mib": round(drop, 2),
            "daemons_growth_mib": round(growth, 2),
            "instances_own_mib": round(mine, 2),
            "cached_delta_mib": _field_delta(p.reading, baseline, "Cached"),
            "shmem_delta_mib": _field_delta(p.reading, baseline, "Shmem"),
            "read_spread_mib": round(p.reading.available_spread_mib, 2),
            "harness_growth_mib": round(p.harness_growth_mib, 2),
            "other_processes_growth_mib": None if tenant is None else round(tenant, 2),
        }
        for p, drop, growth, mine, tenant in zip(
            points, drops, daemon_growth, own, tenants, strict=True
        )
    ]
    return Accounting(
        counts=counts,
        drops_mib=drops,
        first_instance_mib=drops[0],
        first_breakdown={
            "daemons_growth_mib": daemon_growth[0],
            "instance_own_mib": own[0],
            # What neither PSS sees: kernel page tables, slab, cgroup structures, cache.
            "unattributed_mib": drops[0] - daemon_growth[0] - own[0],
        },
        marginal=marginal,
        marginal_interval=None if marginal is None else slope_interval(marginal),
        noise_mib=noise,
        above_noise=len(counts) > 1 and rise > ABOVE_NOISE_FACTOR * noise,
        tenant_corrected_slope=corrected,
        robust_slope=robust_slope(counts, drops),
        breakdown_slopes=slopes,
        points_metadata=metadata,
    )


def _scatter(counts: Sequence[int], drops: Sequence[float]) -> float:
    """The residual standard deviation of the least-squares line (0 below 3 counts): how far
    the readings stray from a straight line is noise too, even if baseline and end agree."""
    fit = fit_line(counts, drops)
    if fit is None or len(counts) < 3:
        return 0.0
    residuals = [d - (fit.slope * n + fit.intercept) for n, d in zip(counts, drops, strict=True)]
    return math.sqrt(sum(r * r for r in residuals) / (len(counts) - 2))


def _tenant_growth(point: DensityPoint, daemons: float, own: float) -> float | None:
    """Other processes' PSS growth since the baseline: all processes' less ours (daemons,
    instances, the measuring process). Instances' own figure may be a cgroup's (it counts
    the container's processes' pages much as their PSS would)."""
    if point.all_processes_growth_mib is None:
        return None
    return point.all_processes_growth_mib - daemons - own - point.harness_growth_mib


def robust_slope(
    counts: Sequence[int], drops: Sequence[float], confidence: float = SLOPE_CONFIDENCE
) -> tuple[float, float, float] | None:
    """(slope, low, high) by Theil-Sen (scipy.stats.theilslopes); None below 3 counts."""
    if len(set(counts)) < 3:
        return None
    found = sps.theilslopes(list(drops), list(map(float, counts)), alpha=confidence)
    return float(found.slope), float(found.low_slope), float(found.high_slope)


def _field_delta(reading: HostReading, baseline: HostReading, name: str) -> float | None:
    if name not in reading.fields_mib or name not in baseline.fields_mib:
        return None
    return round(reading.fields_mib[name] - baseline.fields_mib[name], 2)


def density(memory_mib: float, marginal_mib: float) -> float | None:
    """Instances that fit in `memory_mib` at the marginal cost; None if the cost is not
    positive (a flat or falling line, i.e. noise, gives no count)."""
    if marginal_mib <= 0 or not math.isfinite(marginal_mib):
        return None
    return memory_mib / marginal_mib
