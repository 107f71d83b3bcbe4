"""Docker's lifecycle operations (vmvc.backends.capabilities): the engine work, untimed.

derive    `tar | docker import` of the rootfs into a temporary, vmvc-labelled image
define    `docker create` (writable and init layers, configuration) from that image or the
          run's prepared one; started with `docker start`, ready at the agent's marker
crash     SIGKILL to the container's main process from the host; the restart policy
          on-failure brings it back; detected at State.FinishedAt. The agent IS that main
          process (PID 1 in the container's PID namespace; one process per container), so
          "the workload process dies" and "the instance dies" are one and the same kill
          here: both kinds are measured, and say so. A container has no kernel of its own,
          so a guest kernel panic does not apply.
porter    `docker save` (SDK stream, by image id) into the workload's sink, `docker load` from
          its source (both the uncompressed archive; the workload packs the form). The
          exported image is a temporary single-layer import of the rootfs plus one unique
          file, removed before the load: loading an image whose layer the engine already
          holds skips the real work, so the load must rebuild the layer as on another host.

`DockerOperations` is mixed into the public DockerBackend (vmvc.backends.docker); the
engine's own backend module does not import this one.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

import docker
import docker.errors
from docker.models.containers import Container

from vmvc.agent.protocol import LineLog, ReadyInfo, wait_ready
from vmvc.backends.base import Backend, Instance, InstanceSpec
from vmvc.backends.capabilities import (
    ByteSink,
    ByteSource,
    Capability,
    Crash,
    Definition,
    DerivedArtefact,
    FailureKind,
    Porter,
    RecoveryPlan,
    StoredBytes,
)
from vmvc.backends.docker_engine.backend import AGENT, DockerInstance, container_options
from vmvc.backends.docker_engine.lifecycle import (
    import_rootfs_as,
    load_image,
    remove_image,
    save_image,
    temp_tag,
    writable_layer_bytes,
)
from vmvc.backends.docker_engine.restart_log import container_state
from vmvc.backends.engine_clock import KilledAt, engine_time
from vmvc.backends.memory import pids_named
from vmvc.image.build import Artefacts
from vmvc.paths import make_dirs

# Conservative host memory of one idle container for the scale safety check (not a
# measurement): ~14 MiB (cgroup + shim) measured on the development host, doubled.
CONTAINER_ESTIMATE_MIB = 32.0
DOCKER_DAEMONS = ("dockerd", "containerd")

# Docker's restart policy waits 100 ms before the first restart ("an ever increasing delay
# (double the previous delay, starting at 100ms) is added before each restart": Docker
# Engine API, RestartPolicy); that delay is the engine's mechanism, so it stays measured.
_RESTART = "Docker restart policy on-failure (the engine's 100 ms first-restart delay)"
RECOVERY_PLANS = {
    FailureKind.WORKLOAD_PROCESS: RecoveryPlan(
        "SIGKILL to the agent, which is the container's main process (PID 1 inside)",
        _RESTART,
        "State.FinishedAt",
    ),
    FailureKind.INSTANCE: RecoveryPlan(
        "SIGKILL to the container's PID 1 from the host (here the agent itself)",
        _RESTART,
        "State.FinishedAt",
    ),
}


class DockerOperations(Backend):
    """The lifecycle operations of a local docker engine (mixed into DockerBackend)."""

    if TYPE_CHECKING:  # provided by the engine's DockerBackend, later in the MRO

        @property
        def client(self) -> docker.DockerClient: ...

    @property
    def capabilities(self) -> frozenset[Capability]:  # type: ignore[override]
        if not self.on_this_host:  # layers, processes and memory are read on this host
            return frozenset({Capability.ISOLATION_FACTS})
        return frozenset(Capability) - {Capability.FULL_COPY}  # a clone is always a layer

    def memory_estimate_mib(self, memory_mib: int) -> float:
        return CONTAINER_ESTIMATE_MIB

    def engine_daemons(self) -> dict[str, int]:
        # Shims are per container (counted in each instance's footprint), not daemons.
        return pids_named(DOCKER_DAEMONS) if self.on_this_host else {}

    def derive_artefact(self, artefacts: Artefacts, spec: InstanceSpec) -> DerivedArtefact:
        return DockerImage(self.client, artefacts, spec)

    def define(
        self, artefacts: Artefacts, spec: InstanceSpec, source: DerivedArtefact | None = None
    ) -> Definition:
        if source is None:
            return DockerDefinition(self.client, artefacts.docker_tag, spec)
        if not isinstance(source, DockerImage):
            raise TypeError(f"docker cannot define an instance from {type(source).__name__}")
        return DockerDefinition(self.client, source.reference, spec)

    def recovery_plans(self) -> dict[FailureKind, RecoveryPlan]:
        return dict(RECOVERY_PLANS)

    def crash(self, instance: Instance, kind: FailureKind) -> Crash:
        if not isinstance(instance, DockerInstance):
            raise TypeError(f"docker cannot crash {type(instance).__name__}")
        if kind not in RECOVERY_PLANS:
            raise ValueError(f"docker cannot inject a {kind} failure")
        return DockerCrash(instance, kind)

    def porter(self, artefacts: Artefacts, spec: InstanceSpec) -> Porter:
        return DockerPorter(self.client, artefacts, spec)


class DockerImage(DerivedArtefact):
    """A temporary image imported from the rootfs, tagged with the instance's name."""

    def __init__(self, client: docker.DockerClient, artefacts: Artefacts, spec: InstanceSpec):
        super().__init__()
        self.client, self.artefacts, self.spec = client, artefacts, spec
        self.reference = temp_tag(spec.name, "provision")
        self.image_id: str | None = None
        self.steps = {"create": "docker import", "remove": "docker rmi"}

    def create(self) -> None:
        self.image_id = import_rootfs_as(
            self.client, self.artefacts, self.reference, self.spec.run_id
        )

    def inspect(self) -> None:
        if self.image_id is not None:
            size = self.client.images.get(self.image_id).attrs.get("Size")
            self.details["create"] = {"image_bytes": size}

    def remove(self) -> None:
        remove_image(self.client, self.image_id or self.reference)  # missing is fine
        self.image_id = None


