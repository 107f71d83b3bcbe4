"""Where vmvc keeps things outside the repository, and how it creates them safely as root.

vmvc runs as root, so every directory it writes into must be one nobody else can change:
the work root (/var/tmp/vmvc) and the run locks (/run/vmvc) are root-owned and not writable
by anyone else. A directory vmvc did not create itself in this call is trusted only after an
lstat check of every path component (a real directory, owned by root or by us, writable by
nobody else unless sticky). Files are created with O_EXCL | O_NOFOLLOW, so a symlink someone
planted is never followed. Once a chain of such directories is checked, nobody but root can
change it, so what was checked stays true while vmvc uses it.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

RESOURCE_PREFIX = "vmvc-"
# QEMU runs as an unprivileged user (libvirt-qemu here) and must reach the kernel, initrd and
# disks libvirt chowns to it: directories it walks through are search-only for others (0711),
# which lets it open a file it knows the name of but not list or create anything.
TRAVERSE_MODE = 0o711
PRIVATE_MODE = 0o700
STATE_ROOT = Path("/run/vmvc")  # fixed: which runs are alive must not depend on uid or env
# Names vmvc makes from a run id; nothing else may become a path component.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class UnsafePathError(Exception):
    """A path vmvc would write to is not under its control (one line, for `error:`)."""


def cache_dir() -> Path:
    """Built artefacts (rootfs, kernels, disks), keyed by recipe hash; never in the repo.

    As root the cache lives under /var/cache so that QEMU, which libvirt runs as an
    unprivileged user, can read the kernel and base disk (it cannot enter /root).
    """
    override = os.environ.get("VMVC_CACHE")
    if override:
        return Path(override)
    if os.geteuid() == 0:
        return Path("/var/cache/vmvc")
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) / "vmvc" if xdg else Path.home() / ".cache" / "vmvc"


def work_root() -> Path:
    """Parent of per-run work dirs (overlays, data disks, console logs).

    On the host's disk (not tmpfs) so that I/O workloads of every backend hit the same
    storage; root-owned 0711 so nobody else can create, rename or list anything in it.
    """
    override = os.environ.get("VMVC_WORKDIR")
    return Path(override) if override else Path("/var/tmp/vmvc")


def run_workdir(run_id: str) -> Path:
    return work_root() / f"{RESOURCE_PREFIX}{safe_name(run_id)}"


def state_dir() -> Path:
    """Per-run lock files that say which runs are alive (for leftover detection)."""
    return STATE_ROOT / "runs"


def safe_name(name: str) -> str:
    """A run id or instance name as a single, harmless path component."""
    if not SAFE_NAME.match(name):
        raise UnsafePathError(f"'{name[:60]}' is not a valid vmvc name")
    return name


def _trusted_owner(uid: int) -> bool:
    return uid in (0, os.geteuid())


def check_trusted_dir(path: Path, *, allow_sticky: bool = False) -> None:
    """`path` is a real directory (not a symlink) that only root (or we) can change."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise UnsafePathError(f"{path} does not exist") from None
    if stat.S_ISLNK(info.st_mode):
        raise UnsafePathError(f"{path} is a symlink; vmvc never follows one it did not make")
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafePathError(f"{path} is not a directory")
    if not _trusted_owner(info.st_uid):
        raise UnsafePathError(f"{path} belongs to uid {info.st_uid}, not root; refusing to use it")
    writable_by_others = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if writable_by_others and not (allow_sticky and info.st_mode & stat.S_ISVTX):
        raise UnsafePathError(
            f"{path} is writable by others (mode {stat.S_IMODE(info.st_mode):o}); refusing it"
        )


def check_ancestors(path: Path) -> None:
    """Every directory above `path` (from /) is trusted; world-writable sticky dirs such as
    /var/tmp are fine as ancestors: others cannot rename or replace what root made there."""
    absolute = Path(os.path.abspath(path))
    for parent in reversed(absolute.parents):
        check_trusted_dir(parent, allow_sticky=True)


def _make_or_check(path: Path, mode: int) -> None:
    """Create `path` (exclusively) or, if it exists, accept it only after the lstat check."""
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        check_trusted_dir(path)
        return
    os.chmod(path, mode)  # mkdir's mode is filtered by the umask


def ensure_work_root() -> Path:
    root = work_root()
    check_ancestors(root)
    _make_or_check(root, TRAVERSE_MODE)
    return root


def make_run_dir(run_id: str) -> Path:
    """The run's work dir, created now and exclusively: one that exists already was made by
    a run that is not cleaned up, or by somebody else; either way vmvc does not reuse it."""
    ensure_work_root()
    path = run_workdir(run_id)
    try:
        os.mkdir(path, TRAVERSE_MODE)
    except FileExistsError:
        raise UnsafePathError(
            f"work dir {path} already exists (left by a dead run? `vmvc clean` removes it)"
        ) from None
    os.chmod(path, TRAVERSE_MODE)
    return path


def check_run_dir_possible(run_id: str) -> None:
    """Before anything of a run is written: its work dir can be made (trusted work root, no
    dir of that name yet), so a refusal leaves no half-started result behind."""
    ensure_work_root()
    path = run_workdir(run_id)
    if os.path.lexists(path):
        raise UnsafePathError(
            f"work dir {path} already exists (left by a dead run? `vmvc clean` removes it)"
        )


def make_dirs(path: Path, mode: int = TRAVERSE_MODE) -> Path:
    """`path` and its missing parents below the work root, each made exclusively or checked.

    For paths outside the work root (a test's temporary dir) the same checks apply from /.
    """
    absolute = Path(os.path.abspath(path))
    root = Path(os.path.abspath(work_root()))
    if absolute == root or root in absolute.parents:
        ensure_work_root()
        chain = [p for p in reversed(absolute.parents) if root in p.parents] + [absolute]
    else:
        check_ancestors(absolute.parent)
        chain = [absolute]
    for directory in chain:
        # Parents are search-only for others (QEMU walks through them); `mode` is for `path`.
        _make_or_check(directory, mode if directory == absolute else TRAVERSE_MODE)
    return absolute


def create_new_file(path: Path, mode: int = 0o600) -> int:
    """Open a file that must not exist yet; a planted file or symlink makes this fail."""
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    except FileExistsError:
        raise UnsafePathError(f"{path} exists already; vmvc creates it fresh") from None


def touch_new(path: Path, mode: int = 0o600) -> Path:
    os.close(create_new_file(path, mode))
    return path


def copy_new(source: Path, target: Path, mode: int = 0o644) -> Path:
    """copyfile that never follows a symlink at `target` (shutil.copyfile would)."""
    fd = create_new_file(target, mode)
    with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    return target


def atomic_write_text(path: Path, text: str, mode: int = 0o644) -> None:
    """Readers see the old content or the new one, never half a file (tempfile + replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def remove_tree(path: Path) -> None:
    """rmtree of a dir vmvc made, after checking it is still a real root-owned directory
    (shutil.rmtree itself does not follow symlinks inside it)."""
    try:
        check_trusted_dir(path)
    except UnsafePathError:
        if not os.path.lexists(path):
            return
        raise
    shutil.rmtree(path, ignore_errors=True)
