"""`vmvc report RESULT.json`: render a saved result as HTML, Markdown, CSV or JSON."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from vmvc.report import FORMATS, UnknownFormatError, render, write_atomic
from vmvc.results import ResultFileError, load
from vmvc.safe_text import one_line

HELP = (
    "Render a saved result again, from the result file alone.\n\n"
    "html is one self-contained page that works offline; md is GitHub-flavoured Markdown "
    "fit for a CI job summary; csv has one row per raw sample; json is the document itself."
)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {one_line(message)}", err=True)
    return typer.Exit(code=2)


def report(
    result: Path = typer.Argument(
        ..., help="A result file written by `vmvc bench`.", show_default=False
    ),
    fmt: str = typer.Option(
        "html", "--format", "-f", metavar="|".join(FORMATS), help="Report format."
    ),
    output: str | None = typer.Option(
        None,
        "--output",
        "-o",
        metavar="PATH",
        help="Where to write; '-' for stdout. Default: next to the result, <stem>.<format>.",
    ),
) -> None:
    if fmt not in FORMATS:
        raise _fail(f"unknown report format '{fmt}' (allowed: {', '.join(FORMATS)})")
    try:
        doc = load(result)
    except ResultFileError as exc:
        raise _fail(str(exc)) from None
    from vmvc.orchestrate import reanalyse  # heavy (scipy); only once the file is valid

    reanalyse(doc)
    try:
        text = render(doc, fmt)
    except UnknownFormatError as exc:  # pragma: no cover - checked above
        raise _fail(str(exc)) from None
    if output == "-":
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:  # `vmvc report -o - | head`: the reader left, not an error
            # Python's documented recipe: point stdout at devnull so the flush at exit is quiet.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    path = Path(output) if output else result.with_name(f"{result.stem}.{fmt}")
    if path.resolve() == result.resolve():
        raise _fail(f"{path}: refusing to overwrite the result file itself (use -o)")
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise _fail(
            f"{path}: cannot write report ({exc.strerror or exc.__class__.__name__})"
        ) from None
    typer.echo(str(path))


def register(app: typer.Typer) -> None:
    """Add the `report` command to the vmvc command line."""
    app.command("report", help=HELP)(report)
