"""LXC's lifecycle operations (vmvc.backends.capabilities): the engine work, untimed.

derive     a full copy of the image's system tree (`cp -a`, what `lxc-create` makes of a
           rootfs: the container's own tree on the host's disk)
define     the container's config and an empty overlay upper layer on a tree (the derived
           copy, or the image's system tree for a clone: what `lxc-copy --snapshot
           --backingstorage overlay` makes), then `lxc-start`; ready at the agent's marker
full copy  `cp -a` of the system tree (what `lxc-copy` without --snapshot does, by rsync):
           the contrast to the overlay clone
launch     many containers at once (scale, density): `provision` as for one
crash      workload_process  the agent SIGKILLs itself (`die`); systemd, the container's
                             PID 1, respawns it through the agent unit's Restart= and the
                             unit's ExecStopPost prints the VMVC-RESPAWN line on the socket,
                             as the full VM's does on its console
           instance          SIGKILL to the container's init from the host: the kernel ends
                             the container; lxc restarts nothing (lxc.start.auto acts when
                             the host boots only); detected when lxc's monitor exits

No export/import: LXC keeps no image of its own (a rootfs tree and a config), so a portable
form would be a tarball of the tree, which says nothing about the engine.

`LxcOperations` is mixed into the public LxcBackend (vmvc.backends.lxc); the engine's own
modules do not import this one.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from vmvc.agent.protocol import ReadyInfo, command_line, respawn_seen_at
from vmvc.backends.base import Backend, BackendError, Instance, InstanceSpec
from vmvc.backends.capabilities import (
    Capability,
    Crash,
    Definition,
    DerivedArtefact,
    FailureKind,
    FullCopy,
    RecoveryPlan,
    StoredBytes,
)
from vmvc.backends.disk_usage import tree_allocated_bytes
from vmvc.backends.lxc_engine.backend import HostCgroups, LxcInstance, system_rootfs
from vmvc.backends.lxc_engine.cli import Lxc, LxcError, parse_info
from vmvc.image.build import Artefacts
from vmvc.paths import make_dirs

# Conservative host memory of one idle system container for the scale and density guards
# (not a measurement): 14-15 MiB measured here (cgroup + lxc's monitor), doubled.
IDLE_ESTIMATE_MIB = 32.0
COPY_TIMEOUT_S = 600.0
# How often the instance-kill watch looks for lxc's monitor to have gone (its resolution).
MONITOR_POLL_S = 0.01

_SYSTEMD = "systemd in the container (vmvc-agent.service's Restart=on-failure)"
RECOVERY_PLANS = {
    FailureKind.WORKLOAD_PROCESS: RecoveryPlan(
        "the agent SIGKILLs itself inside the container (`die`)",
        _SYSTEMD,
        "the unit's VMVC-RESPAWN line on the agent socket",
    ),
    FailureKind.INSTANCE: RecoveryPlan(
        "SIGKILL to the container's init (systemd) from the host",
        None,  # lxc.start.auto acts when the host boots, never on a container's death
        "lxc's monitor process exits (polled every 10 ms)",
    ),
}


class LxcOperations(Backend):
    """The lifecycle operations of LXC on this host (mixed into LxcBackend)."""

    if TYPE_CHECKING:  # provided by the engine's LxcBackend, later in the MRO
        lxc: Lxc

        def host_facts(self) -> HostCgroups | None: ...

    capabilities = frozenset(
        {
            Capability.ISOLATION_FACTS,
            Capability.LAUNCH_MANY,
            Capability.DERIVE_ARTEFACT,
            Capability.DEFINE,
            Capability.CLONE,
            Capability.FULL_COPY,
            Capability.RECOVER,
        }
    )

    def memory_estimate_mib(self, memory_mib: int) -> float:
        return IDLE_ESTIMATE_MIB

    def derive_artefact(self, artefacts: Artefacts, spec: InstanceSpec) -> DerivedArtefact:
        return TreeCopy(system_rootfs(artefacts), spec.workdir / "rootfs")

    def define(
        self, artefacts: Artefacts, spec: InstanceSpec, source: DerivedArtefact | None = None
    ) -> Definition:
        if source is None:
            tree = system_rootfs(artefacts)
        elif isinstance(source, TreeCopy):
            tree = source.target
        else:
            raise TypeError(f"lxc cannot define a container from {type(source).__name__}")
        host = self.host_facts()
        if host is None:
            raise BackendError("no cgroup cpu and memory controllers found")
        return LxcDefinition(LxcInstance(self.lxc, self.name, tree, spec, host))

    def full_copy(self, artefacts: Artefacts, directory: Path) -> FullCopy:
        target = directory / "full-copy"
        copy_tree(system_rootfs(artefacts), target)
        try:
            stored = tree_allocated_bytes(target)
        finally:
            shutil.rmtree(target, ignore_errors=True)
        return FullCopy(stored, "cp -a of the system tree (lxc-copy without --snapshot)")

    def recovery_plans(self) -> dict[FailureKind, RecoveryPlan]:
        return dict(RECOVERY_PLANS)

    def crash(self, instance: Instance, kind: FailureKind) -> Crash:
        if not isinstance(instance, LxcInstance):
            raise TypeError(f"lxc cannot crash {type(instance).__name__}")
        if kind == FailureKind.WORKLOAD_PROCESS:
            return AgentKill(instance)
        if kind == FailureKind.INSTANCE:
            return InitKill(instance)
        raise ValueError(f"lxc cannot inject a {kind} failure")


def copy_tree(source: Path, target: Path) -> None:
    """`cp -a` (owners, modes, links, device nodes, extended attributes) into `target`,
    which must not exist; a copy that failed half-way is removed."""
    try:
        done = subprocess.run(
            ["cp", "-a", "--", f"{source}/.", str(target)],
            capture_output=True,
            text=True,
            timeout=COPY_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        shutil.rmtree(target, ignore_errors=True)
        raise LxcError(f"copying {source} took more than {COPY_TIMEOUT_S:.0f} s") from None
    if done.returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        lines = done.stderr.strip().splitlines() or ["no message"]
        raise LxcError(f"cp -a {source} failed: {lines[-1]}")


class TreeCopy(DerivedArtefact):
    """The container's own copy of the system tree, in the instance's work dir."""

    def __init__(self, source: Path, target: Path) -> None:
        super().__init__()
        self.source, self.target = source, target
        self.steps = {"create": "cp -a of the system tree", "remove": "rm -r"}

    def create(self) -> None:
        make_dirs(self.target.parent)
        copy_tree(self.source, self.target)

    def inspect(self) -> None:
        self.details["create"] = {"tree_bytes": tree_allocated_bytes(self.target)}

    def remove(self) -> None:
        shutil.rmtree(self.target, ignore_errors=True)


class LxcDefinition(Definition):
    """A system container made in the two steps the workloads time apart."""

    def __init__(self, instance: LxcInstance) -> None:
        super().__init__()
        self.instance = instance
        self.steps = {
            "create": "lxc config + overlay upper layer",
            "start": "lxc-start to ready marker (systemd boots)",
            "remove": "lxc-stop -k, lxc-destroy",
        }

    def stage(self) -> None:
        make_dirs(self.instance.lxc.lxcpath)
        make_dirs(self.instance.spec.workdir / "data")  # the bind mount's source

    def create(self) -> None:
        self.instance.create()

    def start(self) -> None:
        self.instance.start()

    def wait_ready(self, timeout: float) -> ReadyInfo:
        return self.instance.wait_ready(timeout)

    def stored_bytes(self) -> StoredBytes:
        upper = self.instance.directory / "upper"
        return StoredBytes(
            tree_allocated_bytes(upper),
            {"what": "the overlay's upper layer (allocated, after ready)"},
        )

    def remove(self) -> None:
        self.instance.remove()


class AgentKill(Crash):
    """The agent SIGKILLs itself; systemd respawns it and the unit prints the respawn line."""

    def __init__(self, instance: LxcInstance) -> None:
        super().__init__(FailureKind.WORKLOAD_PROCESS, RECOVERY_PLANS[FailureKind.WORKLOAD_PROCESS])
        if instance.channel is None:
            raise RuntimeError(f"{instance.name} has no agent channel")
        self.instance = instance
        self.channel = instance.channel
        self.start = len(instance.log)

    def crash(self) -> None:
        command = command_line(self.instance.next_task_id(), "die", [])
        self.channel.write(command.encode())

    def detected_at(self) -> float | None:
        return respawn_seen_at(self.instance.log, self.start)

    def running(self) -> bool:
        return container_running(self.instance)


class InitKill(Crash):
    """SIGKILL to the container's init from the host; lxc's monitor exits with it."""

    def __init__(self, instance: LxcInstance) -> None:
        super().__init__(FailureKind.INSTANCE, RECOVERY_PLANS[FailureKind.INSTANCE])
        info = parse_info(instance.lxc.call("lxc-info", name=instance.name))
        if not info.pid:
            raise RuntimeError(f"{instance.name} has no init process")
        self.instance = instance
        self.pid = info.pid  # looked up before the kill is timed
        self.monitors = [psutil.Process(pid) for pid in instance.monitor_pids()]
        self._gone_at: float | None = None
        self._stop = threading.Event()
        self._watch: threading.Thread | None = None

    def crash(self) -> None:
        if self.monitors:  # none found: the death's time stays unknown, not invented
            self._watch = threading.Thread(target=self._watch_monitor, daemon=True)
            self._watch.start()
        os.kill(self.pid, signal.SIGKILL)

    def _watch_monitor(self) -> None:
        while not self._stop.is_set():
            if not any(monitor.is_running() for monitor in self.monitors):
                self._gone_at = time.monotonic()
                return
            time.sleep(MONITOR_POLL_S)

    def detected_at(self) -> float | None:
        return self._gone_at

    def running(self) -> bool:
        return container_running(self.instance)

    def remove(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.join(timeout=5)


def container_running(instance: LxcInstance) -> bool:
    try:
        return parse_info(instance.lxc.call("lxc-info", name=instance.name)).running
    except LxcError:
        return False  # lxc no longer knows it: not running
