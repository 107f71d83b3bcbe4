"""Isolation facts parsed from the agent's recorded `facts` output (tests/data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmvc.bench.facts import HostFacts, capability_count, parse_facts, parse_key_values

DATA = Path(__file__).resolve().parent.parent / "data"


def recorded(name: str) -> list[str]:
    return (DATA / f"{name}-facts.txt").read_text().splitlines()


@pytest.fixture
def host() -> HostFacts:
    """The host the recordings were made on (tests/data/host-facts.txt)."""
    raw = parse_key_values(recorded("host"))
    return HostFacts(raw["kernel_release"], raw["boot_id"], raw["os_release"], 89)


def test_container_shares_the_kernel_but_sees_no_host_process(host: HostFacts) -> None:
    facts = parse_facts(recorded("docker"), host)
    assert facts["shares_host_kernel"] is True
    assert facts["shares_host_kernel_basis"] == "boot id"
    assert facts["kernel_release"] == facts["host_kernel_release"] == "6.18.44-fc-v669"
    assert facts["host_processes_visible"] is False
    assert facts["processes_visible"] == 5
    assert facts["capabilities_count"] == 0
    assert facts["capabilities"] == "0 (CapEff 0000000000000000)"
    assert facts["no_new_privs"] is True
    assert facts["seccomp"] == "filter"
    assert facts["hostname"] == "vmvc-container"
    assert facts["mem_total_kib"] == 24684084  # a container sees the host's memory
    assert "vda" in facts["block_devices"]


def test_vm_runs_its_own_kernel(host: HostFacts) -> None:
    facts = parse_facts(recorded("libvirt"), host)
    assert facts["shares_host_kernel"] is False
    assert facts["kernel_release"] == "6.1.0-57-amd64"
    assert facts["os_release"] == "Debian GNU/Linux 12 (bookworm)"
    assert facts["host_processes_visible"] is False
    assert facts["capabilities_count"] == 41  # root of its own kernel
    assert facts["seccomp"] == "disabled"
    assert facts["cpus_online"] == 1 and facts["mem_total_kib"] == 468404
    assert facts["block_devices"] == ["vda", "vdb"]
    assert facts["pid1_comm"] == "guest-init"


def test_native_sees_everything(host: HostFacts) -> None:
    facts = parse_facts(recorded("native"), host)
    assert facts["shares_host_kernel"] is True
    assert facts["host_processes_visible"] is True
    assert facts["processes_visible"] == 103
    assert facts["capabilities_count"] == 40
    assert facts["host_processes"] == 89


def test_same_release_string_is_not_the_same_kernel(host: HostFacts) -> None:
    """A VM booting the host's very kernel release still runs its own kernel."""
    lines = [f"kernel_release={host.kernel_release}", "boot_id=another-boot"]
    assert parse_facts(lines, host)["shares_host_kernel"] is False


def test_older_agent_output_falls_back_to_the_release_string() -> None:
    """Output without boot_id or probe line (an image built before they existed)."""
    lines = ["kernel_release=6.1.0-57-amd64", "cap_eff=000001ffffffffff", "seccomp=0"]
    facts = parse_facts(lines, HostFacts("6.18.44-fc-v669"))
    assert facts["shares_host_kernel"] is False
    assert facts["shares_host_kernel_basis"] == "kernel release string"
    assert facts["host_processes_visible"] is None


def test_unknown_host_leaves_kernel_sharing_unknown() -> None:
    facts = parse_facts(recorded("libvirt"), HostFacts(None))
    assert "shares_host_kernel" not in facts and "host_kernel_release" not in facts


def test_key_values_ignore_noise() -> None:
    lines = [
        "[  3.99] sysrq: noise",
        "os_release=Debian = odd",
        "  hostname=x  ",
        "=v",
        "bad key=1",
    ]
    assert parse_key_values(lines) == {"os_release": "Debian = odd", "hostname": "x"}


def test_capability_count() -> None:
    assert capability_count("0000000000000000") == 0
    assert capability_count("000001ffffffffff") == 41
    assert capability_count("zz") is None


# The host the LXC recording (tests/data/lxc-facts.txt, 2026-12-01) was made on.
LXC_HOST = HostFacts(
    "6.18.44-fc-v669", "025c968a-78c2-47f7-9c5e-ada3564488bc", None, 77, btime=1796105125
)


def test_a_system_container_shares_the_kernel_though_systemd_replaced_its_boot_id() -> None:
    """systemd as a container's PID 1 mounts a boot id of its own: the kernel's boot time
    and release still say whose kernel answers (here: the host's)."""
    lines = recorded("lxc")
    raw = parse_key_values(lines)
    assert raw["boot_id"] != LXC_HOST.boot_id  # what made it look like a VM before
    facts = parse_facts(lines, LXC_HOST)
    assert facts["shares_host_kernel"] is True
    assert facts["shares_host_kernel_basis"] == "kernel boot time and release (boot id replaced)"
    assert facts["pid1_comm"] == "systemd"
    # one second apart is the same boot (btime is computed at each read, rounded)
    later = HostFacts(LXC_HOST.kernel_release, LXC_HOST.boot_id, btime=1796105126)
    assert parse_facts(lines, later)["shares_host_kernel"] is True


def test_another_kernel_with_the_same_boot_time_or_release_is_not_the_hosts() -> None:
    lines = recorded("lxc")
    other_boot = HostFacts(LXC_HOST.kernel_release, LXC_HOST.boot_id, btime=1796105125 - 60)
    facts = parse_facts(lines, other_boot)
    assert facts["shares_host_kernel"] is False
    assert facts["shares_host_kernel_basis"] == "boot id"
    other_release = HostFacts("6.1.0-28-cloud-amd64", LXC_HOST.boot_id, btime=1796105125)
    assert parse_facts(lines, other_release)["shares_host_kernel"] is False
