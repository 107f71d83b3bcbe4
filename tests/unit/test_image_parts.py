"""Pure parts of image building and VM definition: mirror discovery, recipe identity, XML."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import pytest

from vmvc.backends.libvirt_engine.domain_xml import METADATA_NS, DomainDisk, DomainSpec, domain_xml
from vmvc.image.build import ImageBuildError, initramfs_modules
from vmvc.image.mirror import find_mirror
from vmvc.image.recipe import KernelRecipe, Recipe, agent_files, initramfs_files
from vmvc.image.vmboot import BOOT, BootProfile, host_boot_profile


def test_mirror_from_deb822_sources(tmp_path: Path) -> None:
    sources = tmp_path / "etc/apt/sources.list.d"
    sources.mkdir(parents=True)
    (sources / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\n"
    )
    assert find_mirror("bookworm", tmp_path) == "http://mirror.example/debian"


def test_mirror_from_one_line_sources(tmp_path: Path) -> None:
    (tmp_path / "etc/apt").mkdir(parents=True)
    (tmp_path / "etc/apt/sources.list").write_text(
        "# comment\ndeb [arch=amd64] http://m.example/debian bookworm main\n"
    )
    assert find_mirror("bookworm", tmp_path) == "http://m.example/debian"
    assert find_mirror("trixie", tmp_path) is None


def _recipe(**changes: object) -> Recipe:
    base = {
        "suite": "bookworm",
        "packages": ("fio", "sysbench"),
        "kernel": KernelRecipe("linux-image-6.1.0-1-amd64", "6.1.1-1", "abc"),
        "agent_sha": "def",
    }
    base.update(changes)
    return Recipe(**base)  # type: ignore[arg-type]


def test_image_id_is_a_content_hash_of_the_recipe() -> None:
    assert _recipe().image_id == _recipe().image_id
    assert _recipe(agent_sha="other").image_id != _recipe().image_id
    # Changing only the agent keeps the debootstrapped base (no re-run of debootstrap).
    assert _recipe(agent_sha="other").base_key == _recipe().base_key
    assert _recipe(packages=("fio",)).base_key != _recipe().base_key


def test_vm_boot_is_not_part_of_the_image_id() -> None:
    """Native and container forms keep their id when only the way VMs boot changes."""
    other_kernel = KernelRecipe("linux-image-6.1.0-2-cloud-amd64", "6.1.2-1", "abc")
    other_initramfs = KernelRecipe("linux-image-6.1.0-1-amd64", "6.1.1-1", "xyz")
    seabios = BootProfile(firmware="seabios")
    q35 = BootProfile(machine="q35")
    cmdline = BootProfile(cmdline=BOOT.cmdline + " debug")
    for changed in (
        _recipe(kernel=other_kernel),
        _recipe(kernel=other_initramfs),
        _recipe(boot=seabios),
        _recipe(boot=q35),
        _recipe(boot=cmdline),
    ):
        assert changed.image_id == _recipe().image_id
        assert changed.vm_id != _recipe().vm_id
    # ... while the rootfs is part of both.
    assert _recipe(agent_sha="other").vm_id != _recipe().vm_id


def test_guest_init_belongs_to_the_vm_form() -> None:
    assert "guest-init" in initramfs_files()
    assert "guest-init" not in agent_files()  # the rootfs the containers run holds no VM init
    init = initramfs_files()["init"].decode()
    assert "next_init=/run/vmvc/guest-init\n" in init  # the minimal flavour's default
    assert 'exec switch_root /newroot "$next_init"' in init
    assert "panic=1" not in BOOT.cmdline  # no deliberate wait before a panicking guest resets


def test_qboot_where_qemu_ships_it(tmp_path: Path) -> None:
    rom = tmp_path / "qboot.rom"
    assert host_boot_profile(rom).firmware == "seabios"
    assert host_boot_profile(rom).firmware_path is None
    rom.write_bytes(b"rom")
    assert host_boot_profile(rom).firmware == "qboot"


def _module_tree(root: Path, modules: list[str], builtin: list[str]) -> Path:
    for name in modules:
        path = root / "kernel" / "drivers" / f"{name}.ko"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    (root / "modules.builtin").write_text("".join(f"kernel/fs/{b}.ko\n" for b in builtin))
    return root


def test_initramfs_skips_modules_built_into_the_kernel(tmp_path: Path) -> None:
    root = _module_tree(tmp_path, ["virtio", "virtio_blk"], ["ext4"])
    found = initramfs_modules(root, ["ext4", "virtio", "virtio_blk"])
    assert [p.stem for p in found] == ["virtio", "virtio_blk"]
    with pytest.raises(ImageBuildError, match="no module jbd2"):
        initramfs_modules(root, ["jbd2"])


def test_domain_xml_boots_the_firmware_and_machine_it_is_given() -> None:
    spec = DomainSpec(
        name="vmvc-run-libvirt-1",
        run_id="run",
        owner_pid=42,
        domain_type="qemu",
        vcpus=1,
        memory_mib=512,
        kernel=Path("/k"),
        initrd=Path("/i"),
        cmdline="console=ttyS0",
        disks=[],
        firmware=Path("/w/firmware.rom"),
        machine="pc",
    )
    root = ElementTree.fromstring(domain_xml(spec))
    loader = root.find("./os/loader")
    assert loader is not None and loader.text == "/w/firmware.rom"
    assert loader.get("type") == "rom"  # a plain -bios image, no UEFI variables
    assert root.find("./os/type").get("machine") == "pc"  # type: ignore[union-attr]
    spec.firmware = None
    assert ElementTree.fromstring(domain_xml(spec)).find("./os/loader") is None
    # The trimmed device model: nothing the guest would probe and the benchmark not use.
    devices = root.find("./devices")
    assert devices is not None
    for absent in ("graphics", "video", "interface", "sound", "input", "channel"):
        assert devices.find(absent) is None, absent
    assert devices.find("./controller[@type='usb']").get("model") == "none"  # type: ignore[union-attr]
    assert devices.find("./memballoon").get("model") == "none"  # type: ignore[union-attr]


def test_domain_xml_has_no_network_and_escapes_paths() -> None:
    xml = domain_xml(
        DomainSpec(
            name="vmvc-run-libvirt-1",
            run_id="run",
            owner_pid=42,
            domain_type="qemu",
            vcpus=1,
            memory_mib=512,
            kernel=Path("/k&<x>"),
            initrd=Path("/i"),
            cmdline="console=ttyS0",
            disks=[DomainDisk(Path("/d.qcow2"), "qcow2", "vda")],
            console_log=Path("/log"),
        )
    )
    root = ElementTree.fromstring(xml)
    assert root.get("type") == "qemu"
    assert root.find("./os/kernel").text == "/k&<x>"  # type: ignore[union-attr]
    assert root.find("./devices/interface") is None
    assert root.find("./features/acpi") is not None  # without ACPI a guest cannot power off
    meta = root.find(f"./metadata/{{{METADATA_NS}}}instance")
    assert meta is not None and meta.get("run-id") == "run"
    assert root.find("./cpu") is None  # host-passthrough only under KVM
