"""A container's output across restarts, and docker's own timestamps.

Docker's follow stream ends when the main process exits, even when the restart policy will
start it again: the follower here keeps one LineLog collecting across restarts (the backend
uses it for instances provisioned with `restart_on_crash`), stamping each line with the
engine's own time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from vmvc.agent.protocol import LineLog
from vmvc.backends.engine_clock import engine_time, to_monotonic

# How often the restart-aware follower looks at the container while it is not running.
RESTART_POLL_S = 0.02


def container_state(container: Container) -> dict[str, Any] | None:
    """The container's State block, or None when it no longer exists."""
    try:
        container.reload()
    except docker.errors.NotFound:
        return None
    return dict(container.attrs.get("State") or {})


def follow_across_restarts(container: Container, log: LineLog) -> None:
    """Feed the container's output into `log` across restarts; close it when it stops for good.

    Docker's follow stream ends when the main process exits, even when the restart policy
    will start it again. This reopens the stream for each new run, from the previous run's
    exit time (so no line is read twice or missed), and stamps every line with the engine's
    own timestamp converted to the monotonic clock: the line's arrival time must not
    include the delay before the stream was reopened.
    """
    since: float | None = None
    try:
        while True:
            for text, at in _timestamped_lines(container, since):
                log.feed(text.encode() + b"\n", at=at)
            started = (container.attrs.get("State") or {}).get("StartedAt", "")
            while True:  # wait for the next run, or for the end
                state = container_state(container)
                if state is None or state.get("Status") in ("exited", "dead", "removing"):
                    return
                if state.get("Status") == "running" and state.get("StartedAt") != started:
                    since = engine_time(state.get("FinishedAt", ""))
                    break
                time.sleep(RESTART_POLL_S)
    except docker.errors.DockerException:
        pass
    finally:
        log.close()


def _timestamped_lines(container: Container, since: float | None) -> Iterator[tuple[str, float]]:
    """(text, monotonic time) of each output line of the current run, following it."""
    options: dict[str, Any] = {"stream": True, "follow": True, "timestamps": True}
    if since:
        options["since"] = since
    container.reload()  # the StartedAt this stream belongs to
    buffer = b""
    for chunk in container.logs(**options):
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for raw in complete:
            stamp, _, text = raw.decode("utf-8", errors="replace").partition(" ")
            wall = engine_time(stamp)
            at = time.monotonic() if wall is None else to_monotonic(wall)
            yield text.rstrip("\r"), at
    if buffer:
        stamp, _, text = buffer.decode("utf-8", errors="replace").partition(" ")
        yield text, time.monotonic()
