"""The Backend / Instance protocol every engine implements.

A backend derives its form of the image (`prepare`), then `provision` yields an Instance inside
a context manager whose exit always tears the instance down: normal exit, error, Ctrl-C.
Built-in backends register through the `vmvc.backends` entry-point group, so a podman or
firecracker backend can be added by another package without touching vmvc.

A backend is constructed for one host, `cls(config, host)`: the local machine is the host
named "local" (its engines at their local defaults), a `[[hosts]]` entry is another host
reached through the URIs it gives. How an engine reaches a host (an ssh connection, image
shipping, a storage pool) is the engine's own business, chosen by that connection; what
doctor and clean need from an engine comes through `checks()` and `clean_cache()`.
"""

from __future__ import annotations

import abc
import importlib
import itertools
import re
import tomllib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, get_args

from vmvc.agent.protocol import LineLog, ReadyInfo
from vmvc.backends.capabilities import (
    Capability,
    Crash,
    Definition,
    DerivedArtefact,
    FailureKind,
    FullCopy,
    Porter,
    RecoveryPlan,
    Unsupported,
)
from vmvc.image.build import Artefacts
from vmvc.results import SYSCALLS_ANSWERED_BY, BackendKind

Progress = Callable[[str], None]
NAME_PATTERN = re.compile(r"^vmvc-[A-Za-z0-9_.-]{1,100}$")
ENTRY_POINT_GROUP = "vmvc.backends"


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str
    fix: str = ""
    # False: the host does not offer this engine at all (no URI for it in [[hosts]], native
    # on another host): skipped and said, never an error, even when named explicitly.
    offered: bool = True


@dataclass
class InstanceSpec:
    """What to create; the name and labels mark it as vmvc's and say which run owns it."""

    run_id: str
    name: str
    workdir: Path
    vcpus: int = 1
    memory_mib: int = 512
    data_disk_mib: int = 1024
    boot_timeout: float = 180
    restart_on_crash: bool = False
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise ValueError(f"instance name {self.name!r} is not a valid vmvc name")


@dataclass
class Leftover:
    """A resource vmvc created that still exists (for `vmvc clean`)."""

    kind: str
    name: str
    run_id: str
    alive: bool
    remove: Callable[[], None] = field(repr=False, compare=False, default=lambda: None)
    # Set when the resource is another controller's (it is then never removed from here).
    owner: str = ""


class BackendError(Exception):
    """A backend cannot do what the run asked for (e.g. --accel kvm where KVM does not
    work); one line for the user, the run stops before any trial."""


@dataclass
class Check:
    """One line of `vmvc doctor`: a prerequisite, whether it holds, the command that fixes it."""

    name: str
    status: str  # "ok" | "warn" | "fail"
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class SyscallScope:
    """Which host tasks carry an instance's system calls (vmvc.bench.syscalls counts them).

    `pids`: root processes, traced with every thread and every task they create.
    `counted_from_exec`: if set, a traced task counts only once it has executed this path
    (the agent inside the instance), and so do the tasks it forks: the roots are the
    engine's (Docker's shim starts `docker exec` processes through runc). Otherwise the
    roots count from the start (the agent itself, a container's init, QEMU, gVisor's Sentry).
    """

    pids: tuple[int, ...]
    counted_from_exec: str | None = None
    what: str = ""  # for the reader: "QEMU", "the container's processes"


