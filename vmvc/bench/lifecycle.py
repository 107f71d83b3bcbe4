"""Lifecycle workloads (provision, clone, scale, recovery, portability, isolation).

Unlike steady workloads, each one drives the backend itself (several instances, restarts,
exports), so it gets a context with the backend, the image and a factory for named,
labelled instance specs; it returns measurements and may add facts to the result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from vmvc.backends.base import Backend, InstanceSpec
from vmvc.bench.base import Measurement
from vmvc.config import Config
from vmvc.image.build import Artefacts
from vmvc.results import ResultDocument


@dataclass
class LifecycleContext:
    config: Config
    backend: Backend
    artefacts: Artefacts
    make_spec: Callable[..., InstanceSpec]
    phase: Callable[[str], None]
    doc: ResultDocument
    host: str = "local"


class LifecycleWorkload(Protocol):
    name: str
    applies_to: frozenset[str]  # backends where it means something (others are not planned)

    def run(self, context: LifecycleContext) -> list[Measurement]: ...


LIFECYCLE_WORKLOADS: dict[str, LifecycleWorkload] = {}


def applies(kind: str, backend: str) -> bool:
    """Whether a trial kind is planned for a backend (instance trials run everywhere)."""
    workload = LIFECYCLE_WORKLOADS.get(kind)
    return workload is None or backend in workload.applies_to


def _register_builtin() -> None:
    """The built-in lifecycle workloads, registered on import so `--workload NAME` finds them.

    Their modules import this one's types only when type checking, so either side may be
    imported first.
    """
    from vmvc.bench.clone import CloneWorkload
    from vmvc.bench.isolation import IsolationWorkload
    from vmvc.bench.portability import PortabilityWorkload
    from vmvc.bench.provision import ProvisionWorkload
    from vmvc.bench.recovery import RecoveryWorkload
    from vmvc.bench.scale import ScaleWorkload

    for workload in (
        ProvisionWorkload(),
        CloneWorkload(),
        ScaleWorkload(),
        RecoveryWorkload(),
        PortabilityWorkload(),
        IsolationWorkload(),
    ):
        LIFECYCLE_WORKLOADS[workload.name] = workload


_register_builtin()
