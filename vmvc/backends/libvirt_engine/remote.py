"""libvirt on another host: the same guests as LibvirtBackend, booted from storage volumes.

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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt

from vmvc.backends.base import Instance, InstanceSpec, Leftover, Progress
from vmvc.backends.capabilities import Capability
from vmvc.backends.libvirt_engine.accel import AccelDecision, AccelError, boot_probe
from vmvc.backends.libvirt_engine.backend import LibvirtBackend, LibvirtInstance
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
from vmvc.config import Config, HostSettings
from vmvc.image.build import Artefacts

KIB = 1024
INSTANCE_VOLUME = re.compile(r"^(vmvc-(\d{8}T\d{6}Z-[0-9a-f]{6})-.+)-(root\.qcow2|data\.raw)$")


class PoolAssets:
    """GuestAssets for a guest booting from pool volumes (no console log file: it would be
    written on the other host, where nobody reads it; the console stream is the record)."""

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


class RemoteLibvirtInstance(LibvirtInstance):
    def qemu_pid(self) -> int | None:
        return None  # the pid file is on the other host

    def footprint(self) -> dict[str, float]:
        """QEMU's resident memory as libvirtd measures it on its own host (KiB → MiB).

        RSS counts shared pages fully, so it is a little higher than the PSS figure a local
        run records; environment.hosts.<name>.footprint_method says which one a host used.
        """
        if self.domain is None:
            return {}
        try:
            stats = self.domain.memoryStats()
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


class RemoteLibvirtBackend(LibvirtBackend):
    """LibvirtBackend for `[[hosts]]`: ships the image into the host's pool in prepare()."""

    # Instances run on another machine: this one's files, processes and memory say nothing
    # about them, so of the lifecycle operations only the facts from inside are offered.
    capabilities = frozenset({Capability.ISOLATION_FACTS})
    on_this_host = False

    def __init__(self, config: Config, host: HostSettings | None = None) -> None:
        super().__init__(config, host)
        self.host_name = host.name if host else "remote"
        self.pool: libvirt.virStoragePool | None = None
        self.boot: BootVolumes | None = None
        self._templates: dict[int, libvirt.virStorageVol] = {}

    def prepare(self, artefacts: Artefacts, progress: Progress) -> dict[str, Any]:
        started = time.monotonic()
        self.pool = ensure_pool(self.conn)
        orphans = remove_orphaned_uploads(self.pool)
        self.boot, uploaded = ship_image_volumes(
            self.conn,
            self.pool,
            artefacts.image_id,
            artefacts.kernel,
            artefacts.initrd,
            artefacts.base_disk,
            progress,
        )
        self._template(self.config.instance.data_disk_mib)
        shipped_s = time.monotonic() - started
        self.accel = decide_remote_accel(
            self.conn,
            self.host_name,
            self.boot,
            requested=self.config.accel,
            timeout=self.config.timeouts.probe_s,
            progress=progress,
        )
        return {
            "accel": self.accel.mode,
            "accel_reason": self.accel.reason,
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

    def _template(self, size_mib: int) -> libvirt.virStorageVol:
        assert self.pool is not None
        if size_mib not in self._templates:
            self._templates[size_mib] = data_template(self.conn, self.pool, size_mib)
        return self._templates[size_mib]

    @contextlib.contextmanager
    def provision(self, artefacts: Artefacts, spec: InstanceSpec) -> Iterator[Instance]:
        if self.accel is None or self.pool is None or self.boot is None:
            raise RuntimeError("RemoteLibvirtBackend.prepare() must run before provision()")
        instance: RemoteLibvirtInstance | None = None
        try:
            disks = PoolDisks.create(
                self.pool, spec.name, self.boot, self._template(spec.data_disk_mib)
            )
            instance = RemoteLibvirtInstance(
                self.conn,
                artefacts,
                spec,
                self.accel.domain_type,
                assets=PoolAssets(self.boot, disks),
            )
            yield instance
        finally:
            if instance is not None:
                instance.destroy()
            else:  # creation failed half-way: no domain of that name may survive
                with contextlib.suppress(libvirt.libvirtError):
                    self.conn.lookupByName(spec.name).destroy()
            # by name, so disks made before a failure go too (destroy has waited for QEMU)
            delete_instance_disks(self.pool, spec.name)

    def environment(self) -> dict[str, Any]:
        env = super().environment()
        env.update({f"libvirt_host_{k}": v for k, v in host_facts(self.conn).items()})
        env["libvirt_pool_path"] = self.pool_path()
        return env

    def leftovers(self, live_run_ids: set[str]) -> list[Leftover]:
        """Domains (as locally) and instance disks in the pool; shared image volumes are a
        cache, not leftovers."""
        found = super().leftovers(live_run_ids)
        # A volume whose domain still exists goes with that domain (or stays with it, when
        # the domain is another controller's): volumes carry no metadata of their own.
        domains = {domain.name() for domain in self.conn.listAllDomains()}
        pool = self.pool
        if pool is None:
            with contextlib.suppress(libvirt.libvirtError):
                pool = self.conn.storagePoolLookupByName(POOL_NAME)
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
