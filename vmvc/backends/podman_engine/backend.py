"""Podman backend: daemonless containers from the shared rootfs, with the Docker container's
limits and least privilege.

Podman runs the image's rootfs directory itself (`--rootfs DIR:O`: an overlay whose upper
layer podman throws away with the container), so the container sees byte for byte what the
Docker container, the VM's disk and native see, with no image store in between. Each
instance is two podman commands (`podman create`, then `podman start --attach --interactive`):
the agent runs in `serve` mode and reads its commands on stdin, so no `podman exec` process
per workload. The per-container monitor (conmon) stays outside the container's cgroup but
exists only for it: the footprint counts it, as Docker's counts containerd's shim.

The OCI runtime is podman's default (runc or crun) unless a subclass names another: the
gVisor backend (vmvc.backends.gvisor_engine) is this backend with `runsc` as the runtime.
"""

from __future__ import annotations

import contextlib
import json
import resource
import shutil
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
    BackendKind,
    Instance,
    InstanceSpec,
    Leftover,
    Progress,
    SyscallScope,
)
from vmvc.backends.capabilities import Capability
from vmvc.backends.container_labels import LABEL_RUN, owned_leftover, owner_labels
from vmvc.backends.container_limits import limits_from_host_config
from vmvc.backends.memory import MIB, cgroup_memory, process_tree_memory
from vmvc.backends.podman_engine.cli import (
    ContainerState,
    Engine,
    PodmanError,
    global_options,
    installed,
    parse_inspect,
    parse_ps,
    parse_version,
)
from vmvc.config import Config, HostSettings
from vmvc.hosts import is_local
from vmvc.image.build import Artefacts
from vmvc.paths import make_dirs

AGENT = "/opt/vmvc/agent"
PROBE_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 30.0
CGROUP_ROOTS = (Path("/sys/fs/cgroup/memory"), Path("/sys/fs/cgroup"))
ENGINE_LABEL = "vmvc.engine"  # which vmvc backend made a container in podman's store


def create_argv(spec: InstanceSpec, rootfs: Path) -> list[str]:
    """`podman create` arguments: what `vmvc.backends.docker_engine.backend.container_options`
    gives a Docker container (no network, no capabilities, no new privileges, read-only root,
    a private /tmp, /data bind-mounted from the instance's workdir, the same pids, memory
    and CPU limits), the agent in `serve` mode with stdin open."""
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
        "--interactive",
        "--log-driver",
        "none",  # the agent's output is read from the attached stdout, never stored
    ]
    for key, value in sorted(labels.items()):
        argv += ["--label", f"{key}={value}"]
    # :O = an overlay on the directory; the cached rootfs is never written
    argv += ["--rootfs", f"{rootfs}:O", AGENT, "serve"]
    return argv


# RLIMIT_NPROC counts every process of the user (root) on the host; the container's own
# bound is its pids limit (512). A value near the host's is what Docker's containers get, but
# runc could not set one above 32768 here (EPERM at 65536 with a hard limit of 96365).
NPROC_CAP = 32768


