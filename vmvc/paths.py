"""Where vmvc keeps things outside the repository: the artefact cache and per-run work dirs."""

from __future__ import annotations

import os
from pathlib import Path

RESOURCE_PREFIX = "vmvc-"


def cache_dir() -> Path:
    """Built artefacts (rootfs, kernels, disks), keyed by recipe hash; never in the repo.

    As root the cache lives under /var/cache so that QEMU, which libvirt runs as an
    unprivileged user, can read the kernel and base disk (it cannot enter /root).
    """
    override = os.environ.get("VMVC_CACHE")
    if override:
        return Path(override)
    if os.geteuid() == 0:
        return Path("/var/cache/vmvc")
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) / "vmvc" if xdg else Path.home() / ".cache" / "vmvc"


def work_root() -> Path:
    """Parent of per-run work dirs (overlays, data disks, console logs).

    On the host's disk (not tmpfs) so that I/O workloads of every backend hit the same
    storage, and traversable so QEMU can open the overlay libvirt hands it.
    """
    override = os.environ.get("VMVC_WORKDIR")
    return Path(override) if override else Path("/var/tmp")


def run_workdir(run_id: str) -> Path:
    return work_root() / f"{RESOURCE_PREFIX}{run_id}"


def state_dir() -> Path:
    """Per-run lock files that say which runs are alive (for leftover detection)."""
    return cache_dir() / "runs"
