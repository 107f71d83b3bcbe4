"""The lifecycle workloads on real LXC system containers (issue 15: every workload that
applies): provision from a copy of the system tree, an overlay clone against a full copy,
systemd respawning the agent and nothing restarting a killed container, scale and density.

Called as the runner calls them (test_lifecycle's Harness), with nothing left behind.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vmvc.backends.base import Backend
from vmvc.backends.lxc import LxcBackend
from vmvc.bench.base import Measurement
from vmvc.bench.lifecycle import applies
from vmvc.config import Config, host_cores
from vmvc.image.build import Artefacts

from .test_lifecycle import Harness, assert_seconds, by_failure, harness  # noqa: F401 - fixture

pytestmark = pytest.mark.integration

MIB = 2**20


@pytest.fixture(scope="module")
def lxc(small_config: Config, artefacts: Artefacts) -> Iterator[Backend]:
    backend = LxcBackend(small_config)
    assert backend.probe().available, backend.probe().reason
    backend.prepare(artefacts, lambda _message: None)
    yield backend
    backend.close()


def test_provision_copies_the_tree_and_defines_on_it(harness: Harness, lxc: Backend) -> None:  # noqa: F811
    measured = harness.run("provision", lxc)
    assert_seconds(measured, "prepare_s", "define_s", "teardown_s")
    prepare = measured["prepare_s"]
    assert prepare.metadata["step"] == "cp -a of the system tree"
    assert prepare.metadata["tree_bytes"] > 100 * MIB  # the whole tree, systemd included
    # Defining writes a config and an empty upper layer: far less than copying the tree.
    assert measured["define_s"].value < prepare.value


def test_a_clone_is_an_overlay_a_full_copy_is_the_tree(harness: Harness, lxc: Backend) -> None:  # noqa: F811
    measured = harness.run("clone", lxc)
    assert_seconds(measured, "clone_s", "clone_to_ready_s", "full_copy_s")
    assert measured["clone_s"].value < measured["clone_to_ready_s"].value  # no boot in it
    clone_bytes = measured["clone_bytes"]
    assert clone_bytes.unit == "bytes"
    # The booted clone's own data: the drop-in, the hostname and what systemd wrote.
    assert 0 < clone_bytes.value < 16 * MIB
    full = measured["full_copy_s"].metadata["full_copy_bytes"]
    assert full > 50 * clone_bytes.value


def test_recovery_systemd_respawns_the_agent_nothing_restarts_the_container(
    harness: Harness,  # noqa: F811
    lxc: Backend,
) -> None:
    found = by_failure(harness.result("recovery", lxc).measurements)
    print({key: (m.value, m.metadata) for key, m in found.items()})  # numbers for the notes
    process = found["workload_process", "recovery_s"]
    assert_seconds({"recovery_s": process}, "recovery_s")
    assert process.metadata["ready_markers"] == 2  # really back: a second ready marker
    assert process.metadata["restarted_by"].startswith("systemd in the container")
    assert 0 < found["workload_process", "detect_s"].value < process.value
    # SIGKILL to its init ends the container: lxc restarts nothing, and its monitor exits.
    assert ("instance", "recovery_s") not in found
    watched = found["instance", "no_restart_watch_s"]
    assert watched.metadata["outcome"] == "no automatic restart"
    assert watched.value >= harness.config.workload.recovery.no_restart_watch_s
    assert 0 < found["instance", "detect_s"].value < 5
    assert ("guest_kernel_panic", "recovery_s") not in found  # the host's kernel: never


def test_scale_and_density(harness: Harness, lxc: Backend, small_config: Config) -> None:  # noqa: F811
    cores = host_cores()
    config = small_config.model_copy(deep=True)
    config.workload.scale.counts = [1, "cores+1"]
    config.workload.density.counts = [1, 4]
    scale = harness.result("scale", lxc, config).measurements
    ready = {m.metadata["n"]: m for m in scale if m.metric == "all_ready_s"}
    assert sorted(ready) == [1, cores + 1]
    assert len(ready[cores + 1].metadata["ready_s"]) == cores + 1
    memory = {m.metadata["n"]: m.value for m in scale if m.metric == "memory_mib"}
    assert 0 < memory[1] < memory[cores + 1]
    density = by_key(harness.result("density", lxc, config).measurements)
    assert {n for metric, n in density if metric == "host_drop_mib"} == {1, 4}
    first = density[("first_instance_mib", None)]
    # cgroup + monitor PSS of a booted systemd with the agent: a breakdown only
    assert 0 < first.metadata["breakdown"]["instance_own_mib"] < 128
    assert first.metadata["engine_daemons"] == []  # no daemon: monitors are per container


def test_no_portable_form_is_planned(lxc: Backend) -> None:
    assert not applies("portability", lxc)


def by_key(measured: list[Measurement]) -> dict[tuple[str, int | None], Measurement]:
    return {(m.metric, m.metadata.get("n")): m for m in measured}
