"""LXC backend's pure parts, on output recorded from lxc 5.0.2 on this host (tests/unit/data/
lxc: lxc-info of a running, a stopped and a missing container, lxc-ls --fancy, a failed
daemonized start's stderr and log, lxc-stop of a stopped container, a container's init's
/proc/PID/cgroup and the config the backend wrote)."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from vmvc.agent.protocol import AgentError, LineLog, run_served, wait_ready
from vmvc.backends.base import BackendError, InstanceSpec
from vmvc.backends.cgroup_files import Layout
from vmvc.backends.docker_engine.backend import container_options
from vmvc.backends.lxc_engine import cli
from vmvc.backends.lxc_engine.backend import (
    AGENT_DROPIN,
    AgentChannel,
    container_config,
    limit_lines,
    listen_unix,
    payload_cgroup,
    remove_cgroups,
    system_rootfs,
    write_upper,
)
from vmvc.backends.lxc_engine.cli import (
    Lxc,
    LxcError,
    first_cause,
    label_lines,
    parse_info,
    parse_labels,
    parse_ls,
    parse_version,
    tool_message,
)
from vmvc.image.build import Artefacts
from vmvc.image.system import AGENT_UNIT

DATA = Path(__file__).parent / "data" / "lxc"
RUN_ID = "20260101T000000Z-rec001"
NAME = f"vmvc-{RUN_ID}-lxc-1"
V1 = Layout(1, Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup/memory"))
V2 = Layout(2, Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup"))


def recorded(name: str) -> str:
    return (DATA / name).read_text()


def spec(tmp_path: Path, vcpus: int = 1) -> InstanceSpec:
    return InstanceSpec(
        run_id=RUN_ID, name=NAME, workdir=tmp_path / "w", vcpus=vcpus, memory_mib=512
    )


def config_values(text: str) -> dict[str, list[str]]:
    """Every key's values in an lxc config (keys may repeat)."""
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values.setdefault(key.strip(), []).append(value.strip())
    return values


# -- the lxc tools' output ----------------------------------------------------------------


def test_version() -> None:
    assert parse_version(recorded("version.txt")) == "5.0.2"
    assert parse_version("") == parse_version("lxc: command not found") == ""


def test_info_of_a_running_and_a_stopped_container() -> None:
    running = parse_info(recorded("info-running.txt"))
    assert running.name == NAME and running.running and running.pid > 1
    stopped = parse_info(recorded("info-stopped.txt"))
    assert stopped.state == "STOPPED" and not stopped.running and stopped.pid == 0


@pytest.mark.parametrize("text", ["", recorded("info-missing.txt"), "garbage\n"])
def test_info_without_a_state_is_one_line_error(text: str) -> None:
    with pytest.raises(LxcError) as caught:
        parse_info(text)
    assert "\n" not in str(caught.value)


def test_ls_lists_names_states_and_pids() -> None:
    first, second = parse_ls(recorded("ls-fancy.txt"))
    assert (first.name, first.state) == (NAME, "RUNNING") and first.pid > 1
    assert (second.name, second.state, second.pid) == (f"vmvc-{RUN_ID}-lxc-2", "STOPPED", 0)
    assert parse_ls("") == []  # what lxc-ls prints for an empty (or missing) lxcpath


def test_a_failed_start_says_lxcs_own_reason_not_its_hint() -> None:
    assert tool_message(recorded("start-failed.stderr")) == "The container failed to start"
    assert tool_message(recorded("stop-not-running.stderr")) == f"{NAME} is not running"
    assert tool_message("") == "no message"


def test_the_first_error_of_a_container_log_is_the_cause() -> None:
    errors = cli.log_errors(recorded("start-failed.log"))
    assert len(errors) == 8
    cause = first_cause(recorded("start-failed.log"))
    assert cause.startswith("No such file or directory - Failed to mount")
    assert "/tmp/lxc-proto/missing-rootfs" in cause
    assert first_cause("") == ""


