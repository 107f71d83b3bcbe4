"""Finding and removing what vmvc runs left behind (after kill -9, a crash, a power cut).

A resource is vmvc's only by its identity, never by its name alone: Docker labels with the
run id and this controller's id, libvirt domain metadata in vmvc's XML namespace, a root
process carrying the run id, a directory in the root-owned work root. Whether the run is
alive is asked again right before each removal (a run may have started since the listing),
so `vmvc clean` is safe to run at any time, also during a bench.

One path for every host: the local machine is the host named "local", a `[[hosts]]` entry
is cleaned through the same engine connections a bench uses. Each backend lists its own
leftovers and, with `--cache`, removes what it keeps between runs (`Backend.clean_cache`).
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.markup import escape

from vmvc.backends.base import Backend, Leftover, available_backend_classes
from vmvc.bench.syscalls import leftover_instances, remove_instance
from vmvc.config import Config, HostSettings, load_config
from vmvc.hosts import is_local, local_host
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
from vmvc.results import RUN_ID_PATTERN


class CleanRefused(Exception):
    """`vmvc clean` will not do what was asked (one line, for `error:`)."""


# A run id as vmvc makes them (results.RUN_ID_PATTERN), or as tests name theirs ("-test01").
WORKDIR_RUN_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[A-Za-z0-9]{6}$")


def _workdirs(live: set[str]) -> list[Leftover]:
    found: list[Leftover] = []
    root = work_root()
    try:
        check_trusted_dir(root)
    except UnsafePathError:
        return found  # missing, or not vmvc's: nothing in it was made by vmvc
    for path in root.iterdir():
        run_id = path.name.removeprefix(RESOURCE_PREFIX)
        # Only a run's own directory (vmvc-<run id>): a benchmark script's or a user's
        # vmvc-something in the work root is not a dead run's to remove.
        if path.name == run_id or not SAFE_NAME.match(run_id) or not WORKDIR_RUN_ID.match(run_id):
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


def _trace_instances(live: set[str]) -> list[Leftover]:
    """The kernel tracer's instances a killed run left (vmvc.bench.syscalls)."""
    found: list[Leftover] = []
    for path in leftover_instances():
        match = RUN_ID_PATTERN.search(path.name)
        if match is None:
            continue
        run_id = match.group(0)
        found.append(
            Leftover(
                "trace instance",
                str(path),
                run_id,
                run_id in live,
                remove=lambda p=path: remove_instance(p),
            )
        )
    return found


@contextlib.contextmanager
def reachable_backends(
    config: Config, host: HostSettings
) -> Iterator[tuple[list[Backend], list[str]]]:
    """Every backend on `host` that answers, and one line per engine the host offers that
    does not; all closed at exit."""
    made: list[Backend] = []
    reachable: list[Backend] = []
    unreachable: list[str] = []
    try:
        for cls in available_backend_classes().values():
            backend = cls(config, host)  # type: ignore[call-arg]
            made.append(backend)
            try:
                availability = backend.probe()
            except Exception as exc:  # an ssh failure surfaces as anything from either SDK
                unreachable.append(f"{backend.name} on {host.name}: {exc.__class__.__name__}")
                continue
            if availability.available:
                reachable.append(backend)
            elif availability.offered:
                unreachable.append(f"{backend.name} on {host.name}: {availability.reason}")
        yield reachable, unreachable
    finally:
        for backend in made:
            with contextlib.suppress(Exception):
                backend.close()


def _listed(backends: list[Backend], live: set[str], host: HostSettings) -> list[Leftover]:
    found: list[Leftover] = []
    for backend in backends:
        with contextlib.suppress(Exception):  # an engine that fails to list has nothing
            found.extend(backend.leftovers(live))
    # Two backends of one engine (libvirt's VM flavours) list the same resources: once each.
    found = list({(item.kind, item.name): item for item in found}.values())
    # The work root is this machine's: another host's instances keep nothing here.
    if not is_local(host):
        return found
    return found + _workdirs(live) + _trace_instances(live)


def find_leftovers(
    live: set[str] | None = None,
    *,
    config: Config | None = None,
    host: HostSettings | None = None,
) -> list[Leftover]:
    """What vmvc runs left on `host` (default: this machine)."""
    live = live_run_ids() if live is None else live
    host = host or local_host()
    with reachable_backends(config or load_config("quick"), host) as (backends, _down):
        return _listed(backends, live, host)


def clean_leftovers(
    console: Console,
    *,
    dry_run: bool,
    cache: bool,
    config: Config | None = None,
    host: HostSettings | None = None,
) -> int:
    """`vmvc clean [--host NAME]`: the leftovers of dead runs on the host, then (--cache)
    what its backends keep between runs. 1 if something resisted or an engine of another
    host did not answer."""
    host = host or local_host()
    live = live_run_ids()
    if cache and live:
        raise CleanRefused(
            f"--cache refused: run {sorted(live)[0]} is running "
            f"({len(live)} live run(s) use the cache); clean without --cache, or wait"
        )
    code = 0
    with reachable_backends(config or load_config("quick"), host) as (backends, down):
        if not is_local(host):  # here an engine that is down simply has nothing running
            for line in down:
                console.print(f"[yellow]{escape(line)}[/]")
                code = 1
        items = _listed(backends, live, host)
        busy = [item for item in items if item.owner]
        if cache and busy:
            # The cache is shared with the other controller that still has things there.
            raise CleanRefused(f"--cache refused: {busy[0].name} is in use; clean without --cache")
        code = max(code, remove_dead(console, items, dry_run=dry_run))
        if code == 0 and cache:
            _clean_cache(console, backends, host, dry_run)
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


def _clean_cache(
    console: Console, backends: list[Backend], host: HostSettings, dry_run: bool
) -> None:
    verb = "would remove" if dry_run else "removed"
    root = cache_dir()
    if is_local(host) and root.exists():
        if not dry_run:
            shutil.rmtree(root)
        console.print(f"{verb} image cache {root}")
    where = "" if is_local(host) else f" on {host.name}"
    for backend in backends:
        try:
            lines = backend.clean_cache(dry_run)
        except Exception as exc:
            console.print(f"[red]could not clean {backend.name}'s cache{where}: {exc}[/red]")
            continue
        for line in lines:
            console.print(f"{escape(line)}{where}", highlight=False)


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
