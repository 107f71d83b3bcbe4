"""`vmvc clean --host NAME`: what dead runs left on a `[[hosts]]` entry, removed through the
same engine connections a bench uses (domains, instance volumes, containers, data volumes).

`--cache` also removes what is kept there on purpose between runs: the `vmvc` storage pool
with its image volumes, and the vmvc Docker images.
"""

from __future__ import annotations

import contextlib

import docker.errors
from rich.console import Console

from vmvc.backends.base import Backend, Leftover
from vmvc.cleanup import remove_dead
from vmvc.config import Config
from vmvc.liveness import RunLockError, live_run_ids
from vmvc.remote import LOCAL_HOST, RemoteHostError, choose_hosts, remote_backend_classes


def clean_remote(console: Console, config: Config, name: str, *, dry_run: bool, cache: bool) -> int:
    try:
        _local, hosts = choose_hosts(config, [name])
    except RemoteHostError as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    if not hosts:
        console.print(f"'{LOCAL_HOST}' is this machine: use `vmvc clean` without --host")
        return 2
    host = hosts[0]
    backends: list[Backend] = []
    for backend_name, cls in remote_backend_classes().items():
        configured = host.docker_host if backend_name == "docker" else host.libvirt_uri
        if configured:
            backends.append(cls(config, host))  # type: ignore[call-arg]
    code = 0
    items: list[Leftover] = []
    try:
        live = live_run_ids()
    except RunLockError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    try:
        for backend in backends:
            availability = backend.probe()
            if not availability.available:
                console.print(f"[yellow]{backend.name} on {host.name}: {availability.reason}[/]")
                code = 1
                continue
            items += backend.leftovers(live)
        busy = [item for item in items if item.alive or item.owner]
        if cache and (live or busy):
            # The pool's image volumes and the images are shared by every run on that host.
            who = f"run {sorted(live)[0]} is running" if live else f"{busy[0].name} is in use"
            console.print(f"[red]error:[/red] --cache refused: {who}; clean without --cache")
            return 2
        code = max(code, remove_dead(console, items, dry_run=dry_run))
        if cache and code == 0:
            for backend in backends:
                _clean_cache(console, backend, host.name, dry_run)
    finally:
        for backend in backends:
            with contextlib.suppress(Exception):
                backend.close()
    return code


def _clean_cache(console: Console, backend: Backend, host: str, dry_run: bool) -> None:
    verb = "would remove" if dry_run else "removed"
    if backend.name == "libvirt":
        from vmvc.backends.libvirt_engine.pool import POOL_NAME, find_pool, remove_pool
        from vmvc.backends.libvirt_engine.remote import RemoteLibvirtBackend

        assert isinstance(backend, RemoteLibvirtBackend)
        if find_pool(backend.conn) is not None:
            if not dry_run:
                remove_pool(backend.conn)
            console.print(f"{verb} storage pool '{POOL_NAME}' and its volumes on {host}")
    elif backend.name == "docker":
        from vmvc.backends.docker_engine.remote import RemoteDockerBackend

        assert isinstance(backend, RemoteDockerBackend)
        for image in backend.client.images.list(filters={"label": "vmvc"}):
            if not dry_run:
                with contextlib.suppress(docker.errors.NotFound):
                    backend.client.images.remove(image.id, force=True)
            console.print(f"{verb} docker image {', '.join(image.tags) or image.id} on {host}")
