"""What every human-readable report shows, computed once from the result document.

The Markdown and HTML exporters both read this view, and every number they print goes
through `format_number`, so the two agree to the last digit shown. Nothing here touches a
backend: the result document is the only input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from vmvc.environment import host_accel
from vmvc.export.numbers import (
    finite,
    format_estimate,
    format_exact,
    format_number,
    format_range,
    format_value,
)
from vmvc.keys import display, metric_key, split_key
from vmvc.results import ResultDocument, Sample

# The number formatting lives in numbers.py; exporters may import it from here too.
__all__ = ["format_estimate", "format_exact", "format_number", "format_value"]

BACKEND_ORDER = ("native", "docker", "libvirt")
SHORT_LABELS = {"native": "native", "docker": "container", "libvirt": "VM"}

WORKLOAD_TITLES = {
    "startup": "Startup (start to ready)",
    "cpu": "CPU (sysbench cpu)",
    "memory": "Memory (STREAM triad/copy bandwidth, random pointer-chase latency)",
    "io": "Disk I/O (fio, 4k random and 1M sequential)",
    "footprint": "Idle footprint (host memory of one instance)",
    "scale": "Scale-out and density",
    "clone": "Clone",
    "provision": "Provisioning",
    "recovery": "Recovery after a crash (self-healing)",
    "portability": "Portability (export and import)",
}
WORKLOAD_ORDER = tuple(WORKLOAD_TITLES)

METRIC_ORDER = {
    "startup": [
        "total_s",
        "create_s",
        "firmware_kernel_s",
        "initramfs_s",
        "userspace_s",
        "start_s",
        "spawn_s",
        "ready_s",
    ],
    "memory": ["bandwidth_mib_s", "copy_mib_s", "latency_ns"],
    "io": [
        "randread_4k_iops",
        "randwrite_4k_iops",
        "randread_4k_lat_us",
        "randwrite_4k_lat_us",
        "seqread_1m_mib_s",
        "seqwrite_1m_mib_s",
    ],
    "footprint": ["total_mib", "pss_mib", "uss_mib", "cgroup_mib", "shim_pss_mib"],
    "scale": [
        "all_ready_s",
        "memory_mib",
        "time_per_instance_s",
        "memory_per_instance_mib",
        "density_instances",
    ],
    "clone": ["clone_s", "clone_to_ready_s", "clone_bytes"],
    "provision": ["prepare_s", "define_s", "teardown_s"],
    "portability": ["export_bytes", "export_s", "import_s"],
}

CLAIM_TITLES = {
    "C01": "VMs start slower than containers",
    "C02": "VMs use more resources than containers",
    "C03": "Virtualization adds overhead; containers run near native",
    "C04": "Provisioning and replicating a VM takes longer",
    "C05": "Containers scale out faster",
    "C06": "Containers are easier to move",
    "C07": "VMs isolate better",
    "C08": "Orchestrators restart dead instances quickly",
    "C09": "A VM's guest OS can differ; a container shares the host kernel",
    "C10": "Many more containers than VMs fit on one host",
}

VERDICT_CLASSES = (
    "confirmed",
    "refuted",
    "inconclusive",
    "not measured",
    "not measured under KVM",
    "reported",
    "fact",
)

EMULATION_WARNING = (
    "The VM ran under QEMU emulation (TCG), not KVM hardware virtualization. "
    "Emulated guests run many times slower than under KVM, so the VM numbers in this "
    "report say little about the overhead of virtualization on a KVM host."
)


def backend_label(backend: str, accel: str | None) -> str:
    if backend == "native":
        return "native"
    if backend == "docker":
        return "container (Docker)"
    if backend == "libvirt":
        return "VM (libvirt, emulated TCG)" if accel == "tcg" else "VM (libvirt, KVM)"
    return backend


def short_label(backend: str) -> str:
    return SHORT_LABELS.get(backend, backend)


def order_backends(names: set[str] | list[str]) -> list[str]:
    names = set(names)
    return [b for b in BACKEND_ORDER if b in names] + sorted(names - set(BACKEND_ORDER))


def order_workloads(names: set[str]) -> list[str]:
    return [w for w in WORKLOAD_ORDER if w in names] + sorted(names - set(WORKLOAD_ORDER))


def order_metrics(workload: str, names: set[str]) -> list[str]:
    known = METRIC_ORDER.get(workload, [])
    return [m for m in known if m in names] + sorted(names - set(known))


# ---------------------------------------------------------------------------------------
# Statistics and verdicts: from the document, or computed when the document has none.


# The statistics methods of older vmvc versions, whose intervals and verdicts overstated
# what few repetitions can carry: a report of such a result recomputes both.
SUPERSEDED_METHODS = frozenset({"bootstrap percentile (BCa if possible) of the median"})


@dataclass
class Analysis:
    statistics: dict[str, Any]
    verdicts: list[dict[str, Any]]
    note: str = ""  # why statistics are approximate, shown in the report


def analyse(doc: ResultDocument) -> Analysis:
    """The document's statistics and verdicts; computed only where the document lacks them."""
    statistics, verdicts = doc.statistics, doc.verdicts
    try:
        from vmvc import claims, stats  # the engines that `vmvc bench` ran, if installed
    except ImportError:
        if statistics.get("summaries") and verdicts:
            return Analysis(statistics, verdicts)
        if statistics.get("summaries"):
            return Analysis(statistics, _unmeasured_verdicts("no verdicts in the result"))
        return _numpy_analysis(doc, "statistics module not available")
    if statistics.get("method") in SUPERSEDED_METHODS:
        # Computed by an older vmvc (bootstrap CIs of 3 values printed as 95 %, verdicts
        # from emulated VMs): recompute from the raw samples rather than repeat them.
        statistics, verdicts = {}, []
    if statistics.get("summaries") and verdicts:
        return Analysis(statistics, verdicts)
    if not statistics.get("summaries"):
        try:
            statistics = stats.summarize(doc)
        except Exception as exc:  # a report is still worth having without intervals
            return _numpy_analysis(doc, f"statistics failed ({exc.__class__.__name__}: {exc})")
    if not verdicts:
        try:
            verdicts = claims.evaluate(doc, statistics, _thresholds(doc))
        except Exception as exc:
            why = f"verdicts failed ({exc.__class__.__name__}: {exc})"
            return Analysis(statistics, _unmeasured_verdicts(why), why)
    return Analysis(statistics, verdicts)


