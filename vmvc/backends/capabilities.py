"""Lifecycle operations a backend may offer beyond one instance's life, and their handles.

A backend declares what it can do in `Backend.capabilities`; a lifecycle workload is planned
only for backends that have every capability it needs. Each operation does the engine's work
and hands back a handle or typed data; the WORKLOAD times the steps around the calls (as
PerfKitBenchmarker's BaseResource times create/ready/delete), so a measurement means the
same on every engine. Handles describe their steps (`steps`, for the measurement metadata)
and may add engine figures to `details`; `remove` is always safe, also after a failure half
way, and is called by the workload in a `finally`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from vmvc.agent.protocol import ReadyInfo


class Capability(StrEnum):
    # provision: derive the engine's form of the image from the rootfs (a temporary artefact)
    DERIVE_ARTEFACT = "derive_artefact"
    # provision, clone: a startable instance, defined but not started, from an artefact
    DEFINE = "define"
    # clone: a defined instance made from the prepared image while another one runs
    CLONE = "clone"
    # clone's contrast: a full (not copy-on-write) copy of the prepared image
    FULL_COPY = "full_copy"
    # recovery: kill an instance (per FailureKind); the engine's own mechanism, if it has
    # one, brings it back
    RECOVER = "recover"
    # portability: the image in the engine's portable form, exported and imported again
    EXPORT_IMPORT = "export_import"
    # scale: many instances launched at once, their host memory measured on this host
    LAUNCH_MANY = "launch_many"
    # isolation: the agent's facts from inside a fresh instance
    ISOLATION_FACTS = "isolation_facts"


class Unsupported(NotImplementedError):
    """An operation the backend does not declare in its capabilities."""

    def __init__(self, backend: str, capability: Capability) -> None:
        super().__init__(f"backend {backend} has no {capability} capability")


class Handle(abc.ABC):
    """Something an operation made: the workload times its steps, then always removes it."""

    def __init__(self) -> None:
        # What each step does in this engine ("create": "docker create"), for the metadata.
        self.steps: dict[str, str] = {}
        # Engine figures per step ("create": {"image_bytes": ...}), informative metadata.
        self.details: dict[str, dict[str, Any]] = {}

    def step(self, name: str) -> str:
        return self.steps.get(name, name)

    def detail(self, name: str) -> dict[str, Any]:
        return dict(self.details.get(name, {}))

    @abc.abstractmethod
    def remove(self) -> None:
        """Remove whatever exists of it; safe after a partial create and when called twice."""


class DerivedArtefact(Handle):
    """The engine's form of the image, derived from the rootfs (a temporary image or disk)."""

    @abc.abstractmethod
    def create(self) -> None:
        """Derive it (timed by the caller as prepare_s)."""

    def inspect(self) -> None:
        """Engine figures about what `create` made, into `details["create"]` (untimed)."""


class Definition(Handle):
    """An instance defined from an artefact but not started (`docker create`, `virsh define`)."""

    def stage(self) -> None:
        """Files the harness needs per instance (not part of defining it); untimed."""

    @abc.abstractmethod
    def create(self) -> None:
        """Define the instance (timed by the caller as define_s or clone_s)."""

    @abc.abstractmethod
    def start(self) -> None:
        """Start the defined instance; the agent's ready marker follows."""

    @abc.abstractmethod
    def wait_ready(self, timeout: float) -> ReadyInfo:
        """Block until the agent's ready marker; `ReadyInfo.at` is when it arrived."""

    @abc.abstractmethod
    def stored_bytes(self) -> StoredBytes:
        """What the host stores for this instance's own data (copy-on-write: small)."""


@dataclass(frozen=True)
class StoredBytes:
    value: float
    metadata: dict[str, Any] = field(default_factory=dict)


