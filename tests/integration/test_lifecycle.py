"""Lifecycle workloads on the real engines (dockerd, libvirtd with QEMU TCG, native chroot).

Each workload is called the way the runner calls it, with a LifecycleContext for a fresh
run, and its measurements are checked for presence, units and plausibility. Every test also
checks that nothing vmvc-named (container, domain, work dir, temporary image of its run) is
left behind. One test goes through `vmvc bench` to see the runner plan lifecycle trials from
the backends' capabilities (native is not planned where it has no capability) and store the
facts a workload returns.
"""

from __future__ import annotations

import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import psutil
import pytest

from vmvc import stats
from vmvc.backends.base import Backend, InstanceSpec
from vmvc.backends.docker import DockerBackend
from vmvc.backends.libvirt import LibvirtBackend
from vmvc.backends.native import NativeBackend
from vmvc.bench.base import Measurement
from vmvc.bench.lifecycle import LIFECYCLE_WORKLOADS, LifecycleContext, LifecycleResult, applies
from vmvc.bench.scale import ScaleRefused
from vmvc.config import Config, host_cores, resolve_count
from vmvc.image.build import Artefacts
from vmvc.liveness import hold_run_lock
from vmvc.paths import run_workdir
from vmvc.results import ResultDocument, Sample, new_run_id, now_iso

from .conftest import load_json, run_vmvc

pytestmark = pytest.mark.integration

# What a plausible value looks like on a slow 2-core host with TCG VMs (seconds).
MAX_SECONDS = 120.0


class Harness:
    """A run id, spec factory and facts store like the runner's, for calling workloads."""

    def __init__(self, config: Config, artefacts: Artefacts) -> None:
        self.config = config
        self.artefacts = artefacts
        self.doc = ResultDocument(run_id=new_run_id(), started_at=now_iso())
        self.facts: dict[str, dict[str, Any]] = {}
        self.workdir = run_workdir(self.doc.run_id)
        self.phases: list[str] = []
        self._count = 0

    def make_spec(self, backend_name: str, *, restart_on_crash: bool = False) -> InstanceSpec:
        self._count += 1
        name = f"vmvc-{self.doc.run_id}-{backend_name}-{self._count}"
        return InstanceSpec(
            run_id=self.doc.run_id,
            name=name,
            workdir=self.workdir / name,
            vcpus=self.config.instance.vcpus,
            memory_mib=self.config.instance.memory_mib,
            data_disk_mib=self.config.instance.data_disk_mib,
            boot_timeout=self.config.timeouts.boot_s,
            restart_on_crash=restart_on_crash,
        )

    def context(self, backend: Backend, config: Config | None = None) -> LifecycleContext:
        return LifecycleContext(
            config=config or self.config,
            backend=backend,
            artefacts=self.artefacts,
            make_spec=self.make_spec,
            phase=self.phases.append,
            known_facts=self.facts.get(backend.name),
        )

    def result(
        self, workload: str, backend: Backend, config: Config | None = None
    ) -> LifecycleResult:
        """Like the runner: only planned where the backend has the capabilities."""
        assert applies(workload, backend), f"{workload} is not planned for {backend.name}"
        result = LIFECYCLE_WORKLOADS[workload].run(self.context(backend, config))
        if result.facts is not None:
            self.facts[backend.name] = result.facts
        return result

    def run(self, workload: str, backend: Backend) -> dict[str, Measurement]:
        by_metric: dict[str, Measurement] = {}
        for m in self.result(workload, backend).measurements:
            by_metric.setdefault(m.metric, m)
        return by_metric


@pytest.fixture(scope="module")
def backends(small_config: Config, artefacts: Artefacts) -> Iterator[dict[str, Backend]]:
    chosen: dict[str, Backend] = {
        "native": NativeBackend(small_config),
        "docker": DockerBackend(small_config),
        "libvirt": LibvirtBackend(small_config),
    }
    for backend in chosen.values():
        assert backend.probe().available, f"{backend.name} is not available here"
        backend.prepare(artefacts, lambda _message: None)
    yield chosen
    for backend in chosen.values():
        backend.close()


