"""Host-side memory of processes and cgroups, in MiB (psutil for processes)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import psutil

MIB = 2**20


def process_tree_memory(pid: int) -> dict[str, float]:
    """PSS, USS and RSS of a process and all its descendants; `total_mib` is the PSS sum.

    PSS charges shared pages (libc, the page cache of shared files) proportionally, so it is
    the fairest single number for "what does this instance cost the host".
    """
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    pss = uss = rss = 0
    for proc in processes:
        with contextlib.suppress(psutil.Error):
            info = proc.memory_full_info()
            pss += info.pss
            uss += info.uss
            rss += info.rss
    return {
        "pss_mib": pss / MIB,
        "uss_mib": uss / MIB,
        "rss_mib": rss / MIB,
        "total_mib": pss / MIB,
        "processes": float(len(processes)),
    }


def pids_named(names: tuple[str, ...]) -> dict[str, int]:
    """The pid of the oldest process with each of these names (daemons: one each)."""
    found: dict[str, tuple[float, int]] = {}
    for proc in psutil.process_iter(["name", "create_time"]):
        name = proc.info.get("name")
        if name in names:
            started = proc.info.get("create_time") or 0.0
            if name not in found or started < found[name][0]:
                found[name] = (started, proc.pid)
    return {name: pid for name, (_, pid) in sorted(found.items())}


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _stat_file(path: Path) -> dict[str, int]:
    values: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                values[key] = int(value)
    return values


def cgroup_v1_memory(stat: dict[str, int]) -> dict[str, float]:
    """A cgroup v1 memory.stat as the footprint counts it, in MiB.

    memory.usage_in_bytes is a fuzzy counter (charges are batched per CPU, so on a ~1 MiB
    container it is mostly batching); the kernel's documentation (cgroup-v1/memory.rst, 5.5)
    says to use RSS + CACHE (+ SWAP) from memory.stat for an exact figure. The hierarchical
    totals (total_*) include child cgroups. Inactive file cache is left out, as `docker stats`
    does: it is the first thing reclaimed and mostly the shared image files' pages.
    """
    rss = stat.get("total_rss", stat.get("rss", 0))
    cache = stat.get("total_cache", stat.get("cache", 0))
    swap = stat.get("total_swap", stat.get("swap", 0))
    inactive_file = stat.get("total_inactive_file", stat.get("inactive_file", 0))
    return {
        "rss_mib": rss / MIB,
        "cache_mib": cache / MIB,
        "swap_mib": swap / MIB,
        "inactive_file_mib": inactive_file / MIB,
        "total_mib": (rss + cache + swap - inactive_file) / MIB,
    }


def cgroup_memory(candidates: list[Path]) -> tuple[dict[str, float], str] | None:
    """Memory charged to a container's cgroup, from the first candidate directory that exists.

    cgroup v1: memory.stat (see cgroup_v1_memory); cgroup v2: memory.current (exact there)
    minus inactive file cache. Returns the figures and the directory they came from.
    """
    for directory in candidates:
        stat_path = directory / "memory.stat"
        if (directory / "memory.usage_in_bytes").exists() and stat_path.exists():
            return cgroup_v1_memory(_stat_file(stat_path)), str(directory)
        usage = _read_int(directory / "memory.current")
        if usage is not None:
            inactive = _stat_file(stat_path).get("inactive_file", 0)
            return {"total_mib": (usage - inactive) / MIB}, str(directory)
    return None
