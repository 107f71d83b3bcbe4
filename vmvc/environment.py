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


def vmvc_version() -> str:
    try:
        return version("vmvc")
    except PackageNotFoundError:
        return "unknown"


def host_environment() -> dict[str, Any]:
    memory = psutil.virtual_memory()
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
        "kvm_device": Path("/dev/kvm").exists(),
        "python": platform.python_version(),
        "vmvc_version": vmvc_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def host_accel(environment: dict[str, Any], host: str) -> str | None:
    """The VM acceleration (kvm/tcg) used on one benchmarked host, None if no VM ran there.

    This machine's is ``environment.accel``; another host's is ``environment.hosts.<name>
    .accel`` (recorded by vmvc.remote). Reading the top-level value for a remote host would
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