@pytest.fixture
def harness(small_config: Config, artefacts: Artefacts, no_leftovers: None) -> Iterator[Harness]:
    made = Harness(small_config, artefacts)
    # Like the runner: a live run's resources are not "left behind" for a concurrent session.
    with hold_run_lock(made.doc.run_id):
        yield made
    # The run's work dir is the runner's to remove; each instance dir in it is the workload's.
    left = sorted(p.name for p in made.workdir.iterdir()) if made.workdir.exists() else []
    shutil.rmtree(made.workdir, ignore_errors=True)
    client = docker.from_env()
    images = client.images.list(filters={"label": f"vmvc.run-id={made.doc.run_id}"})
    client.close()
    assert left == [], f"instance dirs left behind in {made.workdir}: {left}"
    assert images == [], f"temporary images left behind: {images}"


def assert_seconds(measured: dict[str, Measurement], *metrics: str) -> None:
    for metric in metrics:
        assert metric in measured, f"no {metric} in {sorted(measured)}"
        m = measured[metric]
        assert m.unit == "s" and not m.higher_is_better
        assert 0 < m.value < MAX_SECONDS, f"{metric} = {m.value}"


def test_provision(harness: Harness, backends: dict[str, Backend]) -> None:
    for name in ("docker", "libvirt"):
        measured = harness.run("provision", backends[name])
        assert_seconds(measured, "prepare_s", "define_s", "teardown_s")
    assert not applies("provision", backends["native"])  # the host is not provisioned


def test_clone(harness: Harness, backends: dict[str, Backend]) -> None:
    ct = harness.run("clone", backends["docker"])
    vm = harness.run("clone", backends["libvirt"])
    for measured in (ct, vm):
        assert_seconds(measured, "clone_s", "clone_to_ready_s")
        assert measured["clone_bytes"].unit == "bytes"
        assert 0 < measured["clone_bytes"].value < 64 * 2**20  # copy-on-write: small
    assert_seconds(vm, "full_copy_s")
    assert "full_copy_s" not in ct
    # A full copy stores the whole root file system; the overlay only its changes.
    assert vm["full_copy_s"].metadata["full_copy_bytes"] > 50 * vm["clone_bytes"].value
    assert vm["clone_to_ready_s"].value > ct["clone_to_ready_s"].value  # a whole boot
    # C04's input is the clone step alone: creating from the image, no boot in it.
    assert vm["clone_s"].metadata["step"] == "qemu-img create (overlay) + virsh define"
    assert ct["clone_s"].metadata["step"].startswith("docker create")
    for measured in (ct, vm):
        assert measured["clone_s"].value < measured["clone_to_ready_s"].value
    assert vm["clone_s"].value < vm["clone_to_ready_s"].value / 5  # a boot is not in it
    assert not applies("clone", backends["native"])