def ulimit_options() -> list[str]:
    """nofile and nproc for the container. Podman's defaults (nofile 1048576, nproc the
    host's maximum) exceed the hard limits of a host that caps them (here nofile 20000) and
    runc fails with EPERM; Docker's containers inherit dockerd's limits, so podman's get
    this process's (the same on a host where one user starts both)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    _, nproc_hard = resource.getrlimit(resource.RLIMIT_NPROC)
    nproc = NPROC_CAP if nproc_hard == resource.RLIM_INFINITY else min(nproc_hard, NPROC_CAP)
    return ["--ulimit", f"nofile={soft}:{hard}", "--ulimit", f"nproc={nproc}:{nproc}"]


class PodmanInstance(Instance):
    def __init__(self, engine: Engine, backend: str, rootfs: Path, spec: InstanceSpec) -> None:
        super().__init__()
        self.engine = engine
        self.backend = backend
        self.name = spec.name
        self.spec = spec
        self.process: subprocess.Popen[bytes] | None = None
        argv = create_argv(spec, rootfs)  # before t0: not part of the measured start
        self._t0 = time.monotonic()
        self.engine.call(*argv)
        self._created = time.monotonic()
        self.process = subprocess.Popen(
            engine.argv("start", "--attach", "--interactive", spec.name),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C at vmvc's terminal is vmvc's to handle
        )
        self._reader = threading.Thread(target=self._pump, name=f"{self.name}-stdout", daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        pump(self.process.stdout, self.log)

    def wait_ready(self, timeout: float) -> ReadyInfo:
        _, info = wait_ready(self.log, timeout)
        self.phases = {
            "create_s": self._created - self._t0,
            "ready_s": max(0.0, info.at - self._created),
            "total_s": info.at - self._t0,
        }
        self.ready_info = info
        return info

    def run(self, workload: str, args: list[str], timeout: float) -> list[str]:
        assert self.process is not None and self.process.stdin is not None
        task_id = self.next_task_id()
        return run_served(self.process.stdin, self.log, task_id, workload, args, timeout)

    def state(self) -> ContainerState:
        return parse_inspect(self.engine.call("inspect", "--type", "container", self.name))

    def applied_limits(self) -> dict[str, str | int | float]:
        try:
            text = self.engine.call("inspect", "--type", "container", self.name)
            host_config = json.loads(text)[0].get("HostConfig") or {}
        except (PodmanError, ValueError, LookupError):
            return {}  # unknown; a report line is not worth failing the trial for
        return limits_from_host_config(host_config, engine="podman")

    def syscall_scope(self) -> SyscallScope | None:
        """Everything conmon started: runc's container init (the agent) or, under runsc,
        gVisor's Sentry and its gofer (the host calls the sandbox makes for the workload)."""
        conmon = self.state().conmon_pid
        try:
            children = tuple(p.pid for p in psutil.Process(conmon).children()) if conmon else ()
        except psutil.Error:
            return None
        return SyscallScope(children, what="the processes conmon started") if children else None

    def footprint(self) -> dict[str, float]:
        """The container's cgroup (as Docker's: RSS + cache - inactive file) plus conmon's
        PSS; without a cgroup to read, the PSS of conmon's whole process tree."""
        state = self.state()
        measured = None
        if state.cgroup_path:
            relative = state.cgroup_path.lstrip("/")
            measured = cgroup_memory([root / relative for root in CGROUP_ROOTS])
        monitor = 0.0
        if state.conmon_pid:
            with contextlib.suppress(psutil.Error):
                monitor = psutil.Process(state.conmon_pid).memory_full_info().pss / MIB
        if measured is None:
            tree = process_tree_memory(state.conmon_pid) if state.conmon_pid else {}
            return {"process_tree_pss_mib": tree.get("total_mib", 0.0), **tree}
        figures = measured[0]
        cgroup_mib = figures.get("total_mib", 0.0)
        return {
            **{f"cgroup_{k}": v for k, v in figures.items() if k in ("rss_mib", "cache_mib")},
            "cgroup_mib": cgroup_mib,
            "conmon_pss_mib": monitor,
            "total_mib": cgroup_mib + monitor,
        }

    def remove(self) -> None:
        """`podman rm --force` (the runtime kills the container at once); then the attached
        `podman start` ends with it."""
        with contextlib.suppress(PodmanError):
            self.engine.call("rm", "--force", "--time", "0", self.name, timeout=STOP_TIMEOUT_S)
        if self.process is not None:
            with contextlib.suppress(OSError, ValueError):
                assert self.process.stdin is not None
                self.process.stdin.close()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self._reader.join(timeout=5)


