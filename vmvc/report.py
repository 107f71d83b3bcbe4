"""Render a result document as HTML, Markdown, CSV or JSON, and write report files.

A report reads only the result document, so it can be rendered again later, elsewhere.
The exporters live in `vmvc/export/`, one per format.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

from vmvc.export import EXPORTERS, UnknownFormatError, exporter
from vmvc.results import RESULT_FILE_MODE, ResultDocument

FORMATS = tuple(EXPORTERS)
__all__ = ["FORMATS", "UnknownFormatError", "render", "write_atomic", "write_reports"]


def render(doc: ResultDocument, fmt: str) -> str:
    """The report as text; `fmt` is one of FORMATS (UnknownFormatError otherwise)."""
    return exporter(fmt).render(doc)


def write_reports(
    doc: ResultDocument, directory: Path, formats: Iterable[str] = ("html", "md")
) -> list[Path]:
    """Write `<run_id>.<ext>` for each format into `directory`; returns the paths written.

    Every format is checked before anything is written, and each file appears atomically.
    """
    chosen = [exporter(f) for f in formats]
    stem = _safe_stem(doc.run_id)
    written = []
    for e in chosen:
        path = Path(directory) / f"{stem}.{e.extension}"
        write_atomic(path, e.render(doc))
        written.append(path)
    return written


def write_atomic(path: Path, text: str) -> None:
    """Readers (a browser, a CI upload) never see half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, RESULT_FILE_MODE)  # reports name hosts too: owner only, like results
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _safe_stem(run_id: str) -> str:
    """A run id as a file name: no directories, no hidden files."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", run_id).lstrip(".")
    return stem or "run"