def test_scale(harness: Harness, backends: dict[str, Backend], small_config: Config) -> None:
    """Counts past the core count on the engines (one short VM round), a count the memory
    guard refuses reported in every sample, and the curves the analysis makes of them."""
    cores = host_cores()
    available_mib = psutil.virtual_memory().available / 2**20
    rounds: dict[str, list[int | str]] = {
        # 1024 at once never fits the limit below: refused, reported, and the rest runs.
        "native": [1, "cores", "2*cores+1", 1024],
        "docker": [1, "cores", "2*cores+1", 1024],
        "libvirt": [1, "cores+1"],  # one VM, then one more than the cores: 4 boots on 2
    }
    doc = ResultDocument(run_id=harness.doc.run_id, started_at=now_iso())
    for name, counts in rounds.items():
        config = small_config.model_copy(deep=True)
        config.workload.scale.counts = counts
        if name != "libvirt":  # the limit: twice what 2*cores+1 instances are estimated at
            estimate = backends[name].memory_estimate_mib(config.instance.memory_mib)
            limit = 2 * (2 * cores + 1) * estimate
            config.workload.scale.safe_memory_fraction = min(0.9, limit / available_mib)
        measured = harness.result("scale", backends[name], config).measurements
        expected = config.workload.scale.resolve(cores)
        ran = [n for n in expected if n != 1024]
        assert max(ran) > cores, name  # past the core count
        per_n = {
            (m.metric, m.metadata["n"]): m
            for m in measured
            if m.metric in ("all_ready_s", "memory_mib")
        }
        assert set(per_n) == {(metric, n) for metric in ("all_ready_s", "memory_mib") for n in ran}
        for (metric, n), m in per_n.items():
            assert m.value > 0, (name, metric, n)
            assert m.unit == ("s" if metric == "all_ready_s" else "MiB")
        ready = [m for m in measured if m.metric == "all_ready_s"]
        assert len(per_n[("all_ready_s", max(ran))].metadata["ready_s"]) == max(ran)
        for m in ready:
            assert m.metadata["host_cpus"] == cores
            if 1024 in expected:
                assert m.metadata["refused_counts"] == [1024], name
                assert f"N=1024 on {name} refused" in m.metadata["refused"]
        fits = {m.metric: m for m in measured if "n" not in m.metadata}
        assert "time_per_instance_s" not in fits  # the analysis fits the curve, if a line fits
        assert fits["memory_per_instance_mib"].value > 0, name
        assert fits["density_instances"].value > 1, name
        assert fits["density_instances"].unit == "instances"
        if name == "libvirt":  # a VM holds most of its guest's memory, a container little
            assert fits["memory_per_instance_mib"].value > 50
        doc.samples += [
            Sample(
                backend=name,
                workload="scale",
                metric=m.metric,
                value=m.value,
                unit=m.unit,
                repetition=1,
                metadata=m.metadata,
            )
            for m in measured
        ]
    curves = {c.backend: c for c in stats.summarize(doc).curves}
    for name, counts in rounds.items():
        curve = curves[name]
        assert curve.host_cpus == cores
        assert [p.n for p in curve.points] == [n for n in config_counts(counts, cores)]
        # A slope is named exactly where the fit rule allows it; else the note says why.
        assert (curve.slope is not None) == curve.fits
        assert curve.fits or curve.note.startswith("no slope: ")
    assert "2 instance counts cannot show whether a line fits" in curves["libvirt"].note
    assert curves["docker"].refused_counts == [1024]


def config_counts(counts: list[int | str], cores: int) -> list[int]:
    """The counts that ran: resolved on this host, without the refused 1024."""
    return [n for n in sorted({resolve_count(c, cores) for c in counts}) if n != 1024]


def test_scale_refuses_before_launching(
    harness: Harness, backends: dict[str, Backend], small_config: Config
) -> None:
    config = small_config.model_copy(deep=True)
    config.instance.memory_mib = 1_048_576
    config.workload.scale.counts = [1, 2]
    with pytest.raises(ScaleRefused, match="N=1 on libvirt"):
        harness.result("scale", backends["libvirt"], config)
    assert not harness.workdir.exists()  # nothing was even prepared


def by_failure(measurements: list[Measurement]) -> dict[tuple[str, str], Measurement]:
    """(failure kind, metric) -> the measurement of one recovery run."""
    return {(m.metadata["failure"], m.metric): m for m in measurements}


def test_recovery_docker(harness: Harness, backends: dict[str, Backend]) -> None:
    """Both kinds a container has: the agent is its PID 1, the restart policy restarts it."""
    found = by_failure(harness.result("recovery", backends["docker"]).measurements)
    assert {kind for kind, _ in found} == {"workload_process", "instance"}
    for kind in ("workload_process", "instance"):
        recovery, detect = found[kind, "recovery_s"], found[kind, "detect_s"]
        assert_seconds({"recovery_s": recovery, "detect_s": detect}, "recovery_s", "detect_s")
        assert recovery.metadata["ready_markers"] == 2  # really back: a second ready marker
        assert recovery.metadata["restart_count"] == 1
        assert "restart policy" in recovery.metadata["restarted_by"]
        assert detect.value < recovery.value
    assert ("guest_kernel_panic", "recovery_s") not in found  # no kernel of its own
    assert not applies("recovery", backends["native"])


