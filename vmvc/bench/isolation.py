"""Isolation: facts observed from inside a fresh instance, no timing (C07, C09).

The agent's `facts` workload prints what the instance sees (kernel, OS, processes,
capabilities, devices, memory, CPUs, block devices); vmvc.bench.facts types them and relates
them to the host. Two facts are observed rather than inferred:

- shares_host_kernel: the kernel's boot id inside equals the host's (a VM may boot the very
  same kernel release, but never shares the running kernel);
- host_processes_visible: while the facts run, the host runs a process named
  vmvc-probe-<random token>; the agent reports whether it can see it.

A third is counted on the host: the distinct host system calls a fixed mix of the steady
workloads reaches (vmvc.bench.syscalls: the kernel's tracer on the instance's host tasks):
how much of the host kernel's interface each step of the isolation spectrum still exposes.

The workload returns the facts (the runner keeps them in the result's `facts[backend]`); the
trial records no samples. They do not change between repetitions, so they are observed once
per run and backend: later repetitions say so and boot nothing (a VM boot costs several
seconds under TCG). With a warm-up, the runner observes them in the first warm-up's instance
once its start-up and footprint are taken (vmvc.plan) and this workload is not planned.
Native is observed too: it is the baseline that sees everything. For a backend whose
instances do not run on this machine (`Backend.on_this_host` False), this machine's kernel
and processes say nothing about them: those facts are left unknown.
"""

from __future__ import annotations

import contextlib
import platform
import secrets
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from vmvc.backends.base import Instance
from vmvc.backends.capabilities import Capability
from vmvc.bench.base import DATA_DIR
from vmvc.bench.facts import HostFacts, parse_facts
from vmvc.bench.lifecycle_tools import LifecycleContext, LifecycleResult
from vmvc.bench.syscalls import TraceSession, TraceUnavailable, syscall_table

PROBE_PREFIX = "vmvc-probe-"


def host_facts() -> HostFacts:
    """This host's own view (the machine vmvc runs on)."""
    boot_id = None
    with contextlib.suppress(OSError):
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    os_release = None
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_release = line.split("=", 1)[1].strip().strip('"')
    btime = None
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                btime = int(line.split()[1])
    return HostFacts(platform.release(), boot_id, os_release, len(psutil.pids()), btime)


def start_probe(token: str) -> subprocess.Popen[bytes]:
    """A sleeping host process whose command line names the token (argv[0])."""
    sleep = shutil.which("sleep") or "/bin/sleep"
    return subprocess.Popen(
        [f"{PROBE_PREFIX}{token}", "3600"],
        executable=sleep,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# The fixed mix whose host system calls are counted: one short run of each steady workload
# (the same arguments on every backend), so every backend is asked the same of its kernel.
# The count is of *distinct* calls, most of which each tool makes as it starts and ends, so
# the steps are short. Not all, though: a VM's QEMU starts another I/O worker thread (clone,
# prctl, rseq, set_robust_list) only when the guest's I/O keeps its pool busy, which is why
# a VM's count is 18 in some runs and 22-24 in others. One run with 100 ms per fio job gave
# 18 and the runs with 250 ms 22, so the fio jobs stay at 250 ms. sysbench only computes
# between its start and end: 200 events count the same 65 calls natively as 1 s did.
EXPOSURE_MIX: tuple[tuple[str, tuple[str, ...]], ...] = (
    # 1 thread, 200 events, no time limit (sysbench's --time takes whole seconds only)
    ("cpu", ("1", "0", "10000", "200")),
    ("memory", ("16", "0.05", "1", "1", "0.05")),  # 16 MiB bandwidth, 1 MiB chase
    # 16 MiB file, 250 ms per fio job (fio takes time units), no ramp
    ("io", ("16", "250ms", "0", DATA_DIR)),
)
EXPOSURE_WHAT = "cpu 200 events, memory 16 MiB, fio 16 MiB x 4 jobs x 250 ms"


def host_exposure(instance: Instance, timeout: float) -> dict[str, Any]:
    """The distinct host system calls the instance's fixed mix reached (vmvc.bench.syscalls),
    as facts; where the host's tracer cannot be used, why (never a made-up count)."""
    scope = instance.syscall_scope()
    if scope is None:
        return {"host_syscalls_note": "this backend does not say which host tasks are its own"}
    try:
        with TraceSession(scope, owner=instance.name) as session:
            for workload, args in EXPOSURE_MIX:
                instance.run(workload, list(args), timeout)
            counted = session.stop()
    except (TraceUnavailable, OSError) as exc:
        return {"host_syscalls_note": f"not counted: {exc}"}
    facts: dict[str, Any] = {
        "host_syscalls_reached": len(counted.numbers),
        "host_syscalls": counted.names(syscall_table()),
        "host_syscall_tasks": scope.what,
        "host_syscall_workload": EXPOSURE_WHAT,
        "host_syscall_events": counted.events,
    }
    if counted.lost_events:
        # An overflowed buffer dropped events: the count is a lower bound.
        facts["host_syscall_lost_events"] = counted.lost_events
    return facts


def already_observed(known: dict[str, Any] | None, local: bool, host: str) -> bool:
    """Whether a run's facts for a backend stand for this observation: facts of instances
    elsewhere carry their host's name, this machine's none (they are stored per backend)."""
    where = None if local else host
    return known is not None and known.get("host") == where


def observe(
    instance: Instance,
    *,
    local: bool,
    host: str,
    timeout: float,
    phase: Callable[[str], None],
) -> dict[str, Any]:
    """The facts of a fresh, ready instance that nothing measured shares the host with:
    what it sees (the probe runs while the facts do) and, on this machine, the host system
    calls its fixed mix reaches. `host` names where it runs (kept with the facts of an
    instance elsewhere: they are stored per backend)."""
    known = host_facts() if local else HostFacts(None)
    token = secrets.token_hex(8)
    probe = start_probe(token) if local else None
    try:
        phase("isolation: facts from inside a fresh instance")
        lines = instance.run("facts", [token] if probe is not None else [], timeout)
    finally:
        if probe is not None:
            probe.kill()
            probe.wait()
    exposure = {}
    if local:
        phase("isolation: counting the host system calls a fixed mix reaches")
        exposure = host_exposure(instance, timeout)
    facts = parse_facts(lines, known) | exposure
    if not local:
        facts["host"] = host
    return facts


class IsolationWorkload:
    """Isolation in a boot of its own: only when the run has no warm-up whose first
    instance can observe it (vmvc.plan.isolation_in_warmup, the runner's instance trial)."""

    name = "isolation"
    requires = frozenset({Capability.ISOLATION_FACTS})

    def run(self, context: LifecycleContext) -> LifecycleResult:
        backend = context.backend
        local = backend.on_this_host
        if already_observed(context.known_facts, local, context.host):
            context.phase("isolation: facts already observed in this run")
            return LifecycleResult()
        with backend.provision(context.artefacts, context.make_spec(backend.name)) as inst:
            inst.wait_ready(context.config.timeouts.boot_s)
            facts = observe(
                inst,
                local=local,
                host=context.host,
                timeout=context.config.timeouts.workload_s,
                phase=context.phase,
            )
        return LifecycleResult(facts=facts)
