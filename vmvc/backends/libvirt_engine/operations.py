"""libvirt's lifecycle operations (vmvc.backends.capabilities): the engine work, untimed.

derive     `mke2fs -d` of the rootfs into a temporary ext4 base disk (as the image build)
define     a qcow2 copy-on-write overlay of that base disk (or of the image's) and `virsh
           define` of a persistent domain on it; started paused with the console attached
           and resumed. The kernel/initrd copies and data disk this harness needs per guest
           are made in `stage`, before the caller's define timer.
full copy  `qemu-img convert` of the image's base disk (holes kept sparse)
crash      one trial per failure kind (vmvc.backends.capabilities.FailureKind):
           workload_process  the agent SIGKILLs itself (`die`); the guest's init respawns
                             it (the guest OS's service supervisor; kernel and QEMU stay up);
                             detected at the init's VMVC-RESPAWN line on the console
           instance          SIGKILL to the domain's QEMU process from the host (pid from
                             /run/libvirt/qemu/<name>.pid); libvirt has no automatic restart
                             for a killed QEMU (on_crash acts on guest panics only, autostart
                             only when libvirtd starts); detected at libvirt's "stopped" event
           guest_kernel_panic  the agent panics the guest kernel (`echo c >
                             /proc/sysrq-trigger`); the kernel reports it to the ISA pvpanic
                             device, libvirt's on_crash=restart resets the guest; detected at
                             libvirt's "crashed" event
porter     a bundle of everything needed to boot the VM elsewhere (bundle.py): root disk as
           uncompressed qcow2, kernel, initramfs, firmware, domain XML, as one tar streamed
           into the workload's sink; imported by unpacking and `virsh define`, checked by
           booting the imported domain

The full VM flavour (backend `libvirt-full`) does the same on its own root disk (the system
tree's, Artefacts.flavoured); systemd, its PID 1, respawns the agent through the unit's
Restart= with the same console line. It has no guest_kernel_panic trial: the agent (part of
the image every form shares) panics a guest only when its PID 1 is vmvc's guest init.

Every file lives in the instance's vmvc-named work dir. `LibvirtOperations` is mixed into
the public LibvirtBackend (vmvc.backends.libvirt); the engine's own modules do not import
this one.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

import libvirt

from vmvc.agent.protocol import ReadyInfo, command_line, respawn_seen_at
from vmvc.backends.base import Backend, Instance, InstanceSpec
from vmvc.backends.capabilities import (
    ByteSink,
    ByteSource,
    Capability,
    Crash,
    Definition,
    DerivedArtefact,
    FailureKind,
    FullCopy,
    Porter,
    RecoveryPlan,
    StoredBytes,
)
from vmvc.backends.libvirt_engine import bundle
from vmvc.backends.libvirt_engine.backend import LibvirtBackend, LibvirtInstance
from vmvc.backends.libvirt_engine.domain_xml import DomainDisk
from vmvc.backends.libvirt_engine.lifecycle import (
    DefinedGuest,
    LifecycleWatch,
    allocated_bytes,
    build_deletable_base_disk,
    convert,
    copy_boot_files,
    create_overlay,
    guest_xml,
    instance_dir,
    make_data_disk,
    undefine_by_name,
)
from vmvc.backends.memory import pids_named
from vmvc.image.build import Artefacts
from vmvc.paths import make_dirs

# The three kinds share one boot (RecoveryPlan.shares_instance): guest-init respawns the
# agent at once every time, and libvirt's on_crash=restart resets a panicked guest every time;
# neither counts earlier failures. The killed QEMU, which nothing restarts, comes last.
RECOVERY_PLANS = {
    FailureKind.WORKLOAD_PROCESS: RecoveryPlan(
        "SIGKILL to the agent inside the guest (it kills itself on command)",
        "the guest's init respawns the agent (kernel and QEMU stay up)",
        "guest init's respawn line",
        shares_instance=True,
    ),
    FailureKind.INSTANCE: RecoveryPlan(
        "SIGKILL to the domain's QEMU process from the host",
        None,  # libvirt restarts no killed QEMU: on_crash is for guest panics
        "libvirt stopped event",
        shares_instance=True,
    ),
    FailureKind.GUEST_KERNEL_PANIC: RecoveryPlan(
        "guest kernel panic (sysrq c), reported to the pvpanic device",
        "libvirt on_crash=restart",
        "libvirt crashed event",
        shares_instance=True,
    ),
}


LIBVIRT_DAEMONS = ("libvirtd", "virtqemud", "virtlogd")


class LibvirtOperations(Backend):
    """The lifecycle operations of a local libvirt (mixed into LibvirtBackend)."""

    if TYPE_CHECKING:  # provided by the engine's LibvirtBackend, later in the MRO

        @property
        def conn(self) -> libvirt.virConnect: ...

    @property
    def capabilities(self) -> frozenset[Capability]:  # type: ignore[override]
        if not self.on_this_host:  # disk files and memory are made and read on this host
            return frozenset({Capability.ISOLATION_FACTS})
        return frozenset(Capability)

    def engine_daemons(self) -> dict[str, int]:
        # libvirtd or the modular virtqemud, and virtlogd (it holds each guest's console log).
        return pids_named(LIBVIRT_DAEMONS) if self.on_this_host else {}

    def _engine(self) -> LibvirtBackend:
        if not isinstance(self, LibvirtBackend):
            raise TypeError("LibvirtOperations is mixed into a LibvirtBackend only")
        return self

    def derive_artefact(self, artefacts: Artefacts, spec: InstanceSpec) -> DerivedArtefact:
        return BaseDisk(self._engine().flavoured(artefacts), spec)

    def define(
        self, artefacts: Artefacts, spec: InstanceSpec, source: DerivedArtefact | None = None
    ) -> Definition:
        artefacts = self._engine().flavoured(artefacts)
        if source is None:
            return GuestDefinition(self._engine(), artefacts, spec, artefacts.base_disk)
        if not isinstance(source, BaseDisk):
            raise TypeError(f"libvirt cannot define a guest from {type(source).__name__}")
        return GuestDefinition(self._engine(), artefacts, spec, source.disk)

    def full_copy(self, artefacts: Artefacts, directory: Path) -> FullCopy:
        base, full = self._engine().flavoured(artefacts).base_disk, directory / "full-copy.raw"
        convert(base, "raw", full, "raw")
        return FullCopy(
            allocated_bytes(full),
            "qemu-img convert of the base disk",
            {"base_disk_bytes": base.stat().st_size},
        )

    def recovery_plans(self) -> dict[FailureKind, RecoveryPlan]:
        plans = dict(RECOVERY_PLANS)
        if self._engine().flavour != "minimal":
            # The agent refuses `crash` where PID 1 is not vmvc's guest init.
            del plans[FailureKind.GUEST_KERNEL_PANIC]
        return plans

    def crash(self, instance: Instance, kind: FailureKind) -> Crash:
        if not isinstance(instance, LibvirtInstance):
            raise TypeError(f"libvirt cannot crash {type(instance).__name__}")
        if kind is FailureKind.WORKLOAD_PROCESS:
            return AgentKill(self.conn, instance)
        if kind is FailureKind.INSTANCE:
            return QemuKill(self.conn, instance)
        return KernelPanic(self.conn, instance)

    def porter(self, artefacts: Artefacts, spec: InstanceSpec) -> Porter:
        return BundlePorter(self._engine(), self._engine().flavoured(artefacts), spec)


class BaseDisk(DerivedArtefact):
    """A temporary read-only ext4 root disk built from the rootfs, in the instance's dir."""

    def __init__(self, artefacts: Artefacts, spec: InstanceSpec) -> None:
        super().__init__()
        self.artefacts = artefacts
        self.disk = instance_dir(spec) / "base.raw"  # the dir is made before any timer
        self.steps = {"create": "mke2fs -d (base disk)", "remove": "delete base disk"}

    def create(self) -> None:
        build_deletable_base_disk(self.artefacts.rootfs, self.disk)

    def inspect(self) -> None:
        self.details["create"] = {"disk_bytes": allocated_bytes(self.disk)}

    def remove(self) -> None:
        self.disk.unlink(missing_ok=True)


