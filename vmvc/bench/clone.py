"""Clone: a second instance from the image a running first instance was made from (C04).

While a first instance is up and ready (the "server" being replicated), a second one is
defined from the same prepared image (CLONE, `Backend.define` without a source):

clone_s           defining it: the clone step alone, C04's input. docker: `docker create` on
                  the same image layers; libvirt: a qcow2 copy-on-write overlay of the base
                  disk plus `virsh define`.
clone_to_ready_s  start of the clone to its ready marker: a boot, which C01 judges; C04
                  shows it as context only.
clone_bytes       what the host stores for the clone's own data once it is ready (docker:
                  the container's read-write and init layer dirs, allocated blocks, `SizeRw`
                  in the metadata; libvirt: the overlay file's allocated size).
full_copy_s       for contrast, where the backend can (FULL_COPY): a full copy of the
                  prepared image (libvirt: `qemu-img convert` of the base disk, holes kept
                  sparse), its size in the metadata.

Files only this harness needs per instance (the VM's kernel/initrd copies and data disk) are
made before the clone timer starts. C04 reads clone_s alone (issue 13: the clone itself was
1.07x, the 36x of clone + boot was the boot, i.e. C01 again).
"""

from __future__ import annotations

import shutil
import time

from vmvc.backends.capabilities import Capability, Definition
from vmvc.bench.base import Measurement
from vmvc.bench.lifecycle_tools import (
    LifecycleContext,
    LifecycleResult,
    Timer,
    byte_count,
    seconds,
)


class CloneWorkload:
    name = "clone"
    requires = frozenset({Capability.CLONE})

    def run(self, context: LifecycleContext) -> LifecycleResult:
        """Clones are made while the first instance runs: replicating a live server."""
        backend = context.backend
        context.phase("clone: first instance")
        with backend.provision(context.artefacts, context.make_spec(backend.name)) as source:
            source.wait_ready(context.config.timeouts.boot_s)
            measured = clone(context)
        return LifecycleResult(measured)


def clone(context: LifecycleContext) -> list[Measurement]:
    backend, timeout = context.backend, context.config.timeouts.boot_s
    spec = context.make_spec(backend.name)
    instance: Definition | None = None
    define = Timer()
    measured: list[Measurement] = []
    try:
        instance = backend.define(context.artefacts, spec)
        instance.stage()
        context.phase(f"clone: {instance.step('create')}")
        with define:
            instance.create()
        context.phase("clone: starting the clone")
        started = time.monotonic()
        instance.start()
        ready = instance.wait_ready(timeout)
        stored = instance.stored_bytes()
        instance.remove()
        measured += [
            seconds("clone_s", define.seconds, step=instance.step("create")),
            seconds("clone_to_ready_s", ready.at - started, step=instance.step("start")),
            byte_count("clone_bytes", stored.value, **stored.metadata),
        ]
        if Capability.FULL_COPY in backend.capabilities:
            context.phase("clone: full copy of the prepared image (contrast)")
            with Timer() as full:
                copy = backend.full_copy(context.artefacts, spec.workdir)
            measured.append(
                seconds(
                    "full_copy_s",
                    full.seconds,
                    step=copy.step,
                    full_copy_bytes=copy.stored_bytes,
                    **copy.metadata,
                )
            )
    finally:
        if instance is not None:
            instance.remove()
        shutil.rmtree(spec.workdir, ignore_errors=True)
    return measured
