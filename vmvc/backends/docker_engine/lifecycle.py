"""Docker image and layer helpers the lifecycle operations (vmvc.backends.docker_engine.
operations) need beyond one container's life.

Temporary images (imported from the rootfs, saved, loaded) are tagged with the owning
instance's vmvc name and labelled like every vmvc resource, and are removed by id by the
caller's `finally`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import docker
import docker.errors
from docker.models.containers import Container

from vmvc.backends.capabilities import ByteSink, ByteSource
from vmvc.backends.container_labels import LABEL_IMAGE, owner_labels
from vmvc.backends.disk_usage import tree_allocated_bytes
from vmvc.backends.docker_engine.images import stream_import
from vmvc.image.build import Artefacts


def temp_tag(instance_name: str, suffix: str) -> str:
    """A unique image reference for a temporary image: repository names must be lowercase."""
    return f"{instance_name.lower()}:{suffix}"


def import_rootfs_as(
    client: docker.DockerClient,
    artefacts: Artefacts,
    reference: str,
    run_id: str,
    extra_dir: Path | None = None,
) -> str:
    """`tar | docker import` of the rootfs under `reference`, labelled; returns the image id.

    `extra_dir` adds its files at the image root: a unique file gives the image a layer no
    other image shares, so removing and loading it again really recreates the layer.
    """
    argv = ["tar", "--numeric-owner", "-c", "-C", str(artefacts.rootfs), "."]
    if extra_dir is not None:
        argv += ["-C", str(extra_dir), *sorted(p.name for p in extra_dir.iterdir())]
    # The owner labels (run id and controller), as a container's: `vmvc clean` finds a
    # temporary image a killed run left (DockerBackend.leftovers).
    labels = {**owner_labels(run_id), LABEL_IMAGE: artefacts.image_id}
    changes = [f"LABEL {key}={value}" for key, value in labels.items()]
    return stream_import(client, argv, reference, changes)


def remove_image(client: docker.DockerClient, image: str) -> None:
    """Remove a temporary image by id or reference; missing is fine (already gone)."""
    with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.NotFound):
        client.images.remove(image, force=True, noprune=False)


def save_image(client: docker.DockerClient, image_id: str, sink: ByteSink) -> None:
    """`docker save` by id (no repository tags in the archive) streamed into a sink."""
    image = client.images.get(image_id)
    for chunk in image.save(chunk_size=1024 * 1024):
        sink.write(chunk)


def load_image(client: docker.DockerClient, source: ByteSource) -> str:
    """`docker load` of an archive streamed from `source`; returns the loaded image id.

    The body goes as chunks of unknown length (chunked transfer): a decompressor's pipe has
    no size, and a file object would make the HTTP client guess it from its descriptor.
    """
    images = client.images.load(iter(lambda: source.read(1024 * 1024), b""))
    if not images:
        raise RuntimeError("docker load reported no image")
    return str(images[0].id)


def writable_layer_bytes(client: docker.DockerClient, container: Container) -> dict[str, float]:
    """Bytes the container's own layers hold on the host.

    `layer_bytes`: blocks allocated under the container's overlay2 read-write and init layer
    directories (what creating the container wrote; its mount point is skipped). `size_rw`:
    the engine's own figure (`docker ps --size`), files changed in the writable layer only.
    """
    result: dict[str, float] = {}
    listed = client.api.containers(all=True, size=True, filters={"id": container.id})
    if listed:
        result["size_rw"] = float(listed[0].get("SizeRw") or 0)
    container.reload()
    data = (container.attrs.get("GraphDriver") or {}).get("Data") or {}
    layer_dirs = []
    upper = data.get("UpperDir")
    if upper:
        layer_dirs.append(Path(upper).parent)
        layer_dirs.append(Path(f"{Path(upper).parent}-init"))
    total = 0
    seen = False
    for directory in layer_dirs:
        if directory.is_dir():
            seen = True
            total += tree_allocated_bytes(directory)
    if seen:
        result["layer_bytes"] = float(total)
    return result
