"""A bubblewrap sandbox of vmvc's shared workload image: kind "sandbox", label "bwrap".

It uses only vmvc's public protocol: the Backend / Instance classes of `vmvc.backends.base`, the
agent protocol of `vmvc.agent.protocol` (ready marker, framed task output) and the image's
`Artefacts` (`rootfs`, `image_id`). Like vmvc's native baseline it runs the image's agent in
`serve` mode from the very same root filesystem, so the binaries are identical; unlike it, the
sandbox gets every namespace bwrap can make (user, mount, PID, IPC, UTS, cgroup and network),
no capabilities, a root filesystem that is read-only and a private /data.

What the sandbox sees (bwrap's arguments, `sandbox_argv`):
- `/` is the image's rootfs, bind-mounted read-only; `/data` is the instance's own directory
  under its workdir (fio's file lives there); /proc of its own PID namespace, a minimal /dev,
  a tmpfs /tmp; no /sys and no network (`--unshare-all` includes `--unshare-net`: a private
  loopback device and no other interface).
- `--die-with-parent`: if vmvc dies (even `kill -9`), the kernel kills the sandbox;
  `--new-session`: the agent cannot reach vmvc's terminal.
- `--clearenv`: the agent gets PATH, LC_ALL and the run id only.

No CPU or memory limit is set, as for the native baseline: bwrap does not make cgroups.
"""

from __future__ import annotations

import contextlib
import os
import re
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
from vmvc.image.build import Artefacts

# Marks the sandbox's processes as this backend's and says which run owns them (for
# `vmvc clean`); a name of its own so vmvc's native backend does not claim them too.
RUN_ID_ENV = "VMVC_BWRAP_RUN_ID"
RUN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")  # what it carries is printed by `vmvc clean`
AGENT = "/opt/vmvc/agent"
SANDBOX_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
LOCAL_HOST = "local"  # the name vmvc gives this machine among its hosts
PROBE_SECONDS = 10.0
STOP_SECONDS = 5.0
MIB = 2**20


def sandbox_argv(rootfs: Path, data: Path, run_id: str, hostname: str) -> list[str]:
    """bwrap's command line for one instance: the agent in `serve` mode, reading stdin."""
    return [
        "bwrap",
        "--unshare-all",  # user, IPC, PID, network, UTS and cgroup namespaces
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--ro-bind",
        str(rootfs),
        "/",
        "--bind",
        str(data),
        "/data",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
        "--hostname",
        hostname,
        "--clearenv",
        "--setenv",
        "PATH",
        SANDBOX_PATH,
        "--setenv",
        "LC_ALL",
        "C",
        "--setenv",
        RUN_ID_ENV,
        run_id,
        "--chdir",
        "/",
        "--",
        AGENT,
        "serve",
    ]


