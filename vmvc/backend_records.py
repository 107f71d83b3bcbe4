"""Backend descriptions for results written before runs recorded them (`backend_info`).

A new run records each backend's own `info()` (orchestrate.new_document). An older result
(results/example, tests/data) names its backends only; the analysis step fills in what the
installed backends say about themselves, once, from their classes (no backend is created,
no engine is contacted). A name no installed backend has is itself, of kind "sandbox": it is
measured and reported but judged by no claim.
"""

from __future__ import annotations

from vmvc.backends.base import SYSCALLS_ANSWERED_BY, Backend, available_backend_classes
from vmvc.results import BackendRecord, ResultDocument, unknown_backend


def describe(name: str, backend: type[Backend] | None) -> BackendRecord:
    """What a backend class says about itself, without creating it."""
    if backend is None:
        return unknown_backend(name)
    label = backend.label if isinstance(backend.label, str) and backend.label else name
    # display_name may be a property that needs a prepared instance (the VM's acceleration).
    display = backend.display_name
    if not isinstance(display, str) or not display:
        display = label if label == name else f"{label} ({name})"
    try:
        answered_by = backend.syscalls_answered_by or SYSCALLS_ANSWERED_BY.get(backend.kind, "")
        return BackendRecord(
            label=label,
            kind=backend.kind,
            display_name=display,
            syscalls_answered_by=answered_by if isinstance(answered_by, str) else "",
            flavour=backend.flavour if isinstance(backend.flavour, str) else "",
        )
    except ValueError:  # a third-party class with an odd description: name it as it is
        return unknown_backend(name)


def named_backends(doc: ResultDocument) -> set[str]:
    """Every backend the document mentions anywhere."""
    names = {s.backend for s in doc.samples} | {e.backend for e in doc.errors}
    names |= {i.backend for i in doc.instances} | {t.backend for t in doc.trials}
    return names | set(doc.facts)


def fill_backend_info(doc: ResultDocument) -> None:
    """Describe every backend the document names but did not record (older results)."""
    missing = named_backends(doc) - set(doc.backend_info)
    if not missing:
        return
    try:
        classes = available_backend_classes()
    except Exception:  # a broken plugin must not stop a report: its backends stay unknown
        classes = {}
    ordered = sorted(missing, key=lambda name: (name not in classes, name))
    for name in ordered:
        doc.backend_info[name] = describe(name, classes.get(name))