class Instance(abc.ABC):
    """A running VM, container or native process tree with the agent inside."""

    backend: str
    name: str

    def __init__(self) -> None:
        self.log = LineLog()
        self.phases: dict[str, float] = {}
        self.ready_info: ReadyInfo | None = None
        self._task_counter = itertools.count(1)

    def next_task_id(self) -> str:
        return f"t{next(self._task_counter)}"

    @abc.abstractmethod
    def wait_ready(self, timeout: float) -> ReadyInfo:
        """Block until the agent's ready marker; fills `phases` (seconds per startup phase)."""

    @abc.abstractmethod
    def run(self, workload: str, args: list[str], timeout: float) -> list[str]:
        """Run one agent workload; returns its raw output lines."""

    @abc.abstractmethod
    def footprint(self) -> dict[str, float]:
        """Host memory this instance costs, MiB; `total_mib` is the comparable figure."""

    def console_tail(self, count: int = 20) -> list[str]:
        return self.log.tail(count)

    def syscall_scope(self) -> SyscallScope | None:
        """The host tasks whose system calls are this instance's (None: not countable, e.g.
        an instance on another host)."""
        return None

    def applied_limits(self) -> dict[str, str | int | float]:
        """The CPU and memory limits this instance runs under, read back from the engine
        (not the requested ones): `cpus`, `memory_mib`, `swap_mib`, `how`. Empty: unknown.

        Recorded with each instance in the result and shown in the report, so the equal
        footing of native, container and VM is a measured fact, not an intention.
        """
        return {}


# What a backend is, for the claims and the report: claims compare the first selected
# backend of kind "vm" with the first of kind "container", and both with kind "native".
# A backend of any other kind is measured and reported but judged by no claim. The order is
# the isolation spectrum the report shows: the host itself, a container sharing its kernel,
# a sandbox with its own user-space kernel, a system container booting a full init, a VM.
# BackendKind itself lives with the result records (vmvc.results), which store it.


@dataclass(frozen=True)
class BackendInfo:
    """How a backend names itself in results and reports (recorded in the result)."""

    label: str  # short column label: "container", "VM"
    kind: BackendKind
    display_name: str  # long name, may change after prepare(): "VM (libvirt, emulated TCG)"
    syscalls_answered_by: str = ""  # "host kernel", "guest kernel", "user-space kernel (...)"
    flavour: str = ""  # a VM's: "minimal" (agent as PID 1) or "full" (a booted guest OS)


