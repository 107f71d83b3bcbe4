"""Isolation: facts observed from inside a fresh instance, no timing (C07, C09).

The agent's `facts` workload prints what the instance sees (kernel, OS, processes,
capabilities, devices, memory, CPUs, block devices); vmvc.bench.facts types them and relates
them to the host. Two facts are observed rather than inferred:

- shares_host_kernel: the kernel's boot id inside equals the host's (a VM may boot the very
  same kernel release, but never shares the running kernel);
- host_processes_visible: while the facts run, the host runs a process named
  vmvc-probe-<random token>; the agent reports whether it can see it.

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

import psutil

from vmvc.backends.capabilities import Capability
from vmvc.bench.facts import HostFacts, parse_facts
from vmvc.bench.lifecycle_tools import LifecycleContext, LifecycleResult

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
    return HostFacts(platform.release(), boot_id, os_release, len(psutil.pids()))


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
        finally:
            if probe is not None:
                probe.kill()
                probe.wait()
        facts = parse_facts(lines, host)
        if where is not None:
            facts["host"] = where
        return LifecycleResult(facts=facts)
