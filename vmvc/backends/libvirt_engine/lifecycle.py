"""libvirt helpers the lifecycle operations (vmvc.backends.libvirt_engine.operations) need
beyond one transient guest's life.

`DefinedGuest` is a persistent domain: defined first (the analogue of `docker create`), then
started paused with the console attached and resumed, and always destroyed and undefined.
The disk helpers derive, copy and convert disk images with the host's own tools (mke2fs,
qemu-img), argument lists only. Every file lives in the instance's vmvc-named work dir.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import libvirt

from vmvc.agent.protocol import ReadyInfo, wait_ready
from vmvc.backends.base import InstanceSpec
from vmvc.backends.libvirt_engine.backend import (
    FIRMWARE_COPY,
    ConsoleGuest,
    LibvirtBackend,
    copy_firmware,
)
from vmvc.backends.libvirt_engine.console import ConsoleReader
from vmvc.backends.libvirt_engine.deadline import CALL_TIMEOUT_S, with_deadline
from vmvc.backends.libvirt_engine.domain_xml import DomainDisk, DomainSpec, domain_xml
from vmvc.image.build import Artefacts, build_base_disk
from vmvc.paths import copy_new, make_dirs, touch_new
from vmvc.proc import run


def instance_dir(spec: InstanceSpec) -> Path:
    """The instance's work dir, enterable by QEMU (which libvirt runs unprivileged)."""
    return make_dirs(spec.workdir)  # 0711, made exclusively or checked (vmvc.paths)


def copy_boot_files(artefacts: Artefacts, directory: Path) -> tuple[Path, Path]:
    """Own copies of kernel, initrd (and firmware, next to them): libvirt chowns the files a
    domain is given."""
    kernel, initrd = directory / "vmlinuz", directory / "initrd.img"
    copy_new(artefacts.kernel, kernel)  # never through a file or symlink already there
    copy_new(artefacts.initrd, initrd)
    copy_firmware(artefacts, directory)
    return kernel, initrd


def make_data_disk(path: Path, size_mib: int) -> None:
    touch_new(path)  # mke2fs -F only ever formats a file vmvc has just created
    run(
        ["mke2fs", "-q", "-F", "-t", "ext4", "-L", "vmvc-data", path, f"{size_mib}M"],
        timeout=120,
        what="mke2fs (data disk)",
    )


def build_deletable_base_disk(rootfs: Path, disk: Path, timeout: float = 600) -> None:
    """The read-only ext4 root disk from the rootfs, exactly as the image build makes it."""
    build_base_disk(rootfs, disk, timeout)
    os.chmod(disk, 0o644)  # the build makes it read-only; this copy is ours to delete


def create_overlay(base: Path, overlay: Path, base_format: str = "raw") -> None:
    run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", base_format, "-b", base, overlay],
        timeout=60,
        what="qemu-img create (overlay)",
    )


def convert(
    source: Path,
    source_format: str,
    target: Path,
    target_format: str,
    *,
    compress: bool = False,
    timeout: float = 1800,
) -> None:
    """`qemu-img convert`: zero blocks stay holes in the target (sparse)."""
    argv: list[str | Path] = ["qemu-img", "convert", "-f", source_format, "-O", target_format]
    if compress:
        argv.append("-c")
    run([*argv, source, target], timeout=timeout, what="qemu-img convert")


def allocated_bytes(path: Path) -> int:
    """Bytes the host really stores for a (possibly sparse) file."""
    try:
        return path.stat().st_blocks * 512
    except OSError:
        return 0


