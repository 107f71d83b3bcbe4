"""The lifecycle workloads as engine-neutral timing skeletons, on an in-test fake backend.

The fake implements the lifecycle operations of vmvc.backends.capabilities with a fake
clock: every engine step advances it by a known amount, so each measurement must equal the
step the workload timed (and nothing else). It records what it made and removed, so a test
can see everything removed however a workload ends. No daemon, no instance.
"""

from __future__ import annotations

import ast
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest

from vmvc.agent.protocol import ReadyInfo
from vmvc.backends.base import Availability, Backend, Instance, InstanceSpec
from vmvc.backends.capabilities import (
    ByteSink,
    ByteSource,
    Capability,
    Crash,
    Definition,
    DerivedArtefact,
    FailureKind,
    FullCopy,
    Porter,
    RecoveryPlan,
    StoredBytes,
    Unsupported,
)
from vmvc.bench import density, footprint, recovery
from vmvc.bench.facts import HostFacts
from vmvc.bench.lifecycle import LIFECYCLE_WORKLOADS, LifecycleContext, LifecycleResult, applies
from vmvc.bench.scale import ScaleRefused
from vmvc.config import Config
from vmvc.image.build import Artefacts

DATA = Path(__file__).parent.parent / "data"
ALL = frozenset(Capability)
ENGINES = ("docker", "libvirt", "native")
READY = b"VMVC-READY image=fake kernel=k\n"


class Clock:
    """time.monotonic for the workloads: moves only when the fake engine works."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.tick = 0.0  # > 0: every reading moves it on (a watch that waits on the clock)

    def __call__(self) -> float:
        self.now += self.tick
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Engine:
    """What the fake engine made and removed, how long each step takes, what fails."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.alive: set[str] = set()
        self.made: list[str] = []
        self.fail: str = ""  # the step that raises ("define.create", "porter.import", ...)
        # The failure kinds the fake engine declares; comes_back: a kind declared with no
        # automatic restart comes back all the same.
        self.plans = dict(FAKE_PLANS)
        self.comes_back = False
        self.detect_late_s = 0.0  # > 0: the engine records a death that long after it
        self.costs = {
            "artefact.create": 3.0,
            "artefact.remove": 0.25,
            "define.stage": 0.5,
            "define.create": 1.0,
            "define.ready": 2.0,
            "define.remove": 0.125,
            "full_copy": 8.0,
            "crash.detect": 0.75,
            "crash.ready": 4.0,
            "porter.stage": 16.0,
            "porter.export": 5.0,
            "porter.import": 6.0,
        }

    def step(self, name: str) -> None:
        if self.fail == name:
            raise RuntimeError(f"fake engine: {name} failed")
        self.clock.advance(self.costs.get(name, 0.0))

    def make(self, thing: str) -> None:
        self.alive.add(thing)
        self.made.append(thing)


class FakeArtefact(DerivedArtefact):
    def __init__(self, engine: Engine, spec: InstanceSpec) -> None:
        super().__init__()
        self.engine, self.name = engine, f"artefact:{spec.name}"
        self.steps = {"create": "fake derive", "remove": "fake delete"}

    def create(self) -> None:
        self.engine.make(self.name)
        self.engine.step("artefact.create")

    def inspect(self) -> None:
        self.details["create"] = {"image_bytes": 123}

    def remove(self) -> None:
        if self.name in self.engine.alive:
            self.engine.step("artefact.remove")
        self.engine.alive.discard(self.name)


class FakeDefinition(Definition):
    def __init__(self, engine: Engine, spec: InstanceSpec) -> None:
        super().__init__()
        self.engine, self.spec, self.name = engine, spec, f"defined:{spec.name}"
        self.steps = {"create": "fake define", "start": "fake start", "remove": "fake rm"}

    def stage(self) -> None:
        self.spec.workdir.mkdir(parents=True)
        self.engine.step("define.stage")

    def create(self) -> None:
        self.engine.make(self.name)
        self.engine.step("define.create")
        self.details["create"] = {"sub_step_s": 0.5}

    def start(self) -> None:
        self.engine.step("define.start")

    def wait_ready(self, timeout: float) -> ReadyInfo:
        self.engine.step("define.ready")
        return ReadyInfo("fake", "k", self.engine.clock())

    def stored_bytes(self) -> StoredBytes:
        return StoredBytes(4096.0, {"what": "fake layer"})

    def remove(self) -> None:
        if self.name in self.engine.alive:
            self.engine.step("define.remove")
        self.engine.alive.discard(self.name)


