"""One vmvc container in podman: how it is created, and its agent attached once started.

Shared by the backend's instances (vmvc.backends.podman_engine.backend) and the lifecycle
operations' definitions (vmvc.backends.podman_engine.operations), so a container defined by
a lifecycle workload is created exactly as every other vmvc podman container.
"""

from __future__ import annotations

import contextlib
import resource
import subprocess
import threading
from pathlib import Path
from typing import IO

from vmvc.agent.protocol import LineLog, pump
from vmvc.backends.base import InstanceSpec
from vmvc.backends.container_labels import owner_labels
from vmvc.backends.podman_engine.cli import Engine
from vmvc.backends.podman_engine.recovery import restart_options

AGENT = "/opt/vmvc/agent"
STOP_TIMEOUT_S = 30.0
ENGINE_LABEL = "vmvc.engine"  # which vmvc backend made a container or image in podman's store
# RLIMIT_NPROC counts every process of the user (root) on the host; the container's own
# bound is its pids limit (512). A value near the host's is what Docker's containers get, but
# runc could not set one above 32768 here (EPERM at 65536 with a hard limit of 96365).
NPROC_CAP = 32768


def claim(spec: InstanceSpec, backend: str) -> None:
    """Podman's store is shared by the podman and gVisor backends: label whose it is."""
    spec.labels = {**spec.labels, ENGINE_LABEL: backend}


def create_argv(
    spec: InstanceSpec, rootfs: Path | None = None, image: str | None = None
) -> list[str]:
    """`podman create` arguments: what `vmvc.backends.docker_engine.backend.container_options`
    gives a Docker container (no network, no capabilities, no new privileges, read-only root,
    a private /tmp, /data bind-mounted from the instance's workdir, the same pids, memory
    and CPU limits), the agent in `serve` mode with stdin open.

    The root is `rootfs` through an overlay (what every instance runs) or an `image` in
    podman's store (a lifecycle workload's derived image); exactly one of the two.
    """
    if (rootfs is None) == (image is None):
        raise ValueError("a podman container needs a rootfs or an image, not both")
    labels = {**owner_labels(spec.run_id), **spec.labels}
    argv = [
        "create",
        "--name",
        spec.name,
        "--hostname",
        "vmvc-container",
        "--network",
        "none",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--read-only",
        "--read-only-tmpfs=false",
        "--tmpfs",
        "/tmp:rw,mode=1777,size=64m",
        "--volume",
        f"{spec.workdir / 'data'}:/data:rw",
        "--pids-limit",
        "512",
        "--memory",
        f"{spec.memory_mib}m",
        "--memory-swap",
        f"{spec.memory_mib}m",
        "--cpus",
        str(spec.vcpus),
        "--env",
        "LC_ALL=C",
        *ulimit_options(),
        *io_options(spec),
    ]
    for key, value in sorted(labels.items()):
        argv += ["--label", f"{key}={value}"]
    # A restart_on_crash container's agent idles and runs each task by `podman exec`
    # (vmvc.backends.podman_engine.recovery); every other one serves on its stdin.
    mode = "idle" if spec.restart_on_crash else "serve"
    if rootfs is not None:
        # :O = an overlay on the directory; the cached rootfs is never written
        argv += ["--rootfs", f"{rootfs}:O", AGENT, mode]
    else:
        argv += [str(image), AGENT, mode]
    return argv


def io_options(spec: InstanceSpec) -> list[str]:
    """How vmvc talks to the agent. Ordinarily its stdin stays open for the attached
    `podman start` and its output is read from the attached stdout, never stored. A
    restart_on_crash container is restarted by podman's policy and not reattached: its
    output goes to a log file that outlives each run (vmvc.backends.podman_engine.recovery)."""
    if spec.restart_on_crash:
        return restart_options(spec)
    return ["--interactive", "--log-driver", "none"]


def ulimit_options() -> list[str]:
    """nofile and nproc for the container. Podman's defaults (nofile 1048576, nproc the
    host's maximum) exceed the hard limits of a host that caps them (here nofile 20000) and
    runc fails with EPERM; Docker's containers inherit dockerd's limits, so podman's get
    this process's (the same on a host where one user starts both)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    _, nproc_hard = resource.getrlimit(resource.RLIMIT_NPROC)
    nproc = NPROC_CAP if nproc_hard == resource.RLIM_INFINITY else min(nproc_hard, NPROC_CAP)
    return ["--ulimit", f"nofile={soft}:{hard}", "--ulimit", f"nproc={nproc}:{nproc}"]


def remove_container(engine: Engine, name: str) -> None:
    """`podman rm --force --time 0`: the runtime kills the container at once; a container
    that does not exist (never created, already removed) is no error."""
    engine.call("rm", "--force", "--time", "0", "--ignore", name, timeout=STOP_TIMEOUT_S)


class Attached:
    """`podman start --attach --interactive NAME`: the agent's stdin is this process's pipe,
    its stdout feeds `log` (a reader thread) until the container ends."""

    def __init__(self, engine: Engine, name: str, log: LineLog) -> None:
        self.process = subprocess.Popen(
            engine.argv("start", "--attach", "--interactive", name),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C at vmvc's terminal is vmvc's to handle
        )
        assert self.process.stdout is not None
        self._reader = threading.Thread(
            target=pump, args=(self.process.stdout, log), name=f"{name}-stdout", daemon=True
        )
        self._reader.start()

    @property
    def stdin(self) -> IO[bytes]:
        assert self.process.stdin is not None
        return self.process.stdin

    def end(self) -> None:
        """After the container was removed: the attached `podman start` ends with it (killed
        if it does not), and its output is read to the end."""
        with contextlib.suppress(OSError, ValueError):
            self.stdin.close()
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self._reader.join(timeout=5)
