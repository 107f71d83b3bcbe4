"""Docker operations the lifecycle workloads need beyond one container's life.

Temporary images (imported from the rootfs, saved, loaded) are tagged with the owning
instance's vmvc name and labelled like every vmvc resource, and are removed by id by the
caller's `finally`. A log follower that survives restarts lets the restart policy bring a
container back while its LineLog keeps collecting.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from vmvc.agent.protocol import LineLog
from vmvc.backends.docker_engine.backend import LABEL, LABEL_IMAGE, LABEL_RUN, stream_import
from vmvc.image.build import Artefacts

# How often the restart-aware follower looks at the container while it is not running.
RESTART_POLL_S = 0.02
_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z$")


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
    changes = [
        f"LABEL {LABEL}=1",
        f"LABEL {LABEL_RUN}={run_id}",
        f"LABEL {LABEL_IMAGE}={artefacts.image_id}",
    ]
    return stream_import(client, argv, reference, changes)


def remove_image(client: docker.DockerClient, image: str) -> None:
    """Remove a temporary image by id or reference; missing is fine (already gone)."""
    with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.NotFound):
        client.images.remove(image, force=True, noprune=False)


def save_image(client: docker.DockerClient, image_id: str, target: Path) -> int:
    """`docker save` by id (no repository tags in the archive) streamed to a file; bytes."""
    image = client.images.get(image_id)
    with open(target, "wb") as handle:
        for chunk in image.save(chunk_size=1024 * 1024):
            handle.write(chunk)
    return target.stat().st_size


def load_image(client: docker.DockerClient, source: Path) -> str:
    """`docker load` of an archive (streamed from the file); returns the loaded image id."""
    with open(source, "rb") as handle:
        images = client.images.load(handle)
    if not images:
        raise RuntimeError(f"docker load of {source.name} reported no image")
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
            total += allocated_bytes(directory)
    if seen:
        result["layer_bytes"] = float(total)
    return result


def allocated_bytes(root: Path) -> int:
    """Blocks allocated to a tree (like `du -sx --block-size=1`), not following mounts."""
    try:
        device = root.stat().st_dev
    except OSError:
        return 0
    total = 0
    for directory, subdirs, files in os.walk(root):
        for name in list(subdirs):
            path = Path(directory) / name
            with contextlib.suppress(OSError):
                if path.lstat().st_dev != device:
                    subdirs.remove(name)  # the overlay's merged mount point
        for name in [*files, *subdirs]:
            with contextlib.suppress(OSError):
                total += (Path(directory) / name).lstat().st_blocks * 512
    with contextlib.suppress(OSError):
        total += root.lstat().st_blocks * 512
    return total


def engine_time(text: str) -> float | None:
    """Docker's RFC 3339 time (nanoseconds, Z) as epoch seconds; None for the zero time."""
    match = _TIMESTAMP.match(text.strip())
    if not match or text.startswith("0001-"):
        return None
    whole = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    fraction = float(match.group(2)) if match.group(2) else 0.0
    return whole.timestamp() + fraction


def container_state(container: Container) -> dict[str, Any] | None:
    """The container's State block, or None when it no longer exists."""
    try:
        container.reload()
    except docker.errors.NotFound:
        return None
    return dict(container.attrs.get("State") or {})


def follow_across_restarts(container: Container, log: LineLog) -> None:
    """Feed the container's output into `log` across restarts; close it when it stops for good.

    Docker's follow stream ends when the main process exits, even when the restart policy
    will start it again. This reopens the stream for each new run, from the previous run's
    exit time (so no line is read twice or missed), and stamps every line with the engine's
    own timestamp converted to the monotonic clock: the line's arrival time must not
    include the delay before the stream was reopened.
    """
    since: float | None = None
    try:
        while True:
            for text, at in _timestamped_lines(container, since):
                log.feed(text.encode() + b"\n", at=at)
            started = (container.attrs.get("State") or {}).get("StartedAt", "")
            while True:  # wait for the next run, or for the end
                state = container_state(container)
                if state is None or state.get("Status") in ("exited", "dead", "removing"):
                    return
                if state.get("Status") == "running" and state.get("StartedAt") != started:
                    since = engine_time(state.get("FinishedAt", ""))
                    break
                time.sleep(RESTART_POLL_S)
    except docker.errors.DockerException:
        pass
    finally:
        log.close()


def _timestamped_lines(container: Container, since: float | None) -> Iterator[tuple[str, float]]:
    """(text, monotonic time) of each output line of the current run, following it."""
    options: dict[str, Any] = {"stream": True, "follow": True, "timestamps": True}
    if since:
        options["since"] = since
    container.reload()  # the StartedAt this stream belongs to
    buffer = b""
    for chunk in container.logs(**options):
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for raw in complete:
            stamp, _, text = raw.decode("utf-8", errors="replace").partition(" ")
            wall = engine_time(stamp)
            at = time.monotonic() if wall is None else _to_monotonic(wall)
            yield text.rstrip("\r"), at
    if buffer:
        stamp, _, text = buffer.decode("utf-8", errors="replace").partition(" ")
        yield text, time.monotonic()


def _to_monotonic(wall: float) -> float:
    """A wall-clock time of this host as the monotonic clock the LineLog uses."""
    return time.monotonic() - (time.time() - wall)
