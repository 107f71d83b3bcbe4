"""Docker on another host, through its own engine API over SSH (`docker_host = "ssh://..."`).

DockerBackend takes this path when its host gives a `docker_host`: the backend is the same
class, what differs is here. docker-py runs the system `ssh` client with `docker system
dial-stdio` on the other side, so keys, ports and host keys come from the user's ssh
configuration (~/.ssh/config), and the other host needs only sshd and the docker CLI. The
image is shipped with the engine's own save/load (images.ship_from_here), which keeps its
id: both hosts run byte-identical layers. Instances differ from local ones in two ways the
API forces: /data is a named volume (a bind mount would name a directory of the other host
that nobody creates or removes), and the footprint comes from the stats API (no containerd
shim: its process is on the other host).
"""

from __future__ import annotations

import contextlib
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from vmvc.backends.base import InstanceSpec, Leftover
from vmvc.backends.container_labels import LABEL_RUN, owned_leftover, owner_labels
from vmvc.backends.memory import MIB

# Loading a 400 MB image over a slow link takes longer than docker-py's 60 s default.
REMOTE_TIMEOUT_S = 900
SSH_FIX = "make `ssh` to the host work without a prompt (key and port in ~/.ssh/config)"
FOOTPRINT_METHOD = (
    "memory cgroup minus inactive file cache, from the engine's stats API "
    "(the containerd shim on that host is not counted)"
)


def data_volume_name(instance: str) -> str:
    return f"{instance}-data"


def data_volume(client: docker.DockerClient, spec: InstanceSpec) -> dict[str, Any]:
    """A labelled named volume as /data, made (and later removed) through the API."""
    name = data_volume_name(spec.name)
    client.volumes.create(name=name, driver="local", labels=owner_labels(spec.run_id))
    return {name: {"bind": "/data", "mode": "rw"}}


def remove_data_volume(client: docker.DockerClient, instance: str) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        client.volumes.get(data_volume_name(instance)).remove(force=True)


def read_exec(container: Container, argv: list[str]) -> bytes:
    """Read the exec stream to its end instead of letting docker-py close it: over an ssh://
    connection that close writes to an ssh client which already exited and raises
    BrokenPipeError after the output has been read (and drops it)."""
    result = container.exec_run(argv, stream=True)
    return b"".join(result.output)


def stats_footprint(container: Container) -> dict[str, float]:
    """The container's memory cgroup as the engine reports it, without inactive file cache
    (what `docker stats` shows); the shim's memory is not visible from here."""
    try:
        stats = container.stats(stream=False, one_shot=True)
    except docker.errors.InvalidVersion:  # engines before API 1.41 sample twice
        stats = container.stats(stream=False)
    memory = stats.get("memory_stats") or {}
    usage = memory.get("usage")
    if usage is None:
        return {}
    detail = memory.get("stats") or {}
    inactive = detail.get("total_inactive_file", detail.get("inactive_file", 0))
    cgroup_mib = (usage - inactive) / MIB
    return {"cgroup_mib": cgroup_mib, "total_mib": cgroup_mib}


def host_facts(client: docker.DockerClient, docker_host: str) -> dict[str, Any]:
    """What the other engine says about its host (the remote twin of environment.py)."""
    info = client.info()
    return {
        "docker_host": docker_host,
        "docker_host_name": info.get("Name"),
        "docker_host_os": info.get("OperatingSystem"),
        "docker_host_kernel": info.get("KernelVersion"),
        "docker_host_cores": info.get("NCPU"),
        "docker_host_memory_mib": (info.get("MemTotal") or 0) // 2**20 or None,
        "footprint_method": FOOTPRINT_METHOD,
    }


def volume_leftovers(client: docker.DockerClient, live_run_ids: set[str]) -> list[Leftover]:
    found = []
    for volume in client.volumes.list(filters={"label": LABEL_RUN}):
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
