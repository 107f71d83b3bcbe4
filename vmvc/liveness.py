"""Which vmvc runs are alive: each run holds an flock on its own file while it runs.

A lock held by a process disappears with the process however it dies (even kill -9), so
`vmvc clean` can tell leftovers of dead runs from resources of a run still in progress.

The locks live in one fixed root-owned directory (/run/vmvc/runs, 0700), whatever the user
id or VMVC_CACHE: every vmvc process on the host sees the same live runs, and nobody else
can create or flock a lock file there (a lock anyone could flock would make a dead run look
alive; one anyone could delete would make a live run look dead). Lock files are 0600.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from vmvc.paths import (
    PRIVATE_MODE,
    STATE_ROOT,
    UnsafePathError,
    check_ancestors,
    check_trusted_dir,
    safe_name,
    state_dir,
)

LOCK_MODE = 0o600
# Where older vmvc versions kept their locks (root's cache): a run started by an older vmvc still
# holds its lock there, and must still count as alive while both versions are installed.
LEGACY_STATE_DIR = Path("/var/cache/vmvc/runs")


class RunLockError(Exception):
    """A run cannot take its lock (one line, for `error:`)."""


def _lock_path(run_id: str) -> Path:
    return state_dir() / f"{safe_name(run_id)}.lock"


def ensure_state_dir() -> Path:
    """Create /run/vmvc/runs (0700) or accept it only if it is root's and nobody else's."""
    if os.geteuid() != 0:
        raise RunLockError(
            f"vmvc needs root to run or clean: the run locks in {STATE_ROOT} are root's"
        )
    check_ancestors(STATE_ROOT)
    for directory in (STATE_ROOT, state_dir()):
        try:
            os.mkdir(directory, PRIVATE_MODE)
        except FileExistsError:
            check_trusted_dir(directory)
        os.chmod(directory, PRIVATE_MODE)
    return state_dir()


def _holder(path: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd) as handle:
            return str(int(handle.readline().strip()))
    return "?"


@contextlib.contextmanager
def hold_run_lock(run_id: str) -> Iterator[None]:
    try:
        ensure_state_dir()
    except UnsafePathError as exc:
        raise RunLockError(str(exc)) from None
    path = _lock_path(run_id)
    handle = _locked(path, run_id)
    with handle:
        os.fchmod(handle.fileno(), LOCK_MODE)  # an older vmvc made them 0644
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n{time.time():.0f}\n")
        handle.flush()
        try:
            yield
        finally:
            path.unlink(missing_ok=True)
            fcntl.flock(handle, fcntl.LOCK_UN)


def _locked(path: Path, run_id: str) -> IO[str]:
    """The lock file, flocked; retried if its holder unlinked it between our open and flock
    (a lock on an unlinked file would protect nothing)."""
    for _attempt in range(5):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, LOCK_MODE)
        handle = os.fdopen(fd, "r+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise RunLockError(f"run {run_id} is already running (pid {_holder(path)})") from None
        with contextlib.suppress(FileNotFoundError):
            if os.lstat(path).st_ino == os.fstat(fd).st_ino:
                return handle
        handle.close()
    raise RunLockError(f"cannot take the lock of run {run_id}: its lock file keeps changing")


def is_alive(run_id: str) -> bool:
    """Whether a process holds the run's lock now (asked again right before each removal)."""
    try:
        path = _lock_path(run_id)
    except UnsafePathError:
        return False  # not a name vmvc gives a run: no vmvc run can hold it
    return _held(path) or _held(LEGACY_STATE_DIR / path.name)


def _held(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # cannot tell (no permission, a planted symlink): never call it dead
    with os.fdopen(fd) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def live_run_ids() -> set[str]:
    """The runs alive now; raises RunLockError where vmvc cannot see the locks (not root)."""
    directory = state_dir()
    if os.geteuid() != 0:
        raise RunLockError(
            f"vmvc needs root to tell live runs from dead ones (locks in {STATE_ROOT})"
        )
    names = {p.stem for d in (directory, LEGACY_STATE_DIR) if d.is_dir() for p in d.glob("*.lock")}
    return {name for name in names if is_alive(name)}


def controller_id() -> str:
    """This machine, as written into labels and metadata of what vmvc creates (a hash of
    /etc/machine-id, so it says nothing about the host): several controllers may drive one
    remote engine, and each only ever removes what it made itself."""
    for source in (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id")):
        with contextlib.suppress(OSError):
            text = source.read_text().strip()
            if text:
                return hashlib.sha256(f"vmvc-controller {text}".encode()).hexdigest()[:16]
    return hashlib.sha256(f"vmvc-controller {socket.gethostname()}".encode()).hexdigest()[:16]
