"""The result document: what a run measured, under which conditions, and what went wrong.

The result file is the only input a report needs, so it carries the full config, the
environment and every raw per-repetition value. It is written atomically after every trial,
so an interrupted run leaves a valid, loadable file.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SCHEMA_VERSION = 1

RunStatus = Literal["running", "complete", "interrupted", "failed"]


class Sample(BaseModel):
    """One measured value (PerfKitBenchmarker-like: metric, value, unit, metadata)."""

    model_config = ConfigDict(extra="forbid")

    backend: str
    workload: str
    metric: str
    value: float
    unit: str
    repetition: int
    higher_is_better: bool = False
    warmup: bool = False
    host: str = "local"
    timestamp: float = Field(default_factory=time.time)
    metadata: dict[str, Any] = Field(default_factory=dict)


class TrialError(BaseModel):
    """A trial that failed: recorded, never silently dropped."""

    model_config = ConfigDict(extra="forbid")

    backend: str
    workload: str
    repetition: int
    message: str
    host: str = "local"
    console_tail: list[str] = Field(default_factory=list)
    timestamp: float = Field(default_factory=time.time)


class SkippedBackend(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: str
    reason: str
    host: str = "local"


class InstanceReport(BaseModel):
    """What one instance said about itself from inside (the image id proves same rootfs)."""

    model_config = ConfigDict(extra="forbid")

    backend: str
    repetition: int
    image_id: str
    kernel: str = ""
    host: str = "local"


class TrialRecord(BaseModel):
    """One trial (an instance's life, or one lifecycle workload) and how it ended."""

    model_config = ConfigDict(extra="forbid")

    backend: str
    kind: str
    repetition: int
    warmup: bool = False
    status: Literal["ok", "failed"] = "ok"
    host: str = "local"
    seconds: float = 0.0

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.host, self.backend, self.kind, self.repetition)


class ResultDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    run_id: str
    started_at: str
    finished_at: str | None = None
    status: RunStatus = "running"
    pid: int | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    environment: dict[str, Any] = Field(default_factory=dict)
    image: dict[str, Any] = Field(default_factory=dict)
    instances: list[InstanceReport] = Field(default_factory=list)
    samples: list[Sample] = Field(default_factory=list)
    facts: dict[str, dict[str, Any]] = Field(default_factory=dict)
    trials: list[TrialRecord] = Field(default_factory=list)
    errors: list[TrialError] = Field(default_factory=list)
    skipped: list[SkippedBackend] = Field(default_factory=list)
    statistics: dict[str, Any] = Field(default_factory=dict)
    verdicts: list[dict[str, Any]] = Field(default_factory=list)
    # How the run went: run.stop_reason.<host> says why it stopped after that many repetitions.
    run: dict[str, Any] = Field(default_factory=dict)

    @property
    def accel(self) -> str | None:
        return self.environment.get("accel")

    def backends(self) -> list[str]:
        """Backends that produced samples, in the canonical order native, docker, libvirt."""
        seen = {s.backend for s in self.samples}
        order = ["native", "docker", "libvirt"]
        return [b for b in order if b in seen] + sorted(seen - set(order))

    def measured(self) -> list[Sample]:
        """Samples that count (warmups are recorded but excluded from statistics)."""
        return [s for s in self.samples if not s.warmup]


class ResultFileError(Exception):
    """A result file that cannot be used; the message is one line, fit for the user."""


def new_run_id() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def save(doc: ResultDocument, path: Path) -> None:
    """Write atomically: a reader (or a crash) never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = doc.model_dump_json(indent=1)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path) -> ResultDocument:
    """Load and validate a result file, turning every failure into one clear line."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ResultFileError(f"{path}: no such result file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ResultFileError(
            f"{path}: cannot read result file ({exc.__class__.__name__})"
        ) from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultFileError(
            f"{path}: not a vmvc result (invalid JSON at line {exc.lineno}: {exc.msg}); "
            "was the file truncated?"
        ) from None
    if not isinstance(raw, dict) or "schema_version" not in raw:
        raise ResultFileError(f"{path}: not a vmvc result (no schema_version)")
    if raw["schema_version"] != SCHEMA_VERSION:
        raise ResultFileError(
            f"{path}: result schema_version {raw['schema_version']!r} is not supported "
            f"(this vmvc reads version {SCHEMA_VERSION})"
        )
    try:
        return ResultDocument.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ResultFileError(f"{path}: invalid result file at '{where}': {first['msg']}") from None
