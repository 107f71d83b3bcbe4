"""libvirt on another host: the same guests as locally, booted from storage volumes.

LibvirtBackend takes this path when its connection URI reaches another machine
(`qemu+ssh://`, see `is_remote_uri`): the backend is the same class, what differs is here.

Nothing is copied with scp or run over a shell: the image is shipped into the host's `vmvc`
storage pool with virStorageVol.upload, each instance's overlay and data disk are volumes
made by the daemon (see pool.py), and the guest is the same domain XML pointing at the
volumes' paths. The console comes through the libvirt connection as locally.

What cannot cross the API: the QEMU pid file (so no PSS/USS); the footprint is QEMU's RSS as
libvirt reports it (virDomainMemoryStats "rss"), and the console log file stays off.
"""

from __future__ import annotations

import contextlib
import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import libvirt

from vmvc.backends.base import InstanceSpec, Leftover, Progress
from vmvc.backends.libvirt_engine.accel import AccelDecision, AccelError, boot_probe
from vmvc.backends.libvirt_engine.domain_xml import DomainDisk
from vmvc.backends.libvirt_engine.pool import (
    POOL_NAME,
    BootVolumes,
    PoolDisks,
    data_template,
    delete_instance_disks,
    delete_volume,
    ensure_pool,
    remove_orphaned_uploads,
    ship_image_volumes,
)
from vmvc.config import Config
from vmvc.image.build import Artefacts
from vmvc.uris import LIBVIRT_REMOTE_SCHEMES

KIB = 1024
INSTANCE_VOLUME = re.compile(r"^(vmvc-(\d{8}T\d{6}Z-[0-9a-f]{6})-.+)-(root\.qcow2|data\.raw)$")
FOOTPRINT_METHOD = "QEMU resident set size (RSS) from virDomainMemoryStats"


def is_remote_uri(uri: str) -> bool:
    """Whether the URI reaches another machine (the only remote transport vmvc accepts)."""
    return uri.split(":", 1)[0] in LIBVIRT_REMOTE_SCHEMES


class PoolAssets:
    """GuestAssets for a guest booting from pool volumes (no console log file: it would be
    written on the other host, where nobody reads it; the console stream is the record)."""

    on_this_host = False  # QEMU runs on the other host: no pid file, memory from libvirt

    def __init__(self, boot: BootVolumes, disks: PoolDisks) -> None:
        self.kernel = boot.kernel
        self.initrd = boot.initrd
        self.console_log: Path | None = None
        self.pool_disks = disks

    def disks(self) -> list[DomainDisk]:
        return [
            DomainDisk(self.pool_disks.overlay, "qcow2", "vda"),
            # cache=none as locally: guest O_DIRECT reaches the host's disk.
            DomainDisk(self.pool_disks.data, "raw", "vdb", cache="none"),
        ]


def rss_footprint(domain: libvirt.virDomain | None) -> dict[str, float]:
    """QEMU's resident memory as libvirtd measures it on its own host (KiB → MiB).

    RSS counts shared pages fully, so it is a little higher than the PSS figure a local
    run records; environment.hosts.<name>.footprint_method says which one a host used.
    """
    if domain is None:
        return {}
    try:
        stats = domain.memoryStats()
    except libvirt.libvirtError:
        return {}
    rss = stats.get("rss")
    if rss is None:
        return {}
    return {"rss_mib": rss / KIB, "total_mib": rss / KIB}


def kvm_offered(conn: libvirt.virConnect) -> bool:
    """Whether the host's capabilities list a KVM domain type (it has a usable /dev/kvm)."""
    try:
        caps = ET.fromstring(conn.getCapabilities())
    except (libvirt.libvirtError, ET.ParseError):
        return False
    return any(
        domain.get("type") == "kvm"
        for guest in caps.findall("guest")
        for domain in guest.findall("arch/domain")
    )


def decide_remote_accel(
    conn: libvirt.virConnect,
    host: str,
    boot: BootVolumes,
    *,
    requested: str,
    timeout: float,
    progress: Progress,
) -> AccelDecision:
    """KVM or TCG on another host, by the same probe boot as locally (not cached: this
    machine's boot id says nothing about when the other host rebooted)."""
    if requested == "tcg":
        return AccelDecision("tcg", "emulation (TCG) requested with --accel tcg", "not run")
    if not kvm_offered(conn):
        decision = AccelDecision(
            "tcg",
            f"host {host} offers no KVM domains (no usable /dev/kvm): VMs are emulated (TCG)",
            "no /dev/kvm",
        )
    else:
        progress(f"host {host}: probing KVM: booting a tiny guest (timeout {timeout:.0f} s)")
        ok, reason = boot_probe(conn, boot.kernel, boot.initrd, timeout)
        decision = (
            AccelDecision("kvm", f"host {host}: {reason}", "ok")
            if ok
            else AccelDecision("tcg", f"host {host}: {reason}: VMs are emulated (TCG)", "failed")
        )
    if requested == "kvm" and decision.mode != "kvm":
        raise AccelError(
            f"--accel kvm: KVM does not work on host {host} ({decision.reason}); "
            "use --accel auto or --accel tcg"
        )
    return decision


