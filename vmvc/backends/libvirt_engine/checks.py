"""What `vmvc doctor` checks for libvirt: virtlogd, the storage pool of another host, and
whether KVM works (a probe boot, the same as a bench's, through the same connection)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import libvirt

from vmvc.backends.base import Check
from vmvc.backends.libvirt_engine.accel import boot_probe, cached_probe, decide_accel
from vmvc.backends.libvirt_engine.pool import (
    POOL_NAME,
    POOL_PATH,
    ensure_pool,
    find_pool,
    ship_boot_files,
)
from vmvc.backends.libvirt_engine.remote import kvm_offered
from vmvc.config import Config

Say = Callable[[str], None]
VIRTLOGD_SOCKET = Path("/run/libvirt/virtlogd-sock")
SSH_FIX = "make `ssh` to the host work without a prompt (key and port in ~/.ssh/config)"


def virtlogd_check() -> Check | None:
    """A local libvirtd without virtlogd answers, yet no domain can start (libvirtd logs
    each guest's QEMU output through virtlogd)."""
    if VIRTLOGD_SOCKET.exists():
        return None
    return Check("virtlogd", "fail", "not running: VMs cannot start", "virtlogd -d")


def local_kvm_check(
    connect: Callable[[], libvirt.virConnect | None],
    uri: str,
    config: Config,
    probe: bool,
    say: Say,
) -> Check:
    """/dev/kvm, then the cached probe of this boot, then (with `probe`) a probe boot."""
    if not Path("/dev/kvm").exists():
        return Check(
            "KVM",
            "warn",
            "no /dev/kvm: VMs will be emulated (TCG), tens of times slower",
            "enable virtualization in firmware, or `modprobe kvm_intel`/`kvm_amd`",
        )
    cached = cached_probe(uri)
    if cached is None and not probe:
        return Check("KVM", "warn", "/dev/kvm exists; not probed (--no-probe)", "vmvc doctor")
    if cached is None:
        conn = connect()
        if conn is None:
            return Check(
                "KVM",
                "warn",
                "/dev/kvm exists; cannot probe without libvirtd",
                "start libvirtd, then vmvc doctor",
            )
        from vmvc.image.build import kernel_bundle
        from vmvc.image.recipe import make_recipe
        from vmvc.proc import ToolError

        try:
            kernel_dir = kernel_bundle(make_recipe(config.image.suite, []).kernel, progress=say)
        except (ToolError, OSError) as exc:
            return Check(
                "KVM",
                "warn",
                f"/dev/kvm exists; probe kernel unavailable ({exc})",
                "apt-get update, then vmvc doctor",
            )
        decision = decide_accel(
            conn,
            uri,
            kernel_dir / "vmlinuz",
            kernel_dir / "initrd.img",
            requested="auto",
            timeout=config.timeouts.probe_s,
            progress=say,
        )
        ok, reason = decision.mode == "kvm", decision.reason
    else:
        ok, reason = bool(cached["ok"]), str(cached["reason"])
    if ok:
        return Check("KVM", "ok", reason)
    return Check(
        "KVM",
        "warn",
        f"{reason.removesuffix(': VMs are emulated (TCG)')}: VMs will be emulated (TCG) and "
        "results are labelled so",
        "use a host with working KVM for overhead numbers (nested hosts often lack it)",
    )


def pool_check(conn: libvirt.virConnect) -> Check:
    pool = find_pool(conn)
    if pool is None:
        return Check(
            "storage pool",
            "warn",
            f"no pool '{POOL_NAME}' yet",
            f"the first bench creates it (dir pool at {POOL_PATH}) through the libvirt API",
        )
    try:
        if not pool.isActive():
            return Check(
                "storage pool",
                "warn",
                f"pool '{POOL_NAME}' is defined but inactive",
                f"virsh -c URI pool-start {POOL_NAME} (or run a bench)",
            )
        pool.refresh(0)
        _state, capacity, _allocation, available = pool.info()
        names = [n for n in pool.listVolumes() if n.startswith("vmvc-")]
    except libvirt.libvirtError as exc:
        return Check("storage pool", "fail", str(exc).splitlines()[0])
    gib = 2**30
    status = "ok" if available > 4 * gib else "warn"
    return Check(
        "storage pool",
        status,
        f"'{POOL_NAME}': {len(names)} vmvc volume(s), {available / gib:.1f} of "
        f"{capacity / gib:.1f} GiB free",
        "" if status == "ok" else "free space: an image and its instances need a few GiB",
    )


def remote_kvm_check(
    conn: libvirt.virConnect, name: str, config: Config, probe: bool, say: Say
) -> Check:
    """Capabilities first (free), then the same probe boot as a bench, through the URI."""
    if not kvm_offered(conn):
        return Check(
            "KVM",
            "warn",
            f"{name} offers no KVM domains (no usable /dev/kvm): VMs there are emulated (TCG)",
            "enable virtualization on that host (or nested virtualization for a VM host)",
        )
    if not probe:
        return Check("KVM", "warn", "KVM domains offered; not probed (--no-probe)", "")
    try:
        kernel, initrd = _probe_kernel(config, say)
        pool = ensure_pool(conn)
        say(f"host {name}: shipping the guest kernel into pool '{pool.name()}' for a KVM probe")
        remote_kernel, remote_initrd = ship_boot_files(conn, pool, kernel, initrd)
    except Exception as exc:
        return Check("KVM", "warn", f"KVM offered; probe not possible: {exc}", "vmvc image build")
    say(f"host {name}: probing KVM: booting a tiny guest")
    ok, reason = boot_probe(conn, remote_kernel, remote_initrd, config.timeouts.probe_s)
    if ok:
        return Check("KVM", "ok", reason)
    return Check(
        "KVM",
        "warn",
        f"{reason}: VMs there will be emulated (TCG)",
        "nested hosts often lack working KVM; use bare metal for overhead numbers",
    )


def _probe_kernel(config: Config, say: Say) -> tuple[Path, Path]:
    """The newest cached guest kernel bundle (no apt needed), else a fresh kernel bundle."""
    from vmvc.image.build import cached_kernel_bundles, kernel_bundle
    from vmvc.image.recipe import make_recipe

    bundles = cached_kernel_bundles()
    if bundles:
        return bundles[-1] / "vmlinuz", bundles[-1] / "initrd.img"
    kernel_dir = kernel_bundle(make_recipe(config.image.suite, []).kernel, progress=say)
    return kernel_dir / "vmlinuz", kernel_dir / "initrd.img"
