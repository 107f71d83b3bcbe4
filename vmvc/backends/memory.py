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


def cgroup_memory_mib(candidates: list[Path]) -> tuple[float, str] | None:
    """Memory charged to a cgroup minus inactive file cache (as `docker stats` counts it).

    Handles cgroup v1 (memory.usage_in_bytes) and v2 (memory.current); returns the value and
    the path it came from, or None when no candidate exists.
    """
    for directory in candidates:
        usage = _read_int(directory / "memory.usage_in_bytes")
        if usage is not None:
            stat = _stat_file(directory / "memory.stat")
            inactive = stat.get("total_inactive_file", stat.get("inactive_file", 0))
            return (usage - inactive) / MIB, str(directory)
        usage = _read_int(directory / "memory.current")
        if usage is not None:
            inactive = _stat_file(directory / "memory.stat").get("inactive_file", 0)
            return (usage - inactive) / MIB, str(directory)
    return None