def _thresholds(doc: ResultDocument) -> Any:
    from vmvc.config import Thresholds

    try:
        return Thresholds.model_validate(doc.config.get("thresholds") or {})
    except Exception:
        return Thresholds()


def _numpy_analysis(doc: ResultDocument, why: str) -> Analysis:
    groups: dict[tuple[str, str, str, str], list[Sample]] = {}
    for s in doc.measured():
        key = (s.host, s.backend, s.workload, metric_key(s.metric, s.metadata))
        groups.setdefault(key, []).append(s)
    summaries = []
    for (host, backend, workload, metric), samples in groups.items():
        values = np.array([s.value for s in samples], dtype=float)
        summaries.append(
            {
                "host": host,
                "backend": backend,
                "workload": workload,
                "metric": metric,
                "unit": samples[0].unit,
                "higher_is_better": samples[0].higher_is_better,
                "n": len(values),
                "median": float(np.median(values)),
                "mean": float(np.mean(values)),
                "min": float(np.min(values)),
                "max": float(np.max(values)),
                "ci_low": None,
                "ci_high": None,
                "outliers": [],
                "values": values.tolist(),
            }
        )
    note = f"{why}: medians only, no confidence intervals and no verdicts"
    return Analysis({"summaries": summaries, "ratios": []}, _unmeasured_verdicts(why), note)


def _unmeasured_verdicts(why: str) -> list[dict[str, Any]]:
    return [
        {"claim": cid, "title": title, "verdict": "not measured", "text": why, "numbers": {}}
        for cid, title in CLAIM_TITLES.items()
    ]


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
class Verdict:
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


@dataclass
class ReportView:
    doc: ResultDocument
    analysis: Analysis
    title: str
    run_id: str
    hosts: list[str]
    date: str
    status: str
    accel: str | None
    emulated: bool
    backends: list[str]
    verdicts: list[Verdict]
    tables: list[Table]
    environment: list[tuple[str, str]]
    facts: list[tuple[str, dict[str, str]]]
    fact_backends: list[str]
    image_ids: dict[str, list[str]] = field(default_factory=dict)
    interval_note: str = ""

    def label(self, backend: str) -> str:
        return backend_label(backend, self.accel)

    def pair_label(self, pair: tuple[str, str]) -> str:
        return f"{short_label(pair[0])}/{short_label(pair[1])}"


