"""Docker backend: the workload rootfs imported as a local image, run through the docker SDK.

Containers get no network, drop every capability, cannot gain privileges, have a read-only
root with a writable /data bind mount (same host storage as native and the VM's disk file),
and pids, memory and CPU limits equal to the VM's size.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import psutil
from docker.models.containers import Container

from vmvc.agent.protocol import AgentError, ReadyInfo, split_framed, wait_ready
from vmvc.backends.base import (
    Availability,
    Backend,
    Check,
    Instance,
    InstanceSpec,
    Leftover,
    Progress,
    SyscallScope,
)
from vmvc.backends.container_labels import (
    LABEL,
    LABEL_CONTROLLER,
    LABEL_IMAGE,
    LABEL_RUN,
    owned_leftover,
    owner_labels,
)
from vmvc.backends.container_limits import limits_from_host_config
from vmvc.backends.docker_engine import remote
from vmvc.backends.docker_engine.images import import_rootfs, ship_from_here, stream_import
from vmvc.backends.docker_engine.restart_log import follow_across_restarts
from vmvc.backends.memory import MIB, cgroup_memory
from vmvc.config import Config, HostSettings
from vmvc.hosts import is_local
from vmvc.image.build import Artefacts
from vmvc.paths import make_dirs

# The labels (shared by every container engine: vmvc.backends.container_labels) and the
# image import (images.py) stay importable from here for code written against this module.
__all__ = [
    "AGENT",
    "LABEL",
    "LABEL_CONTROLLER",
    "LABEL_IMAGE",
    "LABEL_RUN",
    "DockerBackend",
    "DockerInstance",
    "container_options",
    "import_rootfs",
    "owned_leftover",
    "owner_labels",
    "stream_import",
]

AGENT = "/opt/vmvc/agent"
# Every call into dockerd is bounded: a daemon that accepts and never answers must not hang
# vmvc. API calls get API_TIMEOUT_S; the probe (also run before every command) much less.
API_TIMEOUT_S = 120
PROBE_TIMEOUT_S = 5
REMOTE_PROBE_TIMEOUT_S = 30  # ssh handshake to another host first
_unanswered: set[str] = set()


def container_options(spec: InstanceSpec) -> dict[str, Any]:
    """Least privilege: what every vmvc container is created with."""
    return {
        "name": spec.name,
        "hostname": "vmvc-container",
        "labels": {**owner_labels(spec.run_id), **spec.labels},
        "network_mode": "none",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "read_only": True,
        "tmpfs": {"/tmp": "rw,mode=1777,size=64m"},
        "volumes": {str(spec.workdir / "data"): {"bind": "/data", "mode": "rw"}},
        "pids_limit": 512,
        "mem_limit": f"{spec.memory_mib}m",
        "memswap_limit": f"{spec.memory_mib}m",
        "nano_cpus": spec.vcpus * 1_000_000_000,
        "environment": {"LC_ALL": "C"},
        "restart_policy": {"Name": "on-failure", "MaximumRetryCount": 5}
        if spec.restart_on_crash
        else {"Name": "no"},
    }


class DockerInstance(Instance):
    backend = "docker"

    def __init__(
        self,
        client: docker.DockerClient,
        image: str,
        spec: InstanceSpec,
        *,
        on_this_host: bool = True,
    ) -> None:
        super().__init__()
        self.client = client
        # False: the engine is on another host (named /data volume, footprint from its
        # stats API, no pid here).
        self.on_this_host = on_this_host
        self.name = spec.name
        self.spec = spec
        options = self.create_options(spec)  # before t0: not part of the measured start
        self._t0 = time.monotonic()
        self.container: Container = client.containers.create(
            image, [AGENT, "idle"], detach=True, **options
        )
        self._created = time.monotonic()
        self.container.start()
        self._started = time.monotonic()
        self._reader = threading.Thread(target=self._pump, name=f"{self.name}-logs", daemon=True)
        self._reader.start()

    def create_options(self, spec: InstanceSpec) -> dict[str, Any]:
        """/data is a host directory bind-mounted (a remote host uses a named volume)."""
        options = container_options(spec)
        if self.on_this_host:
            make_dirs(spec.workdir / "data")
        else:
            options["volumes"] = remote.data_volume(self.client, spec)
        return options

    def _pump(self) -> None:
        if self.spec.restart_on_crash:
            # The plain follow stream ends at the first exit; under a restart policy the
            # log must keep collecting across restarts.
            follow_across_restarts(self.container, self.log)
            return
        try:
            for chunk in self.container.logs(stream=True, follow=True):
                self.log.feed(chunk)
        except docker.errors.DockerException:
            pass
        finally:
            self.log.close()

    def wait_ready(self, timeout: float) -> ReadyInfo:
        _, info = wait_ready(self.log, timeout)
        self.phases = {
            "create_s": self._created - self._t0,
            "start_s": self._started - self._created,
            "ready_s": max(0.0, info.at - self._started),
            "total_s": info.at - self._t0,
        }
        self.ready_info = info
        return info

    def run(self, workload: str, args: list[str], timeout: float) -> list[str]:
        task_id = self.next_task_id()
        result: dict[str, Any] = {}

        def execute() -> None:
            try:
                result["output"] = self.exec_output([AGENT, "run", task_id, workload, *args])
            except (docker.errors.DockerException, OSError) as exc:
                result["error"] = exc

        worker = threading.Thread(target=execute, name=f"{self.name}-{task_id}", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            raise AgentError(f"{workload} did not finish within {timeout:.0f} s")
        if "error" in result:
            raise AgentError(f"docker exec failed: {result['error']}")
        output = result["output"].decode(errors="replace")
        return split_framed(output, task_id)

    def exec_output(self, argv: list[str]) -> bytes:
        """Everything the command printed (a remote engine reads it differently)."""
        if not self.on_this_host:
            return remote.read_exec(self.container, argv)
        return bytes(self.container.exec_run(argv).output)

    def applied_limits(self) -> dict[str, str | int | float]:
        """What dockerd applied, read back with `docker inspect` (HostConfig); {} (unknown)
        if dockerd does not answer: a report line is not worth failing the trial for."""
        try:
            self.container.reload()
        except docker.errors.DockerException:
            return {}
        return limits_from_host_config(self.container.attrs.get("HostConfig") or {})

    def host_pid(self) -> int:
        if not self.on_this_host:
            raise RuntimeError("the container's pid is on another host")
        self.container.reload()
        return int(self.container.attrs["State"]["Pid"])

    def syscall_scope(self) -> SyscallScope | None:
        """Workloads run through `docker exec`: runc starts them from the container's shim,
        not from its init. Traced from the shim, counted from the agent's exec on (runc's own
        set-up calls are the engine's)."""
        if not self.on_this_host:
            return None
        try:
            shim = psutil.Process(self.host_pid()).ppid()
        except (psutil.Error, docker.errors.DockerException, KeyError, ValueError):
            return None
        return SyscallScope((shim,), counted_from_exec=AGENT, what="processes docker exec starts")

    def footprint(self) -> dict[str, float]:
        if not self.on_this_host:
            return remote.stats_footprint(self.container)
        self.container.reload()
        cid = self.container.id
        cgroups = [
            Path("/sys/fs/cgroup/memory/docker") / cid,
            Path("/sys/fs/cgroup/system.slice") / f"docker-{cid}.scope",
            Path("/sys/fs/cgroup/docker") / cid,
        ]
        # cgroup v1: RSS + cache (+ swap) - inactive file from memory.stat, not the fuzzy
        # memory.usage_in_bytes (vmvc.backends.memory.cgroup_v1_memory says why)
        measured = cgroup_memory(cgroups)
        figures = measured[0] if measured else {}
        cgroup_mib = figures.get("total_mib", 0.0)
        shim = shim_pss_mib(cid)
        return {
            **{f"cgroup_{k}": v for k, v in figures.items() if k in ("rss_mib", "cache_mib")},
            "cgroup_mib": cgroup_mib,
            "shim_pss_mib": shim,
            # The containerd shim lives outside the container's cgroup but exists only for it.
            "total_mib": cgroup_mib + shim,
        }

    def remove(self) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.container.remove(force=True)
        self._reader.join(timeout=5)


