"""The cost of one more instance: straight-line fits of scale results against N (pure).

Scale measures, for each N, the time until N instances launched at once are all ready and
the host memory they hold. The slope of a least-squares line through those points is the
cost per extra instance (C05), and host memory divided by the memory slope is how many
instances would fit (C10). Nothing here touches an engine, so it is unit-tested directly.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scipy import stats as sps

from vmvc.bench.base import Measurement


@dataclass(frozen=True)
class LineFit:
    """y = slope * N + intercept; r_squared and stderr are None where undefined."""

    slope: float
    intercept: float
    r_squared: float | None
    slope_stderr: float | None
    intercept_stderr: float | None
    points: int

    def metadata(self, counts: Sequence[int]) -> dict[str, Any]:
        return {
            "intercept": self.intercept,
            "r_squared": self.r_squared,
            "slope_stderr": self.slope_stderr,
            "intercept_stderr": self.intercept_stderr,
            "points": self.points,
            "counts": list(counts),
        }


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def fit_line(counts: Sequence[float], values: Sequence[float]) -> LineFit | None:
    """Least-squares line through (N, value); None with fewer than two distinct N.

    With exactly two points the line is exact but says nothing about its uncertainty, so
    the standard errors are None (scipy would report 0). With constant values the slope is
    0 and the fit is exact: standard errors 0, r_squared None (0/0: no variance to explain).
    """
    if len(counts) != len(values):
        raise ValueError("counts and values differ in length")
    if len(set(counts)) < 2:
        return None
    with warnings.catch_warnings():
        # Constant values make scipy divide 0 by 0 for r; handled below.
        warnings.simplefilter("ignore", category=RuntimeWarning)
        result = sps.linregress(list(map(float, counts)), list(map(float, values)))
    constant = len(set(values)) == 1
    if constant:
        slope_stderr: float | None = 0.0
        intercept_stderr: float | None = 0.0
        r_squared = None
    elif len(counts) == 2:
        slope_stderr = intercept_stderr = None
        r_squared = 1.0
    else:
        slope_stderr = _finite(result.stderr)
        intercept_stderr = _finite(result.intercept_stderr)
        r = _finite(result.rvalue)
        r_squared = None if r is None else r * r
    return LineFit(
        slope=0.0 if constant else float(result.slope),
        intercept=float(values[0]) if constant else float(result.intercept),
        r_squared=r_squared,
        slope_stderr=slope_stderr,
        intercept_stderr=intercept_stderr,
        points=len(counts),
    )


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
    """time_per_instance_s, memory_per_instance_mib and density_instances from the rounds.

    density_instances is host total memory / memory slope ("how many would fit on this
    host"); the metadata adds the same count for the memory that was available when the
    workload started (what would fit next to whatever else was running). No fit (fewer
    than two distinct N) gives no measurements; a non-positive memory slope gives no density.
    `conditions` (e.g. host CPUs) is added to every fit's metadata: instances start in
    parallel until they outnumber the cores, so the slope depends on N against the cores.
    """
    extra = dict(conditions or {})
    counts = [p.n for p in points]
    time_fit = fit_line(counts, [p.all_ready_s for p in points])
    memory_fit = fit_line(counts, [p.memory_mib for p in points])
    if time_fit is None or memory_fit is None:
        return []
    memory_metadata = memory_fit.metadata(counts)
    drops = [p.host_drop_mib for p in points]
    if all(d is not None for d in drops):
        # What the whole host lost per instance, engine daemons and page cache included.
        drop_fit = fit_line(counts, [float(d) for d in drops if d is not None])
        memory_metadata["host_available_drop_slope_mib"] = drop_fit.slope if drop_fit else None
    measured = [
        Measurement(
            "time_per_instance_s", time_fit.slope, "s", False, time_fit.metadata(counts) | extra
        ),
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