def test_a_failed_lxc_call_is_one_line_with_lxcs_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = recorded("stop-not-running.stderr")
    lxc = Lxc(Path("/nonexistent"))
    monkeypatch.setattr(
        Lxc, "argv", lambda self, *a, name=None: ["sh", "-c", f"printf '{stderr}' >&2; exit 2"]
    )
    with pytest.raises(LxcError) as caught:
        lxc.call("lxc-stop", "-k", name=NAME)
    assert str(caught.value) == f"lxc-stop failed: {NAME} is not running"


def test_every_call_names_vmvcs_own_lxcpath() -> None:
    lxc = Lxc(Path("/var/tmp/vmvc/lxc"))
    assert lxc.argv("lxc-start", "-d", name=NAME) == [
        "lxc-start",
        "-P",
        "/var/tmp/vmvc/lxc",
        "-n",
        NAME,
        "-d",
    ]
    assert lxc.argv("lxc-ls", "--fancy")[:3] == ["lxc-ls", "-P", "/var/tmp/vmvc/lxc"]


def test_owner_labels_round_trip_through_config_comments() -> None:
    labels = {"vmvc": "1", "vmvc.run-id": RUN_ID, "vmvc.controller": "d634ce465ac4346e"}
    assert parse_labels("\n".join(label_lines(labels)) + "\nlxc.uts.name = x\n") == labels
    assert parse_labels(recorded("config.txt"))["vmvc.run-id"] == RUN_ID
    with pytest.raises(ValueError):
        label_lines({"evil\nlxc.net.0.type": "veth"})
    with pytest.raises(ValueError):
        label_lines({"vmvc.run-id": "x\nlxc.net.0.type = veth"})


# -- the container the backend writes --------------------------------------------------------


def test_a_system_container_gets_no_network_and_the_docker_containers_limits(
    tmp_path: Path,
) -> None:
    instance = spec(tmp_path)
    limits = limit_lines(instance, V1, swap_accounting=True)
    text = container_config(instance, Path("/cache/system"), tmp_path / NAME, limits)
    values = config_values(text)
    docker = container_options(instance)
    assert values["lxc.net.0.type"] == ["empty"]  # loopback only: no network
    assert values["lxc.uts.name"] == [docker["hostname"]]
    assert values["lxc.cgroup.memory.limit_in_bytes"] == ["512M"] == [docker["mem_limit"].upper()]
    assert values["lxc.cgroup.memory.memsw.limit_in_bytes"] == [docker["memswap_limit"].upper()]
    quota = int(values["lxc.cgroup.cpu.cfs_quota_us"][0])
    period = int(values["lxc.cgroup.cpu.cfs_period_us"][0])
    assert quota / period * 1e9 == docker["nano_cpus"]
    assert values["lxc.cgroup.pids.max"] == [str(docker["pids_limit"])]
    mounts = values["lxc.mount.entry"]
    assert f"{instance.workdir / 'data'} data none bind,create=dir 0 0" in mounts
    assert any(m.startswith("tmpfs tmp tmpfs") and "size=64m" in m for m in mounts)
    # the system tree through an overlay: its upper layer is the container's own
    assert values["lxc.rootfs.path"] == [f"overlay:/cache/system:{tmp_path / NAME}/upper"]
    assert values["lxc.init.cmd"] == ["/sbin/init"]
    assert parse_labels(text)["vmvc.run-id"] == RUN_ID
    # what /etc/lxc/default.conf would add (a veth on lxcbr0) is never included
    assert not any("default.conf" in v for v in values.get("lxc.include", []))


def test_the_written_config_is_what_lxc_ran() -> None:
    """The recorded config is the one a real container booted with (tests/integration)."""
    values = config_values(recorded("config.txt"))
    assert values["lxc.net.0.type"] == ["empty"]
    assert values["lxc.rootfs.path"][0].startswith("overlay:")