class DockerDefinition(Definition):
    """`docker create` of a vmvc container (not started), then start and its log."""

    def __init__(self, client: docker.DockerClient, image: str, spec: InstanceSpec) -> None:
        super().__init__()
        self.client, self.image, self.spec = client, image, spec
        self.container: Container | None = None
        self.log = LineLog()
        self._reader: threading.Thread | None = None
        self.steps = {
            "create": "docker create",
            "start": "docker start to ready marker",
            "remove": "docker rm",
        }

    def stage(self) -> None:
        make_dirs(self.spec.workdir)
        make_dirs(self.spec.workdir / "data")  # the bind mount source

    def create(self) -> None:
        self.container = self.client.containers.create(
            self.image, [AGENT, "idle"], detach=True, **container_options(self.spec)
        )

    def start(self) -> None:
        if self.container is None:
            raise RuntimeError("the container was not created")
        self.container.start()
        self._reader = threading.Thread(
            target=self._pump, args=(self.container,), name=f"{self.spec.name}-logs", daemon=True
        )
        self._reader.start()

    def _pump(self, container: Container) -> None:
        try:
            for chunk in container.logs(stream=True, follow=True):
                self.log.feed(chunk)
        except docker.errors.DockerException:
            pass
        finally:
            self.log.close()

    def wait_ready(self, timeout: float) -> ReadyInfo:
        _, info = wait_ready(self.log, timeout)
        return info

    def stored_bytes(self) -> StoredBytes:
        if self.container is None:
            raise RuntimeError("the container was not created")
        layers = writable_layer_bytes(self.client, self.container)
        readable = "layer_bytes" in layers
        return StoredBytes(
            layers.get("layer_bytes", layers.get("size_rw", 0.0)),
            {
                "what": "container read-write + init layer dirs (allocated)"
                if readable
                else "SizeRw (layer dirs not readable)",
                "size_rw": layers.get("size_rw"),
            },
        )

    def remove(self) -> None:
        container, self.container = self.container, None
        with contextlib.suppress(docker.errors.DockerException):
            if container is not None:
                container.remove(force=True)
            else:  # create may have failed after the engine registered the name
                self.client.containers.get(self.spec.name).remove(force=True)
        if self._reader is not None:
            self._reader.join(timeout=5)  # the log stream ends with the container


