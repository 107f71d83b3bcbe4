"""The analysis commands: ``vmvc compare`` and ``vmvc history``.

Exit codes: 0 done; 1 ``--fail-on-regression`` and something regressed; 2 bad input
(unreadable or invalid result files, results from different hosts or accelerations).
Errors are one line on stderr (``error: ...``), never a traceback: they are meant for
people and for CI logs alike.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from vmvc import compare as cmp
from vmvc import history as hist
from vmvc.config import Thresholds
from vmvc.results import ResultDocument, ResultFileError, load

EXIT_REGRESSION = 1
EXIT_BAD_INPUT = 2
# Wide enough that a table piped into a file or CI log is not wrapped or truncated.
PLAIN_WIDTH = 200


class OutputFormat(StrEnum):
    table = "table"
    md = "md"
    json = "json"


def _console(stderr: bool = False) -> Console:
    """Rich on a terminal; no colours and no wrapping when piped (rich detects the TTY)."""
    console = Console(stderr=stderr)
    if not console.is_terminal:
        console = Console(stderr=stderr, width=PLAIN_WIDTH, no_color=True, highlight=False)
    return console


def _fail(message: str) -> NoReturn:
    # typer.echo, not rich: a message holding [brackets] must not be taken for markup.
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def _warn(message: str) -> None:
    typer.echo(f"WARNING: {message}", err=True)


def _load(path: Path) -> ResultDocument:
    try:
        return load(path)
    except ResultFileError as exc:
        _fail(str(exc))


def _noise_threshold(doc: ResultDocument, given: float | None) -> float:
    """The flag, else the threshold the new run was configured with, else the default."""
    if given is not None:
        return given
    configured = doc.config.get("thresholds", {}).get("noise_threshold")
    return float(configured) if configured is not None else Thresholds().noise_threshold


def compare_command(
    base: Annotated[Path, typer.Argument(help="Result file to compare against (A).")],
    new: Annotated[Path, typer.Argument(help="Result file to judge (B).")],
    output: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="table, md or json.")
    ] = OutputFormat.table,
    fail_on_regression: Annotated[
        bool, typer.Option("--fail-on-regression", help="Exit 1 if any metric regressed.")
    ] = False,
    noise_threshold: Annotated[
        float | None,
        typer.Option(
            "--noise-threshold",
            min=0.0,
            help="Smallest relative change that counts (0.05 = 5 %); default from the config.",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Compare results whose CPU model, core count, kernel or acceleration differ.",
        ),
    ] = False,
) -> None:
    """Compare two result files: regressions, improvements and noise, per metric.

    A change counts if it beats the noise threshold and its p-value, after Holm's
    correction over every metric compared, is below 0.05.
    """
    base_doc, new_doc = _load(base), _load(new)
    try:
        result = cmp.compare(
            base_doc,
            new_doc,
            noise_threshold=_noise_threshold(new_doc, noise_threshold),
            force=force,
        )
    except cmp.IncomparableResultsError as exc:
        _fail(str(exc))
    for warning in result["warnings"]:
        _warn(warning + (" (--force)" if result["forced"] else ""))
    _print(result, output, cmp.render_table, cmp.to_markdown, cmp.to_json)
    if output is OutputFormat.table:
        _console().print(cmp.summary_line(result), markup=False)
        if result["differences"]:
            # Said on stdout too, so a CI log or a saved table shows what was overridden.
            differed = "; ".join(result["differences"])
            _console().print(f"Compared despite (--force): {differed}", markup=False)
    if fail_on_regression and result["regressions"]:
        raise typer.Exit(EXIT_REGRESSION)


def history_command(
    directory: Annotated[Path, typer.Argument(help="Directory of result files (searched).")],
    output: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="table, md or json.")
    ] = OutputFormat.table,
    metric: Annotated[
        str | None,
        typer.Option("--metric", "-m", help="Only WORKLOAD/METRIC (or a whole WORKLOAD)."),
    ] = None,
) -> None:
    """Show how every metric's median moved across saved runs, oldest first."""
    if not directory.exists():
        _fail(f"{directory}: no such file or directory")
    result = hist.history(directory, metric=metric)
    for skipped in result["skipped"]:
        _warn(f"skipped {skipped['error']}")
    if not result["runs"]:
        _fail(f"{directory}: no readable vmvc result files")
    if not result["series"]:
        _fail(f"no metric matches '{metric}' in {len(result['runs'])} run(s)")
    for warning in result["warnings"]:
        _warn(warning)
    _print(result, output, hist.render_table, hist.to_markdown, hist.to_json)


def _print(result: dict[str, Any], output: OutputFormat, table: Any, md: Any, js: Any) -> None:
    if output is OutputFormat.table:
        _console().print(table(result))
    elif output is OutputFormat.md:
        typer.echo(md(result), nl=False)
    else:
        typer.echo(js(result))


def register(app: typer.Typer) -> None:
    """Add ``compare`` and ``history`` to the main vmvc app."""
    app.command("compare")(compare_command)
    app.command("history")(history_command)
