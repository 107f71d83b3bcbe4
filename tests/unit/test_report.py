"""Reports: every format tells the same numbers, escapes what the result says, stays offline."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from html import escape as html_escape
from pathlib import Path

import numpy as np
import pytest
import typer
from reportdata import build_document, vmvc_statistics_available
from typer.testing import CliRunner

from vmvc.analysed import Summary, Verdict
from vmvc.catalogue import workload_title
from vmvc.cli_report import register
from vmvc.export.csv_samples import COLUMNS
from vmvc.export.html_page import script_json
from vmvc.export.markdown import md_text
from vmvc.export.view import NO_ANALYSIS, _io_anomalies, faster_than_native
from vmvc.formatting import format_estimate, format_number, format_range
from vmvc.keys import display
from vmvc.orchestrate import reanalyse
from vmvc.report import FORMATS, UnknownFormatError, render, write_reports
from vmvc.results import ResultDocument, save

STATISTICS = [
    "builtin",
    pytest.param(
        "vmvc",
        marks=pytest.mark.skipif(
            not vmvc_statistics_available(), reason="vmvc.stats/claims not importable"
        ),
    ),
]


@pytest.fixture(scope="module", params=STATISTICS)
def doc(request) -> ResultDocument:
    """The same run with statistics from the test bootstrap and from vmvc.stats/claims."""
    return build_document(seed=1, statistics=request.param)


@pytest.fixture(scope="module")
def hostile() -> ResultDocument:
    return build_document(seed=2, hostile=True)


@pytest.fixture(scope="module")
def html(doc: ResultDocument) -> str:
    return render(doc, "html")


@pytest.fixture(scope="module")
def hostile_html(hostile: ResultDocument) -> str:
    return render(hostile, "html")


# -- the shared number formatter -----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (2313.4, "2313"),
        (30802.0, "30802"),
        (636.4, "636"),
        (8.564, "8.56"),
        (0.2134, "0.213"),
        (14.04, "14.0"),
        (999.7, "1000"),
        (0.09996, "0.100"),
        (0.0, "0"),
        (-5.2, "-5.20"),
        (0.00012, "1.20e-04"),
        (None, "—"),
        (float("nan"), "—"),
        (float("inf"), "∞"),
    ],
)
def test_format_number(value, text) -> None:
    assert format_number(value) == text


def test_format_estimate_shows_interval_only_when_there_is_one() -> None:
    assert format_estimate(8.564, 8.1, 9.02) == "8.56 [8.10, 9.02]"
    assert format_estimate(8.564, None, None) == "8.56"


# -- CSV and JSON -----------------------------------------------------------------------------


def test_csv_has_every_sample_at_full_precision(doc: ResultDocument) -> None:
    rows = list(csv.DictReader(io.StringIO(render(doc, "csv"))))
    assert tuple(rows[0]) == COLUMNS
    assert len(rows) == len(doc.samples)
    for row, sample in zip(rows, doc.samples, strict=True):
        assert float(row["value"]) == sample.value  # exact, not approximately
        assert float(row["timestamp"]) == sample.timestamp
        assert row["run_id"] == doc.run_id
        assert (row["host"], row["backend"], row["workload"], row["metric"], row["unit"]) == (
            sample.host, sample.backend, sample.workload, sample.metric, sample.unit,
        )  # fmt: skip
        assert int(row["repetition"]) == sample.repetition
        assert row["warmup"] == str(sample.warmup)
        assert row["higher_is_better"] == str(sample.higher_is_better)
        assert json.loads(row["metadata"]) == sample.metadata


def test_csv_loads_in_pandas(doc: ResultDocument) -> None:
    pandas = pytest.importorskip("pandas")
    frame = pandas.read_csv(io.StringIO(render(doc, "csv")))
    assert list(frame.columns) == list(COLUMNS)
    assert frame["value"].tolist() == [s.value for s in doc.samples]
    assert frame["warmup"].dtype == bool


def test_json_is_the_document(doc: ResultDocument) -> None:
    assert ResultDocument.model_validate_json(render(doc, "json")) == doc


# -- Markdown ---------------------------------------------------------------------------------


def _md_tables(markdown: str) -> dict[str, list[dict[str, str]]]:
    """`### heading` -> rows of the table under it, as {column: cell}."""
    tables: dict[str, list[dict[str, str]]] = {}
    heading, header = None, None
    for line in markdown.splitlines():
        if line.startswith("#"):
            heading, header = line.lstrip("#").strip(), None
            tables[heading] = []
        elif line.startswith("|") and heading is not None:
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if header is None:
                header = cells
            elif not set(line) <= set("|-: "):
                tables[heading].append(dict(zip(header, cells, strict=True)))
    return tables


def _expected_cell(s: Summary) -> str:
    """`median [low, high]` with an interval; the range, never a CI, without one."""
    if s.ci_low is not None:
        return format_estimate(s.median, s.ci_low, s.ci_high)
    return format_range(s.median, s.min, s.max, s.n)


def test_markdown_shows_the_statistics_medians_and_ratios(doc: ResultDocument) -> None:
    markdown = render(doc, "md")
    tables = _md_tables(markdown)
    label = {name: record.label for name, record in doc.backend_info.items()}
    checked = 0
    for s in doc.statistics.summaries:
        rows = {r["metric"]: r for r in tables[md_text(workload_title(s.workload))]}
        cell = rows[md_text(display(s.metric))][label[s.backend]]
        assert cell == _expected_cell(s)
        assert cell.split(" ")[0] == format_number(s.median)
        checked += 1
    # I/O faster than native beyond the noise threshold is flagged in its ratio cell: C03's
    # pair from its verdict, any other backend by the same rule on its ratio.
    anomalies = _io_anomalies(doc.verdicts)
    noise = (doc.config.get("thresholds") or {}).get("noise_threshold", 0.05)  # as the view
    for r in doc.statistics.ratios:
        rows = {row["metric"]: row for row in tables[md_text(workload_title(r.workload))]}
        column = f"{label[r.numerator]}/{label[r.denominator]}"
        same = [s for s in doc.samples if (s.workload, s.metric) == (r.workload, r.metric)]
        by_rule = faster_than_native(f"{r.workload}/{r.metric}", r.ratio, same, noise)
        flag = (r.host, r.numerator, r.metric) in anomalies or by_rule is not None
        assert rows[md_text(display(r.metric))][column] == format_estimate(
            r.ratio, r.ci_low, r.ci_high
        ) + (" ANOMALY" if flag and r.denominator == "native" else "")
        checked += 1
    assert checked > 80


def test_markdown_scale_rows_are_medians_per_n(doc: ResultDocument) -> None:
    rows = {r["metric"]: r for r in _md_tables(render(doc, "md"))[workload_title("scale")]}
    for n in (1, 2, 4, 8):
        values = [s.value for s in doc.measured() if s.metric == "all_ready_s"
                  and s.backend == "libvirt" and s.metadata["n"] == n]  # fmt: skip
        cell = rows[md_text(f"all_ready_s (N={n})")]["VM"]
        assert cell.split(" ")[0] == format_number(np.median(values))


def test_markdown_has_banner_verdicts_errors_environment(doc: ResultDocument) -> None:
    markdown = render(doc, "md")
    assert markdown.startswith(f"# vmvc results: {doc.run_id}")
    assert "> ⚠️ **Emulated VM (QEMU TCG, no KVM).**" in markdown
    tables = _md_tables(markdown)
    assert [r["claim"].split()[0] for r in tables["Verdicts"]] == [
        f"C{i:02d}" for i in range(1, 11)
    ]
    assert tables["Errors (1)"][0]["workload"] == "recovery"
    env = {r["key"]: r["value"] for r in tables["Environment"]}
    assert env["accel"] == "tcg" and env["cores"] == "2"


def test_markdown_without_emulation_has_no_banner() -> None:
    assert "Emulated VM" not in render(build_document(accel="kvm"), "md")


def test_markdown_escapes_result_strings(hostile: ResultDocument) -> None:
    markdown = render(hostile, "md")
    assert "<script" not in markdown and "<" not in markdown.replace("<br>", "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markdown
    assert md_text("a|b [x](http://h/i.png)") == "a\\|b [x]\\(http://h/i.png)"


# -- HTML -------------------------------------------------------------------------------------


def _outside_scripts(page: str) -> str:
    return re.sub(r"<script\b[^>]*>.*?</script>", "<script></script>", page, flags=re.S)


def test_html_is_one_offline_page(html: str) -> None:
    assert html.count("<script") == 3  # chart data, plotly.js once, the page script
    assert html.count("Plotly.newPlot") == 1
    markup = _outside_scripts(html)
    assert not re.search(r"<(link|img|iframe|object|embed|base|source|audio|video)\b", markup, re.I)
    assert re.findall(r"\bsrc\s*=", markup, re.I) == []
    for target in re.findall(r"\bhref\s*=\s*[\"']?([^\"'\s>]*)", markup, re.I):
        assert target.startswith("#"), target
    styles = " ".join(re.findall(r"<style\b[^>]*>(.*?)</style>", html, re.S))
    assert "@import" not in styles and "url(" not in styles
    assert "@font-face" not in styles


def test_html_sections_and_tables(doc: ResultDocument, html: str) -> None:
    for anchor in ("verdicts", "overhead", "startup", "footprint", "scale", "io", "lifecycle",
                   "numbers", "facts", "errors", "environment", "samples"):  # fmt: skip
        assert f'<section id="{anchor}">' in html
    assert 'id="emulation-banner"' in html
    for claim in (f"C{i:02d}" for i in range(1, 11)):
        assert f'data-claim="{claim}"' in html
    assert html.count('<tr data-backend="') == len(doc.samples)
    for s in doc.statistics.summaries:  # the tables print what Markdown prints
        assert html_escape(_expected_cell(s)) in html


def test_html_charts_are_valid_json_with_backend_meta(doc: ResultDocument, html: str) -> None:
    block = re.search(
        r'<script type="application/json" id="vmvc-charts">(.*?)</script>', html, re.S
    )
    charts = json.loads(block.group(1))
    ids = {c["id"] for c in charts}
    assert {"h0-overhead", "h0-phases", "h0-total", "h0-scale-all_ready_s"} <= ids
    for chart in charts:
        assert f'id="{chart["id"]}"' in html
        for trace in chart["data"]:
            assert trace["meta"]["backend"] in {"native", "docker", "libvirt"}
    boxes = [t for c in charts for t in c["data"] if t["type"] == "box"]
    assert sorted(len(t["y"]) for t in boxes) == [5, 5, 5]  # every repetition, not a bar


def test_html_escapes_result_strings(hostile: ResultDocument, hostile_html: str) -> None:
    page = hostile_html
    assert "<script>alert" not in page
    assert page.count("<script") == 3
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    block = re.search(r'id="vmvc-charts">(.*?)</script>', page, re.S).group(1)
    assert "<" not in block and ">" not in block and "&" not in block
    assert "\\u0026lt;script\\u0026gt;alert(1)" in block  # HTML-escaped for plotly, then JSON
    assert "<title>vmvc results: 20251129T114600Z-&lt;script&gt;" in page


def test_script_json_cannot_close_its_element() -> None:
    text = script_json({"a": "</script><!-- & \u2028", "b": float("nan")})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"a": "</script><!-- & \u2028", "b": None}


# -- without statistics -----------------------------------------------------------------------


def test_exporters_compute_nothing_a_document_without_analysis_says_so() -> None:
    bare = build_document(seed=5, statistics=None)
    markdown = render(bare, "md")
    assert NO_ANALYSIS in markdown  # said, not silently recomputed by the exporter
    rows = {r["metric"]: r for r in _md_tables(markdown)[workload_title("cpu")]}
    assert rows["events\\_per\\_s"]["VM"] == "—" and "C10" not in markdown
    assert "<script" in render(bare, "html")  # renders, charts included
    assert bare.statistics.summaries == [] and bare.verdicts == []  # rendering changed nothing

    reanalyse(bare)  # the analysis step: once, and the exporters read what it stored
    markdown = render(bare, "md")
    rows = {r["metric"]: r for r in _md_tables(markdown)[workload_title("cpu")]}
    values = [s.value for s in bare.measured() if s.metric == "events_per_s"
              and s.backend == "libvirt"]  # fmt: skip
    assert rows["events\\_per\\_s"]["VM"].split(" ")[0] == format_number(np.median(values))
    assert "C10" in markdown and NO_ANALYSIS not in markdown


# -- files and the command line ---------------------------------------------------------------


def test_write_reports_names_files_by_run_id(tmp_path: Path, doc: ResultDocument) -> None:
    paths = write_reports(doc, tmp_path, formats=FORMATS)
    assert [p.name for p in paths] == [
        f"{doc.run_id}.{ext}" for ext in ("html", "md", "csv", "json")
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)
    assert paths[1].read_text() == render(doc, "md")


def test_write_reports_keeps_hostile_run_id_inside_directory(tmp_path: Path) -> None:
    doc = build_document(seed=1, statistics=None)
    doc.run_id = "../../etc/x"
    (path,) = write_reports(doc, tmp_path / "out", formats=("md",))
    assert path.parent == tmp_path / "out" and path.name == "_.._etc_x.md"


def test_unknown_format_is_refused(doc: ResultDocument, tmp_path: Path) -> None:
    with pytest.raises(UnknownFormatError, match="unknown report format 'pdf'"):
        render(doc, "pdf")
    with pytest.raises(UnknownFormatError):
        write_reports(doc, tmp_path, formats=("md", "pdf"))
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def cli() -> tuple[CliRunner, typer.Typer]:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """vmvc"""

    register(app)
    return CliRunner(), app


@pytest.fixture
def result_file(tmp_path: Path, doc: ResultDocument) -> Path:
    path = tmp_path / "run.json"
    save(doc, path)
    return path


def test_cli_writes_next_to_the_result(cli, result_file: Path) -> None:
    runner, app = cli
    outcome = runner.invoke(app, ["report", str(result_file), "--format", "md"])
    assert outcome.exit_code == 0, outcome.stderr
    assert (result_file.parent / "run.md").read_text().startswith("# vmvc results")
    outcome = runner.invoke(app, ["report", str(result_file)])
    assert outcome.exit_code == 0 and (result_file.parent / "run.html").exists()


def test_cli_writes_to_stdout_and_to_a_path(cli, result_file: Path, tmp_path: Path) -> None:
    runner, app = cli
    outcome = runner.invoke(app, ["report", str(result_file), "-f", "csv", "-o", "-"])
    assert outcome.exit_code == 0
    assert outcome.stdout.startswith(",".join(COLUMNS))
    target = tmp_path / "sub" / "r.md"
    outcome = runner.invoke(app, ["report", str(result_file), "-f", "md", "-o", str(target)])
    assert outcome.exit_code == 0 and target.exists()


def _bad(tmp_path: Path, name: str, text: str | None) -> Path:
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        ("missing.json", None, "no such result file"),
        ("truncated.json", '{"schema_version": 1, "run_id": "x", "samp', "truncated"),
        ("future.json", '{"schema_version": 99, "run_id": "x"}', "schema_version 99"),
        ("other.json", "[1, 2]", "not a vmvc result"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(cli, tmp_path: Path, name, text, says) -> None:
    runner, app = cli
    path = _bad(tmp_path, name, text)
    before = sorted(tmp_path.iterdir())
    outcome = runner.invoke(app, ["report", str(path)])
    assert outcome.exit_code == 2
    assert outcome.stdout == ""
    lines = outcome.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0]
    assert "Traceback" not in outcome.stderr
    assert sorted(tmp_path.iterdir()) == before  # no report file appeared


def test_cli_unknown_format_is_one_line_exit_2(cli, result_file: Path) -> None:
    runner, app = cli
    outcome = runner.invoke(app, ["report", str(result_file), "-f", "pdf"])
    assert outcome.exit_code == 2
    assert outcome.stderr == "error: unknown report format 'pdf' (allowed: html, md, csv, json)\n"
    assert not (result_file.parent / "run.pdf").exists()


def test_cli_refuses_to_overwrite_the_result(cli, result_file: Path) -> None:
    runner, app = cli
    before = result_file.read_text()
    outcome = runner.invoke(app, ["report", str(result_file), "-f", "json"])
    assert outcome.exit_code == 2 and outcome.stderr.startswith("error: ")
    assert result_file.read_text() == before


def test_number_formatting_is_finite_safe() -> None:
    assert format_number(math.inf * -1) == "-∞"


def test_empty_document_renders_in_every_format() -> None:
    empty = ResultDocument(run_id="empty", started_at="2025-01-01T00:00:00+00:00")
    for fmt in FORMATS:
        assert render(empty, fmt)
    markdown = render(empty, "md")
    assert "No measured samples." in markdown and "No trial failed." in markdown
    assert "<script>" in render(empty, "html")  # the page script; no plotly without charts
    assert render(empty, "csv") == ",".join(COLUMNS) + "\n"


def test_verdict_numbers_keep_intervals_with_their_values() -> None:
    doc = build_document(seed=1, statistics="builtin")
    doc.verdicts = [
        Verdict(
            claim="C05",
            title="scale",
            verdict="confirmed",
            text="t",
            numbers={
                "docker_slope": 0.1542,
                "docker_ci_low": 0.146,
                "docker_ci_high": 0.181,
                "ratio": 41.29,
                "ci_low": 37.99,
                "ci_high": 43.73,
                "unit": "s",
                "resources": {"cpu": {"overhead": 0.7158, "overhead_ci_low": 0.69,
                                      "overhead_ci_high": 0.74}},
            },
        )
    ]  # fmt: skip
    row = _md_tables(render(doc, "md"))["Verdicts"][0]
    assert row["numbers"] == (
        "docker\\_slope = 0.154 [0.146, 0.181]; ratio = 41.3 [38.0, 43.7]; unit = s "
        "(+1 more in the HTML and JSON reports)"
    )
    assert 'resources.cpu.overhead</span> <span class="v">0.716 [0.690, 0.740]' in render(
        doc, "html"
    )


def test_three_repetitions_print_no_95_percent_and_no_confirmed() -> None:
    # KVM, so nothing is withheld for emulation: only the repetitions limit the verdicts.
    doc = build_document(seed=3, repetitions=3, accel="kvm", statistics="vmvc")
    for fmt in ("md", "html"):
        text = render(doc, fmt)
        # The inlined chart library is code, not report text; the chart specs stay checked.
        text = re.sub(r"<script>.*?</script>", "", text, flags=re.S)
        assert not re.search(r"95\s?%", text), fmt
        assert "range" in text and "n = 3" in text
    verdicts = _md_tables(render(doc, "md"))["Verdicts"]
    assert not any(v["verdict"].startswith(("**confirmed", "**refuted")) for v in verdicts)
    assert 'class="badge verdict-confirmed"' not in render(doc, "html")


def test_tcg_verdicts_are_marked_not_measured_under_kvm() -> None:
    doc = build_document(seed=3, repetitions=7, accel="tcg", statistics="vmvc")
    rows = {r["claim"].split()[0]: r for r in _md_tables(render(doc, "md"))["Verdicts"]}
    for claim in ("C01", "C03", "C04", "C05", "C08"):
        assert rows[claim]["verdict"].startswith("**not measured under KVM** (VM ran under TCG)")
    html = render(doc, "html")
    assert 'class="badge verdict-not-measured-under-KVM"' in html


def test_report_flags_io_anomaly_and_says_io_was_not_past_the_caches(build_doc) -> None:
    import numpy as np

    rng = np.random.default_rng(4)
    data = {
        backend: {
            "cpu/events_per_s": list(2300 * factor * rng.uniform(0.98, 1.02, 7)),
            "io/seqread_1m_mib_s": list(1000 * seq * rng.uniform(0.98, 1.02, 7)),
            "io/randread_4k_iops": list(30000 * factor * rng.uniform(0.98, 1.02, 7)),
        }
        for backend, factor, seq in (
            ("native", 1.0, 1.0),
            ("docker", 1.0, 1.22),  # faster than native: only a cache does that
            ("libvirt", 0.3, 0.5),
        )
    }
    quick = {"file_size_mib": 64, "runtime_s": 3.0, "ramp_s": 1, "past_caches": False}
    meta = {
        f"{b}:io/{m}": quick
        for b in ("native", "docker", "libvirt")
        for m in ("seqread_1m_mib_s", "randread_4k_iops")
    }
    doc = build_doc(data, accel="kvm", metadata=meta)
    reanalyse(doc)
    markdown = render(doc, "md")
    io_rows = {r["metric"]: r for r in _md_tables(markdown)[md_text(workload_title("io"))]}
    assert io_rows[md_text("seqread_1m_mib_s")]["container/native"].endswith("ANOMALY")
    assert not io_rows[md_text("seqread_1m_mib_s")]["VM/native"].endswith("ANOMALY")
    assert "ANOMALY in seqread" in markdown
    assert "not counted in C03" in markdown
    assert "Not past the caches: a 64 MiB file, 3 s per job after 1 s ramp-up" in markdown


def test_report_shows_the_scale_curve_a_slope_only_where_a_line_fits(build_doc) -> None:
    rng = np.random.default_rng(6)
    curves = {"docker": {1: 0.28, 2: 0.40, 5: 0.85}, "libvirt": {1: 6.5, 2: 6.6, 5: 16.3}}
    data = {
        b: {f"scale/all_ready_s@N={n}": list(v * rng.uniform(0.98, 1.02, 7)) for n, v in c.items()}
        for b, c in curves.items()
    }
    meta = {
        f"{b}:scale/all_ready_s@N={n}": {
            "host_cpus": 2,
            "refused_counts": [9],
            "refused": f"scale N=9 on {b} refused: needs about 4608 MiB",
        }
        for b, c in curves.items()
        for n in c
    }
    doc = build_doc(data, accel="kvm", metadata=meta)
    reanalyse(doc)
    markdown = render(doc, "md")
    rows = {r["metric"]: r for r in _md_tables(markdown)[md_text(workload_title("scale"))]}
    slope = rows[md_text("all_ready_s: slope")]
    assert slope["container"].startswith(format_number(doc.statistics.curves[0].slope))
    assert "per instance (r² = " in slope["container"]
    assert slope["VM"].startswith("no slope: the curve bends at the 2 host CPUs (r² = ")
    assert rows[md_text("all_ready_s: refused")]["VM"] == "N=9"
    assert "N=9 on libvirt refused" in markdown
    html = render(doc, "html")
    assert "no slope: the curve bends at the 2 host CPUs" in html
    charts = re.findall(r'"dash": ?"dash"', html)
    assert len(charts) == 1  # the container's fitted line; none through the VM's knee