def build_view(doc: ResultDocument, analysis: Analysis | None = None) -> ReportView:
    analysis = analysis or analyse(doc)
    sample_hosts = sorted({s.host for s in doc.samples})
    if set(sample_hosts) <= {"local"}:
        hosts = [str(doc.environment.get("hostname") or "local")]
    else:
        hosts = sample_hosts
    backends = order_backends(
        {s.backend for s in doc.samples} | {e.backend for e in doc.errors} | set(doc.facts)
    )
    # Per host: a remote host's VM has its own acceleration (environment.hosts.<name>).
    vm_hosts = sorted({s.host for s in doc.samples if s.backend == "libvirt"})
    accels = [host_accel(doc.environment, h) for h in vm_hosts]
    accel = next((a for a in accels if a), doc.accel)
    emulated = "tcg" in accels or (
        doc.accel == "tcg" and any(v.get("emulated") for v in analysis.verdicts)
    )
    facts, fact_backends = _facts(doc)
    return ReportView(
        doc=doc,
        analysis=analysis,
        title=f"vmvc results: {doc.run_id}",
        run_id=doc.run_id,
        hosts=hosts,
        date=_display_date(doc.started_at),
        status=doc.status,
        accel=accel,
        emulated=emulated,
        backends=backends,
        verdicts=[_verdict(v) for v in analysis.verdicts],
        tables=_tables(doc, analysis.statistics, analysis.verdicts),
        environment=_environment(doc),
        facts=facts,
        fact_backends=fact_backends,
        image_ids=_image_ids(doc),
        interval_note=interval_note(analysis.statistics),
    )


def interval_note(statistics: dict[str, Any]) -> str:
    """What a table cell means; no confidence is named where no interval could be computed."""
    rows = statistics.get("summaries", []) + statistics.get("ratios", [])
    median_n = statistics.get("median_needs_n", 6)
    ratio_n = statistics.get("ratio_needs_n", 4)
    ranges = "`median (range min-max, n = 3)` is the range of the values, not a confidence interval"
    if any(finite(r.get("ci_low")) for r in rows):
        confidence = f"{statistics.get('confidence', 0.95):.0%}"
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


