"""The CPU and memory a guest got, read back from its live domain XML.

A guest has `<vcpu>` virtual CPUs (each a QEMU thread the host schedules anywhere unless
`cpuset=` or `<cputune><vcpupin>` pins it, which vmvc does not) and `<memory>` of RAM; it
has no swap device. libvirt docs, "Domain XML format": CPU allocation, CPU tuning, memory
allocation.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

MIB = 2**20
# libvirt's <memory unit=...> scale factors (the live XML says KiB).
UNITS = {
    "b": 1,
    "bytes": 1,
    "k": 2**10,
    "kib": 2**10,
    "m": 2**20,
    "mib": 2**20,
    "g": 2**30,
    "gib": 2**30,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
}


def limits_from_domain_xml(xml: str) -> dict[str, str | int | float]:
    """cpus, memory_mib, swap_mib and how, as the native and container backends record them."""
    root = ET.fromstring(xml)
    out: dict[str, str | int | float] = {}
    vcpu = root.find("vcpu")
    if vcpu is not None and (vcpu.text or "").strip().isdigit():
        out["cpus"] = int((vcpu.text or "").strip())
    memory = root.find("memory")
    if memory is not None and (memory.text or "").strip().isdigit():
        scale = UNITS.get((memory.get("unit") or "KiB").lower(), 2**10)
        out["memory_mib"] = round(int((memory.text or "").strip()) * scale / MIB, 1)
    out["swap_mib"] = 0  # no swap device in the guest
    pins = [p.get("cpuset", "") for p in root.findall("cputune/vcpupin")]
    cpuset = (vcpu.get("cpuset") if vcpu is not None else None) or ",".join(p for p in pins if p)
    if cpuset:
        out["cpuset"] = cpuset
    quota = root.findtext("cputune/quota")
    how = "vCPU threads" + (" pinned" if cpuset else ", unpinned")
    if quota:
        how += f", cputune quota {quota}"
    out["how"] = how + "; guest RAM (the QEMU process itself is not limited)"
    return out