def test_recovery_vm(harness: Harness, backends: dict[str, Backend]) -> None:
    """The agent respawned by the guest's init; a kernel panic reported through pvpanic:
    libvirt's on_crash restarts the guest; QEMU killed: nothing restarts it. The three
    kinds fail one instance in that order (their restarters count no failures)."""
    found = by_failure(harness.result("recovery", backends["libvirt"]).measurements)
    assert harness.phases == [
        "recovery: workload_process, guest_kernel_panic, instance trial 1/1"
    ]  # one boot for the three kinds
    print({key: (m.value, m.metadata) for key, m in found.items()})  # numbers for the notes
    process = found["workload_process", "recovery_s"]
    assert_seconds({"recovery_s": process}, "recovery_s")
    assert process.metadata["ready_markers"] == 2
    assert "init respawns" in process.metadata["restarted_by"]
    assert 0 < found["workload_process", "detect_s"].value < process.value
    # A killed QEMU: no time, an outcome; libvirt saw it stop; watched the whole bound.
    assert ("instance", "recovery_s") not in found
    watched = found["instance", "no_restart_watch_s"]
    assert watched.metadata["outcome"] == "no automatic restart"
    assert watched.value >= harness.config.workload.recovery.no_restart_watch_s
    assert 0 < found["instance", "detect_s"].value < 5
    panic = found["guest_kernel_panic", "recovery_s"]
    assert_seconds({"recovery_s": panic}, "recovery_s")
    assert panic.metadata["ready_markers"] == 2
    # libvirt's on_crash did it: its crashed event came, and the reset came after it.
    assert panic.metadata["libvirt_crashed_event"] is True
    assert panic.metadata["reset_after_crashed_event_s"] >= 0
    assert 0 < found["guest_kernel_panic", "detect_s"].value < panic.value


def test_portability(harness: Harness, backends: dict[str, Backend]) -> None:
    """Both forms on both engines, packed alike; the VM's import boots."""
    sizes: dict[tuple[str, str], float] = {}
    for name in ("docker", "libvirt"):
        measured = harness.result("portability", backends[name]).measurements
        by_form: dict[str, dict[str, Measurement]] = {}
        for m in measured:
            by_form.setdefault(m.metadata["form"], {})[m.metric] = m
        assert list(by_form) == ["uncompressed", "compressed"], name
        for form, metrics in by_form.items():
            assert set(metrics) == {"export_bytes", "export_s", "import_s"}, (name, form)
            assert_seconds(metrics, "export_s", "import_s")
            size = metrics["export_bytes"]
            assert size.unit == "bytes" and 10 * 2**20 < size.value < 4 * 2**30, (name, size)
            sizes[(name, form)] = size.value
        plain, packed = by_form["uncompressed"], by_form["compressed"]
        # The compressed file is the uncompressed stream through zstd -3.
        assert packed["export_bytes"].metadata["stream_bytes"] == plain["export_bytes"].value
        assert packed["export_bytes"].metadata["compressor"] == "zstd"
        assert packed["export_bytes"].value < plain["export_bytes"].value
    # Like with like: the same rootfs is about the same size either way, per form (1.06x
    # and 1.20x here; with a zlib qcow2 against a plain tar it was 0.40x).
    for form in ("uncompressed", "compressed"):
        ratio = sizes[("libvirt", form)] / sizes[("docker", form)]
        assert 0.7 < ratio < 1.5, (form, ratio)
    vm_import = by_form["uncompressed"]["import_s"].metadata  # libvirt, the last one
    assert {"disk.qcow2", "vmlinuz", "initrd.img", "domain.xml"} <= set(vm_import["bundle_files"])
    assert vm_import["check"] == "imported domain booted to the agent's ready marker"
    assert not applies("portability", backends["native"])