FAKE_PLANS = {
    FailureKind.WORKLOAD_PROCESS: RecoveryPlan("fake kill", "fake policy", "fake engine event"),
    FailureKind.INSTANCE: RecoveryPlan("fake instance kill", None, "fake stop event"),
}


class FakeCrash(Crash):
    def __init__(self, engine: Engine, instance: FakeInstance, kind: FailureKind) -> None:
        super().__init__(kind, engine.plans[kind])
        self.engine, self.instance = engine, instance
        self.engine.make("watch")
        self._detected: float | None = None

    def crash(self) -> None:
        self.engine.step("crash.kill")
        self.engine.step("crash.detect")
        self._detected = self.engine.clock()
        if self.plan.restarted_by is None and not self.engine.comes_back:
            self.instance.log.close()  # its output ends for good: nothing restarts it
            return
        self.engine.step("crash.ready")
        self.instance.log.feed(b"[  1.0] Kernel panic\n", at=self._detected)
        self.instance.log.feed(READY, at=self.engine.clock())

    def detected_at(self) -> float | None:
        self.details["recover"] = {"restart_count": 1}
        if self._detected is None:
            return None
        at = self._detected + self.engine.detect_late_s
        return at if self.engine.clock() >= at else None

    def running(self) -> bool:
        return self.plan.restarted_by is not None or self.engine.comes_back

    def remove(self) -> None:
        self.engine.alive.discard("watch")


# What the fake engine exports: compressible, so the compressed form must come out smaller.
PAYLOAD = bytes(range(256)) * 256


class FakePorter(Porter):
    holds = "fake archive"

    def __init__(self, engine: Engine, spec: InstanceSpec) -> None:
        super().__init__()
        self.engine, self.spec = engine, spec
        self.steps = {"export": "fake save", "import": "fake load"}
        self.details = {"export_bytes": {"engine_figure": 1}}
        self.imports: list[bytes] = []  # what each import read (must be the plain stream)

    def stage(self) -> None:
        self.engine.make("export-source")
        self.engine.step("porter.stage")

    def export(self, sink: ByteSink) -> None:
        self.engine.step("porter.export")
        sink.write(PAYLOAD[:1000])
        sink.write(PAYLOAD[1000:])

    def import_(self, source: ByteSource) -> None:
        if "imported" in self.engine.alive:
            raise RuntimeError("the previous form's import was not cleared")
        self.engine.make("imported")
        self.engine.step("porter.import")
        self.imports.append(source.read(10) + source.read())

    def clear_import(self) -> None:
        self.engine.alive.discard("imported")

    def remove(self) -> None:
        self.engine.alive -= {"export-source", "imported"}


class FakeInstance(Instance):
    backend = "fake"

    def __init__(self, spec: InstanceSpec, engine: Engine) -> None:
        super().__init__()
        self.name, self.engine = spec.name, engine

    def wait_ready(self, timeout: float) -> ReadyInfo:
        if not len(self.log):
            self.log.feed(READY, at=self.engine.clock())
        return ReadyInfo("fake", "k", self.engine.clock())

    def run(self, workload: str, args: list[str], timeout: float) -> list[str]:
        if workload == "facts":
            return (DATA / "docker-facts.txt").read_text().splitlines()
        return []

    def footprint(self) -> dict[str, float]:
        return {"total_mib": 10.0}


