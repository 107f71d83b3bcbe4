"""Statistics, verdicts and compare on a recorded real quick-profile run (results/example).

The run: `make bench` on the development machine (2 cores, VMs emulated with TCG), all three
backends and eleven workloads, three repetitions.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from vmvc import claims, stats
from vmvc.backend_records import fill_backend_info
from vmvc.cli import app
from vmvc.config import Thresholds
from vmvc.orchestrate import reanalyse
from vmvc.report import render
from vmvc.results import ResultDocument, load, save

RECORDED = (
    Path(__file__).resolve().parents[2] / "results" / "example" / "20261129T130319Z-160e6f.json"
)


def _scaled(
    doc: ResultDocument, backend: str, workload: str, metric: str, factor: float
) -> ResultDocument:
    copy = doc.model_copy(deep=True)
    for sample in copy.samples:
        if (sample.backend, sample.workload, sample.metric) == (backend, workload, metric):
            sample.value *= factor
    return copy


def test_statistics_recompute_from_raw_values() -> None:
    doc = load(RECORDED)
    assert doc.statistics.summaries == [] and doc.verdicts == []  # never taken as stored
    fresh = stats.summarize(doc)
    # The stored block came from the old bootstrap; its unscaled medians still agree.
    raw = json.loads(RECORDED.read_text())["statistics"]["summaries"]
    stored = {(s["backend"], s["workload"], s["metric"]): s for s in raw}
    for summary in fresh.summaries:
        key = (summary.backend, summary.workload, summary.metric)
        if key in stored:
            assert summary.median == stored[key]["median"]
            assert summary.values == stored[key]["values"]
    # Three repetitions: no interval anywhere (a median needs 6, a ratio 4 + 4).
    assert all(s.ci_low is None for s in [*fresh.summaries, *fresh.ratios])
    # Scale is a curve: one group per instance count (3 repetitions each), not a pool of 9.
    scale = [s for s in fresh.summaries if s.metric.startswith("all_ready_s")]
    assert {s.metric for s in scale} == {f"all_ready_s@N={n}" for n in (1, 2, 3)}
    assert all(s.n == 3 for s in scale)


def test_verdicts_on_the_recorded_run() -> None:
    doc = load(RECORDED)  # emulated (TCG) VMs, three repetitions
    fill_backend_info(doc)  # written before runs recorded backend_info
    verdicts = {v.claim: v for v in claims.evaluate(doc, stats.summarize(doc), Thresholds())}
    for claim in ("C01", "C03", "C04", "C05", "C08"):
        assert verdicts[claim].verdict == "not measured under KVM"
        assert verdicts[claim].qualifier == "VM ran under TCG"
    # Recorded before the density workload (host MemAvailable accounting) existed.
    assert verdicts["C02"].verdict == verdicts["C10"].verdict == "not measured"
    assert verdicts["C07"].verdict == verdicts["C09"].verdict == "fact"
    # Recorded before both forms were exported alike (zlib qcow2 vs plain tar): not compared.
    assert verdicts["C06"].verdict == "not measured"
    assert "each engine's own form" in verdicts["C06"].text
    measured = [v for v in verdicts.values() if v.verdict != "not measured"]
    assert all(v.emulated and "emulated" in v.text.lower() for v in measured)
    # Had it run under KVM, three repetitions would still be too few for any verdict.
    doc.environment["accel"] = "kvm"
    kvm = {v.claim: v for v in claims.evaluate(doc, stats.summarize(doc), Thresholds())}
    for claim in ("C01", "C04"):
        assert kvm[claim].verdict == "inconclusive"
        assert kvm[claim].qualifier == "n = 3; needs \N{GREATER-THAN OR EQUAL TO} 4"
    # C05 rests on the VM/container ratio at the largest N (a ratio needs 4 per side).
    assert kvm["C05"].qualifier == "n = 3; needs \N{GREATER-THAN OR EQUAL TO} 4"


def test_report_of_the_recorded_run_prints_no_95_percent_interval() -> None:
    # The stored statistics are an older vmvc's bootstrap: the analysis recomputes them.
    doc = load(RECORDED)
    reanalyse(doc)
    for text in (render(doc, "md"), render(doc, "html")):
        # What a reader sees: the embedded chart library's code is not text.
        text = re.sub(r"<(script|style)[^>]*>.*?</\1>", "", text, flags=re.S)
        assert not re.search(r"95\s?%", text)
        assert "not measured under KVM" in text
        assert "all\\_ready\\_s (N=3)" in text or "all_ready_s (N=3)" in text


def test_compare_against_itself_and_against_a_regression(tmp_path: Path) -> None:
    doc = load(RECORDED)
    base = tmp_path / "base.json"
    save(doc, base)
    runner = CliRunner()

    same = runner.invoke(
        app, ["compare", str(base), str(base), "--fail-on-regression", "--format", "json"]
    )
    assert same.exit_code == 0, same.output
    rows = json.loads(same.stdout)["rows"]
    assert {r["classification"] for r in rows} == {"no change"}

    slower = tmp_path / "slower.json"
    save(_scaled(doc, "docker", "cpu", "events_per_s", 0.70), slower)
    flagged = runner.invoke(
        app, ["compare", str(base), str(slower), "--fail-on-regression", "--format", "md"]
    )
    assert flagged.exit_code == 1
    assert "events_per_s" in flagged.stdout and "regression" in flagged.stdout
    result = runner.invoke(app, ["compare", str(base), str(slower), "--format", "json"])
    regressions = [
        (r["backend"], r["workload"], r["metric"])
        for r in json.loads(result.stdout)["rows"]
        if r["classification"] == "regression"
    ]
    assert regressions == [("docker", "cpu", "events_per_s")]

    nearly = tmp_path / "nearly.json"
    save(_scaled(doc, "docker", "cpu", "events_per_s", 0.99), nearly)
    calm = runner.invoke(
        app, ["compare", str(base), str(nearly), "--fail-on-regression", "--format", "json"]
    )
    assert calm.exit_code == 0
    assert {r["classification"] for r in json.loads(calm.stdout)["rows"]} == {"no change"}
