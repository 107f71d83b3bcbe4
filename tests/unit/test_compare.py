"""vmvc.compare and the `vmvc compare` command: A/B of two result files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from vmvc import compare as cmp
from vmvc.cli_analysis import register
from vmvc.results import ResultDocument, save

app = typer.Typer()
register(app)
runner = CliRunner()


def scaled(doc: ResultDocument, backend: str, workload: str, metric: str, factor: float):
    """A copy of doc with one metric's values multiplied by factor (a new run)."""
    copy = doc.model_copy(deep=True)
    copy.run_id = "20250102T000000Z-bbbbbb"
    copy.started_at = "2025-01-02T00:00:00+00:00"
    for sample in copy.samples:
        if (sample.backend, sample.workload, sample.metric) == (backend, workload, metric):
            sample.value *= factor
    return copy


def write(tmp_path: Path, name: str, doc: ResultDocument) -> str:
    path = tmp_path / name
    save(doc, path)
    return str(path)


def row(result: dict, backend: str, workload: str, metric: str) -> dict:
    (found,) = [
        r
        for r in result["rows"]
        if (r["backend"], r["workload"], r["metric"]) == (backend, workload, metric)
    ]
    return found


# ---------------------------------------------------------------- compare()


def test_result_against_itself_is_all_no_change(realistic_doc):
    result = cmp.compare(realistic_doc, realistic_doc)
    assert result["rows"] and {r["classification"] for r in result["rows"]} == {"no change"}
    assert result["regressions"] == [] and result["improvements"] == []
    assert result["warnings"] == []
    cpu = row(result, "docker", "cpu", "events_per_s")
    assert cpu["change_pct"] == 0.0 and cpu["p_value"] == 1.0
    assert cpu["ci_low_pct"] < 0 < cpu["ci_high_pct"]


def test_thirty_percent_slower_is_a_regression(realistic_doc):
    new = scaled(realistic_doc, "docker", "cpu", "events_per_s", 0.7)
    result = cmp.compare(realistic_doc, new)
    cpu = row(result, "docker", "cpu", "events_per_s")
    assert cpu["classification"] == "regression"
    assert cpu["change_pct"] == pytest.approx(-30.0)
    assert cpu["p_value"] < 0.05
    assert cpu["ci_high_pct"] < 0
    assert [r["metric"] for r in result["regressions"]] == ["events_per_s"]
    others = [r for r in result["rows"] if r is not cpu]
    assert {r["classification"] for r in others} == {"no change"}


def test_one_percent_slower_is_noise(realistic_doc):
    new = scaled(realistic_doc, "docker", "cpu", "events_per_s", 0.99)
    result = cmp.compare(realistic_doc, new)
    assert row(result, "docker", "cpu", "events_per_s")["classification"] == "no change"


def test_direction_follows_higher_is_better(realistic_doc):
    faster = cmp.compare(realistic_doc, scaled(realistic_doc, "docker", "cpu", "events_per_s", 1.3))
    assert row(faster, "docker", "cpu", "events_per_s")["classification"] == "improvement"
    slower_boot = scaled(realistic_doc, "libvirt", "startup", "total_s", 1.3)
    result = cmp.compare(realistic_doc, slower_boot)
    assert row(result, "libvirt", "startup", "total_s")["classification"] == "regression"


def test_too_few_repetitions(build_doc):
    base = build_doc({"native": {"cpu/events_per_s": [2313.0]}})
    new = build_doc({"native": {"cpu/events_per_s": [1000.0, 1001.0]}})
    only = cmp.compare(base, new)["rows"][0]
    assert only["classification"] == "no change"
    assert only["note"] == "too few repetitions"


def test_three_repetitions_use_the_t_test_on_logs_and_say_so(build_doc):
    # 3 + 3 repetitions: the permutation test cannot go below p = 0.1, so the t-test decides.
    base = build_doc({"native": {"cpu/events_per_s": [2313.0, 2300.0, 2320.0]}})
    slower = build_doc({"native": {"cpu/events_per_s": [1000.0, 1001.0, 1002.0]}})
    only = cmp.compare(base, slower)["rows"][0]
    assert only["classification"] == "regression"
    assert only["test"] == "Student t-test on log values"
    assert "cannot go below p = 0.1" in only["note"] and "t-test" in only["note"]
    assert only["ci_low_pct"] is None  # 3 + 3: too few for the change's interval
    # Within the noise: 1 % lower with ~0.4 % spread is still no change (noise threshold).
    close = build_doc({"native": {"cpu/events_per_s": [2290.0, 2277.0, 2297.0]}})
    assert cmp.compare(base, close)["rows"][0]["classification"] == "no change"
    # Overlapping noisy groups: no change either.
    noisy = build_doc({"native": {"cpu/events_per_s": [2200.0, 2400.0, 2250.0]}})
    assert cmp.compare(base, noisy)["rows"][0]["classification"] == "no change"


