"""A/B comparison of two result files: what got slower, what got faster, what is noise.

Built to gate a nightly: a change counts only when two things agree — the change of the
median is larger than the noise threshold, and the test of "no difference" is rejected
after multiple-comparison control over every metric of the comparison (Holm's step-down
method: the family-wise error rate, the chance of *any* false regression in one compare,
stays below alpha whatever the dependence between metrics).

The test per metric is an exact permutation test of the difference of mean log values
(all splits of the repetitions, so its p-value is exact and distribution-free) where the
repetitions allow it to reach significance after the correction; where they cannot (3 + 3
repetitions have only 20 splits, so p >= 0.1), the row says so and Student's t-test on the
log values decides instead. It assumes the same spread (CV) in both runs — the null of "the
same metric on the same machine, unchanged" — and is exact for lognormal values under it.
Welch's unequal-variance test was tried and rejected: with 3 + 3 values its degrees of
freedom fall towards 2, and a 30 % drop with a CV of 2 % was missed after the correction.
The interval of the change is the Mann-Whitney interval of the ratio of medians
(vmvc.intervals), shown where the repetitions allow one.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from rich import box
from rich.table import Table
from rich.text import Text
from scipy import stats as sps

from vmvc import stats as st
from vmvc.environment import accel_by_host
from vmvc.formatting import format_number
from vmvc.keys import display
from vmvc.results import ResultDocument, Sample
from vmvc.safe_text import md_cell

REGRESSION, IMPROVEMENT, NO_CHANGE = "regression", "improvement", "no change"
PERMUTATION, T_TEST = "exact permutation test", "Student t-test on log values"
MONTE_CARLO = "permutation test (random splits)"
# All splits are enumerated up to this many (8 + 8 repetitions have 12870); beyond, this
# many random splits, whose smallest p (1 / 20001) still clears Holm's bar over 85 metrics.
EXACT_SPLITS = 50_000
RANDOM_SPLITS = 20_000


class IncomparableResultsError(Exception):
    """Two results that should not be compared (other machine or acceleration); one line."""


# What must match for a comparison to mean something (blocking), and what only warns.
BLOCKING = {
    "cpu_model": "CPU model",
    "cores": "core count",
    "kernel": "kernel",
    "accel": "acceleration",
}
ADVISORY = {"hostname": "host name", "image_id": "image id", "profile": "profile"}


def _identity(doc: ResultDocument) -> dict[str, Any]:
    """What must match for a comparison to mean something, plus what names the run."""
    env = doc.environment
    hosts = list(dict.fromkeys(s.host for s in doc.measured())) or ["local"]
    accels = accel_by_host(env, hosts)
    return {
        "run_id": doc.run_id,
        "started_at": doc.started_at,
        "hostname": env.get("hostname"),
        "cpu_model": env.get("cpu_model"),
        "cores": env.get("cores"),
        "kernel": env.get("kernel"),
        # One host: its acceleration; several: host -> acceleration.
        "accel": accels[hosts[0]] if len(hosts) == 1 else accels,
        "image_id": doc.image.get("id"),
        "profile": doc.config.get("profile"),
    }


def _mismatches(base: dict[str, Any], new: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(blocking, advisory) differences.

    Another CPU, core count, kernel or a switch between KVM and TCG changes results by far
    more than any code change could, so such a comparison is refused unless forced. A new
    host name alone (hosted CI runners get one per job) only warns.
    """
    blocking, advisory = [], []
    for labels, target in ((BLOCKING, blocking), (ADVISORY, advisory)):
        for key, label in labels.items():
            old, now = base.get(key), new.get(key)
            if old == now:
                continue
            if old is None or now is None:
                advisory.append(f"{label} not recorded in one result ({old!r} vs {now!r})")
                continue
            target.append(f"different {label}: {old} vs {now}")
    return blocking, advisory


def _change_pct(base: np.ndarray, new: np.ndarray) -> float | None:
    """Relative change of the median, in percent of the base median."""
    before = float(np.median(base))
    if before == 0:
        return None
    return (float(np.median(new)) - before) / abs(before) * 100.0


