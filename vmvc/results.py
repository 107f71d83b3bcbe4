"""The result document: what a run measured, under which conditions, and what went wrong.

The result file is the only input a report needs, so it carries the full config, the
environment and every raw per-repetition value. It is written atomically after every trial,
so an interrupted run leaves a valid, loadable file, readable by its owner only (0600: it
names hosts, users and key paths).

A result file is also untrusted input: `vmvc bench --resume` (as root) turns its run id into
paths and its config into engine connections, and reports render its strings. `load()`
therefore reads only a regular file of bounded size and validates it strictly (the
"untrusted" validation context): run ids, names and host names by pattern, numbers finite
and bounded, the stored config re-validated as a Config. Documents vmvc builds in memory
skip those checks; they never came from disk.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import secrets
import stat
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from vmvc.analysed import Statistics, Verdict
from vmvc.paths import atomic_write_text
from vmvc.safe_text import one_line

SCHEMA_VERSION = 1
# What new_run_id() makes, and nothing else: a run id becomes part of file and directory
# names (work dir, lock, result), so it must never hold '/', '..' or markup.
RUN_ID_PATTERN = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}")
RUN_ID_FORM = "YYYYmmddTHHMMSSZ-xxxxxx (UTC time, 6 lowercase hex digits)"
# Far above any real result (the 51-trial quick run is ~0.5 MiB), far below harm.
MAX_RESULT_BYTES = 256 * 2**20
RESULT_FILE_MODE = 0o600
# Samples: engine and workload names, host names, units.
NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
METRIC = re.compile(r"[a-z0-9][a-z0-9_]{0,63}")
HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
UNIT = re.compile(r"[^\x00-\x1f\x7f]{0,32}")
# No measured quantity comes near this (a petabyte, 31 million years in seconds); a value
# beyond it is corruption or an attack on the statistics (overflow to inf).
MAX_ABS_VALUE = 1e15
MAX_NESTING = 6
UNTRUSTED = {"untrusted": True}
ACCELS = (None, "kvm", "tcg")

RunStatus = Literal["running", "complete", "interrupted", "failed"]


def is_run_id(value: object) -> bool:
    return isinstance(value, str) and RUN_ID_PATTERN.fullmatch(value) is not None


def check_run_id(value: str) -> str:
    """The run id itself, or ValueError naming the only accepted form (for every place a
    run id comes from outside: --resume, file contents, lock names, labels)."""
    if not is_run_id(value):
        raise ValueError(f"run id {value!r} is not of the form {RUN_ID_FORM}")
    return value


def _untrusted(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("untrusted"))


def _pattern(value: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.fullmatch(value):
        raise ValueError(f"{what} {value!r} is not allowed here")
    return value


def _finite(value: float, what: str = "value") -> float:
    if not math.isfinite(value) or abs(value) > MAX_ABS_VALUE:
        raise ValueError(f"{what} {value!r} is not a finite number within ±{MAX_ABS_VALUE:g}")
    return value


def _plain_json(value: Any, depth: int = 0) -> None:
    """Metadata, facts: JSON scalars, lists and objects, shallow, with finite numbers."""
    if depth > MAX_NESTING:
        raise ValueError(f"nested deeper than {MAX_NESTING} levels")
    if isinstance(value, float):
        _finite(value)
    elif isinstance(value, list):
        for item in value:
            _plain_json(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or len(key) > 64 or not key.isprintable():
                raise ValueError("keys must be printable strings of at most 64 characters")
            _plain_json(item, depth + 1)
    elif not (value is None or isinstance(value, bool | int | str)):
        raise ValueError(f"{type(value).__name__} is not a JSON value")


class _Tagged(BaseModel):
    """backend / host on every record: patterns when read from disk."""

    @field_validator("backend", "host", check_fields=False)
    @classmethod
    def _names(cls, value: str, info: ValidationInfo) -> str:
        if not _untrusted(info):
            return value
        if info.field_name == "host":
            return _pattern(value, HOST, "host")
        return _pattern(value, NAME, "backend")


class Sample(_Tagged):
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

    @model_validator(mode="after")
    def _from_disk(self, info: ValidationInfo) -> Sample:
        if not _untrusted(info):
            return self
        _pattern(self.workload, NAME, "workload")
        _pattern(self.metric, METRIC, "metric")
        _pattern(self.unit, UNIT, "unit")
        _finite(self.value)
        _finite(self.timestamp, "timestamp")
        if not -1000 <= self.repetition <= 1_000_000:
            raise ValueError(f"repetition {self.repetition} is out of range")
        _plain_json(self.metadata)
        # Reports group scale samples by metadata.n: it must be a count.
        n = self.metadata.get("n")
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError("metadata.n must be a positive integer")
        return self


class TrialError(_Tagged):
    """A trial that failed: recorded, never silently dropped."""

    model_config = ConfigDict(extra="forbid")

    backend: str
    workload: str
    repetition: int
    message: str
    host: str = "local"
    console_tail: list[str] = Field(default_factory=list)
    timestamp: float = Field(default_factory=time.time)


class SkippedBackend(_Tagged):
    model_config = ConfigDict(extra="forbid")

    backend: str
    reason: str
    host: str = "local"


class InstanceReport(_Tagged):
    """What one instance said about itself from inside (the image id proves same rootfs)."""

    model_config = ConfigDict(extra="forbid")

    backend: str
    repetition: int
    image_id: str
    kernel: str = ""
    host: str = "local"
    # The CPU and memory limits the engine applied to this instance, read back from where
    # the engine keeps them (cgroup files, docker inspect, the domain XML): equal footing.
    limits: dict[str, str | int | float] = Field(default_factory=dict)

    @field_validator("limits")
    @classmethod
    def _plain_limits(cls, value: dict[str, Any]) -> dict[str, Any]:
        _plain_json(value)
        if len(value) > 32 or any(len(str(v)) > 200 for v in value.values()):
            raise ValueError("limits: at most 32 short values")
        return value


class TrialRecord(_Tagged):
    """One trial (an instance's life, or one lifecycle workload) and how it ended."""

    model_config = ConfigDict(extra="forbid")

    backend: str
    kind: str
    repetition: int
    warmup: bool = False
    status: Literal["ok", "failed"] = "ok"
    host: str = "local"
    seconds: float = 0.0

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str, info: ValidationInfo) -> str:
        return _pattern(value, NAME, "trial kind") if _untrusted(info) else value

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.host, self.backend, self.kind, self.repetition)