class FakeBackend(Backend):
    name = "fake"

    def __init__(self, engine: Engine, capabilities: frozenset[Capability] = ALL) -> None:
        self.engine = engine
        self.capabilities = capabilities  # type: ignore[misc]
        self.porters: list[FakePorter] = []

    def probe(self) -> Availability:
        return Availability(True, "fake")

    @contextmanager
    def provision(self, artefacts: Artefacts, spec: InstanceSpec) -> Iterator[Instance]:
        self.engine.make(f"instance:{spec.name}")
        try:
            yield FakeInstance(spec, self.engine)
        finally:
            self.engine.alive.discard(f"instance:{spec.name}")

    def memory_estimate_mib(self, memory_mib: int) -> float:
        return 100.0

    def derive_artefact(self, artefacts: Artefacts, spec: InstanceSpec) -> DerivedArtefact:
        return FakeArtefact(self.engine, spec)

    def define(
        self, artefacts: Artefacts, spec: InstanceSpec, source: DerivedArtefact | None = None
    ) -> Definition:
        return FakeDefinition(self.engine, spec)

    def full_copy(self, artefacts: Artefacts, directory: Path) -> FullCopy:
        self.engine.step("full_copy")
        return FullCopy(10**9, "fake full copy", {"base_disk_bytes": 10**9})

    def recovery_plans(self) -> dict[FailureKind, RecoveryPlan]:
        return dict(self.engine.plans)

    def crash(self, instance: Instance, kind: FailureKind) -> Crash:
        assert isinstance(instance, FakeInstance)
        return FakeCrash(self.engine, instance, kind)

    def porter(self, artefacts: Artefacts, spec: InstanceSpec) -> Porter:
        self.porters.append(FakePorter(self.engine, spec))
        return self.porters[-1]


class Harness:
    def __init__(self, tmp_path: Path, clock: Clock) -> None:
        self.tmp_path = tmp_path
        self.engine = Engine(clock)
        self.config = Config()
        self.config.workload.recovery.trials = 2
        self.phases: list[str] = []
        self.specs: list[InstanceSpec] = []

    def make_spec(self, backend: str, *, restart_on_crash: bool = False) -> InstanceSpec:
        name = f"vmvc-test-{backend}-{len(self.specs) + 1}"
        spec = InstanceSpec("test", name, self.tmp_path / name, restart_on_crash=restart_on_crash)
        self.specs.append(spec)
        return spec

    def run(
        self,
        workload: str,
        backend: Backend | None = None,
        known_facts: dict[str, Any] | None = None,
        host: str = "local",
    ) -> LifecycleResult:
        context = LifecycleContext(
            config=self.config,
            backend=backend or FakeBackend(self.engine),
            artefacts=Artefacts(image_id="fake", root=self.tmp_path / "image"),
            make_spec=self.make_spec,
            phase=self.phases.append,
            host=host,
            known_facts=known_facts,
        )
        return LIFECYCLE_WORKLOADS[workload].run(context)

    def assert_clean(self) -> None:
        assert self.engine.alive == set(), f"left behind: {self.engine.alive}"
        assert [s.name for s in self.specs if s.workdir.exists()] == []


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Harness:
    clock = Clock()
    monkeypatch.setattr(time, "monotonic", clock)
    monkeypatch.setattr(footprint, "SETTLE_SECONDS", 0.0)
    return Harness(tmp_path, clock)


def metrics(result: LifecycleResult) -> dict[str, Any]:
    return {m.metric: m for m in result.measurements}


# -- planning from capabilities --------------------------------------------------------------


def test_a_workload_is_planned_only_where_every_capability_it_requires_is_declared() -> None:
    engine = Engine(Clock())
    nothing = FakeBackend(engine, frozenset())
    everything = FakeBackend(engine, ALL)
    assert applies("instance", nothing)  # an instance's life runs on every backend
    for name in LIFECYCLE_WORKLOADS:
        assert not applies(name, nothing), name
        assert applies(name, everything), name
    derive_only = FakeBackend(engine, frozenset({Capability.DERIVE_ARTEFACT}))
    assert not applies("provision", derive_only)  # needs DEFINE as well
    assert applies("provision", FakeBackend(engine, frozenset({"derive_artefact", "define"})))  # type: ignore[arg-type]


