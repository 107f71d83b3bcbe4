"""A/B comparison of two result files: what got slower, what got faster, what is noise.

Like Firecracker's A/B performance tests, a change counts only when three things agree:
the permutation test says the two sets of repetitions differ (p < alpha), the change in the
median is larger than the noise threshold, and the bootstrap CI of that change excludes 0.
Anything less is "no change" — on a shared host, single-digit percent swings are weather.
"""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from rich import box
from rich.table import Table
from rich.text import Text
from scipy import stats as sps

from vmvc import stats as st
from vmvc.results import ResultDocument, Sample
from vmvc.safe_text import md_cell

REGRESSION, IMPROVEMENT, NO_CHANGE = "regression", "improvement", "no change"
# Permutation tests are exact (all splits) up to this many splits, else this many random
# ones: 7 + 7 repetitions already have 3432 splits, and the enumeration is slow Python.
PERMUTATIONS = 2000


class IncomparableResultsError(Exception):
    """Two results that should not be compared (other host or acceleration); one line."""


def _identity(doc: ResultDocument) -> dict[str, Any]:
    """What must match for a comparison to mean something, plus what names the run."""
    return {
        "run_id": doc.run_id,
        "started_at": doc.started_at,
        "hostname": doc.environment.get("hostname"),
        "accel": doc.accel,
        "image_id": doc.image.get("id"),
        "profile": doc.config.get("profile"),
    }


