"""Podman's image store as the lifecycle operations (vmvc.backends.podman_engine.operations)
use it: temporary images imported from the rootfs, saved, loaded, listed and removed.

Instances never need an image (they run the rootfs directory, `--rootfs DIR:O`); only the
lifecycle workloads make images, always temporary ones. Each is tagged with the owning
instance's vmvc name and labelled like a vmvc container (run id, controller, and which
backend made it: podman's store is shared by the podman and gVisor backends), so the
backend's `leftovers` find what a dead run left and `vmvc clean` removes it.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from vmvc.backends.capabilities import ByteSink, ByteSource
from vmvc.backends.container_labels import LABEL_IMAGE, owner_labels
from vmvc.backends.podman_engine.cli import Engine, PodmanError, last_line
from vmvc.backends.podman_engine.container import ENGINE_LABEL

IMAGE_TIMEOUT_S = 900.0  # an import, save or load of the whole image
TAR_EXIT_TIMEOUT_S = 60.0
_IMAGE_ID = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$")


@dataclass(frozen=True)
class ImageEntry:
    """One image in podman's store as vmvc reads it."""

    image_id: str  # 64 hex digits, without "sha256:"
    names: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    size: int | None = None  # bytes, as `podman images` and `podman image inspect` give it

    @property
    def name(self) -> str:
        return self.names[0] if self.names else self.image_id[:12]


def temp_tag(instance_name: str, suffix: str) -> str:
    """A unique image reference for a temporary image: repository names must be lowercase.
    The `localhost/` registry is where podman puts a local image's short name anyway; named
    in full, the name is never looked up in a registry."""
    return f"localhost/{instance_name.lower()}:{suffix}"


def image_labels(run_id: str, image_id: str, backend: str) -> dict[str, str]:
    """A temporary image's labels: a vmvc container's identity, the vmvc image it holds."""
    return {**owner_labels(run_id), LABEL_IMAGE: image_id, ENGINE_LABEL: backend}


def import_rootfs_as(
    engine: Engine,
    rootfs: Path,
    reference: str,
    labels: dict[str, str],
    extra_dir: Path | None = None,
    timeout: float = IMAGE_TIMEOUT_S,
) -> str:
    """`tar -c . | podman import - reference` of the rootfs, labelled; returns the image id.

    Streamed (no tarball of our own on disk). `extra_dir` adds its files at the image root:
    a unique file gives the image a layer no other image shares, so removing and loading it
    again really recreates the layer. A tar that fails makes the import fail: a truncated
    stream is still a valid tar, so the image made from it is removed.
    """
    argv = ["tar", "--numeric-owner", "-c", "-C", str(rootfs), "."]
    if extra_dir is not None:
        argv += ["-C", str(extra_dir), *sorted(p.name for p in extra_dir.iterdir())]
    changes: list[str] = []
    for key, value in sorted(labels.items()):
        changes += ["--change", f"LABEL {key}={value}"]
    tar = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert tar.stdout is not None
    try:
        output = engine.stream(
            "import", "--quiet", *changes, "-", reference, stdin=tar.stdout, timeout=timeout
        )
    except BaseException:
        tar.kill()
        raise
    finally:
        tar.stdout.close()  # podman holds its own copy of the pipe
        stderr = b""
        try:  # podman read to the end: tar is done writing and exits by itself
            _, stderr = tar.communicate(timeout=TAR_EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            tar.kill()
            tar.wait()
    if tar.returncode != 0:
        with contextlib.suppress(PodmanError):
            remove_image(engine, reference)  # made from a partial stream: never trusted
        detail = last_line(stderr.decode(errors="replace"))
        raise PodmanError(f"tar of the rootfs failed (exit {tar.returncode}): {detail}")
    return parse_image_id(output, "podman import")


def parse_image_id(text: str, what: str) -> str:
    """The image id a podman command printed last (`podman import --quiet`: only the id)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    found = _IMAGE_ID.match(lines[-1]) if lines else None
    if found is None:
        raise PodmanError(f"{what} printed no image id ({last_line(text)})")
    return found.group(1)


def inspect_image(engine: Engine, reference: str) -> ImageEntry:
    return parse_image_inspect(engine.call("image", "inspect", reference))


def parse_image_inspect(text: str) -> ImageEntry:
    """`podman image inspect REF` output (a JSON list of one image)."""
    try:
        entry = json.loads(text)[0]
        return ImageEntry(
            image_id=str(entry["Id"]),
            names=tuple(entry.get("RepoTags") or ()),
            labels=dict((entry.get("Config") or {}).get("Labels") or entry.get("Labels") or {}),
            size=int(entry["Size"]) if entry.get("Size") is not None else None,
        )
    except (ValueError, LookupError, TypeError) as exc:
        raise PodmanError(f"podman image inspect gave no image ({exc})") from None


def list_images(engine: Engine, label: str) -> list[ImageEntry]:
    """Images carrying `label` (any value), intermediate ones included."""
    return parse_images(
        engine.call("images", "--all", "--filter", f"label={label}", "--format", "json")
    )


def parse_images(text: str) -> list[ImageEntry]:
    """`podman images --format json`: id, names and labels of each image."""
    try:
        entries = json.loads(text or "[]")
    except ValueError as exc:
        raise PodmanError(f"podman images gave no JSON ({exc})") from None
    return [
        ImageEntry(
            image_id=str(entry.get("Id", "")),
            names=tuple(entry.get("Names") or ()),
            labels=dict(entry.get("Labels") or {}),
            size=entry.get("Size"),
        )
        for entry in entries or []
    ]


def remove_image(engine: Engine, image: str) -> None:
    """`podman rmi --force` by id or reference (containers using it go with it); an image
    that is not there (never made, already removed) is no error."""
    engine.call("rmi", "--force", "--ignore", image)


def save_image(engine: Engine, image_id: str, sink: ByteSink) -> None:
    """`podman save` by id (no repository tags in the archive), docker-archive format
    (uncompressed: compression is the workload's), streamed into a sink."""
    engine.stream(
        "save", "--format", "docker-archive", image_id, sink=sink, timeout=IMAGE_TIMEOUT_S
    )


def load_image(engine: Engine, source: ByteSource) -> str:
    """`podman load` of an archive fed from `source`; returns the loaded image's id."""
    output = engine.stream("load", "--quiet", source=source, timeout=IMAGE_TIMEOUT_S)
    loaded = parse_loaded(output)
    by_id = _IMAGE_ID.match(loaded)
    return by_id.group(1) if by_id else inspect_image(engine, loaded).image_id


def parse_loaded(text: str) -> str:
    """What `podman load` says it loaded ("Loaded image: REF" or "Loaded image(s): REF")."""
    for line in text.splitlines():
        head, _, loaded = line.partition(":")
        if head.strip().startswith("Loaded image") and loaded.strip():
            return loaded.strip().split(",")[0].strip()
    raise PodmanError(f"podman load reported no image ({last_line(text)})")
