"""Benchmarking other hosts through their own engines: the config's `[[hosts]]`.

    [[hosts]]
    name = "lab1"
    libvirt_uri = "qemu+ssh://root@lab1/system?keyfile=/root/.ssh/vmvc&no_tty=1"
    docker_host = "ssh://root@lab1"

A run benchmarks "local" (this machine) and every listed host, or those named with
`vmvc bench --host NAME`. Each remote host gets the same plan as the local one, run by its own
BenchRunner whose samples, trials and errors carry the host's name. Only engines cross the
network: vmvc ships the image with the engines' own APIs (docker save/load, libvirt volume
upload) and never runs a shell command on the other host. Native stays local: it would need
vmvc and the rootfs on the other machine. Lifecycle workloads get the host's name in their
context and decide themselves (today they read host-side files and /proc, so they say "not
applicable" on a remote host).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vmvc.backends.base import Availability, Backend
from vmvc.config import Config, HostSettings
from vmvc.image.build import Artefacts
from vmvc.results import ResultDocument, SkippedBackend

LOCAL_HOST = "local"
Say = Callable[[str], None]

FOOTPRINT_METHOD = {
    "docker": "memory cgroup minus inactive file cache, from the engine's stats API "
    "(the containerd shim on that host is not counted)",
    "libvirt": "QEMU resident set size (RSS) from virDomainMemoryStats",
}


class RemoteHostError(Exception):
    """A configured host cannot be used; one line naming the host and what failed."""


def remote_backend_classes() -> dict[str, type[Backend]]:
    from vmvc.backends.docker_engine.remote import RemoteDockerBackend
    from vmvc.backends.libvirt_engine.remote import RemoteLibvirtBackend

    return {"docker": RemoteDockerBackend, "libvirt": RemoteLibvirtBackend}


@dataclass
class HostRun:
    """One remote host's part of a run: its probed backends and what they prepared."""

    name: str
    settings: HostSettings
    backends: dict[str, Backend] = field(default_factory=dict)
    skipped: list[SkippedBackend] = field(default_factory=list)
    prepared: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        for backend in self.backends.values():
            with contextlib.suppress(Exception):  # a dropped ssh link must not mask the run
                backend.close()


def choose_hosts(config: Config, names: list[str] | None) -> tuple[bool, list[HostSettings]]:
    """(benchmark this machine?, remote hosts to benchmark); default: local and all hosts."""
    configured: dict[str, HostSettings] = {}
    for host in config.hosts:
        if host.name == LOCAL_HOST:
            raise RemoteHostError(f"host name '{LOCAL_HOST}' is reserved for this machine")
        if host.name in configured:
            raise RemoteHostError(f"host '{host.name}' is listed twice in [[hosts]]")
        if not (host.libvirt_uri or host.docker_host):
            raise RemoteHostError(f"host '{host.name}' has neither libvirt_uri nor docker_host")
        configured[host.name] = host
    if not names:
        return True, list(configured.values())
    unknown = [n for n in names if n != LOCAL_HOST and n not in configured]
    if unknown:
        known = ", ".join([LOCAL_HOST, *configured]) if configured else LOCAL_HOST
        raise RemoteHostError(
            f"unknown host '{unknown[0]}' (known: {known}; add [[hosts]] to the config)"
        )
    chosen = [configured[n] for n in dict.fromkeys(names) if n != LOCAL_HOST]
    return LOCAL_HOST in names, chosen


