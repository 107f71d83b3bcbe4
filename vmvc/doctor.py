"""`vmvc doctor [--host NAME]`: each prerequisite, whether it holds, and the command that
fixes it.

One path for every host: this machine is the host named "local" (it also gets the checks of
the tools and privileges vmvc itself needs here); a `[[hosts]]` entry is checked through the
same engine connections a bench uses, so a check that passes is one the bench passes too.
What an engine needs (a daemon, virtlogd, a storage pool, working KVM) its backend says in
`Backend.checks`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vmvc.backends.base import Check, available_backend_classes
from vmvc.config import Config, HostSettings, load_config
from vmvc.hosts import LOCAL_HOST, HostError, choose_host, is_local

__all__ = ["Check", "backend_checks", "print_checks", "run_doctor"]

HOST_TOOLS = {
    "debootstrap": "debootstrap",
    "mke2fs": "e2fsprogs",
    "qemu-img": "qemu-utils",
    "qemu-system-x86_64": "qemu-system-x86",
    "cpio": "cpio",
    "busybox": "busybox-static",
    "unshare": "util-linux",
    "zstd": "zstd",  # portability's compressed export form
    "apt-get": "apt",
}


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


def backend_checks(
    config: Config, host: HostSettings, *, probe: bool, say: Callable[[str], None]
) -> list[Check]:
    """Every backend's own checks on `host` (an engine that raises is one failed line)."""
    checks: list[Check] = []
    for name, cls in available_backend_classes().items():
        backend = cls(config, host)  # type: ignore[call-arg]
        try:
            checks += backend.checks(probe, say)
        except Exception as exc:  # an ssh failure surfaces as anything from either SDK
            text = (str(exc).strip().splitlines() or [""])[0]
            checks.append(Check(f"backend {name}", "fail", f"{exc.__class__.__name__}: {text}"))
        finally:
            backend.close()
    return checks


def _leftovers(config: Config, host: HostSettings) -> Check:
    from vmvc.cleanup import find_leftovers
    from vmvc.liveness import RunLockError

    try:
        found = find_leftovers(config=config, host=host)
    except RunLockError as exc:
        return Check("leftovers", "warn", str(exc), "sudo vmvc doctor")
    # Another controller's resources are not this machine's to clean: not counted.
    dead = [item for item in found if not (item.alive or item.owner)]
    if dead:
        names = ", ".join(f"{item.kind} {item.name}" for item in dead[:4])
        fix = "vmvc clean" if is_local(host) else f"vmvc clean --host {host.name} --config FILE"
        return Check("leftovers", "warn", f"{len(dead)} from dead runs: {names}", fix)
    return Check("leftovers", "ok", "none")


def run_doctor(
    console: Console,
    *,
    probe: bool,
    say: Callable[[str], None],
    config: Config | None = None,
    host: str = LOCAL_HOST,
) -> int:
    """Every check is bounded: a daemon that does not answer is named within seconds."""
    config = config or load_config("quick")
    title = "vmvc doctor" if host == LOCAL_HOST else f"vmvc doctor --host {host}"
    try:
        chosen = choose_host(config, host)
    except HostError as exc:
        fix = "vmvc doctor --host NAME --config FILE"
        return print_checks(console, [Check("host", "fail", str(exc), fix)], title)
    local = is_local(chosen)
    checks = [_root(), *_tools()] if local else []
    checks += backend_checks(config, chosen, probe=probe, say=say)
    if local:
        checks.append(_image())
    checks.append(_leftovers(config, chosen))
    return print_checks(console, checks, title)


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
