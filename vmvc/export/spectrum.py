"""The isolation spectrum: every backend of a run side by side, one column each.

The study note sets two points against each other ("a container shares the host kernel, a
VM boots a heavy guest OS"); a run may hold the steps in between (a daemonless container, a
sandbox with its own user-space kernel, a system container booting a full init, a minimal
and a full-OS VM; Anjali, Caraza-Harter and Swift, "Blending Containers and Virtual
Machines", VEE '20, measured such a spectrum as one). This table puts, for each backend in
spectrum order (vmvc.results.KIND_ORDER): which kernel answers its system calls, what
start-up costs by phase, its idle footprint, its steady-state speed as a ratio to native,
and the isolation facts seen from inside it. It only reads the document's statistics,
facts and backend records (computed by the analysis step); it computes no statistic and
names no backend.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from vmvc.analysed import Statistics, Summary
from vmvc.catalogue import metric, order_metrics, steady_resources, workload
from vmvc.formatting import finite, format_estimate, format_number, format_value
from vmvc.results import SYSCALLS_ANSWERED_BY, ResultDocument

# What the spectrum shows from the facts, in this order (the full list is its own section).
FACT_ROWS = (
    ("shares_host_kernel", "runs on the host's kernel"),
    ("host_processes_visible", "host processes visible"),
    ("capabilities", "capabilities (effective)"),
    ("seccomp", "seccomp"),
    ("host_syscalls_reached", "distinct host system calls reached"),
)
TIMES = "\N{MULTIPLICATION SIGN}"
ANOMALY = "ANOMALY"  # the note says what it means


@dataclass
class SpectrumRow:
    label: str
    unit: str
    cells: dict[str, str]  # backend -> text
    section: str  # "start-up", "footprint", "speed vs native", "isolation"


@dataclass
class Spectrum:
    host: str
    backends: list[str]
    rows: list[SpectrumRow]
    native: str | None
    note: str = ""

    def sections(self) -> list[tuple[str, list[SpectrumRow]]]:
        """Consecutive rows of one section, in row order (jinja's groupby would sort)."""
        grouped: list[tuple[str, list[SpectrumRow]]] = []
        for row in self.rows:
            if not grouped or grouped[-1][0] != row.section:
                grouped.append((row.section, []))
            grouped[-1][1].append(row)
        return grouped


def _answered_by(doc: ResultDocument, backend: str) -> str:
    """As the backend recorded it; for a result older than that record, its kind's."""
    record = doc.record(backend)
    return record.syscalls_answered_by or SYSCALLS_ANSWERED_BY.get(record.kind) or "unknown"


def build_spectrum(
    doc: ResultDocument,
    statistics: Statistics,
    host: str = "local",
    anomalies: Collection[tuple[str, str, str]] = (),
) -> Spectrum:
    """One host's spectrum (every backend with samples or facts there). `anomalies` are the
    (host, backend, metric) whose I/O beat native by more than the noise (C03's list): marked,
    as in the results tables, because only a cache can do that."""
    backends = doc.order_backends(
        {s.backend for s in statistics.summaries if s.host == host} | set(doc.facts)
    )
    native = doc.first_of_kind("native")
    rows = _startup_rows(statistics, host, backends)
    rows += _footprint_rows(statistics, host, backends)
    if native:
        rows += _speed_rows(statistics, host, backends, native, anomalies)
    answered = {b: _answered_by(doc, b) for b in backends}
    rows.append(SpectrumRow("system calls answered by", "", answered, "isolation"))
    rows += _fact_rows(doc, backends)
    note = (
        f"Speed rows are each backend's median over {native}'s (the ratio of medians, "
        f"with its interval where the repetitions allow one); for a figure where higher is "
        f"better a ratio below 1 is slower than native, for a latency above 1 is slower. "
        f"ANOMALY: disk I/O faster than native by more than the noise threshold, which only "
        f"a cache can give (never counted for or against a claim)."
        if native
        else "No native baseline ran: no speed ratios."
    )
    return Spectrum(host, backends, [r for r in rows if r.cells], native, note)


def _summaries(statistics: Statistics, host: str) -> dict[tuple[str, str, str], Summary]:
    return {(s.backend, s.workload, s.metric): s for s in statistics.summaries if s.host == host}


def _median_rows(
    statistics: Statistics, host: str, backends: list[str], workload_name: str, section: str
) -> list[SpectrumRow]:
    found = _summaries(statistics, host)
    names = {m for (_, w, m) in found if w == workload_name}
    rows = []
    for name in order_metrics(workload_name, names):
        described = metric(workload_name, name)
        if described is None:  # a per-N or per-form key: the workload's own table has it
            continue
        cells = {
            b: format_number(found[(b, workload_name, name)].median)
            for b in backends
            if (b, workload_name, name) in found
        }
        rows.append(SpectrumRow(described.title, described.unit, cells, section))
    return rows


def _startup_rows(statistics: Statistics, host: str, backends: list[str]) -> list[SpectrumRow]:
    return _median_rows(statistics, host, backends, "startup", "start-up")


def _footprint_rows(statistics: Statistics, host: str, backends: list[str]) -> list[SpectrumRow]:
    described = workload("footprint")
    headline = described.headline if described else None
    rows = _median_rows(statistics, host, backends, "footprint", "footprint")
    return [r for r in rows if headline and r.label == metric("footprint", headline).title]


def _speed_rows(
    statistics: Statistics,
    host: str,
    backends: list[str],
    native: str,
    anomalies: Collection[tuple[str, str, str]],
) -> list[SpectrumRow]:
    rows = []
    for workload_name, name in steady_resources():
        described = metric(workload_name, name)
        if described is None:
            continue
        cells = {}
        for backend in backends:
            if backend == native:
                if statistics.summary(native, workload_name, name, host):
                    cells[backend] = "1 (baseline)"
                continue
            found = statistics.ratio(backend, native, workload_name, name, host)
            if found is None or found.ratio is None:
                continue
            if finite(found.ci_low) and finite(found.ci_high):
                text = format_estimate(found.ratio, found.ci_low, found.ci_high)
            else:
                text = format_number(found.ratio)
            anomaly = (host, backend, name) in anomalies
            cells[backend] = f"{text} {ANOMALY}" if anomaly else text
        rows.append(SpectrumRow(described.title, f"{TIMES} native", cells, "speed vs native"))
    return rows


def _fact_rows(doc: ResultDocument, backends: list[str]) -> list[SpectrumRow]:
    rows = []
    for key, label in FACT_ROWS:
        cells = {
            b: format_value(doc.facts[b][key])
            for b in backends
            if key in doc.facts.get(b, {}) and doc.facts[b][key] is not None
        }
        rows.append(SpectrumRow(label, "", cells, "isolation"))
    return rows
