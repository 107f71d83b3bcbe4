"""The host's description recorded once per run (results hold only when conditions match)."""

from __future__ import annotations

import os
import platform
import socket
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import psutil


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _os_release() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "unknown"


CPU_CACHES = Path("/sys/devices/system/cpu/cpu0/cache")


def last_level_cache(caches: Path = CPU_CACHES) -> dict[str, Any] | None:
    """The largest-level data or unified cache of CPU 0, as sysfs describes it.

    {"level": 3, "size_bytes": 33554432, "shared_cpu_list": "0-1"}, or None where sysfs has
    no cache description (some VMs, non-Linux). On a virtual machine this is what the
    hypervisor tells the guest, which can be smaller than the physical cache.
    """
    best: dict[str, Any] | None = None
    for index in sorted(caches.glob("index[0-9]*")):
        try:
            kind = (index / "type").read_text().strip()
            level = int((index / "level").read_text().strip())
            size = _cache_size_bytes((index / "size").read_text().strip())
        except (OSError, ValueError):
            continue
        if kind == "Instruction" or size is None:
            continue
        if best is None or level > best["level"]:
            shared = index / "shared_cpu_list"
            best = {
                "level": level,
                "size_bytes": size,
                "shared_cpu_list": shared.read_text().strip() if shared.exists() else None,
            }
    return best


def _cache_size_bytes(text: str) -> int | None:
    """sysfs cache sizes read "32768K" (sometimes "32M")."""
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    if text[-1:].upper() in units:
        return int(text[:-1]) * units[text[-1].upper()]
    return int(text) if text.isdigit() else None


def vmvc_version() -> str:
    try:
        return version("vmvc")
    except PackageNotFoundError:
        return "unknown"


def host_environment() -> dict[str, Any]:
    memory = psutil.virtual_memory()
    llc = last_level_cache()
    return {
        "hostname": socket.gethostname(),
        "kernel": platform.release(),
        "os_release": _os_release(),
        "architecture": platform.machine(),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_mib": memory.total // 2**20,
        "memory_available_mib": memory.available // 2**20,
        # the memory workload's working sets are sized against this (>= 4x, as STREAM asks)
        "llc_level": llc["level"] if llc else None,
        "llc_bytes": llc["size_bytes"] if llc else None,
        "kvm_device": Path("/dev/kvm").exists(),
        "python": platform.python_version(),
        "vmvc_version": vmvc_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def host_accel(environment: dict[str, Any], host: str) -> str | None:
    """The VM acceleration (kvm/tcg) used on one benchmarked host, None if no VM ran there.

    This machine's is ``environment.accel``; another host's is ``environment.hosts.<name>
    .accel`` (recorded by vmvc.selection). Reading the top-level value for a remote host would
    label an emulated remote VM with this machine's acceleration (or none at all).
    """
    if host == "local":
        value = environment.get("accel")
    else:
        hosts = environment.get("hosts")
        entry = hosts.get(host) if isinstance(hosts, dict) else None
        value = entry.get("accel") if isinstance(entry, dict) else None
    return value if isinstance(value, str) else None


def accel_by_host(environment: dict[str, Any], hosts: list[str]) -> dict[str, str | None]:
    """host_accel for each host, in the given order."""
    return {host: host_accel(environment, host) for host in hosts}
