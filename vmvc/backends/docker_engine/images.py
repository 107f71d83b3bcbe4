"""The workload image in an engine: imported from the rootfs (`tar | docker import`), or
shipped to another host's engine with the engine's own save/load."""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import docker
import docker.errors

from vmvc.backends.base import Progress
from vmvc.backends.container_labels import LABEL, LABEL_IMAGE
from vmvc.image.build import Artefacts

IMPORT_TIMEOUT_S = 900
SaveStream = Callable[[], Iterable[bytes]]


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


def ship_from_here(
    remote: docker.DockerClient, artefacts: Artefacts, progress: Progress
) -> dict[str, Any]:
    """The image into another host's engine: saved from this machine's engine (imported
    there first if needed) so both hosts run byte-identical layers; without an engine here,
    imported into the other one from the rootfs."""
    local: docker.DockerClient | None = None
    try:
        local = _local_client()
        if local is None:
            return _import_there(remote, artefacts, progress)
        if not local.images.list(name=artefacts.docker_tag):
            progress(f"importing rootfs into local docker as {artefacts.docker_tag}")
            import_rootfs(local, artefacts)
        image = local.images.get(artefacts.docker_tag)
        facts = ship_image(
            remote,
            artefacts.docker_tag,
            lambda: image.save(named=artefacts.docker_tag),
            progress,
        )
        facts["same_image_id_as_local"] = facts["docker_image"] == image.id
        return facts | {"shipped_by": "save/load"}
    finally:
        if local is not None:
            local.close()


def _import_there(
    remote: docker.DockerClient, artefacts: Artefacts, progress: Progress
) -> dict[str, Any]:
    """Without an engine on this machine there is nothing to save: stream the rootfs into
    the remote engine instead (same files; the image id differs from other hosts' because
    an import stamps its own creation time)."""
    try:
        image_id = remote.images.get(artefacts.docker_tag).id
        return {"docker_image": image_id, "shipped": False, "shipped_by": "import"}
    except docker.errors.ImageNotFound:
        pass
    progress(f"importing rootfs into the remote docker as {artefacts.docker_tag}")
    started = time.monotonic()
    image_id = import_rootfs(remote, artefacts)
    return {
        "docker_image": image_id,
        "docker_ship_s": round(time.monotonic() - started, 3),
        "shipped": True,
        "shipped_by": "import",
    }


def _local_client() -> docker.DockerClient | None:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException:
        return None
    return client
