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

    def run(self, context: LifecycleContext) -> list[Measurement]: ...


LIFECYCLE_WORKLOADS: dict[str, LifecycleWorkload] = {}
