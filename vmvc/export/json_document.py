"""JSON: the result document itself, exactly as `vmvc.results.save` writes it."""

from __future__ import annotations

from vmvc.results import ResultDocument


def render_json(doc: ResultDocument) -> str:
    return doc.model_dump_json(indent=1) + "\n"
