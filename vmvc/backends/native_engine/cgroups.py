"""The native baseline's cgroup: the same CPU count and memory limit as the container's.

Docker puts a container with `--cpus N --memory M --memory-swap M` into a cgroup with a CFS
quota of N CPUs (`cpu.cfs_quota_us` = N x `cpu.cfs_period_us`; cgroup v2 `cpu.max`), a
memory limit of M and no swap; a VM gets N vCPU threads and M of guest memory. Without the
same limits the baseline could use every host CPU and all host memory, and the difference
would be booked as "overhead". So each native instance runs in a cgroup of its own, with
the limits docker applies (Linux kernel docs: Documentation/scheduler/sched-bwc.rst for the
CFS bandwidth files, admin-guide/cgroup-v1/memory.rst and admin-guide/cgroup-v2.rst for the
memory files; Docker docs, "Runtime options with Memory, CPUs, and GPUs").

Layout: `<controller mount>/vmvc/<instance name>` under cgroup v1 (one directory in the cpu
and one in the memory hierarchy, as docker's `<controller>/docker/<id>`), or
`/sys/fs/cgroup/vmvc/<instance name>` under cgroup v2 (the `vmvc` parent enables `cpu` and
`memory` for its children). The cgroup exists before the instance's first process: the
command that starts it writes its own pid into `cgroup.procs` and then execs, so every
process of the tree is born inside. It is removed when the instance ends (remaining
processes killed first); what a killed vmvc leaves is listed by `leftovers` by the run id in
its name, for `vmvc clean` and a resume. Only root can create directories there, so a
`vmvc/` child was made by vmvc.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT = "vmvc"
# CFS period docker uses for --cpus (100 ms); the quota is N times this for N CPUs.
CFS_PERIOD_US = 100_000
MIB = 2**20
# An instance name carries its run id: vmvc-<run id>-<backend>-<index> (vmvc.runner.spec;
# tests use ids such as 20260101T000000Z-test01, hence any 6 letters or digits at the end).
RUN_ID_IN_NAME = re.compile(r"^vmvc-([0-9]{8}T[0-9]{6}Z-[A-Za-z0-9]{6})-[a-z0-9_-]+-[0-9]+$")


class CgroupError(Exception):
    """The limits cannot be applied here (one line for the user)."""


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


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as exc:
        raise CgroupError(f"cannot write {value!r} to {path}: {exc.strerror or exc}") from None


def _read(path: Path) -> str:
    return path.read_text().strip()


@dataclass
class NativeCgroup:
    """One native instance's cgroup (one directory per hierarchy)."""

    layout: Layout
    name: str

    @property
    def dirs(self) -> list[Path]:
        return [parent / self.name for parent in self.layout.parents()]

    @property
    def procs_files(self) -> list[Path]:
        """Where the instance's first process writes its pid (all of them, v1)."""
        return [d / "cgroup.procs" for d in self.dirs]

    @classmethod
    def create(cls, layout: Layout, name: str, vcpus: int, memory_mib: int) -> NativeCgroup:
        """Make the cgroup and set docker's limits for `--cpus vcpus --memory memory_mib`
        with no swap. Refuses a name that exists already (never reuses one)."""
        if not RUN_ID_IN_NAME.match(name):
            raise CgroupError(f"{name!r} is not a vmvc instance name")
        group = cls(layout, name)
        made: list[Path] = []
        try:
            for _attempt in range(3):
                try:
                    group._make_dirs(made)
                    break
                except FileNotFoundError:
                    # another run removed the empty vmvc/ parent in between: make it again
                    continue
            else:
                raise CgroupError(f"cannot create the cgroup {name} under {PARENT}/")
            group._set_limits(vcpus, memory_mib)
        except BaseException:
            for directory in made:
                with contextlib.suppress(OSError):
                    directory.rmdir()
            raise
        return group

    def _make_dirs(self, made: list[Path]) -> None:
        for parent in self.layout.parents():
            with contextlib.suppress(FileExistsError):
                parent.mkdir(mode=0o755)
        if self.layout.version == 2:
            # Children of vmvc/ get the cpu and memory controllers (the root enables them
            # for vmvc/ on any systemd host; vmvc/ itself holds no process, as v2 requires).
            _write(self.layout.cpu / PARENT / "cgroup.subtree_control", "+cpu +memory")
        for directory in self.dirs:
            if directory in made:
                continue
            try:
                directory.mkdir(mode=0o755)
            except FileExistsError:
                raise CgroupError(f"cgroup {directory} exists already") from None
            made.append(directory)

    def _set_limits(self, vcpus: int, memory_mib: int) -> None:
        quota = vcpus * CFS_PERIOD_US
        limit = memory_mib * MIB
        cpu, memory = self.layout.cpu / PARENT / self.name, self.layout.memory / PARENT / self.name
        if self.layout.version == 1:
            _write(cpu / "cpu.cfs_period_us", str(CFS_PERIOD_US))
            _write(cpu / "cpu.cfs_quota_us", str(quota))
            _write(memory / "memory.limit_in_bytes", str(limit))
            # memory + swap = memory: no swap, as docker's --memory-swap equal to --memory.
            # Exists only with swap accounting (swapaccount=1); the limit above holds anyway.
            if (memory / "memory.memsw.limit_in_bytes").exists():
                _write(memory / "memory.memsw.limit_in_bytes", str(limit))
        else:
            _write(cpu / "cpu.max", f"{quota} {CFS_PERIOD_US}")
            _write(memory / "memory.max", str(limit))
            if (memory / "memory.swap.max").exists():
                _write(memory / "memory.swap.max", "0")

    def limits(self) -> dict[str, str | int | float]:
        """The limits as the kernel holds them (read back, not what was asked for)."""
        cpu, memory = self.layout.cpu / PARENT / self.name, self.layout.memory / PARENT / self.name
        return read_limits(self.layout.version, cpu, memory)

    def pids(self) -> set[int]:
        found: set[int] = set()
        for procs in self.procs_files:
            with contextlib.suppress(OSError):
                found |= {int(p) for p in procs.read_text().split() if p.isdigit()}
        return found

    def remove(self, timeout: float = 10.0) -> None:
        """Kill whatever is still inside, wait until it is empty, remove the directories."""
        deadline = time.monotonic() + timeout
        while True:
            pids = self.pids()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if not pids or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        for directory in self.dirs:
            if not directory.exists():
                continue
            # rmdir of a cgroup fails with EBUSY while a dying process is still counted
            for _ in range(100):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        # The vmvc/ parent goes too once empty (EBUSY while another run's cgroup is in it;
        # a run creating one at this moment makes the parent again, see create).
        for parent in self.layout.parents():
            with contextlib.suppress(OSError):
                parent.rmdir()


