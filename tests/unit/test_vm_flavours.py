"""The full VM flavour (backend libvirt-full): its identity, command line, system tree and the
agent's unit, without booting anything (tests/integration/test_libvirt_full.py boots it)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from vmvc.backends.base import available_backend_classes
from vmvc.backends.capabilities import FailureKind
from vmvc.backends.libvirt import LibvirtBackend, LibvirtFullBackend
from vmvc.config import Config
from vmvc.image.build import Artefacts
from vmvc.image.recipe import KernelRecipe, Recipe, initramfs_files
from vmvc.image.system import AGENT_UNIT, MASKED, install_system, system_files
from vmvc.image.vmboot import BOOT, FULL_CMDLINE_EXTRA, flavour_cmdline


def _recipe(**changes: object) -> Recipe:
    base = {
        "suite": "bookworm",
        "packages": ("fio", "sysbench"),
        "kernel": KernelRecipe("linux-image-6.1.0-1-cloud-amd64", "6.1.1-1", "abc"),
        "agent_sha": "def",
        "system_sha": "ghi",
    }
    base.update(changes)
    return Recipe(**base)  # type: ignore[arg-type]


def test_the_system_tree_never_changes_the_image_id() -> None:
    """Native, containers and the minimal VM keep their id whatever the system tree holds."""
    for changed in (_recipe(system_sha="other"), _recipe(system_packages=("systemd",))):
        assert changed.image_id == _recipe().image_id
        assert changed.base_key == _recipe().base_key
        assert changed.vm_id == _recipe().vm_id
        assert changed.system_id != _recipe().system_id
        assert changed.flavour_vm_id("full") != _recipe().flavour_vm_id("full")
    # ... while the image is part of the system id (same workload tree inside).
    assert _recipe(agent_sha="other").system_id != _recipe().system_id


def test_each_flavour_has_its_own_vm_id_and_debootstrap() -> None:
    recipe = _recipe()
    assert recipe.vm_id == recipe.flavour_vm_id("minimal")
    assert recipe.flavour_vm_id("full") != recipe.vm_id
    assert recipe.system_base_key != recipe.base_key
    assert set(recipe.all_system_packages) == {"fio", "sysbench", "systemd", "systemd-sysv"}
    # The system base is the same digest with more packages: a recipe whose own packages
    # are those has it as its base.
    wider = _recipe(packages=recipe.all_system_packages)
    assert wider.base_key == recipe.system_base_key


def test_full_command_line_mounts_root_rw_and_hands_to_systemd() -> None:
    assert flavour_cmdline(BOOT.cmdline, "minimal") == BOOT.cmdline
    full = flavour_cmdline(BOOT.cmdline, "full").split()
    assert "rw" in full and "ro" not in full
    assert "vmvc.init=systemd" in full
    assert full[: len(BOOT.cmdline.split())] == [
        "rw" if w == "ro" else w for w in BOOT.cmdline.split()
    ]
    assert " ".join(full).endswith(FULL_CMDLINE_EXTRA)
    with pytest.raises(ValueError):
        flavour_cmdline(BOOT.cmdline, "fat")
    init = initramfs_files()["init"].decode()
    assert "vmvc.init=systemd)" in init and "next_init=/lib/systemd/systemd" in init
    assert 'mount -t ext4 -o "$root_mode" /dev/vda /newroot' in init


def test_agent_unit_serves_on_the_serial_console_and_respawns() -> None:
    unit = system_files()[AGENT_UNIT].decode()
    assert "exec /opt/vmvc/agent serve'" in unit
    assert "TTYPath=/dev/ttyS0" in unit and "StandardInput=tty-force" in unit
    assert "Restart=on-failure" in unit and "RestartSec=0" in unit
    assert "StartLimitIntervalSec=0" in unit
    assert "\nSuccessAction=" not in unit  # systemd 252 fires it on a restart too
    assert "WantedBy=multi-user.target" in unit
    # Nothing else may own the console: no getty on the serial port.
    assert {"serial-getty@.service", "serial-getty@ttyS0.service", "getty.target"} <= set(MASKED)


def _stop_post_command() -> str:
    """The unit's ExecStopPost as the shell gets it ($$ unescaped, lines joined)."""
    unit = system_files()[AGENT_UNIT].decode().replace("\\\n", " ")
    line = next(x for x in unit.splitlines() if x.startswith("ExecStopPost="))
    argv = line.removeprefix("ExecStopPost=").replace("$$", "$")
    assert argv.startswith("/bin/bash -c '") and argv.endswith("'")
    return argv.removeprefix("/bin/bash -c '")[:-1]


