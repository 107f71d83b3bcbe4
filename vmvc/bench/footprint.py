"""Footprint: host memory held by one idle instance (after it is ready, before any work).

libvirt: PSS/USS of the QEMU process; docker: the container's memory cgroup from memory.stat
(RSS + cache + swap without inactive file cache, as `docker stats` counts; not the fuzzy
memory.usage_in_bytes) plus the containerd shim's PSS; native: PSS of the agent's process
tree. total_mib is the figure compared across backends.
"""

from __future__ import annotations

from vmvc.bench.base import Measurement

# Idle after ready: measured here (2026-12-01, 2 boots per backend, TCG) at 0.25, 0.5, 1 and
# 2 s after the ready line, every backend's total_mib was the same at 0.5 s as at 2 s
# (largest change 2.1 MiB of 232 for a VM, between 0.25 and 0.5 s).
SETTLE_SECONDS = 0.5


def measurements(footprint: dict[str, float]) -> list[Measurement]:
    return [
        Measurement(metric, value, "MiB", False, {"component": metric != "total_mib"})
        for metric, value in footprint.items()
        if metric.endswith("_mib")
    ]
