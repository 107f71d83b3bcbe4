"""Docker backend: the workload rootfs imported as a local image, run through the docker SDK.

Containers get no network, drop every capability, cannot gain privileges, have a read-only
root with a writable /data bind mount (same host storage as native and the VM's disk file),
and pids, memory and CPU limits equal to the VM's size.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import psutil
from docker.models.containers import Container

from vmvc.agent.protocol import AgentError, ReadyInfo, split_framed, wait_ready
from vmvc.backends.base import Availability, Backend, Instance, InstanceSpec, Leftover, Progress
from vmvc.backends.docker_engine.restart_log import follow_across_restarts
from vmvc.backends.memory import MIB, cgroup_memory
from vmvc.config import Config, HostSettings
from vmvc.image.build import Artefacts
from vmvc.liveness import controller_id
from vmvc.paths import SAFE_NAME, make_dirs

LABEL = "vmvc"
LABEL_RUN = "vmvc.run-id"
LABEL_IMAGE = "vmvc.image-id"
LABEL_CONTROLLER = "vmvc.controller"  # which machine's vmvc made it (see liveness.controller_id)
LABEL_PID = "vmvc.pid"
AGENT = "/opt/vmvc/agent"
# Every call into dockerd is bounded: a daemon that accepts and never answers must not hang
# vmvc. API calls get API_TIMEOUT_S; the probe (also run before every command) much less.
API_TIMEOUT_S = 120
PROBE_TIMEOUT_S = 5
REMOTE_PROBE_TIMEOUT_S = 30  # ssh handshake to another host first
_unanswered: set[str] = set()
IMPORT_TIMEOUT_S = 900


def owner_labels(run_id: str) -> dict[str, str]:
    """What makes a container or volume vmvc's: an image's `vmvc` label is inherited by any
    container made from it, so identity is the run id plus the controller that made it."""
    return {
        LABEL: "1",
        LABEL_RUN: run_id,
        LABEL_CONTROLLER: controller_id(),
        LABEL_PID: str(os.getpid()),
    }


def owned_leftover(
    kind: str, name: str, labels: dict[str, str], live: set[str], remove: Callable[[], None]
) -> Leftover | None:
    """A Leftover for a labelled resource, or None when the labels do not make it vmvc's."""
    run_id = labels.get(LABEL_RUN, "")
    if not SAFE_NAME.match(run_id) or LABEL_CONTROLLER not in labels:
        return None
    controller = labels[LABEL_CONTROLLER]
    owner = "" if controller == controller_id() else f"controller {controller[:16]}"
    return Leftover(kind, name, run_id, run_id in live, remove=remove, owner=owner)


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

    def __init__(self, client: docker.DockerClient, image: str, spec: InstanceSpec) -> None:
        super().__init__()
        self.client = client
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
        make_dirs(spec.workdir / "data")
        return container_options(spec)

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
        return bytes(self.container.exec_run(argv).output)

    def host_pid(self) -> int:
        self.container.reload()
        return int(self.container.attrs["State"]["Pid"])

    def footprint(self) -> dict[str, float]:
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
        self._client: docker.DockerClient | None = None

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = self._make_client(API_TIMEOUT_S)
        return self._client

    def _make_client(self, timeout: float) -> docker.DockerClient:
        base_url = self.host.docker_host if self.host and self.host.docker_host else None
        if base_url:
            return docker.DockerClient(base_url=base_url, use_ssh_client=True, timeout=timeout)
        return docker.from_env(timeout=timeout)

    def probe(self) -> Availability:
        where = (self.host.docker_host if self.host else None) or _local_socket()
        timeout = PROBE_TIMEOUT_S if self.host is None else REMOTE_PROBE_TIMEOUT_S
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
        """Import the rootfs as a local image (no registry); a second call is a cache hit."""
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
        make_dirs(spec.workdir)
        instance: DockerInstance | None = None
        try:
            instance = DockerInstance(self.client, artefacts.docker_tag, spec)
            yield instance
        finally:
            if instance is not None:
                instance.remove()
            else:  # created but start failed: remove by name
                with contextlib.suppress(docker.errors.DockerException):
                    self.client.containers.get(spec.name).remove(force=True)
            shutil.rmtree(spec.workdir, ignore_errors=True)

    def environment(self) -> dict[str, Any]:
        info = self.client.info()
        version = self.client.version()
        return {
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
        return found

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def import_rootfs(
    client: docker.DockerClient, artefacts: Artefacts, timeout: float = IMPORT_TIMEOUT_S
) -> str:
    """`tar | docker import` of the rootfs through the SDK, streamed (no temporary tarball)."""
    return stream_import(
        client,
        ["tar", "-C", str(artefacts.rootfs), "--numeric-owner", "-c", "."],
        artefacts.docker_tag,
        [f"LABEL {LABEL}=1", f"LABEL {LABEL_IMAGE}={artefacts.image_id}"],
        timeout,
    )


def stream_import(
    client: docker.DockerClient,
    tar_argv: list[str],
    reference: str,
    changes: list[str],
    timeout: float = IMPORT_TIMEOUT_S,
) -> str:
    """`tar_argv | docker import` under `reference`, bounded by `timeout`; returns the image
    id. A tar that fails makes the import fail: a truncated stream is still a valid tar."""
    repository, tag = reference.split(":")
    tar = subprocess.Popen(tar_argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    outcome: dict[str, BaseException] = {}

    def send() -> None:
        try:
            assert tar.stdout is not None
            client.api.import_image_from_stream(
                tar.stdout, repository=repository, tag=tag, changes=changes
            )
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=send, name="docker-import", daemon=True)
    worker.start()
    worker.join(timeout)
    stderr = b""
    try:
        if worker.is_alive():
            raise RuntimeError(f"docker import did not finish within {timeout:.0f} s")
        if "error" in outcome:
            raise outcome["error"]
    finally:
        if tar.poll() is None:
            tar.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            _, stderr = tar.communicate(timeout=10)
    if tar.returncode != 0:
        # The image was made from a partial stream: remove it, it must never be trusted.
        with contextlib.suppress(docker.errors.DockerException):
            client.images.remove(reference, force=True)
        detail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        raise RuntimeError(f"tar of the rootfs failed (exit {tar.returncode}): {detail[0]}")
    return str(client.images.get(reference).id)


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
