"""Portability: the image exported in the engine's portable form and imported again (C06).

docker   `docker save` (SDK stream, by image id) to a tar file, then `docker load` of it
         (tagged with a temporary vmvc tag). The exported image is a temporary single-layer
         import of the rootfs plus one unique file, removed before the load: loading an
         image whose layer the engine already holds skips the real work, so the load here
         must rebuild the layer as it would on another host. The set-up import is untimed.
libvirt  the base disk exported as a zlib-compressed qcow2 (`qemu-img convert -c -O qcow2`)
         and imported back as a raw disk (`qemu-img convert -O raw`).

export_bytes is the exported file's size, export_s and import_s the two steps. The forms
are each engine's usual one: an uncompressed image archive vs a compressed disk image.
Temporary files live in the instance's vmvc-named work dir. Native: not applicable.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from vmvc.backends.docker import DockerBackend
from vmvc.backends.docker_engine.lifecycle import (
    import_rootfs_as,
    load_image,
    remove_image,
    save_image,
    temp_tag,
)
from vmvc.backends.libvirt import LibvirtBackend
from vmvc.backends.libvirt_engine.lifecycle import allocated_bytes, convert, instance_dir
from vmvc.bench.base import Measurement
from vmvc.bench.lifecycle_tools import (
    INSTANCE_BACKENDS,
    Timer,
    byte_count,
    per_engine,
    seconds,
)

if TYPE_CHECKING:  # the registry in vmvc.bench.lifecycle imports this module
    from vmvc.bench.lifecycle import LifecycleContext


class PortabilityWorkload:
    name = "portability"
    applies_to = INSTANCE_BACKENDS

    def run(self, context: LifecycleContext) -> list[Measurement]:
        return per_engine(
            context,
            self.name,
            docker=_docker,
            libvirt=_libvirt,
            otherwise="the host has no portable image form",
        )


def _docker(context: LifecycleContext, backend: DockerBackend) -> list[Measurement]:
    client = backend.client
    spec = context.make_spec(backend.name)
    source_tag = temp_tag(spec.name, "export")
    loaded_tag = temp_tag(spec.name, "imported")
    image_ids: list[str] = []
    export, load = Timer(), Timer()
    try:
        directory = instance_dir(spec)
        unique = directory / "unique"
        unique.mkdir()
        # A file no other image has: the exported layer is this image's alone.
        (unique / f".{spec.name}").write_text(spec.name + "\n")
        context.phase("portability: temporary image (set-up, untimed)")
        source_id = import_rootfs_as(client, context.artefacts, source_tag, spec.run_id, unique)
        image_ids.append(source_id)
        archive = directory / "image.tar"
        context.phase("portability: docker save")
        with export:
            size = save_image(client, source_id, archive)
        remove_image(client, source_id)  # as on another host: the layer must be rebuilt
        context.phase("portability: docker load")
        with load:
            loaded_id = load_image(client, archive)
        image_ids.append(loaded_id)
        client.images.get(loaded_id).tag(*loaded_tag.split(":"))
        if loaded_id != source_id:
            raise RuntimeError(f"docker load gave image {loaded_id}, expected {source_id}")
    finally:
        for image in (*image_ids, source_tag, loaded_tag):
            remove_image(client, image)
        shutil.rmtree(spec.workdir, ignore_errors=True)
    return [
        byte_count("export_bytes", size, form="docker save archive (uncompressed tar)"),
        seconds("export_s", export.seconds, step="docker save (SDK stream to a file)"),
        seconds("import_s", load.seconds, step="docker load (layer rebuilt)"),
    ]


def _libvirt(context: LifecycleContext, backend: LibvirtBackend) -> list[Measurement]:
    spec = context.make_spec(backend.name)
    base = context.artefacts.base_disk
    export, load = Timer(), Timer()
    try:
        directory = instance_dir(spec)
        exported = directory / "export.qcow2"
        imported = directory / "imported.raw"
        context.phase("portability: qemu-img convert -c (export)")
        with export:
            convert(base, "raw", exported, "qcow2", compress=True)
        size = exported.stat().st_size
        context.phase("portability: qemu-img convert (import)")
        with load:
            convert(exported, "qcow2", imported, "raw")
        imported_bytes = allocated_bytes(imported)
    finally:
        shutil.rmtree(spec.workdir, ignore_errors=True)
    return [
        byte_count(
            "export_bytes",
            size,
            form="qcow2, zlib-compressed",
            base_disk_bytes=base.stat().st_size,
        ),
        seconds("export_s", export.seconds, step="qemu-img convert -c -O qcow2"),
        seconds(
            "import_s",
            load.seconds,
            step="qemu-img convert -O raw",
            imported_allocated_bytes=imported_bytes,
        ),
    ]
