"""Scale: N instances launched at once, for each N in [workload.scale] counts.

Each round launches N instances concurrently (one thread each, all specs made first), waits
until every one printed its ready marker, measures the host memory they hold, and tears
them all down before the next round. Samples per N (metadata n):

all_ready_s  launch to the last ready marker: the curve (vmvc.curves fits a line to it in
             the analysis step only where one fits, vmvc.linefit)
memory_mib   sum of the instances' own footprints (VM: QEMU PSS; container: cgroup + shim;
             native: process tree PSS); the host's MemAvailable drop is in the metadata

then the fitted memory per extra instance (vmvc.bench.scalefit): memory_per_instance_mib and
density_instances. Native scales plain agent processes.

Counts may be relative to the host's cores ("cores+1", vmvc.config.ScaleSettings): instances
boot in parallel until they outnumber the cores (a 1-vCPU VM keeps one core busy while it
boots), so all_ready_s is flat up to about the core count and rises after it. The counts are
resolved here with the CPUs this process may use (host_cpus in every sample's metadata).

Before anything is launched, every N whose estimated memory exceeds safe_memory_fraction of
the host's available memory is refused with one line: the other counts still run, and the
refused ones are named in every sample's metadata (refused_counts, refused) and so in the
report. Only when no N fits does the trial fail (nothing starts).
"""

from __future__ import annotations

import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import psutil

from vmvc.agent.protocol import AgentError, InstanceGone, ReadyInfo
from vmvc.backends.base import Instance
from vmvc.backends.capabilities import Capability
from vmvc.bench import footprint
from vmvc.bench.base import Measurement
from vmvc.bench.lifecycle_tools import LifecycleContext, LifecycleResult
from vmvc.bench.scalefit import ScalePoint, fit_measurements
from vmvc.config import host_cores

MIB = 1024 * 1024
# Extra time a round may take beyond one boot timeout before it is given up.
ROUND_MARGIN_S = 60.0


class ScaleRefused(RuntimeError):
    """A requested N would not fit safely in the host's memory (nothing was launched)."""


@dataclass(frozen=True)
class Refusal:
    """An N the memory guard refused before launching anything (reported, never dropped)."""

    n: int
    needs_mib: float
    limit_mib: float

    def text(self, backend: str, fraction: float, available_mib: float) -> str:
        return (
            f"scale N={self.n} on {backend} refused: needs about {self.needs_mib:.0f} MiB, "
            f"more than {fraction:.0%} of the {available_mib:.0f} MiB available"
        )


def split_counts(
    per_instance_mib: float, fraction: float, counts: list[int], available_mib: float
) -> tuple[list[int], list[Refusal]]:
    """(counts that fit, refusals): an N fits when its estimated memory is within the limit.

    `per_instance_mib` is the backend's conservative estimate (Backend.memory_estimate_mib).
    """
    limit = available_mib * fraction
    fitting = [n for n in counts if per_instance_mib * n <= limit]
    refused = [Refusal(n, per_instance_mib * n, limit) for n in counts if n not in fitting]
    return fitting, refused


def check_counts(
    backend: str, per_instance_mib: float, fraction: float, counts: list[int], available_mib: float
) -> list[Refusal]:
    """The refusals among `counts`; raise ScaleRefused (nothing launched) if none fits."""
    fitting, refused = split_counts(per_instance_mib, fraction, counts, available_mib)
    if not fitting:
        first = refused[0]
        raise ScaleRefused(
            f"scale N={first.n} on {backend} needs about {first.needs_mib:.0f} MiB, more than "
            f"{fraction:.0%} of the {available_mib:.0f} MiB available (none fits); "
            "lower [workload.scale] counts"
        )
    return refused


@dataclass
class _Slot:
    """One instance of a round, filled in by its thread."""

    done: threading.Event = field(default_factory=threading.Event)
    instance: Instance | None = None
    ready_at: float = 0.0
    error: BaseException | None = None


@dataclass
class RoundResult:
    n: int
    all_ready_s: float
    ready_s: list[float]
    memory_mib: float
    per_instance_mib: list[float]
    host_available_drop_mib: float


