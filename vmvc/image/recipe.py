"""What the workload image is made of, and the content hashes that name it.

Two identities, so that a change to how VMs boot never touches the other forms:

* the **image id** names the root filesystem (suite, packages, agent). It is written into the
  rootfs as /etc/vmvc/image-id, every instance prints it, and the native and container forms
  are derived from that tree alone (the Docker tag is `vmvc-workload:<image id>`);
* the **VM id** names how that same tree boots as a VM: the image id plus the guest kernel,
  the initramfs (with the guest init), the firmware, the machine type and the kernel command
  line (see vmvc.image.vmboot), and its flavour;
* the **system id** names the image's system tree (vmvc.image.system: the same workload tree
  plus systemd and the agent's unit), the root disk of the `full` VM flavour, whose VM id is
  derived from it as the minimal one is from the image id.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from importlib import resources

from vmvc.image.system import SYSTEM_FORMAT_VERSION, SYSTEM_PACKAGES, system_files
from vmvc.image.tools import tool_sources
from vmvc.image.vmboot import BOOT, BootProfile, flavour_cmdline, host_boot_profile
from vmvc.proc import ToolError, run

# Bump when the way artefacts are derived changes, so old caches are not reused.
# 2: the guest init moved out of the rootfs into the initramfs (VM-only).
FORMAT_VERSION = 2
# The same for the debootstrapped tree alone (unchanged by format 2: it is reused).
BASE_FORMAT_VERSION = 1


def _digest(*parts: object) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def packaged_file(package: str, name: str) -> bytes:
    return resources.files(package).joinpath(name).read_bytes()


def agent_files() -> dict[str, bytes]:
    """Files installed into the rootfs under /opt/vmvc (part of the image identity)."""
    return {
        "agent": packaged_file("vmvc.agent", "agent.sh"),
        **tool_sources(),  # compiled tools: source, flags and compiler are in the image id
    }


def initramfs_files() -> dict[str, bytes]:
    """The VM's initramfs: its init, the modules it loads, and the guest's PID 1 (which the
    initramfs hands to the root disk, so the rootfs shared with containers stays VM-free)."""
    return {
        "init": packaged_file("vmvc.image.initramfs", "init"),
        "modules.order": packaged_file("vmvc.image.initramfs", "modules.order"),
        "guest-init": packaged_file("vmvc.agent", "guest-init.sh"),
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
    boot: BootProfile = BOOT
    system_packages: tuple[str, ...] = SYSTEM_PACKAGES
    system_sha: str = ""  # digest of vmvc.image.system.system_files()

    @property
    def base_key(self) -> str:
        """The debootstrapped tree alone: changing the agent does not re-run debootstrap."""
        return _digest("base", self.suite, sorted(self.packages), BASE_FORMAT_VERSION)[:16]

    @property
    def all_system_packages(self) -> tuple[str, ...]:
        return tuple(sorted({*self.packages, *self.system_packages}))

    @property
    def system_base_key(self) -> str:
        """The system tree's debootstrap: the same digest as base_key, more packages."""
        packages = sorted(self.all_system_packages)
        return _digest("base", self.suite, packages, BASE_FORMAT_VERSION)[:16]

    @property
    def system_id(self) -> str:
        """The system tree: the image plus the init system's packages and vmvc's unit/masks."""
        return _digest(
            "system",
            self.image_id,
            sorted(self.system_packages),
            self.system_sha,
            SYSTEM_FORMAT_VERSION,
        )[:16]

    def flavour_cmdline(self, flavour: str) -> str:
        return flavour_cmdline(self.boot.cmdline, flavour)

    def flavour_vm_id(self, flavour: str) -> str:
        """A VM flavour: its root tree (image or system id), kernel, initramfs, firmware,
        machine, command line and the flavour's name."""
        root = self.image_id if flavour == "minimal" else self.system_id
        boot = {**self.boot.identity(), "cmdline": self.flavour_cmdline(flavour)}
        return _digest("vm", root, asdict(self.kernel), boot, flavour)[:16]

    @property
    def image_id(self) -> str:
        """The root filesystem (native and container forms, and the VM's root disk)."""
        return _digest(
            "image", self.suite, sorted(self.packages), self.agent_sha, self.format_version
        )[:16]

    @property
    def vm_id(self) -> str:
        """The (minimal) VM form: the image plus kernel, initramfs, firmware, machine and
        command line."""
        return self.flavour_vm_id("minimal")


def resolve_kernel_package(meta_package: str = BOOT.kernel_meta_package) -> tuple[str, str]:
    """The guest kernel a Debian meta package (e.g. `linux-image-cloud-amd64`) points at,
    and its version."""
    try:
        depends = run(["apt-cache", "depends", meta_package], timeout=60, what="apt-cache")
    except ToolError as exc:
        raise ToolError(f"{exc} (is this Debian/Ubuntu? run `apt-get update`)") from None
    match = re.search(r"Depends:\s*(linux-image-[0-9][\w.+-]*)", depends.stdout.decode())
    if not match:
        raise ToolError(
            f"cannot find the guest kernel package behind {meta_package}; run `apt-get update`"
        )
    package = match.group(1)
    policy = run(["apt-cache", "policy", package], timeout=60, what="apt-cache").stdout.decode()
    version = re.search(r"Candidate:\s*(\S+)", policy)
    if not version or version.group(1) == "(none)":
        raise ToolError(f"no installable version of {package}; run `apt-get update`")
    return package, version.group(1)


def make_recipe(suite: str, packages: list[str]) -> Recipe:
    boot = host_boot_profile()
    kernel_package, kernel_version = resolve_kernel_package(boot.kernel_meta_package)
    initramfs_sha = _digest({k: v.hex() for k, v in initramfs_files().items()})
    agent_sha = _digest({k: v.hex() for k, v in agent_files().items()})
    return Recipe(
        suite=suite,
        packages=tuple(sorted(set(packages))),
        kernel=KernelRecipe(kernel_package, kernel_version, initramfs_sha),
        agent_sha=agent_sha,
        boot=boot,
        system_sha=_digest({k: v.hex() for k, v in system_files().items()}),
    )
