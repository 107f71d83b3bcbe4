"""Benchmarking a remote host for real: this machine, reached over SSH on loopback.

A throwaway sshd (its own host key, one authorised client key, bound to 127.0.0.1 on a free
port) makes "localhost as a remote host": libvirt connects with qemu+ssh://, docker with
ssh://, both through the system `ssh` client exactly as they would to another machine.

How the ssh client gets the key and port: libvirt takes them from the URI (keyfile=, port),
but docker-py's ssh:// transport runs plain `ssh -l USER -p PORT -- HOST docker system
dial-stdio` and ssh reads its configuration from the passwd home directory (it ignores
$HOME), so the test puts a two-line `ssh` wrapper first on PATH that adds `-F <test config>`.
That config also keeps known_hosts in the temp dir (nothing is written to ~/.ssh) and shares
one connection between sessions (ControlMaster), as the docs recommend for remote hosts.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import libvirt
import pytest
from rich.console import Console

from vmvc.backends.container_labels import owner_labels
from vmvc.backends.docker import DockerBackend
from vmvc.backends.docker_engine.images import ship_image
from vmvc.backends.libvirt import LibvirtBackend
from vmvc.backends.libvirt_engine.pool import (
    POOL_NAME,
    delete_volume,
    ensure_pool,
    find_pool,
    find_volume,
    remove_pool,
    volume_xml,
)
from vmvc.cleanup import remove_dead
from vmvc.config import load_config

from .conftest import leftovers_of, load_json, run_vmvc

HOST = "loop"
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SSH = shutil.which("ssh") or "/usr/bin/ssh"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not Path(SSHD).exists() or shutil.which("ssh-keygen") is None,
    reason="needs root and openssh-server/openssh-client (make setup installs them)",
)


@dataclass
class Loopback:
    port: int
    key: Path
    ssh_config: Path
    bin_dir: Path

    @property
    def libvirt_uri(self) -> str:
        return f"qemu+ssh://root@127.0.0.1:{self.port}/system?keyfile={self.key}&no_tty=1"

    @property
    def docker_host(self) -> str:
        return f"ssh://root@127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {"PATH": f"{self.bin_dir}{os.pathsep}{os.environ['PATH']}"}

    def config(self, directory: Path, extra: str = "") -> Path:
        path = directory / "remote.toml"
        path.write_text(
            f"""accel = "tcg"
[run]
repetitions = 1
max_repetitions = 1
warmups = 0
[workload.cpu]
seconds = 1
{extra}
[[hosts]]
name = "{HOST}"
libvirt_uri = "{self.libvirt_uri}"
docker_host = "{self.docker_host}"
"""
        )
        return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vmvc-test", "-f", str(path)],
        check=True,
        timeout=30,
    )


@pytest.fixture(scope="module")
def loopback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loopback]:
    directory = tmp_path_factory.mktemp("ssh")
    _keygen(directory / "host_key")
    _keygen(directory / "client_key")
    shutil.copyfile(directory / "client_key.pub", directory / "authorized_keys")
    port = _free_port()
    (directory / "sshd_config").write_text(
        f"""Port {port}
ListenAddress 127.0.0.1
HostKey {directory / "host_key"}
PidFile {directory / "sshd.pid"}
AuthorizedKeysFile {directory / "authorized_keys"}
PermitRootLogin prohibit-password
AllowUsers root
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 50
"""
    )
    ssh_config = directory / "ssh_config"
    ssh_config.write_text(
        f"""Host 127.0.0.1
  Port {port}
  User root
  IdentityFile {directory / "client_key"}
  IdentitiesOnly yes
  UserKnownHostsFile {directory / "known_hosts"}
  StrictHostKeyChecking accept-new
  BatchMode yes
  ControlMaster auto
  ControlPath {directory / "cm-%C"}
  ControlPersist 60
