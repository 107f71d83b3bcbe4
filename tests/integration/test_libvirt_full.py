"""The full VM flavour (backend libvirt-full) through the real libvirtd: the image's system
tree boots with systemd as PID 1, the agent started by its unit says the shared image id,
runs a steady workload, and teardown leaves nothing behind."""

from __future__ import annotations

from vmvc.backends.base import InstanceSpec
from vmvc.backends.libvirt import LibvirtFullBackend
from vmvc.bench import AGENT_WORKLOADS
from vmvc.config import Config
from vmvc.image.build import Artefacts
from vmvc.paths import run_workdir


def test_full_vm_boots_systemd_to_the_agent(
    small_config: Config, artefacts: Artefacts, no_leftovers: None
) -> None:
    backend = LibvirtFullBackend(small_config)
    assert backend.probe().available
    facts_prepared = backend.prepare(artefacts, lambda _m: None)
    full = artefacts.flavoured("full")
    assert facts_prepared["vm_flavour"] == "full"
    assert facts_prepared["vm_id"] == full.vm_id != artefacts.vm_id
    assert facts_prepared["system_id"] == artefacts.system_id
    run_id = "20260101T000000Z-test21"
    spec = InstanceSpec(
        run_id=run_id,
        name=f"vmvc-{run_id}-libvirt-full-1",
        workdir=run_workdir(run_id) / f"vmvc-{run_id}-libvirt-full-1",
    )
    try:
        with backend.provision(artefacts, spec) as instance:
            xml = instance.domain.XMLDesc()  # type: ignore[attr-defined]
            assert "vmvc.init=systemd" in xml and full.cmdline in xml
            assert "<interface" not in xml
            info = instance.wait_ready(240)
            # The same workload tree: the image id inside is the shared one.
            assert info.image_id == artefacts.image_id
            assert "cloud" in info.kernel
            phases = instance.phases
            assert set(phases) == {
                "create_s",
                "firmware_kernel_s",
                "initramfs_s",
                "userspace_s",
                "total_s",
            }
            assert all(value > 0 for value in phases.values())
            facts = dict(
                line.split("=", 1) for line in instance.run("facts", [], 60) if "=" in line
            )
            assert facts["pid1_comm"] == "systemd"
            assert facts["hostname"] == "vmvc-guest"
            assert facts["block_devices"].split() == ["vda", "vdb"]
            cpu = AGENT_WORKLOADS["cpu"]
            [events] = cpu.parse(instance.run("cpu", cpu.command(small_config), 120))
            assert events.value > 0
            assert instance.footprint()["total_mib"] > 0
            # Nothing but the agent wrote to the console after the ready line (no getty, no
            # systemd status): the protocol stayed framed.
            assert not any("login:" in line for line in instance.console_tail(50))
        env = backend.environment()
        assert env["vm_full_flavour"] == "full" and env["vm_full_id"] == full.vm_id
        assert "vm_cmdline" not in env  # the minimal backend's keys stay its own
    finally:
        backend.close()
        run_workdir(run_id).rmdir()
