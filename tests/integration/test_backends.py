"""Each backend on its real engine: provision, ready, run a workload, footprint, teardown."""

from __future__ import annotations

import pytest

from vmvc.backends.base import InstanceSpec
from vmvc.backends.docker import DockerBackend
from vmvc.backends.gvisor import GvisorBackend
from vmvc.backends.libvirt import LibvirtBackend, LibvirtFullBackend
from vmvc.backends.lxc import LxcBackend
from vmvc.backends.native import NativeBackend
from vmvc.backends.podman import PodmanBackend
from vmvc.bench import AGENT_WORKLOADS
from vmvc.bench.isolation import host_exposure
from vmvc.config import Config
from vmvc.image.build import Artefacts
from vmvc.paths import run_workdir

BACKENDS = {
    "native": NativeBackend,
    "docker": DockerBackend,
    "podman": PodmanBackend,
    "gvisor": GvisorBackend,
    "lxc": LxcBackend,
    "libvirt": LibvirtBackend,
    "libvirt-full": LibvirtFullBackend,
}


@pytest.mark.parametrize("name", list(BACKENDS))
def test_instance_lifecycle(
    name: str, small_config: Config, artefacts: Artefacts, no_leftovers: None
) -> None:
    backend = BACKENDS[name](small_config)
    assert backend.probe().available
    backend.prepare(artefacts, lambda _m: None)
    run_id = "20260101T000000Z-test01"
    spec = InstanceSpec(
        run_id=run_id,
        name=f"vmvc-{run_id}-{name}-1",
        workdir=run_workdir(run_id) / f"vmvc-{run_id}-{name}-1",
    )
    try:
        with backend.provision(artefacts, spec) as instance:
            info = instance.wait_ready(180)
            assert info.image_id == artefacts.image_id
            assert instance.phases["total_s"] > 0
            cpu = AGENT_WORKLOADS["cpu"]
            [events] = cpu.parse(instance.run("cpu", cpu.command(small_config), 120))
            assert events.value > 0
            # The console/stdin channel keeps working for a second command.
            facts = instance.run("facts", [], 60)
            assert any(line.startswith("kernel_release=") for line in facts)
            assert instance.footprint()["total_mib"] > 0
    finally:
        backend.close()
        run_workdir(run_id).rmdir()


def test_libvirt_guest_has_no_network_interface(
    small_config: Config, artefacts: Artefacts, no_leftovers: None
) -> None:
    backend = LibvirtBackend(small_config)
    backend.prepare(artefacts, lambda _m: None)
    run_id = "20260101T000000Z-test02"
    spec = InstanceSpec(
        run_id=run_id, name=f"vmvc-{run_id}-libvirt-1", workdir=run_workdir(run_id) / "vm"
    )
    try:
        with backend.provision(artefacts, spec) as instance:
            xml = instance.domain.XMLDesc()  # type: ignore[attr-defined]
            assert "<interface" not in xml
            assert "hostdev" not in xml
            # The image's boot recipe, as libvirt defined it: its firmware (an own copy),
            # machine type and kernel command line.
            if artefacts.firmware is not None:
                assert f"{spec.workdir}/firmware.rom</loader>" in xml and "type='rom'" in xml
            assert "machine='pc-i440fx" in xml
            assert artefacts.cmdline in xml
            info = instance.wait_ready(180)
            assert "cloud" in info.kernel  # the VM-flavoured kernel booted
            facts = instance.run("facts", [], 60)
            assert any(line.startswith("block_devices=vda vdb") for line in facts)
            # The initramfs set the console raw and handed over to the guest init.
            assert "pid1_comm=guest-init" in facts
    finally:
        backend.close()
        run_workdir(run_id).rmdir()


def test_docker_container_is_least_privileged(
    small_config: Config, artefacts: Artefacts, no_leftovers: None
) -> None:
    backend = DockerBackend(small_config)
    backend.prepare(artefacts, lambda _m: None)
    run_id = "20260101T000000Z-test03"
    spec = InstanceSpec(
        run_id=run_id, name=f"vmvc-{run_id}-docker-1", workdir=run_workdir(run_id) / "c"
    )
    try:
        with backend.provision(artefacts, spec) as instance:
            attrs = instance.container.attrs  # type: ignore[attr-defined]
            host = attrs["HostConfig"]
            assert host["NetworkMode"] == "none"
            assert host["CapDrop"] == ["ALL"]
            assert host["ReadonlyRootfs"] is True
            assert "no-new-privileges" in host["SecurityOpt"]
            assert attrs["Config"]["Labels"]["vmvc.run-id"] == run_id
            instance.wait_ready(60)
            facts = dict(
                line.split("=", 1) for line in instance.run("facts", [], 60) if "=" in line
            )
            assert facts["cap_eff"] == "0000000000000000"
            assert facts["no_new_privs"] == "1"
    finally:
        backend.close()
        run_workdir(run_id).rmdir()


def test_gvisor_narrows_the_host_kernels_exposure(
    small_config: Config, artefacts: Artefacts, no_leftovers: None
) -> None:
    """The same mix, counted on the host: runc's container calls the host kernel itself;
    under gVisor the Sentry answers and only its own (and its gofer's) calls reach it."""
    run_id = "20260101T000000Z-test04"
    reached: dict[str, list[str]] = {}
    try:
        for name in ("podman", "gvisor"):
            backend = BACKENDS[name](small_config)
            backend.prepare(artefacts, lambda _m: None)
            spec = InstanceSpec(
                run_id=run_id,
                name=f"vmvc-{run_id}-{name}-1",
                workdir=run_workdir(run_id) / f"vmvc-{run_id}-{name}-1",
            )
            try:
                with backend.provision(artefacts, spec) as instance:
                    instance.wait_ready(180)
                    exposure = host_exposure(instance, 120)
            finally:
                backend.close()
            assert "host_syscall_lost_events" not in exposure
            assert exposure["host_syscalls_reached"] == len(exposure["host_syscalls"])
            reached[name] = exposure["host_syscalls"]
    finally:
        run_workdir(run_id).rmdir()
    assert len(reached["gvisor"]) < len(reached["podman"]), reached
    assert "ptrace" in reached["gvisor"]  # the ptrace platform intercepting the workload
    assert "execve" in reached["podman"] and "execve" not in reached["gvisor"]