def _scale(base: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """Log values where all are positive (a change is a ratio), else the raw values."""
    if np.all(base > 0) and np.all(new > 0):
        return np.log(base), np.log(new), "log"
    return base, new, "raw"


@functools.lru_cache(maxsize=8)
def _splits(total: int, first: int) -> np.ndarray:
    """Every way to choose the first group's positions among all values (C(total, first))."""
    return np.array(list(itertools.combinations(range(total), first)), dtype=np.intp)


def permutation_p(
    base: Sequence[float], new: Sequence[float], rng: np.random.Generator | None = None
) -> float:
    """Two-sided permutation p of the difference of mean log values (exact when feasible).

    Exact: every split of the pooled values into groups of the two sizes, p the share of
    splits at least as extreme as the observed one. More than EXACT_SPLITS splits:
    RANDOM_SPLITS random ones, p = (extreme + 1) / (splits + 1).
    """
    a, b, _ = _scale(np.asarray(base, dtype=float), np.asarray(new, dtype=float))
    pooled = np.concatenate([a, b])
    n, total = a.size, pooled.size
    observed = abs(b.mean() - a.mean())
    tolerance = 1e-9 * max(1.0, float(np.max(np.abs(pooled))))
    if math.comb(total, n) <= EXACT_SPLITS:
        chosen = pooled[_splits(total, n)].sum(axis=1)
        stats = np.abs((pooled.sum() - chosen) / b.size - chosen / n)
        return float(np.mean(stats >= observed - tolerance))
    rng = rng or np.random.default_rng(0)
    order = np.argsort(rng.random((RANDOM_SPLITS, total)), axis=1)
    chosen = pooled[order[:, :n]].sum(axis=1)
    stats = np.abs((pooled.sum() - chosen) / b.size - chosen / n)
    return float((np.sum(stats >= observed - tolerance) + 1) / (RANDOM_SPLITS + 1))


def smallest_p(n_base: int, n_new: int) -> float:
    """The smallest p the permutation test can give for these sizes (no ties).

    2 / C(n + m, n) for the exact test (the observed split and its mirror): 3 + 3
    repetitions never go below 0.1, 7 + 7 reach 0.00058.
    """
    splits = math.comb(n_base + n_new, n_base)
    if splits <= EXACT_SPLITS:
        return min(1.0, 2.0 / splits)
    return 1.0 / (RANDOM_SPLITS + 1)


def t_test_p(base: Sequence[float], new: Sequence[float]) -> float:
    """Two-sided p of Student's t-test on log values; identical constant groups give 1."""
    return t_test_ps([(base, new)])[0]


def t_test_ps(pairs: Sequence[tuple[Sequence[float], Sequence[float]]]) -> list[float]:
    """t_test_p for many (base, new) pairs: pairs of the same sizes and scale go to SciPy as
    one 2-D call (a nightly compare tests ~85 metrics; one call each costs more in SciPy's
    argument handling than in the test itself)."""
    scaled = [
        _scale(np.asarray(base, dtype=float), np.asarray(new, dtype=float)) for base, new in pairs
    ]
    groups: dict[tuple[int, int, str], list[int]] = {}
    for index, (a, b, how) in enumerate(scaled):
        groups.setdefault((a.size, b.size, how), []).append(index)
    p_values = [1.0] * len(pairs)
    for indices in groups.values():
        a = np.stack([scaled[i][0] for i in indices])
        b = np.stack([scaled[i][1] for i in indices])
        # Nearly identical groups (a result compared with itself) warn about precision loss;
        # the p of 1 that follows is the right answer, so the warning is noise here.
        with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            result = sps.ttest_ind(b, a, equal_var=True, axis=1)
        for row, index in enumerate(indices):
            p = float(np.atleast_1d(result.pvalue)[row])
            if np.isnan(p):
                p = 1.0 if np.mean(a[row]) == np.mean(b[row]) else 0.0
            p_values[index] = p
    return p_values


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (reject where adjusted p < alpha)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def _classify(
    change: float | None,
    p_adjusted: float | None,
    higher_is_better: bool,
    noise_threshold: float,
    alpha: float,
) -> str:
    if change is None or p_adjusted is None:
        return NO_CHANGE
    if not (p_adjusted < alpha and abs(change) > noise_threshold * 100):
        return NO_CHANGE
    better = change > 0 if higher_is_better else change < 0
    return IMPROVEMENT if better else REGRESSION


def _row(
    key: st.GroupKey, base: list[Sample], new: list[Sample], *, confidence: float, seed: int
) -> dict[str, Any]:
    """One metric's numbers and raw p (classification needs the whole family: compare())."""
    host, backend, workload, metric = key
    before = np.array([s.value for s in base], dtype=float)
    after = np.array([s.value for s in new], dtype=float)
    row: dict[str, Any] = {
        "host": host,
        "backend": backend,
        "workload": workload,
        "metric": metric,
        "unit": new[0].unit,
        "higher_is_better": new[0].higher_is_better,
        "n_base": int(before.size),
        "n_new": int(after.size),
        "base_median": float(np.median(before)),
        "new_median": float(np.median(after)),
        "change_pct": _change_pct(before, after),
        "ci_low_pct": None,
        "ci_high_pct": None,
        "p_value": None,
        "p_adjusted": None,
        "test": None,
        "classification": NO_CHANGE,
        "note": "",
    }
    if before.size < 2 or after.size < 2:
        row["note"] = "too few repetitions"
        return row
    if row["change_pct"] is None:
        row["note"] = "base median is 0: no relative change"
        return row
    ci = st.ratio_ci(after, before, confidence=confidence)
    if ci is not None:
        row.update(ci_low_pct=(ci[0] - 1) * 100, ci_high_pct=(ci[1] - 1) * 100)
    rng = np.random.default_rng([seed, len(base), len(new)])
    row["_permutation"] = lambda: permutation_p(before, after, rng)
    row["_t_test"] = (before, after)  # tested with the whole family: t_test_ps
    return row


def _test_family(rows: list[dict[str, Any]], alpha: float) -> None:
    """Choose each row's test, then Holm-adjust the p-values of the whole family."""
    tested = [r for r in rows if "_permutation" in r]
    family = len(tested)
    bar = alpha / max(family, 1)  # what Holm asks of the most significant row
    by_t_test: list[dict[str, Any]] = []
    for row in tested:
        floor = smallest_p(row["n_base"], row["n_new"])
        if floor < bar:
            row["p_value"] = row["_permutation"]()
            exact = math.comb(row["n_base"] + row["n_new"], row["n_base"]) <= EXACT_SPLITS
            row["test"] = PERMUTATION if exact else MONTE_CARLO
        else:
            by_t_test.append(row)
            row["test"] = T_TEST
            row["note"] = (
                f"{row['n_base']} + {row['n_new']} repetitions: a permutation test cannot go "
                f"below p = {floor:.2g} and Holm over {family} metrics needs p < {bar:.2g}; "
                f"{T_TEST} used (assumes lognormal values with the same spread in both runs)"
            )
    for row, p in zip(by_t_test, t_test_ps([r["_t_test"] for r in by_t_test]), strict=True):
        row["p_value"] = p
    for row, adjusted in zip(tested, holm([r["p_value"] for r in tested]), strict=True):
        row["p_adjusted"] = adjusted
    for row in rows:
        row.pop("_permutation", None)
        row.pop("_t_test", None)


def compare(
    base: ResultDocument,
    new: ResultDocument,
    *,
    noise_threshold: float = 0.05,
    alpha: float = 0.05,
    seed: int = 0,
    force: bool = False,
    confidence: float = st.CONFIDENCE,
) -> dict[str, Any]:
    """Compare every (host, backend, workload, metric key) measured in both results.

    ``noise_threshold`` is a fraction (0.05 = 5 %); change values are in percent of the
    base median. Raises IncomparableResultsError when CPU model, core count, kernel or
    acceleration differ, unless ``force`` (the differences are then the first warnings).
    """
    base_id, new_id = _identity(base), _identity(new)
    blocking, advisory = _mismatches(base_id, new_id)
    if blocking and not force:
        raise IncomparableResultsError("; ".join(blocking) + " (use --force to compare anyway)")
    base_groups, new_groups = st.group_samples(base), st.group_samples(new)
    rows = [
        _row(key, base_groups[key], samples, confidence=confidence, seed=seed)
        for key, samples in new_groups.items()
        if key in base_groups
    ]
    _test_family(rows, alpha)
    for row in rows:
        row["classification"] = _classify(
            row["change_pct"], row["p_adjusted"], row["higher_is_better"], noise_threshold, alpha
        )
    return {
        "base": base_id,
        "new": new_id,
        "noise_threshold": noise_threshold,
        "alpha": alpha,
        "correction": "Holm",
        "confidence": confidence,
        "seed": seed,
        "forced": bool(blocking and force),
        "differences": blocking if force else [],
        "warnings": blocking + advisory,
        "rows": rows,
        "only_in_base": ["/".join(k) for k in base_groups if k not in new_groups],
        "only_in_new": ["/".join(k) for k in new_groups if k not in base_groups],
        "regressions": [r for r in rows if r["classification"] == REGRESSION],
        "improvements": [r for r in rows if r["classification"] == IMPROVEMENT],
    }


# ---------------------------------------------------------------- rendering


def _num(value: float | None) -> str:
    """The reports' number format (vmvc.formatting), '-' where there is none."""
    return "-" if value is None else format_number(value)


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
        f"{row['workload']}/{display(row['metric'])}",
        row["unit"],
        _num(row["base_median"]),
        _num(row["new_median"]),
        _pct(row["change_pct"]),
        _ci(row),
        _p(row["p_value"]),
        _p(row["p_adjusted"]),
        row["classification"],
        row["note"],
    ]


