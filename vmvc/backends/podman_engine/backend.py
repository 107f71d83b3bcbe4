"""Podman backend: daemonless containers from the shared rootfs, with the Docker container's
limits and least privilege.

Podman runs the image's rootfs directory itself (`--rootfs DIR:O`: an overlay whose upper
layer podman throws away with the container), so the container sees byte for byte what the
Docker container, the VM's disk and native see, with no image store in between. Each
instance is two podman commands (`podman create`, then `podman start --attach --interactive`):
the agent runs in `serve` mode and reads its commands on stdin, so no `podman exec` process
per workload. The per-container monitor (conmon) stays outside the container's cgroup but
exists only for it: the footprint counts it, as Docker's counts containerd's shim.

The OCI runtime is podman's default (runc or crun) unless a subclass names another: the
gVisor backend (vmvc.backends.gvisor_engine) is this backend with `runsc` as the runtime.

The lifecycle operations (provision, clone, portability) are mixed in from
vmvc.backends.podman_engine.operations; only they put images in podman's store, all of
them temporary.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from vmvc.agent.protocol import ReadyInfo, run_served, wait_ready
from vmvc.backends.base import (
    Availability,
    Backend,
    BackendKind,
    Instance,
    InstanceSpec,
    Leftover,
    Progress,
    SyscallScope,
)
from vmvc.backends.capabilities import Capability, Crash, FailureKind, RecoveryPlan
from vmvc.backends.container_labels import LABEL_RUN, owned_leftover
from vmvc.backends.container_limits import limits_from_host_config
from vmvc.backends.memory import MIB, cgroup_memory, process_tree_memory
from vmvc.backends.podman_engine.cli import (
    ContainerState,
    Engine,
    PodmanError,
    global_options,
    installed,
    parse_inspect,
    parse_ps,
    parse_version,
)
from vmvc.backends.podman_engine.container import (
    AGENT,
    ENGINE_LABEL,
    Attached,
    claim,
    create_argv,
    remove_container,
)
from vmvc.backends.podman_engine.images import list_images, remove_image
from vmvc.backends.podman_engine.operations import PodmanOperations
from vmvc.backends.podman_engine.recovery import (
    RUNC_PLANS,
    PodmanCrash,
    Restartable,
    restart_engine,
)
from vmvc.config import Config, HostSettings
from vmvc.hosts import is_local
from vmvc.image.build import Artefacts
from vmvc.paths import make_dirs

PROBE_TIMEOUT_S = 20.0
CGROUP_ROOTS = (Path("/sys/fs/cgroup/memory"), Path("/sys/fs/cgroup"))
# Conservative host memory of one idle container for the scale and density guards.
IDLE_ESTIMATE_MIB = 32.0


class PodmanInstance(Instance):
    def __init__(self, engine: Engine, backend: str, rootfs: Path, spec: InstanceSpec) -> None:
        super().__init__()
        if spec.restart_on_crash:  # the runtime's flags must survive podman's own restart
            engine = restart_engine(engine)
        self.engine = engine
        self.backend = backend
        self.name = spec.name
        self.spec = spec
        argv = create_argv(spec, rootfs)  # before t0: not part of the measured start
        self._t0 = time.monotonic()
        self.engine.call(*argv)
        self._created = time.monotonic()
        # Only the recovery workload's instances: a restarted container is not reattached.
        self.restartable: Restartable | None = None
        self.attached: Attached | None = None
        if spec.restart_on_crash:
            self.restartable = Restartable(engine, spec, self.log, AGENT)
        else:
            self.attached = Attached(engine, spec.name, self.log)

    def wait_ready(self, timeout: float) -> ReadyInfo:
        _, info = wait_ready(self.log, timeout)
        self.phases = {
            "create_s": self._created - self._t0,
            "ready_s": max(0.0, info.at - self._created),
            "total_s": info.at - self._t0,
        }
        self.ready_info = info
        return info

    def run(self, workload: str, args: list[str], timeout: float) -> list[str]:
        task_id = self.next_task_id()
        if self.restartable is not None:
            return self.restartable.run(task_id, workload, args, timeout)
        assert self.attached is not None
        return run_served(self.attached.stdin, self.log, task_id, workload, args, timeout)

    def state(self) -> ContainerState:
        return parse_inspect(self.engine.call("inspect", "--type", "container", self.name))

    def applied_limits(self) -> dict[str, str | int | float]:
        try:
            text = self.engine.call("inspect", "--type", "container", self.name)
            host_config = json.loads(text)[0].get("HostConfig") or {}
        except (PodmanError, ValueError, LookupError):
            return {}  # unknown; a report line is not worth failing the trial for
        return limits_from_host_config(host_config, engine="podman")

    def syscall_scope(self) -> SyscallScope | None:
        """Everything conmon started: runc's container init (the agent) or, under runsc,
        gVisor's Sentry and its gofer (the host calls the sandbox makes for the workload)."""
        conmon = self.state().conmon_pid
        try:
            children = tuple(p.pid for p in psutil.Process(conmon).children()) if conmon else ()
        except psutil.Error:
            return None
        return SyscallScope(children, what="the processes conmon started") if children else None

    def footprint(self) -> dict[str, float]:
        """The container's cgroup (as Docker's: RSS + cache - inactive file) plus conmon's
        PSS; without a cgroup to read, the PSS of conmon's whole process tree."""
        state = self.state()
        measured = None
        if state.cgroup_path:
            relative = state.cgroup_path.lstrip("/")
            measured = cgroup_memory([root / relative for root in CGROUP_ROOTS])
        monitor = 0.0
        if state.conmon_pid:
            with contextlib.suppress(psutil.Error):
                monitor = psutil.Process(state.conmon_pid).memory_full_info().pss / MIB
        if measured is None:
            tree = process_tree_memory(state.conmon_pid) if state.conmon_pid else {}
            return {"process_tree_pss_mib": tree.get("total_mib", 0.0), **tree}
        figures = measured[0]
        cgroup_mib = figures.get("total_mib", 0.0)
        return {
            **{f"cgroup_{k}": v for k, v in figures.items() if k in ("rss_mib", "cache_mib")},
            "cgroup_mib": cgroup_mib,
            "conmon_pss_mib": monitor,
            "total_mib": cgroup_mib + monitor,
        }

    def remove(self) -> None:
        """`podman rm --force` (the runtime kills the container at once; a container removed
        is not restarted); then the attached `podman start`, or the log's follower, ends."""
        with contextlib.suppress(PodmanError):
            remove_container(self.engine, self.name)
        if self.attached is not None:
            self.attached.end()
        if self.restartable is not None:
            self.restartable.end()