class FailureKind(StrEnum):
    """What dies in a recovery trial; each kind is reported on its own (C08).

    The same failure is injected on every engine that has it, so a time compares like
    with like; what brings the instance back (if anything) is the engine's own business.
    """

    # The process serving the workload (the vmvc agent) is SIGKILLed.
    WORKLOAD_PROCESS = "workload_process"
    # The instance itself is SIGKILLed from the host (a container's PID 1, a VM's QEMU).
    INSTANCE = "instance"
    # The guest's own kernel panics (VMs only: a container has no kernel of its own).
    GUEST_KERNEL_PANIC = "guest_kernel_panic"


@dataclass(frozen=True)
class RecoveryPlan:
    """How one engine meets one failure kind: what is killed and what restarts it.

    `restarted_by` None means the engine has no automatic restart for it: the recovery
    workload then watches the dead instance for a bounded time and records that nothing
    brought it back, instead of a time.

    `shares_instance`: what restarts this kind keeps no count of the instance's earlier
    failures (no back-off, no start limit), so the kind may fail an instance that an
    earlier kind of the same trial already failed and brought back: each kind is still
    timed from its own kill, and one boot serves them all. False (the default) gives the
    kind a fresh instance of its own: Docker, for one, doubles its restart delay for each
    further crash of a container.
    """

    kills: str  # what is killed, and how
    restarted_by: str | None  # the mechanism that brings it back; None: nothing does
    detect_basis: str = ""  # where the engine's "it died" time comes from ("": none)
    shares_instance: bool = False


class Crash(Handle):
    """A running instance killed once, the way `kind` says; the plan says what restarts it."""

    def __init__(self, kind: FailureKind, plan: RecoveryPlan) -> None:
        super().__init__()
        self.kind = kind
        self.plan = plan

    @property
    def how(self) -> str:
        """What is killed and what restarts it (measurement metadata)."""
        restart = self.plan.restarted_by or "no automatic restart"
        return f"{self.plan.kills}; {restart}"

    @property
    def detect_basis(self) -> str:
        return self.plan.detect_basis

    @abc.abstractmethod
    def crash(self) -> None:
        """Kill it the engine's way (the caller's timer runs around this call)."""

    @abc.abstractmethod
    def detected_at(self) -> float | None:
        """Monotonic time the engine recorded the death (None: unknown); call after recovery
        (or after the watch, for a kind with no automatic restart)."""

    @abc.abstractmethod
    def running(self) -> bool:
        """Whether the engine says the instance runs now (the no-restart watch asks this)."""

    def remove(self) -> None:
        """Stop watching the engine."""


class ByteSink(Protocol):
    """Where an export writes its stream: a file, or a compressor's input."""

    def write(self, data: bytes, /) -> int: ...


class ByteSource(Protocol):
    """Where an import reads its stream from: a file, or a decompressor's output."""

    def read(self, size: int = -1, /) -> bytes: ...


class Porter(Handle):
    """The prepared image exported in the engine's portable form and imported again.

    The engine writes and reads ONE uncompressed stream (`export` into a sink, `import_`
    from a source); the workload decides the form (the file as is, or compressed by the
    same compressor for every engine: vmvc.bench.export_forms), so forms are alike across
    engines. `export` and `import_` run once per form, in that order:
    export, forget_source, import_, check, clear_import.
    """

    # What the exported stream holds, for the measurement's metadata and the report.
    holds: str = ""

    def stage(self) -> None:
        """Set-up before the first export (untimed)."""

    @abc.abstractmethod
    def export(self, sink: ByteSink) -> None:
        """Write the portable form, uncompressed, into `sink` (timed; write-only, no seek)."""

    def forget_source(self) -> None:
        """Make the import do its real work, as on another host (untimed)."""

    @abc.abstractmethod
    def import_(self, source: ByteSource) -> None:
        """Import what `export` wrote, read from `source` (timed; read-only, no seek)."""

    def check(self) -> None:
        """Check the import gave back a usable image; raise if not (untimed)."""

    def clear_import(self) -> None:
        """Remove what the import made, so the next form starts as before it (untimed)."""


@dataclass(frozen=True)
class FullCopy:
    """A full copy of the prepared image (clone's contrast), made in a given directory."""

    stored_bytes: int
    step: str
    metadata: dict[str, Any] = field(default_factory=dict)