class Backend(abc.ABC):
    name: str = ""
    display_name: str = ""
    label: str = ""
    kind: BackendKind = "sandbox"
    # Lifecycle operations this backend offers (see vmvc.backends.capabilities): a lifecycle
    # workload is planned only for backends that declare every capability it needs.
    capabilities: frozenset[Capability] = frozenset()
    # Whether instances run on the machine vmvc runs on, so that this machine's kernel,
    # processes and memory say something about them (False for a remote connection).
    on_this_host: bool = True
    # Which kernel answers the instances' system calls; "" = the kind's (SYSCALLS_ANSWERED_BY).
    syscalls_answered_by: str = ""
    # A VM backend's flavour ("minimal", "full"): C01 splits a VM's start into guest OS and
    # VMM/firmware/kernel from the two.
    flavour: str = ""

    def info(self) -> BackendInfo:
        return BackendInfo(
            self.label or self.name,
            self.kind,
            self.display_name or self.name,
            self.syscalls_answered_by or SYSCALLS_ANSWERED_BY.get(self.kind, ""),
            self.flavour,
        )

    @abc.abstractmethod
    def probe(self) -> Availability: ...

    def prepare(self, artefacts: Artefacts, progress: Progress) -> dict[str, Any]:
        """Derive this backend's form of the image (cached); returns facts for the result."""
        return {}

    @abc.abstractmethod
    def provision(
        self, artefacts: Artefacts, spec: InstanceSpec
    ) -> AbstractContextManager[Instance]: ...

    def environment(self) -> dict[str, Any]:
        """Engine versions and settings recorded in the result's environment."""
        return {}

    def leftovers(self, live_run_ids: set[str]) -> list[Leftover]:
        """Resources this backend created for any run (alive = its run still runs)."""
        return []

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold no connection
        """Release connections; instances are already gone."""

    def checks(self, probe: bool, progress: Progress) -> list[Check]:
        """What `vmvc doctor` says about this backend on its host. The first check is named
        `backend <name>` (the interactive prompt reads it); engines add their own (a storage
        pool, whether KVM works: booting a probe guest only when `probe`)."""
        availability = self.probe()
        status = "ok" if availability.available else "fail" if availability.offered else "warn"
        return [Check(f"backend {self.name}", status, availability.reason, availability.fix)]

    def clean_cache(self, dry_run: bool) -> list[str]:
        """Remove what this backend keeps on its host between runs on purpose (images, a
        storage pool); `vmvc clean --cache` calls it only when no run is alive. Returns one
        line per thing removed (or that would be, with `dry_run`)."""
        return []

    def memory_estimate_mib(self, memory_mib: int) -> float:
        """Host memory one idle instance may hold, for the scale safety check (not a
        measurement); conservative by default: all of the instance's memory."""
        return float(memory_mib)

    def engine_daemons(self) -> dict[str, int]:
        """The engine's own daemons on this host, name -> pid (density: their growth is part
        of what instances cost the host); {} when there are none or they run elsewhere."""
        return {}

    # -- lifecycle operations (declared in `capabilities`; the workloads time them) --------

    def derive_artefact(self, artefacts: Artefacts, spec: InstanceSpec) -> DerivedArtefact:
        """DERIVE_ARTEFACT: a temporary form of the image, derived from the rootfs."""
        raise Unsupported(self.name, Capability.DERIVE_ARTEFACT)

    def define(
        self, artefacts: Artefacts, spec: InstanceSpec, source: DerivedArtefact | None = None
    ) -> Definition:
        """DEFINE (CLONE without `source`): an instance defined from `source`, or from the
        prepared image when None; nothing is made before the handle's `stage`/`create`."""
        raise Unsupported(self.name, Capability.DEFINE)

    def full_copy(self, artefacts: Artefacts, directory: Path) -> FullCopy:
        """FULL_COPY: copy the prepared image in full into `directory` (the caller times it)."""
        raise Unsupported(self.name, Capability.FULL_COPY)

    def recovery_plans(self) -> dict[FailureKind, RecoveryPlan]:
        """RECOVER: the failure kinds this engine can inject, each with what restarts it
        (the recovery workload runs one trial per kind, in FailureKind order)."""
        return {}

    def crash(self, instance: Instance, kind: FailureKind) -> Crash:
        """RECOVER: a handle that kills one of this backend's running instances (provisioned
        with `restart_on_crash`) the way `kind` says and reports when the engine saw it die."""
        raise Unsupported(self.name, Capability.RECOVER)

    def porter(self, artefacts: Artefacts, spec: InstanceSpec) -> Porter:
        """EXPORT_IMPORT: export/import of the image; files go in `spec.workdir`."""
        raise Unsupported(self.name, Capability.EXPORT_IMPORT)


def available_backend_classes() -> dict[str, type[Backend]]:
    """Built-in and third-party backends, by name, from the entry-point group."""
    found: dict[str, type[Backend]] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        found[entry.name] = entry.load()
    if not found:  # running from a source tree that was never installed
        found = {name: _load(target) for name, target in source_tree_entry_points().items()}
    return in_usual_order(found)


def source_tree_entry_points() -> dict[str, str]:
    """The entry points pyproject.toml declares (name -> "module:Class"): read by name, so
    this module imports no concrete backend."""
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    try:
        project = tomllib.loads(pyproject.read_text())["project"]
        return dict(project["entry-points"][ENTRY_POINT_GROUP])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return {}


def _load(target: str) -> type[Backend]:
    module_name, _, class_name = target.partition(":")
    backend: type[Backend] = getattr(importlib.import_module(module_name), class_name)
    return backend


def iter_names(run_id: str, backend: str) -> Iterator[str]:
    for index in itertools.count(1):
        yield f"vmvc-{run_id}-{backend}-{index}"


def in_usual_order(classes: dict[str, type[Backend]]) -> dict[str, type[Backend]]:
    """The usual order everywhere (runs, doctor, reports), along the isolation spectrum: the
    baseline, then containers, sandboxes and VMs, whatever order the installed packages'
    entry points come in (setuptools writes them alphabetically)."""
    kinds = get_args(BackendKind)
    return dict(sorted(classes.items(), key=lambda item: kinds.index(item[1].kind)))
