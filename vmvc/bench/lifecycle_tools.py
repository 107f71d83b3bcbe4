"""What every lifecycle workload shares: its context, its result, timing and measurement helpers.

The workloads (provision, clone, scale, recovery, portability, isolation) import this module;
the registry in vmvc.bench.lifecycle imports the workloads. A workload is engine-neutral: it
calls the backend's lifecycle operations (vmvc.backends.capabilities), times the steps
around them itself, and names the capabilities it needs in `requires`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

from vmvc.backends.base import Backend, InstanceSpec
from vmvc.backends.capabilities import Capability
from vmvc.bench.base import Measurement
from vmvc.config import Config
from vmvc.image.build import Artefacts


@dataclass
class LifecycleContext:
    config: Config
    backend: Backend
    artefacts: Artefacts
    make_spec: Callable[..., InstanceSpec]
    phase: Callable[[str], None]
    host: str = "local"
    # Facts this run already holds for this backend (from an earlier trial), read-only.
    known_facts: Mapping[str, Any] | None = None


@dataclass
class LifecycleResult:
    """Samples of one trial, and facts for the result's `facts[backend]` (None: no facts)."""

    measurements: list[Measurement] = field(default_factory=list)
    facts: dict[str, Any] | None = None


class LifecycleWorkload(Protocol):
    name: str
    requires: frozenset[Capability]  # planned only for backends declaring all of them

    def run(self, context: LifecycleContext) -> LifecycleResult: ...


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


def seconds(metric: str, value: float, **metadata: Any) -> Measurement:
    return Measurement(metric, round(value, 6), "s", False, dict(metadata))


def byte_count(metric: str, value: float, **metadata: Any) -> Measurement:
    return Measurement(metric, float(value), "bytes", False, dict(metadata))
