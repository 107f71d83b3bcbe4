"""Small helpers shared by the lifecycle workloads (provision, clone, scale, ...)."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from vmvc.bench.base import Measurement

if TYPE_CHECKING:  # the registry in vmvc.bench.lifecycle imports this module
    from vmvc.backends.docker import DockerBackend
    from vmvc.backends.libvirt import LibvirtBackend
    from vmvc.bench.lifecycle import LifecycleContext

# Backends where an instance is something the engine creates from the image. For native
# the "instance" is the host itself: provisioning, cloning, exporting or self-healing it
# has no meaning, so those workloads return no samples there.
INSTANCE_BACKENDS = frozenset({"docker", "libvirt"})


class Timer:
    """Seconds spent in a `with` block, on the monotonic clock (set even if it raises)."""

    def __init__(self) -> None:
        self.started = 0.0
        self.seconds = 0.0

    def __enter__(self) -> Timer:
        self.started = time.monotonic()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.seconds = time.monotonic() - self.started


def not_applicable(context: LifecycleContext, workload: str, why: str) -> list[Measurement]:
    """No samples: the report shows "—" for this backend; the trial itself succeeds."""
    context.phase(f"{workload}: not applicable ({why})")
    return []


def remote(context: LifecycleContext) -> bool:
    """Lifecycle workloads read host files, /proc and host memory directly: a remote
    engine's instances live elsewhere, so they are measured only on the local host."""
    return context.host != "local"


def per_engine(
    context: LifecycleContext,
    workload: str,
    *,
    docker: Callable[[LifecycleContext, DockerBackend], list[Measurement]],
    libvirt: Callable[[LifecycleContext, LibvirtBackend], list[Measurement]],
    otherwise: str,
) -> list[Measurement]:
    """Run a lifecycle workload's Docker or libvirt variant on the local host; anywhere else
    (a remote host, the native backend) record why it does not apply."""
    from vmvc.backends.docker import DockerBackend
    from vmvc.backends.libvirt import LibvirtBackend

    if remote(context):
        return not_applicable(context, workload, "measured on the local host only")
    backend = context.backend
    if isinstance(backend, DockerBackend):
        return docker(context, backend)
    if isinstance(backend, LibvirtBackend):
        return libvirt(context, backend)
    return not_applicable(context, workload, otherwise)


def seconds(metric: str, value: float, **metadata: Any) -> Measurement:
    return Measurement(metric, round(value, 6), "s", False, dict(metadata))


def byte_count(metric: str, value: float, **metadata: Any) -> Measurement:
    return Measurement(metric, float(value), "bytes", False, dict(metadata))
