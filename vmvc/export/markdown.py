"""GitHub-flavoured Markdown: short enough for a CI job summary, every number with its CI."""

from __future__ import annotations

import re

from vmvc.export.spectrum import Spectrum
from vmvc.export.view import EMULATION_WARNING, ReportView, build_view
from vmvc.results import ResultDocument

_SPECIAL = re.compile(r"([\\`*_|~])")


def md_text(value: object) -> str:
    """Text from the result as inert Markdown: no HTML, no links or images, no table breaks."""
    text = " ".join(str(value).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", text).replace("](", "]\\(")


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(c if c else "—" for c in cells) + " |"


def _table(header: list[str], rows: list[list[str]], align: str = "") -> list[str]:
    aligns = [("---:" if a == "r" else "---") for a in align.ljust(len(header), "l")]
    return [_row(header), "| " + " | ".join(aligns) + " |", *(_row(r) for r in rows), ""]


def render_markdown(doc: ResultDocument) -> str:
    return _render(build_view(doc))


def _spectrum(view: ReportView, spectrum: Spectrum, *, several_hosts: bool) -> list[str]:
    heading = "## Isolation spectrum" + (f" — {md_text(spectrum.host)}" if several_hosts else "")
    header = ["spectrum", "unit"] + [view.short_label(b) for b in spectrum.backends]
    body = []
    section = ""
    for row in spectrum.rows:
        label = md_text(row.label)
        if row.section != section:
            section = row.section
            label = f"**{md_text(section)}:** {label}"
        body.append(
            [label, md_text(row.unit)] + [md_text(row.cells.get(b, "")) for b in spectrum.backends]
        )
    names = " · ".join(f"{md_text(view.short_label(b))} = {md_text(b)}" for b in spectrum.backends)
    table = _table([md_text(h) for h in header], body, "ll" + "r" * len(spectrum.backends))
    return [heading, "", f"_{names}. {md_text(spectrum.note)}_", "", *table]


def _render(view: ReportView) -> str:
    doc = view.doc
    out = [f"# vmvc results: {md_text(view.run_id)}", ""]
    meta = [
        f"**Host:** {md_text(', '.join(view.hosts))}",
        f"**Started:** {md_text(view.date)}",
        f"**Status:** {md_text(view.status)}",
    ]
    if view.accel:
        meta.append(f"**VM acceleration:** {md_text(view.accel)}")
    out += [" · ".join(meta), ""]
    if view.emulated:
        out += [f"> ⚠️ **Emulated VM (QEMU TCG, no KVM).** {EMULATION_WARNING}", ""]
    if view.note:
        out += [f"> **Note:** {md_text(view.note)}", ""]

    out += ["## Verdicts", ""]
    rows = []
    several_hosts = len({v.host for v in view.verdicts}) > 1
    for v in view.verdicts:
        verdict = f"**{md_text(v.verdict)}**"
        if v.qualifier:
            verdict += f" ({md_text(v.qualifier)})"
        elif v.emulated:
            verdict += " (emulated VM)"
        if several_hosts:
            verdict += f" on {md_text(v.host)}"
        numbers = "; ".join(
            f"{md_text(k)} = {md_text(val)}" if k else md_text(val) for k, val in v.numbers
        )
        if v.details:
            more = f"+{len(v.details)} more in the HTML and JSON reports"
            numbers = f"{numbers} ({more})" if numbers else more
        claim = f"{md_text(v.claim)} {md_text(v.title)}"
        if v.compared:
            claim += f" ({md_text(v.compared)})"
        rows.append([claim, verdict, md_text(v.text), numbers])
    out += _table(["claim", "verdict", "finding", "numbers"], rows)

    for spectrum in view.spectra:
        out += _spectrum(view, spectrum, several_hosts=len(view.spectra) > 1)

    # The note is written for Markdown already (backticks); only the source is ours.
    out += ["## Results", "", view.interval_note, ""]
    if not view.tables:
        out += ["No measured samples.", ""]
    multi_host = len({t.host for t in view.tables}) > 1
    for t in view.tables:
        heading = md_text(t.title) + (f" — {md_text(t.host)}" if multi_host else "")
        header = ["metric", "unit"] + [view.short_label(b) for b in t.backends]
        header += [view.pair_label(p) for p in t.pairs]
        body = [
            [md_text(r.metric), md_text(r.unit)]
            + [r.cells.get(b, "") for b in t.backends]
            + [r.ratios.get(p, "") for p in t.pairs]
            for r in t.rows
        ]
        out += [f"### {heading}", ""]
        out += _table([md_text(h) for h in header], body, "ll" + "r" * (len(header) - 2))
        notes = sorted({r.note for r in t.rows if r.note})
        out += [*(f"_{md_text(n)}_" for n in notes), ""] if notes else []

    if view.facts:
        out += ["## Isolation and kernel facts", ""]
        header = ["fact"] + [view.short_label(b) for b in view.fact_backends]
        body = [
            [md_text(name)] + [md_text(values.get(b, "")) for b in view.fact_backends]
            for name, values in view.facts
        ]
        out += _table([md_text(h) for h in header], body)

    out += [f"## Errors ({len(doc.errors)})", ""]
    if doc.errors:
        body = [
            [
                md_text(e.host),
                md_text(e.backend),
                md_text(e.workload),
                str(e.repetition),
                md_text(e.message),
            ]
            for e in doc.errors
        ]
        out += _table(["host", "backend", "workload", "repetition", "message"], body, "lllr")
    else:
        out += ["No trial failed.", ""]
    if doc.skipped:
        out += ["## Skipped backends", ""]
        body = [[md_text(s.host), md_text(s.backend), md_text(s.reason)] for s in doc.skipped]
        out += _table(["host", "backend", "reason"], body)

    out += ["## Environment", ""]
    body = [[md_text(k), md_text(v)] for k, v in view.environment]
    body += [
        [f"image id ({md_text(view.short_label(b))})", md_text(", ".join(ids))]
        for b, ids in view.image_ids.items()
    ]
    out += _table(["key", "value"], body) if body else ["No environment recorded.", ""]
    return "\n".join(out)
