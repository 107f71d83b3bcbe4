"""libvirt backend: transient guests booted from the image's kernel, initramfs and base disk.

Each instance boots from its own copy-on-write qcow2 overlay of the read-only base disk (a
destroyed guest never dirties the base), with a fresh ext4 data disk for I/O, no network
interface, and the serial console read through libvirt's event loop. The guest is created
paused so the console is attached before the first byte and "boot starts now" is exact.

One engine, two VM flavours (vmvc.image.vmboot): `minimal` (backend `libvirt`), the guest
init as PID 1, and `full` (backend `libvirt-full`), the image's system tree booted with
systemd as PID 1. The flavour picks the root disk, the command line and the VM id
(Artefacts.flavoured); everything else (kernel, initramfs, firmware, machine, devices,
names, labels, teardown) is the same code.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import libvirt

from vmvc.agent.protocol import (
    AgentError,
    InstanceGone,
    ReadyInfo,
    collect_task,
    command_line,
    marker,
    parse_ready,
)
from vmvc.backends.base import (
    Availability,
    Backend,
    Check,
    Instance,
    InstanceSpec,
    Leftover,
    Progress,
    SyscallScope,
)
from vmvc.backends.libvirt_engine import checks
from vmvc.backends.libvirt_engine.accel import AccelDecision, decide_accel
from vmvc.backends.libvirt_engine.console import ConsoleReader
from vmvc.backends.libvirt_engine.deadline import (
    CALL_TIMEOUT_S,
    LibvirtTimeout,
    open_connection,
    with_deadline,
)
from vmvc.backends.libvirt_engine.domain_xml import METADATA_NS, DomainDisk, DomainSpec, domain_xml
from vmvc.backends.libvirt_engine.limits import limits_from_domain_xml
from vmvc.backends.libvirt_engine.pool import POOL_NAME, find_pool, remove_pool
from vmvc.backends.libvirt_engine.remote import (
    FOOTPRINT_METHOD,
    PoolShipping,
    is_remote_uri,
    rss_footprint,
)
from vmvc.backends.memory import process_tree_memory
from vmvc.config import Config, HostSettings
from vmvc.hosts import LOCAL_HOST, is_local
from vmvc.image.build import Artefacts
from vmvc.image.vmboot import BOOT
from vmvc.liveness import controller_id
from vmvc.paths import SAFE_NAME, copy_new, make_dirs, touch_new
from vmvc.proc import run

QEMU_PID_DIR = Path("/run/libvirt/qemu")
# The image's boot profile decides the command line (vmvc.image.vmboot); this is its default.
GUEST_CMDLINE = BOOT.cmdline
FIRMWARE_COPY = "firmware.rom"


class GuestAssets(Protocol):
    """What a guest boots from, as paths the libvirt daemon sees (local files or, on a remote
    host, storage volumes: see remote.py)."""

    kernel: Path
    initrd: Path
    console_log: Path | None
    on_this_host: bool  # False: QEMU runs on another host (no pid file to read here)

    def disks(self) -> list[DomainDisk]: ...


def copy_firmware(artefacts: Artefacts, directory: Path) -> Path | None:
    """The instance's own copy of the image's firmware ROM (libvirt relabels what it is
    given); None when the image boots with libvirt's default firmware."""
    if artefacts.firmware is None:
        return None
    # Created exclusively, like the kernel copies: never written through a planted link.
    return copy_new(artefacts.firmware, directory / FIRMWARE_COPY)


