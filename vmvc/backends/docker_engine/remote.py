"""Docker on another host, through its own engine API over SSH (`docker_host = "ssh://..."`).

docker-py runs the system `ssh` client with `docker system dial-stdio` on the other side, so
keys, ports and host keys come from the user's ssh configuration (~/.ssh/config), and the
other host needs only sshd and the docker CLI. The image is shipped with the engine's own
save/load (`image.save()` here → `images.load()` there), which keeps its id: both hosts run
byte-identical layers. Instances differ from local ones in two ways the API forces:
/data is a named volume (a bind mount would name a directory of the other host that nobody
creates or removes), and the footprint comes from the stats API (no containerd shim: its
process is on the other host).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import docker
import docker.errors

from vmvc.backends.base import Instance, InstanceSpec, Leftover, Progress
from vmvc.backends.capabilities import Capability
from vmvc.backends.docker_engine.backend import (
    LABEL_RUN,
    DockerBackend,
    DockerInstance,
    container_options,
    import_rootfs,
    owned_leftover,
    owner_labels,
)
from vmvc.backends.memory import MIB
from vmvc.image.build import Artefacts

# Loading a 400 MB image over a slow link takes longer than docker-py's 60 s default.
REMOTE_TIMEOUT_S = 900
SaveStream = Callable[[], Iterable[bytes]]


def data_volume_name(instance: str) -> str:
    return f"{instance}-data"


class RemoteDockerInstance(DockerInstance):
    def create_options(self, spec: InstanceSpec) -> dict[str, Any]:
        """A labelled named volume as /data, made (and later removed) through the API."""
        name = data_volume_name(spec.name)
        self.client.volumes.create(name=name, driver="local", labels=owner_labels(spec.run_id))
        options = container_options(spec)
        options["volumes"] = {name: {"bind": "/data", "mode": "rw"}}
        return options

    def exec_output(self, argv: list[str]) -> bytes:
        """Read the exec stream to its end instead of letting docker-py close it: over an
        ssh:// connection that close writes to an ssh client which already exited and
        raises BrokenPipeError after the output has been read (and drops it)."""
        result = self.container.exec_run(argv, stream=True)
        return b"".join(result.output)

    def host_pid(self) -> int:
        raise RuntimeError("the container's pid is on another host")

    def footprint(self) -> dict[str, float]:
        """The container's memory cgroup as the engine reports it, without inactive file
        cache (what `docker stats` shows); the shim's memory is not visible from here."""
        try:
            stats = self.container.stats(stream=False, one_shot=True)
        except docker.errors.InvalidVersion:  # engines before API 1.41 sample twice
            stats = self.container.stats(stream=False)
        memory = stats.get("memory_stats") or {}
        usage = memory.get("usage")
        if usage is None:
            return {}
        detail = memory.get("stats") or {}
        inactive = detail.get("total_inactive_file", detail.get("inactive_file", 0))
        cgroup_mib = (usage - inactive) / MIB
        return {"cgroup_mib": cgroup_mib, "total_mib": cgroup_mib}


def ship_image(
    remote: docker.DockerClient, tag: str, save: SaveStream, progress: Progress
) -> dict[str, Any]:
    """Load `tag` into the remote engine from a `docker save` stream, unless it is there."""
    try:
        image = remote.images.get(tag)
        return {"docker_image": image.id, "docker_ship_s": 0.0, "shipped": False}
    except docker.errors.ImageNotFound:
        pass
    progress(f"shipping docker image {tag} (docker save | docker load over ssh)")
    started = time.monotonic()
    remote.images.load(save())
    try:
        image = remote.images.get(tag)
    except docker.errors.ImageNotFound:
        raise RuntimeError(f"docker load on the remote host did not create {tag}") from None
    return {
        "docker_image": image.id,
        "docker_ship_s": round(time.monotonic() - started, 3),
        "shipped": True,
    }