class PodmanBackend(Backend):
    name = "podman"
    label = "podman"
    kind: BackendKind = "container"
    display_name = "container (Podman)"
    capabilities = frozenset({Capability.ISOLATION_FACTS})

    def __init__(self, config: Config, host: HostSettings | None = None) -> None:
        self.config = config
        self.host = host
        self.engine = self.make_engine()
        self._info: dict[str, Any] | None = None

    def podman_info(self, timeout: float = PROBE_TIMEOUT_S) -> dict[str, Any]:
        """`podman info` (runtime, cgroups, storage), read once per backend: probe, prepare
        and the result's environment all ask. PodmanError or ValueError if unreadable."""
        if self._info is None:
            self._info = json.loads(self.engine.call("info", "--format", "json", timeout=timeout))
        return self._info

    def make_engine(self) -> Engine:
        """Podman's default OCI runtime (runc or crun, whichever podman picks)."""
        return Engine()

    def probe(self) -> Availability:
        if not is_local(self.host):
            return Availability(False, "podman runs on the local host only", offered=False)
        if not installed():
            return Availability(False, "podman is not installed", "apt-get install podman")
        try:
            info = self.podman_info()
        except (PodmanError, ValueError) as exc:
            return Availability(False, str(exc), "see `podman info`; `make setup` installs podman")
        runtime = (info.get("host") or {}).get("ociRuntime") or {}
        version = (info.get("version") or {}).get("Version", "?")
        return Availability(True, f"podman {version}, OCI runtime {runtime.get('name', '?')}")

    def prepare(self, artefacts: Artefacts, progress: Progress) -> dict[str, Any]:
        """Nothing to import: every container runs the rootfs directory (an overlay on it)."""
        runtime = self.runtime_facts()
        name = runtime.get(f"{self.name}_oci_runtime", "unknown")
        self.display_name = f"{type(self).display_name.rstrip(')')}, {name})"
        return {"rootfs": str(artefacts.rootfs), **runtime}

    def runtime_facts(self) -> dict[str, Any]:
        """The OCI runtime podman uses here, under this backend's name (the result's
        environment merges every backend's facts: podman's and gVisor's must not collide)."""
        try:
            info = self.podman_info()
        except (PodmanError, ValueError):
            return {"podman_oci_runtime": "unknown"}
        runtime = (info.get("host") or {}).get("ociRuntime") or {}
        lines = str(runtime.get("version") or "").splitlines()
        return {
            "podman_oci_runtime": runtime.get("name", "unknown"),
            "podman_oci_runtime_version": lines[0] if lines else "",
        }

    @contextlib.contextmanager
    def provision(self, artefacts: Artefacts, spec: InstanceSpec) -> Iterator[Instance]:
        make_dirs(spec.workdir / "data")
        # podman's store is shared by podman and gVisor containers: say whose it is
        spec.labels = {**spec.labels, ENGINE_LABEL: self.name}
        instance: PodmanInstance | None = None
        try:
            instance = PodmanInstance(self.engine, self.name, artefacts.rootfs, spec)
            yield instance
        finally:
            if instance is not None:
                instance.remove()
            else:  # create failed half-way: make sure no container of that name survives
                with contextlib.suppress(PodmanError):
                    self.engine.call("rm", "--force", "--time", "0", "--ignore", spec.name)
            shutil.rmtree(spec.workdir, ignore_errors=True)  # the runner made it here

    def environment(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"podman_global_options": " ".join(global_options())}
        with contextlib.suppress(PodmanError):
            facts |= parse_version(self.engine.call("version", "--format", "json"))
        with contextlib.suppress(PodmanError, ValueError):
            info = self.podman_info()
            host = info.get("host") or {}
            store = info.get("store") or {}
            facts |= {
                "podman_cgroup_manager": host.get("cgroupManager"),
                "podman_cgroup_version": host.get("cgroupVersion"),
                "podman_storage_driver": store.get("graphDriverName"),
                "podman_conmon": ((host.get("conmon") or {}).get("version") or "").split(",")[0],
            }
        return facts | self.runtime_facts()

    def leftovers(self, live_run_ids: set[str]) -> list[Leftover]:
        try:
            text = self.engine.call("ps", "-a", "--filter", f"label={LABEL_RUN}", "--format=json")
            listed = parse_ps(text)
        except PodmanError:
            return []
        found = []
        for container in listed:
            item = owned_leftover(
                "container",
                container["name"],
                container["labels"],
                live_run_ids,
                remove=lambda name=container["id"]: self._remove(name),
            )
            if item is not None and self.owns(container["labels"]):
                found.append(item)
        return found

    def owns(self, labels: dict[str, str]) -> bool:
        """Podman's containers; the gVisor backend shares podman's store and claims its own."""
        return labels.get(ENGINE_LABEL, self.name) == self.name

    def _remove(self, name: str) -> None:
        self.engine.call("rm", "--force", "--time", "0", "--ignore", name)

    def engine_daemons(self) -> dict[str, int]:
        return {}  # daemonless: each container's conmon is counted in its footprint
