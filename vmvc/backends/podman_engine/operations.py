"""Podman's lifecycle operations (vmvc.backends.capabilities): the engine work, untimed.

derive    `tar | podman import` of the rootfs into a temporary, vmvc-labelled image
define    `podman create` with every vmvc podman container's options (vmvc.backends.
          podman_engine.container) from that image or, for a clone, from the prepared image:
          the rootfs directory under an overlay (`--rootfs DIR:O`), exactly what instances
          run; started with `podman start --attach --interactive`, ready at the agent's marker
porter    `podman save` (docker-archive, uncompressed) into the workload's sink, `podman load`
          from its source (the workload packs the form). The exported image is a temporary
          single-layer import of the rootfs plus one unique file, removed before the load:
          loading an image whose layer the store already holds skips the real work, so the
          load must rebuild the layer as on another host.

No full copy: a container clone is always a layer (as Docker's). The crash (RECOVER) is in
vmvc.backends.podman_engine.recovery: its containers are created differently (podman's
restart policy, a log file, `podman exec`), and only the recovery workload's.

The gVisor backend is this one with runsc as the runtime, so it runs the same operations,
except export/import: an image's save and load are podman's image store and commands alone
(no runtime takes part), so gVisor's numbers would repeat podman's.

`PodmanOperations` is mixed into PodmanBackend (vmvc.backends.podman_engine.backend); this
module does not import the backend's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vmvc.agent.protocol import LineLog, ReadyInfo, wait_ready
from vmvc.backends.base import Backend, InstanceSpec
from vmvc.backends.capabilities import (
    ByteSink,
    ByteSource,
    Capability,
    Definition,
    DerivedArtefact,
    Porter,
    StoredBytes,
    Unsupported,
)
from vmvc.backends.podman_engine.cli import Engine, PodmanError
from vmvc.backends.podman_engine.container import (
    Attached,
    claim,
    create_argv,
    remove_container,
)
from vmvc.backends.podman_engine.images import (
    image_labels,
    import_rootfs_as,
    inspect_image,
    load_image,
    remove_image,
    save_image,
    temp_tag,
)
from vmvc.backends.podman_engine.storage import container_stored_bytes
from vmvc.image.build import Artefacts
from vmvc.paths import make_dirs


class PodmanOperations(Backend):
    """The lifecycle operations of podman on this host (mixed into PodmanBackend)."""

    if TYPE_CHECKING:  # provided by PodmanBackend, later in the MRO
        engine: Engine

    def derive_artefact(self, artefacts: Artefacts, spec: InstanceSpec) -> DerivedArtefact:
        return PodmanImage(self.engine, artefacts, spec, self.name)

    def define(
        self, artefacts: Artefacts, spec: InstanceSpec, source: DerivedArtefact | None = None
    ) -> Definition:
        claim(spec, self.name)
        if source is None:
            return PodmanDefinition(self.engine, spec, rootfs=artefacts.rootfs)
        if not isinstance(source, PodmanImage):
            raise TypeError(f"podman cannot define a container from {type(source).__name__}")
        return PodmanDefinition(self.engine, spec, image=source.reference)

    def porter(self, artefacts: Artefacts, spec: InstanceSpec) -> Porter:
        if Capability.EXPORT_IMPORT not in self.capabilities:  # gVisor: podman's numbers
            raise Unsupported(self.name, Capability.EXPORT_IMPORT)
        return PodmanPorter(self.engine, artefacts, spec, self.name)


class PodmanImage(DerivedArtefact):
    """A temporary image imported from the rootfs, tagged with the instance's name."""

    def __init__(self, engine: Engine, artefacts: Artefacts, spec: InstanceSpec, backend: str):
        super().__init__()
        self.engine, self.artefacts, self.spec = engine, artefacts, spec
        self.labels = image_labels(spec.run_id, artefacts.image_id, backend)
        self.reference = temp_tag(spec.name, "provision")
        self.image_id: str | None = None
        self.steps = {"create": "tar | podman import", "remove": "podman rmi"}

    def create(self) -> None:
        self.image_id = import_rootfs_as(
            self.engine, self.artefacts.rootfs, self.reference, self.labels
        )

    def inspect(self) -> None:
        if self.image_id is not None:
            self.details["create"] = {"image_bytes": inspect_image(self.engine, self.image_id).size}

    def remove(self) -> None:
        remove_image(self.engine, self.image_id or self.reference)  # missing is fine
        self.image_id = None


