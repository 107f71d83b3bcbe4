"""How samples are grouped: a metric measured in several variants is one metric per variant.

The scale workload records `all_ready_s` and `memory_mib` once per instance count N
(``metadata.n``). Pooling N = 1, 2, 3 into one median would mix three different quantities,
and make the largest N look like "outliers"; so every statistic, ratio, compare row, history
row and live figure keys such a sample as ``all_ready_s@N=3``.

The same holds for a metric measured in named variants: portability exports each image
uncompressed and compressed (``metadata.form``: ``export_bytes@compressed``), recovery
measures each failure kind (``metadata.failure``: ``recovery_s@instance`` is not
``recovery_s@guest_kernel_panic``). Only a short lowercase token names a variant; any other
value (a description written by an older vmvc) leaves the key as the metric.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_PER_N = re.compile(r"^(?P<metric>.+)@N=(?P<n>\d+)$")
_VARIANT = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_PER_VARIANT = re.compile(r"^(?P<metric>[^@]+)@(?P<variant>[a-z][a-z0-9_-]{0,31})$")
# Metadata fields that name a sample's variant, in the order they are looked at.
VARIANT_FIELDS = ("form", "failure")


def metric_key(metric: str, metadata: Mapping[str, Any]) -> str:
    """``metric@N=<n>`` at an instance count, ``metric@<variant>`` for a named form or failure
    kind, else the metric."""
    n = metadata.get("n")
    if isinstance(n, int) and not isinstance(n, bool):
        return f"{metric}@N={n}"
    for field in VARIANT_FIELDS:
        value = metadata.get(field)
        if isinstance(value, str) and _VARIANT.match(value):
            return f"{metric}@{value}"
    return metric


def split_key(key: str) -> tuple[str, int | None]:
    """(metric, N) of a key made by metric_key; N is None for a metric without a count (a
    per-variant key gives its metric, see split_variant)."""
    match = _PER_N.match(key)
    if match is not None:
        return match["metric"], int(match["n"])
    return split_variant(key)[0], None


def split_variant(key: str) -> tuple[str, str | None]:
    """(metric, variant) of a key made by metric_key; variant is None for other keys."""
    match = _PER_VARIANT.match(key)
    if match is None:
        return key, None
    return match["metric"], match["variant"]


# What each caller means by a variant (the key carries no field name: a form and a failure
# kind never share a metric).
split_form = split_variant
split_failure = split_variant


def display(key: str) -> str:
    """``all_ready_s (N=3)``, ``export_bytes (compressed)``, ``recovery_s (instance)``."""
    metric, n = split_key(key)
    if n is not None:
        return f"{metric} (N={n})"
    metric, variant = split_variant(key)
    return metric if variant is None else f"{metric} ({variant.replace('_', ' ')})"
