"""The reaper on real dockerd and libvirtd: it removes only what vmvc made for a dead run.

Foreign resources that merely carry a `vmvc-` name (a container from the vmvc image, which
inherits the image's `vmvc` label, and a defined domain without vmvc metadata) survive; so
does a resource of a live run and one of another controller. A vmvc leftover of a dead run
(the positive control) is removed. `vmvc clean` itself runs as --dry-run: this host is shared
with other vmvc runs whose dead leftovers are theirs to clean; the removal path is exercised
in-process on this test's own resources only.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator

import docker
import docker.errors
import libvirt
import pytest
from rich.console import Console

from vmvc.backends.container_labels import LABEL_CONTROLLER, owner_labels
from vmvc.backends.libvirt_engine.domain_xml import DomainSpec, domain_xml
from vmvc.cleanup import find_leftovers, remove_dead
from vmvc.config import Config
from vmvc.image.build import Artefacts
from vmvc.liveness import hold_run_lock

from .conftest import run_vmvc

FOREIGN_DOMAIN = """<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory>
<vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>
<devices><controller type='usb' model='none'/><memballoon model='none'/></devices></domain>"""


def _run_id() -> str:
    return f"20260101T000000Z-{secrets.token_hex(3)}"


@pytest.fixture
def client() -> Iterator[docker.DockerClient]:
    made = docker.from_env(timeout=60)
    yield made
    made.close()


@pytest.fixture
def conn() -> Iterator[libvirt.virConnect]:
    made = libvirt.open("qemu:///system")
    yield made
    made.close()


@pytest.fixture
def made(client: docker.DockerClient, conn: libvirt.virConnect) -> Iterator[dict[str, list[str]]]:
    """Names of what the test creates; all of it is removed in teardown, whatever happened."""
    names: dict[str, list[str]] = {"containers": [], "domains": []}
    yield names
    for name in names["containers"]:
        with contextlib.suppress(docker.errors.NotFound):
            client.containers.get(name).remove(force=True)
    for name in names["domains"]:
        try:
            domain = conn.lookupByName(name)
        except libvirt.libvirtError:
            continue
        if domain.isActive():
            domain.destroy()
        domain.undefine()


def _container(
    client: docker.DockerClient,
    artefacts: Artefacts,
    made: dict[str, list[str]],
    labels: dict[str, str] | None,
) -> str:
    name = f"vmvc-reaper-{secrets.token_hex(4)}"
    made["containers"].append(name)
    # From the vmvc image, so it carries the image's `vmvc` label: the very case that was
    # removed by name and label before identity needed the run id and controller.
    client.containers.create(
        artefacts.docker_tag, ["/bin/true"], name=name, network_mode="none", labels=labels or {}
    )
    return name


def _domain(conn: libvirt.virConnect, made: dict[str, list[str]], xml: str, name: str) -> str:
    made["domains"].append(name)
    conn.defineXML(xml)
    return name


def _clean_dry_run() -> str:
    result = run_vmvc("clean", "--dry-run", timeout=300, env={"COLUMNS": "400"})
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_foreign_vmvc_named_container_and_domain_survive_clean(
    client: docker.DockerClient,
    conn: libvirt.virConnect,
    artefacts: Artefacts,
    made: dict[str, list[str]],
    small_config: Config,
) -> None:
    from vmvc.backends.docker import DockerBackend

    DockerBackend(small_config).prepare(artefacts, lambda _m: None)
    foreign_container = _container(client, artefacts, made, labels=None)
    foreign_domain = f"vmvc-reaper-{secrets.token_hex(4)}"
    _domain(conn, made, FOREIGN_DOMAIN.format(name=foreign_domain), foreign_domain)
    dead_run = _run_id()
    ours = _container(client, artefacts, made, labels=owner_labels(dead_run))

    listed = _clean_dry_run()
    assert foreign_container not in listed
    assert foreign_domain not in listed
    assert f"would remove container {ours} (run {dead_run})" in listed

    found = find_leftovers()
    names = {item.name for item in found}
    assert foreign_container not in names and foreign_domain not in names
    remove_dead(Console(quiet=True), [i for i in found if i.run_id == dead_run], dry_run=False)

    client.containers.get(foreign_container)  # still there
    conn.lookupByName(foreign_domain)  # still there
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(ours)  # the control: vmvc's own dead leftover went


def test_live_and_other_controllers_resources_are_kept(
    client: docker.DockerClient,
    conn: libvirt.virConnect,
    artefacts: Artefacts,
    made: dict[str, list[str]],
) -> None:
    live_run = _run_id()
    other_run = _run_id()
    with hold_run_lock(live_run):
        live = _container(client, artefacts, made, labels=owner_labels(live_run))
        other = _container(
            client,
            artefacts,
            made,
            labels={**owner_labels(other_run), LABEL_CONTROLLER: "0123456789abcdef"},
        )
        name = f"vmvc-{other_run}-libvirt-1"
        spec = DomainSpec(
            name, other_run, 1, "qemu", 1, 64, artefacts.kernel, artefacts.initrd, "", []
        )
        spec.controller = "0123456789abcdef"
        _domain(conn, made, domain_xml(spec), name)

        listed = _clean_dry_run()
        assert f"keeping container {live}: run {live_run} is still running" in listed
        assert f"keeping container {other}: it belongs to another controller" in listed
        assert f"keeping domain {name}: it belongs to another controller" in listed
        mine = [i for i in find_leftovers() if i.run_id in (live_run, other_run)]
        assert len(mine) == 3
        remove_dead(Console(quiet=True), mine, dry_run=False)
        client.containers.get(live)
        client.containers.get(other)
        conn.lookupByName(name)


def test_a_run_that_starts_after_the_listing_keeps_its_resources(
    client: docker.DockerClient, artefacts: Artefacts, made: dict[str, list[str]]
) -> None:
    run_id = _run_id()
    name = _container(client, artefacts, made, labels=owner_labels(run_id))
    [item] = [i for i in find_leftovers() if i.run_id == run_id]
    assert not item.alive  # dead when listed ...
    with hold_run_lock(run_id):  # ... resumed before the removal
        remove_dead(Console(quiet=True), [item], dry_run=False)
    client.containers.get(name)


def test_clean_cache_is_refused_while_a_run_is_live() -> None:
    with hold_run_lock(_run_id()):
        result = run_vmvc("clean", "--cache", "--dry-run", timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --cache refused"), result.stderr
    assert "Traceback" not in result.stderr


def test_kvm_probe_holds_a_run_lock_while_its_domain_exists(
    conn: libvirt.virConnect, artefacts: Artefacts
) -> None:
    """A clean during the probe must keep it: the probe's run is live while it boots."""
    from vmvc.backends.libvirt_engine import accel
    from vmvc.liveness import live_run_ids

    seen: list[set[str]] = []
    original = accel._boot

    def spying_boot(*args: object, **kwargs: object) -> tuple[bool, str]:
        seen.append({r for r in live_run_ids() if r.startswith(f"probe-{os.getpid()}-")})
        return original(*args, **kwargs)  # type: ignore[arg-type]

    accel._boot = spying_boot  # type: ignore[assignment]
    try:
        result = accel.probe_kvm(conn, artefacts.kernel, artefacts.initrd, timeout=5)
    finally:
        accel._boot = original  # type: ignore[assignment]
    assert isinstance(result[0], bool)
    assert len(seen) == 1 and len(seen[0]) == 1, seen