class PodmanBackend(PodmanOperations, Backend):
    name = "podman"
    label = "podman"
    kind: BackendKind = "container"
    display_name = "container (Podman)"
    capabilities = frozenset(
        {
            Capability.ISOLATION_FACTS,
            Capability.LAUNCH_MANY,
            Capability.DERIVE_ARTEFACT,
            Capability.DEFINE,
            Capability.CLONE,  # no FULL_COPY: a container clone is always a layer
            Capability.EXPORT_IMPORT,
            Capability.RECOVER,  # podman's restart policy (vmvc.backends.podman_engine.recovery)
        }
    )

    def __init__(self, config: Config, host: HostSettings | None = None) -> None:
        self.config = config
        self.host = host
        self.engine = self.make_engine()
        self._info: dict[str, Any] | None = None

    def podman_info(self, timeout: float = PROBE_TIMEOUT_S) -> dict[str, Any]:
        """`podman info` (runtime, cgroups, storage), read once per backend: probe, prepare
        and the result's environment all ask. PodmanError or ValueError if unreadable."""
        if self._info is None:
            self._info = json.loads(self.engine.call("info", "--format", "json", timeout=timeout))
        return self._info

    def make_engine(self) -> Engine:
        """Podman's default OCI runtime (runc or crun, whichever podman picks)."""
        return Engine()

    def probe(self) -> Availability:
        if not is_local(self.host):
            return Availability(False, "podman runs on the local host only", offered=False)
        if not installed():
            return Availability(False, "podman is not installed", "apt-get install podman")
        try:
            info = self.podman_info()
        except (PodmanError, ValueError) as exc:
            return Availability(False, str(exc), "see `podman info`; `make setup` installs podman")
        runtime = (info.get("host") or {}).get("ociRuntime") or {}
        version = (info.get("version") or {}).get("Version", "?")
        return Availability(True, f"podman {version}, OCI runtime {runtime.get('name', '?')}")

    def prepare(self, artefacts: Artefacts, progress: Progress) -> dict[str, Any]:
        """Nothing to import: every container runs the rootfs directory (an overlay on it)."""
        runtime = self.runtime_facts()
        name = runtime.get(f"{self.name}_oci_runtime", "unknown")
        self.display_name = f"{type(self).display_name.rstrip(')')}, {name})"
        return {"rootfs": str(artefacts.rootfs), **runtime}

    def runtime_facts(self) -> dict[str, Any]:
        """The OCI runtime podman uses here, under this backend's name (the result's
        environment merges every backend's facts: podman's and gVisor's must not collide)."""
        try:
            info = self.podman_info()
        except (PodmanError, ValueError):
            return {"podman_oci_runtime": "unknown"}
        runtime = (info.get("host") or {}).get("ociRuntime") or {}
        lines = str(runtime.get("version") or "").splitlines()
        return {
            "podman_oci_runtime": runtime.get("name", "unknown"),
            "podman_oci_runtime_version": lines[0] if lines else "",
        }

    @contextlib.contextmanager
    def provision(self, artefacts: Artefacts, spec: InstanceSpec) -> Iterator[Instance]:
        make_dirs(spec.workdir / "data")
        claim(spec, self.name)
        instance: PodmanInstance | None = None
        try:
            instance = PodmanInstance(self.engine, self.name, artefacts.rootfs, spec)
            yield instance
        finally:
            if instance is not None:
                instance.remove()
            else:  # create failed half-way: make sure no container of that name survives
                with contextlib.suppress(PodmanError):
                    remove_container(self.engine, spec.name)
            shutil.rmtree(spec.workdir, ignore_errors=True)  # the runner made it here

    def environment(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"podman_global_options": " ".join(global_options())}
        with contextlib.suppress(PodmanError):
            facts |= parse_version(self.engine.call("version", "--format", "json"))
        with contextlib.suppress(PodmanError, ValueError):
            info = self.podman_info()
            host = info.get("host") or {}
            store = info.get("store") or {}
            facts |= {
                "podman_cgroup_manager": host.get("cgroupManager"),
                "podman_cgroup_version": host.get("cgroupVersion"),
                "podman_storage_driver": store.get("graphDriverName"),
                "podman_conmon": ((host.get("conmon") or {}).get("version") or "").split(",")[0],
            }
        return facts | self.runtime_facts()

    def leftovers(self, live_run_ids: set[str]) -> list[Leftover]:
        """This backend's containers, and its temporary images (a lifecycle workload's,
        labelled with the run id and the backend like its containers)."""
        try:
            text = self.engine.call("ps", "-a", "--filter", f"label={LABEL_RUN}", "--format=json")
            listed = parse_ps(text)
        except PodmanError:
            return []
        found = []
        for container in listed:
            item = owned_leftover(
                "container",
                container["name"],
                container["labels"],
                live_run_ids,
                remove=lambda name=container["id"]: remove_container(self.engine, name),
            )
            if item is not None and self.owns(container["labels"]):
                found.append(item)
        with contextlib.suppress(PodmanError):
            for image in list_images(self.engine, LABEL_RUN):
                item = owned_leftover(
                    "image",
                    image.name,
                    image.labels,
                    live_run_ids,
                    remove=lambda image_id=image.image_id: remove_image(self.engine, image_id),
                )
                if item is not None and self.owns(image.labels):
                    found.append(item)
        return found

    def owns(self, labels: dict[str, str]) -> bool:
        """Podman's containers and images; the gVisor backend shares podman's store and
        claims its own."""
        return labels.get(ENGINE_LABEL, self.name) == self.name

    def recovery_plans(self) -> dict[FailureKind, RecoveryPlan]:
        return dict(RUNC_PLANS)

    def crash(self, instance: Instance, kind: FailureKind) -> Crash:
        if not isinstance(instance, PodmanInstance) or instance.restartable is None:
            raise TypeError(f"{self.name} crashes only its instances provisioned to restart")
        plans = self.recovery_plans()
        if kind not in plans:
            raise ValueError(f"{self.name} cannot inject a {kind} failure")
        return PodmanCrash(instance.engine, instance.name, kind, plans[kind])

    def engine_daemons(self) -> dict[str, int]:
        return {}  # daemonless: each container's conmon is counted in its footprint

    def memory_estimate_mib(self, memory_mib: int) -> float:
        """The scale guard's estimate (not a measurement): 1.2 MiB measured idle (cgroup +
        conmon), gVisor's Sentry 11.5 MiB; docker's conservative 32 MiB covers both."""
        return IDLE_ESTIMATE_MIB
