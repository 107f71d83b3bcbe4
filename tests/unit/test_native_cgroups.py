"""The native baseline's cgroup: layout detection, limits written and read back, on recorded
cgroup files of the development host (cgroup v1) and a scratch tree; no real cgroup."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from vmvc.backends.cgroup_files import Layout, detect, read_limits
from vmvc.backends.container_limits import limits_from_host_config
from vmvc.backends.libvirt_engine.limits import limits_from_domain_xml
from vmvc.backends.native_engine.cgroups import (
    CgroupError,
    NativeCgroup,
    enter_command,
    existing,
    run_id_of,
)

DATA = Path(__file__).parent.parent / "data"
NAME = "vmvc-20261201T000000Z-abcdef-native-1"
# /proc/self/mounts of a Debian 12 host with systemd's unified hierarchy (cgroup v2 only).
V2_MOUNTS = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0\n"


def test_a_hybrid_host_uses_the_v1_controllers() -> None:
    # recorded here: v1 cpu and memory, plus an empty v2 hierarchy at /sys/fs/cgroup/unified
    layout = detect((DATA / "cgroup-v1-mounts").read_text())
    assert layout == Layout(1, Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup/memory"))
    assert layout.parents() == [Path("/sys/fs/cgroup/cpu/vmvc"), Path("/sys/fs/cgroup/memory/vmvc")]


def test_a_v1_host_with_cpu_and_cpuacct_mounted_together() -> None:
    mounts = (
        "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0\n"
        "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n"
    )
    assert detect(mounts) == Layout(
        1, Path("/sys/fs/cgroup/cpu,cpuacct"), Path("/sys/fs/cgroup/memory")
    )


def test_a_v2_host_needs_cpu_and_memory_in_its_controllers(tmp_path: Path) -> None:
    mounts = V2_MOUNTS.replace("/sys/fs/cgroup", str(tmp_path), 1)
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    assert detect(mounts) == Layout(2, tmp_path, tmp_path)
    (tmp_path / "cgroup.controllers").write_text("cpuset io pids\n")
    assert detect(mounts) is None


def test_no_controllers_no_layout() -> None:
    assert detect("proc /proc proc rw 0 0\n") is None
    # the hybrid's empty unified hierarchy alone confines nothing
    only_unified = "cgroup2 /nonexistent/unified cgroup2 rw 0 0\n"
    assert detect(only_unified) is None


def test_limits_read_back_from_recorded_v1_files() -> None:
    native = DATA / "cgroup-v1-native"
    limits = read_limits(1, native / "cpu", native / "memory")
    assert limits["cpus"] == 1.0
    assert limits["memory_mib"] == 512.0
    assert limits["swap_mib"] == 0.0
    assert "CFS quota 100000/100000" in str(limits["how"])


def test_an_unconfined_v1_cgroup_reads_as_unlimited() -> None:
    free = DATA / "cgroup-v1-unlimited"
    limits = read_limits(1, free / "cpu", free / "memory")
    assert limits["cpus"] == "unlimited"
    assert limits["memory_mib"] == "unlimited"
    assert limits["swap_mib"] == "unlimited"


def scratch_v1(tmp_path: Path) -> Layout:
    layout = Layout(1, tmp_path / "cpu", tmp_path / "memory")
    layout.cpu.mkdir()
    layout.memory.mkdir()
    return layout


def test_create_writes_dockers_limits_v1(tmp_path: Path) -> None:
    layout = scratch_v1(tmp_path)
    group = NativeCgroup.create(layout, NAME, vcpus=2, memory_mib=768)
    cpu, memory = layout.cpu / "vmvc" / NAME, layout.memory / "vmvc" / NAME
    assert (cpu / "cpu.cfs_period_us").read_text() == "100000"
    assert (cpu / "cpu.cfs_quota_us").read_text() == "200000"  # 2 CPUs' worth per period
    assert (memory / "memory.limit_in_bytes").read_text() == str(768 * 2**20)
    assert group.dirs == [cpu, memory]
    assert group.procs_files == [cpu / "cgroup.procs", memory / "cgroup.procs"]
    assert group.limits()["cpus"] == 2.0
    assert group.limits()["memory_mib"] == 768.0


def test_create_writes_dockers_limits_v2(tmp_path: Path) -> None:
    layout = Layout(2, tmp_path, tmp_path)
    group = NativeCgroup.create(layout, NAME, vcpus=1, memory_mib=512)
    assert (tmp_path / "vmvc" / "cgroup.subtree_control").read_text() == "+cpu +memory"
    own = tmp_path / "vmvc" / NAME
    assert (own / "cpu.max").read_text() == "100000 100000"
    assert (own / "memory.max").read_text() == str(512 * 2**20)
    assert group.dirs == [own]
    assert group.limits() == {
        "cpus": 1.0,
        "memory_mib": 512.0,
        "how": "cgroup v2 cpu.max 100000 100000, memory.max",
    }


def test_an_existing_cgroup_is_never_reused(tmp_path: Path) -> None:
    layout = scratch_v1(tmp_path)
    NativeCgroup.create(layout, NAME, 1, 512)
    with pytest.raises(CgroupError, match="exists already"):
        NativeCgroup.create(layout, NAME, 1, 512)


def test_only_vmvc_instance_names_are_made_or_reaped(tmp_path: Path) -> None:
    layout = scratch_v1(tmp_path)
    with pytest.raises(CgroupError, match="not a vmvc instance name"):
        NativeCgroup.create(layout, "../../etc", 1, 512)
    NativeCgroup.create(layout, NAME, 1, 512)
    (layout.cpu / "vmvc" / "somebody-else").mkdir()
    assert [g.name for g in existing(layout)] == [NAME]
    assert run_id_of(NAME) == "20261201T000000Z-abcdef"
    assert run_id_of("vmvc-notarun-native-1") is None


def test_the_started_process_writes_its_own_pid_before_exec(tmp_path: Path) -> None:
    procs = [tmp_path / "cpu.procs", tmp_path / "memory.procs"]
    for path in procs:
        path.write_text("")
    done = subprocess.run(
        [*enter_command(procs), "/bin/sh", "-c", "echo $$"],
        capture_output=True,
        text=True,
        check=True,
    )
    # the exec'd command has the pid written into every procs file: it was born inside
    assert [p.read_text().strip() for p in procs] == [done.stdout.strip()] * 2


def test_a_procs_file_that_cannot_be_written_stops_the_start(tmp_path: Path) -> None:
    missing = tmp_path / "gone" / "cgroup.procs"
    done = subprocess.run([*enter_command([missing]), "/bin/true"], capture_output=True)
    assert done.returncode == 125


def test_docker_limits_from_recorded_inspect() -> None:
    host_config = json.loads((DATA / "docker-hostconfig-limits.json").read_text())
    limits = limits_from_host_config(host_config)
    assert (limits["cpus"], limits["memory_mib"], limits["swap_mib"]) == (1.0, 512.0, 0.0)
    assert "cpuset" not in limits
    assert limits_from_host_config({})["cpus"] == "unlimited"


def test_vm_limits_from_a_recorded_live_domain_xml() -> None:
    limits = limits_from_domain_xml((DATA / "libvirt-live-domain.xml").read_text())
    assert (limits["cpus"], limits["memory_mib"], limits["swap_mib"]) == (1, 512.0, 0)
    assert "unpinned" in str(limits["how"])


def test_native_without_cgroup_controllers_is_unavailable_not_unconfined(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from vmvc.backends.native_engine import backend as native
    from vmvc.config import Config

    monkeypatch.setattr(native.os, "geteuid", lambda: 0)
    monkeypatch.setattr(native.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(native, "detect", lambda: None)
    availability = native.NativeBackend(Config()).probe()
    assert not availability.available
    assert "cgroup" in availability.reason
    monkeypatch.setattr(native, "detect", lambda: Layout(1, Path("/c/cpu"), Path("/c/memory")))
    assert native.NativeBackend(Config()).probe().available
