"""Podman and gVisor backends' pure parts, on output recorded from podman 4.3.1 on this host
(tests/unit/data/podman: a running container's inspect, ps, version)."""

from __future__ import annotations

import json
import resource
from pathlib import Path

import pytest

from vmvc.backends.base import InstanceSpec
from vmvc.backends.container_limits import limits_from_host_config
from vmvc.backends.docker_engine.backend import container_options
from vmvc.backends.gvisor_engine.backend import PLATFORM, GvisorBackend
from vmvc.backends.podman_engine import cli
from vmvc.backends.podman_engine.backend import PodmanBackend
from vmvc.backends.podman_engine.cli import (
    Engine,
    PodmanError,
    parse_inspect,
    parse_ps,
    parse_version,
)
from vmvc.backends.podman_engine.container import (
    ENGINE_LABEL,
    NPROC_CAP,
    create_argv,
    ulimit_options,
)
from vmvc.config import load_config

DATA = Path(__file__).parent / "data" / "podman"
RUN_ID = "20260101T000000Z-rec001"


def recorded(name: str) -> str:
    return (DATA / name).read_text()


def spec(tmp_path: Path) -> InstanceSpec:
    return InstanceSpec(
        run_id=RUN_ID,
        name=f"vmvc-{RUN_ID}-podman-1",
        workdir=tmp_path / "w",
        vcpus=1,
        memory_mib=512,
    )


def option(argv: list[str], name: str) -> list[str]:
    """Every value given to `name` in an argv (options may repeat)."""
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == name]


def test_inspect_of_a_running_container() -> None:
    state = parse_inspect(recorded("inspect-running.json"))
    assert state.running
    assert state.pid > 0 and state.conmon_pid > 0 and state.pid != state.conmon_pid
    assert state.cgroup_path.startswith("/libpod_parent/libpod-")  # cgroupfs manager
    assert state.container_id in state.cgroup_path
    assert state.oci_runtime == "runc"


@pytest.mark.parametrize("text", ["", "[]", "{}", "not json", '[{"Id": "x"}]'])
def test_inspect_without_a_state_is_one_line_error(text: str) -> None:
    with pytest.raises(PodmanError) as caught:
        parse_inspect(text)
    assert "\n" not in str(caught.value)


def test_ps_lists_names_and_the_labels_that_make_a_container_vmvcs() -> None:
    [container] = parse_ps(recorded("ps.json"))
    assert container["name"] == f"vmvc-{RUN_ID}-podman-1"
    assert container["labels"]["vmvc.run-id"] == RUN_ID
    assert container["labels"][ENGINE_LABEL] == "podman"
    assert parse_ps("") == [] and parse_ps("null") == []


def test_version() -> None:
    version = parse_version(recorded("version.json"))
    assert version["podman_version"] == "4.3.1"
    assert parse_version("garbage") == {}


def test_limits_read_back_from_podmans_host_config() -> None:
    host_config = json.loads(recorded("inspect-running.json"))[0]["HostConfig"]
    limits = limits_from_host_config(host_config, engine="podman")
    assert limits["cpus"] == 1.0
    assert limits["memory_mib"] == 512.0
    assert limits["swap_mib"] == 0.0
    assert str(limits["how"]).startswith("podman --cpus")


def test_a_podman_container_gets_the_docker_containers_limits_and_privileges(
    tmp_path: Path,
) -> None:
    instance = spec(tmp_path)
    argv = create_argv(instance, Path("/cache/rootfs"))
    docker = container_options(instance)
    assert option(argv, "--network") == [docker["network_mode"]] == ["none"]
    assert option(argv, "--cap-drop") == docker["cap_drop"] == ["ALL"]
    assert option(argv, "--security-opt") == docker["security_opt"]
    assert "--read-only" in argv and docker["read_only"]
    assert option(argv, "--pids-limit") == [str(docker["pids_limit"])]
    assert option(argv, "--memory") == option(argv, "--memory-swap") == [docker["mem_limit"]]
    assert float(option(argv, "--cpus")[0]) * 1e9 == docker["nano_cpus"]
    assert option(argv, "--volume") == [f"{instance.workdir / 'data'}:/data:rw"]
    # the rootfs through an overlay: the cached image is never written
    assert option(argv, "--rootfs") == ["/cache/rootfs:O"]
    assert argv[-2:] == ["/opt/vmvc/agent", "serve"]
    labels = dict(label.split("=", 1) for label in option(argv, "--label"))
    assert labels["vmvc.run-id"] == RUN_ID


def test_ulimits_stay_within_this_process_hard_limits() -> None:
    argv = ulimit_options()
    limits = dict(value.split("=") for value in option(argv, "--ulimit"))
    soft, hard = (int(v) for v in limits["nofile"].split(":"))
    assert (soft, hard) == resource.getrlimit(resource.RLIMIT_NOFILE)
    nproc = int(limits["nproc"].split(":")[1])
    _, nproc_hard = resource.getrlimit(resource.RLIMIT_NPROC)
    assert nproc <= NPROC_CAP
    assert nproc_hard == resource.RLIM_INFINITY or nproc <= nproc_hard


def test_without_systemd_podman_uses_cgroupfs_and_a_file_event_log(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(cli, "SYSTEMD_RUNNING", tmp_path / "absent")
    assert cli.global_options() == ["--cgroup-manager", "cgroupfs", "--events-backend", "file"]
    (tmp_path / "present").mkdir()
    monkeypatch.setattr(cli, "SYSTEMD_RUNNING", tmp_path / "present")
    assert cli.global_options() == []


def test_gvisor_is_podman_with_runsc_on_its_platform_and_no_network() -> None:
    engine = GvisorBackend(load_config("quick")).engine
    argv = engine.argv("ps")
    assert argv[0] == "podman" and argv[-1] == "ps"
    assert option(argv, "--runtime")[0].endswith("runsc")
    assert option(argv, "--runtime-flag") == [f"platform={PLATFORM}", "network=none"]
    assert option(Engine().argv("ps"), "--runtime") == []  # podman's own default runtime


def test_podman_and_gvisor_each_claim_only_their_own_containers() -> None:
    config = load_config("quick")
    podman, gvisor = PodmanBackend(config), GvisorBackend(config)
    assert podman.owns({ENGINE_LABEL: "podman"}) and not podman.owns({ENGINE_LABEL: "gvisor"})
    assert gvisor.owns({ENGINE_LABEL: "gvisor"}) and not gvisor.owns({ENGINE_LABEL: "podman"})


def test_a_failed_podman_call_is_one_line_with_podmans_own_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cli, "global_options", lambda: [])
    engine = Engine()
    monkeypatch.setattr(
        engine.__class__,
        "argv",
        lambda self, *args: [
            "sh",
            "-c",
            "echo warn >&2; echo 'Error: no such container' >&2; exit 125",
        ],
    )
    with pytest.raises(PodmanError) as caught:
        engine.call("inspect", "x")
    assert str(caught.value) == "podman inspect failed: Error: no such container"
