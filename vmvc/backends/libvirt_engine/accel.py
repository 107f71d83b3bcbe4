"""KVM or TCG: decided by booting a tiny guest under KVM with a timeout, cached per host boot.

/dev/kvm existing proves little: on nested hosts KVM_CREATE_VM succeeds and the guest kernel
then hangs forever. Only a boot shows whether KVM works, so vmvc boots the guest kernel with
its initramfs (no disk), which prints a marker and powers off at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import libvirt

from vmvc.agent.protocol import AgentError, LineLog
from vmvc.backends.libvirt_engine.console import ConsoleReader
from vmvc.backends.libvirt_engine.deadline import CALL_TIMEOUT_S, with_deadline
from vmvc.backends.libvirt_engine.domain_xml import DomainSpec, domain_xml
from vmvc.liveness import hold_run_lock
from vmvc.paths import atomic_write_text, cache_dir, copy_new, make_run_dir


@dataclass(frozen=True)
class AccelDecision:
    mode: str  # "kvm" | "tcg"
    reason: str
    kvm_probe: str  # "ok" | "failed" | "not run" | "no /dev/kvm"

    @property
    def domain_type(self) -> str:
        return "kvm" if self.mode == "kvm" else "qemu"


class AccelError(Exception):
    """KVM was asked for explicitly and does not work here."""


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def _cache_file(uri: str) -> Path:
    key = hashlib.sha256(f"{_boot_id()} {uri}".encode()).hexdigest()[:16]
    return cache_dir() / "accel" / f"{key}.json"


def _remote(uri: str) -> bool:
    return "+" in uri.split(":", 1)[0] or (
        "//" in uri and not uri.split("//", 1)[1].startswith("/")
    )


def _probe_run_id() -> str:
    return f"probe-{os.getpid()}-{int(time.time())}"


def probe_kvm(
    conn: libvirt.virConnect, kernel: Path, initrd: Path, timeout: float
) -> tuple[bool, str]:
    """Boot the guest kernel under KVM; True if it reached the initramfs within `timeout`.

    The probe is a run like any other: it holds a run lock for as long as its work dir and
    domain exist, so a `vmvc clean` meanwhile keeps them (killing the probe would cache
    "KVM failed" until the next reboot and silently emulate every later VM)."""
    run_id = _probe_run_id()
    with hold_run_lock(run_id):
        workdir = make_run_dir(run_id)
        try:
            # libvirt chowns the files it is given: the probe boots private copies.
            copy_new(kernel, workdir / "vmlinuz")
            copy_new(initrd, workdir / "initrd.img")
            return _boot(conn, run_id, workdir / "vmlinuz", workdir / "initrd.img", timeout)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def boot_probe(
    conn: libvirt.virConnect, kernel: Path, initrd: Path, timeout: float
) -> tuple[bool, str]:
    """Boot `kernel` + `initrd` (paths as the libvirt daemon sees them, so a remote host's
    storage volumes work too) under KVM; True if the initramfs marker came in time."""
    run_id = _probe_run_id()
    with hold_run_lock(run_id):
        return _boot(conn, run_id, kernel, initrd, timeout)


def _boot(
    conn: libvirt.virConnect, run_id: str, kernel: Path, initrd: Path, timeout: float
) -> tuple[bool, str]:
    name = f"vmvc-{run_id}"
    domain = None
    console = None
    log = LineLog()
    try:
        xml = domain_xml(
            DomainSpec(
                name=name,
                run_id=run_id,
                owner_pid=os.getpid(),
                domain_type="kvm",
                vcpus=1,
                memory_mib=256,
                kernel=kernel,
                initrd=initrd,
                cmdline="console=ttyS0 quiet loglevel=3 panic=-1 vmvc.probe=1",
                disks=[],
            )
        )
        started = time.monotonic()
        try:
            domain = with_deadline(
                lambda: conn.createXML(xml, libvirt.VIR_DOMAIN_START_PAUSED),
                CALL_TIMEOUT_S,
                "createXML",
            )
        except libvirt.libvirtError as exc:
            detail = str(exc).splitlines()[0].split("error: ")[-1]
            return False, f"/dev/kvm exists but a probe guest did not boot under KVM ({detail})"
        console = ConsoleReader(conn, domain, log)
        domain.resume()
        try:
            log.wait_for(lambda t: "VMVC-PROBE-OK" in t, timeout=timeout, what="probe marker")
        except AgentError:
            return False, (
                f"/dev/kvm exists but a probe guest did not boot under KVM within {timeout:.0f} s"
            )
        return True, f"a probe guest booted under KVM in {time.monotonic() - started:.1f} s"
    finally:
        if console is not None:
            console.close()
        if domain is not None:
            with contextlib.suppress(libvirt.libvirtError):  # it powered itself off, as it should
                domain.destroy()


def cached_probe(uri: str) -> dict[str, object] | None:
    path = _cache_file(uri)
    if path.exists():
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
    return None


def decide_accel(
    conn: libvirt.virConnect,
    uri: str,
    kernel: Path,
    initrd: Path,
    *,
    requested: str,
    timeout: float,
    progress: object = None,
) -> AccelDecision:
    if requested == "tcg":
        return AccelDecision("tcg", "emulation (TCG) requested with --accel tcg", "not run")
    if not _remote(uri) and not Path("/dev/kvm").exists():
        decision = AccelDecision(
            "tcg", "no /dev/kvm on this host: VMs are emulated (TCG)", "no /dev/kvm"
        )
    else:
        cached = cached_probe(uri)
        if cached is not None:
            ok, reason = bool(cached["ok"]), str(cached["reason"])
        else:
            if callable(progress):
                progress(f"probing KVM: booting a tiny guest (timeout {timeout:.0f} s)")
            ok, reason = probe_kvm(conn, kernel, initrd, timeout)
            # Atomic: a concurrent reader sees no half-written decision.
            atomic_write_text(
                _cache_file(uri), json.dumps({"ok": ok, "reason": reason, "at": time.time()})
            )
        decision = (
            AccelDecision("kvm", reason, "ok")
            if ok
            else AccelDecision("tcg", f"{reason}: VMs are emulated (TCG)", "failed")
        )
    if requested == "kvm" and decision.mode != "kvm":
        raise AccelError(
            f"--accel kvm: KVM does not work here ({decision.reason}); "
            "use --accel auto or --accel tcg"
        )
    return decision


def describe(decision: AccelDecision) -> dict[str, str]:
    return asdict(decision)
