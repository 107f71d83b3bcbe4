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
seconds under TCG). Native is observed too: it is the baseline that sees everything. For a
backend whose instances do not run on this machine (`Backend.on_this_host` False), this
machine's kernel and processes say nothing about them: those facts are left unknown.
"""

from __future__ import annotations

import contextlib
import platform
import secrets
import shutil
import subprocess
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
EXPOSURE_MIX: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cpu", ("1", "1", "10000")),  # 1 thread, 1 s (sysbench takes whole seconds)
    ("memory", ("16", "0.05", "1", "1", "0.05")),  # 16 MiB bandwidth, 1 MiB chase
    ("io", ("16", "1", "0", DATA_DIR)),  # 16 MiB file, 1 s per fio job, no ramp
)
EXPOSURE_WHAT = "cpu 1 s, memory 16 MiB, fio 16 MiB x 4 jobs x 1 s"


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


class IsolationWorkload:
    name = "isolation"
    requires = frozenset({Capability.ISOLATION_FACTS})

    def run(self, context: LifecycleContext) -> LifecycleResult:
        backend = context.backend
        local = backend.on_this_host
        # Facts of an instance elsewhere carry the host's name (they are stored per backend).
        where = None if local else context.host
        seen = context.known_facts
        if seen is not None and seen.get("host") == where:
            context.phase("isolation: facts already observed in this run")
            return LifecycleResult()
        host = host_facts() if local else HostFacts(None)
        token = secrets.token_hex(8)
        probe = start_probe(token) if local else None
        try:
            context.phase("isolation: facts from inside a fresh instance")
            with backend.provision(context.artefacts, context.make_spec(backend.name)) as inst:
                inst.wait_ready(context.config.timeouts.boot_s)
                args = [token] if probe is not None else []
                lines = inst.run("facts", args, context.config.timeouts.workload_s)
                exposure = {}
                if local:
                    context.phase("isolation: counting the host system calls a fixed mix reaches")
                    exposure = host_exposure(inst, context.config.timeouts.workload_s)
        finally:
            if probe is not None:
                probe.kill()
                probe.wait()
        facts = parse_facts(lines, host) | exposure
        if where is not None:
            facts["host"] = where
        return LifecycleResult(facts=facts)