def shim_pss_mib(container_id: str) -> float:
    for proc in psutil.process_iter(["name", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            if "containerd-shim" in (proc.info["name"] or "") and container_id in " ".join(
                proc.info["cmdline"] or []
            ):
                return proc.memory_full_info().pss / MIB
    return 0.0


class DockerBackend(Backend):
    name = "docker"
    label = "container"
    kind = "container"
    display_name = "container (Docker)"

    def __init__(self, config: Config, host: HostSettings | None = None) -> None:
        self.config = config
        self.host = host
        # Another host's engine is the docker_host its [[hosts]] entry gives (None: that
        # host runs no containers); this machine's is the environment's (DOCKER_HOST).
        self.docker_host = host.docker_host if host is not None else None
        self.offered = is_local(host) or self.docker_host is not None
        # Reached through a URI of its own: the image is shipped, /data is a volume.
        self.remote = self.docker_host is not None
        # Lifecycle workloads read layers, processes and memory on this machine.
        self.on_this_host = not self.remote
        self._client: docker.DockerClient | None = None

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            timeout = remote.REMOTE_TIMEOUT_S if self.remote else API_TIMEOUT_S
            self._client = self._make_client(timeout)
        return self._client

    def _make_client(self, timeout: float) -> docker.DockerClient:
        if self.docker_host:
            return docker.DockerClient(
                base_url=self.docker_host, use_ssh_client=True, timeout=timeout
            )
        return docker.from_env(timeout=timeout)

    def probe(self) -> Availability:
        if not self.offered:
            return Availability(False, "no docker_host configured for this host", offered=False)
        where = self.docker_host or _local_socket()
        timeout = REMOTE_PROBE_TIMEOUT_S if self.remote else PROBE_TIMEOUT_S
        fix = "start it: dockerd --bridge=none --iptables=false & (or `make setup`)"
        if where in _unanswered:  # timed out once in this process: do not wait again
            silent = f"dockerd does not answer within {timeout} s on {where}"
            return Availability(False, silent, fix)
        quick: docker.DockerClient | None = None
        try:
            # A short timeout of its own: a hung daemon is reported within seconds.
            quick = self._make_client(timeout)
            quick.ping()
            version = quick.version().get("Version", "?")
        except Exception as exc:
            if _timed_out(exc):
                _unanswered.add(where)
                answer = f"does not answer within {timeout} s"
            else:
                answer = f"does not answer ({exc.__class__.__name__})"
            return Availability(False, f"dockerd {answer} on {where}", fix)
        finally:
            if quick is not None:
                quick.close()
        return Availability(True, f"dockerd {version}")

    def prepare(self, artefacts: Artefacts, progress: Progress) -> dict[str, Any]:
        """Import the rootfs as a local image (no registry); a second call is a cache hit.
        Another host's engine gets the image shipped from this machine's."""
        if self.remote:
            return ship_from_here(self.client, artefacts, progress)
        started = time.monotonic()
        try:
            image = self.client.images.get(artefacts.docker_tag)
            return {"docker_image": image.id, "docker_import_s": 0.0, "cache_hit": True}
        except docker.errors.ImageNotFound:
            pass
        progress(f"importing rootfs into docker as {artefacts.docker_tag}")
        image_id = import_rootfs(self.client, artefacts)
        return {
            "docker_image": image_id,
            "docker_import_s": round(time.monotonic() - started, 3),
            "cache_hit": False,
        }

    @contextlib.contextmanager
    def provision(self, artefacts: Artefacts, spec: InstanceSpec) -> Iterator[Instance]:
        if not self.remote:
            make_dirs(spec.workdir)
        instance: DockerInstance | None = None
        try:
            instance = DockerInstance(
                self.client, artefacts.docker_tag, spec, on_this_host=not self.remote
            )
            yield instance
        finally:
            if instance is not None:
                instance.remove()
            else:  # created but start failed: remove by name
                with contextlib.suppress(docker.errors.DockerException):
                    self.client.containers.get(spec.name).remove(force=True)
            if self.remote:
                remote.remove_data_volume(self.client, spec.name)
            shutil.rmtree(spec.workdir, ignore_errors=True)  # the runner made it here

    def environment(self) -> dict[str, Any]:
        info = self.client.info()
        version = self.client.version()
        facts = remote.host_facts(self.client, self.docker_host) if self.docker_host else {}
        return facts | {
            "docker_version": version.get("Version"),
            "docker_api_version": version.get("ApiVersion"),
            "docker_storage_driver": info.get("Driver"),
            "docker_cgroup_driver": info.get("CgroupDriver"),
            "docker_cgroup_version": info.get("CgroupVersion"),
            "containerd_version": (info.get("ContainerdCommit") or {}).get("ID"),
        }

    def leftovers(self, live_run_ids: set[str]) -> list[Leftover]:
        found = []
        for container in self.client.containers.list(all=True, filters={"label": LABEL_RUN}):
            item = owned_leftover(
                "container",
                container.name,
                container.labels,
                live_run_ids,
                remove=lambda c=container: c.remove(force=True),
            )
            if item is not None:
                found.append(item)
        # temporary images of the lifecycle workloads (the prepared image has no run id)
        for image in self.client.images.list(filters={"label": LABEL_RUN}):
            item = owned_leftover(
                "image",
                ", ".join(image.tags) or image.short_id,
                image.labels,
                live_run_ids,
                remove=lambda i=image: self.client.images.remove(i.id, force=True),
            )
            if item is not None:
                found.append(item)
        if self.remote:
            found += remote.volume_leftovers(self.client, live_run_ids)
        return found

    def checks(self, probe: bool, progress: Progress) -> list[Check]:
        """The engine; on another host also what it says about itself and the image there."""
        found = super().checks(probe, progress)
        if not self.remote or found[0].status != "ok":
            if self.remote:
                found[0].fix = found[0].fix or remote.SSH_FIX
            return found
        env = self.environment()
        found[0].detail = (
            f"dockerd {env.get('docker_version')} (API {env.get('docker_api_version')}) "
            f"on {env.get('docker_host_name')}: {env.get('docker_host_os')}, kernel "
            f"{env.get('docker_host_kernel')}, {env.get('docker_host_cores')} cores"
        )
        images = self.client.images.list(filters={"label": LABEL})
        found.append(
            Check(
                "docker image",
                "ok" if images else "warn",
                ", ".join(t for i in images for t in i.tags) or "none yet",
                "" if images else "the first bench ships it (docker save | load over ssh)",
            )
        )
        return found

    def clean_cache(self, dry_run: bool) -> list[str]:
        """The images vmvc imported or shipped into this engine (labelled `vmvc`)."""
        verb = "would remove" if dry_run else "removed"
        said = []
        for image in self.client.images.list(filters={"label": LABEL}):
            if not dry_run:
                with contextlib.suppress(docker.errors.NotFound):
                    self.client.images.remove(image.id, force=True)
            said.append(f"{verb} docker image {', '.join(image.tags) or image.id}")
        return said

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _local_socket() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def _timed_out(exc: BaseException) -> bool:
    """requests wraps a socket timeout in its own exceptions, docker-py in its own again."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TimeoutError) or "timed out" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False