def test_the_vm_bundle_holds_everything_to_boot_it(
    harness: Harness, backends: dict[str, Backend], tmp_path: Path
) -> None:
    spec = harness.make_spec("libvirt")
    porter = backends["libvirt"].porter(harness.artefacts, spec)
    archive = tmp_path / "bundle.tar"
    try:
        spec.workdir.mkdir(parents=True)
        porter.stage()
        with open(archive, "wb") as sink:
            porter.export(sink)
    finally:
        porter.remove()
        shutil.rmtree(spec.workdir, ignore_errors=True)
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        domain = tar.extractfile("domain.xml").read().decode()  # type: ignore[union-attr]
        disk_header = tar.extractfile("disk.qcow2").read(4)  # type: ignore[union-attr]
        kernel = tar.getmember("vmlinuz").size
    assert {"disk.qcow2", "vmlinuz", "initrd.img", "domain.xml"} <= names
    assert names <= {"disk.qcow2", "vmlinuz", "initrd.img", "domain.xml", "firmware.rom"}
    assert disk_header == b"QFI\xfb"  # qcow2
    assert kernel == harness.artefacts.kernel.stat().st_size
    # The definition points into the bundle only, and carries what boots it.
    assert "<kernel>vmlinuz</kernel>" in domain and "<initrd>initrd.img</initrd>" in domain
    assert 'file="disk.qcow2"' in domain and "vdb" not in domain  # no scratch data disk
    assert "root=" in domain or "<cmdline>" in domain
    assert str(spec.workdir) not in domain


def test_isolation(harness: Harness, backends: dict[str, Backend]) -> None:
    for name in ("native", "docker", "libvirt"):
        assert harness.run("isolation", backends[name]) == {}
    facts = harness.facts
    assert facts["docker"]["shares_host_kernel"] is True
    assert facts["libvirt"]["shares_host_kernel"] is False
    assert facts["native"]["shares_host_kernel"] is True
    assert facts["native"]["host_processes_visible"] is False  # own PID namespace and /proc
    assert facts["docker"]["host_processes_visible"] is False
    assert facts["libvirt"]["host_processes_visible"] is False
    assert facts["docker"]["capabilities_count"] == 0  # every capability dropped
    assert facts["docker"]["no_new_privs"] is True
    assert facts["libvirt"]["block_devices"] == ["vda", "vdb"]
    # The host kernel's exposure, counted on the host for the same mix: the container's
    # processes call the host kernel as native ones do; a VM reaches it only through QEMU.
    reached = {name: facts[name]["host_syscalls_reached"] for name in facts}
    assert reached["libvirt"] < reached["docker"] and reached["libvirt"] < reached["native"]
    assert abs(reached["docker"] - reached["native"]) <= 10, reached
    assert "ioctl" in facts["docker"]["host_syscalls"]  # fio's and sysbench's own calls
    assert "setns" not in facts["docker"]["host_syscalls"]  # runc's, before the agent ran
    assert "ppoll" in facts["libvirt"]["host_syscalls"]  # QEMU's main loop
    for seen in facts.values():
        for key in ("kernel_release", "host_kernel_release", "os_release", "hostname"):
            assert seen.get(key), key
    # Facts do not change between repetitions: a second call boots nothing.
    harness.phases.clear()
    assert harness.run("isolation", backends["libvirt"]) == {}
    assert harness.phases == ["isolation: facts already observed in this run"]


def test_lifecycle_trials_through_the_runner(tmp_path: Path, no_leftovers: None) -> None:
    result = run_vmvc(
        "bench",
        "--backend", "native", "--backend", "docker",
        "--workload", "provision", "--workload", "recovery", "--workload", "isolation",
        "-n", "1", "--plain", "-o", str(tmp_path),
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    doc = load_json(next(tmp_path.glob("*.json")))
    trials = {(t["backend"], t["kind"]): t["status"] for t in doc["trials"]}
    # Native is planned only where it means something (isolation); provision and recovery
    # do not apply to the host itself, so no empty native trial is recorded.
    assert trials == {
        ("docker", "provision"): "ok",
        ("docker", "recovery"): "ok",
        ("docker", "isolation"): "ok",
        ("native", "isolation"): "ok",
    }
    metrics = {(s["backend"], s["workload"], s["metric"]) for s in doc["samples"]}
    assert ("docker", "provision", "prepare_s") in metrics
    assert ("docker", "recovery", "recovery_s") in metrics
    assert not any(backend == "native" for backend, _, _ in metrics)  # not applicable
    assert doc["facts"]["docker"]["shares_host_kernel"] is True
    assert doc["errors"] == []
