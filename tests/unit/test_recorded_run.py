"""Statistics, verdicts and compare on a recorded real quick-profile run (results/example).

The run: `make bench` on the development machine (2 cores, VMs emulated with TCG), all three
backends and eleven workloads, three repetitions.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from vmvc import claims, stats
from vmvc.cli import app
from vmvc.config import Thresholds
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
    fresh = stats.summarize(doc)
    stored = {(s["backend"], s["workload"], s["metric"]): s for s in doc.statistics["summaries"]}
    for summary in fresh["summaries"]:
        key = (summary["backend"], summary["workload"], summary["metric"])
        assert summary["median"] == stored[key]["median"]
        assert summary["values"] == stored[key]["values"]


def test_verdicts_on_the_recorded_run() -> None:
    doc = load(RECORDED)
    verdicts = {v["claim"]: v for v in claims.evaluate(doc, stats.summarize(doc), Thresholds())}
    assert [verdicts[c]["verdict"] for c in ("C01", "C02", "C04", "C05", "C10")] == [
        "confirmed"
    ] * 5
    assert verdicts["C07"]["verdict"] == verdicts["C09"]["verdict"] == "fact"
    assert all(v["emulated"] and "emulated" in v["text"].lower() for v in verdicts.values())
    # A stricter threshold than the measured ratio turns C01 around.
    strict = claims.evaluate(doc, stats.summarize(doc), Thresholds(c01_startup_ratio=100))
    assert next(v for v in strict if v["claim"] == "C01")["verdict"] == "refuted"


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