class PodmanDefinition(Definition):
    """`podman create` of a vmvc container (not started), then its agent attached."""

    def __init__(
        self,
        engine: Engine,
        spec: InstanceSpec,
        *,
        rootfs: Path | None = None,
        image: str | None = None,
    ) -> None:
        super().__init__()
        self.engine, self.spec = engine, spec
        self.argv = create_argv(spec, rootfs, image)
        self.log = LineLog()
        self.attached: Attached | None = None
        root = "rootfs dir, overlay" if rootfs is not None else "image"
        self.steps = {
            "create": f"podman create ({root})",
            "start": "podman start --attach to ready marker",
            "remove": "podman rm",
        }

    def stage(self) -> None:
        make_dirs(self.spec.workdir)
        make_dirs(self.spec.workdir / "data")  # the bind mount source

    def create(self) -> None:
        self.engine.call(*self.argv)

    def start(self) -> None:
        self.attached = Attached(self.engine, self.spec.name, self.log)

    def wait_ready(self, timeout: float) -> ReadyInfo:
        _, info = wait_ready(self.log, timeout)
        return info

    def stored_bytes(self) -> StoredBytes:
        return container_stored_bytes(self.engine, self.spec.name)

    def remove(self) -> None:
        try:
            remove_container(self.engine, self.spec.name)  # also when create failed half way
        finally:
            attached, self.attached = self.attached, None
            if attached is not None:
                attached.end()


class PodmanPorter(Porter):
    """podman save / podman load of a temporary image whose layer no other image shares."""

    holds = "docker-archive from podman save: the image's layer tar, config and manifest"

    def __init__(self, engine: Engine, artefacts: Artefacts, spec: InstanceSpec, backend: str):
        super().__init__()
        self.engine, self.artefacts, self.spec = engine, artefacts, spec
        self.labels = image_labels(spec.run_id, artefacts.image_id, backend)
        self.source_tag = temp_tag(spec.name, "export")
        self.loaded_tag = temp_tag(spec.name, "imported")
        self.source_id = ""
        self.loaded_id = ""
        self.image_ids: list[str] = []
        self.steps = {
            "export": "podman save (docker-archive)",
            "import": "podman load (layer rebuilt)",
        }

    def stage(self) -> None:
        unique = make_dirs(self.spec.workdir) / "unique"
        unique.mkdir()
        # A file no other image has: the exported layer is this image's alone.
        (unique / f".{self.spec.name}").write_text(self.spec.name + "\n")
        self.source_id = import_rootfs_as(
            self.engine, self.artefacts.rootfs, self.source_tag, self.labels, unique
        )
        self.image_ids.append(self.source_id)

    def export(self, sink: ByteSink) -> None:
        # After the first form's import the loaded image is the source again (same id).
        save_image(self.engine, self.source_id, sink)

    def forget_source(self) -> None:
        remove_image(self.engine, self.source_id)  # as on another host: rebuild the layer

    def import_(self, source: ByteSource) -> None:
        self.loaded_id = load_image(self.engine, source)
        self.image_ids.append(self.loaded_id)

    def check(self) -> None:
        """The image id is the digest of its config, which names its layer's content digest
        (podman's load checks the layer against it): the same id back means the same
        content. The loaded image is the next form's source, so nothing is cleared."""
        self.engine.call("tag", self.loaded_id, self.loaded_tag)
        if self.loaded_id != self.source_id:
            raise PodmanError(f"podman load gave image {self.loaded_id}, expected {self.source_id}")

    def remove(self) -> None:
        """Every image it made, by id and by tag; one that fails does not keep the others."""
        failed: list[PodmanError] = []
        for image in (*self.image_ids, self.source_tag, self.loaded_tag):
            try:
                remove_image(self.engine, image)
            except PodmanError as exc:
                failed.append(exc)
        self.image_ids = []
        if failed:
            raise failed[0]
