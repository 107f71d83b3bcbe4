"""How a vmvc VM boots: kernel flavour, firmware, machine type and kernel command line.

Chosen by measurement under QEMU TCG on the development hosts (2 cores, nested, no usable
KVM), bare QEMU, 1 vCPU, 512 MiB, medians of 3-5 boots to the agent's ready line:

| kernel, firmware, command line                    | to ready |
|---------------------------------------------------|----------|
| Debian generic flavour, SeaBIOS                   | 6.4 s    |
| Debian cloud flavour, SeaBIOS                     | 2.8 s    |
| cloud, qboot                                      | 2.7 s    |
| cloud, qboot, mounts done by the initramfs        | 2.3 s    |
| ... and `cryptomgr.notests`                       | 2.0 s    |

* The cloud flavour (`linux-image-cloud-amd64`) is built for virtual machines: it probes
  far less hardware than the generic one, and ext4 is built in (only virtio is a module).
* qboot is the minimal firmware QEMU ships (`/usr/share/qemu/qboot.rom`): it does just
  what a direct kernel boot needs. Where it is missing, libvirt's default (SeaBIOS) is used
  and recorded as such.
* `cryptomgr.notests` skips the kernel's crypto self-tests (0.25 s under TCG); it changes
  no algorithm and nothing a workload runs.
* A guest the recovery workload crashes reports its panic to an ISA **pvpanic** device
  (`panic_device`, QEMU's `pvpanic` at port 0x505, found by the kernel through ACPI as
  QEMU0001; the initramfs loads `pvpanic` and `pvpanic-mmio` on every guest, off the boot's
  critical path): the kernel calls its panic notifiers, pvpanic's among them, right after
  printing the panic and before its own panic timeout, and libvirt's `on_crash=restart`
  acts at once. Only those guests get the device (start-up is measured on the others, which
  boot as before; with the device a quiet TCG boot took 2.79 s vs 2.72 s, 6 each). The
  command line has no `panic=`: Debian's default (0) never reboots, so a restart is
  libvirt's doing, never the kernel's own (`panic=-1` made the guest reset itself before
  issue 13, with no libvirt policy involved); a guest without the device that panics stays
  halted until its trial's timeout and teardown. `crash_kexec_post_notifiers` only matters
  with a crash kernel loaded, which vmvc guests do not have.
* The machine is QEMU's `pc` (i440FX): the smallest PC model libvirt offers; no USB, no
  graphics, no balloon, no network (see vmvc.backends.libvirt_engine.domain_xml).

Two **flavours** boot the same kernel, initramfs, firmware and machine:

* `minimal` (backend `libvirt`): the initramfs hands the read-only root disk to the guest
  init (vmvc/agent/guest-init.sh), PID 1, which serves the agent on the serial console;
* `full` (backend `libvirt-full`): the root disk is the image's *system* tree (the same
  workload tree plus systemd, see vmvc.image.system), mounted read-write on the instance's
  copy-on-write overlay; the initramfs hands it to systemd as PID 1, which starts the agent
  as a service (`vmvc-agent.service`). Its command line is the minimal one with `rw` for
  `ro` and the parameters of FULL_CMDLINE_EXTRA, so full - minimal is the guest OS's start.

A kernel built from `linux-source-6.1` with virtio built in would save the module loads
(about 0.2 s of a 2 s boot) but takes far longer to compile on two cores than the whole
eight-minute budget of `make bench` on a fresh machine, so it is not done.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

QBOOT = Path("/usr/share/qemu/qboot.rom")


@dataclass(frozen=True)
class BootProfile:
    kernel_meta_package: str = "linux-image-cloud-amd64"
    firmware: str = "qboot"  # "qboot" (file below) or "seabios" (libvirt's default)
    machine: str = "pc"
    cmdline: str = "console=ttyS0 root=/dev/vda ro quiet loglevel=3 cryptomgr.notests"
    panic_device: str = "isa"  # libvirt <panic model=...>: how a guest panic reaches on_crash

    @property
    def firmware_path(self) -> Path | None:
        """The firmware file to hand libvirt, or None for its default (SeaBIOS)."""
        return QBOOT if self.firmware == "qboot" else None

    def identity(self) -> dict[str, str]:
        """What of the boot is part of the VM id (and recorded in every result)."""
        return asdict(self)


BOOT = BootProfile()

FLAVOURS = ("minimal", "full")
# The full flavour's additions to the command line: the initramfs hands over to systemd
# (vmvc/image/initramfs/init reads vmvc.init=); systemd prints no boot status on the console
# the agent owns (failures still reach the kernel log); the hostname is the minimal guest's
# (systemd would otherwise take /etc/hostname, which debootstrap copied from the build host).
FULL_CMDLINE_EXTRA = "vmvc.init=systemd systemd.show_status=false systemd.hostname=vmvc-guest"


def flavour_cmdline(cmdline: str, flavour: str) -> str:
    """The kernel command line of `flavour` (the profile's own for `minimal`)."""
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown VM flavour {flavour!r}")
    if flavour == "minimal":
        return cmdline
    words = ["rw" if word == "ro" else word for word in cmdline.split()]
    return " ".join([*words, FULL_CMDLINE_EXTRA])


def host_boot_profile(qboot: Path = QBOOT) -> BootProfile:
    """The boot profile this host can give: qboot where QEMU ships it, else SeaBIOS."""
    return BOOT if qboot.is_file() else BootProfile(firmware="seabios")