def select_remote(config: Config, host: HostSettings, requested_all: bool) -> HostRun:
    """Probe the host's engines. A backend named explicitly must answer there; with
    `--backend all` one that does not is skipped (and said), like locally."""
    run = HostRun(host.name, host)
    classes = remote_backend_classes()
    unavailable = []
    for name in config.backends:
        reason = ""
        if name == "native":
            reason = "native runs on the local host only"
        elif name not in classes:
            reason = f"backend {name} has no remote form"
        elif name == "docker" and not host.docker_host:
            reason = "no docker_host configured for this host"
        elif name == "libvirt" and not host.libvirt_uri:
            reason = "no libvirt_uri configured for this host"
        if reason:
            run.skipped.append(SkippedBackend(backend=name, reason=reason, host=host.name))
            continue
        backend = classes[name](config, host)  # type: ignore[call-arg]
        try:
            availability = backend.probe()
        except Exception as exc:  # an ssh failure surfaces as anything from either SDK
            availability = _unavailable(exc)
        if availability.available:
            run.backends[name] = backend
            continue
        backend.close()
        if not requested_all:
            run.close()
            raise RemoteHostError(
                f"host {host.name}: backend '{name}' is not available: {availability.reason}"
            )
        unavailable.append(f"{name}: {availability.reason}")
        run.skipped.append(SkippedBackend(backend=name, reason=availability.reason, host=host.name))
    if not run.backends and unavailable:
        raise RemoteHostError(f"host {host.name}: no engine answers ({'; '.join(unavailable)})")
    return run


def _unavailable(exc: Exception) -> Availability:
    text = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
    return Availability(False, f"{exc.__class__.__name__}: {text}")


def prepare_remote(run: HostRun, artefacts: Artefacts, say: Say) -> None:
    """Ship the image to the host (cached there) and decide KVM or TCG on it."""
    from vmvc.backends.libvirt_engine.accel import AccelError

    for name, backend in run.backends.items():
        try:
            run.prepared[name] = backend.prepare(artefacts, lambda m: say(f"host {run.name}: {m}"))
        except AccelError:
            raise
        except Exception as exc:
            text = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
            raise RemoteHostError(f"host {run.name}: preparing {name} failed: {text}") from None


def describe(run: HostRun) -> dict[str, Any]:
    """environment.hosts.<name>: what the report needs to put a host beside another."""
    description: dict[str, Any] = {
        "docker_host": run.settings.docker_host,
        "libvirt_uri": run.settings.libvirt_uri,
        "backends": list(run.backends),
        "prepared": run.prepared,
        "footprint_method": {b: FOOTPRINT_METHOD[b] for b in run.backends if b in FOOTPRINT_METHOD},
    }
    for name, backend in run.backends.items():
        try:
            description.update(backend.environment())
        except Exception as exc:
            description[f"{name}_environment_error"] = str(exc).splitlines()[0]
    accel = run.prepared.get("libvirt", {}).get("accel")
    description["accel"] = accel
    return description


def record_hosts(doc: ResultDocument, local: bool, runs: list[HostRun]) -> None:
    """Which hosts a run covers and how each looked (the report and a resume read this)."""
    doc.environment["benchmarked_hosts"] = ([LOCAL_HOST] if local else []) + [r.name for r in runs]
    if runs:
        doc.environment["hosts"] = {run.name: describe(run) for run in runs}
    doc.skipped.extend(s for run in runs for s in run.skipped)


def select_remotes(
    config: Config, hosts: list[HostSettings], requested_all: bool, say: Say
) -> list[HostRun]:
    """select_remote for every host; on a failure the hosts already probed are closed."""
    runs: list[HostRun] = []
    try:
        for host in hosts:
            run = select_remote(config, host, requested_all)
            runs.append(run)
            for skipped in run.skipped:
                say(f"host {host.name}: skipping backend {skipped.backend}: {skipped.reason}")
    except RemoteHostError:
        for run in runs:
            run.close()
        raise
    return runs


def prepare_remotes(runs: list[HostRun], artefacts: Artefacts, say: Say) -> None:
    for run in runs:
        prepare_remote(run, artefacts, say)
        libvirt = run.prepared.get("libvirt", {})
        if libvirt.get("accel") == "tcg":
            say(f"host {run.name}: VMs will be emulated (TCG): {libvirt.get('accel_reason')}")