class GuestDefinition(Definition):
    """A persistent domain on a qcow2 overlay of `base`: defined, started, removed."""

    def __init__(
        self, backend: LibvirtBackend, artefacts: Artefacts, spec: InstanceSpec, base: Path
    ) -> None:
        super().__init__()
        self.backend, self.artefacts, self.spec, self.base = backend, artefacts, spec, base
        self.overlay = spec.workdir / "root.qcow2"
        self.data = spec.workdir / "data.raw"
        self.boot: tuple[Path, Path] | None = None
        self.guest: DefinedGuest | None = None
        self._started = 0.0
        self.steps = {
            "create": "qemu-img create (overlay) + virsh define",
            "start": "virsh start (paused, console) to ready",
            "remove": "virsh undefine",
        }

    def stage(self) -> None:
        """Own kernel/initrd copies (libvirt chowns what it is given) and the data disk."""
        directory = instance_dir(self.spec)
        self.boot = copy_boot_files(self.artefacts, directory)
        make_data_disk(self.data, self.spec.data_disk_mib)

    def create(self) -> None:
        if self.boot is None:
            self.stage()
        assert self.boot is not None
        kernel, initrd = self.boot
        started = time.monotonic()
        create_overlay(self.base, self.overlay)
        self.details["create"] = {"overlay_s": round(time.monotonic() - started, 6)}
        xml = guest_xml(
            self.backend,
            self.spec,
            root=DomainDisk(self.overlay, "qcow2", "vda"),
            kernel=kernel,
            initrd=initrd,
            data=self.data,
        )
        self.guest = DefinedGuest(self.backend.conn, self.spec.name, xml)

    def start(self) -> None:
        if self.guest is None:
            raise RuntimeError("the guest was not defined")
        self.guest.start()

    def wait_ready(self, timeout: float) -> ReadyInfo:
        if self.guest is None:
            raise RuntimeError("the guest was not defined")
        return self.guest.wait_ready(timeout)

    def stored_bytes(self) -> StoredBytes:
        return StoredBytes(
            allocated_bytes(self.overlay), {"what": "qcow2 overlay (allocated, after ready)"}
        )

    def remove(self) -> None:
        guest, self.guest = self.guest, None
        if guest is not None:
            guest.remove()
        else:  # defining failed half-way, or it is gone already
            undefine_by_name(self.backend.conn, self.spec.name)


