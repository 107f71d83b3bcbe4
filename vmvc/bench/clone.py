"""Clone: a second instance from the image a running first instance was made from.

While a first instance is up and ready (the "server" being replicated):
docker   a second container from the same image layers: `docker create` is the clone
         (clone_s), `docker start` to its ready marker is clone_to_ready_s; clone_bytes is
         what the host stores for the new container's own layers (overlay2 read-write and
         init layer directories, allocated blocks; `SizeRw` in the metadata).
libvirt  a qcow2 copy-on-write overlay of the base disk plus `virsh define` is the clone
         (clone_s), start to ready is clone_to_ready_s; clone_bytes is the overlay file's
         allocated size once the clone is ready. For contrast, full_copy_s is a full copy of
         the base disk (`qemu-img convert`, holes kept sparse), its size in the metadata.

The VM's kernel/initrd copies and data disk (needed by this harness, not by cloning) are
made before the clone timer starts. C04 reads clone_s + clone_to_ready_s.
Native: not applicable.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from vmvc.backends.docker_engine.backend import DockerBackend, DockerInstance
from vmvc.backends.docker_engine.lifecycle import writable_layer_bytes
from vmvc.backends.libvirt import LibvirtBackend
from vmvc.backends.libvirt_engine.domain_xml import DomainDisk
from vmvc.backends.libvirt_engine.lifecycle import (
    DefinedGuest,
    allocated_bytes,
    convert,
    copy_boot_files,
    create_overlay,
    guest_xml,
    instance_dir,
    make_data_disk,
    undefine_by_name,
)
from vmvc.bench.base import Measurement
from vmvc.bench.lifecycle_tools import (
    INSTANCE_BACKENDS,
    Timer,
    byte_count,
    per_engine,
    seconds,
)

B = TypeVar("B", DockerBackend, LibvirtBackend)

if TYPE_CHECKING:  # the registry in vmvc.bench.lifecycle imports this module
    from vmvc.bench.lifecycle import LifecycleContext


class CloneWorkload:
    name = "clone"
    applies_to = INSTANCE_BACKENDS

    def run(self, context: LifecycleContext) -> list[Measurement]:
        return per_engine(
            context,
            self.name,
            docker=lambda c, b: _with_running_source(c, b, _docker),
            libvirt=lambda c, b: _with_running_source(c, b, _libvirt),
            otherwise="the host itself cannot be cloned",
        )


def _with_running_source(
    context: LifecycleContext,
    backend: B,
    clone: Callable[[LifecycleContext, B], list[Measurement]],
) -> list[Measurement]:
    """Clones are made while the first instance runs: replicating a live server."""
    context.phase("clone: first instance")
    with backend.provision(context.artefacts, context.make_spec(backend.name)) as source:
        source.wait_ready(context.config.timeouts.boot_s)
        return clone(context, backend)


def _docker(context: LifecycleContext, backend: DockerBackend) -> list[Measurement]:
    context.phase("clone: second container from the same image")
    spec = context.make_spec(backend.name)
    with backend.provision(context.artefacts, spec) as clone:
        assert isinstance(clone, DockerInstance)
        clone.wait_ready(context.config.timeouts.boot_s)
        phases = dict(clone.phases)
        layers = writable_layer_bytes(backend.client, clone.container)
    clone_bytes = layers.get("layer_bytes", layers.get("size_rw", 0.0))
    return [
        seconds("clone_s", phases["create_s"], step="docker create"),
        seconds(
            "clone_to_ready_s",
            phases["total_s"] - phases["create_s"],
            step="docker start to ready marker",
        ),
        byte_count(
            "clone_bytes",
            clone_bytes,
            what="container read-write + init layer dirs (allocated)"
            if "layer_bytes" in layers
            else "SizeRw (layer dirs not readable)",
            size_rw=layers.get("size_rw"),
        ),
    ]


def _libvirt(context: LifecycleContext, backend: LibvirtBackend) -> list[Measurement]:
    spec = context.make_spec(backend.name)
    guest: DefinedGuest | None = None
    clone_timer, full_timer = Timer(), Timer()
    base = context.artefacts.base_disk
    try:
        directory = instance_dir(spec)
        overlay, data = directory / "root.qcow2", directory / "data.raw"
        kernel, initrd = copy_boot_files(context.artefacts, directory)
        make_data_disk(data, spec.data_disk_mib)
        context.phase("clone: qcow2 overlay + virsh define")
        with clone_timer:
            create_overlay(base, overlay)
            xml = guest_xml(
                backend,
                spec,
                root=DomainDisk(overlay, "qcow2", "vda"),
                kernel=kernel,
                initrd=initrd,
                data=data,
            )
            guest = DefinedGuest(backend.conn, spec.name, xml)
        context.phase("clone: booting the clone")
        guest.start()
        guest.wait_ready(context.config.timeouts.boot_s)
        to_ready = guest.phases["total_s"]
        clone_bytes = allocated_bytes(overlay)
        guest.remove()
        guest = None
        context.phase("clone: full copy of the base disk (contrast)")
        full = directory / "full-copy.raw"
        with full_timer:
            convert(base, "raw", full, "raw")
        full_bytes = allocated_bytes(full)
    finally:
        if guest is not None:
            guest.remove()
        else:
            undefine_by_name(backend.conn, spec.name)
        shutil.rmtree(spec.workdir, ignore_errors=True)
    return [
        seconds("clone_s", clone_timer.seconds, step="qemu-img create (overlay) + virsh define"),
        seconds("clone_to_ready_s", to_ready, step="virsh start (paused, console) to ready"),
        byte_count("clone_bytes", clone_bytes, what="qcow2 overlay (allocated, after ready)"),
        seconds(
            "full_copy_s",
            full_timer.seconds,
            step="qemu-img convert of the base disk",
            full_copy_bytes=full_bytes,
            base_disk_bytes=base.stat().st_size,
        ),
    ]
