"""Provision: from the shared image to a startable instance and back, in three timed steps.

prepare_s   derive the engine's form of the image from the rootfs (DERIVE_ARTEFACT). docker:
            `tar | docker import` into a temporary, vmvc-labelled image; libvirt: `mke2fs -d`
            of the rootfs into a temporary ext4 base disk (both exactly as the image build
            does it).
define_s    a startable instance from it, not started (DEFINE). docker: `docker create`
            (writable and init layers, configuration); libvirt: a qcow2 overlay of that base
            disk and `virsh define`.
teardown_s  remove the instance, the derived artefact and the instance's work dir. docker:
            `docker rm` and `docker rmi`; libvirt: `virsh undefine` and deleting the disks.

Files only this harness needs per instance (the VM's kernel/initrd copies and data disk) are
made before the define timer starts (`Definition.stage`); their time is in the metadata
(harness_files_s). The engine names each step in the metadata.
"""

from __future__ import annotations

import shutil

from vmvc.backends.capabilities import Capability, Definition, DerivedArtefact
from vmvc.bench.lifecycle_tools import LifecycleContext, LifecycleResult, Timer, seconds


class ProvisionWorkload:
    name = "provision"
    requires = frozenset({Capability.DERIVE_ARTEFACT, Capability.DEFINE})

    def run(self, context: LifecycleContext) -> LifecycleResult:
        backend = context.backend
        spec = context.make_spec(backend.name)
        artefact: DerivedArtefact | None = None
        instance: Definition | None = None
        prepare, staging, define, teardown = Timer(), Timer(), Timer(), Timer()
        try:
            artefact = backend.derive_artefact(context.artefacts, spec)
            context.phase(f"provision: {artefact.step('create')}")
            with prepare:
                artefact.create()
            artefact.inspect()
            instance = backend.define(context.artefacts, spec, artefact)
            with staging:
                instance.stage()
            context.phase(f"provision: {instance.step('create')}")
            with define:
                instance.create()
            teardown_step = f"{instance.step('remove')} + {artefact.step('remove')} + work dir"
            context.phase(f"provision: {teardown_step}")
            with teardown:
                instance.remove()
                artefact.remove()
                shutil.rmtree(spec.workdir, ignore_errors=True)
        finally:  # each remove is safe twice and after a failure half way
            if instance is not None:
                instance.remove()
            if artefact is not None:
                artefact.remove()
            shutil.rmtree(spec.workdir, ignore_errors=True)
        return LifecycleResult(
            [
                seconds(
                    "prepare_s",
                    prepare.seconds,
                    step=artefact.step("create"),
                    **artefact.detail("create"),
                ),
                seconds(
                    "define_s",
                    define.seconds,
                    step=instance.step("create"),
                    harness_files_s=round(staging.seconds, 6),
                    **instance.detail("create"),
                ),
                seconds("teardown_s", teardown.seconds, step=teardown_step),
            ]
        )
