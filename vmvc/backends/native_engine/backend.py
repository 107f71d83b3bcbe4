"""Native baseline: the agent in a chroot of the very same rootfs, so the binaries are identical.

The chroot runs in its own mount, PID, IPC and UTS namespaces (`unshare`): the rootfs is
bind-mounted read-only onto itself; the data directory, a /proc of the new PID namespace (no
host processes; /proc/sys and /proc/sysrq-trigger read-only), a read-only /sys, a /dev with
only the device nodes the workloads use, and a tmpfs /tmp are mounted inside that namespace
only. When the process exits the namespaces and every mount in them vanish, so nothing can
leak onto the host.

The whole tree runs in a cgroup of its own with the container's limits: a CFS quota of
`vcpus` CPUs and `memory_mib` of memory without swap (vmvc.backends.native_engine.cgroups),
so the baseline gets what the container and the VM get, not the whole host.

What stays shared, on purpose: the network namespace (native *is* the host; instances do no
networking either way), the user namespace and uid 0 (mounting and chroot need it), and the
CPUs, memory and the host filesystem /data lives on, which are what native is the baseline
for.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from vmvc.agent.protocol import ReadyInfo, pump, run_served, wait_ready
from vmvc.backends.base import (
    Availability,
    Backend,
    Instance,
    InstanceSpec,
    Leftover,
    SyscallScope,
)
from vmvc.backends.capabilities import Capability
from vmvc.backends.cgroup_files import detect
from vmvc.backends.memory import process_tree_memory
from vmvc.backends.native_engine.cgroups import (
    CgroupError,
    NativeCgroup,
    enter_command,
    existing,
    run_id_of,
)
from vmvc.config import Config, HostSettings
from vmvc.hosts import is_local
from vmvc.image.build import Artefacts
from vmvc.paths import PRIVATE_MODE, SAFE_NAME, make_dirs

# Fixed script; paths arrive as positional parameters, never interpolated into the text.
# It runs as PID 1 of the new PID namespace, so the proc it mounts shows that namespace only.
NAMESPACE_SCRIPT = r"""
set -e
root=$1; data=$2; shift 2
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
mount --bind "$data" "$root/data"
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
for path in sys sysrq-trigger; do
    [ -e "$root/proc/$path" ] || continue
    mount --bind "$root/proc/$path" "$root/proc/$path"
    mount -o remount,bind,ro "$root/proc/$path"
done
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
mount -t tmpfs -o mode=0755,size=1m,nosuid,noexec tmpfs "$root/dev"
for node in null zero full random urandom tty; do
    : > "$root/dev/$node"
    mount --bind "/dev/$node" "$root/dev/$node"
