"""The host kernel's exposure: which system calls an instance's workload makes the host
kernel answer, counted on the host while a fixed workload runs inside (issue 15, C07).

Anjali, Caraza-Harter and Swift ("Blending Containers and Virtual Machines: A Study of
Firecracker and gVisor", VEE '20) measured isolation as the host-kernel code each platform
still exercises. vmvc counts the coarser, portable half of that: the *distinct host system
calls* reached. A container's processes call the host kernel directly; gVisor's Sentry
answers them and makes host calls of its own (its seccomp filter allows a few dozen); a
VM's guest kernel answers them and QEMU makes the host calls. Native is the baseline.

How, with the kernel's own tracer (tracefs, Documentation/trace/events.rst), no engine:

* a private trace instance (``instances/vmvc-<token>``, removed afterwards) records
  ``raw_syscalls:sys_enter`` only for the instance's host tasks (``set_event_pid``, every
  thread of each root process) and, with ``options/event-fork``, every task they create;
* ``sched_process_fork`` and ``sched_process_exec`` are recorded too, so a root that is the
  engine's (Docker's shim, which starts ``docker exec`` processes through runc) counts
  only from the moment a task executes the agent inside the instance, and the tasks that
  one forks: runc's own set-up calls are the engine's, not the instance's;
* the buffer is read while the workload runs (trace_pipe) and the kernel's overrun count
  is recorded: a count from a buffer that overflowed is a lower bound and says so.

The parsing and the counting rule are pure (unit-tested on recorded trace lines).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from vmvc.backends.base import SyscallScope

TRACEFS = Path("/sys/kernel/tracing")
UNISTD = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
INSTANCE_PREFIX = "vmvc-"
# Per CPU: large enough that the fixed workload's calls fit while the reader keeps up.
BUFFER_KIB = 8192
POLL_S = 0.05  # how often an empty pipe is looked at again
READER_JOIN_S = 5.0
EVENTS = ("raw_syscalls/sys_enter", "sched/sched_process_fork", "sched/sched_process_exec")

# "  comm-123  [001] ..... 30311.998716: sys_enter: NR 13 (2, 7fff...)"
_LINE = re.compile(
    r"^\s*(?P<comm>.*?)-(?P<pid>\d+)\s+\[\d+\]\s+\S+\s+[\d.]+:\s+(?P<event>\w+):\s*(?P<rest>.*)$"
)
_NR = re.compile(r"NR (\d+)")
_FORK = re.compile(r"\bpid=(\d+)\b.*\bchild_pid=(\d+)")
_EXEC = re.compile(r"filename=(\S+)\s+pid=(\d+)")


class TraceUnavailable(RuntimeError):
    """The host's tracer cannot be used here (one line: why, and what would make it work)."""


@dataclass
class SyscallCount:
    numbers: set[int] = field(default_factory=set)
    events: int = 0  # counted sys_enter events
    ignored_events: int = 0  # the engine's own (before the agent ran)
    lost_events: int = 0  # the kernel's overrun count: > 0 makes the count a lower bound

    def names(self, table: dict[int, str]) -> list[str]:
        return sorted(table.get(n, f"nr{n}") for n in self.numbers)


def count(lines: Iterable[str], scope: SyscallScope) -> SyscallCount:
    """Distinct system calls of the tasks in scope, from trace lines in time order (pure).

    Without `counted_from_exec` every traced task counts. With it, a task counts from its
    exec of that path on, and a task forked by a counting task counts from its birth."""
    result = SyscallCount()
    counting: set[int] = set()
    for line in lines:
        match = _LINE.match(line)
        if match is None:
            continue
        pid, event, rest = int(match["pid"]), match["event"], match["rest"]
        if event == "sched_process_fork":
            found = _FORK.search(rest)
            if found and int(found.group(1)) in counting:
                counting.add(int(found.group(2)))
        elif event == "sched_process_exec":
            found = _EXEC.search(rest)
            if found and found.group(1) == scope.counted_from_exec:
                counting.add(int(found.group(2)))
        elif event == "sys_enter":
            number = _NR.match(rest)
            if number is None:
                continue
            if scope.counted_from_exec is None or pid in counting:
                result.numbers.add(int(number.group(1)))
                result.events += 1
            else:
                result.ignored_events += 1
    return result


def syscall_table(header: Path = UNISTD) -> dict[int, str]:
    """x86-64 system call numbers -> names from the kernel headers ({} if absent)."""
    table: dict[int, str] = {}
    with contextlib.suppress(OSError):
        for line in header.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == "#define" and parts[1].startswith("__NR_"):
                with contextlib.suppress(ValueError):
                    table[int(parts[2])] = parts[1].removeprefix("__NR_")
    return table