def guest_xml(
    backend: LibvirtBackend,
    spec: InstanceSpec,
    *,
    root: DomainDisk,
    kernel: Path,
    initrd: Path,
    data: Path | None = None,
) -> str:
    """Domain XML of a vmvc guest on the given root disk (same shape as the backend's)."""
    if backend.accel is None:
        raise RuntimeError("LibvirtBackend.prepare() must run before a guest is defined")
    disks = [root]
    firmware = kernel.parent / FIRMWARE_COPY  # copied there by copy_boot_files
    if data is not None:
        disks.append(DomainDisk(data, "raw", "vdb", cache="none"))
    return domain_xml(
        DomainSpec(
            name=spec.name,
            run_id=spec.run_id,
            owner_pid=os.getpid(),
            domain_type=backend.accel.domain_type,
            vcpus=spec.vcpus,
            memory_mib=spec.memory_mib,
            kernel=kernel,
            initrd=initrd,
            cmdline=f"{backend.boot_cmdline} vmvc.run={spec.run_id}",
            disks=disks,
            console_log=spec.workdir / "console.log",
            restart_on_crash=spec.restart_on_crash,
            firmware=firmware if firmware.exists() else None,
            machine=backend.boot_machine,
        )
    )


class DefinedGuest(ConsoleGuest):
    """A persistent domain: `define` (timed by the caller), `start`, always `remove`."""

    def __init__(self, conn: libvirt.virConnect, name: str, xml: str) -> None:
        super().__init__()
        self.conn = conn
        self.name = name
        self.console: ConsoleReader | None = None
        self.domain: libvirt.virDomain = with_deadline(
            lambda: conn.defineXML(xml), CALL_TIMEOUT_S, "defineXML"
        )
        self._started = 0.0

    def start(self) -> None:
        """Start paused, attach the console (no early byte lost), then resume."""
        self._started = time.monotonic()
        self.domain.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
        self.console = ConsoleReader(self.conn, self.domain, self.log)
        self.domain.resume()

    def wait_ready(self, timeout: float) -> ReadyInfo:
        _, info = wait_ready(self.log, timeout)
        self.phases = {"total_s": info.at - self._started}
        self.ready_info = info
        return info

    def remove(self) -> None:
        """Destroy (if running) and undefine; safe to call twice."""
        if self.console is not None:
            self.console.close()
        with contextlib.suppress(libvirt.libvirtError):
            if self.domain.isActive():
                self.domain.destroy()
        with contextlib.suppress(libvirt.libvirtError):
            self.domain.undefine()


def undefine_by_name(conn: libvirt.virConnect, name: str) -> None:
    """Cleanup when a guest object was never made (definition failed half-way)."""
    with contextlib.suppress(libvirt.libvirtError):
        domain = conn.lookupByName(name)
        with contextlib.suppress(libvirt.libvirtError):
            domain.destroy()
        domain.undefine()


class LifecycleWatch:
    """Times of libvirt's events for one domain: when the engine saw it stop (QEMU gone),
    crash (the guest reported a panic through its panic device) or reset itself."""

    REBOOT = -1  # the guest reset itself (VIR_DOMAIN_EVENT_ID_REBOOT), not a lifecycle event

    def __init__(self, conn: libvirt.virConnect, domain: libvirt.virDomain) -> None:
        self.conn = conn
        self.first: dict[int, float] = {}  # VIR_DOMAIN_EVENT_* (or REBOOT) -> first time
        self._ids = [
            conn.domainEventRegisterAny(
                domain, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, None
            ),
            conn.domainEventRegisterAny(
                domain, libvirt.VIR_DOMAIN_EVENT_ID_REBOOT, self._on_reboot, None
            ),
        ]

    def _on_lifecycle(
        self, _conn: object, _domain: object, event: int, _detail: int, _opaque: object
    ) -> None:
        self.first.setdefault(event, time.monotonic())

    def _on_reboot(self, _conn: object, _domain: object, _opaque: object) -> None:
        self.first.setdefault(self.REBOOT, time.monotonic())

    def at(self, event: int) -> float | None:
        return self.first.get(event)

    def close(self) -> None:
        for callback in self._ids:
            with contextlib.suppress(libvirt.libvirtError):
                self.conn.domainEventDeregisterAny(callback)
