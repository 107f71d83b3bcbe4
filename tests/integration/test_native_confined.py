"""Native confined like the container (equal footing): same CPU count and memory limit from
inside, its cgroup really holding its processes, and nothing left in the cgroup tree, also
after a kill -9 of vmvc (then `vmvc clean` removes it)."""

from __future__ import annotations

import signal
from pathlib import Path

import psutil

from vmvc.agent.protocol import AgentError
from vmvc.backends.base import Instance, InstanceSpec
from vmvc.backends.cgroup_files import PARENT, detect
from vmvc.backends.docker import DockerBackend
from vmvc.backends.native import NativeBackend
from vmvc.config import Config
from vmvc.image.build import Artefacts
from vmvc.paths import run_workdir

from .conftest import leftovers_of, run_vmvc, write_config
from .test_robustness import RunningBench

MEMORY_MIB = 256
COMPARED = ("cpus", "memory_mib", "swap_mib")


def _spec(run_id: str, backend: str) -> InstanceSpec:
    name = f"vmvc-{run_id}-{backend}-1"
    return InstanceSpec(
        run_id=run_id,
        name=name,
        workdir=run_workdir(run_id) / name,
        vcpus=1,
        memory_mib=MEMORY_MIB,
    )


def _inside(instance: Instance) -> dict[str, object]:
    """What the instance shows from inside: CPUs, and whether a working set past the
    memory limit is killed while one well within it runs."""
    facts = dict(line.split("=", 1) for line in instance.run("facts", [], 60) if "=" in line)
    outcome: dict[str, object] = {"cpus_online": facts["cpus_online"]}
    try:
        instance.run("memory", [str(MEMORY_MIB + 150), "1", "1", "1", "1"], 120)
        outcome["past_limit"] = "ran"
    except AgentError as exc:
        outcome["past_limit"] = "killed" if "137" in str(exc) else str(exc)
    lines = instance.run("memory", ["32", "1", "1", "8", "1"], 120)
    outcome["within_limit"] = "ran" if any("triad_mib_s=" in line for line in lines) else lines
    return outcome


def _cgroup_files(directory: Path, names: tuple[str, ...]) -> dict[str, str]:
    return {name: (directory / name).read_text().strip() for name in names}


V1_FILES = {
    "cpu": ("cpu.cfs_quota_us", "cpu.cfs_period_us"),
    "memory": ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes"),
}


def test_native_gets_the_containers_limits(
    small_config: Config, artefacts: Artefacts, no_leftovers: None
) -> None:
    layout = detect()
    assert layout is not None
    run_id = "20260101T000000Z-footng"
    seen: dict[str, dict[str, object]] = {}
    files: dict[str, dict[str, str]] = {}
    try:
        for cls in (NativeBackend, DockerBackend):
            backend = cls(small_config)
            backend.prepare(artefacts, lambda _m: None)
            spec = _spec(run_id, backend.name)
            try:
                with backend.provision(artefacts, spec) as instance:
                    instance.wait_ready(60)
                    limits = instance.applied_limits()
                    seen[backend.name] = {k: limits[k] for k in COMPARED} | _inside(instance)
                    if backend.name == "native":
                        group = layout.cpu / PARENT / spec.name
                        # every process of the tree was born inside the cgroup
                        root = psutil.Process(instance.process.pid)  # type: ignore[attr-defined]
                        tree = [root, *root.children(recursive=True)]
                        for proc in tree:
                            text = Path(f"/proc/{proc.pid}/cgroup").read_text()
                            assert f"/{PARENT}/{spec.name}" in text, (proc, text)
                        if layout.version == 1:
                            files["native"] = {
                                **_cgroup_files(group, V1_FILES["cpu"]),
                                **_cgroup_files(
                                    layout.memory / PARENT / spec.name, V1_FILES["memory"]
                                ),
                            }
                    elif layout.version == 1:
                        cid = instance.container.id  # type: ignore[attr-defined]
                        files["docker"] = {
                            **_cgroup_files(layout.cpu / "docker" / cid, V1_FILES["cpu"]),
                            **_cgroup_files(layout.memory / "docker" / cid, V1_FILES["memory"]),
                        }
            finally:
                backend.close()
            if backend.name == "native":
                assert not (layout.cpu / PARENT / spec.name).exists()
                assert not (layout.memory / PARENT / spec.name).exists()
    finally:
        if run_workdir(run_id).exists():
            run_workdir(run_id).rmdir()
    assert seen["native"] == seen["docker"], seen
    assert seen["native"]["past_limit"] == "killed" and seen["native"]["within_limit"] == "ran"
    assert seen["native"]["cpus"] == 1.0 and seen["native"]["memory_mib"] == MEMORY_MIB
    if layout.version == 1:
        # the kernel holds the same numbers for both (docker: cgroupfs driver, docker/<id>)
        assert files["native"] == files["docker"], files


SLOW_NATIVE = """
profile = "quick"
accel = "tcg"
[run]
repetitions = 1
max_repetitions = 1
warmups = 0
[workload.cpu]
seconds = 60
"""


def test_kill9_leaves_a_cgroup_that_clean_removes(tmp_path: Path) -> None:
    layout = detect()
    assert layout is not None
    config = write_config(tmp_path / "c.toml", SLOW_NATIVE)
    out = tmp_path / "out"
    bench = RunningBench(["-b", "native", "-w", "cpu", "-c", str(config), "-o", str(out)])
    bench.wait_for(r"native: cpu")
    bench.process.send_signal(signal.SIGKILL)
    bench.finish()
    run_id = bench.result_path(out).stem
    left = leftovers_of(run_id)
    assert any(item.startswith("cgroup ") for item in left), left

    dry = run_vmvc("clean", "--dry-run")
    assert dry.returncode == 0 and "would remove cgroup" in dry.stdout, dry.stdout
    cleaned = run_vmvc("clean")
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert leftovers_of(run_id) == []
    assert not [
        p for p in layout.parents() if p.exists() and any(run_id in c.name for c in p.iterdir())
    ]
