"""The memory cost of one more instance: straight-line fits of scale results against N (pure).

Scale measures, for each N, the time until N instances launched at once are all ready and
the host memory they hold. The slope of a least-squares line through the memory points is
the memory per extra instance, and host memory divided by it is how many instances would
fit (C10). The time points are not fitted here: they are a curve with a knee at the core
count, shown per N, and the analysis step (vmvc.curves) names a slope only where a line fits
(vmvc.linefit). Nothing here touches an engine, so it is unit-tested directly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vmvc.bench.base import Measurement
from vmvc.linefit import LineFit, fit_line

__all__ = ["LineFit", "ScalePoint", "density", "fit_line", "fit_measurements"]


def density(memory_mib: float, memory_per_instance_mib: float) -> float | None:
    """Instances that fit in `memory_mib` at the fitted cost each; None if the cost is not
    positive (a flat or falling line gives no meaningful count)."""
    if memory_per_instance_mib <= 0 or not math.isfinite(memory_per_instance_mib):
        return None
    return memory_mib / memory_per_instance_mib


@dataclass(frozen=True)
class ScalePoint:
    """One scale round: N instances launched at once."""

    n: int
    all_ready_s: float
    memory_mib: float
    host_drop_mib: float | None = None  # the host's MemAvailable drop (a noisy cross-check)


def fit_measurements(
    points: Sequence[ScalePoint],
    host_total_mib: float,
    host_available_mib: float,
    conditions: dict[str, Any] | None = None,
) -> list[Measurement]:
    """memory_per_instance_mib and density_instances from the rounds.

    density_instances is host total memory / memory slope ("how many would fit on this
    host"); the metadata adds the same count for the memory that was available when the
    workload started (what would fit next to whatever else was running). No fit (fewer
    than two distinct N) gives no measurements; a non-positive memory slope gives no density.
    `conditions` (e.g. host CPUs) is added to every fit's metadata.
    """
    extra = dict(conditions or {})
    counts = [p.n for p in points]
    memory_fit = fit_line(counts, [p.memory_mib for p in points])
    if memory_fit is None:
        return []
    memory_metadata = memory_fit.metadata(counts)
    drops = [p.host_drop_mib for p in points]
    if all(d is not None for d in drops):
        # What the whole host lost per instance, engine daemons and page cache included.
        drop_fit = fit_line(counts, [float(d) for d in drops if d is not None])
        memory_metadata["host_available_drop_slope_mib"] = drop_fit.slope if drop_fit else None
    measured = [
        Measurement(
            "memory_per_instance_mib", memory_fit.slope, "MiB", False, memory_metadata | extra
        ),
    ]
    fits = density(host_total_mib, memory_fit.slope)
    if fits is not None:
        available = density(host_available_mib, memory_fit.slope)
        measured.append(
            Measurement(
                "density_instances",
                fits,
                "instances",
                True,
                {
                    "basis": "host MemTotal / memory_per_instance_mib",
                    "host_total_mib": host_total_mib,
                    "host_available_at_start_mib": host_available_mib,
                    "density_available_at_start": available,
                    "memory_per_instance_mib": memory_fit.slope,
                }
                | extra,
            )
        )
    return measured
