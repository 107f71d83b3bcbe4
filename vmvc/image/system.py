"""The image's *system* tree: the workload tree booted as a normal guest OS (VM flavour `full`).

The shared root filesystem (native, containers, minimal VM) has no init system and must not
get one: it would change what the containers run and their size. The system tree is the
same workload tree, debootstrapped with SYSTEM_PACKAGES added (cached as its own base under
bases/<key>), with the same agent and the same /etc/vmvc/image-id (the workload in it is the
image's), plus what makes it boot under systemd as PID 1:

* `vmvc-agent.service` (vmvc/image/systemd/): the agent on the serial console, started once
  multi-user.target's dependencies are up, respawned like guest-init does;
* MASKED units: what has no use in a benchmark guest with no network, no logins, no D-Bus,
  no TPM, a life of seconds and a console the agent owns (the gettys above all: a getty on
  ttyS0 would fight the agent for it);
* an empty /etc/machine-id: each boot gets its own, as a cloned guest image should.

Its id (the system id) is a digest of the image id and all of the above.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

SYSTEM_PACKAGES = ("systemd", "systemd-sysv")
AGENT_UNIT = "vmvc-agent.service"
# Bump when the way the system tree is derived changes.
SYSTEM_FORMAT_VERSION = 1

MASKED = (
    # The console belongs to the agent; nobody logs in.
    "getty.target",
    "getty@.service",
    "serial-getty@.service",
    "serial-getty@ttyS0.service",
    "getty-static.service",
    "console-getty.service",
    "autovt@.service",
    "systemd-logind.service",  # needs D-Bus, which the tree does not have
    "systemd-user-sessions.service",
    "systemd-ask-password-wall.path",
    "systemd-ask-password-console.path",
    # Periodic maintenance of a machine that lives for seconds.
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "systemd-tmpfiles-clean.timer",
    # No network interface; no TPM; no first-boot setup of a throwaway overlay.
    "systemd-network-generator.service",
    "systemd-pcrphase.service",
    "systemd-pcrphase-sysinit.service",
    "systemd-repart.service",
    "systemd-firstboot.service",
    "systemd-machine-id-commit.service",
    "systemd-pstore.service",
    "systemd-binfmt.service",
    "proc-sys-fs-binfmt_misc.automount",
)


def system_files() -> dict[str, bytes]:
    """What the system tree adds to the workload tree (part of the system id)."""
    return {
        AGENT_UNIT: resources.files("vmvc.image.systemd").joinpath(AGENT_UNIT).read_bytes(),
        "masked": "\n".join(MASKED).encode(),
    }


def install_system(rootfs: Path) -> None:
    """Make the (system-base + agent) tree boot under systemd to the agent."""
    units = rootfs / "etc" / "systemd" / "system"
    units.mkdir(parents=True, exist_ok=True)
    (units / AGENT_UNIT).write_bytes(system_files()[AGENT_UNIT])
    os.chmod(units / AGENT_UNIT, 0o644)
    wants = units / "multi-user.target.wants"
    wants.mkdir(exist_ok=True)
    _replace_symlink(wants / AGENT_UNIT, f"/etc/systemd/system/{AGENT_UNIT}")
    masked = set(MASKED)
    # Enabled links of masked units go (listed, not globbed: a link's absolute target is
    # resolved against the build host's tree, where it may not exist).
    for wants in units.glob("*.wants"):
        for enabled in wants.iterdir():
            if enabled.name in masked:
                enabled.unlink()
    for unit in MASKED:
        _replace_symlink(units / unit, "/dev/null")
    (units / "getty.target.wants").mkdir(exist_ok=True)
    for link in (units / "getty.target.wants").iterdir():
        link.unlink()
    # multi-user.target, not graphical.target (nothing graphical is installed anyway).
    _replace_symlink(units / "default.target", "/lib/systemd/system/multi-user.target")
    machine_id = rootfs / "etc" / "machine-id"
    machine_id.unlink(missing_ok=True)
    machine_id.write_bytes(b"")
    os.chmod(machine_id, 0o444)


def _replace_symlink(path: Path, target: str) -> None:
    if path.is_symlink() or path.exists():
        path.unlink()
    path.symlink_to(target)
