"""vmvc's storage pool on a libvirt host: the image shipped as volumes, per-instance disks.

A remote libvirt host cannot see this machine's files, so everything a guest boots from goes
through the libvirt API into a `dir` pool named `vmvc`:

  vmvc-boot-<sha>-vmlinuz, vmvc-boot-<sha>-initrd.img   kernel and initramfs (content hash)
  vmvc-image-<image id>-base.raw                         the read-only root disk
  vmvc-data-ext4-<size>M.raw                             a freshly made empty ext4 data disk
  <instance name>-root.qcow2, <instance name>-data.raw   one instance's overlay and data disk

Uploads go to a temporary `vmvc-upload-...` volume first and are then copied by the daemon to
their final name in one call, so a volume under a final name is always complete even if an
upload is killed half-way (the next run only finds an orphaned upload volume, and removes it).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import libvirt

from vmvc.backends.libvirt_engine.deadline import with_deadline
from vmvc.proc import run

POOL_NAME = "vmvc"
POOL_PATH = "/var/lib/vmvc/pool"
UPLOAD_PREFIX = "vmvc-upload-"
Progress = Callable[[str], None]


class PoolError(Exception):
    """The vmvc pool or one of its volumes could not be made; one line for the user."""


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]


def pool_xml(name: str = POOL_NAME, path: str = POOL_PATH) -> str:
    return (
        f"<pool type='dir'><name>{escape(name)}</name>"
        f"<target><path>{escape(path)}</path>"
        "<permissions><mode>0755</mode></permissions></target></pool>"
    )


def volume_xml(
    name: str,
    capacity: int,
    fmt: str,
    *,
    mode: str = "0600",
    backing: str | None = None,
    backing_format: str = "raw",
) -> str:
    """A volume definition; allocation 0 keeps raw volumes sparse, qcow2 gets compat 1.1 like
    the local `qemu-img create` default (libvirt would otherwise write compat 0.10)."""
    compat = "<compat>1.1</compat>" if fmt == "qcow2" else ""
    backing_xml = (
        f"<backingStore><path>{escape(backing)}</path>"
        f"<format type='{escape(backing_format)}'/></backingStore>"
        if backing
        else ""
    )
    return (
        f"<volume><name>{escape(name)}</name>"
        f"<capacity unit='bytes'>{capacity}</capacity><allocation unit='bytes'>0</allocation>"
        f"<target><format type='{escape(fmt)}'/>{compat}"
        f"<permissions><mode>{escape(mode)}</mode></permissions></target>"
        f"{backing_xml}</volume>"
    )


def find_pool(conn: libvirt.virConnect) -> libvirt.virStoragePool | None:
    try:
        return conn.storagePoolLookupByName(POOL_NAME)
    except libvirt.libvirtError:
        return None


def ensure_pool(conn: libvirt.virConnect) -> libvirt.virStoragePool:
    """The persistent `vmvc` dir pool, defined, built and started if missing (idempotent)."""
    pool = find_pool(conn)
    try:
        if pool is None:
            try:
                pool = conn.storagePoolDefineXML(pool_xml(), 0)
            except libvirt.libvirtError:
                pool = find_pool(conn)  # another vmvc defined it at the same moment
                if pool is None:
                    raise
            with contextlib.suppress(libvirt.libvirtError):  # the directory may exist
                pool.build(0)
            pool.setAutostart(1)
        if not pool.isActive():
            pool.create(0)
        pool.refresh(0)
    except libvirt.libvirtError as exc:
        raise PoolError(f"storage pool '{POOL_NAME}' at {POOL_PATH}: {_first_line(exc)}") from None
    return pool


def find_volume(pool: libvirt.virStoragePool, name: str) -> libvirt.virStorageVol | None:
    try:
        return pool.storageVolLookupByName(name)
    except libvirt.libvirtError:
        return None


def delete_volume(pool: libvirt.virStoragePool, name: str) -> bool:
    """Delete a volume by name if it exists; True if something was deleted."""
    volume = find_volume(pool, name)
    if volume is None:
        return False
    try:
        volume.delete(0)
    except libvirt.libvirtError:
        return False
    return True


# -- sparse upload: holes in the local file are sent as holes, not as zeros ------------------


def _send(_stream: libvirt.virStream, nbytes: int, fd: int) -> bytes:
    return os.read(fd, nbytes)


def _hole(_stream: libvirt.virStream, fd: int) -> list[object]:
    """[in_data, length] of the section at the current offset (SEEK_DATA/SEEK_HOLE)."""
    current = os.lseek(fd, 0, os.SEEK_CUR)
    try:
        data = os.lseek(fd, current, os.SEEK_DATA)
    except OSError as exc:
        if exc.errno != errno.ENXIO:
            raise
        data = -1  # only a hole up to the end of the file
    if data == current:
        section = [True, os.lseek(fd, current, os.SEEK_HOLE) - current]
    elif data < 0:
        section = [False, os.lseek(fd, 0, os.SEEK_END) - current]
    else:
        section = [False, data - current]
    os.lseek(fd, current, os.SEEK_SET)
    return section


def _skip(_stream: libvirt.virStream, length: int, fd: int) -> int:
    os.lseek(fd, length, os.SEEK_CUR)
    return 0


def upload_file(
    conn: libvirt.virConnect,
    pool: libvirt.virStoragePool,
    source: Path,
    name: str,
    *,
    mode: str = "0644",
) -> libvirt.virStorageVol:
    """Ship a local file into the pool as raw volume `name` (kept if it already exists)."""
    existing = find_volume(pool, name)
    if existing is not None:
        return existing
    size = source.stat().st_size
    upload_name = f"{UPLOAD_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-{_controller()}"
    upload: libvirt.virStorageVol | None = None
    try:
        upload = pool.createXML(volume_xml(upload_name, size, "raw"), 0)
        stream = conn.newStream(0)
        fd = os.open(source, os.O_RDONLY)
        try:
            upload.upload(stream, 0, size, libvirt.VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM)
            try:
                # Keepalive ends a dead connection; the deadline also ends an upload that
                # crawls (at least 1 MiB/s is expected even over a slow link).
                with_deadline(
                    lambda: stream.sparseSendAll(_send, _hole, _skip, fd),
                    max(600.0, size / 2**20),
                    f"the upload of {source.name}",
                )
                stream.finish()
            except BaseException:
                with contextlib.suppress(libvirt.libvirtError):
                    stream.abort()
                raise
        finally:
            os.close(fd)
        try:
            # The daemon copies it to the final name in one call (sparse: about a second
            # for the root disk), so no half-written volume ever has a final name.
            return pool.createXMLFrom(volume_xml(name, size, "raw", mode=mode), upload, 0)
        except libvirt.libvirtError:
            done = find_volume(pool, name)  # another vmvc shipped the same content meanwhile
            if done is None:
                raise
            return done
    except libvirt.libvirtError as exc:
        raise PoolError(f"uploading {source.name} as volume {name}: {_first_line(exc)}") from None
    finally:
        if upload is not None:
            with contextlib.suppress(libvirt.libvirtError):
                upload.delete(0)


def _controller() -> str:
    """This machine's name as it appears in upload volume names (several machines may ship
    to one libvirt host; each only ever removes its own orphans)."""
    return re.sub(r"[^A-Za-z0-9.]", "", socket.gethostname())[:40] or "unknown"


def remove_orphaned_uploads(pool: libvirt.virStoragePool) -> list[str]:
    """Upload volumes that this machine's killed runs left (their pid is gone)."""
    removed = []
    for name in pool.listVolumes():
        if not (name.startswith(UPLOAD_PREFIX) and name.endswith(f"-{_controller()}")):
            continue
        pid_text = name.removeprefix(UPLOAD_PREFIX).split("-", 1)[0]
        if pid_text.isdigit() and Path(f"/proc/{pid_text}").exists():
            continue  # still uploading (or a reused pid: removed next time)
        if delete_volume(pool, name):
            removed.append(name)
    return removed


