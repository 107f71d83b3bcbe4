"""How samples are grouped: a metric measured in several variants is one metric per variant.

The scale workload records `all_ready_s` and `memory_mib` once per instance count N
(``metadata.n``). Pooling N = 1, 2, 3 into one median would mix three different quantities,
and make the largest N look like "outliers"; so every statistic, ratio, compare row, history
row and live figure keys such a sample as ``all_ready_s@N=3``.

The same holds for a metric measured in named forms (``metadata.form``): portability exports
each image uncompressed and compressed, and a compressed size pooled with an uncompressed
one means nothing, so such a sample is keyed ``export_bytes@compressed``. Only a short
lowercase token is a form; any other value (a description written by an older vmvc) leaves
the key as the metric.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_PER_N = re.compile(r"^(?P<metric>.+)@N=(?P<n>\d+)$")
_FORM = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_PER_FORM = re.compile(r"^(?P<metric>[^@]+)@(?P<form>[a-z][a-z0-9_-]{0,31})$")


def metric_key(metric: str, metadata: Mapping[str, Any]) -> str:
    """``metric@N=<n>`` at an instance count, ``metric@<form>`` in a named form, else metric."""
    n = metadata.get("n")
    if isinstance(n, int) and not isinstance(n, bool):
        return f"{metric}@N={n}"
    form = metadata.get("form")
    if isinstance(form, str) and _FORM.match(form):
        return f"{metric}@{form}"
    return metric


def split_key(key: str) -> tuple[str, int | None]:
    """(metric, N) of a key made by metric_key; N is None for a metric without a count
    (a per-form key gives its metric, see form_of)."""
    match = _PER_N.match(key)
    if match is not None:
        return match["metric"], int(match["n"])
    return split_form(key)[0], None


def split_form(key: str) -> tuple[str, str | None]:
    """(metric, form) of a key made by metric_key; form is None for other keys."""
    match = _PER_FORM.match(key)
    if match is None:
        return key, None
    return match["metric"], match["form"]


def display(key: str) -> str:
    """``all_ready_s (N=3)`` and ``export_bytes (compressed)`` for people."""
    metric, n = split_key(key)
    if n is not None:
        return f"{metric} (N={n})"
    metric, form = split_form(key)
    return metric if form is None else f"{metric} ({form})"
