"""Startup: create/start to the agent's ready marker, split into the phases each engine shows.

Phases (seconds): native spawn_s, ready_s; docker create_s, start_s, ready_s; libvirt
create_s (domain created paused), firmware_kernel_s (resume to initramfs marker), initramfs_s
(modules and root mount), userspace_s (to ready). total_s is create-to-ready for all.
"""

from __future__ import annotations

from vmvc.bench.base import Measurement


def measurements(phases: dict[str, float]) -> list[Measurement]:
    order = list(phases)
    return [
        Measurement(
            metric,
            value,
            "s",
            False,
            {"phase": metric != "total_s", "phase_order": order.index(metric)},
        )
        for metric, value in phases.items()
    ]
