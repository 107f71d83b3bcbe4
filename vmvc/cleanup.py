"""Finding and removing what vmvc runs left behind (after kill -9, a crash, a power cut).

Only resources that carry vmvc's name or labels are considered, and never those of a run
that is still alive (its lock is held), so `vmvc clean` is safe to run at any time.
"""

from __future__ import annotations

import contextlib
import re
import shutil

from rich.console import Console

from vmvc.backends.base import Leftover, available_backend_classes
from vmvc.config import load_config
from vmvc.liveness import live_run_ids
from vmvc.paths import RESOURCE_PREFIX, cache_dir, work_root

RUN_DIR = re.compile(rf"^{RESOURCE_PREFIX}(\d{{8}}T\d{{6}}Z-[0-9a-f]{{6}})$")
PROBE_DIR = re.compile(rf"^{RESOURCE_PREFIX}probe-")


def _workdirs(live: set[str]) -> list[Leftover]:
    found = []
    root = work_root()
    if not root.exists():
        return found
    for path in root.iterdir():
        match = RUN_DIR.match(path.name)
        if match:
            run_id = match.group(1)
            found.append(
                Leftover(
                    "work dir",
                    str(path),
                    run_id,
                    run_id in live,
                    remove=lambda p=path: shutil.rmtree(p, ignore_errors=True),
                )
            )
        elif PROBE_DIR.match(path.name):
            found.append(
                Leftover(
                    "probe dir",
                    str(path),
                    "probe",
                    False,
                    remove=lambda p=path: shutil.rmtree(p, ignore_errors=True),
                )
            )
    return found


def find_leftovers() -> list[Leftover]:
    live = live_run_ids()
    config = load_config("quick")
    found: list[Leftover] = []
    for cls in available_backend_classes().values():
        backend = cls(config)
        with contextlib.suppress(Exception):  # an engine that is down has nothing to list
            if backend.probe().available:
                found.extend(backend.leftovers(live))
        backend.close()
    return found + _workdirs(live)


def clean_leftovers(console: Console, *, dry_run: bool, cache: bool) -> int:
    code = remove_dead(console, find_leftovers(), dry_run=dry_run)
    if code == 0 and cache:
        _clean_cache(console, dry_run)
    return code


def remove_dead(console: Console, items: list[Leftover], *, dry_run: bool) -> int:
    """Remove the leftovers of dead runs (also used for remote hosts); 1 if one resisted."""
    dead = [item for item in items if not item.alive]
    alive = [item for item in items if item.alive]
    for item in alive:
        console.print(f"keeping {item.kind} {item.name}: run {item.run_id} is still running")
    if not dead:
        console.print("nothing to clean")
    for item in dead:
        if dry_run:
            console.print(f"would remove {item.kind} {item.name} (run {item.run_id})")
            continue
        try:
            item.remove()
            console.print(f"removed {item.kind} {item.name} (run {item.run_id})")
        except Exception as exc:
            console.print(f"[red]could not remove {item.kind} {item.name}: {exc}[/red]")
            return 1
    return 0


def _clean_cache(console: Console, dry_run: bool) -> None:
    import docker

    root = cache_dir()
    verb = "would remove" if dry_run else "removed"
    if root.exists():
        if not dry_run:
            shutil.rmtree(root)
        console.print(f"{verb} image cache {root}")
    with contextlib.suppress(Exception):
        client = docker.from_env()
        for image in client.images.list(filters={"label": "vmvc"}):
            if not dry_run:
                client.images.remove(image.id, force=True)
            console.print(f"{verb} docker image {', '.join(image.tags) or image.id}")


def warn_about_leftovers(console: Console) -> None:
    """Said at the start of bench: leftovers of dead runs cost memory and skew results."""
    with contextlib.suppress(Exception):
        dead = [item for item in find_leftovers() if not item.alive]
        if dead:
            console.print(
                f"[yellow]warning:[/yellow] {len(dead)} leftover(s) of dead vmvc runs "
                f"(e.g. {dead[0].kind} {dead[0].name}); remove them with `vmvc clean`"
            )
