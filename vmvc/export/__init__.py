"""Report exporters, one per format behind one interface (as hyperfine's `export/`).

Each exporter turns a result document into text; `vmvc.report` picks one by name and
writes the file. Exporters import lazily so `vmvc report -f csv` never loads plotly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

from vmvc.results import ResultDocument


@dataclass(frozen=True)
class Exporter:
    name: str
    extension: str
    description: str
    target: str  # "module:function" rendering a ResultDocument to str

    def render(self, doc: ResultDocument) -> str:
        module, function = self.target.split(":")
        render: Callable[[ResultDocument], str] = getattr(import_module(module), function)
        return render(doc)


EXPORTERS: dict[str, Exporter] = {
    e.name: e
    for e in (
        Exporter(
            "html", "html", "self-contained page with charts", "vmvc.export.html_page:render_html"
        ),
        Exporter("md", "md", "GitHub-flavoured Markdown", "vmvc.export.markdown:render_markdown"),
        Exporter("csv", "csv", "one row per raw sample", "vmvc.export.csv_samples:render_csv"),
        Exporter("json", "json", "the result document", "vmvc.export.json_document:render_json"),
    )
}


class UnknownFormatError(ValueError):
    """A report format nobody exports; the message is one line."""


def exporter(fmt: str) -> Exporter:
    try:
        return EXPORTERS[fmt]
    except KeyError:
        allowed = ", ".join(EXPORTERS)
        raise UnknownFormatError(f"unknown report format '{fmt}' (allowed: {allowed})") from None
