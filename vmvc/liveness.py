"""Which vmvc runs are alive: each run holds an flock on its own file while it runs.

A lock held by a process disappears with the process however it dies (even kill -9), so
`vmvc clean` can tell leftovers of dead runs from resources of a run still in progress.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from vmvc.paths import state_dir


def _lock_path(run_id: str) -> Path:
    return state_dir() / f"{run_id}.lock"


@contextlib.contextmanager
def hold_run_lock(run_id: str) -> Iterator[None]:
    path = _lock_path(run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            path.unlink(missing_ok=True)
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_alive(run_id: str) -> bool:
    path = _lock_path(run_id)
    if not path.exists():
        return False
    try:
        with open(path) as handle:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False
    except BlockingIOError:
        return True
    except OSError:
        return False


def live_run_ids() -> set[str]:
    directory = state_dir()
    if not directory.exists():
        return set()
    return {p.stem for p in directory.glob("*.lock") if is_alive(p.stem)}
