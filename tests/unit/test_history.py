"""vmvc.history and the `vmvc history` command: medians across saved runs."""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from vmvc import history as hist
from vmvc.cli_analysis import register
from vmvc.results import save

app = typer.Typer()
register(app)
runner = CliRunner()


def three_runs(tmp_path, build_doc):
    """Runs saved out of order; the second was emulated, one stray JSON file beside them."""
    for day, cpu, accel in ((3, 1800.0, "kvm"), (1, 2300.0, "kvm"), (2, 600.0, "tcg")):
        doc = build_doc(
            {"native": {"cpu/events_per_s": [cpu, cpu + 10]},
             "docker": {"startup/total_s": [0.2, 0.22]}},
            run_id=f"2025010{day}T000000Z-run{day}",
            started_at=f"2025-01-0{day}T00:00:00+00:00",
            accel=accel,
        )  # fmt: skip
        save(doc, tmp_path / f"z{day}.json")
    (tmp_path / "report-data.json").write_text("[]")


def test_history_orders_runs_by_start_time(tmp_path, build_doc):
    three_runs(tmp_path, build_doc)
    result = hist.history(tmp_path)
    assert [r["run_id"][-4:] for r in result["runs"]] == ["run1", "run2", "run3"]
    cpu = next(s for s in result["series"] if s["metric"] == "events_per_s")
    assert [p["median"] for p in cpu["points"]] == [2305.0, 605.0, 1805.0]
    assert [p["accel"] for p in cpu["points"]] == ["kvm", "tcg", "kvm"]
    assert len(result["skipped"]) == 1 and "no schema_version" in result["skipped"][0]["error"]
    assert any("mix accelerations" in w for w in result["warnings"])


def test_metric_filter_and_sparkline(tmp_path, build_doc):
    three_runs(tmp_path, build_doc)
    result = hist.history(tmp_path, metric="cpu/events_per_s")
    assert [(s["workload"], s["metric"]) for s in result["series"]] == [("cpu", "events_per_s")]
    assert hist.sparkline([2305.0, 605.0, 1805.0]) == "█▁▆"
    assert hist.sparkline([1.0, None, 1.0]) == "▄ ▄"
    assert "| native | cpu/events_per_s |" in hist.to_markdown(result)
    assert json.loads(hist.to_json(result))["series"][0]["points"][0]["run_id"].endswith("run1")


def test_history_command(tmp_path, build_doc):
    three_runs(tmp_path, build_doc)
    table = runner.invoke(app, ["history", str(tmp_path)])
    assert table.exit_code == 0, table.output
    assert "cpu/events_per_s" in table.stdout and "startup/total_s" in table.stdout
    assert "WARNING: runs mix accelerations" in table.stderr
    md = runner.invoke(app, ["history", str(tmp_path), "--format", "md", "--metric", "startup"])
    assert md.exit_code == 0 and "cpu/events_per_s" not in md.stdout
    missing = runner.invoke(app, ["history", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and missing.stderr.startswith("error: ")
    unknown = runner.invoke(app, ["history", str(tmp_path), "--metric", "gpu/flops"])
    assert unknown.exit_code == 2 and "no metric matches" in unknown.stderr


def test_scale_series_are_per_instance_count_and_accel_per_host(tmp_path, build_doc):
    for day in (1, 2):
        doc = build_doc(
            {"libvirt": {"scale/all_ready_s": [6.6, 6.6, 10.0, 6.7, 6.5, 9.9]}},
            run_id=f"2025010{day}T000000Z-run{day}",
            started_at=f"2025-01-0{day}T00:00:00+00:00",
            accel=None,  # a remote-only run: no local VM
            host="lab1",
        )
        for index, sample in enumerate(doc.samples):
            sample.metadata = {"n": (1, 2, 3)[index % 3]}
        doc.environment["hosts"] = {"lab1": {"accel": "tcg"}}
        save(doc, tmp_path / f"r{day}.json")
    result = hist.history(tmp_path, metric="scale/all_ready_s")
    assert [s["metric"] for s in result["series"]] == [f"all_ready_s@N={n}" for n in (1, 2, 3)]
    assert [p["median"] for p in result["series"][2]["points"]] == [9.95, 9.95]
    assert {p["accel"] for s in result["series"] for p in s["points"]} == {"tcg"}
    assert "scale/all_ready_s (N=3)" in hist.to_markdown(result)
    one = hist.history(tmp_path, metric="scale/all_ready_s@N=2")
    assert [s["metric"] for s in one["series"]] == ["all_ready_s@N=2"]
