"""Portability: the image exported in a portable form and imported again, in two forms (C06).

The backend's EXPORT_IMPORT operation (`Backend.porter`) does the engine work on one
uncompressed stream; this workload packs it in each form of vmvc.bench.export_forms
(`uncompressed`, and `compressed` with the same compressor and level for every engine) and
times the export and the import of each. Every sample carries ``form`` (and the compressor,
level and threads) in its metadata, so each form is a metric group of its own
(``export_bytes@uncompressed``, ``export_bytes@compressed``): forms are never pooled or mixed.

docker   `docker save` of a temporary single-layer image (rootfs plus one unique file, so
         the load has to rebuild the layer as on another host), then `docker load`; the
         image id (a content digest) must come back unchanged.
libvirt  a bundle of everything needed to boot the VM elsewhere, as one tar: the root disk
         as an uncompressed qcow2, the kernel, the initramfs, the firmware ROM (if the
         image boots with one) and the domain XML, its file paths relative to the bundle.
         Import: untar, point the XML at the unpacked files, `virsh define`; the check
         boots the imported domain to the agent's ready marker.

Per form (`[workload.portability] forms`; the quick profile measures the uncompressed one
only): export (timed), forget the source, import (timed), check, clear the import; the
uncompressed form first, then the compressed one. export_bytes is the file's size on disk;
its metadata also gives the uncompressed stream's size (`stream_bytes`). Temporary files
live in the instance's vmvc-named work dir.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from vmvc.backends.capabilities import Capability, Porter
from vmvc.bench.base import Measurement
from vmvc.bench.export_forms import FORMS, ExportForm, reading, writing
from vmvc.bench.lifecycle_tools import (
    LifecycleContext,
    LifecycleResult,
    Timer,
    byte_count,
    seconds,
)
from vmvc.paths import make_dirs


class PortabilityWorkload:
    name = "portability"
    requires = frozenset({Capability.EXPORT_IMPORT})

    def run(self, context: LifecycleContext) -> LifecycleResult:
        backend = context.backend
        spec = context.make_spec(backend.name)
        porter: Porter | None = None
        measurements: list[Measurement] = []
        try:
            porter = backend.porter(context.artefacts, spec)
            context.phase("portability: set-up (untimed)")
            make_dirs(spec.workdir)
            porter.stage()
            chosen = context.config.workload.portability.forms
            for form in (f for f in FORMS if f.name in chosen):
                measurements += self._one_form(context, porter, form, spec.workdir)
        finally:
            if porter is not None:
                porter.remove()
            shutil.rmtree(spec.workdir, ignore_errors=True)
        return LifecycleResult(measurements)

    @staticmethod
    def _one_form(
        context: LifecycleContext, porter: Porter, form: ExportForm, workdir: Path
    ) -> list[Measurement]:
        archive = workdir / f"export-{form.name}.tar{form.suffix}"
        export, load = Timer(), Timer()
        context.phase(f"portability ({form.name}): {porter.step('export')}")
        with export, writing(archive, form) as sink:
            porter.export(sink)
        size = archive.stat().st_size
        porter.forget_source()
        context.phase(f"portability ({form.name}): {porter.step('import')}")
        with load, reading(archive, form) as source:
            porter.import_(source)
        context.phase(f"portability ({form.name}): check (untimed)")
        porter.check()
        porter.clear_import()
        archive.unlink()
        meta = form.metadata()
        return [
            byte_count(
                "export_bytes",
                size,
                **meta,
                holds=porter.holds,
                stream_bytes=sink.count,
                **porter.detail("export_bytes"),
            ),
            seconds(
                "export_s",
                export.seconds,
                **meta,
                step=porter.step("export"),
                **porter.detail("export"),
            ),
            seconds(
                "import_s",
                load.seconds,
                **meta,
                step=porter.step("import"),
                **porter.detail("import"),
            ),
        ]