class GuestCrash(Crash):
    """What the three kinds share: the guest's console and libvirt's lifecycle events."""

    def __init__(
        self, conn: libvirt.virConnect, instance: LibvirtInstance, kind: FailureKind
    ) -> None:
        super().__init__(kind, RECOVERY_PLANS[kind])
        if instance.console is None or instance.domain is None:
            raise RuntimeError("guest console is not attached")
        self.instance = instance
        self.domain = instance.domain
        self.console = instance.console
        self.start = len(instance.log)
        self.watch = LifecycleWatch(conn, instance.domain)

    def send(self, workload: str) -> None:
        command = command_line(self.instance.next_task_id(), workload, [])
        self.console.send(command.encode())

    def running(self) -> bool:
        """A killed transient domain is gone altogether: lookups fail, so it does not run."""
        try:
            return bool(self.domain.isActive())
        except libvirt.libvirtError:
            return False

    def remove(self) -> None:
        self.watch.close()


class AgentKill(GuestCrash):
    """The agent SIGKILLs itself; the guest's PID 1 (guest-init, or systemd through the
    agent unit's Restart=) respawns it and prints the respawn line."""

    def __init__(self, conn: libvirt.virConnect, instance: LibvirtInstance) -> None:
        super().__init__(conn, instance, FailureKind.WORKLOAD_PROCESS)

    def crash(self) -> None:
        self.send("die")

    def detected_at(self) -> float | None:
        return respawn_seen_at(self.instance.log, self.start)


class QemuKill(GuestCrash):
    """SIGKILL to QEMU from the host: libvirt records the stop and restarts nothing."""

    def __init__(self, conn: libvirt.virConnect, instance: LibvirtInstance) -> None:
        super().__init__(conn, instance, FailureKind.INSTANCE)
        pid = instance.qemu_pid()  # looked up before the kill is timed
        if pid is None:
            raise RuntimeError(f"no QEMU pid file for {instance.name}")
        self.pid = pid

    def crash(self) -> None:
        os.kill(self.pid, signal.SIGKILL)

    def detected_at(self) -> float | None:
        return self.watch.at(libvirt.VIR_DOMAIN_EVENT_STOPPED)


