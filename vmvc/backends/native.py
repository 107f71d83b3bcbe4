"""Native baseline: the agent in a chroot of the very same rootfs, so the binaries are identical.

The chroot runs in a private mount namespace (`unshare --mount`): the rootfs is bind-mounted
read-only onto itself, and the data directory, /proc, /sys, /dev and a tmpfs /tmp are mounted
inside that namespace only. When the process exits the namespace and every mount in it vanish,
so nothing can leak onto the host.
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

from vmvc.agent.protocol import AgentError, ReadyInfo, collect_task, command_line, wait_ready
from vmvc.backends.base import Availability, Backend, Instance, InstanceSpec, Leftover
from vmvc.backends.memory import process_tree_memory
from vmvc.config import Config, HostSettings
from vmvc.image.build import Artefacts

# Fixed script; paths arrive as positional parameters, never interpolated into the text.
NAMESPACE_SCRIPT = r"""
set -e
root=$1; data=$2; shift 2
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
mount --bind "$data" "$root/data"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=1777,size=64m tmpfs "$root/tmp"
exec chroot "$root" /opt/vmvc/agent "$@"
"""
RUN_ID_ENV = "VMVC_RUN_ID"


class NativeInstance(Instance):
    backend = "native"

    def __init__(self, spec: InstanceSpec, rootfs: Path) -> None:
        super().__init__()
        self.name = spec.name
        self.spec = spec
        data = spec.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", RUN_ID_ENV: spec.run_id, "LC_ALL": "C"}
        self._t0 = time.monotonic()
        self.process = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
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
        for chunk in iter(lambda: self.process.stdout.read1(65536), b""):  # type: ignore[union-attr]
            self.log.feed(chunk)
        self.log.close()

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
        start = len(self.log)
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(command_line(task_id, workload, args).encode())
            self.process.stdin.flush()
        except BrokenPipeError:
            raise AgentError("native agent exited") from None
        return collect_task(self.log, task_id, start, timeout)

    def footprint(self) -> dict[str, float]:
        return process_tree_memory(self.process.pid)

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


class NativeBackend(Backend):
    name = "native"
    display_name = "native"

    def __init__(self, config: Config, host: HostSettings | None = None) -> None:
        self.config = config
        self.host = host

    def probe(self) -> Availability:
        if self.host is not None:
            return Availability(False, "native runs only on the local host")
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
        return Availability(True, "chroot of the workload rootfs in a private mount namespace")

    @contextlib.contextmanager
    def provision(self, artefacts: Artefacts, spec: InstanceSpec) -> Iterator[Instance]:
        spec.workdir.mkdir(parents=True, exist_ok=True)
        instance: NativeInstance | None = None
        try:
            instance = NativeInstance(spec, artefacts.rootfs)
            yield instance
        finally:
            if instance is not None:
                instance.stop()
            shutil.rmtree(spec.workdir, ignore_errors=True)

    def environment(self) -> dict[str, Any]:
        return {"native_isolation": "chroot + private mount namespace"}

    def leftovers(self, live_run_ids: set[str]) -> list[Leftover]:
        found = []
        for proc in psutil.process_iter(["pid", "name"]):
            with contextlib.suppress(psutil.Error):
                run_id = proc.environ().get(RUN_ID_ENV)
                if run_id:
                    found.append(
                        Leftover(
                            "process",
                            f"pid {proc.pid} ({proc.info['name']})",
                            run_id,
                            run_id in live_run_ids,
                            remove=lambda p=proc: p.kill(),
                        )
                    )
        return found
