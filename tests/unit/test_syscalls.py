"""Host kernel exposure (vmvc.bench.syscalls): the counting rule on a recorded trace.

docker-exec-ping.trace.gz: the kernel tracer's lines (raw_syscalls:sys_enter,
sched_process_fork, sched_process_exec) for a Docker container's shim and every task it
created while `docker exec` ran `/opt/vmvc/agent run t1 ping` (recorded on the development
host with vmvc.bench.syscalls.TraceSession). runc set the process up (namespaces, mounts,
seccomp) before it executed the agent: those calls are the engine's.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from vmvc.backends.base import SyscallScope
from vmvc.bench.syscalls import count, syscall_table

DATA = Path(__file__).parent / "data" / "syscalls"
AGENT = "/opt/vmvc/agent"
# x86-64 numbers (arch/x86/entry/syscalls/syscall_64.tbl): fixed ABI
EXECVE, SETNS, UNSHARE, MOUNT, WAIT4 = 59, 308, 272, 165, 61


def _trace() -> list[str]:
    with gzip.open(DATA / "docker-exec-ping.trace.gz", "rt") as recorded:
        return recorded.read().splitlines()


def test_the_engine_set_up_is_not_the_instances() -> None:
    lines = _trace()
    shim = 23285
    counted = count(lines, SyscallScope((shim,), counted_from_exec=AGENT))
    everything = count(lines, SyscallScope((shim,)))
    # runc entered the namespaces and mounted: in the trace, not in the count
    assert {SETNS, UNSHARE, MOUNT} <= everything.numbers
    assert not {SETNS, UNSHARE, MOUNT} & counted.numbers
    # the agent's shell ran `cat` (a fork and an exec of its own) and waited for it
    assert {EXECVE, WAIT4} <= counted.numbers
    assert len(counted.numbers) == 36
    assert counted.ignored_events > counted.events > 0
    assert everything.events == counted.events + counted.ignored_events


def test_a_task_forked_by_a_counted_task_counts_from_birth() -> None:
    lines = [
        "a-10 [0] . 1.0: sched_process_exec: filename=/opt/vmvc/agent pid=10 old_pid=10",
        "a-10 [0] . 1.1: sched_process_fork: comm=agent pid=10 child_comm=agent child_pid=11",
        "  agent-11  [001] ..... 1.002: sys_enter: NR 0 (3, 7ffd, 10, 0, 0, 0)",
        "   runc-12  [001] ..... 1.003: sys_enter: NR 308 (5, 0, 0, 0, 0, 0)",
        "runc-12 [1] . 1.4: sched_process_fork: comm=runc pid=12 child_comm=runc child_pid=13",
        "   runc-13  [001] ..... 1.005: sys_enter: NR 1 (1, 7ffd, 10, 0, 0, 0)",
    ]  # fmt: skip
    counted = count(lines, SyscallScope((1,), counted_from_exec=AGENT))
    assert counted.numbers == {0}  # the agent's child read; runc's setns and its child's write not
    assert counted.ignored_events == 2


def test_without_an_exec_to_wait_for_every_traced_task_counts() -> None:
    lines = [
        "  qemu-system-x86-7  [000] ..... 1.0: sys_enter: NR 271 (5, 1, 0, 8, 0, 0)",
        "  CPU 0/TCG-8  [001] ..... 1.1: sys_enter: NR 202 (7f, 80, 0, 0, 0, 0)",
        "garbage that is not a trace line",
    ]
    counted = count(lines, SyscallScope((7,)))
    assert counted.numbers == {271, 202}  # comm may hold spaces and slashes


def test_syscall_names_come_from_the_kernel_headers(tmp_path: Path) -> None:
    header = tmp_path / "unistd_64.h"
    header.write_text(
        "#ifndef _ASM_UNISTD_64_H\n#define __NR_read 0\n#define __NR_write 1\n"
        "#define __NR_execve 59\n#define __NR_syscalls 462\n"
    )
    table = syscall_table(header)
    assert table[0] == "read" and table[59] == "execve"
    counted = count(
        ["  sh-1  [000] ..... 1.0: sys_enter: NR 59 (0, 0, 0, 0, 0, 0)",
         "  sh-1  [000] ..... 1.0: sys_enter: NR 999 (0, 0, 0, 0, 0, 0)"],
        SyscallScope((1,)),
    )  # fmt: skip
    assert counted.names(table) == ["execve", "nr999"]  # unknown numbers stay visible
    assert syscall_table(tmp_path / "missing.h") == {}
