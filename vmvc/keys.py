"""How samples are grouped: a metric that depends on the instance count is one metric per N.

The scale workload records `all_ready_s` and `memory_mib` once per instance count N
(``metadata.n``). Pooling N = 1, 2, 3 into one median would mix three different quantities,
and make the largest N look like "outliers"; so every statistic, ratio, compare row, history
row and live figure keys such a sample as ``all_ready_s@N=3``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_PER_N = re.compile(r"^(?P<metric>.+)@N=(?P<n>\d+)$")


def metric_key(metric: str, metadata: Mapping[str, Any]) -> str:
    """``metric@N=<n>`` for a sample measured at an instance count, else the metric."""
    n = metadata.get("n")
    if isinstance(n, int) and not isinstance(n, bool):
        return f"{metric}@N={n}"
    return metric


def split_key(key: str) -> tuple[str, int | None]:
    """(metric, N) of a key made by metric_key; N is None for ordinary metrics."""
    match = _PER_N.match(key)
    if match is None:
        return key, None
    return match["metric"], int(match["n"])


def display(key: str) -> str:
    """``all_ready_s (N=3)`` for people."""
    metric, n = split_key(key)
    return metric if n is None else f"{metric} (N={n})"