def _mismatches(base: dict[str, Any], new: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(blocking, advisory) differences; hosts and accel block, image and profile warn.

    A different host or a switch between KVM and TCG changes results by far more than any
    code change could, so such a comparison is refused unless forced.
    """
    blocking, advisory = [], []
    labels = {
        "hostname": "host",
        "accel": "acceleration",
        "image_id": "image id",
        "profile": "profile",
    }
    for key, label in labels.items():
        old, now = base[key], new[key]
        if old == now:
            continue
        if old is None or now is None:
            advisory.append(f"{label} not recorded in one result ({old!r} vs {now!r})")
            continue
        message = f"different {label}: {old} vs {now}"
        (blocking if key in ("hostname", "accel") else advisory).append(message)
    return blocking, advisory


def _change_pct(base: np.ndarray, new: np.ndarray, axis: int = -1) -> np.ndarray:
    """Relative change of the median, in percent of the base median."""
    before = np.median(base, axis=axis)
    after = np.median(new, axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (after - before) / np.abs(before) * 100.0


def _median_difference(base: np.ndarray, new: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(new, axis=axis) - np.median(base, axis=axis)


def permutation_p(base: Sequence[float], new: Sequence[float], rng: np.random.Generator) -> float:
    """Two-sided permutation-test p-value for a difference of medians (exact when small)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        result = sps.permutation_test(
            (np.asarray(base, dtype=float), np.asarray(new, dtype=float)),
            _median_difference,
            permutation_type="independent",
            vectorized=True,
            n_resamples=PERMUTATIONS,
            alternative="two-sided",
            rng=rng,
        )
    return float(result.pvalue)


def welch_p(base: Sequence[float], new: Sequence[float]) -> float:
    """Two-sided p of Welch's t-test; identical constant groups give 1 (no difference)."""
    # Nearly identical groups (a result compared with itself) warn about precision loss;
    # the p of 1 that follows is the right answer, so the warning is noise here.
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = sps.ttest_ind(np.asarray(new, float), np.asarray(base, float), equal_var=False)
    p = float(result.pvalue)
    if np.isnan(p):
        return 1.0 if np.median(base) == np.median(new) else 0.0
    return p


@functools.lru_cache(maxsize=256)
def smallest_p(n_base: int, n_new: int) -> float:
    """The smallest p-value the median permutation test can give for these sizes.

    Found by testing two perfectly separated groups. A difference of medians only sees the
    middle of each group, so many splits tie with the observed one: with 3 + 3 repetitions
    p never falls below 0.2, with 5 + 5 not below 0.048, with 7 + 7 not below 0.012. The
    user should hear that rather than see an unexplained "no change".
    """
    low = np.arange(n_base, dtype=float)
    high = np.arange(n_new, dtype=float) + 1e6
    return permutation_p(low, high, np.random.default_rng(0))


def _classify(
    change: float | None,
    ci: tuple[float, float] | None,
    p_value: float,
    higher_is_better: bool,
    noise_threshold: float,
    alpha: float,
) -> str:
    if change is None or ci is None:
        return NO_CHANGE
    significant = (
        p_value < alpha
        and abs(change) > noise_threshold * 100
        and (ci[0] > 0 or ci[1] < 0)  # the CI of the change excludes 0
    )
    if not significant:
        return NO_CHANGE
    better = change > 0 if higher_is_better else change < 0
    return IMPROVEMENT if better else REGRESSION


def _row(
    key: st.GroupKey,
    base: list[Sample],
    new: list[Sample],
    *,
    noise_threshold: float,
    alpha: float,
    confidence: float,
    resamples: int,
    seed: int,
) -> dict[str, Any]:
    host, backend, workload, metric = key
    before = np.array([s.value for s in base], dtype=float)
    after = np.array([s.value for s in new], dtype=float)
    base_median, new_median = float(np.median(before)), float(np.median(after))
    change = st.plain_float(_change_pct(before, after)) if base_median != 0 else None
    row: dict[str, Any] = {
        "host": host,
        "backend": backend,
        "workload": workload,
        "metric": metric,
        "unit": new[0].unit,
        "higher_is_better": new[0].higher_is_better,
        "n_base": int(before.size),
        "n_new": int(after.size),
        "base_median": base_median,
        "new_median": new_median,
        "change_pct": change,
        "ci_low_pct": None,
        "ci_high_pct": None,
        "p_value": None,
        "classification": NO_CHANGE,
        "note": "",
    }
    if before.size < 2 or after.size < 2:
        row["note"] = "too few repetitions"
        return row
    if change is None:
        row["note"] = "base median is 0: no relative change"
        return row
    ci = st.bootstrap_ci(
        [before, after],
        _change_pct,
        confidence=confidence,
        resamples=resamples,
        rng=st.rng_for(seed, *key, "ci"),
    )
    floor = smallest_p(before.size, after.size)
    if floor < alpha:
        p_value = permutation_p(before, after, st.rng_for(seed, *key, "p"))
        test = "permutation test of the medians"
    else:
        # Too few repetitions for the permutation test ever to reach alpha (3 + 3 cannot go
        # below p = 0.2): Welch's t-test, which assumes roughly normal values, decides
        # instead, and the row says so. The noise threshold and the CI still apply.
        p_value = welch_p(before, after)
        test = "Welch t-test"
    row.update(
        ci_low_pct=ci[0] if ci else None,
        ci_high_pct=ci[1] if ci else None,
        p_value=p_value,
        classification=_classify(
            change, ci, p_value, row["higher_is_better"], noise_threshold, alpha
        ),
    )
    row["test"] = test
    if floor >= alpha:
        row["note"] = (
            f"few repetitions: the permutation test cannot reach p < {alpha:g} (smallest "
            f"possible p {floor:.2g}), so {test} p was used; more repetitions give a "
            "distribution-free answer"
        )
    return row


def compare(
    base: ResultDocument,
    new: ResultDocument,
    *,
    noise_threshold: float = 0.05,
    alpha: float = 0.05,
    seed: int = 0,
    force: bool = False,
    confidence: float = 0.95,
    resamples: int = 2000,
) -> dict[str, Any]:
    """Compare every (host, backend, workload, metric) measured in both results.

    ``noise_threshold`` is a fraction (0.05 = 5 %); change values are in percent of the
    base median. Raises IncomparableResultsError when the hosts or the accelerations differ,
    unless ``force`` (the difference is then the first warning).
    """
    base_id, new_id = _identity(base), _identity(new)
    blocking, advisory = _mismatches(base_id, new_id)
    if blocking and not force:
        raise IncomparableResultsError("; ".join(blocking) + " (use --force to compare anyway)")
    base_groups, new_groups = st.group_samples(base), st.group_samples(new)
    rows = [
        _row(
            key,
            base_groups[key],
            samples,
            noise_threshold=noise_threshold,
            alpha=alpha,
            confidence=confidence,
            resamples=resamples,
            seed=seed,
        )
        for key, samples in new_groups.items()
        if key in base_groups
    ]
    return {
        "base": base_id,
        "new": new_id,
        "noise_threshold": noise_threshold,
        "alpha": alpha,
        "confidence": confidence,
        "seed": seed,
        "forced": bool(blocking and force),
        "warnings": blocking + advisory,
        "rows": rows,
        "only_in_base": ["/".join(k) for k in base_groups if k not in new_groups],
        "only_in_new": ["/".join(k) for k in new_groups if k not in base_groups],
        "regressions": [r for r in rows if r["classification"] == REGRESSION],
        "improvements": [r for r in rows if r["classification"] == IMPROVEMENT],
    }


# ---------------------------------------------------------------- rendering


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}%"