BackendKind = Literal["native", "container", "sandbox", "system", "vm"]
# How reports order backends: along the isolation spectrum, the baseline first (native ->
# containers -> sandboxes with a kernel of their own in user space -> system containers
# booting a full init -> VMs).
KIND_ORDER: tuple[str, ...] = get_args(BackendKind)
# Which kernel answers an instance's system calls, by kind (a backend may say otherwise).
SYSCALLS_ANSWERED_BY: dict[str, str] = {
    "native": "host kernel",
    "container": "host kernel",
    "system": "host kernel",
    "vm": "guest kernel",
    "sandbox": "",  # a sandbox says what it is (gVisor: its user-space kernel, the Sentry)
}


class BackendRecord(BaseModel):
    """A backend's own description of itself (Backend.info()), recorded at run start so
    reports never need the backend installed or its name hard-coded."""

    model_config = ConfigDict(extra="forbid")
    label: str = Field(max_length=64)
    kind: BackendKind
    display_name: str = Field(max_length=128)
    # Which kernel answers the instances' system calls (absent from older results).
    syscalls_answered_by: str = Field("", max_length=128)
    # A VM's flavour: "minimal" (the agent as PID 1) or "full" (a booted guest OS); "" else.
    flavour: str = Field("", max_length=32)

    @field_validator("label", "display_name", "syscalls_answered_by", "flavour")
    @classmethod
    def _printable(cls, value: str, info: ValidationInfo) -> str:
        # Reports escape it, but a name must never carry a newline or an escape code.
        if _untrusted(info) and not value.isprintable():
            raise ValueError(f"backend {info.field_name} {value!r} is not printable text")
        return value


