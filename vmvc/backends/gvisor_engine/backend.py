"""gVisor backend: the Podman container of vmvc.backends.podman_engine, run by gVisor's `runsc`.

The same rootfs, limits and agent as the Podman and Docker containers; what changes is who
answers the workload's system calls: gVisor's Sentry, a kernel written in Go that runs in
user space and itself makes a narrow set of host system calls (Young et al., "The True Cost
of Containing: A gVisor Case Study", HotCloud '19; Anjali et al., VEE '20). runsc is chosen
per container through podman's `--runtime` option, so no daemon is reconfigured.

The platform is how the Sentry intercepts the workload's system calls, and it decides much of
the cost, as KVM or TCG does for a VM: `ptrace` (every system call a ptrace stop: works
anywhere, slowest), `systrap` (seccomp traps; newer than Debian 12's runsc 20221219) and `kvm`
(needs working KVM, which these hosts lack). vmvc uses ptrace and records it in the result
and the backend's name, as the VM's acceleration is.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

from vmvc.backends.base import Availability, BackendKind
from vmvc.backends.capabilities import Capability, FailureKind, RecoveryPlan
from vmvc.backends.podman_engine.backend import PodmanBackend
from vmvc.backends.podman_engine.cli import Engine
from vmvc.backends.podman_engine.recovery import DETECT_BASIS, RESTARTED_BY

PLATFORM = "ptrace"
PLATFORM_WHY = (
    "ptrace: runs on any host; systrap is newer than Debian 12's runsc and kvm needs working KVM"
)
VERSION_TIMEOUT_S = 10.0
# Under runsc, the container's process on the host (podman's State.Pid) is the sandbox,
# `runsc-sandbox ... boot`: the Sentry with the agent inside it. Its SIGKILL is the
# instance dying. The agent itself is no host process (the Sentry runs it), so "the
# workload process dies" would need runsc's own kill into the sandbox: not offered.
RECOVERY_PLANS = {
    FailureKind.INSTANCE: RecoveryPlan(
        "SIGKILL to the sandbox from the host (runsc-sandbox: the Sentry, the agent inside)",
        RESTARTED_BY,
        DETECT_BASIS,
    ),
}


def runsc_path() -> str | None:
    return shutil.which("runsc")


def runsc_version(path: str) -> str:
    """The release line of `runsc --version` ("runsc version release-20221219.0")."""
    try:
        done = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=VERSION_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    first = (done.stdout.strip().splitlines() or ["unknown"])[0]
    return first.removeprefix("runsc version ").strip()


class GvisorBackend(PodmanBackend):
    name = "gvisor"
    label = "gVisor"
    kind: BackendKind = "sandbox"
    syscalls_answered_by = "user-space kernel (gVisor Sentry)"
    display_name = f"sandbox (gVisor runsc, {PLATFORM} platform)"
    # Podman's operations, runsc running the containers. Not export/import: an image's save
    # and load are podman's image store and commands alone (no runtime takes part), so
    # gVisor's numbers would only repeat podman's.
    capabilities = PodmanBackend.capabilities - {Capability.EXPORT_IMPORT}

    def recovery_plans(self) -> dict[FailureKind, RecoveryPlan]:
        return dict(RECOVERY_PLANS)

    def make_engine(self) -> Engine:
        # network=none: gVisor's own netstack gets no interface but loopback (podman's
        # `--network none` alone leaves runsc refusing to share the host's namespace)
        return Engine(
            runtime=runsc_path() or "runsc",
            runtime_flags=(f"platform={PLATFORM}", "network=none"),
        )

    def probe(self) -> Availability:
        if runsc_path() is None:
            return Availability(
                False, "gVisor's runsc is not installed", "apt-get install runsc podman"
            )
        found = super().probe()
        if not found.available:
            return found
        return Availability(
            True,
            f"runsc {runsc_version(runsc_path() or 'runsc')} "
            f"({PLATFORM} platform) through {found.reason}",
        )

    def prepare(self, artefacts: Any, progress: Any) -> dict[str, Any]:
        facts = super().prepare(artefacts, progress)
        self.display_name = type(self).display_name  # names its platform, as the VM its accel
        return facts

    def runtime_facts(self) -> dict[str, Any]:
        path = runsc_path()
        return {
            "gvisor_oci_runtime": "runsc",
            "gvisor_runsc_version": runsc_version(path) if path else "not installed",
            "gvisor_platform": PLATFORM,
            "gvisor_platform_reason": PLATFORM_WHY,
        }
