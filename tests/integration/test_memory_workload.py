"""The memory workload's own tool on every real engine: one static vmvc-memtool, run natively
(chroot), in a container and in an emulated VM, measuring bandwidth and pointer-chase latency."""

from __future__ import annotations

import pytest

from vmvc.backends.base import InstanceSpec
from vmvc.backends.docker import DockerBackend
from vmvc.backends.libvirt import LibvirtBackend
from vmvc.backends.native import NativeBackend
from vmvc.bench import AGENT_WORKLOADS
from vmvc.config import Config
from vmvc.image.build import Artefacts
from vmvc.paths import run_workdir

BACKENDS = {"native": NativeBackend, "docker": DockerBackend, "libvirt": LibvirtBackend}


@pytest.mark.parametrize("name", list(BACKENDS))
def test_memory_latency_and_bandwidth_run_in_every_backend(
    name: str, small_config: Config, artefacts: Artefacts, no_leftovers: None
) -> None:
    backend = BACKENDS[name](small_config)
    assert backend.probe().available
    backend.prepare(artefacts, lambda _m: None)
    run_id = "20260101T000000Z-memlat"
    spec = InstanceSpec(
        run_id=run_id,
        name=f"vmvc-{run_id}-{name}-1",
        workdir=run_workdir(run_id) / f"vmvc-{run_id}-{name}-1",
    )
    memory = small_config.workload.memory
    workload = AGENT_WORKLOADS["memory"]
    try:
        with backend.provision(artefacts, spec) as instance:
            instance.wait_ready(180)
            raw = instance.run("memory", workload.command(small_config), 300)
            measured = {m.metric: m for m in workload.parse(raw)}
    finally:
        backend.close()
        run_workdir(run_id).rmdir()
    latency = measured["latency_ns"]
    # A dependent chase cannot go faster than a few ns per access, even from L1; an
    # emulated VM stays well under a millisecond per access.
    assert 1 < latency.value < 1_000_000
    assert latency.metadata["working_set_mib"] == memory.latency_working_set_mib
    assert latency.metadata["accesses"] >= 2**20
    triad = measured["bandwidth_mib_s"]
    assert triad.value > 10 and measured["copy_mib_s"].value > 10
    assert triad.metadata["working_set_mib"] == memory.working_set_mib
    assert triad.metadata["threads"] == small_config.instance.vcpus
