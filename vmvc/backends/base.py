"""The Backend / Instance protocol every engine implements.

A backend derives its form of the image (`prepare`), then `provision` yields an Instance inside
a context manager whose exit always tears the instance down: normal exit, error, Ctrl-C.
Built-in backends register through the `vmvc.backends` entry-point group, so a podman or
firecracker backend can be added by another package without touching vmvc.
"""

from __future__ import annotations

import abc
import itertools
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Literal, get_args

from vmvc.agent.protocol import LineLog, ReadyInfo
from vmvc.image.build import Artefacts

Progress = Callable[[str], None]
NAME_PATTERN = re.compile(r"^vmvc-[A-Za-z0-9_.-]{1,100}$")
ENTRY_POINT_GROUP = "vmvc.backends"


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str
    fix: str = ""


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


# What a backend is, for the claims and the report: claims compare the first selected
# backend of kind "vm" with the first of kind "container", and both with kind "native".
# A backend of any other kind is measured and reported but judged by no claim.
BackendKind = Literal["native", "container", "vm", "sandbox"]


@dataclass(frozen=True)
class BackendInfo:
    """How a backend names itself in results and reports (recorded in the result)."""

    label: str  # short column label: "container", "VM"
    kind: BackendKind
    display_name: str  # long name, may change after prepare(): "VM (libvirt, emulated TCG)"


class Backend(abc.ABC):
    name: str = ""
    display_name: str = ""
    label: str = ""
    kind: BackendKind = "sandbox"

    def info(self) -> BackendInfo:
        return BackendInfo(self.label or self.name, self.kind, self.display_name or self.name)

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


def available_backend_classes() -> dict[str, type[Backend]]:
    """Built-in and third-party backends, by name, from the entry-point group."""
    found: dict[str, type[Backend]] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        found[entry.name] = entry.load()
    found = in_usual_order(found)
    if not found:  # running from a source tree that was never installed
        from vmvc.backends.docker import DockerBackend
        from vmvc.backends.libvirt import LibvirtBackend
        from vmvc.backends.native import NativeBackend

        found = {"native": NativeBackend, "docker": DockerBackend, "libvirt": LibvirtBackend}
    return found


def iter_names(run_id: str, backend: str) -> Iterator[str]:
    for index in itertools.count(1):
        yield f"vmvc-{run_id}-{backend}-{index}"


def in_usual_order(classes: dict[str, type[Backend]]) -> dict[str, type[Backend]]:
    """The usual order everywhere (runs, doctor, reports): the baseline, then containers, VMs
    and sandboxes, whatever order the installed packages' entry points come in (setuptools
    writes them alphabetically)."""
    kinds = get_args(BackendKind)
    return dict(sorted(classes.items(), key=lambda item: kinds.index(item[1].kind)))
