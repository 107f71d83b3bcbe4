"""Pure parts of image building and VM definition: mirror discovery, recipe identity, XML."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

from vmvc.backends.libvirt_xml import METADATA_NS, DomainDisk, DomainSpec, domain_xml
from vmvc.image.mirror import find_mirror
from vmvc.image.recipe import KernelRecipe, Recipe


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
