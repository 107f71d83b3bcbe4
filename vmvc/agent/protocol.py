"""Host side of the agent protocol: timestamped line logs, ready markers, framed task output.

Every backend feeds whatever its instance prints (VM serial console, container log stream,
native stdout) into a LineLog; the same code then finds the ready marker and the output of
each task, so the three backends cannot disagree about what "ready" means.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

READY_PREFIX = "VMVC-READY"
TOKEN = re.compile(r"^[A-Za-z0-9_./:=+-]{1,200}$")


class AgentError(Exception):
    """The agent did not answer as the protocol says (timeout, exit, failed task)."""


class InstanceGone(AgentError):
    """The instance stopped printing for good (process exited, stream closed)."""


@dataclass(frozen=True)
class ReadyInfo:
    image_id: str
    kernel: str
    at: float


@dataclass(frozen=True)
class LogLine:
    at: float
    text: str


MAX_LINE_BYTES = 64 * 1024


class LineLog:
    """Thread-safe, append-only log of the lines an instance printed, with arrival times."""

    def __init__(self, max_lines: int = 200_000) -> None:
        self._lines: list[LogLine] = []
        self._partial = b""
        self._cond = threading.Condition()
        self._closed = False
        self._max_lines = max_lines

    def feed(self, data: bytes, at: float | None = None) -> None:
        stamp = time.monotonic() if at is None else at
        with self._cond:
            buffer = self._partial + data
            *complete, self._partial = buffer.split(b"\n")
            # Output without a newline (a runaway guest, binary noise) must not grow memory
            # without bound: a line longer than the cap is cut into cap-sized lines.
            while len(self._partial) > MAX_LINE_BYTES:
                complete.append(self._partial[:MAX_LINE_BYTES])
                self._partial = self._partial[MAX_LINE_BYTES:]
            for raw in complete:
                text = raw.decode("utf-8", errors="replace").rstrip("\r")
                if len(self._lines) < self._max_lines:
                    self._lines.append(LogLine(stamp, text))
            if complete:
                self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            if self._partial:
                self._lines.append(
                    LogLine(time.monotonic(), self._partial.decode(errors="replace"))
                )
                self._partial = b""
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        with self._cond:
            return len(self._lines)

    def tail(self, count: int = 20) -> list[str]:
        with self._cond:
            return [line.text for line in self._lines[-count:]]

    def wait_for(
        self,
        predicate: Callable[[str], bool],
        *,
        start: int = 0,
        timeout: float,
        what: str,
    ) -> tuple[int, LogLine]:
        """The first line at or after index `start` matching `predicate`, waiting for it."""
        deadline = time.monotonic() + timeout
        index = start
        with self._cond:
            while True:
                while index < len(self._lines):
                    line = self._lines[index]
                    if predicate(line.text):
                        return index, line
                    index += 1
                if self._closed:
                    raise InstanceGone(f"instance stopped before {what}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AgentError(f"no {what} within {timeout:.0f} s")
                self._cond.wait(remaining)

    def lines_between(self, first: int, last: int) -> list[str]:
        with self._cond:
            return [line.text for line in self._lines[first:last]]


def marker(name: str) -> Callable[[str], bool]:
    """Markers may follow kernel noise on the same console line: match anywhere."""
    token = f"VMVC-{name}"
    return lambda text: token in text


def respawn_seen_at(log: LineLog, start: int) -> float | None:
    """When the init's respawn line (`VMVC-RESPAWN status=N`: guest-init, or the systemd
    unit's ExecStopPost) arrived after index `start`; None if it has not."""
    try:
        _, line = log.wait_for(marker("RESPAWN"), start=start, timeout=0, what="respawn line")
    except AgentError:
        return None
    return line.at


def parse_ready(text: str, at: float) -> ReadyInfo:
    fields = dict(
        part.split("=", 1) for part in text[text.index(READY_PREFIX) :].split()[1:] if "=" in part
    )
    return ReadyInfo(fields.get("image", "unknown"), fields.get("kernel", ""), at)


def wait_ready(log: LineLog, timeout: float, start: int = 0) -> tuple[int, ReadyInfo]:
    index, line = log.wait_for(marker("READY"), start=start, timeout=timeout, what="ready marker")
    return index, parse_ready(line.text, line.at)


def command_line(task_id: str, workload: str, args: list[str]) -> str:
    """One command for `agent serve`; tokens are validated because the agent splits on spaces."""
    for token in (task_id, workload, *args):
        if not TOKEN.match(token):
            raise ValueError(f"agent argument {token!r} is not a safe token")
    return " ".join((task_id, workload, *args)) + "\n"


class ByteStream(Protocol):
    def read1(self, size: int = -1, /) -> bytes: ...


class CommandSink(Protocol):
    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...


def pump(stream: ByteStream, log: LineLog) -> None:
    """Feed an `agent serve` instance's output into its log until the stream ends (a reader
    thread's body: the instance is gone when this returns)."""
    for chunk in iter(lambda: stream.read1(65536), b""):
        log.feed(chunk)
    log.close()


def run_served(
    stdin: CommandSink, log: LineLog, task_id: str, workload: str, args: list[str], timeout: float
) -> list[str]:
    """One task of an `agent serve` instance: the command on its stdin, the framed output
    from its log. AgentError if the agent's stdin is closed (it exited)."""
    start = len(log)
    try:
        stdin.write(command_line(task_id, workload, args).encode())
        stdin.flush()
    except (BrokenPipeError, ValueError):
        raise AgentError("the agent exited") from None
    return collect_task(log, task_id, start, timeout)


def collect_task(log: LineLog, task_id: str, start: int, timeout: float) -> list[str]:
    """Raw output of one task, between its BEGIN and END markers; raises if it failed."""
    begin_token = f"VMVC-BEGIN {task_id} "
    end_token = f"VMVC-END {task_id} rc="
    begin, _ = log.wait_for(
        lambda t: begin_token in t, start=start, timeout=timeout, what=f"start of task {task_id}"
    )
    end, end_line = log.wait_for(
        lambda t: end_token in t, start=begin + 1, timeout=timeout, what=f"end of task {task_id}"
    )
    lines = log.lines_between(begin + 1, end)
    return check_task_end(task_id, end_line.text, lines)


def split_framed(output: str, task_id: str) -> list[str]:
    """Framed task output from one captured block (docker exec returns it all at once)."""
    log = LineLog()
    log.feed(output.encode() + b"\n")
    log.close()
    try:
        return collect_task(log, task_id, 0, timeout=0)
    except InstanceGone:
        raise AgentError(
            f"task {task_id} printed no complete output: {' | '.join(log.tail(3))}"
        ) from None


def check_task_end(task_id: str, end_text: str, lines: list[str]) -> list[str]:
    match = re.search(r"rc=(\d+)", end_text)
    code = int(match.group(1)) if match else -1
    if code != 0:
        detail = " | ".join(line for line in lines[-3:] if line.strip()) or "no output"
        raise AgentError(f"task {task_id} failed with exit status {code}: {detail}")
    return lines
