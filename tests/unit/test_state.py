"""Root-owned state: work dirs made exclusively or lstat-checked, symlinks never followed,
locks 0600 with a one-line conflict, atomic cache writes, and what the reaper calls vmvc's.

Real files, real flock, real /run/vmvc (vmvc runs as root; so do these tests).
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
from rich.console import Console

from vmvc.agent.protocol import MAX_LINE_BYTES, LineLog
from vmvc.backends.base import Leftover
from vmvc.backends.container_labels import (
    LABEL,
    LABEL_CONTROLLER,
    LABEL_RUN,
    owned_leftover,
    owner_labels,
)
from vmvc.backends.libvirt_engine.backend import owner_from_metadata
from vmvc.backends.libvirt_engine.deadline import LibvirtTimeout, with_deadline
from vmvc.backends.libvirt_engine.domain_xml import DomainSpec, domain_xml
from vmvc.cleanup import CleanRefused, clean_leftovers, remove_dead
from vmvc.image.build import debootstrap_argv
from vmvc.image.mirror import ARCHIVE_KEYRING
from vmvc.image.recipe import make_recipe
from vmvc.liveness import (
    RunLockError,
    controller_id,
    hold_run_lock,
    is_alive,
    live_run_ids,
)
from vmvc.paths import (
    UnsafePathError,
    atomic_write_text,
    copy_new,
    make_dirs,
    make_run_dir,
    run_workdir,
    state_dir,
    touch_new,
)

NOBODY = 65534
RUN_ID = "20260101T000000Z-5ec5a1"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="vmvc's state is root's")


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private work root for the test (VMVC_WORKDIR), below a root-only tmp dir."""
    root = tmp_path / "work"
    monkeypatch.setenv("VMVC_WORKDIR", str(root))
    return root


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    path = tmp_path / "canary"
    path.write_text("precious\n")
    return path


def unique_run(tag: str) -> str:
    return f"20260101T000000Z-{os.getpid() % 0xFFFF:04x}{tag}"


# -- work dirs -------------------------------------------------------------------------------


def test_run_dir_is_made_exclusively_with_a_search_only_parent(work: Path) -> None:
    made = make_run_dir(RUN_ID)
    assert made == run_workdir(RUN_ID)
    assert stat.S_IMODE(os.lstat(work).st_mode) == 0o711
    assert stat.S_IMODE(os.lstat(made).st_mode) == 0o711
    with pytest.raises(UnsafePathError, match="already exists"):
        make_run_dir(RUN_ID)  # a second run (or somebody else) never reuses it


def test_work_root_of_another_user_is_refused(work: Path) -> None:
    work.mkdir()
    os.chown(work, NOBODY, NOBODY)
    with pytest.raises(UnsafePathError, match="belongs to uid 65534"):
        make_run_dir(RUN_ID)
    assert list(work.iterdir()) == []


def test_work_root_writable_by_others_is_refused(work: Path) -> None:
    work.mkdir()
    os.chmod(work, 0o777)
    with pytest.raises(UnsafePathError, match="writable by others"):
        make_run_dir(RUN_ID)


