"""`vmvc clean` removing a native leftover process that died since the listing."""

from __future__ import annotations

import subprocess

import psutil

from vmvc.backends.native_engine.backend import _kill_unless_gone


def test_a_process_gone_since_the_listing_counts_as_removed() -> None:
    child = subprocess.Popen(["sleep", "30"])
    listed = psutil.Process(child.pid)
    child.kill()
    child.wait()
    _kill_unless_gone(listed)  # must not raise: what clean wanted is true


def test_a_live_process_is_killed() -> None:
    child = subprocess.Popen(["sleep", "30"])
    _kill_unless_gone(psutil.Process(child.pid))
    assert child.wait(timeout=5) == -9