def test_a_dead_runs_temporary_docker_image_is_removed_a_live_runs_kept(
    client: docker.DockerClient, artefacts: Artefacts
) -> None:
    """The lifecycle workloads' temporary images (provision, portability) carry their run's
    owner labels: a run killed half way leaves one, and `vmvc clean` removes it."""
    from vmvc.backends.docker_engine.lifecycle import import_rootfs_as, remove_image

    dead_run, live_run = _run_id(), _run_id()
    dead = import_rootfs_as(client, artefacts, f"vmvc-reaper:{dead_run[-6:]}", dead_run)
    live = import_rootfs_as(client, artefacts, f"vmvc-reaper:{live_run[-6:]}", live_run)
    try:
        with hold_run_lock(live_run):
            listed = _clean_dry_run()
            assert f"would remove image vmvc-reaper:{dead_run[-6:]} (run {dead_run})" in listed
            found = [i for i in find_leftovers() if i.run_id in (dead_run, live_run)]
            assert {(i.kind, i.alive) for i in found} == {("image", False), ("image", True)}
            remove_dead(Console(quiet=True), found, dry_run=False)
            client.images.get(live)  # a live run's image stays
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get(dead)  # the control: the dead run's went
    finally:
        remove_image(client, dead)
        remove_image(client, live)


def _podman_container(artefacts: Artefacts, labels: dict[str, str]) -> str:
    from vmvc.backends.podman_engine.cli import Engine

    name = f"vmvc-reaper-{secrets.token_hex(4)}"
    argv = ["create", "--name", name, "--network", "none"]
    for key, value in labels.items():
        argv += ["--label", f"{key}={value}"]
    Engine().call(*argv, "--rootfs", f"{artefacts.rootfs}:O", "/bin/true")
    return name


def test_podman_and_gvisor_leftovers_of_a_dead_run_are_removed_foreign_ones_kept(
    artefacts: Artefacts,
) -> None:
    from vmvc.backends.podman_engine.backend import ENGINE_LABEL
    from vmvc.backends.podman_engine.cli import Engine

    dead_run = _run_id()
    podman = _podman_container(artefacts, {**owner_labels(dead_run), ENGINE_LABEL: "podman"})
    gvisor = _podman_container(artefacts, {**owner_labels(dead_run), ENGINE_LABEL: "gvisor"})
    foreign = _podman_container(artefacts, {"vmvc": "1"})  # a vmvc name and label, no identity
    engine = Engine()
    try:
        found = [i for i in find_leftovers() if i.run_id == dead_run]
        # each backend lists the container its own label names, once
        assert sorted(i.name for i in found) == sorted([podman, gvisor])
        assert foreign not in {i.name for i in find_leftovers()}
        remove_dead(Console(quiet=True), found, dry_run=False)
        left = engine.call("ps", "-a", "--format", "{{.Names}}").split()
        assert podman not in left and gvisor not in left
        assert foreign in left
    finally:
        engine.call("rm", "--force", "--ignore", podman, gvisor, foreign)


def test_a_killed_runs_trace_instance_is_removed() -> None:
    """A run killed while it counted host system calls leaves a kernel trace instance
    (vmvc.bench.syscalls): `vmvc clean` finds it by its run id and removes it."""
    from vmvc.bench.syscalls import TRACEFS

    dead_run = _run_id()
    path = TRACEFS / "instances" / f"vmvc-{dead_run}-docker-1-syscalls-abc123"
    path.mkdir()
    try:
        (path / "events" / "raw_syscalls" / "sys_enter" / "enable").write_text("1")
        found = [i for i in find_leftovers() if i.run_id == dead_run]
        assert [(i.kind, i.name) for i in found] == [("trace instance", str(path))]
        remove_dead(Console(quiet=True), found, dry_run=False)
        assert not path.exists()
    finally:
        with contextlib.suppress(OSError):
            path.rmdir()
