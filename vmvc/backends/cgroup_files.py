"""Where the cgroup controllers are and what limits a cgroup's own files say, for every
backend that sets limits through cgroups itself (native's own cgroup, lxc's container):
the same CFS quota and memory files Docker writes (Documentation/scheduler/sched-bwc.rst,
admin-guide/cgroup-v1/memory.rst, admin-guide/cgroup-v2.rst).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT = "vmvc"  # vmvc's own parent cgroup (only root can create it: a vmvc/ child is ours)
# CFS period docker uses for --cpus (100 ms); the quota is N times this for N CPUs.
CFS_PERIOD_US = 100_000
MIB = 2**20


@dataclass(frozen=True)
class Layout:
    """Where the cpu and memory controllers are mounted (the same directory under v2)."""

    version: int
    cpu: Path
    memory: Path

    def parents(self) -> list[Path]:
        return list(dict.fromkeys([self.cpu / PARENT, self.memory / PARENT]))


def detect(mounts: str | None = None, root: Path = CGROUP_ROOT) -> Layout | None:
    """The cgroup layout from /proc/self/mounts: v1 controllers if mounted, else v2.

    A hybrid host (v1 controllers, an empty v2 hierarchy at /sys/fs/cgroup/unified, like the
    development machine) uses v1, where the controllers are. None: no cpu or memory
    controller can be found.
    """
    if mounts is None:
        try:
            mounts = Path("/proc/self/mounts").read_text()
        except OSError:
            return None
    cpu = memory = unified = None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        where, fstype, options = Path(fields[1]), fields[2], fields[3].split(",")
        if fstype == "cgroup":
            if "cpu" in options and cpu is None:
                cpu = where
            if "memory" in options and memory is None:
                memory = where
        elif fstype == "cgroup2" and unified is None:
            unified = where
    if cpu is not None and memory is not None:
        return Layout(1, cpu, memory)
    if unified is not None:
        try:
            controllers = (unified / "cgroup.controllers").read_text().split()
        except OSError:
            return None
        if {"cpu", "memory"} <= set(controllers):
            return Layout(2, unified, unified)
    return None


def read_value(path: Path) -> str:
    return path.read_text().strip()


def read_limits(version: int, cpu: Path, memory: Path) -> dict[str, str | int | float]:
    """cpus (quota / period), memory and swap in MiB from a cgroup's own files.

    "max" (no limit) reads as the string "unlimited"; a v1 limit near 2**63 is the same.
    """
    out: dict[str, str | int | float] = {}
    if version == 1:
        quota = int(read_value(cpu / "cpu.cfs_quota_us"))
        period = int(read_value(cpu / "cpu.cfs_period_us"))
        memory_bytes = int(read_value(memory / "memory.limit_in_bytes"))
        memsw_file = memory / "memory.memsw.limit_in_bytes"
        memsw = int(read_value(memsw_file)) if memsw_file.exists() else None
        out["cpus"] = round(quota / period, 3) if quota > 0 else "unlimited"
        out["memory_mib"] = _mib(memory_bytes)
        if memsw is not None:
            swap = memsw - memory_bytes
            out["swap_mib"] = "unlimited" if memsw >= 2**62 else round(swap / MIB, 1)
        out["how"] = f"cgroup v1 CFS quota {quota}/{period} us, memory.limit_in_bytes"
    else:
        quota_text, period_text = read_value(cpu / "cpu.max").split()
        limit_text = read_value(memory / "memory.max")
        out["cpus"] = (
            "unlimited" if quota_text == "max" else round(int(quota_text) / int(period_text), 3)
        )
        out["memory_mib"] = "unlimited" if limit_text == "max" else _mib(int(limit_text))
        swap_file = memory / "memory.swap.max"
        if swap_file.exists():
            swap_text = read_value(swap_file)
            out["swap_mib"] = "unlimited" if swap_text == "max" else round(int(swap_text) / MIB, 1)
        out["how"] = f"cgroup v2 cpu.max {quota_text} {period_text}, memory.max"
    return out


def _mib(value: int) -> str | float:
    return "unlimited" if value >= 2**62 else round(value / MIB, 1)