def process_tree_memory(pid: int) -> dict[str, float]:
    """PSS, USS and RSS of bwrap and everything under it, MiB; `total_mib` is the PSS sum
    (the figure vmvc compares: shared pages are charged proportionally)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    pss = uss = rss = 0
    for proc in processes:
        with contextlib.suppress(psutil.Error):
            info = proc.memory_full_info()
            pss, uss, rss = pss + info.pss, uss + info.uss, rss + info.rss
    return {
        "pss_mib": pss / MIB,
        "uss_mib": uss / MIB,
        "rss_mib": rss / MIB,
        "total_mib": pss / MIB,
        "processes": float(len(processes)),
    }


def is_local(host: object | None) -> bool:
    """vmvc passes no host, or the host named "local", for this machine."""
    return host is None or getattr(host, "name", None) == LOCAL_HOST


def not_offered(reason: str) -> Availability:
    """Unavailable; where vmvc knows the distinction, "not offered on this host" (skipped
    and said, even when named) rather than "broken here"."""
    if "offered" in Availability.__dataclass_fields__:
        return Availability(False, reason, **{"offered": False})
    return Availability(False, reason)


class BwrapInstance(Instance):
    backend = "bwrap"

    def __init__(self, spec: InstanceSpec, rootfs: Path, data: Path) -> None:
        super().__init__()
        self.name = spec.name
        self._t0 = time.monotonic()
        self.process = subprocess.Popen(
            sandbox_argv(rootfs, data, spec.run_id, "vmvc-bwrap"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # bwrap itself carries the run id too, for `vmvc clean` after a crash
            env={"PATH": SANDBOX_PATH, "LC_ALL": "C", RUN_ID_ENV: spec.run_id},
            start_new_session=True,  # its own process group: teardown kills the whole tree
        )
        self._spawned = time.monotonic()
        self._reader = threading.Thread(target=self._pump, name=f"{self.name}-stdout", daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        for chunk in iter(lambda: stdout.read1(65536), b""):
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
        stdin = self.process.stdin
        assert stdin is not None
        try:
            stdin.write(command_line(task_id, workload, args).encode())
            stdin.flush()
        except BrokenPipeError:
            raise AgentError("the sandbox's agent exited") from None
        return collect_task(self.log, task_id, start, timeout)

    def footprint(self) -> dict[str, float]:
        return process_tree_memory(self.process.pid)

    def stop(self) -> None:
        """Ask the agent to exit; kill the sandbox if it does not within STOP_SECONDS."""
        if self.process.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                assert self.process.stdin is not None
                self.process.stdin.write(b"exit\n")
                self.process.stdin.close()
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                # bwrap is the group leader; everything inside dies with it (--die-with-parent
                # and the end of its PID namespace)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._reader.join(timeout=5)


def _bwrap_version() -> str:
    try:
        done = subprocess.run(
            ["bwrap", "--version"], capture_output=True, text=True, timeout=PROBE_SECONDS
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip().removeprefix("bubblewrap ") or "unknown"


class BwrapBackend(Backend):
    name = "bwrap"
    label = "bwrap"
    kind = "sandbox"
    display_name = "sandbox (bubblewrap)"

    def __init__(self, config: object, host: object | None = None) -> None:
        # vmvc passes its run configuration; this backend needs none of it (no limits).
        self.config = config
        self.host = host

    def probe(self) -> Availability:
        if not is_local(self.host):
            return not_offered("bwrap runs on the local host only")
        if shutil.which("bwrap") is None:
            return Availability(False, "bubblewrap is not installed", "apt-get install bubblewrap")
        # The exact namespaces a sandbox gets: a host that forbids user namespaces fails here.
        check = ["bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"]
        try:
            done = subprocess.run(check, capture_output=True, text=True, timeout=PROBE_SECONDS)
        except subprocess.TimeoutExpired:
            return Availability(False, f"bwrap did not start a sandbox within {PROBE_SECONDS} s")
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
            return Availability(
                False,
                f"bwrap cannot make a sandbox here: {reason}",
                "run vmvc as root, or allow unprivileged user namespaces "
                "(sysctl kernel.unprivileged_userns_clone=1)",
            )
        return Availability(
            True, "bubblewrap sandbox: every namespace incl. network, read-only rootfs"
        )

    def prepare(self, artefacts: Artefacts, progress: Any) -> dict[str, Any]:
        """Nothing to derive: the sandbox runs the image's rootfs as it is."""
        return {"rootfs": str(artefacts.rootfs)}

    @contextlib.contextmanager
    def provision(self, artefacts: Artefacts, spec: InstanceSpec) -> Iterator[Instance]:
        data = spec.workdir / "data"
        data.mkdir(mode=0o700, parents=True, exist_ok=False)
        spec.workdir.chmod(0o700)
        instance: BwrapInstance | None = None
        try:
            instance = BwrapInstance(spec, artefacts.rootfs, data)
            yield instance
        finally:
            if instance is not None:
                instance.stop()
            shutil.rmtree(spec.workdir, ignore_errors=True)

    def environment(self) -> dict[str, Any]:
        return {
            "bwrap_version": _bwrap_version(),
            "bwrap_isolation": "bubblewrap: user, mount, PID, IPC, UTS, cgroup and network "
            "namespaces; no capabilities; read-only rootfs; no CPU or memory limit",
        }

    def leftovers(self, live_run_ids: set[str]) -> list[Leftover]:
        """Sandbox processes of any run (found by the run id they carry in their environment)."""
        found = []
        for proc in psutil.process_iter(["pid", "name", "uids"]):
            with contextlib.suppress(psutil.Error):
                if proc.info["uids"].real != os.getuid():
                    continue  # anybody can set the variable; only ours are ours to remove
                run_id = proc.environ().get(RUN_ID_ENV, "")
                if RUN_ID.match(run_id):
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
