"""Density: what the first instance and each extra instance cost the whole host (C02, C10).

One series per trial: read the host (vmvc.bench.host_memory: median MemAvailable, engine
daemons' PSS), then add instances, as many at a time as the host has cores, up to each N
(containers and processes: [workload.density] counts, e.g. 1, 16, 32, 64; VMs: vm_counts,
e.g. 1, 2, 4), each running the same memory-touching workload (vmvc-memtool over
touch_mib) once it is ready, and after a settle wait read the host again. Instances stay up
while the series grows (N=16 is N=8 plus eight more), so the series costs max(N) launches,
not their sum; all are removed at the end and the host is read once more (its drift is part
of the noise floor).
The measuring process's own growth is taken out of every drop.

Metrics (vmvc.bench.host_memory says how they are counted):

first_instance_mib    the host's MemAvailable drop with one instance (daemon growth
                      included): the footprint C02 compares
marginal_mib          slope of the drop over N: what one more instance costs the host
density_instances     MemAvailable at the start / marginal_mib: C10's count
host_drop_mib         the drop at each N (metadata n), with the per-process PSS breakdown

Before anything is launched, a series whose largest N times the backend's conservative
estimate exceeds safe_memory_fraction of the available memory is refused with one line.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import AbstractContextManager
from typing import Any

from vmvc.backends.base import Backend, Instance, InstanceSpec
from vmvc.backends.capabilities import Capability
from vmvc.bench.base import Measurement
from vmvc.bench.host_memory import (
    ABOVE_NOISE_FACTOR,
    Accounting,
    DensityPoint,
    account,
    all_processes_pss_mib,
    check_counts,
    daemons_pss_mib,
    density,
    process_pss_mib,
    read_host,
)
from vmvc.bench.lifecycle_tools import LifecycleContext, LifecycleResult
from vmvc.config import Config, host_cores

METHOD = (
    "host MemAvailable drop (median of reads, page cache not dropped), instances touched "
    "memory first; marginal = least-squares slope over N; density = MemAvailable at start / "
    "marginal"
)


def series(config: Config, backend: Backend) -> list[int]:
    """The instance counts for this backend: VMs get the short series (by kind, not name)."""
    settings = config.workload.density
    return list(settings.vm_counts if backend.kind == "vm" else settings.counts)


def touch_args(config: Config) -> list[str]:
    """vmvc-memtool's bandwidth run over touch_mib, then a 1 MiB chase: the same on every
    backend, it faults in the working set (and frees it again). memtool makes at least three
    passes per kernel whatever the time asked, so 0.01 s is "the minimum": every page is
    touched, and the series stays short (the longer it takes, the more other work on the
    host moves MemAvailable meanwhile; 0.2 s each cost 0.4 s per instance)."""
    return [str(config.workload.density.touch_mib), "0.01", "1", "1", "0.01"]


class DensityWorkload:
    name = "density"
    # This host's memory is read: LAUNCH_MANY is declared only where instances run here.
    requires = frozenset({Capability.LAUNCH_MANY})

    def run(self, context: LifecycleContext) -> LifecycleResult:
        backend, config = context.backend, context.config
        settings = config.workload.density
        counts = series(config, backend)
        baseline = read_host(settings.reads)
        check_counts(
            backend.name,
            backend.memory_estimate_mib(config.instance.memory_mib),
            settings.safe_memory_fraction,
            counts,
            baseline.available_mib,
        )
        daemons = backend.engine_daemons()
        baseline_daemons = daemons_pss_mib(daemons)
        harness_baseline = process_pss_mib(os.getpid()) or 0.0
        processes_baseline = all_processes_pss_mib()
        points: list[DensityPoint] = []
        held = Held()
        try:
            instances: list[Instance] = []
            for n in counts:
                context.phase(f"density: {n} up")
                instances += _launch_and_touch_many(context, held, n - len(instances))
                time.sleep(settings.settle_s)
                reading = read_host(settings.reads)
                processes_now = all_processes_pss_mib()
                context.phase(f"density: {n} up, host read")
                points.append(
                    DensityPoint(
                        n,
                        reading,
                        daemons_pss_mib(daemons),
                        [_own_mib(instance) for instance in instances],
                        (process_pss_mib(os.getpid()) or 0.0) - harness_baseline,
                        processes_now - processes_baseline,
                    )
                )
        finally:
            context.phase("density: removing all")
            held.remove_all()
        time.sleep(settings.settle_s)
        after = read_host(settings.reads)
        drift = baseline.available_mib - after.available_mib
        accounting = account(baseline, baseline_daemons, points, drift)
        return LifecycleResult(
            measurements(accounting, baseline.available_mib, drift, sorted(daemons), config)
        )


class Held:
    """The series' instances, each with the context manager that removes it (thread-safe to
    add to). They are removed together at the end, as many at a time as the host has cores:
    one by one, 64 containers took 7 s to remove here."""

    def __init__(self) -> None:
        self._managers: list[AbstractContextManager[Instance]] = []
        self._lock = threading.Lock()

    def enter(self, manager: AbstractContextManager[Instance]) -> Instance:
        instance = manager.__enter__()
        with self._lock:
            self._managers.append(manager)
        return instance

    def remove_all(self) -> None:
        """Remove every held instance (each one, even when another's removal fails; the
        first failure is raised after all were tried)."""
        with self._lock:
            managers, self._managers = self._managers, []
        if not managers:
            return
        with ThreadPoolExecutor(max_workers=min(len(managers), host_cores())) as pool:
            futures = [pool.submit(manager.__exit__, None, None, None) for manager in managers]
        for future in futures:
            future.result()  # the first failure, once every removal was tried


def _launch_and_touch_many(context: LifecycleContext, held: Held, count: int) -> list[Instance]:
    """`count` more instances, launched as many at a time as the host has cores, then each
    touching its memory in turn.

    Memory is what a series measures, not time: launching in parallel changes no figure,
    and a shorter series gives the host's other work less time to move MemAvailable. Every
    launch is waited for, so each one that got made is in `held` (removed at the end)
    before a failure is raised. The touches run one at a time, from this thread: they take
    0.4 s each, and concurrent `docker exec` streams through one client once lost the start
    of an output here (1 series in 12 of a default run).
    """
    if count <= 0:
        return []
    # Names come from one iterator: drawn here, in this thread, not in the workers.
    specs = [context.make_spec(context.backend.name) for _ in range(count)]
    with ThreadPoolExecutor(max_workers=min(count, host_cores())) as pool:
        futures = [pool.submit(_launch, context, held, spec) for spec in specs]
        wait(futures)
    launched = [future.result() for future in futures]  # the first failure, if any, is raised
    config = context.config
    for instance in launched:
        instance.run("memory", touch_args(config), config.timeouts.workload_s)
    return launched


def _launch(context: LifecycleContext, held: Held, spec: InstanceSpec) -> Instance:
    instance = held.enter(context.backend.provision(context.artefacts, spec))
    instance.wait_ready(context.config.timeouts.boot_s)
    return instance


def _own_mib(instance: Instance) -> float:
    return float(instance.footprint().get("total_mib", 0.0))


def measurements(
    accounting: Accounting,
    available_mib: float,
    drift_mib: float,
    daemons: list[str],
    config: Config,
) -> list[Measurement]:
    """The accounting as samples (pure: unit-tested)."""
    common: dict[str, Any] = {
        "method": METHOD,
        "counts": accounting.counts,
        "touch_mib": config.workload.density.touch_mib,
        "engine_daemons": daemons,
        "noise_mib": round(accounting.noise_mib, 2),
        "drift_after_removal_mib": round(drift_mib, 2),
        "above_noise": accounting.above_noise,
        "above_noise_rule": f"drop(max N) - drop(1) > {ABOVE_NOISE_FACTOR:g} x noise",
    }
    measured = [
        Measurement(
            "host_drop_mib",
            round(point["host_drop_mib"], 2),
            "MiB",
            False,
            point,
        )
        for point in accounting.points_metadata
    ]
    measured.append(
        Measurement(
            "first_instance_mib",
            round(accounting.first_instance_mib, 2),
            "MiB",
            False,
            common | {"breakdown": {k: round(v, 2) for k, v in accounting.first_breakdown.items()}},
        )
    )
    fit = accounting.marginal
    if fit is None:
        return measured  # one count only: no slope, no density
    interval, robust = accounting.marginal_interval, accounting.robust_slope
    fit_metadata = fit.metadata(accounting.counts) | {
        "slope_ci_low": None if interval is None else interval.low,
        "slope_ci_high": None if interval is None else interval.high,
        "slope_ci_confidence": None if interval is None else interval.confidence,
        "slope_ci_method": None if interval is None else interval.method,
        "breakdown_slopes": accounting.breakdown_slopes,
        "tenant_corrected_slope_mib": accounting.tenant_corrected_slope,
        "theil_sen_slope": None if robust is None else robust[0],
        "theil_sen_low": None if robust is None else robust[1],
        "theil_sen_high": None if robust is None else robust[2],
    }
    measured.append(
        Measurement("marginal_mib", round(fit.slope, 3), "MiB", False, common | fit_metadata)
    )
    fits = density(available_mib, fit.slope)
    if fits is not None:
        measured.append(
            Measurement(
                "density_instances",
                round(fits, 1),
                "instances",
                True,
                common
                | {
                    "basis": "host MemAvailable at start / marginal_mib",
                    "host_available_at_start_mib": round(available_mib, 1),
                    "marginal_mib": fit.slope,
                },
            )
        )
    return measured