class VmAssets:
    """The per-instance files a guest needs; libvirt chowns what it is given, so each
    instance gets its own kernel, initrd and firmware copies and its own overlay."""

    on_this_host = True

    def __init__(self, artefacts: Artefacts, spec: InstanceSpec) -> None:
        self.dir = spec.workdir
        # 0711: QEMU (libvirt-qemu here) must enter it to open what libvirt chowns to it.
        make_dirs(self.dir)
        self.kernel = self.dir / "vmlinuz"
        self.initrd = self.dir / "initrd.img"
        self.overlay = self.dir / "root.qcow2"
        self.data = self.dir / "data.raw"
        self.console_log: Path | None = self.dir / "console.log"
        # Created exclusively (O_EXCL | O_NOFOLLOW): a file or symlink planted at one of
        # these names makes the instance fail instead of being written through.
        copy_new(artefacts.kernel, self.kernel)
        copy_new(artefacts.initrd, self.initrd)
        self.firmware = copy_firmware(artefacts, self.dir)
        create_overlay(artefacts.base_disk, self.overlay)
        touch_new(self.data)  # mke2fs -F then formats the file vmvc just made
        run(
            [
                "mke2fs",
                "-q",
                "-F",
                "-t",
                "ext4",
                "-L",
                "vmvc-data",
                self.data,
                f"{spec.data_disk_mib}M",
            ],
            timeout=120,
            what="mke2fs (data disk)",
        )

    def disks(self) -> list[DomainDisk]:
        return [
            DomainDisk(self.overlay, "qcow2", "vda"),
            # cache=none: the guest's O_DIRECT I/O reaches the host disk, like native and
            # container direct I/O, instead of being absorbed by the host page cache.
            DomainDisk(self.data, "raw", "vdb", cache="none"),
        ]


def create_overlay(base: Path, overlay: Path) -> None:
    run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", base, overlay],
        timeout=60,
        what="qemu-img create (overlay)",
    )


