"""Fixtures for integration tests: real dockerd, real libvirtd, the real workload image.

Nothing here is mocked. The image is built once per session (a cache hit after the first
build on a machine); every test checks that it left no vmvc container, domain or work dir.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docker
import libvirt
import pytest

from vmvc.backends.podman_engine.cli import global_options as podman_global_options
from vmvc.config import Config, load_config
from vmvc.image.build import Artefacts, build_image
from vmvc.paths import work_root

REPO = Path(__file__).resolve().parents[2]
VMVC = [sys.executable, "-m", "vmvc"]

# Small workload sizes: integration tests prove the path works, benchmarks measure.
SMALL = {
    "accel": "tcg",
    "run": {"repetitions": 1, "max_repetitions": 1, "warmups": 0},
    "workload": {
        "cpu": {"seconds": 1},
        "memory": {
            "seconds": 1,
            "working_set_mib": 24,
            "latency_working_set_mib": 16,
            "latency_seconds": 1,
        },
        "io": {"file_size_mib": 16, "runtime_s": 1, "ramp_s": 0},
        # both forms: the tests prove each path (quick alone measures the uncompressed one)
        "portability": {"forms": ["uncompressed", "compressed"]},
    },
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def small_config() -> Config:
    return load_config("quick", overrides=SMALL)


@pytest.fixture(scope="session")
def artefacts(small_config: Config) -> Artefacts:
    return build_image(small_config.image.suite, small_config.image.packages)


def vmvc_leftovers() -> list[str]:
    """Every vmvc-named resource on this host: containers, domains, run work dirs."""
    found: list[str] = []
    client = docker.from_env()
    found += [
        f"container {c.name}" for c in client.containers.list(all=True, filters={"label": "vmvc"})
    ]
    found += [
        f"container {c.name}"
        for c in client.containers.list(all=True)
        if c.name.startswith("vmvc-")
    ]
    client.close()
    conn = libvirt.open("qemu:///system")
    found += [f"domain {d.name()}" for d in conn.listAllDomains() if d.name().startswith("vmvc-")]
    conn.close()
    found += [f"container {name}" for name in podman_containers()]
    found += [f"podman image {name}" for name in podman_images()]
    found += [f"dir {p}" for p in work_root().glob("vmvc-*")]
    # native instances' cgroups (v1: one per controller; v2: one), see native_engine.cgroups
    cgroups = Path("/sys/fs/cgroup")
    found += [f"cgroup {p}" for p in cgroups.glob("*/vmvc/vmvc-*")]
    found += [f"cgroup {p}" for p in cgroups.glob("vmvc/vmvc-*")]
    # lxc system containers: vmvc's own lxcpath, and lxc's per-container cgroups
    found += [f"lxc container {p.name}" for p in (work_root() / "lxc").glob("vmvc-*")]
    found += [f"cgroup {p}" for p in cgroups.glob("*/lxc.*.vmvc-*")]
    found += [f"cgroup {p}" for p in cgroups.glob("lxc.*.vmvc-*")]
    # the kernel tracer's instances (vmvc.bench.syscalls)
    found += [f"trace instance {p}" for p in Path("/sys/kernel/tracing/instances").glob("vmvc-*")]
    return sorted(set(found))


def podman_containers() -> list[str]:
    """vmvc-named containers in podman's store (podman and gVisor instances)."""
    if shutil.which("podman") is None:
        return []
    listed = subprocess.run(
        ["podman", *podman_global_options(), "ps", "-a", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [name for name in listed.stdout.split() if name.startswith("vmvc-")]


def podman_images() -> list[str]:
    """Temporary images of a vmvc run in podman's store (a lifecycle workload's: labelled
    with the run id), by name and run id."""
    if shutil.which("podman") is None:
        return []
    listed = subprocess.run(
        ["podman", *podman_global_options(), "images", "--all", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found = []
    for image in json.loads(listed.stdout or "[]") or []:
        run_id = (image.get("Labels") or {}).get("vmvc.run-id")
        if run_id:
            names = image.get("Names") or [str(image.get("Id", ""))[:12]]
            found.append(f"{names[0]} (run {run_id})")
    return found


def leftovers_of(run_id: str) -> list[str]:
    """Leftovers of one run (precise even while other vmvc runs share the host)."""
    return [item for item in vmvc_leftovers() if run_id in item]


def created_since(before: list[str]) -> list[str]:
    """Resources that appeared since `before`, ignoring other vmvc runs still in progress
    (developers run benchmarks beside the tests; in CI there are none)."""
    from vmvc.liveness import live_run_ids

    # Runs alive before or after the listing: one that starts or ends while it is taken
    # would otherwise look like a leak.
    live = live_run_ids()
    listed = vmvc_leftovers()
    live |= live_run_ids()
    return [
        item for item in listed if item not in before and not any(run_id in item for run_id in live)
    ]


@pytest.fixture
def no_leftovers() -> Iterator[None]:
    before = vmvc_leftovers()
    yield
    after = created_since(before)
    assert after == [], f"vmvc left resources behind: {after}"


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def run_vmvc(
    *args: str, timeout: float = 900, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VMVC, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or REPO,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def load_json(path: Path) -> dict:
    return json.loads(path.read_text())
