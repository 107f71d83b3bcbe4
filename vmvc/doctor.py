"""`vmvc doctor`: each prerequisite, whether it holds, and the command that fixes it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vmvc.config import Config, load_config

HOST_TOOLS = {
    "debootstrap": "debootstrap",
    "mke2fs": "e2fsprogs",
    "qemu-img": "qemu-utils",
    "qemu-system-x86_64": "qemu-system-x86",
    "cpio": "cpio",
    "busybox": "busybox-static",
    "unshare": "util-linux",
    "apt-get": "apt",
}


@dataclass
class Check:
    name: str
    status: str  # "ok" | "warn" | "fail"
    detail: str
    fix: str = ""


def _tools() -> list[Check]:
    missing = [pkg for tool, pkg in HOST_TOOLS.items() if shutil.which(tool) is None]
    if missing:
        return [
            Check(
                "host tools",
                "fail",
                f"missing: {', '.join(sorted(set(missing)))}",
                f"apt-get install {' '.join(sorted(set(missing)))} (or `make setup`)",
            )
        ]
    return [Check("host tools", "ok", ", ".join(HOST_TOOLS))]


def _root() -> Check:
    if os.geteuid() == 0:
        return Check("privileges", "ok", "running as root (native chroot, qemu:///system)")
    return Check(
        "privileges",
        "warn",
        "not root: the native backend and qemu:///system need root",
        "sudo vmvc ... (or leave native out)",
    )


def _kvm(config: Config, probe: bool, say: Callable[[str], None]) -> Check:
    from vmvc.backends.libvirt import LibvirtBackend
    from vmvc.backends.libvirt_engine.accel import cached_probe, decide_accel

    if not Path("/dev/kvm").exists():
        return Check(
            "KVM",
            "warn",
            "no /dev/kvm: VMs will be emulated (TCG), tens of times slower",
            "enable virtualization in firmware, or `modprobe kvm_intel`/`kvm_amd`",
        )
    cached = cached_probe(config.libvirt_uri)
    if cached is None and not probe:
        return Check("KVM", "warn", "/dev/kvm exists; not probed (--no-probe)", "vmvc doctor")
    if cached is None:
        backend = LibvirtBackend(config)
        if not backend.probe().available:
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
            backend.conn,
            config.libvirt_uri,
            kernel_dir / "vmlinuz",
            kernel_dir / "initrd.img",
            requested="auto",
            timeout=config.timeouts.probe_s,
            progress=say,
        )
        backend.close()
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


def _backends(config: Config) -> list[Check]:
    from vmvc.backends.base import available_backend_classes

    checks = []
    for name, cls in available_backend_classes().items():
        backend = cls(config)
        availability = backend.probe()
        backend.close()
        checks.append(
            Check(
                f"backend {name}",
                "ok" if availability.available else "fail",
                availability.reason,
                availability.fix,
            )
        )
    virtlogd = Path("/run/libvirt/virtlogd-sock").exists()
    checks.append(
        Check(
            "virtlogd",
            "ok" if virtlogd else "fail",
            "socket present" if virtlogd else "not running: VMs cannot start",
            "" if virtlogd else "virtlogd -d",
        )
    )
    return checks


def _image() -> Check:
    from vmvc.image.build import cached_images

    images = cached_images()
    if images:
        return Check("image cache", "ok", f"{len(images)} image(s), newest {images[-1].name}")
    return Check(
        "image cache",
        "warn",
        "no image built yet (first bench builds it, ~1 min)",
        "vmvc image build",
    )


def _leftovers() -> Check:
    from vmvc.cleanup import find_leftovers
    from vmvc.liveness import RunLockError

    try:
        dead = [item for item in find_leftovers() if not (item.alive or item.owner)]
    except RunLockError as exc:
        return Check("leftovers", "warn", str(exc), "sudo vmvc doctor")
    if dead:
        names = ", ".join(item.name for item in dead[:4])
        return Check("leftovers", "warn", f"{len(dead)} from dead runs: {names}", "vmvc clean")
    return Check("leftovers", "ok", "none")


def run_doctor(
    console: Console, *, probe: bool, say: Callable[[str], None], config: Config | None = None
) -> int:
    """Every check is bounded: a daemon that does not answer is named within seconds."""
    config = config or load_config("quick")
    checks = [
        _root(),
        *_tools(),
        *_backends(config),
        _kvm(config, probe, say),
        _image(),
        _leftovers(),
    ]
    return print_checks(console, checks, "vmvc doctor")


def print_checks(console: Console, checks: list[Check], title: str) -> int:
    """The checks as a table; exit code 1 if any failed (warnings do not fail)."""
    table = Table(title=title, show_lines=False)
    for column in ("check", "status", "detail", "fix"):
        table.add_column(column, overflow="fold")
    style = {"ok": "green", "warn": "yellow", "fail": "red"}
    for check in checks:
        # Details quote configs and engine errors: "[[hosts]]" is text, not rich markup.
        table.add_row(
            check.name,
            f"[{style[check.status]}]{check.status}[/]",
            escape(check.detail),
            escape(check.fix),
        )
    console.print(table)
    return 1 if any(c.status == "fail" for c in checks) else 0