def test_limits_on_cgroup_v2_and_without_swap_accounting(tmp_path: Path) -> None:
    assert limit_lines(spec(tmp_path, vcpus=2), V2, swap_accounting=False) == [
        "lxc.cgroup2.memory.max = 512M",
        "lxc.cgroup2.memory.swap.max = 0",
        "lxc.cgroup2.cpu.max = 200000 100000",
        "lxc.cgroup2.pids.max = 512",
    ]
    v1 = limit_lines(spec(tmp_path), V1, swap_accounting=False)
    assert not any("memsw" in line for line in v1)


def test_a_path_with_white_space_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        container_config(spec(tmp_path), Path("/cache/my tree"), tmp_path / NAME, [])


def test_the_upper_layer_adds_only_the_agents_drop_in_and_the_hostname(tmp_path: Path) -> None:
    lower = tmp_path / "lower"
    (lower / "etc" / "systemd" / "system").mkdir(parents=True)
    os.chmod(lower / "etc", 0o751)  # the tree's own mode wins over mkdir's
    write_upper(tmp_path / "upper", lower)
    upper = tmp_path / "upper"
    files = sorted(str(p.relative_to(upper)) for p in upper.rglob("*") if p.is_file())
    assert files == ["etc/hostname", f"etc/systemd/system/{AGENT_UNIT}.d/lxc.conf"]
    assert (upper / "etc").stat().st_mode & 0o777 == 0o751
    assert (upper / "etc" / "hostname").read_text() == "vmvc-container\n"


def test_the_drop_in_moves_only_the_agents_stdio_to_the_socket() -> None:
    values = config_values(AGENT_DROPIN)
    assert values["ExecStart"] == ["", "/opt/vmvc/agent serve"]  # reset, then no stty
    assert values["StandardInput"] == values["StandardOutput"] == ["file:/vmvc/agent.sock"]
    assert values["SuccessAction"] == ["none"]  # systemd < 254 runs it at each respawn
    assert values["StartLimitAction"] == ["poweroff-immediate"]
    assert "Restart" not in values  # the VM unit's respawn stays as it is


def test_the_system_tree_comes_from_the_environment_or_the_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "system"
    (tree / "sbin").mkdir(parents=True)
    (tree / "etc" / "systemd" / "system").mkdir(parents=True)
    artefacts = Artefacts(image_id="x", root=tmp_path / "image")
    monkeypatch.delenv("VMVC_LXC_SYSTEM_ROOTFS", raising=False)
    with pytest.raises(BackendError, match="no system tree"):
        system_rootfs(artefacts)
    monkeypatch.setenv("VMVC_LXC_SYSTEM_ROOTFS", str(tree))
    with pytest.raises(BackendError, match="no /sbin/init"):
        system_rootfs(artefacts)
    (tree / "sbin" / "init").symlink_to("/lib/systemd/systemd")  # dangling on this host
    with pytest.raises(BackendError, match=AGENT_UNIT):
        system_rootfs(artefacts)
    (tree / "etc" / "systemd" / "system" / AGENT_UNIT).write_text("[Unit]\n")
    assert system_rootfs(artefacts) == tree


# -- cgroups --------------------------------------------------------------------------------


def test_the_containers_cgroup_from_its_inits_proc_cgroup() -> None:
    text = recorded("proc-init-cgroup.txt")
    expected = f"lxc.payload.{NAME}"
    assert payload_cgroup(text, "memory", NAME) == expected  # below it: init.scope
    assert payload_cgroup(text, "cpu", NAME) == expected
    assert payload_cgroup(text, "", NAME) == expected  # the v2 line
    assert payload_cgroup(text, "memory", "vmvc-other") is None
    nested = "0::/lxc.payload/lxc.payload.vmvc-x-lxc-1/init.scope\n"
    assert payload_cgroup(nested, "", "vmvc-x-lxc-1") == "lxc.payload/lxc.payload.vmvc-x-lxc-1"


def test_leftover_cgroups_of_a_name_are_removed_and_no_others(tmp_path: Path) -> None:
    for hierarchy in ("memory", "pids"):
        (tmp_path / hierarchy / f"lxc.monitor.{NAME}").mkdir(parents=True)
        (tmp_path / hierarchy / f"lxc.payload.{NAME}" / "init.scope").mkdir(parents=True)
        (tmp_path / hierarchy / "lxc.monitor.vmvc-other").mkdir()
    remove_cgroups(NAME, root=tmp_path)
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.glob("*/*"))
    assert left == ["memory/lxc.monitor.vmvc-other", "pids/lxc.monitor.vmvc-other"]


