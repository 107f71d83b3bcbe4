"""Isolation: facts observed from inside a fresh instance, no timing (C07, C09).

The agent's `facts` workload prints what the instance sees (kernel, OS, processes,
capabilities, devices, memory, CPUs, block devices); vmvc.bench.facts types them and relates
them to the host. Two facts are observed rather than inferred:

- shares_host_kernel: the kernel's boot id inside equals the host's (a VM may boot the very
  same kernel release, but never shares the running kernel);
- host_processes_visible: while the facts run, the host runs a process named
  vmvc-probe-<random token>; the agent reports whether it can see it.

The facts go to the result's `facts[backend]`; the trial records no samples. They do not
change between repetitions, so they are observed once per run and backend: later
repetitions say so and boot nothing (a VM boot costs several seconds under TCG). Native is
observed too: it is the baseline that sees everything.
"""

from __future__ import annotations

import contextlib
import platform
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from vmvc.bench.base import Measurement
from vmvc.bench.facts import HostFacts, parse_facts

if TYPE_CHECKING:  # the registry in vmvc.bench.lifecycle imports this module
    from vmvc.bench.lifecycle import LifecycleContext

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
    applies_to = frozenset({"native", "docker", "libvirt"})

    def run(self, context: LifecycleContext) -> list[Measurement]:
        backend = context.backend
        seen = context.doc.facts.get(backend.name)
        if seen is not None and seen.get("host", "local") == context.host:
            context.phase("isolation: facts already observed in this run")
            return []
        local = context.host == "local"
        # On a remote host neither this machine's kernel nor a probe process here says
        # anything about the instance's host: those facts are left unknown.
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
        if context.host != "local":
            facts["host"] = context.host  # facts are stored per backend, not per host
        context.doc.facts[backend.name] = facts
        return []