def read_limits(version: int, cpu: Path, memory: Path) -> dict[str, str | int | float]:
    """cpus (quota / period), memory and swap in MiB from a cgroup's own files.

    "max" (no limit) reads as the string "unlimited"; a v1 limit near 2**63 is the same.
    """
    out: dict[str, str | int | float] = {}
    if version == 1:
        quota, period = int(_read(cpu / "cpu.cfs_quota_us")), int(_read(cpu / "cpu.cfs_period_us"))
        memory_bytes = int(_read(memory / "memory.limit_in_bytes"))
        memsw_file = memory / "memory.memsw.limit_in_bytes"
        memsw = int(_read(memsw_file)) if memsw_file.exists() else None
        out["cpus"] = round(quota / period, 3) if quota > 0 else "unlimited"
        out["memory_mib"] = _mib(memory_bytes)
        if memsw is not None:
            swap = memsw - memory_bytes
            out["swap_mib"] = "unlimited" if memsw >= 2**62 else round(swap / MIB, 1)
        out["how"] = f"cgroup v1 CFS quota {quota}/{period} us, memory.limit_in_bytes"
    else:
        quota_text, period_text = _read(cpu / "cpu.max").split()
        limit_text = _read(memory / "memory.max")
        out["cpus"] = (
            "unlimited" if quota_text == "max" else round(int(quota_text) / int(period_text), 3)
        )
        out["memory_mib"] = "unlimited" if limit_text == "max" else _mib(int(limit_text))
        swap_file = memory / "memory.swap.max"
        if swap_file.exists():
            swap_text = _read(swap_file)
            out["swap_mib"] = "unlimited" if swap_text == "max" else round(int(swap_text) / MIB, 1)
        out["how"] = f"cgroup v2 cpu.max {quota_text} {period_text}, memory.max"
    return out


def _mib(value: int) -> str | float:
    return "unlimited" if value >= 2**62 else round(value / MIB, 1)


def run_id_of(name: str) -> str | None:
    match = RUN_ID_IN_NAME.match(name)
    return match.group(1) if match else None


def existing(layout: Layout) -> Iterator[NativeCgroup]:
    """Every instance cgroup under vmvc/ (for the reaper), once per name."""
    names: set[str] = set()
    for parent in layout.parents():
        with contextlib.suppress(OSError):
            names |= {p.name for p in parent.iterdir() if p.is_dir() and run_id_of(p.name)}
    for name in sorted(names):
        yield NativeCgroup(layout, name)


def enter_command(procs_files: list[Path]) -> list[str]:
    """A prefix that puts the starting process into the cgroup, then execs the command.

    `sh -c` writes its own pid ($$) into each cgroup.procs before exec, so the process and
    all it forks are inside before anything of the instance runs.
    """
    script = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
    return ["/bin/sh", "-c", script, "vmvc-cgroup", *map(str, procs_files), "--"]