def test_a_change_beyond_the_noise_threshold_needs_a_significant_p(build_doc):
    # +6.5 % in the medians, but the groups overlap: only the p-value says "no change".
    base = build_doc({"native": {"cpu/events_per_s": [2000.0, 2600.0, 2300.0]}})
    new = build_doc({"native": {"cpu/events_per_s": [2150.0, 2450.0, 2500.0]}})
    only = cmp.compare(base, new)["rows"][0]
    assert only["change_pct"] > 5
    assert only["p_adjusted"] > 0.05
    assert only["classification"] == "no change"


def test_seven_repetitions_use_the_exact_permutation_test(make_realistic):
    doc = make_realistic(repetitions=7)
    only = cmp.compare(doc, doc)["rows"][0]
    assert only["test"] == "exact permutation test"
    assert only["note"] == ""


def test_permutation_p_is_exact():
    # 4 + 4 perfectly separated: only the observed split and its mirror are as extreme.
    assert cmp.permutation_p([1, 2, 3, 4], [11, 12, 13, 14]) == pytest.approx(2 / 70)
    assert cmp.smallest_p(3, 3) == pytest.approx(0.1)
    assert cmp.smallest_p(7, 7) == pytest.approx(2 / 3432)
    assert cmp.permutation_p([5, 5, 5], [5, 5, 5]) == 1.0


def test_holm_adjustment():
    assert cmp.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert cmp.holm([]) == []


def _nightly(build_doc, rng, metrics: int, n: int, cv: float, factor: float = 1.0, run="a"):
    """One run of `metrics` lognormal metrics; metric m0 multiplied by factor."""
    sigma = np.sqrt(np.log1p(cv**2))
    data = {
        f"io/m{i}_iops": list(1000 * (factor if i == 0 else 1) * rng.lognormal(0, sigma, n))
        for i in range(metrics)
    }
    return build_doc({"native": data}, run_id=f"20250101T000000Z-{run * 6}")


@pytest.mark.parametrize("n", [3, 7])
def test_85_unchanged_metrics_rarely_flag_a_regression(build_doc, n):
    # 200 simulated nightlies compared with their predecessor, nothing changed, CV 10 %:
    # Holm keeps the chance of any false regression per compare at or below 5 %.
    rng = np.random.default_rng(1109)
    nights = 200
    flagged = 0
    for _ in range(nights):
        base = _nightly(build_doc, rng, 85, n, 0.10)
        new = _nightly(build_doc, rng, 85, n, 0.10, run="b")
        flagged += bool(cmp.compare(base, new)["regressions"])
    assert flagged / nights <= 0.05, flagged


@pytest.mark.parametrize("seed", range(10))
def test_thirty_percent_drop_is_flagged_among_85_metrics_with_3_repetitions(build_doc, seed):
    rng = np.random.default_rng(seed)
    base = _nightly(build_doc, rng, 85, 3, 0.02)
    dropped = _nightly(build_doc, rng, 85, 3, 0.02, factor=0.7, run="b")
    result = cmp.compare(base, dropped)
    assert [r["metric"] for r in result["regressions"]] == ["m0_iops"]
    assert row(result, "native", "io", "m0_iops")["test"] == "Student t-test on log values"
    nearly = _nightly(build_doc, rng, 85, 3, 0.02, factor=0.99, run="c")
    assert cmp.compare(base, nearly)["regressions"] == []


def test_different_machine_or_accel_is_refused_unless_forced(realistic_doc):
    realistic_doc.environment["cpu_model"] = "AMD EPYC"
    for key, value, label in (
        ("cpu_model", "Intel Xeon", "CPU model"),
        ("cores", 64, "core count"),
        ("kernel", "6.12.0", "kernel"),
        ("accel", "kvm", "acceleration"),
    ):
        other = realistic_doc.model_copy(deep=True)
        other.environment[key] = value
        with pytest.raises(cmp.IncomparableResultsError, match=f"different {label}"):
            cmp.compare(realistic_doc, other)
    other.environment["cpu_model"] = "Intel Xeon"
    forced = cmp.compare(realistic_doc, other, force=True)
    assert forced["forced"] is True
    assert "different acceleration: tcg vs kvm" in forced["differences"]
    assert any("CPU model" in d for d in forced["differences"])
    # A new host name alone (hosted CI runners) is only a warning.
    renamed = realistic_doc.model_copy(deep=True)
    renamed.environment["hostname"] = "elsewhere"
    result = cmp.compare(realistic_doc, renamed)
    assert "different host name: testhost vs elsewhere" in result["warnings"]


def test_scale_rows_are_per_instance_count(build_doc):
    doc = build_doc({"docker": {"scale/all_ready_s": [0.18, 0.22, 0.31] * 3}})
    for index, sample in enumerate(doc.samples):
        sample.metadata = {"n": index % 3 + 1}
    metrics = [r["metric"] for r in cmp.compare(doc, doc)["rows"]]
    assert metrics == ["all_ready_s@N=1", "all_ready_s@N=2", "all_ready_s@N=3"]


