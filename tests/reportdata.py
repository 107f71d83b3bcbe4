"""A realistic result document for report tests, built without any backend.

Medians follow what a prototype measured on the development host (2 cores, a 1-vCPU VM
emulated with QEMU TCG, see shared/HOST-NOTES.md); every repetition gets seeded noise of
5-20 %. Unlike tests/unit/conftest.py (the statistics tests' builder) it covers everything a
report shows: every workload and metric, scale runs per N, facts, errors, hostile strings.

`statistics` and `verdicts` are either computed by vmvc.stats / vmvc.claims
(statistics="vmvc"), or by a plain numpy bootstrap with the same structure
(statistics="builtin"), so report tests also run against a fixed, independent structure.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vmvc.analysed import Statistics, Verdict
from vmvc.claims import CLAIMS
from vmvc.keys import metric_key
from vmvc.results import (
    BackendRecord,
    InstanceReport,
    ResultDocument,
    Sample,
    SkippedBackend,
    TrialError,
)

HOSTILE = "<script>alert(1)</script>"
X = "\N{MULTIPLICATION SIGN}"
HOST_KERNEL = "6.18.44-fc-v669"
GUEST_KERNEL = "6.1.0-44-amd64"
IMAGE_ID = "sha256:9c4e1f0b7a2d5e8c3b6a9f1d4e7c0b3a6d9f2e5c8b1a4d7f0e3c6b9a2d5f8e1c"

# (workload, metric, unit, higher_is_better) -> {backend: typical value}
STEADY: dict[tuple[str, str, str, bool], dict[str, float]] = {
    ("cpu", "events_per_s", "events/s", True): {"native": 2313, "docker": 2437, "libvirt": 636},
    ("memory", "bandwidth_mib_s", "MiB/s", True): {"native": 4961, "docker": 5129, "libvirt": 564},
    ("io", "randread_4k_iops", "IOPS", True): {"native": 33891, "docker": 32348, "libvirt": 3694},
    ("io", "randwrite_4k_iops", "IOPS", True): {"native": 30802, "docker": 30277, "libvirt": 3150},
    ("io", "randread_4k_lat_us", "µs", False): {"native": 28.9, "docker": 30.3, "libvirt": 266},
    ("io", "randwrite_4k_lat_us", "µs", False): {"native": 31.7, "docker": 32.2, "libvirt": 312},
    ("io", "seqread_1m_mib_s", "MiB/s", True): {"native": 1452, "docker": 1418, "libvirt": 311},
    ("io", "seqwrite_1m_mib_s", "MiB/s", True): {"native": 981, "docker": 957, "libvirt": 188},
    ("footprint", "pss_mib", "MiB", False): {"native": 3.1, "libvirt": 250.4},
    ("footprint", "uss_mib", "MiB", False): {"native": 2.6, "libvirt": 238.7},
    ("footprint", "cgroup_mib", "MiB", False): {"docker": 0.8},
    ("footprint", "shim_pss_mib", "MiB", False): {"docker": 12.3},
    ("clone", "clone_s", "s", False): {"docker": 0.052, "libvirt": 0.021},
    ("clone", "clone_to_ready_s", "s", False): {"docker": 0.27, "libvirt": 8.61},
    ("clone", "clone_bytes", "bytes", False): {"docker": 8192, "libvirt": 196608},
    ("provision", "prepare_s", "s", False): {"docker": 3.62, "libvirt": 6.18},
    ("provision", "define_s", "s", False): {"docker": 0.071, "libvirt": 0.29},
    ("provision", "teardown_s", "s", False): {"docker": 0.35, "libvirt": 0.083},
    ("recovery", "recovery_s", "s", False): {"docker": 1.12, "libvirt": 9.34},
    ("portability", "export_bytes", "bytes", False): {"docker": 4.31e8, "libvirt": 1.07e9},
    ("portability", "export_s", "s", False): {"docker": 2.94, "libvirt": 1.61},
    ("portability", "import_s", "s", False): {"docker": 3.71, "libvirt": 1.38},
    ("scale", "time_per_instance_s", "s", False): {"docker": 0.16, "libvirt": 6.4},
    ("scale", "memory_per_instance_mib", "MiB", False): {"docker": 13.4, "libvirt": 251.8},
    ("scale", "density_instances", "instances", True): {"docker": 1795, "libvirt": 95.6},
    # Host MemAvailable drop (vmvc.bench.host_memory): the first instance, then each extra one.
    ("density", "first_instance_mib", "MiB", False): {"docker": 9.6, "libvirt": 268.0},
    ("density", "marginal_mib", "MiB", False): {"docker": 4.3, "libvirt": 262.5},
    ("density", "density_instances", "instances", True): {"docker": 5160, "libvirt": 84.5},
}

STARTUP_PHASES = {
    "native": {"spawn_s": 0.0041, "ready_s": 0.0083},
    "docker": {"create_s": 0.071, "start_s": 0.112, "ready_s": 0.027},
    "libvirt": {"create_s": 0.3, "firmware_kernel_s": 4.2, "initramfs_s": 2.7, "userspace_s": 1.35},
}
SCALE_N = (1, 2, 4, 8)


def build_document(
    *,
    seed: int = 0,
    repetitions: int = 5,
    accel: str = "tcg",
    hostile: bool = False,
    statistics: str | None = "builtin",
) -> ResultDocument:
    """A complete run of every workload on native, docker and libvirt."""
    rng = np.random.default_rng(seed)
    hostname = HOSTILE if hostile else "vm"
    t0 = 1764416800.0
    samples: list[Sample] = []

    def noisy(value: float) -> float:
        spread = rng.uniform(0.05, 0.20)
        return float(value * (1 + rng.uniform(-spread, spread)))

    def add(backend, workload, metric, value, unit, rep, hib=False, warmup=False, **meta):
        samples.append(
            Sample(
                backend=backend, workload=workload, metric=metric, value=value, unit=unit,
                repetition=rep, higher_is_better=hib, warmup=warmup,
                timestamp=t0 + len(samples) * 1.7, metadata=meta,
            )
        )  # fmt: skip

    for rep in range(repetitions + 1):
        warmup = rep == 0
        for backend, phases in STARTUP_PHASES.items():
            values = {m: noisy(v) for m, v in phases.items()}
            for metric, value in values.items():
                add(backend, "startup", metric, value, "s", rep, warmup=warmup)
            add(backend, "startup", "total_s", sum(values.values()), "s", rep, warmup=warmup)
        for (workload, metric, unit, hib), per_backend in STEADY.items():
            for backend, typical in per_backend.items():
                value = noisy(typical)
                if unit == "bytes":
                    value = float(round(value))
                meta = {"tool": "sysbench 1.0.20"} if workload in ("cpu", "memory") else {}
                if hostile and workload == "cpu":
                    meta = {"note": HOSTILE}
                add(backend, workload, metric, value, unit, rep, hib, warmup, **meta)
        for backend in ("docker", "libvirt"):
            footprint = [
                s.value for s in samples
                if s.backend == backend and s.repetition == rep and s.workload == "footprint"
                and s.metric in ("cgroup_mib", "shim_pss_mib", "pss_mib")
            ]  # fmt: skip
            add(backend, "footprint", "total_mib", sum(footprint), "MiB", rep, warmup=warmup)
        add("native", "footprint", "total_mib", noisy(3.1), "MiB", rep, warmup=warmup)
        if warmup:
            continue
        for n in SCALE_N:
            for backend, (first, step, mem) in {
                "docker": (0.21, 0.16, 13.4),
                "libvirt": (8.56, 6.4, 251.8),
            }.items():
                add(backend, "scale", "all_ready_s", noisy(first + step * (n - 1)), "s", rep, n=n)
                add(backend, "scale", "memory_mib", noisy(mem * n), "MiB", rep, n=n)
        for backend, (first, marginal, counts) in {
            "docker": (9.6, 4.3, (1, 8, 16, 32)),
            "libvirt": (268.0, 262.5, (1, 2, 4)),
        }.items():
            for n in counts:
                drop = noisy(first + marginal * (n - 1))
                add(backend, "density", "host_drop_mib", drop, "MiB", rep, n=n)
    if hostile:
        add("docker", "cpu", HOSTILE, 1.0, HOSTILE, 1, True)
        add("docker", "recovery", HOSTILE, 1.5, "s", 1)

    doc = ResultDocument(
        # What a run records: each backend's own description (Backend.info()).
        backend_info={
            "native": BackendRecord(label="native", kind="native", display_name="native"),
            "docker": BackendRecord(
                label="container", kind="container", display_name="container (Docker)"
            ),
            "libvirt": BackendRecord(
                label="VM", kind="vm", display_name="VM (libvirt, emulated TCG)"
            ),
        },
        run_id=("20251129T114600Z-" + HOSTILE) if hostile else "20251129T114600Z-3b1f0a",
        started_at="2025-11-29T11:46:00+00:00",
        finished_at="2025-11-29T12:31:12+00:00",
        status="complete",
        config={
            "profile": "default",
            "backends": ["native", "docker", "libvirt"],
            "accel": "auto",
            "run": {"repetitions": repetitions, "warmups": 1, "seed": seed},
            "instance": {"vcpus": 1, "memory_mib": 512},
            "image": {"suite": "bookworm", "packages": ["fio", "sysbench"]}
            | ({"mirror": HOSTILE} if hostile else {}),
            "thresholds": {"c01_startup_ratio": 2.0, "c03_overhead_fraction": 0.05},
        },
        environment={
            "hostname": hostname,
            "kernel": HOST_KERNEL,
            "os_release": "Debian GNU/Linux 12 (bookworm)",
            "cpu_model": "AMD EPYC",
            "cores": 2,
            "memory_mib": 24105,
            "accel": accel,
            "docker_version": "20.10.24+dfsg1",
            "libvirt_version": "9.0.0",
            "qemu_version": "7.2.22",
            "python": "3.11.7",
            "vmvc_version": "0.1.0",
        },
        image={"id": IMAGE_ID, "suite": "bookworm", "size_bytes": 414_000_000},
        instances=[
            InstanceReport(
                backend=b,
                repetition=r,
                image_id=IMAGE_ID,
                kernel=GUEST_KERNEL if b == "libvirt" else HOST_KERNEL,
            )
            for b in ("native", "docker", "libvirt")
            for r in range(1, repetitions + 1)
        ],
        samples=samples,
        facts={
            "native": {
                "kernel_release": HOST_KERNEL,
                "host_kernel_release": HOST_KERNEL,
                "os_release": "Debian GNU/Linux 12 (bookworm)",
                "shares_host_kernel": True,
                "host_processes_visible": True,
                "capabilities": ["all (root)"],
                "devices_visible": 183,
            },
            "docker": {
                "kernel_release": HOST_KERNEL,
                "host_kernel_release": HOST_KERNEL,
                "os_release": "Debian GNU/Linux 12 (bookworm)",
                "shares_host_kernel": True,
                "host_processes_visible": False,
                "capabilities": [
                    "CHOWN",
                    "DAC_OVERRIDE",
                    "FOWNER",
                    "KILL",
                    "NET_BIND_SERVICE",
                    "SETGID",
                    "SETUID",
                    "SYS_CHROOT",
                ],
                "devices_visible": 15,
            },
            "libvirt": {
                "kernel_release": GUEST_KERNEL,
                "host_kernel_release": HOST_KERNEL,
                "os_release": "Debian GNU/Linux 12 (bookworm)",
                "shares_host_kernel": False,
                "host_processes_visible": False,
                "capabilities": ["all (guest root)"],
                "devices_visible": 41 if not hostile else HOSTILE,
            },
        },
        errors=[
            TrialError(
                backend="libvirt",
                workload="recovery",
                repetition=3,
                message="instance not ready within 180 s after the agent was killed"
                + (f" {HOSTILE}" if hostile else ""),
                console_tail=["[  181.2] reboot: Restarting system"],
            )
        ],
        skipped=[SkippedBackend(backend="podman", reason=f"not installed {HOSTILE}")]
        if hostile
        else [],
    )
    if statistics == "builtin":
        builtin = summarize(doc, seed=seed)
        doc.statistics = Statistics.model_validate(builtin)
        doc.verdicts = [Verdict.model_validate(v) for v in verdicts(doc, builtin, hostile=hostile)]
    elif statistics == "vmvc":
        from vmvc import claims, stats

        doc.statistics = stats.summarize(doc)
        doc.verdicts = claims.evaluate(doc, doc.statistics)
    elif statistics is not None:
        raise ValueError(f"statistics={statistics!r}: use 'builtin', 'vmvc' or None")
    return doc


def vmvc_statistics_available() -> bool:
    try:
        from vmvc import claims, stats  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------------------
# The statistics structure of vmvc.stats, computed with a plain percentile bootstrap.


def _bootstrap(values: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    picks = rng.integers(0, len(values), size=(resamples, len(values)))
    return np.median(values[picks], axis=1)


def summarize(doc: ResultDocument, *, seed: int = 0, resamples: int = 2000) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    groups: dict[tuple[str, str, str, str], list[Sample]] = {}
    for s in doc.measured():
        # Keyed per instance count like vmvc.stats (vmvc.keys): scale rows are per N.
        key = (s.host, s.backend, s.workload, metric_key(s.metric, s.metadata))
        groups.setdefault(key, []).append(s)
    summaries, boots = [], {}
    for (host, backend, workload, metric), group in groups.items():
        values = np.array([s.value for s in group])
        boot = _bootstrap(values, rng, resamples)
        boots[(host, backend, workload, metric)] = boot
        q1, q3 = np.percentile(values, [25, 75])
        fence = 1.5 * (q3 - q1)
        mean, stdev = float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0
        summaries.append(
            {
                "host": host, "backend": backend, "workload": workload, "metric": metric,
                "unit": group[0].unit, "higher_is_better": group[0].higher_is_better,
                "n": len(values), "median": float(np.median(values)), "mean": mean,
                "stdev": stdev, "cv": stdev / mean if mean else None,
                "min": float(values.min()), "max": float(values.max()),
                "ci_low": float(np.percentile(boot, 2.5)),
                "ci_high": float(np.percentile(boot, 97.5)),
                "outliers": [s.repetition for s in group
                             if s.value < q1 - fence or s.value > q3 + fence],
                "values": values.tolist(),
            }
        )  # fmt: skip
    ratios = []
    for num, den in (("docker", "native"), ("libvirt", "native"), ("libvirt", "docker")):
        for (host, backend, workload, metric), boot in boots.items():
            if backend != num or (host, den, workload, metric) not in boots:
                continue
            other = boots[(host, den, workload, metric)]
            a = np.median([s.value for s in groups[(host, num, workload, metric)]])
            b = np.median([s.value for s in groups[(host, den, workload, metric)]])
            ratio_boot = boot / other
            ratios.append(
                {
                    "host": host, "workload": workload, "metric": metric,
                    "unit": groups[(host, num, workload, metric)][0].unit,
                    "numerator": num, "denominator": den, "ratio": float(a / b),
                    "ci_low": float(np.percentile(ratio_boot, 2.5)),
                    "ci_high": float(np.percentile(ratio_boot, 97.5)),
                    "n_num": len(boot), "n_den": len(other),
                }
            )  # fmt: skip
    return {
        "confidence": 0.95,
        "method": f"percentile bootstrap of the median, {resamples} resamples, seed {seed}",
        "summaries": summaries,
        "ratios": ratios,
    }


def _ratio(stats: dict[str, Any], workload: str, metric: str, num: str, den: str) -> dict:
    for r in stats["ratios"]:
        key = (r["workload"], r["metric"], r["numerator"], r["denominator"])
        if key == (workload, metric, num, den):
            return r
    raise KeyError((workload, metric, num, den))


def verdicts(doc: ResultDocument, stats: dict[str, Any], *, hostile: bool = False) -> list[dict]:
    accel = doc.accel
    emulated = accel == "tcg"

    def ratio_numbers(workload, metric, num, den):
        r = _ratio(stats, workload, metric, num, den)
        return {"ratio": r["ratio"], "ci_low": r["ci_low"], "ci_high": r["ci_high"]}

    c01 = ratio_numbers("startup", "total_s", "libvirt", "docker")
    c02 = ratio_numbers("density", "first_instance_mib", "libvirt", "docker")
    c03 = {
        "cpu VM/native": _ratio(stats, "cpu", "events_per_s", "libvirt", "native")["ratio"],
        "cpu container/native": _ratio(stats, "cpu", "events_per_s", "docker", "native")["ratio"],
        "threshold": 0.05,
    }
    c04 = ratio_numbers("clone", "clone_to_ready_s", "libvirt", "docker")
    vm_per_ct = ratio_numbers("density", "density_instances", "libvirt", "docker")
    c10 = {
        "ratio": 1 / vm_per_ct["ratio"],
        "ci_low": 1 / vm_per_ct["ci_high"],
        "ci_high": 1 / vm_per_ct["ci_low"],
    }
    rows = [
        ("C01", "confirmed", f"VM start to ready takes {c01['ratio']:.1f}{X} as long as a "
         f"container (threshold 2{X}).", c01, True),
        ("C02", "confirmed", f"The first VM costs the host {c02['ratio']:.1f}{X} the memory of the "
         "first container.", c02, True),
        ("C03", "confirmed", "The emulated VM is far below native on CPU, memory and disk; the "
         "container is within noise of native.", c03, True),
        ("C04", "confirmed", "Clone plus start of a VM takes longer than of a container.", c04,
         True),
        ("C05", "confirmed", "Each extra container adds 0.16 s, each extra VM 6.4 s.",
         {"container slope s": 0.16, "VM slope s": 6.4}, True),
        ("C06", "reported", "The container image exports smaller but imports slower than a "
         "copied disk image.", ratio_numbers("portability", "export_bytes", "libvirt", "docker"),
         True),
        ("C07", "reported", "The container sees the host kernel; the VM runs its own "
         + (HOSTILE if hostile else "kernel."), {}, False),
        ("C08", "reported", "Docker's restart policy brings a container back faster than "
         "libvirt's on_crash restart brings a VM back.",
         ratio_numbers("recovery", "recovery_s", "libvirt", "docker"), True),
        ("C09", "fact", f"Guest kernel {GUEST_KERNEL} differs from the host's {HOST_KERNEL}; "
         "the container reports the host's.", {"shares_host_kernel (container)": True}, False),
        ("C10", "confirmed", f"About 19{X} more containers than VMs fit in this host's memory.",
         c10, True),
    ]  # fmt: skip
    return [
        {
            "claim": cid, "title": _TITLES[cid], "verdict": verdict, "text": text,
            "numbers": numbers, "accel": accel if vm else None, "emulated": emulated and vm,
        }
        for cid, verdict, text, numbers, vm in rows
    ]  # fmt: skip


# Claim titles come only from vmvc.claims, here too.
_TITLES = {claim.id: claim.title for claim in CLAIMS}
