"""The limits a container engine applied, from its inspect output (HostConfig).

Docker and Podman store them alike (Podman's inspect keeps Docker's HostConfig fields).

`--cpus N` is stored as NanoCpus (N x 10^9) and enforced as a CFS quota of N CPUs;
`--cpu-quota`/`--cpu-period` are the same mechanism spelled out; `--memory` is Memory and
`--memory-swap` is memory plus swap (equal: no swap, -1: unlimited). Docker docs, "Runtime
options with Memory, CPUs, and GPUs" and the Engine API's ContainerInspect HostConfig.
"""

from __future__ import annotations

from typing import Any

MIB = 2**20


def limits_from_host_config(
    host_config: dict[str, Any], engine: str = "docker"
) -> dict[str, str | int | float]:
    """cpus, memory_mib, swap_mib and how, as the native and VM backends record them."""
    nano = int(host_config.get("NanoCpus") or 0)
    quota = int(host_config.get("CpuQuota") or 0)
    period = int(host_config.get("CpuPeriod") or 0) or 100_000
    cpuset = str(host_config.get("CpusetCpus") or "")
    memory = int(host_config.get("Memory") or 0)
    memswap = int(host_config.get("MemorySwap") or 0)
    out: dict[str, str | int | float] = {}
    if nano > 0:
        out["cpus"] = round(nano / 1e9, 3)
        how = f"{engine} --cpus (NanoCpus {nano}: CFS quota)"
    elif quota > 0:
        out["cpus"] = round(quota / period, 3)
        how = f"{engine} CFS quota {quota}/{period} us"
    else:
        out["cpus"] = "unlimited"
        how = f"{engine}, no CPU quota"
    out["memory_mib"] = round(memory / MIB, 1) if memory > 0 else "unlimited"
    if memory > 0 and memswap > 0:
        out["swap_mib"] = round((memswap - memory) / MIB, 1)
    elif memswap < 0:
        out["swap_mib"] = "unlimited"
    if cpuset:
        out["cpuset"] = cpuset
    out["how"] = how + ", Memory/MemorySwap"
    return out
