"""Memory: STREAM copy/triad bandwidth and random pointer-chase latency (vmvc-memtool).

Both run one static binary (vmvc/agent/memtool.c) over working sets well past the host's
last-level cache, so the figures are memory's, not cache's: bandwidth is where a backend's
memory path costs throughput, latency is where address translation costs (each access of the
chase misses the TLB; under a hypervisor the page walk is two-dimensional).

Metrics: ``bandwidth_mib_s`` is STREAM's triad (a = b + s*c, 24 bytes per element, McCalpin's
headline kernel), ``copy_mib_s`` the copy kernel, ``latency_ns`` nanoseconds per dependent
access. Every sample records the working set, the host's LLC and whether the working set is
at least 4x the LLC (``past_llc``), STREAM's rule for measuring memory rather than cache.
"""

from __future__ import annotations

import re
from typing import Any

from vmvc.bench.base import Measurement, ParseError
from vmvc.config import Config
from vmvc.environment import last_level_cache

LINE = re.compile(r"^vmvc-memtool (bandwidth|latency)\b(.*)$")
PAIR = re.compile(r"(\w+)=(\S+)")
STREAM_FACTOR = 4  # STREAM: working set >= 4x the last-level cache


def _fields(text: str) -> dict[str, str]:
    return dict(PAIR.findall(text))


def _number(fields: dict[str, str], key: str, tool: str) -> float:
    try:
        return float(fields[key])
    except (KeyError, ValueError):
        raise ParseError(f"vmvc-memtool {tool} line has no number '{key}'") from None


def llc_metadata(working_set_mib: float, llc_bytes: int | None) -> dict[str, Any]:
    """Where a working set stands against the host's last-level cache."""
    if not llc_bytes:
        return {"llc_bytes": None, "past_llc": None}
    return {
        "llc_bytes": llc_bytes,
        "working_set_llc_multiple": round(working_set_mib * 2**20 / llc_bytes, 2),
        "past_llc": working_set_mib * 2**20 >= STREAM_FACTOR * llc_bytes,
    }


class MemoryWorkload:
    name = "memory"

    def __init__(self, llc_bytes: int | None = None) -> None:
        # The host's LLC (read when not given): what decides cache or memory is the hardware
        # under every backend, not the cache size a guest is told.
        self._llc_bytes = llc_bytes

    @property
    def llc_bytes(self) -> int | None:
        if self._llc_bytes is None:
            llc = last_level_cache()
            self._llc_bytes = llc["size_bytes"] if llc else 0
        return self._llc_bytes or None

    def command(self, config: Config) -> list[str]:
        memory = config.workload.memory
        return [
            str(memory.working_set_mib),
            str(memory.seconds),
            str(config.workload.cpu.threads or config.instance.vcpus),
            str(memory.latency_working_set_mib),
            str(memory.latency_seconds),
        ]

    def parse(self, lines: list[str]) -> list[Measurement]:
        found: dict[str, dict[str, str]] = {}
        for line in lines:
            match = LINE.match(line.strip())
            if match:
                found[match.group(1)] = _fields(match.group(2))
        for tool in ("bandwidth", "latency"):
            if tool not in found:
                raise ParseError(f"vmvc-memtool printed no '{tool}' line")
        bandwidth, latency = found["bandwidth"], found["latency"]
        bw_set = _number(bandwidth, "working_set_mib", "bandwidth")
        bw_meta = {
            "tool": "vmvc-memtool (STREAM copy/triad)",
            "working_set_mib": bw_set,
            "array_mib": _number(bandwidth, "array_mib", "bandwidth"),
            "threads": int(_number(bandwidth, "threads", "bandwidth")),
            **llc_metadata(bw_set, self.llc_bytes),
        }
        lat_set = _number(latency, "working_set_mib", "latency")
        lat_meta = {
            "tool": "vmvc-memtool (random pointer chase)",
            "working_set_mib": lat_set,
            "stride_bytes": int(_number(latency, "stride_bytes", "latency")),
            "page_kib": int(_number(latency, "page_kib", "latency")),
            "accesses": int(_number(latency, "accesses", "latency")),
            **llc_metadata(lat_set, self.llc_bytes),
        }
        triad = _number(bandwidth, "triad_mib_s", "bandwidth")
        copy = _number(bandwidth, "copy_mib_s", "bandwidth")
        triad_best = _number(bandwidth, "triad_best_mib_s", "bandwidth")
        copy_best = _number(bandwidth, "copy_best_mib_s", "bandwidth")
        return [
            Measurement(
                "bandwidth_mib_s", triad, "MiB/s", True, {**bw_meta, "best_mib_s": triad_best}
            ),
            Measurement("copy_mib_s", copy, "MiB/s", True, {**bw_meta, "best_mib_s": copy_best}),
            Measurement(
                "latency_ns", _number(latency, "ns_per_access", "latency"), "ns", False, lat_meta
            ),
        ]
