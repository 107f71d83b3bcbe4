"""The lxc backend on real lxc: a system container boots systemd from the image's system tree,
the agent (a systemd service) answers on the host's socket, respawns, and nothing is left.

The system tree is the image's `system_rootfs` (built with the image: the workload tree
plus systemd and vmvc.image.system.install_system); `make setup` installs lxc. Neither is
optional here: a missing one fails these tests, it does not skip them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from vmvc.agent.protocol import command_line, marker, wait_ready
from vmvc.backends.base import InstanceSpec
from vmvc.backends.lxc import LxcBackend
from vmvc.backends.lxc_engine.backend import LxcInstance, system_rootfs
from vmvc.backends.lxc_engine.cli import installed, parse_ls
from vmvc.bench import AGENT_WORKLOADS
from vmvc.config import Config
from vmvc.image.build import Artefacts
from vmvc.image.system import AGENT_UNIT
from vmvc.paths import run_workdir


@pytest.fixture
def tree(artefacts: Artefacts) -> Path:
    assert installed(), "lxc is not installed (make setup installs it)"
    assert artefacts.system_rootfs is not None, "the image was built without its system tree"
    return system_rootfs(artefacts)


@pytest.fixture
def backend(small_config: Config, artefacts: Artefacts, tree: Path) -> Iterator[LxcBackend]:
    backend = LxcBackend(small_config)
    assert backend.probe().available, backend.probe().reason
    backend.prepare(artefacts, lambda _m: None)
    yield backend
    backend.close()


def make_spec(run_id: str) -> InstanceSpec:
    name = f"vmvc-{run_id}-lxc-1"
    return InstanceSpec(run_id=run_id, name=name, workdir=run_workdir(run_id) / name)


def lxc_traces(backend: LxcBackend, name: str) -> list[str]:
    """Whatever of a container exists: listed by lxc, its directory, its cgroups."""
    listed = parse_ls(backend.lxc.call("lxc-ls", "--fancy", "-F", "NAME,STATE,PID"))
    found = [f"container {c.name}" for c in listed if c.name == name]
    if (backend.lxc.lxcpath / name).exists():
        found.append(f"dir {backend.lxc.lxcpath / name}")
    found += [f"cgroup {p}" for p in Path("/sys/fs/cgroup").glob(f"*/lxc.*.{name}")]
    found += [f"cgroup {p}" for p in Path("/sys/fs/cgroup").glob(f"lxc.*.{name}")]
    return found


def tree_state(tree: Path) -> list[tuple[str, int]]:
    """Where a container would have written into the tree itself: its top directory (/vmvc
    is created at start), /etc (hostname) and the agent's unit directory (the drop-in)."""
    places = [tree, tree / "etc", tree / "etc" / "systemd" / "system"]
    return sorted((str(p), p.lstat().st_mtime_ns) for d in places for p in [d, *d.iterdir()])


def facts_of(instance: LxcInstance) -> dict[str, str]:
    lines = instance.run("facts", [], 60)
    return dict(line.split("=", 1) for line in lines if "=" in line)


def test_a_system_container_boots_systemd_and_serves_the_agent(
    backend: LxcBackend,
    small_config: Config,
    artefacts: Artefacts,
    tree: Path,
    no_leftovers: None,
) -> None:
    run_id = "20260101T000000Z-lxc001"
    spec = make_spec(run_id)
    before = tree_state(tree)
    try:
        with backend.provision(artefacts, spec) as instance:
            assert isinstance(instance, LxcInstance)
            info = instance.wait_ready(60)
            assert info.image_id == artefacts.image_id
            assert set(instance.phases) == {"create_s", "start_s", "userspace_s", "total_s"}
            cpu = AGENT_WORKLOADS["cpu"]
            [events] = cpu.parse(instance.run("cpu", cpu.command(small_config), 120))
            assert events.value > 0
            facts = facts_of(instance)
            assert facts["pid1_comm"] == "systemd"  # a real init, not the agent
            assert facts["hostname"] == "vmvc-container"
            assert facts["kernel_release"] == Path("/proc/sys/kernel/osrelease").read_text().strip()
            interfaces = backend.lxc.call(
                "lxc-attach", "--", "ls", "/sys/class/net", name=spec.name
            )
            assert interfaces.split() == ["lo"]  # no network
            limits = instance.applied_limits()
            assert limits["cpus"] == float(spec.vcpus)
            assert limits["memory_mib"] == float(spec.memory_mib)
            footprint = instance.footprint()
            assert footprint["cgroup_mib"] > 0 and footprint["monitor_pss_mib"] > 0
            assert instance.console_tail()  # the agent's lines
            [listed] = backend.leftovers({run_id})
            assert listed.name == spec.name and listed.alive
    finally:
        run_workdir(run_id).rmdir()
    assert lxc_traces(backend, spec.name) == []
    # the shared tree was only ever the overlay's lower layer
    assert tree_state(tree) == before


def test_the_agent_service_respawns_and_connects_again(
    backend: LxcBackend, artefacts: Artefacts, no_leftovers: None
) -> None:
    run_id = "20260101T000000Z-lxc002"
    spec = make_spec(run_id)
    try:
        with backend.provision(artefacts, spec) as instance:
            assert isinstance(instance, LxcInstance) and instance.channel is not None
            instance.wait_ready(60)
            start = len(instance.log)
            instance.channel.write(command_line("t99", "die", []).encode())
            # the VM unit's respawn line, then the new agent's ready line
            instance.log.wait_for(marker("RESPAWN"), start=start, timeout=30, what="respawn")
            wait_ready(instance.log, 30, start=start)
            assert instance.run("ping", [], 10) == ["pong"]
            assert instance.channel.connections >= 3  # agent, its ExecStopPost, agent
    finally:
        run_workdir(run_id).rmdir()
    assert lxc_traces(backend, spec.name) == []


def test_a_dead_runs_container_is_a_leftover_and_removed(
    backend: LxcBackend, artefacts: Artefacts, no_leftovers: None
) -> None:
    run_id = "20260101T000000Z-lxc003"
    spec = make_spec(run_id)
    try:
        with backend.provision(artefacts, spec) as instance:
            instance.wait_ready(60)
            [leftover] = [item for item in backend.leftovers(set()) if item.run_id == run_id]
            assert not leftover.alive and leftover.owner == ""
            leftover.remove()
            assert lxc_traces(backend, spec.name) == []
    finally:  # the instance's own teardown finds nothing left to remove
        shutil.rmtree(run_workdir(run_id), ignore_errors=True)
    assert lxc_traces(backend, spec.name) == []


def test_a_start_that_fails_says_why_and_leaves_nothing(
    backend: LxcBackend,
    artefacts: Artefacts,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_leftovers: None,
) -> None:
    run_id = "20260101T000000Z-lxc004"
    spec = make_spec(run_id)
    broken = tmp_path / "broken"
    (broken / "sbin").mkdir(parents=True)
    (broken / "sbin" / "init").symlink_to("/nonexistent/systemd")
    (broken / "etc" / "systemd" / "system").mkdir(parents=True)
    (broken / "etc" / "systemd" / "system" / AGENT_UNIT).write_text("[Unit]\n")
    monkeypatch.setenv("VMVC_LXC_SYSTEM_ROOTFS", str(broken))
    try:
        with pytest.raises(Exception) as caught, backend.provision(artefacts, spec) as instance:
            instance.wait_ready(20)
        assert "\n" not in str(caught.value)
    finally:
        shutil.rmtree(run_workdir(run_id), ignore_errors=True)
    assert lxc_traces(backend, spec.name) == []
