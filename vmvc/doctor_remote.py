"""`vmvc doctor --host NAME`: can this machine benchmark a `[[hosts]]` entry?

Everything goes through the same engine connections a bench uses (docker over ssh, libvirt
over its remote URI), so a check that passes here is one that the bench will pass too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import libvirt
from rich.console import Console

from vmvc.backends.base import Leftover
from vmvc.backends.libvirt_engine.remote import RemoteLibvirtBackend, kvm_offered
from vmvc.config import Config, HostSettings
from vmvc.doctor import Check, print_checks
from vmvc.liveness import RunLockError, live_run_ids

Say = Callable[[str], None]
SSH_FIX = "make `ssh` to the host work without a prompt (key and port in ~/.ssh/config)"


def _docker(config: Config, host: HostSettings) -> list[Check]:
    from vmvc.backends.docker_engine.remote import RemoteDockerBackend

    if not host.docker_host:
        return [Check("docker", "warn", "no docker_host: containers are not benchmarked there")]
    backend = RemoteDockerBackend(config, host)
    try:
        try:
            availability = backend.probe()
        except Exception as exc:  # ssh failures come as any exception of the SDK
            return [Check("docker", "fail", f"{host.docker_host}: {exc}", SSH_FIX)]
        if not availability.available:
            return [Check("docker", "fail", availability.reason, SSH_FIX)]
        env = backend.environment()
        checks = [
            Check(
                "docker",
                "ok",
                f"dockerd {env.get('docker_version')} (API {env.get('docker_api_version')}) "
                f"on {env.get('docker_host_name')}: {env.get('docker_host_os')}, kernel "
                f"{env.get('docker_host_kernel')}, {env.get('docker_host_cores')} cores",
            )
        ]
        images = backend.client.images.list(filters={"label": "vmvc"})
        checks.append(
            Check(
                "docker image",
                "ok" if images else "warn",
                ", ".join(t for i in images for t in i.tags) or "none yet",
                "" if images else "the first bench ships it (docker save | load over ssh)",
            )
        )
        checks.append(_leftovers("docker leftovers", backend.leftovers(_live()), host))
        return checks
    finally:
        backend.close()


def _libvirt(config: Config, host: HostSettings, probe: bool, say: Say) -> list[Check]:
    if not host.libvirt_uri:
        return [Check("libvirt", "warn", "no libvirt_uri: VMs are not benchmarked there")]
    backend = RemoteLibvirtBackend(config, host)
    try:
        availability = backend.probe()  # libvirt reports ssh failures as libvirtError
        if not availability.available:
            return [Check("libvirt", "fail", availability.reason, SSH_FIX)]
        env = backend.environment()
        checks = [
            Check(
                "libvirt",
                "ok",
                f"libvirt {env.get('libvirt_version')}, QEMU {env.get('qemu_version')} on "
                f"{env.get('libvirt_host_hostname')}: {env.get('libvirt_host_cores')} cores, "
                f"{env.get('libvirt_host_memory_mib')} MiB",
            ),
            _pool(backend.conn),
            _kvm(backend, probe, say),
            _leftovers("libvirt leftovers", backend.leftovers(_live()), host),
        ]
        return checks
    finally:
        backend.close()


def _pool(conn: libvirt.virConnect) -> Check:
    from vmvc.backends.libvirt_engine.pool import POOL_NAME, POOL_PATH, find_pool

    pool = find_pool(conn)
    if pool is None:
        return Check(
            "storage pool",
            "warn",
            f"no pool '{POOL_NAME}' yet",
            f"the first bench creates it (dir pool at {POOL_PATH}) through the libvirt API",
        )
    try:
        if not pool.isActive():
            return Check(
                "storage pool",
                "warn",
                f"pool '{POOL_NAME}' is defined but inactive",
                f"virsh -c URI pool-start {POOL_NAME} (or run a bench)",
            )
        pool.refresh(0)
        _state, capacity, _allocation, available = pool.info()
        names = [n for n in pool.listVolumes() if n.startswith("vmvc-")]
    except libvirt.libvirtError as exc:
        return Check("storage pool", "fail", str(exc).splitlines()[0])
    gib = 2**30
    status = "ok" if available > 4 * gib else "warn"
    return Check(
        "storage pool",
        status,
        f"'{POOL_NAME}': {len(names)} vmvc volume(s), {available / gib:.1f} of "
        f"{capacity / gib:.1f} GiB free",
        "" if status == "ok" else "free space: an image and its instances need a few GiB",
    )


def _kvm(backend: RemoteLibvirtBackend, probe: bool, say: Say) -> Check:
    """Capabilities first (free), then the same probe boot as a bench, through the URI."""
    from vmvc.backends.libvirt_engine.accel import boot_probe
    from vmvc.backends.libvirt_engine.pool import ensure_pool, ship_boot_files

    conn = backend.conn
    name = backend.host_name
    if not kvm_offered(conn):
        return Check(
            "KVM",
            "warn",
            f"{name} offers no KVM domains (no usable /dev/kvm): VMs there are emulated (TCG)",
            "enable virtualization on that host (or nested virtualization for a VM host)",
        )
    if not probe:
        return Check("KVM", "warn", "KVM domains offered; not probed (--no-probe)", "")
    try:
        kernel, initrd = _probe_kernel(say)
        pool = ensure_pool(conn)
        say(f"host {name}: shipping the guest kernel into pool '{pool.name()}' for a KVM probe")
        remote_kernel, remote_initrd = ship_boot_files(conn, pool, kernel, initrd)
    except Exception as exc:
        return Check("KVM", "warn", f"KVM offered; probe not possible: {exc}", "vmvc image build")
    say(f"host {name}: probing KVM: booting a tiny guest")
    ok, reason = boot_probe(conn, remote_kernel, remote_initrd, backend.config.timeouts.probe_s)
    if ok:
        return Check("KVM", "ok", reason)
    return Check(
        "KVM",
        "warn",
        f"{reason}: VMs there will be emulated (TCG)",
        "nested hosts often lack working KVM; use bare metal for overhead numbers",
    )


def _probe_kernel(say: Say) -> tuple[Path, Path]:
    """The newest cached guest kernel bundle (no apt needed), else a fresh kernel bundle."""
    from vmvc.image.build import cached_kernel_bundles, kernel_bundle

    bundles = cached_kernel_bundles()
    if bundles:
        return bundles[-1] / "vmlinuz", bundles[-1] / "initrd.img"
    from vmvc.config import load_config
    from vmvc.image.recipe import make_recipe

    suite = load_config("quick").image.suite
    kernel_dir = kernel_bundle(make_recipe(suite, []).kernel, progress=say)
    return kernel_dir / "vmlinuz", kernel_dir / "initrd.img"


def _live() -> set[str]:
    """Live runs; without root the locks are unreadable and nothing is removed from here
    anyway (doctor only lists), so every listed leftover then counts as dead."""
    try:
        return live_run_ids()
    except RunLockError:
        return set()


def _leftovers(label: str, items: list[Leftover], host: HostSettings) -> Check:
    # Another controller's resources are not this machine's to clean: not counted.
    dead = [item for item in items if not (item.alive or item.owner)]
    if not dead:
        return Check(label, "ok", "none")
    names = ", ".join(f"{item.kind} {item.name}" for item in dead[:4])
    fix = f"vmvc clean --host {host.name} --config FILE"
    return Check(label, "warn", f"{len(dead)} from dead runs: {names}", fix)


def run_remote_doctor(console: Console, config: Config, name: str, *, probe: bool, say: Say) -> int:
    hosts = {h.name: h for h in config.hosts}
    if name not in hosts:
        known = ", ".join(hosts) or "none"
        checks = [
            Check(
                "host",
                "fail",
                f"'{name}' is not a [[hosts]] entry of the config (known: {known})",
                "vmvc doctor --host NAME --config FILE",
            )
        ]
        return print_checks(console, checks, f"vmvc doctor --host {name}")
    host = hosts[name]
    checks = [*_docker(config, host), *_libvirt(config, host, probe, say)]
    return print_checks(console, checks, f"vmvc doctor --host {name}")
