"""Bounded calls into libvirtd: a daemon that accepts and never answers must not hang vmvc.

libvirt's client waits for a reply forever. Two guards: once a connection is open, libvirt's
keepalive (it needs the event loop vmvc already runs for the console) closes it when the
daemon stops answering, which fails every pending call; and the calls that may block before
that (open itself, createXML, defineXML, a volume upload) run in a worker thread that the
caller stops waiting for at a deadline. A URI that missed a deadline once is not waited for
again in the same process, so `vmvc doctor` names a hung daemon within seconds.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

import libvirt

from vmvc.backends.libvirt_engine.console import ensure_event_loop

T = TypeVar("T")

OPEN_TIMEOUT_S = 5.0  # a local daemon answers in milliseconds
REMOTE_OPEN_TIMEOUT_S = 30.0  # ssh/tls handshakes to another host
CALL_TIMEOUT_S = 120.0  # createXML/defineXML: 0.3 s normally, far more on a loaded host
KEEPALIVE_INTERVAL_S = 5  # a ping every 5 s; after 3 unanswered the connection is closed
KEEPALIVE_COUNT = 3

_unanswered: set[str] = set()


class LibvirtTimeout(RuntimeError):
    """libvirtd did not answer a call in time."""


def with_deadline(call: Callable[[], T], seconds: float, what: str) -> T:
    """`call()` in a worker thread; raises LibvirtTimeout if it has not returned by then.

    A call that timed out keeps its (daemon) thread; the keepalive or the process's exit
    ends it. Its late result is dropped."""
    outcome: dict[str, object] = {}

    def work() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=work, name=f"libvirt {what}", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise LibvirtTimeout(f"libvirtd did not answer {what} within {seconds:.0f} s")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def _remote(uri: str) -> bool:
    """Another host (ssh and the like): qemu+unix is a local socket, answered in milliseconds."""
    scheme, _, rest = uri.partition("://")
    transport = scheme.partition("+")[2]
    return transport not in ("", "unix") or not rest.startswith("/")


def open_connection(uri: str, timeout: float | None = None) -> libvirt.virConnect:
    """libvirt.open with a deadline, then keepalive so no later call can hang forever."""
    if timeout is None:
        timeout = REMOTE_OPEN_TIMEOUT_S if _remote(uri) else OPEN_TIMEOUT_S
    if uri in _unanswered:
        raise LibvirtTimeout(f"libvirtd did not answer at {uri} within {timeout:.0f} s")
    ensure_event_loop()
    try:
        conn = with_deadline(lambda: libvirt.open(uri), timeout, f"at {uri}")
    except LibvirtTimeout:
        _unanswered.add(uri)
        raise
    # A driver without keepalive (test://, an embedded driver) has no connection to lose.
    with contextlib.suppress(libvirt.libvirtError):
        conn.setKeepAlive(KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT)
    return conn