class ScaleWorkload:
    name = "scale"
    # Instances' footprints and this host's memory are read here: LAUNCH_MANY is declared
    # only by backends whose instances run on this host.
    requires = frozenset({Capability.LAUNCH_MANY})

    def run(self, context: LifecycleContext) -> LifecycleResult:
        backend, config = context.backend, context.config
        cores = host_cores()
        counts = config.workload.scale.resolve(cores)
        fraction = config.workload.scale.safe_memory_fraction
        memory = psutil.virtual_memory()
        total_mib, available_mib = memory.total / MIB, memory.available / MIB
        refused = check_counts(
            backend.name,
            backend.memory_estimate_mib(config.instance.memory_mib),
            fraction,
            counts,
            available_mib,
        )
        for refusal in refused:
            context.phase(refusal.text(backend.name, fraction, available_mib))
        counts = [n for n in counts if n not in {r.n for r in refused}]
        # Every sample says what the round was part of: the host's cores (where the curve
        # bends) and the counts the memory guard refused, so a report shows them.
        conditions: dict[str, Any] = {
            "host_cpus": cores,
            "vcpus_per_instance": config.instance.vcpus,
            "counts": counts,
        }
        if refused:
            conditions["refused_counts"] = [r.n for r in refused]
            conditions["refused"] = "; ".join(
                r.text(backend.name, fraction, available_mib) for r in refused
            )
        measured: list[Measurement] = []
        points: list[ScalePoint] = []
        for n in counts:
            context.phase(f"scale: {n} at once")
            result = launch_round(context, n)
            points.append(
                ScalePoint(n, result.all_ready_s, result.memory_mib, result.host_available_drop_mib)
            )
            measured.append(
                Measurement(
                    "all_ready_s",
                    result.all_ready_s,
                    "s",
                    False,
                    {
                        "n": n,
                        "ready_s": result.ready_s,
                        "first_ready_s": min(result.ready_s),
                        **conditions,
                    },
                )
            )
            measured.append(
                Measurement(
                    "memory_mib",
                    result.memory_mib,
                    "MiB",
                    False,
                    {
                        "n": n,
                        "basis": "sum of instance footprints (total_mib)",
                        "per_instance_mib": result.per_instance_mib,
                        "host_available_drop_mib": result.host_available_drop_mib,
                    },
                )
            )
        measured += fit_measurements(points, total_mib, available_mib, conditions)
        return LifecycleResult(measured)


def launch_round(context: LifecycleContext, n: int) -> RoundResult:
    """Launch n instances at once, measure when all are ready, always tear all down."""
    backend, timeout = context.backend, context.config.timeouts.boot_s
    specs = [context.make_spec(backend.name) for _ in range(n)]  # the namer is not threadsafe
    slots = [_Slot() for _ in range(n)]
    release = threading.Event()
    available_before = psutil.virtual_memory().available / MIB

    def hold(index: int) -> None:
        slot = slots[index]
        try:
            manager: AbstractContextManager[Instance] = backend.provision(
                context.artefacts, specs[index]
            )
            with manager as instance:
                ready = _wait_ready_unless(instance, timeout, release)
                if ready is None:
                    return  # the round was abandoned: leaving the block tears it down
                slot.ready_at = ready.at
                slot.instance = instance
                slot.done.set()
                release.wait()  # keep it up until the round is measured
        except BaseException as exc:  # reported by the round; the thread must not die silently
            slot.error = exc
        finally:
            slot.done.set()

    threads = [
        threading.Thread(target=hold, args=(i,), name=f"{specs[i].name}-scale", daemon=True)
        for i in range(n)
    ]
    started = time.monotonic()
    try:
        for thread in threads:
            thread.start()
        deadline = started + timeout + ROUND_MARGIN_S
        for slot in slots:
            slot.done.wait(max(0.0, deadline - time.monotonic()))
        errors = [s.error for s in slots if s.error is not None]
        if errors:
            raise errors[0]
        if not all(s.instance is not None for s in slots):
            raise RuntimeError(f"scale N={n}: not all instances were ready in time")
        ready = [s.ready_at - started for s in slots]
        time.sleep(footprint.SETTLE_SECONDS)
        per_instance = [_footprint_mib(s.instance) for s in slots if s.instance is not None]
        available_at_n = psutil.virtual_memory().available / MIB
    finally:
        release.set()
        for thread in threads:
            thread.join(timeout=120)
    return RoundResult(
        n=n,
        all_ready_s=max(ready),
        ready_s=[round(r, 4) for r in ready],
        memory_mib=sum(per_instance),
        per_instance_mib=[round(m, 2) for m in per_instance],
        host_available_drop_mib=round(available_before - available_at_n, 1),
    )


def _footprint_mib(instance: Instance) -> float:
    measured = instance.footprint()
    if "total_mib" not in measured:
        raise RuntimeError(f"no memory footprint for {instance.name} (process gone?)")
    return float(measured["total_mib"])


def _wait_ready_unless(
    instance: Instance, timeout: float, abandon: threading.Event
) -> ReadyInfo | None:
    """wait_ready in short slices, so an abandoned round (an error elsewhere, Ctrl-C) tears
    its instances down within a second instead of after a whole boot timeout."""
    deadline = time.monotonic() + timeout
    while not abandon.is_set():
        try:
            return instance.wait_ready(min(1.0, max(0.1, deadline - time.monotonic())))
        except InstanceGone:
            raise
        except AgentError:
            if time.monotonic() >= deadline:
                raise
    return None
