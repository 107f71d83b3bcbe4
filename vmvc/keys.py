"""How samples are grouped: a metric measured per instance count or per failure kind is one
metric per group.

The scale workload records `all_ready_s` and `memory_mib` once per instance count N
(``metadata.n``). Pooling N = 1, 2, 3 into one median would mix three different quantities,
and make the largest N look like "outliers"; so every statistic, ratio, compare row, history
row and live figure keys such a sample as ``all_ready_s@N=3``. The recovery workload does
the same per failure kind (``metadata.failure``): ``recovery_s@instance`` is not
``recovery_s@guest_kernel_panic``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_PER_N = re.compile(r"^(?P<metric>.+)@N=(?P<n>\d+)$")
_PER_FAILURE = re.compile(r"^(?P<metric>.+)@(?P<failure>[a-z][a-z0-9_]{0,31})$")


def metric_key(metric: str, metadata: Mapping[str, Any]) -> str:
    """``metric@N=<n>`` at an instance count, ``metric@<failure>`` per failure kind, else
    the metric."""
    n = metadata.get("n")
    if isinstance(n, int) and not isinstance(n, bool):
        return f"{metric}@N={n}"
    failure = metadata.get("failure")
    if isinstance(failure, str) and _PER_FAILURE.match(f"{metric}@{failure}"):
        return f"{metric}@{failure}"
    return metric


def split_key(key: str) -> tuple[str, int | None]:
    """(metric, N) of a key made by metric_key; N is None for other metrics."""
    match = _PER_N.match(key)
    if match is None:
        return split_failure(key)[0], None
    return match["metric"], int(match["n"])


def split_failure(key: str) -> tuple[str, str | None]:
    """(metric, failure kind) of a key made by metric_key; None for other metrics."""
    if _PER_N.match(key):
        return key, None
    match = _PER_FAILURE.match(key)
    if match is None:
        return key, None
    return match["metric"], match["failure"]


def display(key: str) -> str:
    """``all_ready_s (N=3)``, ``recovery_s (instance)`` for people."""
    metric, n = split_key(key)
    if n is not None:
        return f"{metric} (N={n})"
    metric, failure = split_failure(key)
    return metric if failure is None else f"{metric} ({failure.replace('_', ' ')})"
