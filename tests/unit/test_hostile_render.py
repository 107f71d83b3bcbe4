"""Strings and numbers from result files cannot forge or inject anything where they are shown.

Every document here went through `results.load` (so it is as hostile as a file may be and
still be valid): stored statistics and verdicts are never rendered, free text (error
messages, host names, units, facts) is inert in rich tables, in Markdown meant for a CI job
summary, and in the HTML report.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from vmvc import cli
from vmvc import compare as cmp
from vmvc import history as hist
from vmvc.cli_analysis import register as register_analysis
from vmvc.cli_report import register as register_report
from vmvc.report import render
from vmvc.results import load, save
from vmvc.safe_text import md_cell

EVIL = (
    "x | y `z` <script>alert(1)</script> [link](http://evil.example) "
    "![img](http://evil.example/i.png) [bold]b[/bold] [/] \n# Heading & *stuff*"
)
EVIL_UNIT = "<b>|[/]`x`</b>"  # a unit may be up to 32 printable characters
REPO = Path(__file__).resolve().parents[2]
EXAMPLE = next((REPO / "results" / "example").glob("*.json"))


def _app() -> tuple[CliRunner, typer.Typer]:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """vmvc"""

    register_report(app)
    register_analysis(app)
    return CliRunner(), app


def _hostile(doc: dict[str, Any]) -> dict[str, Any]:
    """Free text everywhere a valid result file may carry it."""
    doc = copy.deepcopy(doc)
    doc["environment"]["hostname"] = EVIL
    doc["environment"]["kernel"] = EVIL
    for sample in doc["samples"]:
        if sample["workload"] == "cpu":
            sample["unit"] = EVIL_UNIT
    doc["errors"] = [
        {
            "backend": "docker",
            "workload": "cpu",
            "repetition": 0,
            "message": EVIL,
            "console_tail": [EVIL],
        }
    ]
    doc["skipped"] = [{"backend": "podman", "reason": EVIL}]
    for facts in doc["facts"].values():
        facts["kernel_release"] = EVIL
    return doc


def _saved(tmp_path: Path, name: str, doc: dict[str, Any]) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(doc))
    load(path)  # valid: the point is what a *valid* file can do
    return path


def _unescaped_pipes(line: str) -> int:
    """Pipes that end a Markdown table cell (not preceded by an odd run of backslashes)."""
    count = 0
    for match in re.finditer(r"(\\*)\|", line):
        if len(match.group(1)) % 2 == 0:
            count += 1
    return count


def _assert_inert_markdown(markdown: str, headings: tuple[str, ...]) -> None:
    assert "<script" not in markdown and "<b>" not in markdown
    assert not re.search(r"(?<!\\)\]\(", markdown), "a link or image was made"
    for line in markdown.splitlines():
        if line.startswith("#"):
            assert line.startswith(headings), f"injected heading: {line}"
    tables: list[list[str]] = []
    previous_was_row = False
    for line in markdown.splitlines():
        is_row = line.startswith("|")
        if is_row and not previous_was_row:
            tables.append([])
        if is_row:
            tables[-1].append(line)
        previous_was_row = is_row
    assert tables
    for rows in tables:
        widths = {_unescaped_pipes(row) for row in rows}
        assert len(widths) == 1, f"a cell broke out of its table: {rows}"


@pytest.fixture(scope="module")
def example() -> dict[str, Any]:
    return json.loads(EXAMPLE.read_text())


# -- stored statistics and verdicts are never rendered ----------------------------------------


def test_report_recomputes_what_the_file_claims(tmp_path: Path, example: dict[str, Any]) -> None:
    forged = copy.deepcopy(example)
    forged["statistics"] = {"summaries": ["oops"], "ratios": "x"}
    forged["verdicts"] = [
        {"claim": "C01", "verdict": "confirmed", "text": "FORGED-VERDICT", "numbers": {}}
    ]
    clean = copy.deepcopy(example)
    clean["statistics"], clean["verdicts"] = {}, []
    runner, app = _app()
    outputs = {}
    for name, doc in (("forged", forged), ("clean", clean)):
        path = _saved(tmp_path, name, doc)
        done = runner.invoke(app, ["report", str(path), "-f", "md", "-o", "-"])
        assert done.exit_code == 0, done.output
        outputs[name] = done.stdout
    assert "FORGED-VERDICT" not in outputs["forged"]
    assert outputs["forged"] == outputs["clean"]


def test_forged_medians_are_not_shown(tmp_path: Path, example: dict[str, Any]) -> None:
    forged = copy.deepcopy(example)
    for summary in forged["statistics"]["summaries"]:
        summary["median"] = 123456789.0
    runner, app = _app()
    done = runner.invoke(
        app, ["report", str(_saved(tmp_path, "f", forged)), "-f", "json", "-o", "-"]
    )
    assert done.exit_code == 0, done.output
    medians = [s["median"] for s in json.loads(done.stdout)["statistics"]["summaries"]]
    assert medians and 123456789.0 not in medians


# -- escaping ----------------------------------------------------------------------------------


def test_markdown_report_of_a_hostile_file_is_inert(
    tmp_path: Path, example: dict[str, Any]
) -> None:
    doc = load(_saved(tmp_path, "h", _hostile(example)))
    markdown = render(doc, "md")
    _assert_inert_markdown(markdown, ("# vmvc results", "## ", "### "))
    assert "&lt;script&gt;" in markdown  # shown, as text


def test_html_report_of_a_hostile_file_is_autoescaped(
    tmp_path: Path, example: dict[str, Any]
) -> None:
    doc = load(_saved(tmp_path, "h", _hostile(example)))
    page = render(doc, "html")
    assert "<script>alert(1)" not in page and "<b>|" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def _pair(tmp_path: Path, build_doc) -> tuple[Path, Path]:
    """Two small results (different hosts: --force) with hostile free text."""
    paths = []
    for index, scale in enumerate((1.0, 1.5)):
        doc = build_doc(
            {"native": {"cpu/events_per_s": [100 * scale, 101 * scale, 99 * scale]}},
            run_id=f"2025010{index + 1}T000000Z-abcde{index}",
            started_at=f"2025-01-0{index + 1}T00:00:00+00:00",
        )
        data = json.loads(doc.model_dump_json())
        data["environment"]["hostname"] = f"{EVIL}{index}"
        for sample in data["samples"]:
            sample["unit"] = EVIL_UNIT
        paths.append(_saved(tmp_path, f"run{index}", data))
    return paths[0], paths[1]


def test_compare_markdown_of_hostile_files_is_inert(tmp_path: Path, build_doc) -> None:
    base, new = _pair(tmp_path, build_doc)
    runner, app = _app()
    done = runner.invoke(app, ["compare", str(base), str(new), "--force", "-f", "md"])
    assert done.exit_code == 0, done.output
    _assert_inert_markdown(done.stdout, ("## Comparison: ",))
    assert "&lt;b&gt;\\|\\[/\\]" in done.stdout


def test_compare_table_prints_markup_as_text(tmp_path: Path, build_doc) -> None:
    base, new = _pair(tmp_path, build_doc)
    result = cmp.compare(load(base), load(new), force=True)
    console = Console(width=300, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(cmp.render_table(result))
    assert EVIL_UNIT in console.export_text()


def test_history_table_and_markdown_are_inert(tmp_path: Path, build_doc) -> None:
    _pair(tmp_path, build_doc)
    result = hist.history(tmp_path)
    assert len(result["runs"]) == 2
    console = Console(width=300, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(hist.render_table(result))  # '[/]' in a cell raised MarkupError before
    assert EVIL_UNIT in console.export_text()
    _assert_inert_markdown(hist.to_markdown(result), ("## History",))


def test_history_skips_a_hostile_file_by_name_in_one_inert_line(
    tmp_path: Path, build_doc, example: dict[str, Any]
) -> None:
    _pair(tmp_path, build_doc)
    bad = copy.deepcopy(example)
    bad["run_id"] = "../../[bold]x[/]"
    (tmp_path / "x|`[b]`\n#.json").write_text(json.dumps(bad))
    result = hist.history(tmp_path)
    [skipped] = result["skipped"]
    assert "run id" in skipped["error"] and "\n" not in skipped["error"]
    _assert_inert_markdown(hist.to_markdown(result), ("## History",))


def test_error_line_prints_markup_literally(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit):
        cli.fail("run [/] [bold]x[/bold]\nsecond line")
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "run [/] [bold]x[/bold]\\nsecond line" in err


def test_md_cell_examples() -> None:
    assert md_cell("a|b") == "a\\|b"
    assert md_cell("`x`") == "\\`x\\`"
    assert md_cell("<i>&") == "&lt;i&gt;&amp;"
    assert md_cell("# h\nx") == "\\# h\\\\nx"
    assert md_cell("events_per_s") == "events_per_s"


def test_saved_report_files_are_owner_only(tmp_path: Path, example: dict[str, Any]) -> None:
    path = _saved(tmp_path, "r", example)
    runner, app = _app()
    done = runner.invoke(app, ["report", str(path), "-f", "md"])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "r.md").stat().st_mode & 0o077 == 0


def test_save_then_load_keeps_samples(tmp_path: Path, realistic_doc) -> None:
    path = tmp_path / "r.json"
    save(realistic_doc, path)
    assert load(path).samples == realistic_doc.samples