def _ci(row: dict[str, Any]) -> str:
    if row["ci_low_pct"] is None:
        return "-"
    return f"{row['ci_low_pct']:+.1f}% .. {row['ci_high_pct']:+.1f}%"


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _multi_host(result: dict[str, Any]) -> bool:
    return len({r["host"] for r in result["rows"]}) > 1


def _cells(row: dict[str, Any], hosts: bool) -> list[str]:
    cells = [row["host"]] if hosts else []
    return [
        *cells,
        row["backend"],
        f"{row['workload']}/{row['metric']}",
        row["unit"],
        _num(row["base_median"]),
        _num(row["new_median"]),
        _pct(row["change_pct"]),
        _ci(row),
        _p(row["p_value"]),
        row["classification"],
        row["note"],
    ]


HEADERS = ["backend", "metric", "unit", "base", "new", "change", "CI", "p", "result", "note"]
STYLES = {REGRESSION: "bold red", IMPROVEMENT: "bold green", NO_CHANGE: ""}


def render_table(result: dict[str, Any]) -> Table:
    """A rich table, regressions in red and improvements in green."""
    hosts = _multi_host(result)
    title = Text(f"{result['base']['run_id']} -> {result['new']['run_id']}")  # not markup
    table = Table(title=title, box=box.SIMPLE_HEAD)
    for header in (["host"] if hosts else []) + HEADERS:
        numeric = header in {"base", "new", "change", "p"}
        table.add_column(header, justify="right" if numeric else "left", no_wrap=header != "note")
    for row in result["rows"]:
        cells = _cells(row, hosts)
        style = STYLES[row["classification"]]
        table.add_row(*[Text(cell) for cell in cells], style=style or None)
    return table


def _md_escape(text: str) -> str:
    """Strings from result files reach a CI job summary: inert, one line (safe_text)."""
    return md_cell(text)


def to_markdown(result: dict[str, Any]) -> str:
    """A GitHub-flavoured markdown summary: warnings, then one row per metric."""
    hosts = _multi_host(result)
    base, new = result["base"], result["new"]
    lines = [
        f"## Comparison: {_md_escape(base['run_id'])} → {_md_escape(new['run_id'])}",
        "",
        f"Noise threshold {result['noise_threshold']:.0%}, alpha {result['alpha']:g}, "
        f"{result['confidence']:.0%} bootstrap CI of the change, permutation test p-value.",
        "",
    ]
    lines += [f"> **Warning:** {_md_escape(w)}" for w in result["warnings"]]
    if result["warnings"]:
        lines.append("")
    headers = (["host"] if hosts else []) + HEADERS
    lines.append("| " + " | ".join(headers) + " |")
    lines.append("|" + "|".join("---" for _ in headers) + "|")
    for row in result["rows"]:
        cells = [_md_escape(c) for c in _cells(row, hosts)]
        if row["classification"] != NO_CHANGE:
            cells[-2] = f"**{cells[-2]}**"
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(_md_escape(summary_line(result)))
    return "\n".join(lines) + "\n"


def to_json(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=1, allow_nan=False)


def _names(rows: list[dict[str, Any]]) -> str:
    return ", ".join(
        f"{r['backend']} {r['workload']}/{r['metric']} {_pct(r['change_pct'])}" for r in rows
    )


def summary_line(result: dict[str, Any]) -> str:
    """One line naming every regression and improvement, for terminals and CI logs."""
    regressions, improvements = result["regressions"], result["improvements"]
    parts = []
    if regressions:
        parts.append(f"{len(regressions)} regression(s): {_names(regressions)}")
    if improvements:
        parts.append(f"{len(improvements)} improvement(s): {_names(improvements)}")
    if parts:
        line = "; ".join(parts) + "."
    else:
        line = f"No significant change in {len(result['rows'])} metric(s)."
    # A metric that vanished (a skipped backend, a failed workload) is news too.
    for side in ("base", "new"):
        only = result[f"only_in_{side}"]
        if only:
            line += f" Only in {side}: {', '.join(only)}."
    return line