def threads(pids: Iterable[int]) -> list[int]:
    """Every thread of the given processes and of every process below them that exists now:
    set_event_pid filters by task, and event-fork adds only tasks created after it is set
    (the native agent is a grandchild of the process vmvc started, born before tracing)."""
    found: list[int] = []
    for pid in pids:
        try:
            root = psutil.Process(pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for process in tree:
            with contextlib.suppress(OSError):
                found += sorted(int(t) for t in os.listdir(f"/proc/{process.pid}/task"))
    return sorted(set(found))


def available(root: Path = TRACEFS) -> str | None:
    """None if a private trace instance can be made here, else why not (one line)."""
    if os.geteuid() != 0:
        return "counting host system calls needs root (the kernel's tracer)"
    if not (root / "instances").is_dir():
        return f"the kernel's tracer is not mounted at {root} (mount -t tracefs none {root})"
    if not (root / "events" / "raw_syscalls" / "sys_enter").is_dir():
        return "this kernel has no raw_syscalls trace events (CONFIG_FTRACE_SYSCALLS)"
    return None


class TraceSession:
    """A private trace instance following `scope`'s tasks; read on a thread while open."""

    def __init__(self, scope: SyscallScope, owner: str = "", root: Path = TRACEFS) -> None:
        """`owner`: the instance's name (vmvc-<run id>-...), so `vmvc clean` can tell whose
        trace instance a killed run left behind."""
        self.scope = scope
        name = f"{owner}-syscalls-{secrets.token_hex(3)}" if owner else secrets.token_hex(6)
        if not name.startswith(INSTANCE_PREFIX):
            name = INSTANCE_PREFIX + name
        self.path = root / "instances" / name
        self.lines: list[str] = []
        self._reader: threading.Thread | None = None
        self._stopping = threading.Event()

    def _write(self, name: str, value: str) -> None:
        (self.path / name).write_text(value)

    def __enter__(self) -> TraceSession:
        why = available(self.path.parent.parent)
        if why:
            raise TraceUnavailable(why)
        tasks = threads(self.scope.pids)
        if not tasks:
            raise TraceUnavailable("the instance's host processes were gone before tracing")
        self.path.mkdir()
        try:
            self._write("tracing_on", "0")
            self._write("buffer_size_kb", str(BUFFER_KIB))
            self._write("options/event-fork", "1")
            self._write("set_event_pid", " ".join(map(str, tasks)))
            for event in EVENTS:
                self._write(f"events/{event}/enable", "1")
            self._reader = threading.Thread(target=self._read, name="vmvc-trace", daemon=True)
            self._reader.start()
            self._write("tracing_on", "1")
        except BaseException:
            self._remove()
            raise
        return self

    def _read(self) -> None:
        """Drain trace_pipe (consuming: the buffer never fills while this keeps up) until
        stop() is asked and the pipe is empty. Non-blocking, so the thread can be told to
        end: an instance cannot be removed while its pipe is open."""
        try:
            fd = os.open(self.path / "trace_pipe", os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            return
        pending = b""
        try:
            while True:
                try:
                    chunk = os.read(fd, 1 << 16)
                except BlockingIOError:
                    if self._stopping.is_set():
                        break
                    self._stopping.wait(POLL_S)
                    continue
                except OSError:
                    break
                if not chunk:
                    if self._stopping.is_set():
                        break
                    self._stopping.wait(POLL_S)
                    continue
                pending += chunk
                *complete, pending = pending.split(b"\n")
                self.lines += [line.decode(errors="replace") for line in complete]
        finally:
            os.close(fd)

    def lost_events(self) -> int:
        """The kernel's overrun count over every CPU's buffer of this instance."""
        lost = 0
        for stats in (self.path / "per_cpu").glob("cpu*/stats"):
            with contextlib.suppress(OSError, ValueError):
                for line in stats.read_text().splitlines():
                    if line.startswith("overrun:"):
                        lost += int(line.split(":", 1)[1])
        return lost

    def stop(self) -> SyscallCount:
        """Stop recording, drain what is left and count."""
        self._write("tracing_on", "0")
        self._finish_reader()
        result = count(self.lines, self.scope)
        result.lost_events = self.lost_events()
        return result

    def _finish_reader(self) -> None:
        self._stopping.set()
        if self._reader is not None:
            self._reader.join(READER_JOIN_S)
            self._reader = None

    def _remove(self) -> None:
        with contextlib.suppress(OSError):
            self._write("tracing_on", "0")
        for event in EVENTS:
            with contextlib.suppress(OSError):
                self._write(f"events/{event}/enable", "0")
        self._finish_reader()  # rmdir fails while the pipe is open
        with contextlib.suppress(OSError):
            self.path.rmdir()

    def __exit__(self, *exc: object) -> None:
        self._remove()


def leftover_instances(root: Path = TRACEFS) -> Iterator[Path]:
    """Trace instances vmvc made and did not remove (a killed run): for `vmvc clean`."""
    with contextlib.suppress(OSError):
        yield from sorted((root / "instances").glob(f"{INSTANCE_PREFIX}*"))


def remove_instance(path: Path) -> None:
    """Switch a leftover trace instance off and remove it (its buffers are kernel memory)."""
    with contextlib.suppress(OSError):
        (path / "tracing_on").write_text("0")
    path.rmdir()