def host_facts(conn: libvirt.virConnect) -> dict[str, Any]:
    """What the libvirt host says about itself (the remote twin of environment.py)."""
    facts: dict[str, Any] = {}
    with contextlib.suppress(libvirt.libvirtError):
        facts["hostname"] = conn.getHostname()
    with contextlib.suppress(libvirt.libvirtError):
        _arch, memory_mib, cpus, *_ = conn.getInfo()
        facts["cores"] = cpus
        facts["memory_mib"] = memory_mib
    with contextlib.suppress(libvirt.libvirtError, ET.ParseError):
        model = ET.fromstring(conn.getCapabilities()).findtext("host/cpu/model")
        if model:
            facts["cpu_model"] = model
    facts["kvm_offered"] = kvm_offered(conn)
    return facts


class PoolShipping:
    """What a connection to another host adds: the image shipped into the host's pool in
    prepare(), each instance's disks made there as volumes, KVM probed there (uncached)."""

    def __init__(self, host_name: str) -> None:
        self.host_name = host_name
        self.pool: libvirt.virStoragePool | None = None
        self.boot: BootVolumes | None = None
        self._templates: dict[int, libvirt.virStorageVol] = {}

    def prepare(
        self, conn: libvirt.virConnect, artefacts: Artefacts, config: Config, progress: Progress
    ) -> tuple[AccelDecision, dict[str, Any]]:
        started = time.monotonic()
        self.pool = ensure_pool(conn)
        orphans = remove_orphaned_uploads(self.pool)
        self.boot, uploaded = ship_image_volumes(
            conn,
            self.pool,
            artefacts.image_id,
            artefacts.kernel,
            artefacts.initrd,
            artefacts.base_disk,
            progress,
        )
        self._template(conn, config.instance.data_disk_mib)
        shipped_s = time.monotonic() - started
        accel = decide_remote_accel(
            conn,
            self.host_name,
            self.boot,
            requested=config.accel,
            timeout=config.timeouts.probe_s,
            progress=progress,
        )
        return accel, {
            "accel": accel.mode,
            "accel_reason": accel.reason,
            "pool": POOL_NAME,
            "pool_path": self.pool_path(),
            "uploaded_volumes": uploaded,
            "removed_orphaned_uploads": orphans,
            "ship_s": round(shipped_s, 3),
        }

    def pool_path(self) -> str | None:
        if self.pool is None:
            return None
        with contextlib.suppress(libvirt.libvirtError, ET.ParseError):
            return ET.fromstring(self.pool.XMLDesc(0)).findtext("target/path")
        return None

    def _template(self, conn: libvirt.virConnect, size_mib: int) -> libvirt.virStorageVol:
        assert self.pool is not None
        if size_mib not in self._templates:
            self._templates[size_mib] = data_template(conn, self.pool, size_mib)
        return self._templates[size_mib]

    def assets(self, conn: libvirt.virConnect, spec: InstanceSpec) -> PoolAssets:
        """The instance's overlay and data disk, made as volumes in the pool."""
        if self.pool is None or self.boot is None:
            raise RuntimeError("LibvirtBackend.prepare() must run before provision()")
        template = self._template(conn, spec.data_disk_mib)
        return PoolAssets(self.boot, PoolDisks.create(self.pool, spec.name, self.boot, template))

    def remove_disks(self, name: str) -> None:
        """By name, so disks made before a failure go too (destroy has waited for QEMU)."""
        if self.pool is not None:
            delete_instance_disks(self.pool, name)

    def environment(self, conn: libvirt.virConnect) -> dict[str, Any]:
        env: dict[str, Any] = {f"libvirt_host_{k}": v for k, v in host_facts(conn).items()}
        env["libvirt_pool_path"] = self.pool_path()
        return env

    def leftovers(self, conn: libvirt.virConnect, live_run_ids: set[str]) -> list[Leftover]:
        """Instance disks in the pool whose domain is gone; shared image volumes are a
        cache, not leftovers."""
        found: list[Leftover] = []
        # A volume whose domain still exists goes with that domain (or stays with it, when
        # the domain is another controller's): volumes carry no metadata of their own.
        domains = {domain.name() for domain in conn.listAllDomains()}
        pool = self.pool
        if pool is None:
            with contextlib.suppress(libvirt.libvirtError):
                pool = conn.storagePoolLookupByName(POOL_NAME)
        if pool is None:
            return found
        with contextlib.suppress(libvirt.libvirtError):
            pool.refresh(0)
        for name in pool.listVolumes() if pool.isActive() else []:
            match = INSTANCE_VOLUME.match(name)
            if match and match.group(1) not in domains:
                run_id = match.group(2)
                found.append(
                    Leftover(
                        "volume",
                        name,
                        run_id,
                        run_id in live_run_ids,
                        remove=lambda p=pool, n=name: delete_volume(p, n),
                    )
                )
        return found
