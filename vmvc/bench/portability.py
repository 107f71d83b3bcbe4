"""Portability: the image exported in the engine's portable form and imported again (C06).

The backend's EXPORT_IMPORT operation (`Backend.porter`) does the engine work; this workload
times the export and the import.

docker   `docker save` (SDK stream, by image id) to a tar file, then `docker load` of it
         (tagged with a temporary vmvc tag). The exported image is a temporary single-layer
         import of the rootfs plus one unique file, removed before the load: loading an
         image whose layer the engine already holds skips the real work, so the load here
         must rebuild the layer as it would on another host. The set-up import is untimed.
libvirt  the base disk exported as a zlib-compressed qcow2 (`qemu-img convert -c -O qcow2`)
         and imported back as a raw disk (`qemu-img convert -O raw`).

export_bytes is the exported file's size, export_s and import_s the two steps. The forms
are each engine's usual one: an uncompressed image archive vs a compressed disk image.
Temporary files live in the instance's vmvc-named work dir.
"""

from __future__ import annotations

import shutil

from vmvc.backends.capabilities import Capability, Porter
from vmvc.bench.lifecycle_tools import (
    LifecycleContext,
    LifecycleResult,
    Timer,
    byte_count,
    seconds,
)


class PortabilityWorkload:
    name = "portability"
    requires = frozenset({Capability.EXPORT_IMPORT})

    def run(self, context: LifecycleContext) -> LifecycleResult:
        backend = context.backend
        spec = context.make_spec(backend.name)
        porter: Porter | None = None
        export, load = Timer(), Timer()
        try:
            porter = backend.porter(context.artefacts, spec)
            context.phase("portability: set-up (untimed)")
            porter.stage()
            context.phase(f"portability: {porter.step('export')}")
            with export:
                size = porter.export()
            porter.forget_source()
            context.phase(f"portability: {porter.step('import')}")
            with load:
                porter.import_()
            porter.check()
        finally:
            if porter is not None:
                porter.remove()
            shutil.rmtree(spec.workdir, ignore_errors=True)
        return LifecycleResult(
            [
                byte_count("export_bytes", size, **porter.detail("export_bytes")),
                seconds(
                    "export_s",
                    export.seconds,
                    step=porter.step("export"),
                    **porter.detail("export"),
                ),
                seconds(
                    "import_s", load.seconds, step=porter.step("import"), **porter.detail("import")
                ),
            ]
        )
