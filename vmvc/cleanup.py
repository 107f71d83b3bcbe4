"""Finding and removing what vmvc runs left behind (after kill -9, a crash, a power cut).

A resource is vmvc's only by its identity, never by its name alone: Docker labels with the
run id and this controller's id, libvirt domain metadata in vmvc's XML namespace, a root
process carrying the run id, a directory in the root-owned work root. Whether the run is
alive is asked again right before each removal (a run may have started since the listing),
so `vmvc clean` is safe to run at any time, also during a bench.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable

from rich.console import Console
from rich.markup import escape

from vmvc.backends.base import Leftover, available_backend_classes
from vmvc.config import load_config
from vmvc.liveness import is_alive, live_run_ids
from vmvc.paths import (
    RESOURCE_PREFIX,
    SAFE_NAME,
    UnsafePathError,
    cache_dir,
    check_trusted_dir,
    remove_tree,
    work_root,
)


class CleanRefused(Exception):
    """`vmvc clean` will not do what was asked (one line, for `error:`)."""


def _workdirs(live: set[str]) -> list[Leftover]:
    found: list[Leftover] = []
    root = work_root()
    try:
        check_trusted_dir(root)
    except UnsafePathError:
        return found  # missing, or not vmvc's: nothing in it was made by vmvc
    for path in root.iterdir():
        run_id = path.name.removeprefix(RESOURCE_PREFIX)
        if path.name == run_id or not SAFE_NAME.match(run_id):
            continue
        found.append(
            Leftover(
                "work dir",
                str(path),
                run_id,
                run_id in live,
                remove=lambda p=path: remove_tree(p),
            )
        )
    return found


def find_leftovers(live: set[str] | None = None) -> list[Leftover]:
    live = live_run_ids() if live is None else live
    config = load_config("quick")
    found: list[Leftover] = []
    for cls in available_backend_classes().values():
        backend = cls(config)
        with contextlib.suppress(Exception):  # an engine that is down has nothing to list
            if backend.probe().available:
                found.extend(backend.leftovers(live))
        with contextlib.suppress(Exception):
            backend.close()
    return found + _workdirs(live)


def clean_leftovers(console: Console, *, dry_run: bool, cache: bool) -> int:
    live = live_run_ids()
    if cache and live:
        raise CleanRefused(
            f"--cache refused: run {sorted(live)[0]} is running "
            f"({len(live)} live run(s) use the cache); clean without --cache, or wait"
        )
    code = remove_dead(console, find_leftovers(live), dry_run=dry_run)
    if code == 0 and cache:
        _clean_cache(console, dry_run)
    return code


def remove_dead(
    console: Console,
    items: list[Leftover],
    *,
    dry_run: bool,
    still_alive: Callable[[str], bool] = is_alive,
) -> int:
    """Remove the leftovers of dead runs (also used for remote hosts); 1 if one resisted."""
    kept = [item for item in items if item.alive or item.owner]
    dead = [item for item in items if not (item.alive or item.owner)]
    for item in kept:
        why = (
            f"it belongs to another controller ({item.owner})"
            if item.owner
            else f"run {item.run_id} is still running"
        )
        console.print(f"keeping {item.kind} {escape(item.name)}: {why}", highlight=False)
    if not dead:
        console.print("nothing to clean")
    code = 0
    for item in dead:
        name = escape(item.name)
        if dry_run:
            console.print(f"would remove {item.kind} {name} (run {item.run_id})", highlight=False)
            continue
        if still_alive(item.run_id):  # started (or resumed) since the listing
            console.print(f"keeping {item.kind} {name}: run {item.run_id} is running now")
            continue
        try:
            item.remove()
            console.print(f"removed {item.kind} {name} (run {item.run_id})", highlight=False)
        except Exception as exc:
            console.print(f"[red]could not remove {item.kind} {name}: {escape(str(exc))}[/red]")
            code = 1
    return code


def _clean_cache(console: Console, dry_run: bool) -> None:
    import docker

    root = cache_dir()
    verb = "would remove" if dry_run else "removed"
    if root.exists():
        if not dry_run:
            shutil.rmtree(root)
        console.print(f"{verb} image cache {root}")
    with contextlib.suppress(Exception):
        client = docker.from_env(timeout=60)
        for image in client.images.list(filters={"label": "vmvc"}):
            if not dry_run:
                client.images.remove(image.id, force=True)
            console.print(f"{verb} docker image {', '.join(image.tags) or image.id}")


def warn_about_leftovers(console: Console) -> None:
    """Said at the start of bench: leftovers of dead runs cost memory and skew results."""
    with contextlib.suppress(Exception):
        found = find_leftovers()
        dead = [item for item in found if not (item.alive or item.owner)]
        if dead:
            console.print(
                f"[yellow]warning:[/yellow] {len(dead)} leftover(s) of dead vmvc runs "
                f"(e.g. {dead[0].kind} {escape(dead[0].name)}); remove them with `vmvc clean`"
            )
