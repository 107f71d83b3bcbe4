"""What every human-readable report shows, built from the result document alone.

The Markdown and HTML exporters both read this view, and every number they print goes
through `vmvc.formatting.format_number`, so the two agree to the last digit shown. The view
reads the document's typed statistics and verdicts (computed once by the analysis step,
orchestrate.analyse / reanalyse) and never computes either; titles, units and order come
from `vmvc.catalogue`, backend labels and order from `doc.backend_info`. Nothing here
touches a backend or names one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from vmvc.analysed import VERDICT_KINDS, Curve, Statistics, Summary, is_io_anomaly
from vmvc.analysed import Verdict as StoredVerdict
from vmvc.catalogue import (
    FAILURES,
    failure,
    form_rank,
    order_metrics,
    order_workloads,
    outcome_metrics,
    steady_resources,
    workload_title,
)
from vmvc.environment import host_accel
from vmvc.export.spectrum import Spectrum, build_spectrum
from vmvc.formatting import (
    finite,
    format_estimate,
    format_exact,
    format_number,
    format_range,
    format_value,
)
from vmvc.keys import display, metric_key, split_form, split_key, split_variant
from vmvc.plan import JUDGED_KINDS
from vmvc.results import ResultDocument, Sample

# Exporters may import the formatting from here too.
__all__ = ["format_estimate", "format_exact", "format_number", "format_value"]

VERDICT_CLASSES = VERDICT_KINDS

EMULATION_WARNING = (
    "The VM ran under QEMU emulation (TCG), not KVM hardware virtualization. "
    "Emulated guests run many times slower than under KVM, so the VM numbers in this "
    "report say little about the overhead of virtualization on a KVM host."
)
NO_ANALYSIS = "no statistics and no verdicts in this document (it was not analysed)"


# ---------------------------------------------------------------------------------------
# The view: tables the Markdown and HTML reports share.


@dataclass
class Row:
    metric: str
    unit: str
    higher_is_better: bool | None
    cells: dict[str, str]  # backend -> "median [low, high]"
    ratios: dict[tuple[str, str], str]  # (numerator, denominator) -> "ratio [low, high]"
    note: str = ""


@dataclass
class Table:
    host: str
    workload: str
    title: str
    backends: list[str]
    pairs: list[tuple[str, str]]
    rows: list[Row]


@dataclass
class VerdictRow:
    claim: str
    title: str
    verdict: str
    text: str
    numbers: list[tuple[str, str]]  # top-level values
    details: list[tuple[str, str]]  # values of nested mappings, by path
    accel: str | None
    emulated: bool
    qualifier: str = ""
    host: str = ""
    compared: str = (
        ""  # "libvirt (VM) vs docker (container)": which backends the claim set against each other
    )


@dataclass
class ReportView:
    doc: ResultDocument
    statistics: Statistics
    title: str
    run_id: str
    hosts: list[str]
    date: str
    status: str
    accel: str | None
    emulated: bool
    backends: list[str]
    verdicts: list[VerdictRow]
    tables: list[Table]
    environment: list[tuple[str, str]]
    facts: list[tuple[str, dict[str, str]]]
    fact_backends: list[str]
    image_ids: dict[str, list[str]] = field(default_factory=dict)
    # The isolation spectrum per host, shown when more than the study's three points ran.
    spectra: list[Spectrum] = field(default_factory=list)
    interval_note: str = ""
    note: str = ""  # why the document has no statistics, shown in the report

    def label(self, backend: str) -> str:
        """The backend's long name as it recorded it: "VM (libvirt, emulated TCG)"."""
        return self.doc.record(backend).display_name

    def short_label(self, backend: str) -> str:
        """The backend's column label as it recorded it: "VM", "container"."""
        return self.doc.record(backend).label

    def pair_label(self, pair: tuple[str, str]) -> str:
        return f"{self.short_label(pair[0])}/{self.short_label(pair[1])}"