# -- the agent's socket ---------------------------------------------------------------------


def fake_agent(path: Path, lines: list[bytes]) -> socket.socket:
    """What systemd does for the agent service: connect to the host's socket."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(str(path))
    for line in lines:
        client.sendall(line)
    return client


def test_a_socket_in_a_directory_longer_than_a_socket_address(tmp_path: Path) -> None:
    directory = tmp_path / ("d" * 100)
    directory.mkdir()
    listener = listen_unix(directory, "agent.sock")
    try:
        assert len(str(directory / "agent.sock")) > 108
        assert (directory / "agent.sock").is_socket()
    finally:
        listener.close()


def answer_one_command(agent: socket.socket) -> None:
    """A fake `agent serve`: one command, its framed output."""
    task_id, workload = agent.recv(200).decode().split()[:2]
    agent.sendall(f"VMVC-BEGIN {task_id} {workload}\npong\nVMVC-END {task_id} rc=0\n".encode())


def test_the_channel_serves_the_agent_and_takes_it_back_after_a_respawn(tmp_path: Path) -> None:
    log = LineLog()
    alive = threading.Event()
    alive.set()
    channel = AgentChannel(tmp_path, log, alive.is_set)
    try:
        agent = fake_agent(tmp_path / "agent.sock", [b"VMVC-READY image=i kernel=k\n"])
        wait_ready(log, timeout=5)
        responder = threading.Thread(target=answer_one_command, args=(agent,))
        responder.start()
        assert run_served(channel, log, "t1", "ping", [], timeout=5) == ["pong"]
        responder.join()
        # killed mid-line: the next life's lines start on a line of their own
        start = len(log)
        agent.sendall(b"half a li")
        agent.close()
        respawned = fake_agent(tmp_path / "agent.sock", [b"VMVC-READY image=j kernel=k\n"])
        index, info = wait_ready(log, timeout=5, start=start)
        assert info.image_id == "j"
        assert log.lines_between(start, index) == ["half a li"]
        assert channel.connections == 2
        respawned.close()
        alive.clear()  # the container stopped: nobody will connect again
        deadline = time.monotonic() + 5
        while not log.closed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert log.closed
    finally:
        channel.close()


def test_a_command_without_a_connected_agent_says_the_agent_exited(tmp_path: Path) -> None:
    log = LineLog()
    channel = AgentChannel(tmp_path, log, lambda: True)
    try:
        with pytest.raises(AgentError, match="the agent exited"):
            run_served(channel, log, "t1", "ping", [], timeout=1)
    finally:
        channel.close()
    assert log.closed


def test_copy_tree_keeps_links_and_modes_and_a_failed_copy_leaves_nothing(tmp_path: Path) -> None:
    from vmvc.backends.lxc_engine.operations import TreeCopy, copy_tree

    source = tmp_path / "tree"
    (source / "sbin").mkdir(parents=True)
    (source / "sbin" / "tool").write_text("#!/bin/sh\n")
    os.chmod(source / "sbin" / "tool", 0o750)
    (source / "init").symlink_to("/lib/systemd/systemd")  # absolute: never followed
    target = tmp_path / "work" / "rootfs"
    copy = TreeCopy(source, target)
    copy.create()
    assert os.readlink(target / "init") == "/lib/systemd/systemd"
    assert (target / "sbin" / "tool").stat().st_mode & 0o7777 == 0o750
    copy.inspect()
    assert copy.details["create"]["tree_bytes"] > 0
    copy.remove()
    assert not target.exists()
    with pytest.raises(LxcError, match=r"cp -a .*missing failed: "):
        copy_tree(tmp_path / "missing", tmp_path / "partial")
    assert not (tmp_path / "partial").exists()