@pytest.mark.parametrize(
    ("result", "code", "status", "expected"),
    [
        ("signal", "killed", "KILL", "VMVC-RESPAWN status=137\n"),  # guest-init's line
        ("core-dump", "dumped", "SEGV", "VMVC-RESPAWN status=139\n"),
        ("success", "killed", "TERM", ""),  # systemd stopped it (shutdown): no respawn line
        ("exit-code", "exited", "1", ""),
    ],
)
def test_respawn_line_is_guest_inits(result: str, code: str, status: str, expected: str) -> None:
    # (success/exited, the guest's power-off, is never run here: it would be the host's.)
    env = {"PATH": os.environ["PATH"], "SERVICE_RESULT": result, "EXIT_CODE": code}
    env["EXIT_STATUS"] = status
    done = subprocess.run(
        ["bash", "-c", _stop_post_command()], env=env, capture_output=True, text=True, timeout=10
    )
    assert (done.returncode, done.stdout) == (0, expected)


def test_install_system_masks_enables_and_resets(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    units = rootfs / "etc/systemd/system"
    (units / "getty.target.wants").mkdir(parents=True)
    (units / "getty.target.wants/getty@tty1.service").symlink_to("/lib/x")
    (units / "timers.target.wants").mkdir()
    (units / "timers.target.wants/apt-daily.timer").symlink_to("/lib/y")
    (rootfs / "etc/machine-id").write_text("8d1e5f46627643bc8e89566d36cec0a1\n")
    install_system(rootfs)
    assert (units / AGENT_UNIT).read_bytes() == system_files()[AGENT_UNIT]
    enabled = units / "multi-user.target.wants" / AGENT_UNIT
    assert os.readlink(enabled) == f"/etc/systemd/system/{AGENT_UNIT}"
    for unit in MASKED:
        assert os.readlink(units / unit) == "/dev/null"
    assert not list((units / "getty.target.wants").iterdir())
    assert not (units / "timers.target.wants/apt-daily.timer").is_symlink()
    assert os.readlink(units / "default.target").endswith("/multi-user.target")
    assert (rootfs / "etc/machine-id").read_bytes() == b""  # a new id every boot
    install_system(rootfs)  # idempotent


def _artefacts(tmp_path: Path) -> Artefacts:
    return Artefacts(
        "img",
        tmp_path / "images/img",
        boot_dir=tmp_path / "kernels/k",
        vm_id="vm-min",
        system_id="sys",
        system_root=tmp_path / "systems/sys",
        flavours={
            "minimal": {"vm_id": "vm-min", "cmdline": "ro"},
            "full": {"vm_id": "vm-full", "cmdline": "rw vmvc.init=systemd"},
        },
    )


def test_flavoured_artefacts_boot_the_system_disk_with_the_same_kernel(tmp_path: Path) -> None:
    minimal = _artefacts(tmp_path)
    full = minimal.flavoured("full")
    assert full.image_id == minimal.image_id  # the same workload tree: same image id inside
    assert full.base_disk == tmp_path / "systems/sys/vm/base.raw"
    assert full.rootfs == tmp_path / "systems/sys/rootfs"
    assert (full.kernel, full.initrd) == (minimal.kernel, minimal.initrd)
    assert (full.vm_id, full.cmdline, full.flavour) == ("vm-full", "rw vmvc.init=systemd", "full")
    assert full.flavoured("minimal").base_disk == minimal.base_disk
    assert minimal.flavoured("minimal") is minimal
    with pytest.raises(ValueError):
        minimal.flavoured("fat")
    described = minimal.describe()
    assert described["system_id"] == "sys"
    assert described["vm_flavours"]["full"]["vm_id"] == "vm-full"


def test_libvirt_full_is_a_second_vm_backend_of_the_same_engine() -> None:
    classes = available_backend_classes()
    assert classes["libvirt-full"] is LibvirtFullBackend
    assert issubclass(LibvirtFullBackend, LibvirtBackend)
    assert (LibvirtFullBackend.kind, LibvirtFullBackend.label) == ("vm", "full VM")
    assert (LibvirtBackend.flavour, LibvirtFullBackend.flavour) == ("minimal", "full")
    # Claims compare the first VM backend: the minimal one comes first.
    vms = [name for name, cls in classes.items() if cls.kind == "vm"]
    assert vms[:2] == ["libvirt", "libvirt-full"]
    full = LibvirtFullBackend(Config())
    assert full.display_name == "full VM (libvirt)"
    assert LibvirtBackend(Config()).display_name == "VM (libvirt)"
    # No kernel-panic trial: the agent panics only a guest whose PID 1 is guest-init.
    assert FailureKind.GUEST_KERNEL_PANIC not in full.recovery_plans()
    assert FailureKind.GUEST_KERNEL_PANIC in LibvirtBackend(Config()).recovery_plans()
