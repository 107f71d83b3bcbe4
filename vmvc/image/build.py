"""Build the one workload image and the file artefacts every backend derives from it.

Cache layout (outside the repo, see vmvc.paths.cache_dir):
  bases/<base_key>/rootfs       debootstrap output (reused while suite and packages are unchanged)
  kernels/<kernel key>/         vmlinuz + initrd.img (Debian's kernel, our tiny initramfs with
                                the guest init): the VM's boot files, shared by every image
  images/<image_id>/rootfs      the workload tree: base + agent + /etc/vmvc/image-id
  images/<image_id>/vm/         base.raw (read-only ext4 of rootfs)
  images/<image_id>/manifest.json
  bases/<system_base_key>/rootfs  debootstrap output with the init system's packages as well
  systems/<system_id>/rootfs    the system tree: that base + agent + the same image-id file
                                + vmvc-agent.service and masks (vmvc.image.system)
  systems/<system_id>/vm/       base.raw of the system tree (root disk of the full VM flavour)
  systems/<system_id>/manifest.json
The rootfs, the system base and the kernel bundle do not depend on each other, so a cold
build fetches and unpacks the kernel and debootstraps both bases at once. Everything is
built in a temporary sibling and renamed into place, so an interrupted build never leaves a
half-made artefact that a later run would trust.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import gzip
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from vmvc.image.mirror import ARCHIVE_KEYRING, find_mirror
from vmvc.image.recipe import (
    KernelRecipe,
    Recipe,
    agent_files,
    initramfs_files,
    make_recipe,
)
from vmvc.image.system import install_system
from vmvc.image.tools import install_tools
from vmvc.image.vmboot import BOOT, FLAVOURS
from vmvc.paths import cache_dir
from vmvc.proc import ToolError, run

Progress = Callable[[str], None]

# Trimmed from the rootfs: nothing a workload reads, and it makes every form smaller.
TRIM_PATHS = (
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "var/cache/apt",
    "var/lib/apt/lists",
    "var/cache/debconf/templates.dat-old",
    "var/log",
)
BUSYBOX = Path("/bin/busybox")
BUSYBOX_APPLETS = (
    "sh", "mount", "umount", "insmod", "switch_root", "sleep", "cat", "echo", "stty", "cp",
    "mkdir",
)  # fmt: skip


@dataclass
class Artefacts:
    """The file forms of one image; backends derive their own form from these."""

    image_id: str
    root: Path
    recipe: dict[str, object] = field(default_factory=dict)
    build_seconds: float = 0.0
    cache_hit: bool = True
    boot_dir: Path | None = None  # the kernel bundle; None: the image dir's vm/ (old layout)
    vm_id: str = ""
    firmware: Path | None = None  # None: libvirt's default firmware (SeaBIOS)
    machine: str = "pc"
    cmdline: str = BOOT.cmdline
    # The VM flavour these artefacts boot as ("minimal": the image's own tree; "full": the
    # system tree, see flavoured()).
    flavour: str = "minimal"
    system_id: str = ""
    system_root: Path | None = None  # systems/<system_id>; None: not built
    flavours: dict[str, dict[str, str]] = field(default_factory=dict)  # vm_id, cmdline each
    image_root: Path | None = None  # images/<image_id> when `root` is another flavour's tree

    def flavoured(self, flavour: str) -> Artefacts:
        """These artefacts as VM flavour `flavour` boots them: for "full", the system tree's
        rootfs and root disk, its VM id and command line (same image id, kernel, firmware)."""
        if flavour == self.flavour:
            return self
        if flavour not in FLAVOURS or flavour not in self.flavours:
            raise ValueError(f"no VM flavour {flavour!r} in image {self.image_id}")
        image_root = self.image_root or self.root
        root = image_root if flavour == "minimal" else self.system_root
        if root is None:
            raise ValueError(f"image {self.image_id} has no system tree (flavour {flavour})")
        return dataclasses.replace(
            self,
            root=root,
            flavour=flavour,
            vm_id=self.flavours[flavour]["vm_id"],
            cmdline=self.flavours[flavour]["cmdline"],
            # a non-minimal root has no boot files of its own: keep the kernel bundle's
            boot_dir=self.boot_dir or image_root / "vm",
            image_root=image_root,
        )

    @property
    def rootfs(self) -> Path:
        return self.root / "rootfs"

    @property
    def system_rootfs(self) -> Path | None:
        """The system tree (the image's tree plus systemd and the agent's unit): what the
        full VM flavour and a system container boot; None where it was not built."""
        return self.system_root / "rootfs" if self.system_root else None

    @property
    def kernel(self) -> Path:
        return (self.boot_dir or self.root / "vm") / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return (self.boot_dir or self.root / "vm") / "initrd.img"

    @property
    def base_disk(self) -> Path:
        return self.root / "vm" / "base.raw"

    @property
    def docker_tag(self) -> str:
        return f"vmvc-workload:{self.image_id}"

    def describe(self) -> dict[str, object]:
        return {
            "id": self.image_id,
            "vm_id": self.vm_id,
            "recipe": self.recipe,
            "cache_dir": str(self.root),
            "base_disk_bytes": self.base_disk.stat().st_size if self.base_disk.exists() else None,
            "build_seconds": round(self.build_seconds, 3),
            "cache_hit": self.cache_hit,
            "system_id": self.system_id,
            "vm_flavours": self.flavours,
        }


class ImageBuildError(Exception):
    """The image could not be built; one line saying what failed."""


@contextlib.contextmanager
def _build_lock(root: Path) -> Iterator[None]:
    """One builder at a time per cache: a second `vmvc` waits instead of racing."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _staging(final: Path) -> Iterator[Path]:
    """A temporary sibling directory that becomes `final` only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.building-", dir=final.parent))
    try:
        yield staging
        os.chmod(staging, 0o755)
        staging.rename(final)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def debootstrap_argv(
    recipe: Recipe, mirror: str, rootfs: Path, packages: tuple[str, ...] | None = None
) -> list[str | Path]:
    """Release files must carry a good signature by the Debian archive keyring (no fallback
    to an unchecked download when the keyring or gpgv is missing). `packages`: the recipe's
    own unless given (the system base's)."""
    if not ARCHIVE_KEYRING.is_file():
        raise ImageBuildError(
            f"{ARCHIVE_KEYRING} is missing: apt-get install debian-archive-keyring "
            "(the image build checks the archive's signatures)"
        )
    return [
        "debootstrap",
        "--variant=minbase",
        "--force-check-gpg",
        f"--keyring={ARCHIVE_KEYRING}",
        f"--include={','.join(recipe.packages if packages is None else packages)}",
        recipe.suite,
        rootfs,
        mirror,
    ]


def _build_base_rootfs(
    recipe: Recipe,
    mirror: str,
    target: Path,
    timeout: float,
    packages: tuple[str, ...] | None = None,
) -> None:
    rootfs = target / "rootfs"
    run(debootstrap_argv(recipe, mirror, rootfs, packages), timeout=timeout, what="debootstrap")
    for relative in TRIM_PATHS:
        path = rootfs / relative
        if path.is_dir():
            for child in path.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()


def _build_kernel_bundle(kernel: KernelRecipe, target: Path, timeout: float) -> None:
    download = target / "download"
    download.mkdir()
    # apt drops privileges to _apt for downloads; let it write here.
    with contextlib.suppress(KeyError, PermissionError):
        shutil.chown(download, user="_apt")
    run(
        ["apt-get", "download", f"{kernel.package}={kernel.version}"],
        cwd=download,
        timeout=timeout,
        what="apt-get download (guest kernel)",
    )
    debs = list(download.glob("*.deb"))
    if not debs:
        raise ImageBuildError(f"apt-get download produced no .deb for {kernel.package}")
    extracted = target / "extracted"
    # Only the kernel and the module tree are needed, not the package's other files.
    run(["dpkg-deb", "-x", debs[0], extracted], timeout=timeout, what="dpkg-deb")
    vmlinuz = next((extracted / "boot").glob("vmlinuz-*"))
    shutil.copy2(vmlinuz, target / "vmlinuz")
    modules_root = next((extracted / "lib" / "modules").iterdir())
    _build_initramfs(modules_root, target / "initrd.img", timeout)
    shutil.rmtree(download)
    shutil.rmtree(extracted)
    for name in ("vmlinuz", "initrd.img"):
        os.chmod(target / name, 0o644)


def initramfs_modules(modules_root: Path, wanted: list[str]) -> list[Path]:
    """The .ko files of `wanted`, in order; a module built into this kernel (listed in
    modules.builtin) needs no file, a module that is neither is an error."""
    by_name = {p.stem: p for p in modules_root.rglob("*.ko")}
    builtin_file = modules_root / "modules.builtin"
    builtin = (
        {Path(line).stem for line in builtin_file.read_text().split()}
        if builtin_file.exists()
        else set()
    )
    found = []
    for name in wanted:
        if name in by_name:
            found.append(by_name[name])
        elif name not in builtin:
            raise ImageBuildError(f"guest kernel has no module {name}.ko and does not build it in")
    return found


def _build_initramfs(modules_root: Path, output: Path, timeout: float) -> None:
    if not BUSYBOX.exists():
        raise ImageBuildError("busybox-static is not installed (run `make setup`)")
    files = initramfs_files()
    with tempfile.TemporaryDirectory(prefix="vmvc-initramfs-") as tmp:
        tree = Path(tmp)
        for directory in ("bin", "dev", "proc", "newroot", "modules"):
            (tree / directory).mkdir()
        shutil.copy2(BUSYBOX, tree / "bin" / "busybox")
        for applet in BUSYBOX_APPLETS:
            (tree / "bin" / applet).symlink_to("busybox")
        for name in ("init", "guest-init"):
            (tree / name).write_bytes(files[name])
            os.chmod(tree / name, 0o755)
        (tree / "modules.order").write_bytes(files["modules.order"])
        for module in initramfs_modules(modules_root, files["modules.order"].decode().split()):
            shutil.copy2(module, tree / "modules" / module.name)
        listing = sorted(str(p.relative_to(tree)) for p in tree.rglob("*"))
        archive = run(
            ["cpio", "--quiet", "-o", "-H", "newc", "--owner", "0:0"],
            cwd=tree,
            input_bytes=("\n".join(listing) + "\n").encode(),
            timeout=timeout,
            what="cpio (initramfs)",
        ).stdout
    output.write_bytes(gzip.compress(archive, compresslevel=6))


def _install_agent(rootfs: Path, image_id: str) -> None:
    opt = rootfs / "opt" / "vmvc"
    opt.mkdir(parents=True, exist_ok=True)
    for name, content in agent_files().items():
        (opt / name).write_bytes(content)
        os.chmod(opt / name, 0o755)
    etc = rootfs / "etc" / "vmvc"
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "image-id").write_text(image_id + "\n")
    (rootfs / "data").mkdir(exist_ok=True)