def build_view(doc: ResultDocument) -> ReportView:
    statistics = doc.statistics
    note = statistics.note
    if not note and not statistics.summaries and not doc.verdicts and doc.measured():
        note = NO_ANALYSIS
    sample_hosts = sorted({s.host for s in doc.samples})
    if set(sample_hosts) <= {"local"}:
        hosts = [str(doc.environment.get("hostname") or "local")]
    else:
        hosts = sample_hosts
    backends = doc.order_backends(
        {s.backend for s in doc.samples} | {e.backend for e in doc.errors} | set(doc.facts)
    )
    # Per host: a remote host's VM has its own acceleration (environment.hosts.<name>).
    vm_hosts = sorted({s.host for s in doc.samples if doc.record(s.backend).kind == "vm"})
    accels = [host_accel(doc.environment, h) for h in vm_hosts]
    accel = next((a for a in accels if a), doc.accel)
    emulated = "tcg" in accels or (doc.accel == "tcg" and any(v.emulated for v in doc.verdicts))
    facts, fact_backends = _facts(doc)
    return ReportView(
        doc=doc,
        statistics=statistics,
        title=f"vmvc results: {doc.run_id}",
        run_id=doc.run_id,
        hosts=hosts,
        date=_display_date(doc.started_at),
        status=doc.status,
        accel=accel,
        emulated=emulated,
        backends=backends,
        verdicts=[_verdict(doc, v) for v in doc.verdicts],
        tables=_tables(doc, statistics, doc.verdicts),
        environment=_environment(doc),
        facts=facts,
        fact_backends=fact_backends,
        image_ids=_image_ids(doc),
        spectra=_spectra(doc, statistics),
        interval_note=interval_note(statistics),
        note=note,
    )


def interval_note(statistics: Statistics) -> str:
    """What a table cell means; no confidence is named where no interval could be computed."""
    rows: list[Any] = [*statistics.summaries, *statistics.ratios]
    median_n = statistics.median_needs_n or 6
    ratio_n = statistics.ratio_needs_n or 4
    ranges = "`median (range min-max, n = 3)` is the range of the values, not a confidence interval"
    if any(finite(r.ci_low) for r in rows):
        confidence = f"{statistics.confidence:.0%}"
        return (
            f"`median [low, high]`: the median with its {confidence} distribution-free "
            f"interval (order statistics, from n ≥ {median_n}); ratios divide medians, with "
            f"their {confidence} Mann-Whitney interval (from n ≥ {ratio_n} per side). "
            f"A cell without brackets had too few repetitions for its interval: {ranges}."
        )
    return (
        f"Too few repetitions for any confidence interval (a median needs n ≥ {median_n}, "
        f"a ratio n ≥ {ratio_n} per side): {ranges}; ratios are medians divided."
    )


