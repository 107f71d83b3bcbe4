"""Workloads: one module each; agent workloads are looked up by name."""

from __future__ import annotations

from vmvc.bench.base import AgentWorkload
from vmvc.bench.cpu import CpuWorkload
from vmvc.bench.io import IoWorkload
from vmvc.bench.memory import MemoryWorkload

AGENT_WORKLOADS: dict[str, AgentWorkload] = {
    w.name: w for w in (CpuWorkload(), MemoryWorkload(), IoWorkload())
}