class ConsoleGuest(Instance):
    """What every local guest shares: commands over the serial console, QEMU's memory."""

    backend = "libvirt"
    console: ConsoleReader | None

    def run(self, workload: str, args: list[str], timeout: float) -> list[str]:
        if self.console is None:
            raise AgentError("guest console is not attached")
        task_id = self.next_task_id()
        start = len(self.log)
        try:
            self.console.send(command_line(task_id, workload, args).encode())
        except (BrokenPipeError, TimeoutError, libvirt.libvirtError) as exc:
            raise AgentError(f"cannot send to guest console: {exc}") from None
        return collect_task(self.log, task_id, start, timeout)

    def qemu_pid(self) -> int | None:
        try:
            return int((QEMU_PID_DIR / f"{self.name}.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def syscall_scope(self) -> SyscallScope | None:
        # Every guest system call is the guest kernel's; what reaches the host is QEMU's.
        pid = self.qemu_pid()
        return None if pid is None else SyscallScope((pid,), what="QEMU (every thread)")

    def footprint(self) -> dict[str, float]:
        pid = self.qemu_pid()
        if pid is None:
            return {}
        memory = process_tree_memory(pid)
        memory.pop("processes", None)
        return memory


class LibvirtInstance(ConsoleGuest):
    """A transient guest, created paused and destroyed at teardown."""

    def __init__(
        self,
        conn: libvirt.virConnect,
        artefacts: Artefacts,
        spec: InstanceSpec,
        domain_type: str,
        assets: GuestAssets | None = None,
    ) -> None:
        super().__init__()
        self.conn = conn
        self.name = spec.name
        self.spec = spec
        self.domain: libvirt.virDomain | None = None
        self.console: ConsoleReader | None = None
        self.assets: GuestAssets = assets if assets is not None else VmAssets(artefacts, spec)
        xml = domain_xml(
            DomainSpec(
                name=spec.name,
                run_id=spec.run_id,
                owner_pid=os.getpid(),
                domain_type=domain_type,
                vcpus=spec.vcpus,
                memory_mib=spec.memory_mib,
                kernel=self.assets.kernel,
                initrd=self.assets.initrd,
                cmdline=f"{artefacts.cmdline} vmvc.run={spec.run_id}",
                disks=self.assets.disks(),
                console_log=self.assets.console_log,
                restart_on_crash=spec.restart_on_crash,
                # Pool volumes on a remote host carry no firmware: its QEMU's default boots.
                firmware=getattr(self.assets, "firmware", None),
                machine=artefacts.machine,
            )
        )
        self._t0 = time.monotonic()
        self.domain = with_deadline(
            lambda: conn.createXML(xml, libvirt.VIR_DOMAIN_START_PAUSED),
            CALL_TIMEOUT_S,
            "createXML",
        )
        self._created = time.monotonic()
        self.console = ConsoleReader(conn, self.domain, self.log)
        self._resumed = time.monotonic()
        self.domain.resume()

    def qemu_pid(self) -> int | None:
        return super().qemu_pid() if self.assets.on_this_host else None

    def applied_limits(self) -> dict[str, str | int | float]:
        """The guest's vCPUs and memory from its live domain XML (what QEMU was given)."""
        if self.domain is None:
            return {}
        domain = self.domain
        try:
            xml = with_deadline(lambda: domain.XMLDesc(0), CALL_TIMEOUT_S, "XMLDesc")
        except (libvirt.libvirtError, LibvirtTimeout):
            return {}  # unknown; a report line is not worth failing the trial for
        return limits_from_domain_xml(xml)

    def footprint(self) -> dict[str, float]:
        if self.assets.on_this_host:
            return super().footprint()
        return rss_footprint(self.domain)

    def wait_ready(self, timeout: float) -> ReadyInfo:
        deadline = time.monotonic() + timeout

        def remaining() -> float:
            return max(0.1, deadline - time.monotonic())

        try:
            i_init, initramfs = self.log.wait_for(
                marker("INITRAMFS"), timeout=remaining(), what="initramfs marker (kernel boot)"
            )
            i_root, rootmount = self.log.wait_for(
                marker("ROOTMOUNT"), start=i_init, timeout=remaining(), what="root disk mount"
            )
            _, ready = self.log.wait_for(
                marker("READY"), start=i_root, timeout=remaining(), what="ready marker"
            )
        except InstanceGone:
            raise
        except AgentError as exc:
            # The phase's own wait only had what was left of the budget ("within 0 s");
            # the user set the whole boot budget, so say that one.
            raise AgentError(f"{exc} (boot timeout: not ready within {timeout:g} s)") from None
        info = parse_ready(ready.text, ready.at)
        self.phases = {
            "create_s": self._created - self._t0,
            "firmware_kernel_s": initramfs.at - self._resumed,
            "initramfs_s": rootmount.at - initramfs.at,
            "userspace_s": ready.at - rootmount.at,
            "total_s": ready.at - self._t0,
        }
        self.ready_info = info
        return info

    def destroy(self) -> None:
        if self.console is not None:
            self.console.close()
        if self.domain is not None:
            with contextlib.suppress(libvirt.libvirtError):
                self.domain.destroy()


class LibvirtBackend(Backend):
    name = "libvirt"
    label = "VM"
    kind = "vm"
    flavour = "minimal"  # the VM flavour (vmvc.image.vmboot.FLAVOURS) this backend boots

    def __init__(self, config: Config, host: HostSettings | None = None) -> None:
        self.config = config
        self.host = host
        self.host_name = host.name if host is not None else LOCAL_HOST
        # The local host's daemon is the config's libvirt_uri; another host's is the URI its
        # [[hosts]] entry gives (None: that host runs no VMs).
        self.uri: str | None = config.libvirt_uri if is_local(host) else host.libvirt_uri  # type: ignore[union-attr]
        # A connection to another machine boots guests from volumes shipped into its pool.
        self.shipping = (
            PoolShipping(self.host_name) if self.uri and is_remote_uri(self.uri) else None
        )
        # Lifecycle workloads make and read disk files and QEMU's memory on this machine.
        self.on_this_host = self.shipping is None
        self._conn: libvirt.virConnect | None = None
        self.accel: AccelDecision | None = None
        # How the image boots (set from the artefacts in prepare; defined guests use it).
        self.boot_cmdline = BOOT.cmdline
        self.boot_machine = BOOT.machine
        # Until prepare() says otherwise (a remote host's pool holds no firmware ROM), guests
        # boot with libvirt's default firmware.
        self.boot_firmware = "seabios"
        self.flavour_ids: dict[str, Any] = {"vm_flavour": self.flavour}

    @property
    def display_name(self) -> str:  # type: ignore[override]
        prefix = "VM" if self.flavour == "minimal" else f"{self.flavour} VM"
        if self.accel is None:
            return f"{prefix} (libvirt)"
        how = "KVM" if self.accel.mode == "kvm" else "emulated TCG"
        return f"{prefix} (libvirt, {how})"

    def flavoured(self, artefacts: Artefacts) -> Artefacts:
        """The image's artefacts as this backend's VM flavour boots them."""
        return artefacts.flavoured(self.flavour)

    def flavour_facts(self, artefacts: Artefacts) -> dict[str, Any]:
        """The flavour, its VM id and (full) the system id, for the result."""
        facts: dict[str, Any] = {"vm_flavour": self.flavour, "vm_id": artefacts.vm_id}
        if self.flavour != "minimal":
            facts["system_id"] = artefacts.system_id
        return facts

    @property
    def conn(self) -> libvirt.virConnect:
        if self._conn is None:
            if self.uri is None:
                raise RuntimeError(f"host {self.host_name} has no libvirt_uri")
            self._conn = open_connection(self.uri)
        return self._conn

    def probe(self) -> Availability:
        if self.uri is None:
            return Availability(False, "no libvirt_uri configured for this host", offered=False)
        try:
            version = self.conn.getVersion()
        except LibvirtTimeout as exc:
            return Availability(
                False,
                str(exc),
                "is libvirtd hung? check it (virsh version), restart it if so",
            )
        except libvirt.libvirtError as exc:
            message = str(exc).splitlines()[0]
            return Availability(
                False,
                f"libvirtd does not answer at {self.uri} ({message})",
                "start it: virtlogd -d && libvirtd -d (or `make setup`)",
            )
        major, minor = version // 1_000_000, version // 1000 % 1000
        return Availability(True, f"libvirt at {self.uri}, QEMU {major}.{minor}")

    def prepare(self, artefacts: Artefacts, progress: Progress) -> dict[str, Any]:
        """Decide KVM or TCG (a probe boot, cached per host boot) before any trial; on
        another host, ship the image into its pool first."""
        artefacts = self.flavoured(artefacts)
        self.flavour_ids = self.flavour_facts(artefacts)
        if self.shipping is not None:
            # The pool holds no firmware ROM: guests there boot with libvirt's default.
            self.accel, facts = self.shipping.prepare(self.conn, artefacts, self.config, progress)
            return {**facts, **self.flavour_ids}
        self.boot_cmdline, self.boot_machine = artefacts.cmdline, artefacts.machine
        self.boot_firmware = str(artefacts.recipe.get("firmware", BOOT.firmware))
        assert self.uri is not None  # probe() said so before any prepare()
        self.accel = decide_accel(
            self.conn,
            self.uri,
            artefacts.kernel,
            artefacts.initrd,
            requested=self.config.accel,
            timeout=self.config.timeouts.probe_s,
            progress=progress,
        )
        return {"accel": self.accel.mode, "accel_reason": self.accel.reason, **self.flavour_ids}

    @contextlib.contextmanager
    def provision(self, artefacts: Artefacts, spec: InstanceSpec) -> Iterator[Instance]:
        if self.accel is None:
            raise RuntimeError("LibvirtBackend.prepare() must run before provision()")
        artefacts = self.flavoured(artefacts)
        instance: LibvirtInstance | None = None
        try:
            assets = None if self.shipping is None else self.shipping.assets(self.conn, spec)
            instance = LibvirtInstance(
                self.conn, artefacts, spec, self.accel.domain_type, assets=assets
            )
            yield instance
        finally:
            if instance is not None:
                instance.destroy()
            else:  # creation failed half-way: make sure no domain of that name survives
                with contextlib.suppress(libvirt.libvirtError):
                    self.conn.lookupByName(spec.name).destroy()
            if self.shipping is not None:
                self.shipping.remove_disks(spec.name)
            shutil.rmtree(spec.workdir, ignore_errors=True)  # the runner made it here

    def environment(self) -> dict[str, Any]:
        def dotted(version: int) -> str:
            return f"{version // 1_000_000}.{version // 1000 % 1000}.{version % 1000}"

        # The flavour's own keys are prefixed with it past the minimal one (vm_full_cmdline):
        # the environment is one dict for every backend of a run.
        vm = "vm" if self.flavour == "minimal" else f"vm_{self.flavour}"
        env: dict[str, Any] = {
            "libvirt_version": dotted(self.conn.getLibVersion()),
            "qemu_version": dotted(self.conn.getVersion()),
            "libvirt_uri": self.uri,
            f"{vm}_firmware": self.boot_firmware,
            f"{vm}_machine": self.boot_machine,
            f"{vm}_cmdline": self.boot_cmdline,
            **{f"{vm}_{key.removeprefix('vm_')}": v for key, v in self.flavour_ids.items()},
        }
        if self.accel is not None:
            env["accel"] = self.accel.mode
            env["accel_reason"] = self.accel.reason
        if self.shipping is not None:
            env.update(self.shipping.environment(self.conn))
            env["footprint_method"] = FOOTPRINT_METHOD
        return env

    def leftovers(self, live_run_ids: set[str]) -> list[Leftover]:
        """Domains whose metadata (vmvc's XML namespace) names a run and a controller: the
        name says nothing, anybody can call a domain vmvc-something."""
        found = []
        for domain in self.conn.listAllDomains():
            owner = domain_owner(domain)
            if owner is None:
                continue
            run_id, controller = owner
            found.append(
                Leftover(
                    "domain",
                    domain.name(),
                    run_id,
                    run_id in live_run_ids,
                    remove=lambda d=domain: _destroy_and_undefine(d),
                    owner="" if controller == controller_id() else f"controller {controller}",
                )
            )
        if self.shipping is not None:
            found += self.shipping.leftovers(self.conn, live_run_ids)
        return found

    def checks(self, probe: bool, progress: Progress) -> list[Check]:
        """The daemon; here also virtlogd and KVM, on another host its pool and KVM."""
        found = super().checks(probe, progress)
        available = found[0].status == "ok"
        if self.shipping is None:
            virtlogd = checks.virtlogd_check()
            if available and virtlogd is not None:  # libvirtd answers, yet no VM can start
                found[0] = Check(found[0].name, "fail", f"virtlogd {virtlogd.detail}", virtlogd.fix)
            if self.uri is not None:
                connect = lambda: self.conn if available else None  # noqa: E731
                found.append(
                    checks.local_kvm_check(connect, self.uri, self.config, probe, progress)
                )
            return found
        if not available:
            found[0].fix = found[0].fix or checks.SSH_FIX
            return found
        env = self.environment()
        found[0].detail = (
            f"libvirt {env.get('libvirt_version')}, QEMU {env.get('qemu_version')} on "
            f"{env.get('libvirt_host_hostname')}: {env.get('libvirt_host_cores')} cores, "
            f"{env.get('libvirt_host_memory_mib')} MiB"
        )
        found.append(checks.pool_check(self.conn))
        found.append(
            checks.remote_kvm_check(self.conn, self.host_name, self.config, probe, progress)
        )
        return found

    def clean_cache(self, dry_run: bool) -> list[str]:
        """Another host's `vmvc` pool and its image volumes (here the images live in the
        image cache, which `vmvc clean --cache` removes itself)."""
        if self.shipping is None or find_pool(self.conn) is None:
            return []
        if not dry_run:
            remove_pool(self.conn)
        verb = "would remove" if dry_run else "removed"
        return [f"{verb} storage pool '{POOL_NAME}' and its volumes"]

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(libvirt.libvirtError):
                self._conn.close()
            self._conn = None


def domain_owner(domain: libvirt.virDomain) -> tuple[str, str] | None:
    """(run id, controller id) from the domain's vmvc metadata, or None if it has none."""
    try:
        text = domain.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS)
    except libvirt.libvirtError:
        return None  # no vmvc metadata: not vmvc's, whatever its name
    return owner_from_metadata(text)


def owner_from_metadata(text: str) -> tuple[str, str] | None:
    try:
        element = ET.fromstring(text)
    except ET.ParseError:
        return None
    run_id = element.get("run-id", "")
    controller = element.get("controller", "")
    if not SAFE_NAME.match(run_id) or not re.fullmatch(r"[0-9a-f]{16}", controller):
        return None
    return run_id, controller


def _destroy_and_undefine(domain: libvirt.virDomain) -> None:
    with contextlib.suppress(libvirt.libvirtError):
        domain.destroy()
    with contextlib.suppress(libvirt.libvirtError):
        domain.undefine()