def _tree_bytes(path: Path) -> int:
    total = 0
    for entry in path.rglob("*"):
        if entry.is_file() and not entry.is_symlink():
            total += entry.stat().st_size
    return total


def build_base_disk(rootfs: Path, disk: Path, timeout: float) -> None:
    # Room for inodes and journal on top of the content, rounded to whole MiB.
    size_mib = int(_tree_bytes(rootfs) * 1.25 / 2**20) + 128
    run(
        ["mke2fs", "-q", "-F", "-t", "ext4", "-L", "vmvc-root", "-d", rootfs, disk, f"{size_mib}M"],
        timeout=timeout,
        what="mke2fs (base disk)",
    )
    os.chmod(disk, 0o444)


def build_image(
    suite: str,
    packages: list[str],
    mirror: str | None = None,
    *,
    timeout: float = 1800,
    progress: Progress = lambda _msg: None,
    rebuild: bool = False,
) -> Artefacts:
    """Build (or find in the cache) the workload image; returns its file artefacts."""
    started = time.monotonic()
    try:
        recipe = make_recipe(suite, packages)
    except ToolError as exc:
        raise ImageBuildError(str(exc)) from None
    root = cache_dir()
    image_dir = root / "images" / recipe.image_id
    kernel_dir = root / "kernels" / recipe.kernel.key
    system_dir = root / "systems" / recipe.system_id
    with _build_lock(root):
        if rebuild:
            for stale in (image_dir, kernel_dir, system_dir):
                if stale.exists():
                    shutil.rmtree(stale)
        hit = all(
            path.exists()
            for path in (
                image_dir / "manifest.json",
                kernel_dir / "initrd.img",
                system_dir / "manifest.json",
            )
        )
        if not hit:
            try:
                _build_missing(recipe, root, image_dir, system_dir, mirror, timeout, progress)
            except ToolError as exc:
                raise ImageBuildError(str(exc)) from None
    elapsed = 0.0 if hit else time.monotonic() - started
    manifest = json.loads((image_dir / "manifest.json").read_text())
    boot = recipe.boot
    return Artefacts(
        recipe.image_id,
        image_dir,
        {**manifest["recipe"], **vm_recipe(recipe)},
        elapsed,
        hit,
        boot_dir=kernel_dir,
        vm_id=recipe.vm_id,
        firmware=boot.firmware_path,
        machine=boot.machine,
        cmdline=boot.cmdline,
        system_id=recipe.system_id,
        system_root=system_dir,
        flavours={
            flavour: {
                "vm_id": recipe.flavour_vm_id(flavour),
                "cmdline": recipe.flavour_cmdline(flavour),
            }
            for flavour in FLAVOURS
        },
    )


