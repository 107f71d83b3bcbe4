"""Which backends run on which host, and what they prepared there.

One path for every host, the local machine included: the config's backends are constructed
for the host (`cls(config, host)`), probed, and kept when they answer. An engine the host
does not offer (no URI for it in `[[hosts]]`, native anywhere but here) is skipped without
a fuss; a backend named explicitly that does not answer stops the run, with `--backend all`
it is skipped and said. Each host then gets the same plan, run by its own BenchRunner whose
samples, trials and errors carry the host's name. How an engine reaches another host (ssh,
image shipping, a storage pool) is the engine's business: nothing here names one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vmvc.backends.base import Availability, Backend, BackendError, available_backend_classes
from vmvc.config import Config, HostSettings
from vmvc.hosts import HostError, is_local
from vmvc.image.build import Artefacts
from vmvc.results import ResultDocument, SkippedBackend

Say = Callable[[str], None]


@dataclass
class HostRun:
    """One host's part of a run: its probed backends and what they prepared."""

    settings: HostSettings
    backends: dict[str, Backend] = field(default_factory=dict)
    skipped: list[SkippedBackend] = field(default_factory=list)
    prepared: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def local(self) -> bool:
        return is_local(self.settings)

    def say(self, say: Say) -> Say:
        """`say`, prefixed with the host's name unless it is this machine."""
        return say if self.local else (lambda message: say(f"host {self.name}: {message}"))

    def close(self) -> None:
        for backend in self.backends.values():
            with contextlib.suppress(Exception):  # a dropped ssh link must not mask the run
                backend.close()


def select_host(config: Config, host: HostSettings, requested_all: bool) -> HostRun:
    """Probe the config's backends on `host`. Raises HostError for an unknown backend, a
    backend named explicitly that does not answer, or a host where none answers."""
    classes = available_backend_classes()
    unknown = [b for b in config.backends if b not in classes]
    if unknown:
        raise HostError(
            f"unknown backend '{unknown[0]}' (available: {', '.join(classes)}, or 'all')"
        )
    run = HostRun(host)
    prefix = "" if run.local else f"host {host.name}: "
    unavailable: list[str] = []
    for name in config.backends:
        backend = classes[name](config, host)  # type: ignore[call-arg]
        try:
            availability = backend.probe()
        except Exception as exc:  # an ssh failure surfaces as anything from either SDK
            availability = _unavailable(exc)
        if availability.available:
            run.backends[name] = backend
            continue
        backend.close()
        if availability.offered and not requested_all:
            run.close()
            fix = f"; fix: {availability.fix}" if availability.fix else ""
            raise HostError(
                f"{prefix}backend '{name}' is not available: {availability.reason}{fix}"
            )
        if availability.offered:
            unavailable.append(f"{name}: {availability.reason}")
        run.skipped.append(SkippedBackend(backend=name, reason=availability.reason, host=host.name))
    if not run.backends and unavailable:  # a host that offers none of them just sits out
        reasons = "; ".join(unavailable)
        doctor = "vmvc doctor" if run.local else f"vmvc doctor --host {host.name}"
        raise HostError(f"{prefix}no backend is available ({reasons}); run `{doctor}`")
    return run


def _unavailable(exc: Exception) -> Availability:
    text = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
    return Availability(False, f"{exc.__class__.__name__}: {text}")


def select_hosts(
    config: Config, hosts: list[HostSettings], requested_all: bool, say: Say
) -> list[HostRun]:
    """select_host for every host; on a failure the hosts already probed are closed."""
    runs: list[HostRun] = []
    try:
        for host in hosts:
            run = select_host(config, host, requested_all)
            runs.append(run)
            for skipped in run.skipped:
                run.say(say)(f"skipping backend {skipped.backend}: {skipped.reason}")
    except HostError:
        for run in runs:
            run.close()
        raise
    return runs


def prepare_host(run: HostRun, artefacts: Artefacts, say: Say) -> None:
    """Each backend derives its form of the image on the host (cached there). A
    BackendError (e.g. --accel kvm without KVM) passes as it is; any other failure becomes
    one HostError line naming the host and the backend."""
    tell = run.say(say)
    prefix = "" if run.local else f"host {run.name}: "
    for name, backend in run.backends.items():
        try:
            run.prepared[name] = backend.prepare(artefacts, tell)
        except BackendError:
            raise
        except Exception as exc:
            text = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
            raise HostError(f"{prefix}preparing {name} failed: {text}") from None
        facts = run.prepared[name]
        if isinstance(facts, dict) and facts.get("accel") == "tcg":
            tell(f"VMs will be emulated (TCG): {facts.get('accel_reason')}")


def prepare_hosts(runs: list[HostRun], artefacts: Artefacts, say: Say) -> None:
    for run in runs:
        prepare_host(run, artefacts, say)


def describe(run: HostRun) -> dict[str, Any]:
    """environment.hosts.<name>: what the report needs to put a host beside another."""
    description: dict[str, Any] = {
        "docker_host": run.settings.docker_host,
        "libvirt_uri": run.settings.libvirt_uri,
        "backends": list(run.backends),
        "prepared": run.prepared,
        "footprint_method": {},
    }
    for name, backend in run.backends.items():
        try:
            environment = backend.environment()
        except Exception as exc:
            description[f"{name}_environment_error"] = str(exc).splitlines()[0]
            continue
        # How the engine measures memory there (it differs from this machine's way).
        method = environment.pop("footprint_method", None)
        if method:
            description["footprint_method"][name] = method
        description.update(environment)
    description["accel"] = next(
        (f["accel"] for f in run.prepared.values() if isinstance(f, dict) and "accel" in f),
        None,
    )
    return description


def record_hosts(doc: ResultDocument, runs: list[HostRun]) -> None:
    """Which hosts a run covers and how each other host looked (the report and a resume
    read this; this machine's environment is the document's own)."""
    doc.environment["benchmarked_hosts"] = [run.name for run in runs]
    others = [run for run in runs if not run.local]
    if others:
        doc.environment["hosts"] = {run.name: describe(run) for run in others}
    doc.skipped.extend(s for run in others for s in run.skipped)
