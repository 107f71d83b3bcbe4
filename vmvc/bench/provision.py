"""Provision: from the shared image to a startable instance and back, in three timed steps.

prepare_s   derive the engine's form of the image from the rootfs. docker: `tar | docker
            import` into a temporary, vmvc-labelled image; libvirt: `mke2fs -d` of the rootfs
            into a temporary ext4 base disk (both exactly as the image build does it).
define_s    a startable instance from it, not started. docker: `docker create` (writable and
            init layers, configuration); libvirt: a qcow2 overlay of that base disk and
            `virsh define`.
teardown_s  remove the instance and the derived artefact. docker: `docker rm` and `docker
            rmi`; libvirt: `virsh undefine` and deleting overlay and base disk.

Files only this harness needs per instance (the VM's kernel/initrd copies and data disk) are
made before the define timer starts; their time is in the metadata. Native: not applicable.
"""

from __future__ import annotations

import contextlib
import shutil
from typing import TYPE_CHECKING

import docker.errors

from vmvc.backends.docker_engine.backend import AGENT, DockerBackend, container_options
from vmvc.backends.docker_engine.lifecycle import import_rootfs_as, remove_image, temp_tag
from vmvc.backends.libvirt import LibvirtBackend
from vmvc.backends.libvirt_engine.domain_xml import DomainDisk
from vmvc.backends.libvirt_engine.lifecycle import (
    DefinedGuest,
    allocated_bytes,
    build_deletable_base_disk,
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
    per_engine,
    seconds,
)

if TYPE_CHECKING:  # the registry in vmvc.bench.lifecycle imports this module
    from vmvc.bench.lifecycle import LifecycleContext


class ProvisionWorkload:
    name = "provision"
    applies_to = INSTANCE_BACKENDS

    def run(self, context: LifecycleContext) -> list[Measurement]:
        return per_engine(
            context,
            self.name,
            docker=_docker,
            libvirt=_libvirt,
            otherwise="the host is not provisioned from the image",
        )


def _docker(context: LifecycleContext, backend: DockerBackend) -> list[Measurement]:
    client = backend.client
    spec = context.make_spec(backend.name)
    reference = temp_tag(spec.name, "provision")
    image_id: str | None = None
    container = None
    prepare, define, teardown = Timer(), Timer(), Timer()
    try:
        (spec.workdir / "data").mkdir(parents=True, exist_ok=True)  # the bind mount source
        context.phase("provision: docker import of the rootfs")
        with prepare:
            image_id = import_rootfs_as(client, context.artefacts, reference, spec.run_id)
        image_bytes = client.images.get(image_id).attrs.get("Size")
        context.phase("provision: docker create")
        with define:
            container = client.containers.create(
                image_id, [AGENT, "idle"], detach=True, **container_options(spec)
            )
        context.phase("provision: docker rm + rmi")
        with teardown:
            container.remove(force=True)
            container = None
            remove_image(client, image_id)
            image_id = None
            shutil.rmtree(spec.workdir)
    finally:
        if container is not None:
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True)
        else:  # create may have failed after the engine registered the name
            with contextlib.suppress(docker.errors.DockerException):
                client.containers.get(spec.name).remove(force=True)
        remove_image(client, image_id or reference)
        shutil.rmtree(spec.workdir, ignore_errors=True)
    return [
        seconds("prepare_s", prepare.seconds, step="docker import", image_bytes=image_bytes),
        seconds("define_s", define.seconds, step="docker create"),
        seconds("teardown_s", teardown.seconds, step="docker rm + docker rmi + data dir"),
    ]


def _libvirt(context: LifecycleContext, backend: LibvirtBackend) -> list[Measurement]:
    spec = context.make_spec(backend.name)
    guest: DefinedGuest | None = None
    prepare, extras, define, overlay_timer, teardown = Timer(), Timer(), Timer(), Timer(), Timer()
    try:
        directory = instance_dir(spec)
        base = directory / "base.raw"
        overlay = directory / "root.qcow2"
        data = directory / "data.raw"
        context.phase("provision: mke2fs -d of the rootfs")
        with prepare:
            build_deletable_base_disk(context.artefacts.rootfs, base)
        base_bytes = allocated_bytes(base)
        with extras:
            kernel, initrd = copy_boot_files(context.artefacts, directory)
            make_data_disk(data, spec.data_disk_mib)
        context.phase("provision: overlay + virsh define")
        with define:
            with overlay_timer:
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
        context.phase("provision: virsh undefine + files")
        with teardown:
            guest.remove()
            guest = None
            shutil.rmtree(directory)
    finally:
        if guest is not None:
            guest.remove()
        else:
            undefine_by_name(backend.conn, spec.name)
        shutil.rmtree(spec.workdir, ignore_errors=True)
    return [
        seconds("prepare_s", prepare.seconds, step="mke2fs -d (base disk)", disk_bytes=base_bytes),
        seconds(
            "define_s",
            define.seconds,
            step="qemu-img create (overlay) + virsh define",
            overlay_s=round(overlay_timer.seconds, 6),
            harness_files_s=round(extras.seconds, 6),
        ),
        seconds("teardown_s", teardown.seconds, step="virsh undefine + delete disks"),
    ]
