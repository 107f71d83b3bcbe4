"""CSV: one row per raw sample, full precision, loadable by pandas or a spreadsheet."""

from __future__ import annotations

import csv
import io
import json

from vmvc.formatting import format_exact
from vmvc.results import ResultDocument

COLUMNS = (
    "run_id",
    "host",
    "backend",
    "workload",
    "metric",
    "value",
    "unit",
    "repetition",
    "warmup",
    "higher_is_better",
    "timestamp",
    "metadata",
)


def render_csv(doc: ResultDocument) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for s in doc.samples:
        writer.writerow(
            [
                doc.run_id,
                s.host,
                s.backend,
                s.workload,
                s.metric,
                format_exact(s.value),
                s.unit,
                s.repetition,
                s.warmup,
                s.higher_is_better,
                format_exact(s.timestamp),
                json.dumps(s.metadata, sort_keys=True, default=str),
            ]
        )
    return buffer.getvalue()
