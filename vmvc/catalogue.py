"""What vmvc measures, in one place: every workload and metric, its title, unit and direction.

Reports, charts, verdict sentences, compare and history read titles, units, order and which
metric a workload is judged by from here, and nowhere else. The bottom layer: it imports
nothing of vmvc, so every other module may import it.

A metric a workload emits that is not listed here (a new one, or a third-party backend's)
still renders everywhere: it is shown under its own name, after the known ones, with the
unit and direction its samples carry (see `metric`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# How a value is written: a plain number, or a byte count people read in MiB/GiB.
ValueFormat = Literal["number", "bytes"]


@dataclass(frozen=True)
class Metric:
    name: str
    title: str
    unit: str
    higher_is_better: bool
    format: ValueFormat = "number"
    # A verdict rests on it (vmvc.claims), so the runner's stopping rule waits for its
    # interval (vmvc.stats.DECISION_RATIOS).
    decides: bool = False
    # An outcome recorded instead of another metric (reports print `outcome` in that
    # metric's cell, with this one's value): no_restart_watch_s stands in for recovery_s.
    instead_of: str | None = None
    outcome: str = ""


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    metrics: tuple[Metric, ...]
    # The figure a claim decides on (and the runner's stopping rule waits for); None when
    # the workload is reported without a verdict of its own.
    headline: str | None = None
    # Named forms every metric of the workload is measured in, in report order; each form
    # is a metric group of its own (``export_bytes@compressed``, vmvc.keys), never pooled.
    forms: tuple[str, ...] = ()

    def metric(self, name: str) -> Metric | None:
        return next((m for m in self.metrics if m.name == name), None)


def _seconds(name: str, title: str, *, decides: bool = False) -> Metric:
    return Metric(name, title, "s", False, decides=decides)


def _mib(name: str, title: str, *, decides: bool = False) -> Metric:
    return Metric(name, title, "MiB", False, decides=decides)


def _bytes(name: str, title: str) -> Metric:
    return Metric(name, title, "bytes", False, "bytes")


WORKLOADS: tuple[Workload, ...] = (
    Workload(
        "startup",
        "Startup (start to ready)",
        (
            _seconds("total_s", "start to ready", decides=True),
            _seconds("create_s", "create"),
            _seconds("firmware_kernel_s", "firmware + kernel"),
            _seconds("initramfs_s", "initramfs"),
            _seconds("userspace_s", "user space"),
            _seconds("start_s", "start"),
            _seconds("spawn_s", "spawn"),
            _seconds("ready_s", "ready"),
        ),
        headline="total_s",
    ),
    Workload(
        "cpu",
        "CPU (sysbench cpu)",
        (Metric("events_per_s", "CPU events/s", "events/s", True, decides=True),),
        headline="events_per_s",
    ),
    Workload(
        "memory",
        "Memory (STREAM triad/copy bandwidth, random pointer-chase latency)",
        (
            Metric("bandwidth_mib_s", "memory bandwidth (triad)", "MiB/s", True, decides=True),
            Metric("copy_mib_s", "memory bandwidth (copy)", "MiB/s", True),
            Metric("latency_ns", "memory latency", "ns", False, decides=True),
        ),
        headline="bandwidth_mib_s",
    ),
    Workload(
        "io",
        "Disk I/O (fio, 4k random and 1M sequential)",
        (
            Metric("randread_4k_iops", "4k random read IOPS", "IOPS", True, decides=True),
            Metric("randwrite_4k_iops", "4k random write IOPS", "IOPS", True, decides=True),
            Metric("randread_4k_lat_us", "4k random read latency", "us", False),
            Metric("randwrite_4k_lat_us", "4k random write latency", "us", False),
            Metric("seqread_1m_mib_s", "1M sequential read", "MiB/s", True, decides=True),
            Metric("seqwrite_1m_mib_s", "1M sequential write", "MiB/s", True, decides=True),
        ),
        headline="randread_4k_iops",
    ),
    Workload(
        "footprint",
        "Idle footprint (per-process breakdown of one instance)",
        (
            _mib("total_mib", "per-process PSS of one idle instance (breakdown)"),
            _mib("pss_mib", "PSS"),
            _mib("uss_mib", "USS"),
            _mib("rss_mib", "RSS"),
            _mib("cgroup_mib", "cgroup"),
            _mib("cgroup_rss_mib", "cgroup RSS"),
            _mib("cgroup_cache_mib", "cgroup cache"),
            _mib("shim_pss_mib", "containerd shim PSS"),
        ),
        headline="total_mib",
    ),
    Workload(
        "scale",
        "Scale-out and density",
        (
            _seconds("all_ready_s", "time until N instances are ready", decides=True),
            _mib("memory_mib", "host memory of N instances"),
            # Older results only: one slope per repetition, fitted whether or not a line fit.
            # The slope is now the analysis step's, where a line fits (vmvc.curves).
            _seconds("time_per_instance_s", "time per extra instance (older results)"),
            # Summed per-instance PSS: C10 is judged on the density workload's host accounting.
            _mib("memory_per_instance_mib", "summed PSS per extra instance"),
            Metric("density_instances", "instances that fit (summed PSS)", "instances", True),
        ),
        headline="all_ready_s",
    ),
    Workload(
        "density",
        "Density (host memory: first instance and each extra one)",
        (
            _mib("first_instance_mib", "host memory of the first instance", decides=True),
            _mib("marginal_mib", "host memory per extra instance"),
            Metric(
                "density_instances",
                "instances that fit in host memory",
                "instances",
                True,
                decides=True,
            ),
            _mib("host_drop_mib", "host MemAvailable drop with N instances"),
        ),
        headline="first_instance_mib",
    ),
    Workload(
        "clone",
        "Clone",
        (
            _seconds("clone_s", "clone step (create from the image)", decides=True),
            _seconds("clone_to_ready_s", "clone to ready (a boot: start-up, C01)"),
            _bytes("clone_bytes", "clone size"),
            _seconds("full_copy_s", "full copy (for contrast)"),
        ),
        headline="clone_s",
    ),
    Workload(
        "provision",
        "Provisioning",
        (
            _seconds("prepare_s", "prepare the image"),
            _seconds("define_s", "define"),
            _seconds("teardown_s", "tear down"),
        ),
    ),
    Workload(
        "recovery",
        "Recovery after a crash (self-healing)",
        (
            _seconds("recovery_s", "time from kill to ready again", decides=True),
            _seconds("detect_s", "time until the engine saw the death"),
            Metric(
                "no_restart_watch_s",
                "watched after the kill: nothing restarted it",
                "s",
                False,
                instead_of="recovery_s",
                outcome="no automatic restart",
            ),
        ),
        headline="recovery_s",
    ),
    Workload(
        "portability",
        "Portability (export and import)",
        (
            _bytes("export_bytes", "export size"),
            _seconds("export_s", "export"),
            _seconds("import_s", "import"),
        ),
        headline="export_s",
        # vmvc.bench.export_forms: the engine's plain stream, and the same stream through
        # the same compressor and level on every backend.
        forms=("uncompressed", "compressed"),
    ),
)

_BY_NAME = {w.name: w for w in WORKLOADS}


@dataclass(frozen=True)
class Failure:
    """A failure kind of the recovery workload (``metadata.failure``, keyed per kind)."""

    name: str
    title: str
    what: str  # what is killed, on every engine that has it
    # Whether a container can have it at all (a guest kernel panic cannot: no own kernel).
    container: bool = True


FAILURES: tuple[Failure, ...] = (
    Failure(
        "workload_process",
        "workload process killed",
        "the agent serving the workload dies by SIGKILL (a container's main process, a "
        "service under a VM's init)",
    ),
    Failure(
        "instance",
        "instance killed",
        "the instance is SIGKILLed from the host: a container's PID 1, a VM's QEMU",
    ),
    Failure(
        "guest_kernel_panic",
        "guest kernel panic",
        "the guest's own kernel panics (sysrq c) and reports it to its panic device",
        container=False,
    ),
)
_FAILURES = {f.name: f for f in FAILURES}


def failure(name: str) -> Failure | None:
    return _FAILURES.get(name)


def outcome_metrics(workload_name: str, metric_name: str) -> list[Metric]:
    """The outcomes a workload records instead of `metric_name` (a cell with no time)."""
    known = _BY_NAME.get(workload_name)
    return [m for m in known.metrics if m.instead_of == metric_name] if known else []


def workload(name: str) -> Workload | None:
    return _BY_NAME.get(name)


def workload_title(name: str) -> str:
    """The workload's title, or its own name for one vmvc does not know."""
    known = _BY_NAME.get(name)
    return known.title if known else name


