"""The host side of the agent protocol: line logs, ready markers, framed task output."""

from __future__ import annotations

import threading
import time

import pytest

from vmvc.agent.protocol import (
    AgentError,
    InstanceGone,
    LineLog,
    collect_task,
    command_line,
    parse_ready,
    respawn_seen_at,
    split_framed,
    wait_ready,
)


def test_lines_split_across_chunks_and_carriage_returns_are_dropped() -> None:
    log = LineLog()
    log.feed(b"VMVC-REA")
    log.feed(b"DY image=abc kernel=6.1.0\r\nnext")
    assert log.tail() == ["VMVC-READY image=abc kernel=6.1.0"]
    log.close()
    assert log.tail()[-1] == "next"


def test_ready_marker_after_kernel_noise_on_the_same_line() -> None:
    info = parse_ready("[    1.23] random: crng init VMVC-READY image=abc kernel=6.1", 5.0)
    assert (info.image_id, info.kernel, info.at) == ("abc", "6.1", 5.0)


def test_wait_ready_blocks_until_the_marker_arrives() -> None:
    log = LineLog()
    threading.Timer(0.05, lambda: log.feed(b"VMVC-READY image=x kernel=k\n")).start()
    _, info = wait_ready(log, timeout=5)
    assert info.image_id == "x"


def test_wait_times_out_with_a_message() -> None:
    log = LineLog()
    started = time.monotonic()
    with pytest.raises(AgentError, match="no ready marker within"):
        wait_ready(log, timeout=0.1)
    assert time.monotonic() - started < 2


def test_closed_log_fails_fast() -> None:
    log = LineLog()
    log.close()
    with pytest.raises(InstanceGone):
        wait_ready(log, timeout=30)


def test_collect_task_returns_only_its_own_output() -> None:
    log = LineLog()
    log.feed(
        b"VMVC-BEGIN t1 cpu\nold\nVMVC-END t1 rc=0\nVMVC-BEGIN t2 cpu\nmine\nVMVC-END t2 rc=0\n"
    )
    assert collect_task(log, "t2", 0, timeout=1) == ["mine"]


def test_failed_task_raises_with_its_last_words() -> None:
    with pytest.raises(AgentError, match="exit status 1: fio: bad option"):
        split_framed("VMVC-BEGIN t3 io\nfio: bad option\nVMVC-END t3 rc=1", "t3")


def test_unterminated_task_output_is_an_error() -> None:
    with pytest.raises(AgentError, match="no complete output"):
        split_framed("VMVC-BEGIN t4 io\npartial", "t4")


@pytest.mark.parametrize("token", ["a b", "x;rm", "$(id)", "", "a\nb"])
def test_command_tokens_are_validated(token: str) -> None:
    with pytest.raises(ValueError):
        command_line("t1", "cpu", [token])


def test_command_line_format() -> None:
    assert command_line("t7", "io", ["64", "3", "/data"]) == "t7 io 64 3 /data\n"


def test_a_served_task_goes_out_on_stdin_and_comes_back_framed() -> None:
    import io

    from vmvc.agent.protocol import pump, run_served

    log = LineLog()
    log.feed(b"VMVC-END t1 rc=0\n")  # an earlier task's end: not this one's

    class Agent(io.BytesIO):
        def flush(self) -> None:  # the agent answers once the command is flushed
            log.feed(b"VMVC-BEGIN t1 cpu\nevents per second: 5.0\nVMVC-END t1 rc=0\n")

    sent = Agent()
    assert run_served(sent, log, "t1", "cpu", ["1"], timeout=1) == ["events per second: 5.0"]
    assert sent.getvalue() == b"t1 cpu 1\n"
    stream = io.BufferedReader(io.BytesIO(b"a\nb\n"))
    fed = LineLog()
    pump(stream, fed)
    assert fed.closed and fed.tail(2) == ["a", "b"]


def test_a_served_task_to_an_agent_that_exited_is_an_agent_error() -> None:
    import io

    from vmvc.agent.protocol import run_served

    closed = io.BytesIO()
    closed.close()  # writing raises ValueError, as a closed pipe's stdin does
    with pytest.raises(AgentError, match="the agent exited"):
        run_served(closed, LineLog(), "t1", "cpu", [], timeout=1)


def test_the_respawn_line_is_found_only_after_the_crash_began() -> None:
    log = LineLog()
    log.feed(b"VMVC-RESPAWN status=137\n")  # an earlier life's respawn
    start = len(log)
    assert respawn_seen_at(log, start) is None  # nothing since: unknown, not invented
    before = time.monotonic()
    log.feed(b"noise VMVC-RESPAWN status=137\n")
    seen = respawn_seen_at(log, start)
    assert seen is not None and before <= seen <= time.monotonic()
