"""Backend labels, order and compared pairs come from doc.backend_info, never from names.

A third-party backend ("bwrap", kind sandbox) renders in every report, chart and compare; a
VM backend under another name is still the VM the claims judge; results written before
backend_info existed get it from the installed backends; the typed statistics and verdicts
round-trip through a result file and are never taken from it as stored.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vmvc import compare as cmp
from vmvc.analysed import Statistics, Verdict
from vmvc.backend_records import fill_backend_info
from vmvc.config import Config
from vmvc.export.charts import ChartBuilder
from vmvc.export.view import build_view
from vmvc.orchestrate import analyse, reanalyse
from vmvc.report import render
from vmvc.results import BackendRecord, ResultDocument, load, save

BWRAP = BackendRecord(label="bwrap", kind="sandbox", display_name="sandbox (bubblewrap)")


def _data(backends: dict[str, float], n: int = 7) -> dict[str, dict[str, list[float]]]:
    """cpu, memory and startup per backend around a speed factor, with a little spread."""
    return {
        name: {
            "cpu/events_per_s": [2300 * speed * (1 + 0.004 * i) for i in range(n)],
            "memory/bandwidth_mib_s": [5000 * speed * (1 - 0.003 * i) for i in range(n)],
            "startup/total_s": [0.2 / speed * (1 + 0.005 * i) for i in range(n)],
        }
        for name, speed in backends.items()
    }


@pytest.fixture
def with_bwrap(build_doc) -> ResultDocument:
    doc = build_doc(
        _data({"native": 1.0, "docker": 0.99, "libvirt": 0.3, "bwrap": 0.95}), accel="kvm"
    )
    doc.backend_info["bwrap"] = BWRAP  # as the plugin's own info() would record it
    analyse(doc, Config())
    return doc


def _md_headers(markdown: str) -> list[list[str]]:
    return [
        [c.strip() for c in line.strip("|").split("|")]
        for line in markdown.splitlines()
        if line.startswith("| metric |")
    ]


def test_a_sandbox_backend_renders_in_markdown(with_bwrap: ResultDocument) -> None:
    markdown = render(with_bwrap, "md")
    for header in _md_headers(markdown):
        assert header[2:6] == ["native", "container", "bwrap", "VM"]  # the isolation spectrum
        assert "bwrap/native" in header and "VM/container" in header
        assert not any(h.startswith("bwrap/") and h != "bwrap/native" for h in header)
    cpu = next(line for line in markdown.splitlines() if line.startswith("| events\\_per\\_s"))
    assert len(cpu.split("|")) == len(_md_headers(markdown)[0]) + 2  # every cell filled in
    # Judged by no claim: the verdicts name the VM and the container, never the sandbox.
    verdicts = markdown.split("## Isolation spectrum")[0].split("## Results")[0]
    assert "bwrap" not in verdicts and "confirmed" in verdicts


def test_a_sandbox_backend_renders_in_html_and_charts(with_bwrap: ResultDocument) -> None:
    page = render(with_bwrap, "html")
    assert "sandbox (bubblewrap)" in page  # its display name in the toolbar and legends
    assert 'data-backend-toggle="bwrap"' in page
    charts = ChartBuilder(build_view(with_bwrap)).build()
    traces = [t for c in charts for t in c.data if t.get("meta", {}).get("backend") == "bwrap"]
    assert {c.id for c in charts if any(t in c.data for t in traces)} >= {
        "h0-overhead",
        "h0-total",
    }
    colors = {t["marker"]["color"] for t in traces if "marker" in t}
    others = {
        t["marker"]["color"]
        for c in charts
        for t in c.data
        if t.get("meta", {}).get("backend") not in (None, "bwrap") and "color" in t["marker"]
    }
    assert len(colors) == 1 and not colors & others  # a colour of its own


def test_a_sandbox_backend_is_compared(with_bwrap: ResultDocument) -> None:
    slower = with_bwrap.model_copy(deep=True)
    for sample in slower.samples:
        if sample.backend == "bwrap" and sample.metric == "events_per_s":
            sample.value *= 0.6
    result = cmp.compare(with_bwrap, slower)
    bwrap = [r for r in result["rows"] if r["backend"] == "bwrap"]
    assert {r["metric"] for r in bwrap} == {"events_per_s", "bandwidth_mib_s", "total_s"}
    assert next(r for r in bwrap if r["metric"] == "events_per_s")["classification"] == (
        "regression"
    )
    assert "bwrap" in cmp.to_markdown(result)


def test_claims_pick_backends_by_kind_not_by_name(build_doc) -> None:
    doc = build_doc(_data({"host": 1.0, "pods": 0.99, "kvmbox": 0.3}), accel="kvm")
    doc.backend_info = {
        "host": BackendRecord(label="bare", kind="native", display_name="bare metal"),
        "pods": BackendRecord(label="pod", kind="container", display_name="pod (podman)"),
        "kvmbox": BackendRecord(label="guest", kind="vm", display_name="guest (kvmbox)"),
    }
    analyse(doc, Config())
    verdicts = {v.claim: v for v in doc.verdicts}
    assert verdicts["C01"].verdict == "confirmed"  # 0.2/0.3 s vs 0.2/0.99 s: > 2x
    assert "guest" in verdicts["C01"].text and "pod" in verdicts["C01"].text
    assert verdicts["C03"].verdict == "confirmed"
    pairs = {(r.numerator, r.denominator) for r in doc.statistics.ratios}
    assert pairs == {("pods", "host"), ("kvmbox", "host"), ("kvmbox", "pods")}
    header = _md_headers(render(doc, "md"))[0]
    assert header[2:] == ["bare", "pod", "guest", "pod/bare", "guest/bare", "guest/pod"]


def test_older_results_get_backend_info_from_the_installed_backends(build_doc) -> None:
    doc = build_doc(_data({"native": 1.0, "docker": 0.99, "libvirt": 0.3, "bwrap": 0.9}))
    doc.backend_info = {}  # written before runs recorded it
    fill_backend_info(doc)
    kinds = {name: record.kind for name, record in doc.backend_info.items()}
    assert kinds == {"native": "native", "docker": "container", "libvirt": "vm", "bwrap": "sandbox"}
    assert doc.backend_info["libvirt"].label == "VM"
    assert doc.backend_info["bwrap"] == BackendRecord(
        label="bwrap", kind="sandbox", display_name="bwrap"
    )
    assert doc.backends() == ["native", "docker", "bwrap", "libvirt"]


def test_unrecorded_backend_renders_without_a_key_error(build_doc) -> None:
    doc = build_doc(_data({"native": 1.0, "bwrap": 0.9}))
    del doc.backend_info["bwrap"]  # not even described: itself, kind sandbox
    analyse(doc, Config())
    for fmt in ("md", "html", "csv", "json"):
        assert "bwrap" in render(doc, fmt)


def test_typed_statistics_and_verdicts_round_trip(tmp_path: Path, with_bwrap) -> None:
    assert isinstance(with_bwrap.statistics, Statistics)
    assert all(isinstance(v, Verdict) for v in with_bwrap.verdicts)
    path = tmp_path / "r.json"
    save(with_bwrap, path)
    assert ResultDocument.model_validate_json(path.read_text()) == with_bwrap
    # From disk the derived part is never taken as stored: load drops it, reanalyse
    # computes the very same again from the samples.
    loaded = load(path)
    assert loaded.statistics == Statistics() and loaded.verdicts == []
    reanalyse(loaded)
    assert loaded.statistics == with_bwrap.statistics
    assert loaded.verdicts == with_bwrap.verdicts


def test_a_file_cannot_forge_a_verdict(tmp_path: Path, with_bwrap) -> None:
    raw = json.loads(with_bwrap.model_dump_json())
    for verdict in raw["verdicts"]:
        verdict["verdict"], verdict["text"] = "confirmed", "FORGED"
    path = tmp_path / "forged.json"
    path.write_text(json.dumps(raw))
    doc = load(path)
    reanalyse(doc)
    assert not re.search("FORGED", render(doc, "md"))
    assert doc.verdicts == with_bwrap.verdicts


def test_a_failed_analysis_is_said_in_every_report(with_bwrap, monkeypatch) -> None:
    from vmvc import stats

    def broken(doc: ResultDocument) -> Statistics:
        raise ZeroDivisionError("odd samples")

    monkeypatch.setattr(stats, "summarize", broken)  # the failure, injected: no real data has it
    reanalyse(with_bwrap)
    assert with_bwrap.verdicts == [] and with_bwrap.statistics.summaries == []
    why = "analysis failed (ZeroDivisionError: odd samples): no statistics, no verdicts"
    assert with_bwrap.statistics.note == why
    assert why in render(with_bwrap, "md") and why in render(with_bwrap, "html")