def file_sha(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class BootVolumes:
    """Paths (on the libvirt host) of what every guest of one image boots from."""

    kernel: Path
    initrd: Path
    base: Path | None
    base_bytes: int = 0


def ship_boot_files(
    conn: libvirt.virConnect, pool: libvirt.virStoragePool, kernel: Path, initrd: Path
) -> tuple[Path, Path]:
    """Kernel and initramfs, named by content so the KVM probe and every image share them."""
    sha = file_sha(kernel)[:8] + file_sha(initrd)[:8]
    kernel_vol = upload_file(conn, pool, kernel, f"vmvc-boot-{sha}-vmlinuz")
    initrd_vol = upload_file(conn, pool, initrd, f"vmvc-boot-{sha}-initrd.img")
    return Path(kernel_vol.path()), Path(initrd_vol.path())


def ship_image_volumes(
    conn: libvirt.virConnect,
    pool: libvirt.virStoragePool,
    image_id: str,
    kernel: Path,
    initrd: Path,
    base_disk: Path,
    progress: Progress,
) -> tuple[BootVolumes, list[str]]:
    """Make sure the pool holds this image; returns its volumes and what had to be uploaded."""
    base_name = f"vmvc-image-{image_id}-base.raw"
    before = set(pool.listVolumes())
    if base_name not in before:
        progress(f"uploading image {image_id} into storage pool '{POOL_NAME}'")
    kernel_path, initrd_path = ship_boot_files(conn, pool, kernel, initrd)
    # The base disk is read-only for guests: the overlays above it take every write.
    base_vol = upload_file(conn, pool, base_disk, base_name, mode="0444")
    uploaded = sorted(set(pool.listVolumes()) - before)
    volumes = BootVolumes(kernel_path, initrd_path, Path(base_vol.path()), base_vol.info()[1])
    return volumes, uploaded


def data_template(
    conn: libvirt.virConnect, pool: libvirt.virStoragePool, size_mib: int
) -> libvirt.virStorageVol:
    """An empty ext4 filesystem of `size_mib` as a pool volume, made here by mke2fs exactly as
    a local instance's data disk is, and uploaded sparse (about 33 MiB of 1 GiB is data)."""
    name = f"vmvc-data-ext4-{size_mib}M.raw"
    existing = find_volume(pool, name)
    if existing is not None:
        return existing
    with tempfile.TemporaryDirectory(prefix="vmvc-data-", dir="/var/tmp") as tmp:
        image = Path(tmp) / "data.raw"
        run(
            ["mke2fs", "-q", "-F", "-t", "ext4", "-L", "vmvc-data", image, f"{size_mib}M"],
            timeout=120,
            what="mke2fs (data disk template)",
        )
        return upload_file(conn, pool, image, name, mode="0444")


@dataclass
class PoolDisks:
    """One instance's disks in the pool: a qcow2 overlay over the image's base disk and a raw
    copy of the empty ext4 template; both deleted with `delete()` (and by name on failure)."""

    pool: libvirt.virStoragePool
    name: str
    overlay: Path
    data: Path

    @staticmethod
    def names(instance: str) -> tuple[str, str]:
        return f"{instance}-root.qcow2", f"{instance}-data.raw"

    @classmethod
    def create(
        cls,
        pool: libvirt.virStoragePool,
        instance: str,
        base: BootVolumes,
        template: libvirt.virStorageVol,
    ) -> PoolDisks:
        if base.base is None:
            raise PoolError("the image's base disk is not in the pool")
        overlay_name, data_name = cls.names(instance)
        try:
            overlay = pool.createXML(
                volume_xml(overlay_name, base.base_bytes, "qcow2", backing=str(base.base)), 0
            )
            capacity = template.info()[1]
            # The daemon copies the template (sparse): no data crosses the network.
            data = pool.createXMLFrom(volume_xml(data_name, capacity, "raw"), template, 0)
        except libvirt.libvirtError as exc:
            for name in (overlay_name, data_name):
                delete_volume(pool, name)
            raise PoolError(f"creating disks of {instance}: {_first_line(exc)}") from None
        return cls(pool, instance, Path(overlay.path()), Path(data.path()))

    def delete(self) -> None:
        delete_instance_disks(self.pool, self.name)


def delete_instance_disks(pool: libvirt.virStoragePool, instance: str) -> None:
    for name in PoolDisks.names(instance):
        delete_volume(pool, name)


def remove_pool(conn: libvirt.virConnect) -> None:
    """Delete every volume, the pool's directory and its definition (tests, `clean --cache`)."""
    pool = find_pool(conn)
    if pool is None:
        return
    with contextlib.suppress(libvirt.libvirtError):
        if not pool.isActive():
            pool.create(0)
        pool.refresh(0)
        for name in pool.listVolumes():
            delete_volume(pool, name)
    with contextlib.suppress(libvirt.libvirtError):
        pool.destroy()
    with contextlib.suppress(libvirt.libvirtError):
        pool.delete(0)
    with contextlib.suppress(libvirt.libvirtError):
        pool.undefine()