done
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
mkdir "$root/dev/shm" && mount -t tmpfs -o mode=1777,size=64m,nosuid,nodev tmpfs "$root/dev/shm"
mount -t tmpfs -o mode=1777,size=64m tmpfs "$root/tmp"
exec chroot "$root" /opt/vmvc/agent "$@"
"""
# The device nodes above: /dev/null etc. for the shell and tools, the random devices for
# fio/sysbench seeds, tty for tools that probe it. fio writes a file on /data: no block device.
UNSHARE = [
    "unshare",
    "--mount",
    "--propagation",
    "private",
    "--pid",
    "--fork",
    "--kill-child",  # if unshare dies, the namespace's PID 1 (and with it all) goes too
    "--ipc",
    "--uts",
]
RUN_ID_ENV = "VMVC_RUN_ID"


class NativeInstance(Instance):
    backend = "native"

    def __init__(self, spec: InstanceSpec, rootfs: Path, cgroup: NativeCgroup) -> None:
        super().__init__()
        self.name = spec.name
        self.spec = spec
        self.cgroup = cgroup
        data = make_dirs(spec.workdir / "data", PRIVATE_MODE)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", RUN_ID_ENV: spec.run_id, "LC_ALL": "C"}
        self._t0 = time.monotonic()
        self.process = subprocess.Popen(
            [
                *enter_command(cgroup.procs_files),  # born inside its cgroup
                *UNSHARE,
                "--",
                "/bin/sh",
                "-c",
                NAMESPACE_SCRIPT,
                "vmvc-native",
                str(rootfs),
                str(data),
                "serve",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: teardown kills the whole tree
        )
        self._spawned = time.monotonic()
        self._reader = threading.Thread(target=self._pump, name=f"{self.name}-stdout", daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        pump(self.process.stdout, self.log)

    def wait_ready(self, timeout: float) -> ReadyInfo:
        _, info = wait_ready(self.log, timeout)
        self.phases = {
            "spawn_s": self._spawned - self._t0,
            "ready_s": info.at - self._spawned,
            "total_s": info.at - self._t0,
        }
        self.ready_info = info
        return info

    def run(self, workload: str, args: list[str], timeout: float) -> list[str]:
        task_id = self.next_task_id()
        assert self.process.stdin is not None
        return run_served(self.process.stdin, self.log, task_id, workload, args, timeout)

    def footprint(self) -> dict[str, float]:
        return process_tree_memory(self.process.pid)

    def syscall_scope(self) -> SyscallScope | None:
        return SyscallScope((self.process.pid,), what="the agent's process tree")

    def applied_limits(self) -> dict[str, str | int | float]:
        return self.cgroup.limits()

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(BrokenPipeError, OSError):
                assert self.process.stdin is not None
                self.process.stdin.write(b"exit\n")
                self.process.stdin.close()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._reader.join(timeout=5)


# Conservative host memory of one agent process for the scale safety check (not a measurement).
PROCESS_ESTIMATE_MIB = 16.0


class NativeBackend(Backend):
    name = "native"
    label = "native"
    kind = "native"
    display_name = "native"
    # The host itself is neither provisioned, cloned, exported nor restarted: native only
    # launches agent processes (scale) and reports what it sees (isolation).
    capabilities = frozenset({Capability.LAUNCH_MANY, Capability.ISOLATION_FACTS})

    def __init__(self, config: Config, host: HostSettings | None = None) -> None:
        self.config = config
        self.host = host

    def probe(self) -> Availability:
        if not is_local(self.host):  # it would need vmvc and the rootfs on that machine
            return Availability(False, "native runs on the local host only", offered=False)
        if os.geteuid() != 0:
            return Availability(
                False,
                "native needs root (chroot and a private mount namespace)",
                "run vmvc as root, or leave native out: --backend docker --backend libvirt",
            )
        for tool in ("unshare", "chroot", "mount"):
            if shutil.which(tool) is None:
                return Availability(
                    False, f"'{tool}' is not installed", "apt-get install util-linux"
                )
        layout = detect()
        if layout is None:
            # Unconfined, native would have the whole host: not the baseline of a container
            # limited to instance.vcpus and instance.memory_mib.
            return Availability(
                False,
                "no cgroup cpu and memory controllers are mounted (native runs with the "
                "container's limits)",
                "mount the cgroup v2 hierarchy at /sys/fs/cgroup (or v1 cpu and memory)",
            )
        return Availability(
            True,
            "chroot of the workload rootfs in its own mount, PID, IPC and UTS namespaces, "
            f"in a cgroup v{layout.version} with the container's CPU and memory limits",
        )

    @contextlib.contextmanager
    def provision(self, artefacts: Artefacts, spec: InstanceSpec) -> Iterator[Instance]:
        make_dirs(spec.workdir, PRIVATE_MODE)
        layout = detect()
        if layout is None:
            raise CgroupError("no cgroup cpu and memory controllers are mounted")
        cgroup: NativeCgroup | None = None
        instance: NativeInstance | None = None
        try:
            cgroup = NativeCgroup.create(layout, spec.name, spec.vcpus, spec.memory_mib)
            instance = NativeInstance(spec, artefacts.rootfs, cgroup)
            yield instance
        finally:
            if instance is not None:
                instance.stop()
            if cgroup is not None:
                cgroup.remove()
            shutil.rmtree(spec.workdir, ignore_errors=True)

    def memory_estimate_mib(self, memory_mib: int) -> float:
        # An agent process measured a few MiB on the development host; doubled, and more.
        return PROCESS_ESTIMATE_MIB

    def environment(self) -> dict[str, Any]:
        layout = detect()
        confined = f"cgroup v{layout.version}" if layout else "no cgroup"
        return {
            "native_isolation": "chroot + mount, PID, IPC and UTS namespaces",
            "native_limits": f"{confined}: CFS quota of instance.vcpus CPUs, "
            "instance.memory_mib memory, no swap (as the container)",
        }

    def leftovers(self, live_run_ids: set[str]) -> list[Leftover]:
        found = []
        for proc in psutil.process_iter(["pid", "name", "uids"]):
            with contextlib.suppress(psutil.Error):
                if proc.info["uids"].real != 0:
                    continue  # anybody can set the variable; only vmvc (root) starts these
                run_id = proc.environ().get(RUN_ID_ENV)
                if run_id and SAFE_NAME.match(run_id):
                    found.append(
                        Leftover(
                            "process",
                            f"pid {proc.pid} ({proc.info['name']})",
                            run_id,
                            run_id in live_run_ids,
                            remove=lambda p=proc: _kill_unless_gone(p),
                        )
                    )
        layout = detect()
        for group in existing(layout) if layout else []:
            run_id = run_id_of(group.name) or ""
            found.append(
                Leftover(
                    "cgroup",
                    ", ".join(str(d) for d in group.dirs),
                    run_id,
                    run_id in live_run_ids,
                    remove=group.remove,
                )
            )
        return found


def _kill_unless_gone(process: psutil.Process) -> None:
    """Kill a leftover process; one already gone is removed, not an error. Killing a run's
    agent (PID 1 of its namespace) takes its children with it, so a workload listed beside it
    is often gone by the time its turn comes."""
    with contextlib.suppress(psutil.NoSuchProcess):
        process.kill()