def unknown_backend(name: str) -> BackendRecord:
    """What a backend nobody described is taken for: itself, judged by no claim."""
    return BackendRecord(label=name, kind="sandbox", display_name=name)


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
    # name -> how the backend describes itself (label, kind, display name).
    backend_info: dict[str, BackendRecord] = Field(default_factory=dict)
    # Derived data (vmvc.analysed), computed once by the analysis step. What a file stores
    # here is discarded on load and recomputed from the samples (orchestrate.reanalyse), so
    # a file cannot forge a verdict.
    statistics: Statistics = Field(default_factory=Statistics)
    verdicts: list[Verdict] = Field(default_factory=list)
    # How the run went: run.stop_reason.<host> says why it stopped after that many repetitions.
    run: dict[str, Any] = Field(default_factory=dict)

    @field_validator("run_id")
    @classmethod
    def _run_id(cls, value: str, info: ValidationInfo) -> str:
        return check_run_id(value) if _untrusted(info) else value

    @field_validator("statistics", "verdicts", mode="before")
    @classmethod
    def _derived(cls, value: Any, info: ValidationInfo) -> Any:
        """From disk: the right JSON type, then dropped (reanalyse recomputes both)."""
        if not _untrusted(info):
            return value
        if info.field_name == "statistics":
            if not isinstance(value, dict):
                raise ValueError("statistics must be an object")
            return Statistics()
        if not isinstance(value, list):
            raise ValueError("verdicts must be a list")
        return []

    @field_validator("started_at", "finished_at")
    @classmethod
    def _timestamp(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and _untrusted(info):
            try:
                datetime.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{value!r} is not an ISO 8601 time") from None
        return value

    @field_validator("pid")
    @classmethod
    def _pid(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and _untrusted(info) and not 1 <= value <= 2**22:
            raise ValueError(f"pid {value} is out of range")
        return value

    @field_validator("environment", "image", "facts")
    @classmethod
    def _json_data(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if _untrusted(info):
            _plain_json(value)
        return value

    @field_validator("environment")
    @classmethod
    def _environment(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if not _untrusted(info):
            return value
        if value.get("accel") not in ACCELS:
            raise ValueError("accel must be kvm, tcg or null")
        if not isinstance(value.get("hostname", ""), str):
            raise ValueError("hostname must be a string")
        hosts = value.get("benchmarked_hosts", [])
        if not isinstance(hosts, list) or not all(
            isinstance(h, str) and HOST.fullmatch(h) for h in hosts
        ):
            raise ValueError("benchmarked_hosts must be a list of host names")
        remote = value.get("hosts", {})
        if not isinstance(remote, dict) or not all(
            HOST.fullmatch(name) and isinstance(entry, dict) and entry.get("accel") in ACCELS
            for name, entry in remote.items()
        ):
            raise ValueError("hosts must map host names to descriptions with accel kvm/tcg/null")
        return value

    @property
    def accel(self) -> str | None:
        return self.environment.get("accel")

    def record(self, backend: str) -> BackendRecord:
        """How a backend described itself; an unknown one is its own name, kind sandbox."""
        return self.backend_info.get(backend) or unknown_backend(backend)

    def order_backends(self, names: set[str] | list[str]) -> list[str]:
        """By kind (native, container, sandbox, vm), then in the order they were selected."""
        selected = list(self.backend_info)

        def key(name: str) -> tuple[int, int, str]:
            position = selected.index(name) if name in selected else len(selected)
            return KIND_ORDER.index(self.record(name).kind), position, name

        return sorted(set(names), key=key)

    def backends(self) -> list[str]:
        """Backends that produced samples, in report order (order_backends)."""
        return self.order_backends({s.backend for s in self.samples})

    def ratio_pairs(self) -> list[tuple[str, str]]:
        """(numerator, denominator) pairs the statistics and reports show, from the kinds:
        every backend but the native baseline against it, then the VM against the container
        (the pair the claims compare). Without a native backend, no ratio to native."""
        native = self.first_of_kind("native")
        backends = self.order_backends(set(self.backend_info) | set(self.backends()))
        pairs = [(b, native) for b in backends if native and b != native]
        vm, container = self.first_of_kind("vm"), self.first_of_kind("container")
        if vm and container:
            pairs.append((vm, container))
        return pairs

    def first_of_kind(self, kind: str) -> str | None:
        """The backend the claims take for a kind: the first selected of that kind (among
        those described, else among those that produced samples)."""
        for name in [*self.backend_info, *self.backends()]:
            if self.record(name).kind == kind:
                return name
        return None

    def measured(self) -> list[Sample]:
        """Samples that count (warmups are recorded but excluded from statistics)."""
        return [s for s in self.samples if not s.warmup]


class ResultFileError(Exception):
    """A result file that cannot be used; the message is one line, fit for the user."""

    def __init__(self, message: str) -> None:
        # File names and keys come from outside: no newline or escape code gets through.
        super().__init__(one_line(message))


def new_run_id() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def save(doc: ResultDocument, path: Path) -> None:
    """Write atomically: a reader (or a crash) never sees a half-written file."""
    atomic_write_text(path, doc.model_dump_json(indent=1), RESULT_FILE_MODE)


def read_limited(path: Path, limit: int = MAX_RESULT_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, or ResultFileError.

    A symbolic link is refused (O_NOFOLLOW): a result is a file vmvc wrote, and a link
    planted in its place could make root read /etc/shadow into an error message. FIFOs
    and devices are refused without blocking (O_NONBLOCK, then fstat).
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ResultFileError(f"{path}: no such result file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ResultFileError(
                f"{path}: is a symbolic link; vmvc reads only the result file itself"
            ) from None
        reason = exc.strerror or exc.__class__.__name__
        raise ResultFileError(f"{path}: cannot read result file ({reason})") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ResultFileError(f"{path}: cannot read result file (it is a directory)")
        if not stat.S_ISREG(info.st_mode):
            raise ResultFileError(f"{path}: not a regular file (a FIFO, socket or device)")
        if info.st_size > limit:
            raise ResultFileError(
                f"{path}: {info.st_size} bytes is more than the {limit // 2**20} MiB a "
                "result file may have"
            )
        chunks, size = [], 0
        while size <= limit:  # st_size can lie (procfs says 0): bound the read itself
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise ResultFileError(
                f"{path}: more than the {limit // 2**20} MiB a result file may have"
            )
        return b"".join(chunks)
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise ResultFileError(f"{path}: cannot read result file ({reason})") from None
    finally:
        os.close(fd)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to inf
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse(path: Path, data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ResultFileError(f"{path}: cannot read result file (not UTF-8 text)") from None
    try:
        return json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ResultFileError(
            f"{path}: not a vmvc result (invalid JSON at line {exc.lineno}: {exc.msg}); "
            "was the file truncated?"
        ) from None
    except RecursionError:
        raise ResultFileError(f"{path}: not a vmvc result (JSON nested too deeply)") from None
    except ValueError as exc:  # NaN/Infinity, 1e999, integers of thousands of digits
        raise ResultFileError(f"{path}: not a vmvc result ({exc})") from None


def _error_at(path: Path, exc: ValidationError, prefix: str = "") -> ResultFileError:
    first = exc.errors()[0]
    where = ".".join([prefix] * bool(prefix) + [str(p) for p in first["loc"]])
    message = first["msg"].removeprefix("Value error, ")
    return ResultFileError(f"{path}: invalid result file at '{where}': {message}")


# Config keys older vmvc versions wrote and this one no longer has (sysbench memory's block
# and total size, replaced by STREAM/pointer-chase working sets). Dropping them keeps older
# results readable; every other unknown key is still refused.
RETIRED_CONFIG_KEYS: tuple[tuple[str, ...], ...] = (
    ("workload", "memory", "block_size_kib"),
    ("workload", "memory", "total_size_mib"),
)


def _without_retired_keys(config: dict[str, Any]) -> dict[str, Any]:
    cleaned = json.loads(json.dumps(config))  # a deep copy of plain JSON values
    for *parents, key in RETIRED_CONFIG_KEYS:
        section: Any = cleaned
        for name in parents:
            section = section.get(name) if isinstance(section, dict) else None
        if isinstance(section, dict):
            section.pop(key, None)
    return cleaned


def load(path: Path) -> ResultDocument:
    """Load and validate a result file, turning every failure into one clear line."""
    from vmvc.config import Config  # config imports nothing of ours; keep results light

    raw = _parse(path, read_limited(path))
    if not isinstance(raw, dict) or "schema_version" not in raw:
        raise ResultFileError(f"{path}: not a vmvc result (no schema_version)")
    if raw["schema_version"] != SCHEMA_VERSION:
        raise ResultFileError(
            f"{path}: result schema_version {raw['schema_version']!r} is not supported "
            f"(this vmvc reads version {SCHEMA_VERSION})"
        )
    try:
        doc = ResultDocument.model_validate(raw, context=UNTRUSTED)
    except ValidationError as exc:
        raise _error_at(path, exc) from None
    doc.config = _without_retired_keys(doc.config)
    try:
        # The config a resume would run with, and the thresholds a report judges with.
        Config.model_validate(doc.config)
    except ValidationError as exc:
        raise _error_at(path, exc, "config") from None
    return doc
