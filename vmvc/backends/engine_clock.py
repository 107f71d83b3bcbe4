"""Container engines' own clock: their RFC 3339 times read as epoch seconds and moved to
the monotonic clock the agent's LineLog uses.

Docker and Podman record when a container stopped and started (State.FinishedAt,
StartedAt) and when each log line was read, in nanoseconds on the wall clock; a recovery's
detection time and a restarted agent's lines are stamped with those, not with when vmvc
happened to look. KilledAt is the other end: when vmvc's own SIGKILL left, on both clocks.
"""

from __future__ import annotations

import os
import re
import signal
import time
from datetime import datetime, timedelta, timezone

_TIMESTAMP = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)$",
)


def engine_time(text: str) -> float | None:
    """An engine's RFC 3339 time (nanoseconds; Z or an offset) as epoch seconds; None for Go's
    zero time or anything unreadable."""
    match = _TIMESTAMP.match(text.strip())
    if not match or text.startswith("0001-"):
        return None
    whole = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S")
    zone = match.group(3)
    if zone == "Z":
        offset = timedelta(0)
    else:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    stamp = whole.replace(tzinfo=timezone(offset))
    fraction = float(match.group(2)) if match.group(2) else 0.0
    return stamp.timestamp() + fraction


def to_monotonic(wall: float) -> float:
    """A wall-clock time of this host on the monotonic clock the LineLog uses."""
    return time.monotonic() - (time.time() - wall)


class KilledAt:
    """A SIGKILL vmvc sends, timed on both clocks at once: an engine's wall-clock record of
    the death (FinishedAt) is then put on the monotonic clock relative to the kill, with no
    drift between two readings of the clocks taken at different moments."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.monotonic = 0.0

    def kill(self, pid: int) -> None:
        self.wall = time.time()
        self.monotonic = time.monotonic()
        os.kill(pid, signal.SIGKILL)

    def on_monotonic(self, wall: float) -> float:
        """An engine time `wall` (epoch seconds) on the monotonic clock, via the kill."""
        return self.monotonic + (wall - self.wall)
