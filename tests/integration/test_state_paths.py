"""Root-owned state and bounded waits, for real: hostile work roots and planted symlinks are
refused in one line with a canary untouched; the native baseline runs in its own namespaces;
a daemon that accepts and never answers is named by `vmvc doctor` within seconds; a failing
tar never becomes a docker image."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import psutil
import pytest

from vmvc.backends.base import InstanceSpec
from vmvc.backends.docker_engine.backend import stream_import
from vmvc.backends.libvirt_engine.backend import VmAssets
from vmvc.backends.native import NativeBackend
from vmvc.config import Config
from vmvc.image.build import Artefacts
from vmvc.paths import UnsafePathError, make_run_dir, remove_tree

from .conftest import run_vmvc

NOBODY = 65534


def _run_id() -> str:
    return f"20260101T000000Z-{secrets.token_hex(3)}"


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    directory = tmp_path / "canary"
    directory.mkdir()
    (directory / "keep").write_text("precious\n")
    return directory


def _hostile_root(kind: str, tmp_path: Path, canary: Path) -> Path:
    root = tmp_path / "work"
    if kind == "other-uid":
        root.mkdir()
        os.chown(root, NOBODY, NOBODY)
    elif kind == "symlink":
        root.symlink_to(canary)
    elif kind == "world-writable":
        root.mkdir()
        os.chmod(root, 0o777)
    return root


@pytest.mark.parametrize("kind", ["other-uid", "symlink", "world-writable"])
def test_bench_refuses_a_work_root_it_does_not_control(
    kind: str, tmp_path: Path, canary: Path, artefacts: Artefacts
) -> None:
    root = _hostile_root(kind, tmp_path, canary)
    output = tmp_path / "out"
    result = run_vmvc(
        *("bench", "--backend", "native", "--workload", "cpu", "-n", "1", "--plain"),
        *("--accel", "tcg", "--output", str(output)),
        env={"VMVC_WORKDIR": str(root), "COLUMNS": "400"},
        timeout=600,
    )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(root) in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not output.exists() or list(output.iterdir()) == []  # no half-started result
    assert [p.name for p in canary.iterdir()] == ["keep"]
    assert (canary / "keep").read_text() == "precious\n"
    if kind == "other-uid":
        assert list(root.iterdir()) == []


def test_a_planted_data_disk_symlink_is_refused_and_its_target_untouched(
    artefacts: Artefacts, tmp_path: Path
) -> None:
    canary = tmp_path / "disk"
    canary.write_bytes(b"not a filesystem\n" * 64)
    run_id = _run_id()
    run_dir = make_run_dir(run_id)
    try:
        workdir = run_dir / f"vmvc-{run_id}-libvirt-1"
        workdir.mkdir()
        (workdir / "data.raw").symlink_to(canary)  # mke2fs -F would format the target
        spec = InstanceSpec(run_id=run_id, name=f"vmvc-{run_id}-libvirt-1", workdir=workdir)
        with pytest.raises(UnsafePathError, match=r"data\.raw exists already"):
            VmAssets(artefacts, spec)
        assert canary.read_bytes() == b"not a filesystem\n" * 64
    finally:
        remove_tree(run_dir)


@pytest.fixture
def native_instance(small_config: Config, artefacts: Artefacts) -> Iterator[object]:
    backend = NativeBackend(small_config)
    run_id = _run_id()
    make_run_dir(run_id)
    from vmvc.paths import run_workdir

    spec = InstanceSpec(
        run_id=run_id, name=f"vmvc-{run_id}-native-1", workdir=run_workdir(run_id) / "n"
    )
    try:
        with backend.provision(artefacts, spec) as instance:
            instance.wait_ready(60)
            yield instance
    finally:
        remove_tree(run_workdir(run_id))


def test_native_runs_in_its_own_pid_ipc_uts_namespaces(native_instance: object) -> None:
    process = native_instance.process  # type: ignore[attr-defined]
    [agent, *_] = [
        p for p in psutil.Process(process.pid).children(recursive=True) if p.name() != "unshare"
    ]

    def ns(pid: int | str, kind: str) -> str:
        return os.readlink(f"/proc/{pid}/ns/{kind}")

    for kind in ("pid", "ipc", "uts", "mnt"):
        assert ns(agent.pid, kind) != ns("self", kind), kind
    assert ns(agent.pid, "net") == ns("self", "net")  # native is the host: same network
    mounts = Path(f"/proc/{agent.pid}/mountinfo").read_text().splitlines()
    sysfs = [m for m in mounts if " - sysfs " in m]
    assert sysfs and all(
        " ro," in f" {m.split()[5]}," or m.split()[5].startswith("ro") for m in sysfs
    )
    assert not any(" /dev " in m and "devtmpfs" in m for m in mounts)  # no host /dev

    facts = dict(
        line.split("=", 1)
        for line in native_instance.run("facts", [], 60)  # type: ignore[attr-defined]
        if "=" in line
    )
    assert int(facts["processes_visible"]) < 10  # its own /proc: no host processes
    assert int(facts["devices_visible"]) <= 12  # null zero full random urandom tty + links
    # Same CPUs and memory as the host: what the baseline measures is unchanged.
    assert int(facts["cpus_online"]) == os.cpu_count()
    assert facts["mem_total_kib"] == str(psutil.virtual_memory().total // 1024)


def _silent_listener(path: Path) -> threading.Thread:
    """A unix socket that accepts every connection and never answers (a hung daemon)."""
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(16)
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            held.append(server.accept()[0])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_doctor_names_a_hung_daemon_within_seconds(tmp_path: Path) -> None:
    # The URI allow-list takes a libvirt socket only under /run/libvirt (vmvc.uris).
    libvirt_sock = Path(f"/run/libvirt/vmvc-test-hung-{secrets.token_hex(4)}.sock")
    _silent_listener(libvirt_sock)
    _silent_listener(tmp_path / "docker.sock")
    config = tmp_path / "hung.toml"
    config.write_text(f'libvirt_uri = "qemu+unix:///system?socket={libvirt_sock}"\n')
    started = time.monotonic()
    try:
        result = run_vmvc(
            "doctor",
            "--no-probe",
            "--config",
            str(config),
            env={"DOCKER_HOST": f"unix://{tmp_path}/docker.sock", "COLUMNS": "400"},
            timeout=120,
        )
    finally:
        libvirt_sock.unlink(missing_ok=True)
    took = time.monotonic() - started
    assert result.returncode == 1, result.stdout + result.stderr
    assert took < 30, f"doctor took {took:.1f} s against a hung daemon"
    lines = result.stdout.splitlines()
    assert any(
        "backend docker" in line and "dockerd does not answer within" in line for line in lines
    )
    assert any("backend libvirt" in line and "libvirtd did not answer" in line for line in lines), (
        result.stdout
    )


def test_a_failing_tar_never_becomes_an_image() -> None:
    client = docker.from_env(timeout=60)
    reference = f"vmvc-tar-test:{secrets.token_hex(4)}"
    try:
        # A valid tar stream from a tar that then fails: the import alone would accept it.
        argv = ["sh", "-c", "tar -C /etc -c hostname; exit 3"]
        with pytest.raises(RuntimeError, match=r"tar of the rootfs failed \(exit 3\)"):
            stream_import(client, argv, reference, ["LABEL vmvc=1"])
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get(reference)
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(reference, force=True)
        client.close()