def test_built_in_backends_declare_what_their_engines_do() -> None:
    from vmvc.backends.docker import DockerBackend
    from vmvc.backends.libvirt import LibvirtBackend, LibvirtFullBackend
    from vmvc.backends.lxc import LxcBackend
    from vmvc.backends.native import NativeBackend
    from vmvc.config import HostSettings

    config = Config()
    native, docker, libvirt = NativeBackend(config), DockerBackend(config), LibvirtBackend(config)
    assert native.capabilities == {Capability.LAUNCH_MANY, Capability.ISOLATION_FACTS}
    assert docker.capabilities == ALL - {Capability.FULL_COPY}
    assert libvirt.capabilities == ALL
    lxc = LxcBackend(config)
    # A system container: clones are overlays, a full copy is `cp -a`; no portable form.
    assert lxc.capabilities == ALL - {Capability.EXPORT_IMPORT}
    planned = {
        b.name: {w for w in LIFECYCLE_WORKLOADS if applies(w, b)}
        for b in (native, lxc, LibvirtFullBackend(config))
    }
    assert planned == {
        "native": {"scale", "density", "isolation"},
        "lxc": set(LIFECYCLE_WORKLOADS) - {"portability"},
        "libvirt-full": {"isolation"},
    }
    # Remote instances live elsewhere: this machine can only ask them for their facts.
    # Another host is the same class reached through a URI of its own.
    other = HostSettings(
        name="far",
        docker_host="ssh://vmvc@far.example",
        libvirt_uri="qemu+ssh://vmvc@far.example/system",
    )
    for remote in (DockerBackend(config, other), LibvirtBackend(config, other)):
        assert remote.capabilities == {Capability.ISOLATION_FACTS}
        assert remote.on_this_host is False
    # The scale safety check's estimate: a VM may touch all its memory, a container little.
    assert libvirt.memory_estimate_mib(512) == 512
    assert docker.memory_estimate_mib(512) < native.memory_estimate_mib(512) * 4 < 512
    assert lxc.memory_estimate_mib(512) < 512


def test_an_undeclared_operation_says_which_capability_is_missing(tmp_path: Path) -> None:
    class Bare(Backend):
        name = "bare"

        def probe(self) -> Availability:
            return Availability(True, "")

        def provision(self, artefacts: Artefacts, spec: InstanceSpec) -> Any:
            raise NotImplementedError

    spec = InstanceSpec("test", "vmvc-test-bare-1", tmp_path)
    with pytest.raises(Unsupported, match="bare has no derive_artefact capability"):
        Bare().derive_artefact(Artefacts(image_id="x", root=tmp_path), spec)