def _verdict(raw: dict[str, Any]) -> Verdict:
    numbers = raw.get("numbers") or {}
    if not isinstance(numbers, dict):
        numbers = {"": numbers}
    shown: list[tuple[str, str]] = []
    details: list[tuple[str, str]] = []
    for key, text, nested in _number_items(numbers, ""):
        (details if nested else shown).append((key, text))
    claim = str(raw.get("claim", "?"))
    return Verdict(
        claim=claim,
        title=str(raw.get("title") or CLAIM_TITLES.get(claim, "")),
        verdict=str(raw.get("verdict", "not measured")),
        text=str(raw.get("text", "")),
        numbers=shown,
        details=details,
        accel=raw.get("accel"),
        emulated=bool(raw.get("emulated")),
        qualifier=str(raw.get("qualifier") or ""),
        host=str(raw.get("host") or ""),
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
        if prefix != key:  # docker_slope with docker_ci_low / docker_ci_high
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


def summary_index(statistics: dict[str, Any]) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    """(host, backend, workload, metric) -> summary."""
    return {
        (s["host"], s["backend"], s["workload"], s["metric"]): s
        for s in statistics.get("summaries", [])
    }


def ratio_estimate(
    statistics: dict[str, Any],
    summaries: dict[tuple[str, str, str, str], dict[str, Any]],
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
    for r in statistics.get("ratios", []):
        if (r.get("host"), r.get("workload"), r.get("metric")) != key:
            continue
        if (r.get("numerator"), r.get("denominator")) == (num, den):
            return r["ratio"], r.get("ci_low"), r.get("ci_high")
        if (r.get("numerator"), r.get("denominator")) == (den, num) and r.get("ratio"):
            low, high = r.get("ci_low"), r.get("ci_high")
            return (
                1 / r["ratio"],
                1 / high if finite(high) and high else None,
                1 / low if finite(low) and low else None,
            )
    a, b = (
        summaries.get((host, num, workload, metric)),
        summaries.get((host, den, workload, metric)),
    )
    if a and b and b.get("median"):
        return a["median"] / b["median"], None, None
    return None


def _pairs(backends: list[str]) -> list[tuple[str, str]]:
    pairs = [(b, "native") for b in backends if b != "native" and "native" in backends]
    if "libvirt" in backends and "docker" in backends:
        pairs.append(("libvirt", "docker"))
    return pairs


def _metric_order(workload: str, keys: set[str]) -> list[str]:
    """Metrics in the report's order; a per-N metric's rows by N under its name."""
    names = {split_key(k)[0] for k in keys}
    ordered = []
    for name in order_metrics(workload, names):
        mine = [k for k in keys if split_key(k)[0] == name]
        ordered += sorted(mine, key=lambda k: split_key(k)[1] or 0)
    return ordered


def _cell(summary: dict[str, Any]) -> str:
    """`median [low, high]`, or `median (range min-max, n = 3)` without an interval."""
    if finite(summary.get("ci_low")) and finite(summary.get("ci_high")):
        return format_estimate(summary["median"], summary["ci_low"], summary["ci_high"])
    n = summary.get("n")
    if isinstance(n, int) and n >= 2 and "min" in summary:
        return format_range(summary["median"], summary["min"], summary["max"], n)
    return format_number(summary["median"])


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
        "\N{GREATER-THAN OR EQUAL TO} 20 s)."
    )


def _io_anomalies(verdicts: list[dict[str, Any]]) -> dict[tuple[str, str, str], float]:
    """(host, backend, metric) -> how much faster than native, from C03's anomaly list."""
    found: dict[tuple[str, str, str], float] = {}
    for verdict in verdicts:
        if verdict.get("claim") != "C03":
            continue
        for item in (verdict.get("numbers") or {}).get("anomalies") or []:
            metric = str(item.get("resource", "")).split("/", 1)[-1]
            key = (verdict.get("host") or "local", str(item.get("backend")), metric)
            found[key] = -float(item.get("overhead", 0.0))
    return found


def _row_note(workload: str, samples: list[Sample]) -> str:
    if workload == "memory":
        return _memory_note(samples)
    if workload == "io":
        return _io_note(samples)
    return ""


def _tables(
    doc: ResultDocument,
    statistics: dict[str, Any],
    verdicts: list[dict[str, Any]] | None = None,
) -> list[Table]:
    summaries = summary_index(statistics)
    anomalies = _io_anomalies(verdicts or [])
    measured = doc.measured()
    tables = []
    for host in sorted({s.host for s in measured}):
        on_host = [s for s in measured if s.host == host]
        for workload in order_workloads({s.workload for s in on_host}):
            samples = [s for s in on_host if s.workload == workload]
            backends = order_backends({s.backend for s in samples})
            pairs = _pairs(backends)
            rows = []
            keys = {metric_key(s.metric, s.metadata) for s in samples}
            for key in _metric_order(workload, keys):
                of_metric = [s for s in samples if metric_key(s.metric, s.metadata) == key]
                cells = {}
                for b in backends:
                    summary = summaries.get((host, b, workload, key))
                    if summary is not None:
                        cells[b] = _cell(summary)
                ratios = {}
                for pair in pairs:
                    est = ratio_estimate(statistics, summaries, (host, workload, key), pair)
                    if est is not None:
                        ratios[pair] = format_estimate(*est)
                        if pair[1] == "native" and (host, pair[0], key) in anomalies:
                            ratios[pair] += " ANOMALY"
                note = (
                    "Rows with (N=…): measured with N instances at once, one row per N."
                    if split_key(key)[1] is not None
                    else _row_note(workload, of_metric)
                )
                flagged = [b for b in backends if (host, b, key) in anomalies]
                if flagged:
                    faster = ", ".join(
                        f"{short_label(b)} {anomalies[(host, b, key)]:+.0%}" for b in flagged
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
            tables.append(
                Table(
                    host, workload, WORKLOAD_TITLES.get(workload, workload), backends, pairs, rows
                )
            )
    return tables


ENVIRONMENT_ORDER = (
    "hostname",
    "kernel",
    "os_release",
    "cpu_model",
    "cores",
    "memory_mib",
    "accel",
    "docker_version",
    "libvirt_version",
    "qemu_version",
    "python",
    "vmvc_version",
)


def _environment(doc: ResultDocument) -> list[tuple[str, str]]:
    env = doc.environment
    keys = [k for k in ENVIRONMENT_ORDER if k in env] + sorted(set(env) - set(ENVIRONMENT_ORDER))
    return [(k, format_value(env[k])) for k in keys]


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
    backends = order_backends(set(doc.facts))
    names: set[str] = set()
    for per_backend in doc.facts.values():
        names |= set(per_backend)
    keys = [k for k in FACT_ORDER if k in names] + sorted(names - set(FACT_ORDER))
    rows = [
        (k, {b: format_value(doc.facts[b][k]) for b in backends if k in doc.facts[b]}) for k in keys
    ]
    return rows, backends


def _image_ids(doc: ResultDocument) -> dict[str, list[str]]:
    ids: dict[str, list[str]] = {}
    for inst in doc.instances:
        seen = ids.setdefault(inst.backend, [])
        if inst.image_id not in seen:
            seen.append(inst.image_id)
    return {b: ids[b] for b in order_backends(set(ids))}