class RemoteDockerBackend(DockerBackend):
    """DockerBackend for `[[hosts]]`: the engine is reached at `docker_host` (ssh://...)."""

    # Instances run on another machine: this one's files, processes and memory say nothing
    # about them, so of the lifecycle operations only the facts from inside are offered.
    capabilities = frozenset({Capability.ISOLATION_FACTS})
    on_this_host = False

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            if not (self.host and self.host.docker_host):
                raise RuntimeError("a remote docker backend needs the host's docker_host")
            self._client = docker.DockerClient(
                base_url=self.host.docker_host, use_ssh_client=True, timeout=REMOTE_TIMEOUT_S
            )
        return self._client

    def prepare(self, artefacts: Artefacts, progress: Progress) -> dict[str, Any]:
        local: docker.DockerClient | None = None
        try:
            local = _local_client()
            if local is None:
                return self._import_here(artefacts, progress)
            if not local.images.list(name=artefacts.docker_tag):
                progress(f"importing rootfs into local docker as {artefacts.docker_tag}")
                import_rootfs(local, artefacts)
            image = local.images.get(artefacts.docker_tag)
            facts = ship_image(
                self.client,
                artefacts.docker_tag,
                lambda: image.save(named=artefacts.docker_tag),
                progress,
            )
            facts["same_image_id_as_local"] = facts["docker_image"] == image.id
            return facts | {"shipped_by": "save/load"}
        finally:
            if local is not None:
                local.close()

    def _import_here(self, artefacts: Artefacts, progress: Progress) -> dict[str, Any]:
        """Without an engine on this machine there is nothing to save: stream the rootfs
        into the remote engine instead (same files; the image id differs from other hosts'
        because an import stamps its own creation time)."""
        try:
            image_id = self.client.images.get(artefacts.docker_tag).id
            return {"docker_image": image_id, "shipped": False, "shipped_by": "import"}
        except docker.errors.ImageNotFound:
            pass
        progress(f"importing rootfs into the remote docker as {artefacts.docker_tag}")
        started = time.monotonic()
        image_id = import_rootfs(self.client, artefacts)
        return {
            "docker_image": image_id,
            "docker_ship_s": round(time.monotonic() - started, 3),
            "shipped": True,
            "shipped_by": "import",
        }

    @contextlib.contextmanager
    def provision(self, artefacts: Artefacts, spec: InstanceSpec) -> Iterator[Instance]:
        instance: RemoteDockerInstance | None = None
        try:
            instance = RemoteDockerInstance(self.client, artefacts.docker_tag, spec)
            yield instance
        finally:
            if instance is not None:
                instance.remove()
            else:  # created but start failed: remove by name
                with contextlib.suppress(docker.errors.DockerException):
                    self.client.containers.get(spec.name).remove(force=True)
            with contextlib.suppress(docker.errors.NotFound):
                self.client.volumes.get(data_volume_name(spec.name)).remove(force=True)
            shutil.rmtree(spec.workdir, ignore_errors=True)  # the runner made it here

    def environment(self) -> dict[str, Any]:
        env = super().environment()
        info = self.client.info()
        env.update(
            {
                "docker_host": self.host.docker_host if self.host else None,
                "docker_host_name": info.get("Name"),
                "docker_host_os": info.get("OperatingSystem"),
                "docker_host_kernel": info.get("KernelVersion"),
                "docker_host_cores": info.get("NCPU"),
                "docker_host_memory_mib": (info.get("MemTotal") or 0) // 2**20 or None,
            }
        )
        return env

    def leftovers(self, live_run_ids: set[str]) -> list[Leftover]:
        found = super().leftovers(live_run_ids)
        for volume in self.client.volumes.list(filters={"label": LABEL_RUN}):
            item = owned_leftover(
                "docker volume",
                volume.name,
                volume.attrs.get("Labels") or {},
                live_run_ids,
                remove=lambda v=volume: v.remove(force=True),
            )
            if item is not None:
                found.append(item)
        return found


def _local_client() -> docker.DockerClient | None:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException:
        return None
    return client
