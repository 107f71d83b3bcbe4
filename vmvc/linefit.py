"""Least-squares straight lines through (N, value) points, and when one may be named (pure).

Used by the scale workload (memory per extra instance, per repetition) and by the analysis
step (the all-ready curve, vmvc.curves). It imports nothing of vmvc.

When a line "fits": r² alone cannot tell a line from a curve (Anscombe, "Graphs in
Statistical Analysis", The American Statistician 27(1), 1973: four data sets with the same
r² of 0.67, one of them a clean curve), so a scale curve is always shown point by point and
a slope is named only where

* at least MIN_COUNTS distinct instance counts were measured (two points always lie on a
  line: r² is 1 by construction and says nothing), and
* r² >= R2_FLOOR.

Why 0.95: the curve scale-out gives on a CPU-bound host is a knee. N instances that each
need T CPU-seconds to start, on c cores, are all ready after about T * max(1, N / c)
(processor sharing): flat up to the core count, then rising. Through N = 1, 2, 3 on two
cores (issue 13's evidence: 6.5, 6.6, 10.0 s) a line reaches only r² = 0.75, whatever the
height of the jump; through the default profile's counts 1, c, 2c + 1 the same knee reaches
r² = 0.94. A floor of 0.9 would still name a slope across that knee; 0.95 does not
(tests/unit/test_scalefit.py checks both). Counts that reach far past the cores
(1, c, 2c, 4c) make the rising part dominate (r² 0.98 for c = 2), and there the slope is
what it then means: the cost of one more instance once the cores are busy.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scipy import stats as sps

R2_FLOOR = 0.95
MIN_COUNTS = 3


@dataclass(frozen=True)
class LineFit:
    """y = slope * N + intercept; r_squared and stderr are None where undefined."""

    slope: float
    intercept: float
    r_squared: float | None
    slope_stderr: float | None
    intercept_stderr: float | None
    points: int
    distinct_counts: int = 0

    def metadata(self, counts: Sequence[int]) -> dict[str, Any]:
        return {
            "intercept": self.intercept,
            "r_squared": self.r_squared,
            "slope_stderr": self.slope_stderr,
            "intercept_stderr": self.intercept_stderr,
            "points": self.points,
            "counts": list(counts),
        }

    def fits(self, floor: float = R2_FLOOR) -> bool:
        """True when a straight line may be named: enough counts and r² at the floor.

        A constant curve (r² undefined, slope exactly 0) fits: a flat line is a line.
        """
        if self.distinct_counts < MIN_COUNTS:
            return False
        if self.r_squared is None:
            return self.slope == 0.0
        return self.r_squared >= floor

    def why_not(self, floor: float = R2_FLOOR) -> str:
        """'' when the line fits, else the reason in words (the reports print it)."""
        if self.fits(floor):
            return ""
        if self.distinct_counts < MIN_COUNTS:
            return (
                f"no slope: {self.distinct_counts} instance counts cannot show whether a line "
                f"fits (needs {MIN_COUNTS})"
            )
        shown = "n/a" if self.r_squared is None else f"{self.r_squared:.2f}"
        return f"no slope: a line does not fit (r\N{SUPERSCRIPT TWO} = {shown} < {floor:g})"


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
    distinct = len(set(counts))
    if distinct < 2:
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
        distinct_counts=distinct,
    )