def test_workloads_are_engine_neutral() -> None:
    """No workload module imports a concrete backend or names an engine (issue 12)."""
    bench = Path(__file__).parents[2] / "vmvc" / "bench"
    allowed = {"vmvc.backends.base", "vmvc.backends.capabilities"}
    for path in sorted(bench.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vmvc.backends"):
                assert node.module in allowed, f"{path.name} imports {node.module}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] not in ("docker", "libvirt"), path.name
            names_engine = isinstance(node, ast.Constant) and node.value in ENGINES
            assert not names_engine, f"{path.name} names an engine: {ast.unparse(node)}"


# -- the skeletons time the steps themselves -------------------------------------------------


def test_provision_times_derive_define_and_teardown(harness: Harness) -> None:
    result = harness.run("provision")
    got = metrics(result)
    assert got["prepare_s"].value == 3.0  # artefact.create
    assert got["define_s"].value == 1.0  # define.create only: staging is not defining
    assert got["teardown_s"].value == 0.375  # define.remove + artefact.remove
    assert got["prepare_s"].metadata == {"step": "fake derive", "image_bytes": 123}
    assert got["define_s"].metadata == {
        "step": "fake define",
        "harness_files_s": 0.5,
        "sub_step_s": 0.5,
    }
    assert got["teardown_s"].metadata["step"] == "fake rm + fake delete + work dir"
    assert all(m.unit == "s" and not m.higher_is_better for m in result.measurements)
    assert result.facts is None
    harness.assert_clean()


@pytest.mark.parametrize("failing", ["artefact.create", "define.stage", "define.create"])
def test_provision_removes_everything_when_a_step_fails(harness: Harness, failing: str) -> None:
    harness.engine.fail = failing
    with pytest.raises(RuntimeError, match=failing):
        harness.run("provision")
    harness.assert_clean()


def test_clone_times_define_and_start_to_ready_while_the_source_runs(harness: Harness) -> None:
    got = metrics(harness.run("clone"))
    assert got["clone_s"].value == 1.0
    assert got["clone_to_ready_s"].value == 2.0  # start to the ready marker's arrival
    assert got["clone_bytes"].value == 4096.0 and got["clone_bytes"].unit == "bytes"
    assert got["clone_bytes"].metadata == {"what": "fake layer"}
    assert got["full_copy_s"].value == 8.0
    assert got["full_copy_s"].metadata["full_copy_bytes"] == 10**9
    # The clone was defined while the first instance ran.
    assert harness.engine.made[:2] == ["instance:vmvc-test-fake-1", "defined:vmvc-test-fake-2"]
    harness.assert_clean()


def test_clone_without_full_copy_has_no_contrast(harness: Harness) -> None:
    backend = FakeBackend(harness.engine, ALL - {Capability.FULL_COPY})
    assert "full_copy_s" not in metrics(harness.run("clone", backend))
    harness.assert_clean()


def test_clone_removes_the_clone_when_it_never_gets_ready(harness: Harness) -> None:
    harness.engine.fail = "define.ready"
    with pytest.raises(RuntimeError):
        harness.run("clone")
    harness.assert_clean()


def test_recovery_times_kill_to_ready_and_to_detection_per_kind_and_trial(
    harness: Harness,
) -> None:
    harness.engine.plans = {FailureKind.WORKLOAD_PROCESS: FAKE_PLANS[FailureKind.WORKLOAD_PROCESS]}
    result = harness.run("recovery")
    recovery = [m for m in result.measurements if m.metric == "recovery_s"]
    detect = [m for m in result.measurements if m.metric == "detect_s"]
    assert [m.value for m in recovery] == [4.75, 4.75]  # detect + ready after the kill
    assert [m.value for m in detect] == [0.75, 0.75]
    assert recovery[0].metadata == {
        "trial": 1,
        "failure": "workload_process",
        "how": "fake kill; fake policy",
        "restarted_by": "fake policy",
        "ready_markers": 2,
        "restart_count": 1,
    }
    assert detect[1].metadata == {
        "trial": 2,
        "failure": "workload_process",
        "basis": "fake engine event",
    }
    # A fresh instance per trial, each provisioned to restart on a crash.
    assert [s.restart_on_crash for s in harness.specs] == [True, True]
    harness.assert_clean()


def test_portability_times_export_and_import_of_each_form_alike(harness: Harness) -> None:
    backend = FakeBackend(harness.engine)
    got = harness.run("portability", backend).measurements
    by_form = {
        form: {m.metric: m for m in got if m.metadata["form"] == form}
        for form in ("uncompressed", "compressed")
    }
    assert [m.metadata["form"] for m in got] == ["uncompressed"] * 3 + ["compressed"] * 3
    for form, measured in by_form.items():
        assert measured["export_s"].value == 5.0, form  # the untimed set-up (16 s) is not in it
        assert measured["import_s"].value == 6.0, form
        assert measured["export_s"].metadata["step"] == "fake save"
        size = measured["export_bytes"]
        assert size.unit == "bytes" and size.metadata["stream_bytes"] == len(PAYLOAD)
        assert size.metadata["holds"] == "fake archive" and size.metadata["engine_figure"] == 1
    plain, packed = by_form["uncompressed"], by_form["compressed"]
    assert plain["export_bytes"].value == len(PAYLOAD)
    assert packed["export_bytes"].value < len(PAYLOAD) / 10  # really compressed
    for metric in ("export_bytes", "export_s", "import_s"):
        assert plain[metric].metadata["compressor"] == "none"
        assert packed[metric].metadata["compressor"] == "zstd"
        assert packed[metric].metadata["compression_level"] == 3
    # Each import read back exactly the engine's plain stream, whatever the form on disk.
    assert backend.porters[0].imports == [PAYLOAD, PAYLOAD]


def test_portability_measures_only_the_chosen_forms(harness: Harness) -> None:
    harness.config.workload.portability.forms = ["uncompressed"]  # the quick profile's
    got = harness.run("portability").measurements
    assert [m.metadata["form"] for m in got] == ["uncompressed"] * 3
    harness.config.workload.portability.forms = ["compressed"]
    got = harness.run("portability").measurements
    assert {m.metadata["form"] for m in got} == {"compressed"}
    harness.assert_clean()


def test_recovery_plans_one_fresh_instance_per_declared_kind_in_order(harness: Harness) -> None:
    harness.engine.plans = {
        FailureKind.GUEST_KERNEL_PANIC: RecoveryPlan("panic", "fake on_crash"),
        FailureKind.WORKLOAD_PROCESS: RecoveryPlan("kill", "fake respawn"),
    }
    harness.config.workload.recovery.trials = 1
    result = harness.run("recovery")
    kinds = [m.metadata["failure"] for m in result.measurements if m.metric == "recovery_s"]
    assert kinds == ["workload_process", "guest_kernel_panic"]  # FailureKind order
    assert len(harness.specs) == 2  # one instance each
    # No detect basis declared: still a time when the engine says when it saw the death.
    assert harness.phases == [
        "recovery: workload_process trial 1/1",
        "recovery: guest_kernel_panic trial 1/1",
    ]
    harness.assert_clean()


def test_recovery_kinds_that_may_share_fail_one_instance_each_timed_from_its_own_kill(
    harness: Harness,
) -> None:
    harness.engine.plans = {
        FailureKind.WORKLOAD_PROCESS: RecoveryPlan("kill", "respawn", shares_instance=True),
        FailureKind.INSTANCE: RecoveryPlan("qemu kill", None, "stop", shares_instance=True),
        FailureKind.GUEST_KERNEL_PANIC: RecoveryPlan("panic", "on_crash", shares_instance=True),
    }
    harness.config.workload.recovery.trials = 1
    harness.config.workload.recovery.no_restart_watch_s = 1.0
    harness.engine.clock.tick = 0.05
    result = harness.run("recovery")
    assert len(harness.specs) == 1  # one boot for the three kinds
    timed = [m for m in result.measurements if m.metric == "recovery_s"]
    # the kind nothing restarts ends the instance: it comes last
    assert [m.metadata["failure"] for m in timed] == ["workload_process", "guest_kernel_panic"]
    # each from its own kill (4.75 s of fake engine steps and a few clock ticks), not the first
    assert all(4.75 <= m.value < 5.0 for m in timed)
    assert [m.metadata["ready_markers"] for m in timed] == [2, 2]  # one recovery each
    watched = [m for m in result.measurements if m.metric == "no_restart_watch_s"]
    assert [m.metadata["failure"] for m in watched] == ["instance"]
    assert harness.phases == [
        "recovery: workload_process, guest_kernel_panic, instance trial 1/1",
    ]
    harness.assert_clean()


def test_instance_groups_share_only_what_may_share_and_end_with_one_unrestarted_kind() -> None:
    process = (FailureKind.WORKLOAD_PROCESS, RecoveryPlan("k", "respawn", shares_instance=True))
    killed = (FailureKind.INSTANCE, RecoveryPlan("k", None, shares_instance=True))
    panic = (FailureKind.GUEST_KERNEL_PANIC, RecoveryPlan("p", "on_crash", shares_instance=True))
    assert recovery.instance_groups([process, killed, panic]) == [[process, panic, killed]]
    # Docker's kinds: each its own instance (a restart back-off counts earlier crashes)
    alone = (FailureKind.WORKLOAD_PROCESS, RecoveryPlan("k", "docker"))
    docker_killed = (FailureKind.INSTANCE, RecoveryPlan("k", "docker"))
    assert recovery.instance_groups([alone, docker_killed]) == [[alone], [docker_killed]]
    # two kinds nothing restarts cannot share: the first ends the instance
    other = (FailureKind.GUEST_KERNEL_PANIC, RecoveryPlan("p", None, shares_instance=True))
    assert recovery.instance_groups([process, killed, other]) == [[process, killed], [other]]
    assert recovery.instance_groups([]) == []


def test_recovery_without_automatic_restart_is_an_outcome_not_a_time(harness: Harness) -> None:
    harness.engine.plans = {FailureKind.INSTANCE: FAKE_PLANS[FailureKind.INSTANCE]}
    harness.config.workload.recovery.trials = 1
    harness.config.workload.recovery.no_restart_watch_s = 1.5
    harness.engine.clock.tick = 0.05  # the watch waits on the (fake) clock
    result = harness.run("recovery")
    got = {m.metric: m for m in result.measurements}
    assert set(got) == {"no_restart_watch_s", "detect_s"}  # no recovery_s
    watched = got["no_restart_watch_s"]
    # the configured bound, plus the fake kill's own 0.75 s; not the default 5 s
    assert 1.5 <= watched.value < 1.5 + 1.0
    assert watched.metadata == {
        "trial": 1,
        "failure": "instance",
        "how": "fake instance kill; no automatic restart",
        "outcome": "no automatic restart",
    }
    assert got["detect_s"].metadata["basis"] == "fake stop event"
    harness.assert_clean()


def test_recovery_waits_past_the_watch_for_the_engine_to_record_the_death(
    harness: Harness,
) -> None:
    """The watch is about restarts: an engine that records the death only after it (lxc's
    monitor, 2+ s once) still gives detect_s."""
    harness.engine.plans = {FailureKind.INSTANCE: FAKE_PLANS[FailureKind.INSTANCE]}
    harness.config.workload.recovery.trials = 1
    harness.config.workload.recovery.no_restart_watch_s = 1.0
    harness.engine.detect_late_s = 1.5  # after the 1 s watch
    harness.engine.clock.tick = 0.05
    got = {m.metric: m for m in harness.run("recovery").measurements}
    assert 1.0 <= got["no_restart_watch_s"].value < 2.0  # the watch itself, not the wait
    assert got["detect_s"].value == pytest.approx(0.75 + 1.5, abs=0.1)  # fake kill step + late
    harness.assert_clean()


def test_recovery_watches_a_kind_without_restart_once_per_repetition(harness: Harness) -> None:
    harness.engine.clock.tick = 0.05
    harness.config.workload.recovery.no_restart_watch_s = 1.0
    harness.config.workload.recovery.trials = 3
    result = harness.run("recovery")  # both fake kinds: one restarted, one not
    got = [(m.metadata["failure"], m.metric) for m in result.measurements if m.metric != "detect_s"]
    assert got.count(("workload_process", "recovery_s")) == 3
    assert got.count(("instance", "no_restart_watch_s")) == 1
    harness.assert_clean()


def test_recovery_records_a_time_when_an_undeclared_restart_happens(harness: Harness) -> None:
    """What happens is measured, not what the backend declares."""
    harness.engine.plans = {FailureKind.INSTANCE: FAKE_PLANS[FailureKind.INSTANCE]}
    harness.engine.comes_back = True
    harness.config.workload.recovery.trials = 1
    got = {m.metric: m for m in harness.run("recovery").measurements}
    assert "no_restart_watch_s" not in got
    assert got["recovery_s"].value == 4.75
    assert got["recovery_s"].metadata["restarted_by"].startswith("unknown")
    harness.assert_clean()


def test_portability_removes_the_images_when_the_import_fails(harness: Harness) -> None:
    harness.engine.fail = "porter.import"
    with pytest.raises(RuntimeError):
        harness.run("portability")
    harness.assert_clean()


def test_scale_refuses_from_the_backends_estimate_before_launching(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = SimpleNamespace(total=8192 * 2**20, available=4096 * 2**20)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: memory)
    # the fake's estimate is 100 MiB an instance; half of 4096 MiB holds 20 of them
    harness.config.workload.scale.counts = [21, 30]
    with pytest.raises(ScaleRefused, match=r"N=21 on fake .*none fits"):
        harness.run("scale")
    assert harness.engine.made == []  # refused before anything was launched


def test_scale_reports_a_refused_count_and_runs_the_others(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = SimpleNamespace(total=8192 * 2**20, available=4096 * 2**20)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: memory)
    harness.config.workload.scale.counts = [1, 2, 21]  # 21 x 100 MiB > half of 4096 MiB
    measured = harness.run("scale").measurements
    ready = [m for m in measured if m.metric == "all_ready_s"]
    assert [m.metadata["n"] for m in ready] == [1, 2]
    for m in ready:  # every sample names what was refused, so the report can show it
        assert m.metadata["refused_counts"] == [21]
        assert "N=21 on fake refused" in m.metadata["refused"]
    assert len(harness.engine.made) == 3  # N=1 and N=2 ran; nothing of N=21
    harness.assert_clean()


def test_scale_resolves_counts_from_the_host_cores(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("vmvc.bench.scale.host_cores", lambda: 3)
    harness.config.workload.scale.counts = [1, "cores+1"]
    ready = [m for m in harness.run("scale").measurements if m.metric == "all_ready_s"]
    assert [m.metadata["n"] for m in ready] == [1, 4]
    assert all(m.metadata["host_cpus"] == 3 for m in ready)
    harness.assert_clean()


def test_scale_measures_each_round_and_tears_it_down(harness: Harness) -> None:
    harness.config.workload.scale.counts = [1, 2]
    got = [(m.metric, m.metadata.get("n")) for m in harness.run("scale").measurements]
    assert ("all_ready_s", 2) in got and ("memory_mib", 2) in got
    memory = [m for m in harness.run("scale").measurements if m.metric == "memory_mib"]
    assert [m.value for m in memory] == [10.0, 20.0]  # sum of the instances' footprints
    harness.assert_clean()


# -- facts are returned, not written -----------------------------------------------------------


def test_isolation_returns_facts_and_observes_them_once(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "vmvc.bench.isolation.host_facts", lambda: HostFacts("6.18.44-fc-v669", None, None, 10)
    )
    first = harness.run("isolation")
    assert first.measurements == []
    assert first.facts is not None and first.facts["kernel_release"] == "6.18.44-fc-v669"
    assert "host" not in first.facts  # observed on this host
    harness.phases.clear()
    again = harness.run("isolation", known_facts=first.facts)
    assert again.facts is None and harness.engine.made == ["instance:vmvc-test-fake-1"]
    assert harness.phases == ["isolation: facts already observed in this run"]
    harness.assert_clean()


def test_isolation_of_instances_elsewhere_leaves_this_hosts_facts_out(harness: Harness) -> None:
    backend = FakeBackend(harness.engine)
    backend.on_this_host = False
    facts = harness.run("isolation", backend, host="far").facts
    assert facts is not None and facts["host"] == "far"
    assert "host_kernel_release" not in facts and "shares_host_kernel" not in facts
    # Facts from this host do not stand for the remote one: observed again there.
    again = harness.run("isolation", backend, known_facts={"kernel_release": "x"}, host="far")
    assert again.facts is not None


class _Removal:
    """A provision() stand-in whose removal waits for `barrier` (None: returns at once)."""

    def __init__(self, barrier: threading.Barrier | None, fails: bool = False) -> None:
        self.barrier, self.fails, self.removed = barrier, fails, False

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.barrier is not None:
            self.barrier.wait()  # broken (raises) unless the other removal runs meanwhile
        self.removed = True
        if self.fails:
            raise RuntimeError("removal failed")


def test_density_removes_its_instances_concurrently(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(density, "host_cores", lambda: 2)
    barrier = threading.Barrier(2, timeout=5)
    held = density.Held()
    removals = [_Removal(barrier), _Removal(barrier)]
    for removal in removals:
        held.enter(removal)  # type: ignore[arg-type]
    held.remove_all()  # one at a time, the first would wait for the second in vain
    assert all(r.removed for r in removals)


def test_density_removes_every_instance_when_one_removal_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(density, "host_cores", lambda: 1)
    held = density.Held()
    removals = [_Removal(None, fails=True), _Removal(None), _Removal(None)]
    for removal in removals:
        held.enter(removal)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="removal failed"):
        held.remove_all()
    assert all(r.removed for r in removals)
    held.remove_all()  # nothing left to remove: a second call removes nothing twice
