"""What the workload image is made of, and the content hash that names it (the image id)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from importlib import resources

from vmvc.proc import ToolError, run

# Bump when the way artefacts are derived changes, so old caches are not reused.
FORMAT_VERSION = 1
KERNEL_META_PACKAGE = "linux-image-amd64"


def _digest(*parts: object) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def packaged_file(package: str, name: str) -> bytes:
    return resources.files(package).joinpath(name).read_bytes()


def agent_files() -> dict[str, bytes]:
    """Files installed into the rootfs under /opt/vmvc (part of the image identity)."""
    from vmvc.image.tools import tool_sources  # tools imports this module

    return {
        "agent": packaged_file("vmvc.agent", "agent.sh"),
        "guest-init": packaged_file("vmvc.agent", "guest-init.sh"),
        **tool_sources(),  # compiled tools: source, flags and compiler are in the image id
    }


def initramfs_files() -> dict[str, bytes]:
    return {
        "init": packaged_file("vmvc.image.initramfs", "init"),
        "modules.order": packaged_file("vmvc.image.initramfs", "modules.order"),
    }


@dataclass(frozen=True)
class KernelRecipe:
    package: str
    version: str
    initramfs_sha: str

    @property
    def key(self) -> str:
        return f"{self.package}_{self.version}_{self.initramfs_sha[:12]}"


@dataclass(frozen=True)
class Recipe:
    suite: str
    packages: tuple[str, ...]
    kernel: KernelRecipe
    agent_sha: str
    format_version: int = FORMAT_VERSION

    @property
    def base_key(self) -> str:
        """The debootstrapped tree alone: changing the agent does not re-run debootstrap."""
        return _digest("base", self.suite, sorted(self.packages), self.format_version)[:16]

    @property
    def image_id(self) -> str:
        return _digest("image", asdict(self))[:16]


def resolve_kernel_package() -> tuple[str, str]:
    """The guest kernel Debian's `linux-image-amd64` points at, and its version."""
    try:
        depends = run(["apt-cache", "depends", KERNEL_META_PACKAGE], timeout=60, what="apt-cache")
    except ToolError as exc:
        raise ToolError(f"{exc} (is this Debian/Ubuntu? run `apt-get update`)") from None
    match = re.search(r"Depends:\s*(linux-image-[0-9][\w.+-]*)", depends.stdout.decode())
    if not match:
        raise ToolError(
            f"cannot find the guest kernel package behind {KERNEL_META_PACKAGE}; "
            "run `apt-get update`"
        )
    package = match.group(1)
    policy = run(["apt-cache", "policy", package], timeout=60, what="apt-cache").stdout.decode()
    version = re.search(r"Candidate:\s*(\S+)", policy)
    if not version or version.group(1) == "(none)":
        raise ToolError(f"no installable version of {package}; run `apt-get update`")
    return package, version.group(1)


def make_recipe(suite: str, packages: list[str]) -> Recipe:
    kernel_package, kernel_version = resolve_kernel_package()
    initramfs_sha = _digest({k: v.hex() for k, v in initramfs_files().items()})
    agent_sha = _digest({k: v.hex() for k, v in agent_files().items()})
    return Recipe(
        suite=suite,
        packages=tuple(sorted(set(packages))),
        kernel=KernelRecipe(kernel_package, kernel_version, initramfs_sha),
        agent_sha=agent_sha,
    )