class KernelPanic(GuestCrash):
    """The agent panics the guest kernel; the pvpanic device tells libvirt, whose
    on_crash=restart resets the guest (the kernel itself never reboots: no `panic=`)."""

    def __init__(self, conn: libvirt.virConnect, instance: LibvirtInstance) -> None:
        super().__init__(conn, instance, FailureKind.GUEST_KERNEL_PANIC)

    def crash(self) -> None:
        self.send("crash")

    def detected_at(self) -> float | None:
        at = self.watch.at(libvirt.VIR_DOMAIN_EVENT_CRASHED)
        reset = self.watch.at(LifecycleWatch.REBOOT)
        # Who restarted it: libvirt's crashed event came first, then the reset (libvirt's
        # on_crash=restart resets QEMU, which libvirt reports as a reboot event too; the
        # guest kernel itself never reboots: no `panic=` on its command line).
        self.details["recover"] = {
            "libvirt_crashed_event": at is not None,
            "reset_after_crashed_event_s": None
            if at is None or reset is None
            else round(reset - at, 6),
        }
        return at


class BundlePorter(Porter):
    """The VM as one bundle (vmvc.backends.libvirt_engine.bundle): root disk as uncompressed
    qcow2, kernel, initramfs, firmware and domain XML; imported by unpacking it and defining
    the domain; checked by booting the imported domain to the agent's ready marker."""

    holds = "tar: root disk (qcow2, uncompressed), kernel, initramfs, firmware, domain XML"

    def __init__(self, backend: LibvirtBackend, artefacts: Artefacts, spec: InstanceSpec):
        super().__init__()
        self.backend, self.artefacts, self.spec = backend, artefacts, spec
        self.staging = spec.workdir / "bundle"
        self.imported = spec.workdir / "imported"
        self.guest: DefinedGuest | None = None
        self.found: set[str] = set()
        self.steps = {
            "export": "qemu-img convert -O qcow2 + tar (disk, kernel, initramfs, XML)",
            "import": "untar + virsh define",
        }
        self.details = {"export_bytes": {"base_disk_bytes": artefacts.base_disk.stat().st_size}}

    def export(self, sink: ByteSink) -> None:
        staging = make_dirs(self.staging)
        disk = staging / bundle.DISK
        convert(self.artefacts.base_disk, "raw", disk, "qcow2")
        kernel, initrd = copy_boot_files(self.artefacts, staging)  # and the firmware ROM
        xml = guest_xml(
            self.backend,
            self.spec,
            root=DomainDisk(disk, "qcow2", "vda"),
            kernel=kernel,
            initrd=initrd,
        )
        files = {bundle.DISK: disk, bundle.KERNEL: kernel, bundle.INITRD: initrd}
        if (staging / bundle.FIRMWARE).exists():
            files[bundle.FIRMWARE] = staging / bundle.FIRMWARE
        bundle.write_bundle(sink, files, bundle.relative_xml(xml))

    def forget_source(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)  # the import has only the bundle

    def import_(self, source: ByteSource) -> None:
        target = make_dirs(self.imported)
        self.found = bundle.read_bundle(source, target)
        xml = bundle.placed_xml((target / bundle.DOMAIN).read_text(), target)
        self.guest = DefinedGuest(self.backend.conn, self.spec.name, xml)

    def check(self) -> None:
        """Boot the imported domain from the imported files until the agent is ready."""
        if self.guest is None:
            raise RuntimeError("the bundle was not imported")
        self.guest.start()
        self.guest.wait_ready(self.spec.boot_timeout)
        self.details["import"] = {
            "bundle_files": sorted(self.found),
            "check": "imported domain booted to the agent's ready marker",
            "check_boot_s": round(self.guest.phases["total_s"], 3),
        }

    def clear_import(self) -> None:
        guest, self.guest = self.guest, None
        if guest is not None:
            guest.remove()
        shutil.rmtree(self.imported, ignore_errors=True)

    def remove(self) -> None:
        self.clear_import()
        undefine_by_name(self.backend.conn, self.spec.name)  # defined half-way, if at all
        shutil.rmtree(self.staging, ignore_errors=True)