def test_symlinked_work_root_is_never_followed(work: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    work.symlink_to(target)
    with pytest.raises(UnsafePathError, match="symlink"):
        make_run_dir(RUN_ID)
    assert list(target.iterdir()) == []


def test_planted_instance_dir_component_is_refused(work: Path, tmp_path: Path) -> None:
    run_dir = make_run_dir(RUN_ID)
    target = tmp_path / "elsewhere"
    target.mkdir()
    (run_dir / "vm").symlink_to(target)
    with pytest.raises(UnsafePathError, match="symlink"):
        make_dirs(run_dir / "vm" / "inner")
    assert list(target.iterdir()) == []


def test_files_are_created_fresh_never_through_a_symlink(work: Path, canary: Path) -> None:
    run_dir = make_run_dir(RUN_ID)
    (run_dir / "data.raw").symlink_to(canary)
    (run_dir / "vmlinuz").symlink_to(canary)
    with pytest.raises(UnsafePathError, match="exists already"):
        touch_new(run_dir / "data.raw")
    with pytest.raises(UnsafePathError, match="exists already"):
        copy_new(Path("/etc/hostname"), run_dir / "vmlinuz")
    assert canary.read_text() == "precious\n"
    copied = copy_new(Path("/etc/hostname"), run_dir / "kernel")
    assert copied.read_bytes() == Path("/etc/hostname").read_bytes()


def test_atomic_write_replaces_a_planted_symlink_instead_of_writing_through_it(
    tmp_path: Path, canary: Path
) -> None:
    cached = tmp_path / "accel.json"
    cached.symlink_to(canary)
    atomic_write_text(cached, '{"ok": true}')
    assert not cached.is_symlink() and cached.read_text() == '{"ok": true}'
    assert canary.read_text() == "precious\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_run_ids_that_climb_out_are_not_path_components() -> None:
    for hostile in ("x/../../../etc", "..", "a/b", "", ".hidden"):
        with pytest.raises(UnsafePathError):
            run_workdir(hostile)


# -- locks -----------------------------------------------------------------------------------


def test_lock_is_0600_in_a_root_only_dir_and_conflicts_in_one_line() -> None:
    run_id = unique_run("a")
    with hold_run_lock(run_id):
        lock = state_dir() / f"{run_id}.lock"
        assert stat.S_IMODE(os.lstat(lock).st_mode) == 0o600
        assert stat.S_IMODE(os.lstat(state_dir()).st_mode) == 0o700
        assert os.lstat(state_dir()).st_uid == 0
        assert is_alive(run_id) and run_id in live_run_ids()
        with pytest.raises(RunLockError) as caught, hold_run_lock(run_id):
            pass
        message = str(caught.value)
        assert message == f"run {run_id} is already running (pid {os.getpid()})"
        assert "\n" not in message
    assert not is_alive(run_id) and not lock.exists()


def test_a_lock_file_made_0644_by_an_older_vmvc_becomes_0600() -> None:
    run_id = unique_run("b")
    lock = state_dir() / f"{run_id}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("1\n")
    os.chmod(lock, 0o644)
    with hold_run_lock(run_id):
        assert stat.S_IMODE(os.lstat(lock).st_mode) == 0o600


def test_a_symlinked_lock_is_never_followed(canary: Path) -> None:
    run_id = unique_run("c")
    lock = state_dir() / f"{run_id}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.symlink_to(canary)
    try:
        with pytest.raises(OSError), hold_run_lock(run_id):
            pass
        assert is_alive(run_id)  # cannot tell: never called dead
        assert canary.read_text() == "precious\n"
    finally:
        lock.unlink()


def test_clean_cache_is_refused_while_a_run_is_live() -> None:
    with hold_run_lock(unique_run("d")), pytest.raises(CleanRefused, match="--cache refused"):
        clean_leftovers(Console(quiet=True), dry_run=True, cache=True)


# -- what the reaper calls vmvc's -------------------------------------------------------------


def test_docker_identity_needs_run_id_and_controller_labels() -> None:
    def item(labels: dict[str, str]) -> Leftover | None:
        return owned_leftover("container", "vmvc-x", labels, set(), remove=lambda: None)

    # An image's `vmvc` label is inherited by any container made from it: not enough.
    assert item({LABEL: "1"}) is None
    assert item({LABEL: "1", LABEL_RUN: RUN_ID}) is None
    assert item({LABEL_RUN: "../etc", LABEL_CONTROLLER: controller_id()}) is None
    ours = item(owner_labels(RUN_ID))
    assert ours is not None and ours.run_id == RUN_ID and ours.owner == ""
    theirs = item({**owner_labels(RUN_ID), LABEL_CONTROLLER: "0" * 16})
    assert theirs is not None and theirs.owner.startswith("controller ")


def test_libvirt_identity_needs_vmvc_metadata_with_a_controller() -> None:
    xml = domain_xml(DomainSpec("vmvc-x", RUN_ID, 1, "qemu", 1, 64, Path("/k"), Path("/i"), "", []))
    element = xml.split("<metadata>", 1)[1].split("</metadata>", 1)[0].strip()
    assert owner_from_metadata(element) == (RUN_ID, controller_id())
    assert owner_from_metadata(f'<instance xmlns="urn:vmvc:instance:1" run-id="{RUN_ID}"/>') is None
    assert owner_from_metadata("not xml") is None
    hostile = f'<i run-id="../x" controller="{controller_id()}"/>'
    assert owner_from_metadata(hostile) is None


def test_controller_id_is_stable_and_reveals_nothing() -> None:
    assert controller_id() == controller_id()
    assert len(controller_id()) == 16 and int(controller_id(), 16) >= 0
    machine = Path("/etc/machine-id")
    if machine.exists():
        assert machine.read_text().strip()[:16] != controller_id()


def test_liveness_is_asked_again_right_before_each_removal() -> None:
    removed: list[str] = []
    items = [
        Leftover("container", "a", "run-a", False, remove=lambda: removed.append("a")),
        Leftover("container", "b", "run-b", False, remove=lambda: removed.append("b")),
        Leftover("domain", "c", "run-c", True, remove=lambda: removed.append("c")),
        Leftover("domain", "d", "run-d", False, lambda: removed.append("d"), owner="controller x"),
    ]
    console = Console(quiet=True)
    # run-b started (or was resumed) between listing and removal: it must survive.
    assert remove_dead(console, items, dry_run=False, still_alive=lambda r: r == "run-b") == 0
    assert removed == ["a"]


# -- bounded waits ---------------------------------------------------------------------------


def test_a_call_that_never_returns_fails_at_its_deadline() -> None:
    never = threading.Event()
    with pytest.raises(LibvirtTimeout, match="did not answer createXML within 1 s"):
        with_deadline(lambda: never.wait(60), 1, "createXML")
    assert with_deadline(lambda: 42, 1, "getVersion") == 42
    with pytest.raises(ValueError):
        with_deadline(lambda: int("x"), 1, "parse")


# -- image build and logs --------------------------------------------------------------------


def test_debootstrap_forces_signature_checks_against_the_archive_keyring() -> None:
    argv = [str(a) for a in debootstrap_argv(make_recipe("bookworm", []), "http://m/d", Path("r"))]
    assert "--force-check-gpg" in argv
    assert f"--keyring={ARCHIVE_KEYRING}" in argv
    assert "--no-check-gpg" not in argv
    assert ARCHIVE_KEYRING.is_file() and ARCHIVE_KEYRING.stat().st_size > 1000


def test_a_line_without_newline_does_not_grow_without_bound() -> None:
    log = LineLog()
    for _ in range(40):
        log.feed(b"x" * 65536)
    assert len(log) >= 39
    assert all(len(line) <= MAX_LINE_BYTES for line in log.tail(100))
    assert len(log._partial) <= MAX_LINE_BYTES


def test_clean_takes_only_run_directories_from_the_work_root(work: Path) -> None:
    """A vmvc-something that is not vmvc-<run id> (a benchmark script's output, a user's
    directory) is nobody's dead run: `vmvc clean` leaves it alone."""
    from vmvc.cleanup import _workdirs

    run = make_run_dir("20260101T000000Z-abc123")
    other = work / "vmvc-default-ax6ajy54"
    other.mkdir()
    found = _workdirs(set())
    assert [(item.name, item.run_id) for item in found] == [(str(run), "20260101T000000Z-abc123")]