def test_image_and_profile_changes_are_warnings(realistic_doc):
    other = realistic_doc.model_copy(deep=True)
    other.image["id"] = "sha256:2222"
    other.config["profile"] = "nightly"
    result = cmp.compare(realistic_doc, other)
    assert "different image id: sha256:1111 vs sha256:2222" in result["warnings"]
    assert "different profile: default vs nightly" in result["warnings"]


def test_renderers(realistic_doc):
    result = cmp.compare(realistic_doc, scaled(realistic_doc, "docker", "cpu", "events_per_s", 0.7))
    markdown = cmp.to_markdown(result)
    assert "| docker | cpu/events_per_s |" in markdown and "**regression**" in markdown
    assert json.loads(cmp.to_json(result))["regressions"][0]["backend"] == "docker"
    table = cmp.render_table(result)
    assert table.row_count == len(result["rows"])


# ---------------------------------------------------------------- the command


def test_cli_same_file_exits_0(tmp_path, realistic_doc):
    path = write(tmp_path, "a.json", realistic_doc)
    outcome = runner.invoke(app, ["compare", path, path, "--fail-on-regression"])
    assert outcome.exit_code == 0, outcome.output
    assert "No significant change" in outcome.stdout


def test_cli_regression_is_named_and_fails_on_request(tmp_path, realistic_doc):
    base = write(tmp_path, "a.json", realistic_doc)
    new = write(tmp_path, "b.json", scaled(realistic_doc, "docker", "cpu", "events_per_s", 0.7))
    plain = runner.invoke(app, ["compare", base, new])
    assert plain.exit_code == 0, plain.output
    assert "regression" in plain.stdout and "cpu/events_per_s" in plain.stdout
    assert "1 regression(s): docker cpu/events_per_s -30.0%" in plain.stdout
    assert "\x1b[" not in plain.stdout  # not a terminal: no colour codes
    failing = runner.invoke(app, ["compare", base, new, "--fail-on-regression"])
    assert failing.exit_code == 1
    for fmt in ("md", "json"):
        out = runner.invoke(app, ["compare", base, new, "--format", fmt, "--fail-on-regression"])
        assert out.exit_code == 1 and "events_per_s" in out.stdout
    as_json = runner.invoke(app, ["compare", base, new, "--format", "json"])
    assert json.loads(as_json.stdout)["regressions"][0]["metric"] == "events_per_s"


def test_cli_small_change_is_not_a_regression(tmp_path, realistic_doc):
    base = write(tmp_path, "a.json", realistic_doc)
    new = write(tmp_path, "b.json", scaled(realistic_doc, "docker", "cpu", "events_per_s", 0.99))
    outcome = runner.invoke(app, ["compare", base, new, "--fail-on-regression"])
    assert outcome.exit_code == 0, outcome.output


def test_cli_noise_threshold_option(tmp_path, realistic_doc):
    base = write(tmp_path, "a.json", realistic_doc)
    new = write(tmp_path, "b.json", scaled(realistic_doc, "docker", "cpu", "events_per_s", 0.7))
    args = ["compare", base, new, "--fail-on-regression", "--noise-threshold", "0.5"]
    assert runner.invoke(app, args).exit_code == 0  # a 30 % change is under a 50 % bar


def test_cli_different_accel_needs_force(tmp_path, realistic_doc):
    other = realistic_doc.model_copy(deep=True)
    other.environment["accel"] = "kvm"
    base, new = write(tmp_path, "a.json", realistic_doc), write(tmp_path, "b.json", other)
    refused = runner.invoke(app, ["compare", base, new])
    assert refused.exit_code == 2
    assert refused.stderr.startswith("error: different acceleration: tcg vs kvm")
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.output
    forced = runner.invoke(app, ["compare", base, new, "--force"])
    assert forced.exit_code == 0, forced.output
    assert "WARNING: different acceleration: tcg vs kvm (--force)" in forced.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such result file"),
        ('{"schema_version": 1, "run_id": "x", "started', "was the file truncated?"),
        ("[1, 2]", "no schema_version"),
        ('{"schema_version": 1, "run_id": 5}', "invalid result file"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, realistic_doc, content, message):
    good = write(tmp_path, "good.json", realistic_doc)
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    outcome = runner.invoke(app, ["compare", good, str(bad)])
    assert outcome.exit_code == 2
    assert outcome.stderr.startswith("error: ") and message in outcome.stderr
    assert outcome.stderr.count("\n") == 1
    assert "Traceback" not in outcome.output and outcome.stdout == ""


def test_metrics_measured_on_one_side_only_are_named(build_doc):
    base = build_doc({"native": {"cpu/events_per_s": [1.0, 2.0], "io/randread_4k_iops": [3.0]}})
    new = build_doc({"native": {"cpu/events_per_s": [1.0, 2.0]}})
    result = cmp.compare(base, new)
    assert result["only_in_base"] == ["local/native/io/randread_4k_iops"]
    assert "Only in base: local/native/io/randread_4k_iops." in cmp.summary_line(result)