def metric(workload_name: str, metric_name: str) -> Metric | None:
    """The catalogue's entry for a metric, or None for one vmvc does not know."""
    known = _BY_NAME.get(workload_name)
    return known.metric(metric_name) if known else None


def metric_title(workload_name: str, metric_name: str) -> str:
    known = metric(workload_name, metric_name)
    return known.title if known else metric_name


def headline(workload_name: str) -> str | None:
    known = _BY_NAME.get(workload_name)
    return known.headline if known else None


def form_rank(workload_name: str, form: str | None) -> tuple[int, str]:
    """Sort key of a metric's form: no form first, then the catalogue's order, then by name."""
    if form is None:
        return -1, ""
    known = _BY_NAME.get(workload_name)
    forms = known.forms if known else ()
    return (forms.index(form), form) if form in forms else (len(forms), form)


# The steady workloads, measured inside every instance and against the native baseline.
STEADY = ("cpu", "memory", "io")


def steady_resources() -> list[tuple[str, str]]:
    """(workload, metric) of the steady figures a verdict rests on, in catalogue order: the
    resources whose overhead against native claim C03 judges."""
    return [(w.name, m.name) for w in WORKLOADS if w.name in STEADY for m in w.metrics if m.decides]


def order_workloads(names: set[str] | list[str]) -> list[str]:
    """Known workloads in the catalogue's order, then unknown ones by name."""
    names = set(names)
    return [w.name for w in WORKLOADS if w.name in names] + sorted(names - set(_BY_NAME))


def order_metrics(workload_name: str, names: set[str] | list[str]) -> list[str]:
    """A workload's known metrics in the catalogue's order, then unknown ones by name."""
    names = set(names)
    known = _BY_NAME.get(workload_name)
    listed = [m.name for m in known.metrics] if known else []
    return [m for m in listed if m in names] + sorted(names - set(listed))
