"""Reading a libvirt domain's serial console without deadlocks.

A blocking virStream.recv() in a thread hung about one boot in nine on these hosts (the stream
holds the client I/O loop while resume() waits for it). What works: libvirt's default event
loop running in its own thread, a non-blocking stream, and a readable-event callback.
"""

from __future__ import annotations

import contextlib
import threading
import time

import libvirt

from vmvc.agent.protocol import LineLog

_loop_lock = threading.Lock()
_loop_started = False


def _ignore_libvirt_error(_ctx: object, _err: object) -> None:
    """libvirt prints every error to stderr by default, including the expected
    "Domain not found" after a transient guest powers off; errors still raise."""


def ensure_event_loop() -> None:
    """Register the default event loop once, before any connection is opened."""
    global _loop_started
    with _loop_lock:
        if _loop_started:
            return
        libvirt.registerErrorHandler(_ignore_libvirt_error, None)
        libvirt.virEventRegisterDefaultImpl()
        thread = threading.Thread(target=_run_loop, name="libvirt-events", daemon=True)
        thread.start()
        _loop_started = True


def _run_loop() -> None:
    while True:
        try:
            libvirt.virEventRunDefaultImpl()
        except libvirt.libvirtError:
            time.sleep(0.05)


class ConsoleReader:
    """Feeds everything the guest prints on its serial console into a LineLog."""

    EVENTS = (
        libvirt.VIR_STREAM_EVENT_READABLE
        | libvirt.VIR_STREAM_EVENT_ERROR
        | libvirt.VIR_STREAM_EVENT_HANGUP
    )

    def __init__(self, conn: libvirt.virConnect, domain: libvirt.virDomain, log: LineLog) -> None:
        self.log = log
        self._closed = False
        self._lock = threading.Lock()
        self.stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
        domain.openConsole(None, self.stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
        self.stream.eventAddCallback(self.EVENTS, self._on_event, None)

    def _on_event(self, stream: libvirt.virStream, events: int, _opaque: object) -> None:
        if events & libvirt.VIR_STREAM_EVENT_READABLE:
            while True:
                try:
                    data = stream.recv(65536)
                except libvirt.libvirtError:
                    self._finish()
                    return
                if data == -2:  # would block: wait for the next readable event
                    break
                if not data:  # end of stream: the guest is gone
                    self._finish()
                    return
                self.log.feed(data)
        if events & (libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP):
            self._finish()

    def send(self, data: bytes, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while data:
            if self._closed:
                raise BrokenPipeError("console closed")
            sent = self.stream.send(data)
            if sent == -2:
                if time.monotonic() > deadline:
                    raise TimeoutError("console did not accept input")
                time.sleep(0.01)
                continue
            data = data[sent:]

    def _finish(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        with contextlib.suppress(libvirt.libvirtError):
            self.stream.eventRemoveCallback()
        with contextlib.suppress(libvirt.libvirtError):
            self.stream.abort()
        self.log.close()

    def close(self) -> None:
        self._finish()
