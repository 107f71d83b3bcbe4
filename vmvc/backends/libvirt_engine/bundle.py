"""A VM as one portable tar: everything needed to boot it on another libvirt host.

    disk.qcow2    the root disk, qcow2 WITHOUT compression (`qemu-img convert -O qcow2`)
    vmlinuz       the guest kernel it boots (direct kernel boot)
    initrd.img    its initramfs (loads the virtio modules, mounts the root disk)
    firmware.rom  the firmware ROM, only when the image boots with one (qboot)
    domain.xml    the libvirt domain definition; its file paths are bundle-relative names

Why qcow2 and not raw: the raw base disk is sparse (373 MB long, 188 MB allocated here) and a
plain tar stores its holes as zeros, doubling the "uncompressed" VM export for nothing; an
uncompressed qcow2 stores only the allocated clusters, is what QEMU boots as it is (no
conversion on import), and is the disk format libvirt hosts exchange. It is not compressed,
so the bundle compares like with like with `docker save`'s plain tar (the compressed form is
the same bundle through the same compressor, vmvc.bench.export_forms).

The domain XML is the one vmvc would define (machine, memory, vCPUs, kernel command line,
firmware, console), without the benchmark's scratch data disk, which is not part of the
image. On import the names are pointed at the unpacked files (libvirt needs absolute paths).
Reading accepts only these regular files by these names (nothing else is written).
"""

from __future__ import annotations

import io
import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from vmvc.backends.capabilities import ByteSink, ByteSource
from vmvc.backends.libvirt_engine.backend import FIRMWARE_COPY
from vmvc.backends.libvirt_engine.domain_xml import METADATA_NS
from vmvc.paths import create_new_file

DISK = "disk.qcow2"
KERNEL = "vmlinuz"
INITRD = "initrd.img"
FIRMWARE = FIRMWARE_COPY
DOMAIN = "domain.xml"
REQUIRED = frozenset({DISK, KERNEL, INITRD, DOMAIN})
ALLOWED = REQUIRED | {FIRMWARE, "console.log"}

# Where a domain XML names files: (element path, attribute or None for the element's text).
_FILE_REFERENCES = (
    ("os/kernel", None),
    ("os/initrd", None),
    ("os/loader", None),
    ("devices/disk/source", "file"),
    ("devices/serial/log", "file"),
)


class BundleError(RuntimeError):
    """A bundle that cannot be a vmvc VM: a file missing, or one it must not hold."""


def _parse(xml: str) -> ET.Element:
    ET.register_namespace("vmvc", METADATA_NS)  # keep the metadata's prefix on output
    return ET.fromstring(xml)


def _rewrite(xml: str, place: Callable[[str], str]) -> str:
    root = _parse(xml)
    for path, attribute in _FILE_REFERENCES:
        for element in root.iterfind(path):
            old = element.get(attribute) if attribute else element.text
            if not old:
                continue
            new = place(old)
            if attribute:
                element.set(attribute, new)
            else:
                element.text = new
    return ET.tostring(root, encoding="unicode")


def relative_xml(xml: str) -> str:
    """The domain XML with every file it names reduced to its name inside the bundle."""
    return _rewrite(xml, lambda old: Path(old).name)


def placed_xml(xml: str, directory: Path) -> str:
    """A bundle's domain XML with its file names pointed at `directory` (absolute)."""

    def place(name: str) -> str:
        if name not in ALLOWED:
            raise BundleError(f"the domain XML names {name!r}, which no bundle holds")
        return str(directory / name)

    return _rewrite(xml, place)


def write_bundle(sink: ByteSink, files: dict[str, Path], domain: str) -> None:
    """A streamed tar (no seeking) of `files` (bundle name -> path) and the domain XML."""
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
        for name, path in files.items():
            info = tar.gettarinfo(str(path), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(path, "rb") as handle:
                tar.addfile(info, handle)
        data = domain.encode()
        info = tarfile.TarInfo(DOMAIN)
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))


def read_bundle(source: ByteSource, directory: Path) -> set[str]:
    """Unpack a streamed bundle into `directory` (which exists); returns the names found."""
    found: set[str] = set()
    with tarfile.open(fileobj=source, mode="r|") as tar:  # type: ignore[call-overload]
        for member in tar:
            if member.name not in ALLOWED or not member.isfile() or member.name in found:
                raise BundleError(f"unexpected entry {member.name!r} in the VM bundle")
            handle = tar.extractfile(member)
            assert handle is not None  # a regular file
            with open(create_new_file(directory / member.name, 0o644), "wb") as out:
                while chunk := handle.read(1 << 20):
                    out.write(chunk)
            found.add(member.name)
    missing = REQUIRED - found
    if missing:
        raise BundleError(f"the VM bundle lacks {', '.join(sorted(missing))}")
    return found