"""
    )
    bin_dir = directory / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "ssh"
    wrapper.write_text(
        f'#!/bin/sh\nexec {shlex.quote(SSH)} -F {shlex.quote(str(ssh_config))} "$@"\n'
    )
    wrapper.chmod(0o755)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    log = open(directory / "sshd.log", "wb")  # noqa: SIM115 (closed in finally)
    sshd = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(directory / "sshd_config")],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    loop = Loopback(port, directory / "client_key", ssh_config, bin_dir)
    try:
        deadline = time.monotonic() + 20
        while True:
            done = subprocess.run(
                [str(wrapper), "127.0.0.1", "true"],
                capture_output=True,
                timeout=20,
                stdin=subprocess.DEVNULL,
            )
            if done.returncode == 0:
                break
            if sshd.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"loopback sshd did not accept the key: {done.stderr.decode()[-300:]} "
                    f"{(directory / 'sshd.log').read_text()[-500:]}"
                )
            time.sleep(0.2)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PATH", loop.env["PATH"])  # for this process's docker/libvirt clients
            yield loop
    finally:
        subprocess.run(
            [str(wrapper), "-O", "exit", "127.0.0.1"],
            capture_output=True,
            timeout=20,
            stdin=subprocess.DEVNULL,
        )
        sshd.terminate()
        try:
            sshd.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sshd.kill()
            sshd.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def pool_owner() -> Iterator[None]:
    """Remove the `vmvc` pool at the end if this test module created it (a fresh CI machine),
    keep it (a developer's cache of shipped images) if it was there before."""
    conn = libvirt.open("qemu:///system")
    existed = find_pool(conn) is not None
    try:
        yield
    finally:
        if not existed:
            remove_pool(conn)
        conn.close()


def _remote_side_of(run_id: str) -> list[str]:
    """What the run may have created through the engines: domains, pool volumes, containers,
    docker volumes (the "remote" host is this one, so the local engines see it all)."""
    found = leftovers_of(run_id)
    conn = libvirt.open("qemu:///system")
    try:
        pool = find_pool(conn)
        if pool is not None and pool.isActive():
            pool.refresh(0)
            found += [f"volume {v}" for v in pool.listVolumes() if run_id in v]
        found += [f"domain {d.name()}" for d in conn.listAllDomains() if run_id in d.name()]
    finally:
        conn.close()
    client = docker.from_env()
    try:
        found += [
            f"docker volume {v.name}"
            for v in client.volumes.list(filters={"label": f"vmvc.run-id={run_id}"})
        ]
        found += [
            f"container {c.name}"
            for c in client.containers.list(all=True, filters={"label": f"vmvc.run-id={run_id}"})
        ]
    finally:
        client.close()
    return sorted(set(found))


def test_bench_runs_on_a_remote_host_beside_the_local_one(
    loopback: Loopback, pool_owner: None, tmp_path: Path
) -> None:
    config = loopback.config(tmp_path)
    output = tmp_path / "results"
    done = run_vmvc(
        "bench",
        "--config", str(config),
        "--host", "local",
        "--host", HOST,
        "--backend", "docker",
        "--backend", "libvirt",
        "--workload", "startup",
        "--workload", "cpu",
        "--workload", "footprint",
        "-n", "1",
        "--plain",
        "--output", str(output),
        timeout=600,
        env=loopback.env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (result,) = output.glob("*.json")
    doc = load_json(result)
    run_id = doc["run_id"]

    measured = {(s["host"], s["backend"], s["workload"], s["metric"]) for s in doc["samples"]}
    for host in ("local", HOST):
        for backend in ("docker", "libvirt"):
            assert (host, backend, "startup", "total_s") in measured, (host, backend)
            assert (host, backend, "cpu", "events_per_s") in measured, (host, backend)
            assert (host, backend, "footprint", "total_mib") in measured, (host, backend)
    remote_footprints = [
        s["value"]
        for s in doc["samples"]
        if s["host"] == HOST and s["workload"] == "footprint" and s["metric"] == "total_mib"
    ]
    assert all(value > 0 for value in remote_footprints)
    assert all(t["status"] == "ok" for t in doc["trials"]), doc["errors"]
    assert {i["host"] for i in doc["instances"]} == {"local", HOST}
    assert {i["image_id"] for i in doc["instances"]} == {doc["image"]["id"]}

    environment = doc["environment"]
    assert environment["benchmarked_hosts"] == ["local", HOST]
    remote = environment["hosts"][HOST]
    assert remote["accel"] == "tcg"
    assert remote["backends"] == ["docker", "libvirt"]
    assert remote["prepared"]["docker"]["same_image_id_as_local"] is True
    assert remote["prepared"]["libvirt"]["pool"] == POOL_NAME
    assert remote["libvirt_uri"] == loopback.libvirt_uri

    assert _remote_side_of(run_id) == []


def test_docker_image_is_shipped_with_save_and_load_over_ssh(loopback: Loopback) -> None:
    """The bench above finds the image already there (same engine): ship a tiny image
    that the "remote" engine does not have, from a saved stream, through ssh://."""
    local = docker.from_env()
    remote = docker.DockerClient(base_url=loopback.docker_host, use_ssh_client=True)
    tag = f"vmvc-shiptest-{secrets.token_hex(4)}:1"
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as archive:
        content = b"shipped\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(content)
        archive.addfile(info, io.BytesIO(content))
    repository, version = tag.split(":")
    try:
        local.api.import_image_from_data(
            payload.getvalue(), repository=repository, tag=version, changes=["LABEL vmvc=1"]
        )
        saved = b"".join(local.images.get(tag).save(named=tag))
        local.images.remove(tag, force=True)
        messages: list[str] = []
        first = ship_image(remote, tag, lambda: iter([saved]), messages.append)
        again = ship_image(remote, tag, lambda: iter([saved]), messages.append)
        assert first["shipped"] is True and again["shipped"] is False
        assert first["docker_image"] == again["docker_image"]
        assert len(messages) == 1 and "docker save | docker load" in messages[0]
        assert local.images.get(tag).labels.get("vmvc") == "1"
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            local.images.remove(tag, force=True)
        remote.close()
        local.close()


def test_doctor_checks_the_remote_host(loopback: Loopback, tmp_path: Path) -> None:
    done = run_vmvc(
        "doctor",
        "--host",
        HOST,
        "--config",
        str(loopback.config(tmp_path)),
        "--no-probe",
        timeout=120,
        env={**loopback.env, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for check in ("backend docker", "docker image", "backend libvirt", "storage pool", "KVM"):
        assert check in done.stdout
    assert "host tools" not in done.stdout  # this machine's own checks are not that host's
    assert "dockerd" in done.stdout and "QEMU" in done.stdout


def test_unreachable_host_fails_before_anything_is_built(tmp_path: Path) -> None:
    closed = _free_port()
    config = tmp_path / "dead.toml"
    config.write_text(
        f"""[[hosts]]
name = "dead"
libvirt_uri = "qemu+ssh://root@127.0.0.1:{closed}/system?no_tty=1"
docker_host = "ssh://root@127.0.0.1:{closed}"
"""
    )
    started = time.monotonic()
    done = run_vmvc(
        "bench", "--config", str(config), "--host", "dead", "--plain",
        "--output", str(tmp_path / "out"), timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "host dead" in done.stderr and "no backend is available" in done.stderr
    assert time.monotonic() - started < 60
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.json"))


def test_clean_finds_and_removes_what_a_dead_run_left_there(
    loopback: Loopback, pool_owner: None, tmp_path: Path
) -> None:
    dead = "20000101T000000Z-dead00"  # a run id without a live lock: a dead run
    volume = f"vmvc-{dead}-libvirt-1-data.raw"
    docker_volume = f"vmvc-{dead}-docker-1-data"
    config_path = loopback.config(tmp_path)
    config = load_config(None, config_path)
    host = config.hosts[0]
    conn = libvirt.open(loopback.libvirt_uri)
    pool = ensure_pool(conn)
    client = docker.DockerClient(base_url=loopback.docker_host, use_ssh_client=True)
    backends = [DockerBackend(config, host), LibvirtBackend(config, host)]
    try:
        pool.createXML(volume_xml(volume, 1 << 20, "raw"), 0)
        # vmvc's by its labels: run id and this controller (a `vmvc` label alone is not).
        client.volumes.create(name=docker_volume, labels=owner_labels(dead))
        done = run_vmvc(
            "clean", "--host", HOST, "--config", str(config_path), "--dry-run",
            timeout=120, env={**loopback.env, "COLUMNS": "250"},
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"would remove volume {volume} (run {dead})" in done.stdout
        assert f"would remove docker volume {docker_volume} (run {dead})" in done.stdout
        # Remove only these two: on a shared development host other dead runs' leftovers
        # are not this test's to delete (`vmvc clean --host` would).
        ours = [i for b in backends for i in b.leftovers(set()) if i.run_id == dead]
        assert sorted(i.kind for i in ours) == ["docker volume", "volume"]
        assert remove_dead(Console(file=io.StringIO()), ours, dry_run=False) == 0
        assert find_volume(pool, volume) is None
        assert not client.volumes.list(filters={"label": f"vmvc.run-id={dead}"})
    finally:
        delete_volume(pool, volume)
        with contextlib.suppress(docker.errors.NotFound):
            client.volumes.get(docker_volume).remove(force=True)
        for backend in backends:
            backend.close()
        client.close()
        conn.close()
