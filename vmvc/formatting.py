"""How vmvc writes a number for people: reports, verdict sentences, compare, history.

One function, `format_number`, so every format agrees to the last digit shown; CSV keeps
full precision with `format_exact`. The bottom layer: it imports nothing of vmvc, so the
statistics, the claims, the exporters and the command line can all call it.
"""

from __future__ import annotations

import json
import math
from typing import Any

EN_DASH = "\N{EN DASH}"


def format_number(value: Any) -> str:
    """A measured number for people: three significant digits, integers from 1000 up.

    The same function renders Markdown and HTML tables, chart hover text and verdict
    numbers, so every format shows the same digits. CSV keeps full precision instead.
    """
    if value is None or isinstance(value, bool):
        return "—" if value is None else ("yes" if value else "no")
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(x):
        return "—"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:.0f}"
    if abs(x) < 0.001:
        return f"{x:.2e}"
    rounded = float(f"{x:.3g}")
    if abs(rounded) >= 1000:
        return f"{rounded:.0f}"
    decimals = max(0, 2 - math.floor(math.log10(abs(rounded))))
    return f"{rounded:.{decimals}f}"


def format_exact(value: float) -> str:
    """Full precision, round-trips through float() exactly (CSV)."""
    return repr(float(value))


def format_estimate(median: Any, low: Any = None, high: Any = None) -> str:
    """`median [low, high]`, or just the median when there is no interval."""
    text = format_number(median)
    if finite(low) and finite(high):
        return f"{text} [{format_number(low)}, {format_number(high)}]"
    return text


def format_range(median: Any, low: Any, high: Any, n: int) -> str:
    """`median (range min-max, n = 3)`: too few values for an interval, so the range."""
    spread = f"{format_number(low)}{EN_DASH}{format_number(high)}"
    return f"{format_number(median)} (range {spread}, n = {n})"


def finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def format_value(value: Any) -> str:
    """Any fact, metadata or config value as one line of text."""
    if isinstance(value, bool) or value is None:
        return format_number(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, list | tuple):
        return ", ".join(format_value(v) for v in value) if value else "—"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def format_quantity(value: Any, unit: str) -> str:
    """A number with its unit (`8.56 s`); a byte count in MiB or GiB, as people read sizes."""
    if value is None:
        return "n/a"
    if unit.lower() in {"bytes", "byte", "b"} and finite(value):
        mib = float(value) / 2**20
        return f"{format_number(mib / 1024)} GiB" if mib >= 1024 else f"{format_number(mib)} MiB"
    return f"{format_number(value)} {unit}".rstrip()
