"""The derived part of a result: typed statistics (vmvc.stats) and verdicts (vmvc.claims).

Both are computed once, by the analysis step (orchestrate.analyse / reanalyse), from the raw
samples, and stored in the result document; exporters only read them. What a file on disk
says here is never shown: `results.load` discards it and `reanalyse` recomputes it, so a
file cannot forge a verdict. Plain JSON values only, so a report renders years later.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

CONFIRMED, REFUTED, INCONCLUSIVE = "confirmed", "refuted", "inconclusive"
NOT_MEASURED, REPORTED, FACT = "not measured", "reported", "fact"
NOT_KVM = "not measured under KVM"
VerdictKind = Literal[
    "confirmed",
    "refuted",
    "inconclusive",
    "not measured",
    "not measured under KVM",
    "reported",
    "fact",
]
VERDICT_KINDS: tuple[str, ...] = get_args(VerdictKind)


class Summary(BaseModel):
    """One (host, backend, workload, metric key): its median, interval and raw values."""

    model_config = ConfigDict(extra="forbid")

    host: str
    backend: str
    workload: str
    metric: str  # a metric key: all_ready_s@N=3 for a per-N metric (vmvc.keys)
    unit: str
    higher_is_better: bool
    n: int
    median: float
    mean: float
    stdev: float | None = None
    cv: float | None = None
    min: float
    max: float
    # The median's distribution-free interval; None when n is below needs_n.
    ci_low: float | None = None
    ci_high: float | None = None
    ci_level: float | None = None
    needs_n: int | None = None
    outliers: list[int] = Field(default_factory=list)  # repetitions flagged, never dropped
    values: list[float] = Field(default_factory=list)


class Ratio(BaseModel):
    """numerator median / denominator median of one (host, workload, metric key)."""

    model_config = ConfigDict(extra="forbid")

    host: str
    workload: str
    metric: str
    unit: str
    numerator: str
    denominator: str
    ratio: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n_num: int
    n_den: int
    needs_n: int | None = None


class CurvePoint(BaseModel):
    """One instance count of a curve: the median over repetitions and its interval."""

    model_config = ConfigDict(extra="forbid")

    n: int
    median: float
    ci_low: float | None = None
    ci_high: float | None = None
    min: float
    max: float
    repetitions: int


class Curve(BaseModel):
    """A per-N metric of one (host, backend) as a curve, and a line only where one fits.

    slope/intercept/r_squared describe the least-squares line through the per-N medians;
    `fits` says whether it may be named (vmvc.linefit: enough counts, r² at the floor);
    `note` says why not. host_cpus is where a CPU-bound curve bends; refused_counts are
    the counts the memory guard refused (not measured, never silently dropped).
    """

    model_config = ConfigDict(extra="forbid")

    host: str
    backend: str
    workload: str
    metric: str
    unit: str
    points: list[CurvePoint] = Field(default_factory=list)
    slope: float | None = None
    intercept: float | None = None
    r_squared: float | None = None
    r2_floor: float
    fits: bool = False
    note: str = ""
    host_cpus: int | None = None
    # Flat up to host_cpus, rising past it (CPU saturation): then no line fits.
    knee: bool = False
    refused_counts: list[int] = Field(default_factory=list)
    refused: str = ""


class Statistics(BaseModel):
    """The `statistics` block: every summary and the ratios the claims and reports use."""

    model_config = ConfigDict(extra="forbid")

    confidence: float = 0.95
    method: str = ""
    median_needs_n: int | None = None
    ratio_needs_n: int | None = None
    summaries: list[Summary] = Field(default_factory=list)
    ratios: list[Ratio] = Field(default_factory=list)
    # Per-N metrics (scale's all_ready_s) as curves per backend, with a line where one fits.
    curves: list[Curve] = Field(default_factory=list)
    # Why there are no statistics (the analysis failed on odd samples); shown in reports.
    note: str = ""

    def summary(
        self, backend: str, workload: str, metric: str, host: str = "local"
    ) -> Summary | None:
        """The summary of one (host, backend, workload, metric key), or None."""
        key = (host, backend, workload, metric)
        return next(
            (s for s in self.summaries if (s.host, s.backend, s.workload, s.metric) == key), None
        )

    def ratio(
        self, numerator: str, denominator: str, workload: str, metric: str, host: str = "local"
    ) -> Ratio | None:
        """The stored numerator/denominator ratio of one (host, workload, metric), or None."""
        key = (host, numerator, denominator, workload, metric)
        return next(
            (
                r
                for r in self.ratios
                if (r.host, r.numerator, r.denominator, r.workload, r.metric) == key
            ),
            None,
        )

    def curve(self, backend: str, workload: str, metric: str, host: str = "local") -> Curve | None:
        """The curve of one (host, backend, workload, base metric), or None."""
        key = (host, backend, workload, metric)
        return next(
            (c for c in self.curves if (c.host, c.backend, c.workload, c.metric) == key), None
        )


class Verdict(BaseModel):
    """One claim's verdict on one host, with the sentence and the numbers behind it."""

    model_config = ConfigDict(extra="forbid")

    claim: str
    title: str
    verdict: VerdictKind
    text: str
    qualifier: str = ""  # "n = 3; needs >= 4", "VM ran under TCG"
    numbers: dict[str, Any] = Field(default_factory=dict)
    host: str = "local"
    accel: str | None = None
    emulated: bool = False
    # The backends this verdict compares, in the claim's order ("libvirt", "docker"): with
    # several containers and VMs on the spectrum, "VM" and "container" alone say too little.
    compared: list[str] = Field(default_factory=list)


def is_io_anomaly(key: str, part: dict[str, Any], noise_threshold: float) -> bool:
    """A backend that beats native at disk I/O by more than the noise threshold.

    Every backend's I/O lands on the same host disk through more layers than native's, so
    it cannot be faster: such a result means a cache answered (a file too small, a run too
    short, a cache mode that is not the same), not that the backend is better. It is shown
    as an anomaly and never counted for or against C03. Judged on the ratio of medians
    (an interval needs 4 + 4 repetitions, and the quick profile's impossible results are
    exactly the ones to keep out).
    """
    return key.startswith("io/") and part["overhead"] < -noise_threshold