def vm_recipe(recipe: Recipe) -> dict[str, object]:
    """How the image boots as a VM (recorded in every result; part of the VM id)."""
    return {
        "vm_id": recipe.vm_id,
        "kernel_package": recipe.kernel.package,
        "kernel_version": recipe.kernel.version,
        "kernel_flavour": recipe.boot.kernel_meta_package,
        "firmware": recipe.boot.firmware,
        "firmware_path": str(recipe.boot.firmware_path or ""),
        "machine": recipe.boot.machine,
        "cmdline": recipe.boot.cmdline,
        "initramfs_sha": recipe.kernel.initramfs_sha[:16],
        "system_id": recipe.system_id,
        "system_packages": list(recipe.system_packages),
        "system_base_key": recipe.system_base_key,
    }


class _Steps:
    """Says what the build does and how long each step took (two steps run at once)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def step(self, text: str) -> Iterator[None]:
        started = time.monotonic()
        with self._lock:
            self.progress(f"{text} ...")
        yield
        with self._lock:
            self.progress(f"{text}: done in {time.monotonic() - started:.0f} s")


def _build_missing(
    recipe: Recipe,
    root: Path,
    image_dir: Path,
    system_dir: Path,
    mirror: str | None,
    timeout: float,
    progress: Progress,
) -> None:
    steps = _Steps(progress)
    base_dir = root / "bases" / recipe.base_key
    system_base_dir = root / "bases" / recipe.system_base_key
    chosen = None
    if not (base_dir / "rootfs").exists() or not (system_base_dir / "rootfs").exists():
        chosen = mirror or find_mirror(recipe.suite)
        if not chosen:
            raise ImageBuildError(
                f"no Debian mirror for '{recipe.suite}' in /etc/apt/sources*; "
                "set [image] mirror in the config"
            )

    def debootstrap(target: Path, packages: tuple[str, ...]) -> None:
        if chosen is None or (target / "rootfs").exists():
            return
        with (
            steps.step(f"debootstrap {recipe.suite} with {', '.join(packages)}"),
            _staging(target) as staging,
        ):
            _build_base_rootfs(recipe, chosen, staging, timeout, packages)

    # The guest kernel (download, unpack, initramfs) and the system tree's base do not need
    # the rootfs: they run alongside its debootstrap, which spends most of its time waiting
    # on the mirror and dpkg.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="vmvc-build") as pool:
        kernel_job = pool.submit(
            kernel_bundle, recipe.kernel, timeout=timeout, progress=progress, steps=steps
        )
        system_job = pool.submit(debootstrap, system_base_dir, recipe.all_system_packages)
        try:
            debootstrap(base_dir, recipe.packages)
        finally:
            kernel_job.result()  # waits; re-raises a kernel failure
            system_job.result()
        if not (image_dir / "manifest.json").exists():
            with steps.step(f"image {recipe.image_id}: rootfs with the agent, read-only base disk"):
                _derive_image(recipe, base_dir, image_dir, timeout)
        if not (system_dir / "manifest.json").exists():
            with steps.step(
                f"system tree {recipe.system_id}: the image's tree with systemd, root disk"
            ):
                _derive_system(recipe, system_base_dir, system_dir, timeout)


def _derive_image(recipe: Recipe, base_dir: Path, image_dir: Path, timeout: float) -> None:
    recipe_dict = {
        "suite": recipe.suite,
        "packages": list(recipe.packages),
        "agent_sha": recipe.agent_sha[:16],
        "base_key": recipe.base_key,
        "format_version": recipe.format_version,
    }
    manifest = {"image_id": recipe.image_id, "recipe": recipe_dict}
    _derive_tree(recipe, base_dir, image_dir, manifest, timeout, system=False)


def _derive_system(recipe: Recipe, base_dir: Path, system_dir: Path, timeout: float) -> None:
    """The system tree: the system base with the same agent and image-id file as the image,
    made to boot under systemd (vmvc.image.system), and its read-only root disk."""
    recipe_dict = {
        "image_id": recipe.image_id,
        "suite": recipe.suite,
        "packages": list(recipe.all_system_packages),
        "system_packages": list(recipe.system_packages),
        "system_sha": recipe.system_sha[:16],
        "base_key": recipe.system_base_key,
    }
    manifest = {"system_id": recipe.system_id, "recipe": recipe_dict}
    _derive_tree(recipe, base_dir, system_dir, manifest, timeout, system=True)


def _derive_tree(
    recipe: Recipe,
    base_dir: Path,
    target: Path,
    manifest: dict[str, object],
    timeout: float,
    *,
    system: bool,
) -> None:
    """A workload tree from a debootstrapped base (the agent, its tools, the image id; with
    `system`, made to boot under systemd too), its read-only root disk and its manifest."""
    with _staging(target) as staging:
        rootfs = staging / "rootfs"
        run(["cp", "-a", base_dir / "rootfs", rootfs], timeout=timeout, what="copy rootfs")
        os.chmod(rootfs, 0o755)
        _install_agent(rootfs, recipe.image_id)
        install_tools(rootfs, timeout)
        if system:
            install_system(rootfs)
        vm = staging / "vm"
        vm.mkdir(mode=0o755)
        build_base_disk(rootfs, vm / "base.raw", timeout)
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=1))


def kernel_bundle(
    kernel: KernelRecipe,
    *,
    timeout: float = 900,
    progress: Progress = lambda _m: None,
    steps: _Steps | None = None,
) -> Path:
    """vmlinuz + initrd.img for the guest (also what the KVM probe boots)."""
    kernel_dir = cache_dir() / "kernels" / kernel.key
    if not (kernel_dir / "initrd.img").exists():
        steps = steps or _Steps(progress)
        with (
            steps.step(f"guest kernel {kernel.package} {kernel.version}: download, initramfs"),
            _staging(kernel_dir) as staging,
        ):
            _build_kernel_bundle(kernel, staging, timeout)
    return kernel_dir


def cached_images() -> list[Path]:
    images = cache_dir() / "images"
    return (
        sorted(p for p in images.iterdir() if (p / "manifest.json").exists())
        if images.exists()
        else []
    )


def cached_kernel_bundles() -> list[Path]:
    """Complete guest kernel bundles in the cache, oldest first."""
    kernels = cache_dir() / "kernels"
    if not kernels.exists():
        return []
    bundles = [p.parent for p in kernels.glob("*/initrd.img")]
    return sorted(bundles, key=lambda p: p.stat().st_mtime)
