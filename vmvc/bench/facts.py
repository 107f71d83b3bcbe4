"""Isolation facts: the agent's `facts` output (key=value lines) turned into typed facts.

Pure functions, unit-tested on recorded outputs (tests/data/*-facts.txt). The keys are what
claims C07 and C09 read: kernel_release, host_kernel_release, shares_host_kernel,
os_release, host_processes_visible, capabilities, devices_visible, no_new_privs, seccomp,
mem_total_kib, cpus_online, block_devices, hostname.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SECCOMP_MODES = {0: "disabled", 1: "strict", 2: "filter"}
INTEGER_KEYS = (
    "processes_visible",
    "devices_visible",
    "mem_total_kib",
    "cpus_online",
    "kernel_modules_visible",
    "uid",
)


@dataclass(frozen=True)
class HostFacts:
    """What the host says about itself, to compare an instance's view against."""

    kernel_release: str | None
    boot_id: str | None = None
    os_release: str | None = None
    processes: int | None = None
    btime: int | None = None  # /proc/stat btime: when the running kernel booted (epoch s)


def parse_key_values(lines: list[str]) -> dict[str, str]:
    """`key=value` lines; the first `=` splits, later duplicates win, other lines are ignored."""
    raw: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.strip().partition("=")
        if sep and key and key.replace("_", "").isalnum():
            raw[key] = value.strip()
    return raw


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _flag(value: str | None) -> bool | None:
    return {"1": True, "0": False}.get((value or "").strip())


def capability_count(cap_eff: str) -> int | None:
    """Number of capabilities in a CapEff hex mask (`/proc/self/status`)."""
    try:
        return bin(int(cap_eff, 16)).count("1")
    except ValueError:
        return None


def parse_facts(lines: list[str], host: HostFacts) -> dict[str, Any]:
    """Typed facts from the agent's output, with what they mean relative to the host.

    shares_host_kernel: the boot id (random per kernel boot) equal to the host's when both
    are known -- a VM may boot the very same kernel release as the host; else the release
    strings compared; unknown host facts (a remote host) leave it out.
    host_processes_visible: whether the host's probe process (named by the
    token it was given) was seen; None when the agent was not given a probe.
    """
    raw = parse_key_values(lines)
    facts: dict[str, Any] = {}
    for key in ("kernel_release", "os_release", "hostname", "pid1_comm"):
        if raw.get(key):
            facts[key] = raw[key]
    for key in INTEGER_KEYS:
        number = _int(raw.get(key))
        if number is not None:
            facts[key] = number
    if host.kernel_release:
        facts["host_kernel_release"] = host.kernel_release
    if host.os_release:
        facts["host_os_release"] = host.os_release
    if host.processes is not None:
        facts["host_processes"] = host.processes

    boot_id, btime = raw.get("boot_id"), _int(raw.get("kernel_btime"))
    same_boot = btime is not None and host.btime is not None and abs(btime - host.btime) <= 1
    same_release = raw.get("kernel_release") == host.kernel_release
    if boot_id and host.boot_id and boot_id == host.boot_id:
        facts["shares_host_kernel"] = True
        facts["shares_host_kernel_basis"] = "boot id"
    elif same_boot and same_release:
        # systemd as a container's PID 1 mounts a boot id of its own over the kernel's
        # (a system container); the kernel's boot time and release still give it away.
        facts["shares_host_kernel"] = True
        facts["shares_host_kernel_basis"] = "kernel boot time and release (boot id replaced)"
    elif boot_id and host.boot_id:
        facts["shares_host_kernel"] = False
        facts["shares_host_kernel_basis"] = "boot id"
    elif raw.get("kernel_release") and host.kernel_release:
        facts["shares_host_kernel"] = raw["kernel_release"] == host.kernel_release
        facts["shares_host_kernel_basis"] = "kernel release string"

    facts["host_processes_visible"] = _flag(raw.get("host_probe_visible"))

    cap_eff = raw.get("cap_eff")
    if cap_eff:
        count = capability_count(cap_eff)
        facts["capabilities_count"] = count
        facts["capabilities"] = f"{count} (CapEff {cap_eff})"
    no_new_privs = _flag(raw.get("no_new_privs"))
    if no_new_privs is not None:
        facts["no_new_privs"] = no_new_privs
    seccomp = _int(raw.get("seccomp"))
    if seccomp is not None:
        facts["seccomp"] = SECCOMP_MODES.get(seccomp, str(seccomp))
    if "block_devices" in raw:
        facts["block_devices"] = raw["block_devices"].split()
    return facts