def _display_date(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M %Z").strip()
    except ValueError:
        return iso


def compared_text(doc: ResultDocument, backends: list[str]) -> str:
    """The backends a verdict compares, by name and the label they recorded."""

    def named(backend: str) -> str:
        label = doc.record(backend).label
        return backend if label == backend else f"{backend} ({label})"

    return " vs ".join(named(b) for b in backends)


def _verdict(doc: ResultDocument, stored: StoredVerdict) -> VerdictRow:
    shown: list[tuple[str, str]] = []
    details: list[tuple[str, str]] = []
    for key, text, nested in _number_items(stored.numbers, ""):
        (details if nested else shown).append((key, text))
    return VerdictRow(
        claim=stored.claim,
        title=stored.title,
        verdict=stored.verdict,
        text=stored.text,
        numbers=shown,
        details=details,
        accel=stored.accel,
        emulated=stored.emulated,
        qualifier=stored.qualifier,
        host=stored.host,
        compared=compared_text(doc, stored.compared),
    )


def _number_items(numbers: dict[str, Any], prefix: str) -> list[tuple[str, str, bool]]:
    """(key path, text, nested?) for a verdict's numbers, an interval next to its value.

    `ratio`, `ci_low`, `ci_high` become `ratio 41.3 [38.0, 43.7]`, as do `x`, `x_ci_low`,
    `x_ci_high`; nested mappings are flattened to `outer.inner` paths.
    """
    merged = _intervals(numbers)
    absorbed = {bound for low, high in merged.values() for bound in (low, high)}
    items: list[tuple[str, str, bool]] = []
    for key, value in numbers.items():
        if key in absorbed:
            continue
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            items.extend((p, t, True) for p, t, _ in _number_items(value, path))
        elif key in merged:
            low, high = merged[key]
            items.append((path, format_estimate(value, numbers[low], numbers[high]), bool(prefix)))
        else:
            items.append((path, format_value(value), bool(prefix)))
    return items


def _intervals(numbers: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """value key -> (low key, high key) of the intervals in one mapping."""
    found = {}
    for key, value in numbers.items():
        if not finite(value):
            continue
        prefix = str(key).rsplit("_", 1)[0]
        candidates = [(f"{key}_ci_low", f"{key}_ci_high"), (f"{key}_low", f"{key}_high")]
        if prefix != key:  # <name>_slope with <name>_ci_low / <name>_ci_high
            candidates.append((f"{prefix}_ci_low", f"{prefix}_ci_high"))
        for low, high in candidates:
            if any(low in pair for pair in found.values()):
                continue
            if finite(numbers.get(low)) and finite(numbers.get(high)):
                found[key] = (low, high)
                break
    if finite(numbers.get("ci_low")) and finite(numbers.get("ci_high")):
        for key in ("ratio", "median", "value", "estimate"):
            if finite(numbers.get(key)) and key not in found:
                found[key] = ("ci_low", "ci_high")
                break
    return found


def summary_index(statistics: Statistics) -> dict[tuple[str, str, str, str], Summary]:
    """(host, backend, workload, metric) -> summary."""
    return {(s.host, s.backend, s.workload, s.metric): s for s in statistics.summaries}


def ratio_estimate(
    statistics: Statistics,
    summaries: dict[tuple[str, str, str, str], Summary],
    key: tuple[str, str, str],
    pair: tuple[str, str],
) -> tuple[float, float | None, float | None] | None:
    """numerator/denominator as (ratio, ci_low, ci_high) for (host, workload, metric).

    Taken from the statistics (inverted if only the reverse ratio is there); otherwise the
    ratio of medians without an interval (the interval is None too when the repetitions
    were too few for the method).
    """
    host, workload, metric = key
    num, den = pair
    for r in statistics.ratios:
        if (r.host, r.workload, r.metric) != key:
            continue
        if (r.numerator, r.denominator) == (num, den) and r.ratio is not None:
            return r.ratio, r.ci_low, r.ci_high
        if (r.numerator, r.denominator) == (den, num) and r.ratio:
            low, high = r.ci_low, r.ci_high
            return (
                1 / r.ratio,
                1 / high if finite(high) and high else None,
                1 / low if finite(low) and low else None,
            )
    a, b = (
        summaries.get((host, num, workload, metric)),
        summaries.get((host, den, workload, metric)),
    )
    if a and b and b.median:
        return a.median / b.median, None, None
    return None


def _pairs(doc: ResultDocument, backends: list[str]) -> list[tuple[str, str]]:
    """The document's ratio pairs (from the backends' kinds) among these backends."""
    return [(a, b) for a, b in doc.ratio_pairs() if a in backends and b in backends]


def metric_order(workload: str, keys: set[str]) -> list[str]:
    """Metrics in the report's order; a per-N metric's rows by N under its name, a
    per-failure metric's rows in the catalogue's order of failure kinds, a per-form metric's
    rows by form (each variant a row of its own)."""
    names = {split_key(k)[0] for k in keys}
    ordered = []
    for name in order_metrics(workload, names):
        mine = [k for k in keys if split_key(k)[0] == name]
        ordered += sorted(mine, key=lambda k: _group_order(workload, k))
    return ordered


def _group_order(workload: str, key: str) -> tuple[int, int, tuple[int, str], str]:
    """Per-N rows by N; per-failure rows in the catalogue's order of failure kinds; per-form
    rows in the catalogue's order of forms."""
    variant = split_variant(key)[1]
    position = next((i for i, f in enumerate(FAILURES) if f.name == variant), -1)
    return split_key(key)[1] or 0, position, form_rank(workload, split_form(key)[1]), key


def _cell(summary: Summary) -> str:
    """`median [low, high]`, or `median (range min-max, n = 3)` without an interval."""
    if finite(summary.ci_low) and finite(summary.ci_high):
        return format_estimate(summary.median, summary.ci_low, summary.ci_high)
    if summary.n >= 2:
        return format_range(summary.median, summary.min, summary.max, summary.n)
    return format_number(summary.median)


def _memory_note(samples: list[Sample]) -> str:
    """Where the working set stands against the host's last-level cache (STREAM: >= 4x)."""
    meta = samples[-1].metadata
    size, llc = meta.get("working_set_mib"), meta.get("llc_bytes")
    times = "\N{MULTIPLICATION SIGN}"
    if not isinstance(size, int | float) or not isinstance(llc, int) or llc <= 0:
        return ""
    text = (
        f"{format_number(size)} MiB working set = {size * 2**20 / llc:.1f}{times} "
        f"the host's {format_number(llc / 2**20)} MiB last-level cache"
    )
    if meta.get("past_llc") is False:
        return f"{text}: NOT past the cache (STREAM asks for 4{times}): partly cache."
    return f"{text} (STREAM asks for at least 4{times})."


def _io_note(samples: list[Sample]) -> str:
    """Said when a run was too small or short to be past the caches (the quick profile)."""
    short = [s for s in samples if s.metadata.get("past_caches") is False]
    if not short:
        return ""
    meta = short[-1].metadata
    return (
        f"Not past the caches: a {meta.get('file_size_mib') or 0:g} MiB file, "
        f"{meta.get('runtime_s') or 0:.0f} s per job after "
        f"{meta.get('ramp_s') or 0:g} s ramp-up: a first look, not a disk "
        "measurement (default and nightly profiles: \N{GREATER-THAN OR EQUAL TO} 1 GiB, "
        "\N{GREATER-THAN OR EQUAL TO} 5 s per job after a ramp-up, "
        "\N{GREATER-THAN OR EQUAL TO} 20 s per run)."
    )


def _io_anomalies(verdicts: list[StoredVerdict]) -> dict[tuple[str, str, str], float]:
    """(host, backend, metric) -> how much faster than native, from C03's anomaly list."""
    found: dict[tuple[str, str, str], float] = {}
    for verdict in verdicts:
        if verdict.claim != "C03":
            continue
        for item in verdict.numbers.get("anomalies") or []:
            metric = str(item.get("resource", "")).split("/", 1)[-1]
            key = (verdict.host or "local", str(item.get("backend")), metric)
            found[key] = -float(item.get("overhead", 0.0))
    return found


def io_anomalies(
    doc: ResultDocument, statistics: Statistics, verdicts: list[StoredVerdict]
) -> dict[tuple[str, str, str], float]:
    """(host, backend, metric) -> how much faster than native its disk I/O is, for every
    backend: C03's own list, and for backends no claim judges (a sandbox, a second container
    engine) the same check from their ratio to native."""
    found = _io_anomalies(verdicts)
    native = doc.first_of_kind("native")
    if native is None:
        return found
    noise = float((doc.config.get("thresholds") or {}).get("noise_threshold", 0.05))
    summaries = summary_index(statistics)
    measured = doc.measured()
    for host in sorted({s.host for s in measured}):
        for workload, name in steady_resources():
            samples = [
                s for s in measured if (s.host, s.workload, s.metric) == (host, workload, name)
            ]
            for backend in doc.order_backends({s.backend for s in samples} - {native}):
                estimate = ratio_estimate(
                    statistics, summaries, (host, workload, name), (backend, native)
                )
                if estimate is None:
                    continue
                faster = faster_than_native(f"{workload}/{name}", estimate[0], samples, noise)
                if faster is not None:
                    found.setdefault((host, backend, name), faster)
    return found


def faster_than_native(
    key: str, ratio: float, samples: list[Sample], noise_threshold: float
) -> float | None:
    """How much faster than native a backend's disk I/O is, when more than the noise (C03's
    rule, vmvc.analysed.is_io_anomaly, on the figures C03 reads: the catalogue's deciding
    metrics; from a ratio backend/native of medians); else None."""
    if not samples or tuple(key.split("/", 1)) not in steady_resources():
        return None
    overhead = 1.0 - ratio if samples[-1].higher_is_better else ratio - 1.0
    part = {"overhead": overhead}
    return -overhead if is_io_anomaly(key, part, noise_threshold) else None


def _form_note(doc: ResultDocument, samples: list[Sample]) -> str:
    """How a per-form row was packed (the same for every backend), and on the size row what
    each backend's export holds."""
    meta = samples[-1].metadata
    form, compressor = meta.get("form"), meta.get("compressor")
    if compressor and compressor != "none":
        threads = meta.get("compression_threads")
        how = f"{compressor} level {meta.get('compression_level')}" + (
            f", {threads} thread{'s' if threads != 1 else ''}" if threads else ""
        )
    else:
        how = "no compression"
    text = f"Form {form}: {how}, the same for every backend."
    if samples[-1].metric == "export_bytes":
        holds = {}
        for sample in samples:
            if sample.metadata.get("holds"):
                holds[doc.record(sample.backend).label] = str(sample.metadata["holds"])
        text += "".join(f" {label} holds: {what}." for label, what in holds.items())
    return text


def _outcome_cell(
    summaries: dict[tuple[str, str, str, str], Summary], where: tuple[str, str, str], key: str
) -> str | None:
    """An outcome recorded instead of this metric (catalogue `instead_of`): "no automatic
    restart (watched 12.0 s)" where a backend has no recovery time for that failure kind."""
    host, backend, workload = where
    metric, kind = split_variant(key)
    suffix = f"@{kind}" if kind else ""
    for outcome in outcome_metrics(workload, metric):
        found = summaries.get((host, backend, workload, f"{outcome.name}{suffix}"))
        if found is not None:
            return f"{outcome.outcome} (watched {format_number(found.median)} {found.unit})"
    return None


def _failure_note(key: str) -> str:
    """What a recovery row's failure kind kills (vmvc.catalogue.FAILURES)."""
    kind = failure(split_variant(key)[1] or "")
    if kind is None:
        return ""
    note = f"({kind.name.replace('_', ' ')}): {kind.what}."
    return note if kind.container else f"{note} Does not apply to containers."


def _row_note(doc: ResultDocument, workload: str, samples: list[Sample]) -> str:
    if workload == "memory":
        return _memory_note(samples)
    if workload == "io":
        return _io_note(samples)
    if samples and split_form(metric_key(samples[-1].metric, samples[-1].metadata))[1]:
        return _form_note(doc, samples)
    return ""


def _tables(
    doc: ResultDocument, statistics: Statistics, verdicts: list[StoredVerdict]
) -> list[Table]:
    summaries = summary_index(statistics)
    anomalies = io_anomalies(doc, statistics, verdicts)
    measured = doc.measured()
    tables = []
    for host in sorted({s.host for s in measured}):
        on_host = [s for s in measured if s.host == host]
        for workload in order_workloads({s.workload for s in on_host}):
            samples = [s for s in on_host if s.workload == workload]
            backends = doc.order_backends({s.backend for s in samples})
            pairs = _pairs(doc, backends)
            rows = []
            keys = {metric_key(s.metric, s.metadata) for s in samples}
            for key in metric_order(workload, keys):
                of_metric = [s for s in samples if metric_key(s.metric, s.metadata) == key]
                cells = {}
                for b in backends:
                    summary = summaries.get((host, b, workload, key))
                    if summary is not None:
                        cells[b] = _cell(summary)
                    elif outcome := _outcome_cell(summaries, (host, b, workload), key):
                        cells[b] = outcome
                ratios = {}
                for pair in pairs:
                    est = ratio_estimate(statistics, summaries, (host, workload, key), pair)
                    if est is not None:
                        ratios[pair] = format_estimate(*est)
                        native_pair = doc.record(pair[1]).kind == "native"
                        if native_pair and (host, pair[0], key) in anomalies:
                            ratios[pair] += " ANOMALY"
                note = (
                    "Rows with (N=…): measured with N instances at once, one row per N."
                    if split_key(key)[1] is not None
                    else _failure_note(key) or _row_note(doc, workload, of_metric)
                )
                flagged = [b for b in backends if (host, b, key) in anomalies]
                if flagged:
                    faster = ", ".join(
                        f"{doc.record(b).label} {anomalies[(host, b, key)]:+.0%}" for b in flagged
                    )
                    note = (
                        f"ANOMALY in {display(key)}: faster than native ({faster}) by more than "
                        "the noise threshold, which only a cache can do; not counted in C03."
                    )
                rows.append(
                    Row(
                        display(key),
                        of_metric[0].unit,
                        of_metric[0].higher_is_better,
                        cells,
                        ratios,
                        note,
                    )
                )
            rows += _curve_rows(statistics, host, workload, backends)
            tables.append(Table(host, workload, workload_title(workload), backends, pairs, rows))
    return tables


CURVE_NOTE = (
    "Slope: a least-squares line through the per-N medians, shown only where a line fits "
    "(at least 3 instance counts, r\N{SUPERSCRIPT TWO} \N{GREATER-THAN OR EQUAL TO} {floor:g}, "
    "and no knee at the host's core count); elsewhere the rows per N are the curve and the "
    "cell says why there is no slope."
)


def _curve_cell(curve: Curve) -> str:
    """'0.144 s per instance (r² = 0.99)' where a line fits, else why not."""
    if curve.fits and curve.slope is not None:
        fit = f"{format_number(curve.slope)} {curve.unit} per instance"
        if curve.r_squared is not None:
            fit += f" (r\N{SUPERSCRIPT TWO} = {curve.r_squared:.2f})"
        return fit
    return curve.note


def _curve_rows(statistics: Statistics, host: str, workload: str, backends: list[str]) -> list[Row]:
    """The curves' fit (or why none) and the counts the memory guard refused, per backend."""
    curves = {c.backend: c for c in statistics.curves if c.host == host and c.workload == workload}
    if not curves:
        return []
    rows = []
    for metric in dict.fromkeys(c.metric for c in curves.values()):
        mine = {b: curves[b] for b in backends if b in curves and curves[b].metric == metric}
        floor = next(iter(mine.values())).r2_floor
        cells = {b: _curve_cell(c) for b, c in mine.items()}
        rows.append(Row(f"{metric}: slope", "", None, cells, {}, CURVE_NOTE.format(floor=floor)))
        refused = {b: c for b, c in mine.items() if c.refused_counts}
        if refused:
            cells = {b: ", ".join(f"N={n}" for n in c.refused_counts) for b, c in refused.items()}
            note = "Refused by the memory guard, not measured: " + "; ".join(
                c.refused for c in refused.values() if c.refused
            )
            rows.append(Row(f"{metric}: refused", "", None, cells, {}, note))
    return rows


ENVIRONMENT_ORDER = (
    "hostname",
    "kernel",
    "os_release",
    "cpu_model",
    "cores",
    "memory_mib",
    "accel",
    "python",
    "vmvc_version",
)  # then the engines' own keys (backend.environment()), by name


def _environment(doc: ResultDocument) -> list[tuple[str, str]]:
    env = doc.environment
    keys = [k for k in ENVIRONMENT_ORDER if k in env] + sorted(set(env) - set(ENVIRONMENT_ORDER))
    return [(k, format_value(env[k])) for k in keys] + footing_rows(doc)


def footing_rows(doc: ResultDocument) -> list[tuple[str, str]]:
    """How the backends were put on an equal footing (README "Equal footing").

    The run order and its seed (so a run can be replayed), the warm-ups, and the limits each
    backend's instances actually got, as the engine read them back (first instance of each).
    """
    run = doc.config.get("run") if isinstance(doc.config.get("run"), dict) else {}
    rows: list[tuple[str, str]] = []
    if run:
        seed = run.get("seed")
        if run.get("shuffle"):
            order = f"shuffled in every repetition, seed {seed}"
        else:
            order = "fixed (the same backend order in every repetition)"
        rows.append(("run order", order))
        rows.append(("warm-ups", f"{run.get('warmups', 0)} per backend, not counted"))
        rows += _spectrum_rows(doc, run)
    seen: dict[str, str] = {}
    for inst in doc.instances:
        if inst.limits and inst.backend not in seen:
            seen[inst.backend] = ", ".join(
                f"{key} {format_value(value)}" for key, value in inst.limits.items()
            )
    for backend in doc.order_backends(list(seen)):
        rows.append((f"limits ({doc.record(backend).label})", seen[backend]))
    return rows


def _spectrum_rows(doc: ResultDocument, run: dict[str, Any]) -> list[tuple[str, str]]:
    """What the backends the claims do not compare were given, when a profile gave them less
    than the rest (the quick profile: `[run] lifecycle_backends`, `steady_backends`,
    `spectrum_repetitions`): a reader must not take a missing row for a failure."""
    judged = [b for b in (doc.first_of_kind(k) for k in JUDGED_KINDS) if b]
    others = [b for b in doc.order_backends(list(doc.backend_info)) if b not in judged]
    compared = f"the backends the claims compare only ({', '.join(judged) or 'none'})"
    rest = f"; not on {', '.join(others)}" if others else ""
    rows = []
    if run.get("lifecycle_backends") == "judged":
        rows.append(
            (
                "lifecycle workloads",
                f"on {compared}{rest} (isolation on every backend; "
                '[run] lifecycle_backends = "judged", "all" runs them everywhere)',
            )
        )
    if run.get("steady_backends") == "judged":
        rows.append(
            (
                "steady workloads (cpu, memory, I/O)",
                f'on {compared}{rest} ([run] steady_backends = "judged", "all" runs them '
                "everywhere)",
            )
        )
    cap = run.get("spectrum_repetitions")
    if isinstance(cap, int) and others:
        rows.append(
            (
                "measured boots",
                f"{', '.join(others)}: {cap} (start-up and footprint; "
                "[run] spectrum_repetitions); the others as the run's repetitions",
            )
        )
    return rows


FACT_ORDER = (
    "host_kernel_release",
    "kernel_release",
    "shares_host_kernel",
    "os_release",
    "host_processes_visible",
    "devices_visible",
    "capabilities",
)


def _facts(doc: ResultDocument) -> tuple[list[tuple[str, dict[str, str]]], list[str]]:
    backends = doc.order_backends(set(doc.facts))
    names: set[str] = set()
    for per_backend in doc.facts.values():
        names |= set(per_backend)
    keys = [k for k in FACT_ORDER if k in names] + sorted(names - set(FACT_ORDER))
    rows = [
        (k, {b: format_value(doc.facts[b][k]) for b in backends if k in doc.facts[b]}) for k in keys
    ]
    return rows, backends


def _spectra(doc: ResultDocument, statistics: Statistics) -> list[Spectrum]:
    """One spectrum per host with statistics; none when no more than two backends ran (the
    results tables already set two side by side)."""
    hosts = list(dict.fromkeys(s.host for s in statistics.summaries))
    if not hosts and doc.facts:  # an isolation-only run: facts, no statistics
        hosts = ["local"]
    anomalies = set(io_anomalies(doc, statistics, doc.verdicts))
    spectra = [build_spectrum(doc, statistics, host, anomalies) for host in hosts]
    return [s for s in spectra if len(s.backends) > 2]


def _image_ids(doc: ResultDocument) -> dict[str, list[str]]:
    ids: dict[str, list[str]] = {}
    for inst in doc.instances:
        seen = ids.setdefault(inst.backend, [])
        if inst.image_id not in seen:
            seen.append(inst.image_id)
    return {b: ids[b] for b in doc.order_backends(set(ids))}
