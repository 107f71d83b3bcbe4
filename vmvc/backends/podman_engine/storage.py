"""What the host stores for one podman container's own data: its layer directories.

Found from what is mounted, not only from what podman's inspect says. For a container from
an image, the root is the overlay of its storage layer (inspect's `GraphDriver`). For a
`--rootfs DIR:O` container (every vmvc instance, and clone's) podman 4.3 still creates a
storage layer (`<name>-layer`: empty directories, never mounted), which inspect names, but
the root is an overlay podman mounts itself under its run root
(`overlay-containers/<id>/rootfs/` with `upper`, `work` and the `merge` mount point). The
container's OCI config names its root (`root.path`, the merged mount point); the host's
mount table gives that overlay's `upperdir` and `workdir`, whose common parent holds its
data. Both directories are the container's own and are counted (allocated blocks, mount
points skipped), as Docker's read-write and init layer directories are.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmvc.backends.capabilities import StoredBytes
from vmvc.backends.disk_usage import tree_allocated_bytes
from vmvc.backends.podman_engine.cli import Engine, PodmanError

MOUNTINFO = Path("/proc/self/mountinfo")
_ESCAPED = re.compile(r"\\([0-7]{3})")  # mountinfo writes space, tab, newline, \ as \ooo


@dataclass(frozen=True)
class Mount:
    """One line of /proc/PID/mountinfo (proc(5)): where, what file system, its options."""

    mount_point: str
    fstype: str
    options: dict[str, str] = field(default_factory=dict)  # the super block's: upperdir=...


def _unescape(text: str) -> str:
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 8)), text)


def parse_mountinfo(text: str) -> list[Mount]:
    """The mount table; lines that do not parse are skipped (they name no overlay of ours)."""
    mounts = []
    for line in text.splitlines():
        before, separator, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if not separator or len(fields) < 5 or len(tail) < 3:
            continue
        options = {}
        for option in tail[2].split(","):
            key, _, value = option.partition("=")
            options[key] = _unescape(value)
        mounts.append(Mount(_unescape(fields[4]), tail[0], options))
    return mounts


def root_path(oci_config: str) -> str:
    """The container's root as its OCI config (config.json) gives it to the runtime."""
    try:
        return str(json.loads(oci_config)["root"]["path"])
    except (ValueError, LookupError, TypeError) as exc:
        raise PodmanError(f"the container's OCI config names no root ({exc})") from None


def own_layer(mounts: list[Mount], root: str) -> tuple[Path, Path]:
    """(the directory holding the container's own layer, its upper dir) for the overlay
    mounted at `root`; PodmanError if no overlay is mounted there (not running)."""
    for mount in reversed(mounts):  # the last mount at a point is the one seen there
        if mount.mount_point == root:
            upper, work = mount.options.get("upperdir"), mount.options.get("workdir")
            if mount.fstype != "overlay" or not upper or not work:
                raise PodmanError(f"the container's root {root} is a {mount.fstype} mount")
            return Path(os.path.commonpath([upper, work])), Path(upper)
    raise PodmanError(f"the container's root {root} is not mounted (not running?)")


def filesystem_of(mounts: list[Mount], path: Path) -> str:
    """The file system a path is on: the type of the longest mount point above it (of
    several at one point, the last: it is the one seen there)."""
    best, fstype = "", "unknown"
    for mount in mounts:
        point = Path(mount.mount_point)
        if (point == path or point in path.parents) and len(str(point)) >= len(best):
            best, fstype = str(point), mount.fstype
    return fstype


def own_dirs(inspected: dict[str, Any], mounts: list[Mount], root: str) -> dict[str, Path]:
    """The container's own layer directories by role: `root_overlay` (what its root is
    mounted from) and `storage_layer` (the layer podman's store made for it) when that is
    another directory. `inspected` is one entry of `podman inspect --type container`."""
    found = {"root_overlay": own_layer(mounts, root)[0]}
    upper = ((inspected.get("GraphDriver") or {}).get("Data") or {}).get("UpperDir")
    if upper and Path(upper).parent != found["root_overlay"]:
        found["storage_layer"] = Path(upper).parent
    return found


def container_stored_bytes(engine: Engine, name: str) -> StoredBytes:
    """Allocated bytes of a running container's own layer directories; the metadata says
    what was counted, where, and on which file system (podman keeps a `:O` overlay under its
    run root: on a host whose /run is a tmpfs, that is memory, not disk)."""
    try:
        inspected = json.loads(engine.call("inspect", "--type", "container", name))[0]
        config_path = Path(inspected["OCIConfigPath"])
        static_dir = Path(inspected.get("StaticDir") or config_path.parent)
    except (ValueError, LookupError, TypeError) as exc:
        raise PodmanError(f"podman inspect gave no OCI config path ({exc})") from None
    try:
        root = root_path(config_path.read_text())
        mounts = parse_mountinfo(MOUNTINFO.read_text())
    except OSError as exc:
        raise PodmanError(f"cannot read the container's root: {exc}") from None
    dirs = own_dirs(inspected, mounts, root)
    counted = {role: tree_allocated_bytes(path) for role, path in dirs.items()}
    upper = own_layer(mounts, root)[1]
    return StoredBytes(
        float(sum(counted.values())),
        {
            "what": "the container's layer dirs: root overlay (upper + work) and storage "
            "layer (allocated)",
            **{f"{role}_bytes": value for role, value in counted.items()},
            **{f"{role}_dir": str(path) for role, path in dirs.items()},
            "upper_bytes": tree_allocated_bytes(upper),
            "filesystem": filesystem_of(mounts, upper),
            # config.json, hosts, resolv.conf...: as Docker's container dir, not counted
            "config_dir_bytes": tree_allocated_bytes(static_dir),
        },
    )
