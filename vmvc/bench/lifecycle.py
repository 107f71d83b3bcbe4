"""Lifecycle workloads (provision, clone, scale, density, recovery, ...): the registry.

Unlike steady workloads, each one drives the backend itself (several instances, restarts,
exports) through the backend's lifecycle operations, so it gets a context with the backend,
the image and a factory for named, labelled instance specs; it returns measurements and
facts (vmvc.bench.lifecycle_tools). Which backends it is planned for follows from the
capabilities it requires and the backend declares.
"""

from __future__ import annotations

from vmvc.backends.base import Backend
from vmvc.bench.clone import CloneWorkload
from vmvc.bench.density import DensityWorkload
from vmvc.bench.isolation import IsolationWorkload
from vmvc.bench.lifecycle_tools import LifecycleContext, LifecycleResult, LifecycleWorkload
from vmvc.bench.portability import PortabilityWorkload
from vmvc.bench.provision import ProvisionWorkload
from vmvc.bench.recovery import RecoveryWorkload
from vmvc.bench.scale import ScaleWorkload

__all__ = ["LIFECYCLE_WORKLOADS", "LifecycleContext", "LifecycleResult", "applies"]

LIFECYCLE_WORKLOADS: dict[str, LifecycleWorkload] = {
    workload.name: workload
    for workload in (
        ProvisionWorkload(),
        CloneWorkload(),
        ScaleWorkload(),
        DensityWorkload(),
        RecoveryWorkload(),
        PortabilityWorkload(),
        IsolationWorkload(),
    )
}


def applies(kind: str, backend: Backend) -> bool:
    """Whether a trial kind is planned for a backend: instance trials run everywhere, a
    lifecycle workload where the backend declares every capability it requires."""
    workload = LIFECYCLE_WORKLOADS.get(kind)
    return workload is None or workload.requires <= backend.capabilities
