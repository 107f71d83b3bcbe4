"""Shared builders of result documents for unit tests (no engines needed).

Two levels, both available as plain functions and as fixtures:

- ``build_document({backend: {"workload/metric": [values]}}, ...)`` turns raw values into a
  valid ResultDocument: value i becomes repetition i + 1; unit and higher_is_better come
  from METRICS (or the metric's suffix, or ``units=``); environment, image id, profile and
  facts are set from keyword arguments so compare/report tests can vary them.
- ``realistic_document(seed=..., repetitions=...)`` is a complete run of every workload on
  native, docker and libvirt with the medians a prototype measured on the development host
  (2 cores, 1-vCPU VM emulated with QEMU TCG; shared/HOST-NOTES.md), each repetition with
  seeded noise of 5-20 % depending on the workload.

Fixtures: ``build_doc`` (the function build_document), ``make_realistic`` (the function
realistic_document), ``realistic_doc`` (a fresh realistic document), ``noisy`` (the noise
helper). Use the fixtures rather than importing conftest: that works in any import mode.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from vmvc.backend_records import fill_backend_info
from vmvc.keys import split_form, split_key
from vmvc.results import ResultDocument, Sample


@pytest.fixture(autouse=True)
def _no_engine_reachable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests never reach an engine: should one try, it fails at once instead of hanging
    or quietly using the host's dockerd or libvirtd. Set per test, not at import: `make test`
    collects tests/unit beside tests/integration in one process, and an import-time change of
    os.environ would cut the integration tests off from the real daemons."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent")
    monkeypatch.setenv("LIBVIRT_DEFAULT_URI", "qemu+unix:///system?socket=/nonexistent")


# workload/metric -> (unit, higher_is_better), as the runner records them.
METRICS: dict[str, tuple[str, bool]] = {
    "cpu/events_per_s": ("events/s", True),
    "memory/bandwidth_mib_s": ("MiB/s", True),
    "io/randread_4k_iops": ("IOPS", True),
    "io/randwrite_4k_iops": ("IOPS", True),
    "io/seqread_1m_mib_s": ("MiB/s", True),
    "io/seqwrite_1m_mib_s": ("MiB/s", True),
    "footprint/total_mib": ("MiB", False),
    "scale/density_instances": ("instances", True),
    "density/first_instance_mib": ("MiB", False),
    "density/marginal_mib": ("MiB", False),
    "density/density_instances": ("instances", True),
    "portability/export_bytes": ("bytes", False),
}

HOST_KERNEL = "6.1.0-18-amd64"
GUEST_KERNEL = "6.1.0-21-amd64"
OS_RELEASE = "Debian GNU/Linux 12 (bookworm)"

# Typical medians per backend: the first rows were measured on this host with a prototype
# (HOST-NOTES.md); the rest are plausible values of the same run.
REALISTIC: dict[str, dict[str, float]] = {
    "native": {
        "cpu/events_per_s": 2313,
        "memory/bandwidth_mib_s": 4961,
        "io/randwrite_4k_iops": 30802,
        "io/randread_4k_iops": 33891,
        "io/seqread_1m_mib_s": 1452,
        "io/seqwrite_1m_mib_s": 981,
        "startup/spawn_s": 0.004,
        "startup/ready_s": 0.008,
        "footprint/total_mib": 3.1,
    },
    "docker": {
        "cpu/events_per_s": 2437,
        "memory/bandwidth_mib_s": 5129,
        "io/randwrite_4k_iops": 30277,
        "io/randread_4k_iops": 32348,
        "io/seqread_1m_mib_s": 1418,
        "io/seqwrite_1m_mib_s": 957,
        "startup/create_s": 0.071,
        "startup/start_s": 0.112,
        "startup/ready_s": 0.027,
        "footprint/total_mib": 14.0,
        "clone/clone_s": 0.028,  # measured here: the clone step alone is about as fast
        "clone/clone_to_ready_s": 0.27,
        "scale/all_ready_s@N=1": 0.28,  # N=2 and N=5 at the end (the noise draws stay put)
        "scale/density_instances": 1795,
        # The host's MemAvailable drop (vmvc.bench.host_memory), measured outside vmvc here.
        "density/first_instance_mib": 9.6,
        "density/marginal_mib": 4.3,
        "density/density_instances": 5160,
        "recovery/recovery_s": 1.12,
        # Both export forms (measured on the development host, TCG, 2026-12-01).
        "portability/export_bytes@uncompressed": 1.93e8,
        "portability/export_s@uncompressed": 2.5,
        "portability/import_s@uncompressed": 3.8,
        "portability/export_bytes@compressed": 7.2e7,
        "portability/export_s@compressed": 3.1,
        "portability/import_s@compressed": 4.2,
    },
    "libvirt": {
        "cpu/events_per_s": 636,
        "memory/bandwidth_mib_s": 564,
        "io/randwrite_4k_iops": 3150,
        "io/randread_4k_iops": 3694,
        "io/seqread_1m_mib_s": 311,
        "io/seqwrite_1m_mib_s": 188,
        "startup/create_s": 0.3,
        "startup/firmware_kernel_s": 4.2,
        "startup/initramfs_s": 2.7,
        "startup/userspace_s": 1.35,
        "footprint/total_mib": 250.0,
        "clone/clone_s": 0.033,
        "clone/clone_to_ready_s": 8.61,
        "scale/all_ready_s@N=1": 6.5,
        "scale/density_instances": 95.6,
        "density/first_instance_mib": 268.0,
        "density/marginal_mib": 262.5,
        "density/density_instances": 84.5,
        "recovery/recovery_s": 9.34,
        "portability/export_bytes@uncompressed": 2.05e8,
        "portability/export_s@uncompressed": 2.9,
        "portability/import_s@uncompressed": 1.1,
        "portability/export_bytes@compressed": 7.4e7,
        "portability/export_s@compressed": 3.6,
        "portability/import_s@compressed": 1.6,
    },
}
# The rest of the scale curves, drawn after everything above (so those draws stay put).
REALISTIC_CURVES: dict[str, dict[str, float]] = {
    # Containers: a little more per extra instance, no knee.
    "docker": {"scale/all_ready_s@N=2": 0.40, "scale/all_ready_s@N=5": 0.85},
    # Emulated VMs on 2 cores: flat up to the cores, then rising (the knee, issue 13).
    "libvirt": {"scale/all_ready_s@N=2": 6.6, "scale/all_ready_s@N=5": 16.3},
}
# Relative noise per repetition (uniform in +-spread): steady CPU work is stable, disk I/O
# and boot times on a shared host are not.
SPREAD = {
    "cpu": 0.05,
    "memory": 0.10,
    "io": 0.20,
    "startup": 0.10,
    "footprint": 0.05,
    "clone": 0.10,
    "scale": 0.10,
    "density": 0.10,
    "recovery": 0.15,
    "portability": 0.05,
}

REALISTIC_FACTS: dict[str, dict[str, Any]] = {
    "docker": {
        "kernel_release": HOST_KERNEL,
        "host_kernel_release": HOST_KERNEL,
        "os_release": OS_RELEASE,
        "shares_host_kernel": True,
        "host_processes_visible": False,
        "capabilities": "00000000a80425fb",
        "devices_visible": 15,
    },
    "libvirt": {
        "kernel_release": GUEST_KERNEL,
        "host_kernel_release": HOST_KERNEL,
        "os_release": OS_RELEASE,
        "shares_host_kernel": False,
        "host_processes_visible": False,
        "capabilities": "000001ffffffffff",
        "devices_visible": 41,
    },
}


def metric_info(key: str) -> tuple[str, bool]:
    """(unit, higher_is_better) of 'workload/metric': METRICS, else guessed from the name
    (a form, 'workload/metric@form', is the metric's)."""
    key = key.split("@", 1)[0]
    if key in METRICS:
        return METRICS[key]
    metric = key.split("/", 1)[1]
    for suffix, unit, higher in (
        ("_iops", "IOPS", True),
        ("_mib_s", "MiB/s", True),
        ("_per_s", "1/s", True),
        ("_bytes", "bytes", False),
        ("_mib", "MiB", False),
        ("_us", "us", False),
        ("_s", "s", False),
    ):
        if metric.endswith(suffix):
            return unit, higher
    return "", False


def noisy(center: float, n: int, rng: np.random.Generator, spread: float = 0.1) -> list[float]:
    """n values center * U(1 - spread, 1 + spread): one per repetition."""
    return [float(v) for v in center * rng.uniform(1 - spread, 1 + spread, n)]


def build_document(
    data: Mapping[str, Mapping[str, Sequence[float]]],
    *,
    accel: str | None = "tcg",
    hostname: str = "testhost",
    run_id: str = "20250101T000000Z-aaaaaa",
    started_at: str = "2025-01-01T00:00:00+00:00",
    profile: str = "default",
    image_id: str = "sha256:1111",
    host: str = "local",
    facts: Mapping[str, Mapping[str, Any]] | None = None,
    units: Mapping[str, tuple[str, bool]] | None = None,
    metadata: Mapping[str, Mapping[str, Any]] | None = None,
    warmups: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
) -> ResultDocument:
    """A complete ResultDocument from {backend: {"workload/metric": [values]}}.

    A key "workload/metric@form" records the metric with ``metadata.form`` (an export form).
    ``units`` overrides (unit, higher_is_better) per "workload/metric"; ``metadata`` adds
    sample metadata per "backend:workload/metric"; ``warmups`` adds warmup samples
    (repetition 0), which statistics must ignore.
    """
    samples: list[Sample] = []
    timestamp = 1_735_689_600.0

    def add(backend: str, key: str, values: Sequence[float], warmup: bool) -> None:
        nonlocal timestamp
        workload, metric = key.split("/", 1)
        unit, higher = (units or {}).get(key) or metric_info(key.split("@", 1)[0])
        # "scale/all_ready_s@N=3": one instance count's samples (metadata n);
        # "portability/export_bytes@compressed": one export form's (metadata form); vmvc.keys
        _, form = split_form(metric)
        metric, n = split_key(metric)
        extra = ({} if n is None else {"n": n}) | ({"form": form} if form else {})
        for index, value in enumerate(values):
            timestamp += 1.0
            samples.append(
                Sample(
                    backend=backend,
                    workload=workload,
                    metric=metric,
                    value=float(value),
                    unit=unit,
                    repetition=0 if warmup else index + 1,
                    higher_is_better=higher,
                    warmup=warmup,
                    host=host,
                    timestamp=timestamp,
                    metadata={**extra, **(metadata or {}).get(f"{backend}:{key}", {})},
                )
            )

    for backend, metrics in (warmups or {}).items():
        for key, values in metrics.items():
            add(backend, key, values, warmup=True)
    for backend, metrics in data.items():
        for key, values in metrics.items():
            add(backend, key, values, warmup=False)
    doc = ResultDocument(
        run_id=run_id,
        started_at=started_at,
        status="complete",
        config={"profile": profile, "backends": list(data)},
        environment={"hostname": hostname, "accel": accel, "cores": 2, "kernel": HOST_KERNEL},
        image={"id": image_id},
        samples=samples,
        facts={backend: dict(f) for backend, f in (facts or {}).items()},
    )
    # What a run records about its backends (label, kind), from the installed backends.
    fill_backend_info(doc)
    return doc


def realistic_data(*, seed: int = 0, repetitions: int = 7) -> dict[str, dict[str, list[float]]]:
    """{backend: {"workload/metric": values}} around REALISTIC, with SPREAD noise.

    Startup totals are the sum of each repetition's phases, as the runner records them.
    """
    rng = np.random.default_rng(seed)
    data: dict[str, dict[str, list[float]]] = {}
    for backend, medians in REALISTIC.items():
        values = {
            key: noisy(center, repetitions, rng, SPREAD[key.split("/")[0]])
            for key, center in medians.items()
        }
        phases = [v for key, v in values.items() if key.startswith("startup/")]
        values["startup/total_s"] = [float(sum(rep)) for rep in zip(*phases, strict=True)]
        data[backend] = values
    for backend, medians in REALISTIC_CURVES.items():
        for key, center in medians.items():
            data[backend][key] = noisy(center, repetitions, rng, SPREAD["scale"])
    return data


def realistic_document(
    *, seed: int = 0, repetitions: int = 7, accel: str | None = "tcg", **kwargs: Any
) -> ResultDocument:
    """The prototype's run as a ResultDocument (kwargs go to build_document)."""
    kwargs.setdefault("facts", REALISTIC_FACTS)
    kwargs.setdefault(
        "metadata",
        {
            **{
                f"{b}:portability/{m}@compressed": {"compressor": "zstd", "compression_level": 3}
                for b in ("docker", "libvirt")
                for m in ("export_bytes", "export_s", "import_s")
            },
            **{
                f"{backend}:scale/all_ready_s@N={n}": {"host_cpus": 2, "counts": [1, 2, 5]}
                for backend in ("docker", "libvirt")
                for n in (1, 2, 5)
            },
        },
    )
    return build_document(realistic_data(seed=seed, repetitions=repetitions), accel=accel, **kwargs)


@pytest.fixture
def build_doc():
    """The build_document function."""
    return build_document


@pytest.fixture
def make_realistic():
    """The realistic_document function (seed, repetitions, accel, build_document kwargs)."""
    return realistic_document


@pytest.fixture
def realistic_doc() -> ResultDocument:
    """A fresh realistic document (TCG, 7 repetitions, seed 0)."""
    return realistic_document()


@pytest.fixture(name="noisy")
def noisy_fixture():
    """The noisy(center, n, rng, spread) helper."""
    return noisy