HEADERS = [
    "backend",
    "metric",
    "unit",
    "base",
    "new",
    "change",
    "CI",
    "p",
    "p (Holm)",
    "result",
    "note",
]
STYLES = {REGRESSION: "bold red", IMPROVEMENT: "bold green", NO_CHANGE: ""}


def render_table(result: dict[str, Any]) -> Table:
    """A rich table, regressions in red and improvements in green."""
    hosts = _multi_host(result)
    # Run ids and host names come from the files: Text, never rich markup.
    title = Text(f"{result['base']['run_id']} -> {result['new']['run_id']}")
    caption = None
    if result.get("differences"):
        caption = Text("compared despite (--force): " + "; ".join(result["differences"]))
    table = Table(title=title, caption=caption, box=box.SIMPLE_HEAD)
    for header in (["host"] if hosts else []) + HEADERS:
        numeric = header in {"base", "new", "change", "p", "p (Holm)"}
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
        f"Noise threshold {result['noise_threshold']:.0%}; alpha {result['alpha']:g} after "
        f"Holm's correction over {len(result['rows'])} metrics (family-wise); exact "
        "permutation test where the repetitions allow, else Student's t-test on log values "
        "(named per row); CI: Mann-Whitney interval of the change, where the repetitions "
        "allow one.",
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
        f"{r['backend']} {r['workload']}/{display(r['metric'])} {_pct(r['change_pct'])}"
        for r in rows
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
