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

from vmvc.backends.cgroup_files import (
    CFS_PERIOD_US,
    MIB,
    PARENT,
    Layout,
    read_limits,
)

# An instance name carries its run id: vmvc-<run id>-<backend>-<index> (vmvc.runner.spec;
# tests use ids such as 20260101T000000Z-test01, hence any 6 letters or digits at the end).
RUN_ID_IN_NAME = re.compile(r"^vmvc-([0-9]{8}T[0-9]{6}Z-[A-Za-z0-9]{6})-[a-z0-9_-]+-[0-9]+$")


class CgroupError(Exception):
    """The limits cannot be applied here (one line for the user)."""


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as exc:
        raise CgroupError(f"cannot write {value!r} to {path}: {exc.strerror or exc}") from None


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