class DockerCrash(Crash):
    """SIGKILL to the container's main process from the host; the restart policy acts."""

    def __init__(self, instance: DockerInstance, kind: FailureKind) -> None:
        super().__init__(kind, RECOVERY_PLANS[kind])
        self.instance = instance
        self.pid = instance.host_pid()  # looked up before the kill is timed
        self.killed = KilledAt()

    def crash(self) -> None:
        self.killed.kill(self.pid)

    def running(self) -> bool:
        state = container_state(self.instance.container)
        return bool(state and state.get("Running"))

    def detected_at(self) -> float | None:
        """FinishedAt of the killed run (engine wall clock) on the monotonic clock; the
        restart count and the engine's restart delay go to the details."""
        container = self.instance.container
        state = container_state(container) or {}
        finished = engine_time(state.get("FinishedAt", ""))
        restarted = engine_time(state.get("StartedAt", ""))
        self.details["recover"] = {
            "restart_count": container.attrs.get("RestartCount"),
            "restart_delay_s": None
            if finished is None or restarted is None
            else round(restarted - finished, 6),
        }
        if finished is None:
            return None
        return self.killed.on_monotonic(finished)


class DockerPorter(Porter):
    """docker save / docker load of a temporary image whose layer no other image shares."""

    holds = "docker save archive: the image's layer tar, config and manifest"

    def __init__(self, client: docker.DockerClient, artefacts: Artefacts, spec: InstanceSpec):
        super().__init__()
        self.client, self.artefacts, self.spec = client, artefacts, spec
        self.source_tag = temp_tag(spec.name, "export")
        self.loaded_tag = temp_tag(spec.name, "imported")
        self.source_id = ""
        self.loaded_id = ""
        self.image_ids: list[str] = []
        self.steps = {
            "export": "docker save (SDK stream)",
            "import": "docker load (layer rebuilt)",
        }

    def stage(self) -> None:
        unique = make_dirs(self.spec.workdir) / "unique"
        unique.mkdir()
        # A file no other image has: the exported layer is this image's alone.
        (unique / f".{self.spec.name}").write_text(self.spec.name + "\n")
        self.source_id = import_rootfs_as(
            self.client, self.artefacts, self.source_tag, self.spec.run_id, unique
        )
        self.image_ids.append(self.source_id)

    def export(self, sink: ByteSink) -> None:
        # After the first form's import the loaded image is the source again (same id).
        save_image(self.client, self.source_id, sink)

    def forget_source(self) -> None:
        remove_image(self.client, self.source_id)  # as on another host: rebuild the layer

    def import_(self, source: ByteSource) -> None:
        self.loaded_id = load_image(self.client, source)
        self.image_ids.append(self.loaded_id)

    def check(self) -> None:
        """The image id is the digest of its config, which names its layers' content
        digests: the same id back means the same content."""
        self.client.images.get(self.loaded_id).tag(*self.loaded_tag.split(":"))
        if self.loaded_id != self.source_id:
            raise RuntimeError(
                f"docker load gave image {self.loaded_id}, expected {self.source_id}"
            )

    def remove(self) -> None:
        for image in (*self.image_ids, self.source_tag, self.loaded_tag):
            remove_image(self.client, image)
        self.image_ids = []
