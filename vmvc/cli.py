"""The vmvc command line: bench, doctor, image, clean, report, compare, history."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from vmvc.config import ALL_WORKLOADS, Config, ConfigError, load_config
from vmvc.safe_text import one_line

app = typer.Typer(
    name="vmvc",
    help="Benchmark VMs (libvirt/KVM) against containers (Docker) and native, on this host.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
image_app = typer.Typer(help="Build or inspect the workload image.", no_args_is_help=True)
app.add_typer(image_app, name="image")

out = Console()
err = Console(stderr=True)


def use_plain_console() -> None:
    """--plain: no colour, no escape codes at all, even on a terminal (for logs)."""
    global err
    err = Console(stderr=True, force_terminal=False, no_color=True, highlight=False)


if "--plain" in sys.argv:  # before any command runs, so early notices are plain too
    use_plain_console()


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr, no traceback, a non-zero exit.

    Messages quote file names, run ids and values from files: never read as rich markup
    ('[/]' would raise, '[link=...]' would forge), never more than one line.
    """
    err.print(
        f"[bold red]error:[/bold red] {escape(one_line(message))}", highlight=False, soft_wrap=True
    )
    raise typer.Exit(code)


def say(message: str) -> None:
    err.print(f"[dim]vmvc:[/dim] {escape(one_line(message))}", highlight=False, soft_wrap=True)


def _config(profile: str | None, config_file: Path | None, overrides: dict[str, Any]) -> Any:
    try:
        return load_config(profile, config_file, overrides)
    except ConfigError as exc:
        fail(str(exc))


# Commands that only read files need no engine, so they do not look for leftovers.
FILE_ONLY_COMMANDS = {"clean", "report", "compare", "history"}


@app.callback()
def notice_leftovers(ctx: typer.Context) -> None:
    """After a kill -9 the next vmvc command says what the dead run left behind."""
    if ctx.invoked_subcommand not in FILE_ONLY_COMMANDS:
        from vmvc.cleanup import warn_about_leftovers

        warn_about_leftovers(err)


@app.command()
def bench(
    ctx: typer.Context,
    backend: Annotated[
        list[str] | None,
        typer.Option(
            "--backend",
            "-b",
            help="An installed backend (`vmvc doctor` lists them) or all (repeatable).",
        ),
    ] = None,
    workload: Annotated[
        list[str] | None,
        typer.Option("--workload", "-w", help=f"One of: {', '.join(ALL_WORKLOADS)} (repeatable)."),
    ] = None,
    profile: Annotated[
        str | None, typer.Option("--profile", "-p", help="quick, default or nightly.")
    ] = None,
    config_file: Annotated[
        Path | None, typer.Option("--config", "-c", help="TOML config file (see configs/).")
    ] = None,
    accel: Annotated[
        str | None,
        typer.Option(
            help="VM acceleration: auto (probe KVM, else TCG), kvm (fail if unusable), tcg."
        ),
    ] = None,
    repetitions: Annotated[
        int | None,
        typer.Option("--repetitions", "-n", help="Exactly this many measured repetitions."),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Seed of the shuffled backend order (default: drawn and recorded in the "
            "result, so a run can be replayed with it)."
        ),
    ] = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Directory for <run-id>.json/.md/.html.")
    ] = Path("results"),
    plain: Annotated[
        bool, typer.Option(help="Plain log lines instead of the live dashboard.")
    ] = False,
    resume: Annotated[
        str | None, typer.Option(help="Run only what is missing from run RUN_ID in --output.")
    ] = None,
    host: Annotated[
        list[str] | None,
        typer.Option(
            "--host",
            help="'local' or a [[hosts]] name of the config (repeatable); default: all.",
        ),
    ] = None,
    interactive: Annotated[
        bool,
        typer.Option(
            "--interactive",
            help="Pick backends, workloads and profile from what doctor finds (needs a TTY; "
            "also the default for a bare `vmvc bench` on a terminal).",
        ),
    ] = False,
) -> None:
    """Run the benchmark: every chosen backend x workload, interleaved repetitions."""
    from vmvc.interactive import InteractiveError, choose_interactively
    from vmvc.liveness import RunLockError
    from vmvc.orchestrate import (
        BenchError,
        Interrupted,
        OutputDirError,
        check_output_dir,
        run_bench,
    )
    from vmvc.paths import UnsafePathError

    try:
        picked = choose_interactively(
            interactive,
            ctx,
            backend=backend,
            workload=workload,
            profile=profile,
            config_file=config_file,
            accel=accel,
            resume=resume,
        )
    except InteractiveError as exc:
        fail(str(exc))
    if picked is not None:
        backend, workload, profile = picked.backends, picked.workloads, picked.profile

    overrides: dict[str, Any] = {}
    requested_all = not backend or "all" in backend
    if backend and not requested_all:
        installed = _installed_backends()
        unknown = [b for b in backend if b not in installed]
        if unknown:
            fail(f"unknown backend '{unknown[0]}' (installed: {', '.join(installed)}; or all)")
        overrides["backends"] = list(dict.fromkeys(backend))
    if workload:
        overrides["workloads"] = workload
    if accel is not None:
        if accel not in ("auto", "kvm", "tcg"):
            fail(f"--accel must be auto, kvm or tcg, not '{accel}'")
        overrides["accel"] = accel
    if repetitions is not None:
        if repetitions < 1:
            fail("--repetitions must be at least 1")
        overrides["run"] = {"repetitions": repetitions, "max_repetitions": repetitions}
    if seed is not None:
        if not 0 <= seed < 2**63:
            fail(f"--seed must be from 0 to 2**63-1, not {seed}")
        overrides.setdefault("run", {})["seed"] = seed
    resumed = None
    if resume is not None:
        resumed, config = _resumable(output, resume)
    else:
        config = _config(profile, config_file, overrides)
        if requested_all:
            # every installed backend in the usual order (a source tree never pip-installed
            # has no entry points: the config's default list is empty there)
            installed = _installed_backends()
            chosen = config.backends or installed
            config.backends = [n for n in installed if n in chosen] + [
                n for n in chosen if n not in installed
            ]
        else:
            # A backend named on the command line is measured in full, like the ones the
            # claims compare: a profile trims only the spectrum it was asked for as a whole
            # (`-b gvisor -w cpu` must measure gVisor's cpu, not nothing).
            config.run.lifecycle_backends = "all"
            config.run.steady_backends = "all"
            config.run.spectrum_repetitions = None
        if repetitions is not None:
            # Exactly N for every chosen workload: none is limited to fewer (vmvc.plan).
            config.run.workload_repetitions = {}
    try:
        check_output_dir(output)
    except OutputDirError as exc:
        fail(str(exc))
    plain = plain or not err.is_terminal
    if plain:
        use_plain_console()
    try:
        doc, path, reports = run_bench(
            config,
            requested_all=requested_all,
            output=output,
            plain=plain,
            say=say,
            resume=resumed,
            hosts=host,
        )
    except (BenchError, RunLockError, UnsafePathError) as exc:
        fail(str(exc))
    except OSError as exc:  # the output disappeared or filled up mid-run
        where = f" ({exc.filename})" if exc.filename else ""
        fail(f"cannot write the results: {exc.strerror or exc.__class__.__name__}{where}")
    except Interrupted as stop:
        if stop.left:
            err.print(
                f"interrupted; cleanup was cut short, left behind: {', '.join(stop.left)}; "
                "remove them with `vmvc clean`",
                highlight=False,
                markup=False,
            )
        else:
            err.print("interrupted: every instance this run created was removed", highlight=False)
        err.print(
            f"partial results: {stop.path} (finish them: vmvc bench --resume {stop.run_id} "
            f"--output {output})",
            highlight=False,
            markup=False,
        )
        raise typer.Exit(130) from None
    except KeyboardInterrupt:
        err.print("interrupted before the run started; nothing was created")
        raise typer.Exit(130) from None
    # Paths are the user's --output: '[...]' in a directory name is not markup.
    out.print(f"results: {path}", markup=False, highlight=False)
    for report_path in reports:
        out.print(f"report:  {report_path}", markup=False, highlight=False)
    if doc.errors:
        err.print(
            f"[yellow]{len(doc.errors)} trial(s) failed[/yellow]; see 'errors' in "
            f"{escape(str(path))}"
        )
        for error in doc.errors[:5]:
            err.print(
                f"  {error.backend} {error.workload} rep {error.repetition + 1}: "
                f"{one_line(error.message)}",
                highlight=False,
                markup=False,
            )
        raise typer.Exit(1)


def _installed_backends() -> list[str]:
    """Every backend of the entry-point group, built-in or plugin, by name."""
    from vmvc.backends.base import available_backend_classes

    try:
        return list(available_backend_classes())
    except Exception as exc:  # a plugin package that fails to import: say which, no traceback
        fail(f"cannot load the installed backends: {exc or type(exc).__name__}")


def _resumable(output: Path, resume: str) -> tuple[Any, Config]:
    """The result to resume and the config it ran with, both validated before any engine
    is touched: the run id becomes paths that root creates and removes, the config
    becomes engine connections."""
    from vmvc.results import ResultFileError, check_run_id, load

    try:
        check_run_id(resume)
    except ValueError as exc:
        fail(f"cannot resume: {exc}")
    try:
        resumed = load(output / f"{resume}.json")
    except ResultFileError as exc:
        fail(f"cannot resume: {exc}")
    if resumed.run_id != resume:
        fail(
            f"cannot resume: {output / f'{resume}.json'} holds run {resumed.run_id!r}, not {resume}"
        )
    try:
        config = Config.model_validate(resumed.config)
    except ValidationError as exc:  # load() checked it already; kept for other callers
        fail(f"cannot resume: {exc.errors()[0]['msg']}")
    return resumed, config


@app.command()
def doctor(
    probe: Annotated[
        bool, typer.Option(help="Boot a probe guest to tell whether KVM works (cached).")
    ] = True,
    host: Annotated[
        str,
        typer.Option("--host", help="'local' or a [[hosts]] entry of --config to check."),
    ] = "local",
    config_file: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="TOML config (libvirt_uri, [[hosts]])."),
    ] = None,
) -> None:
    """Check every prerequisite and say the command that fixes what is missing."""
    from vmvc.doctor import run_doctor

    config = _config(None, config_file, {}) if config_file is not None else None
    raise typer.Exit(run_doctor(out, probe=probe, say=say, config=config, host=host))


@image_app.command("build")
def image_build(
    profile: Annotated[str | None, typer.Option("--profile", "-p")] = None,
    config_file: Annotated[Path | None, typer.Option("--config", "-c")] = None,
    rebuild: Annotated[bool, typer.Option(help="Ignore the cache and build again.")] = False,
) -> None:
    """Build the workload image (rootfs, Docker image, VM kernel/initramfs/disk) into the cache."""
    from vmvc.backends.base import available_backend_classes
    from vmvc.image.build import ImageBuildError, build_image
    from vmvc.orchestrate import BenchError, prepare_backends, select_backends

    config = _config(profile, config_file, {})
    try:
        artefacts = build_image(
            config.image.suite,
            config.image.packages,
            config.image.mirror,
            timeout=config.timeouts.image_build_s,
            progress=say,
            rebuild=rebuild,
        )
    except ImageBuildError as exc:
        fail(str(exc))
    # The container engines' forms of the image (a VM's is the disk image just built).
    containers = [n for n, cls in available_backend_classes().items() if cls.kind == "container"]
    try:
        if containers:
            selection = select_backends(config.model_copy(update={"backends": containers}), True)
            prepare_backends(selection, artefacts, say)
    except BenchError as exc:
        say(f"container form not built: {exc}")
    state = "cache hit" if artefacts.cache_hit else f"built in {artefacts.build_seconds:.1f} s"
    out.print(f"image {artefacts.image_id} ({state}): {artefacts.root}")


@image_app.command("show")
def image_show() -> None:
    """List cached images."""
    import json

    from vmvc.image.build import cached_images

    images = cached_images()
    if not images:
        out.print("no cached image; build one with `vmvc image build`")
    for path in images:
        manifest = json.loads((path / "manifest.json").read_text())
        recipe = manifest["recipe"]
        # Images before format 2 carried their kernel; the VM's boot files are now shared.
        kernel = recipe.get("kernel_package", "-")
        out.print(f"{manifest['image_id']}  {recipe['suite']}  {kernel}  {path}")


@app.command()
def clean(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would go.")] = False,
    cache: Annotated[
        bool, typer.Option(help="Also remove the image cache and vmvc Docker images.")
    ] = False,
    host: Annotated[
        str,
        typer.Option("--host", help="'local' or a [[hosts]] entry of --config to clean."),
    ] = "local",
    config_file: Annotated[
        Path | None, typer.Option("--config", "-c", help="TOML config with [[hosts]].")
    ] = None,
) -> None:
    """Remove what vmvc runs left behind (never anything of a run still alive)."""
    from vmvc.cleanup import CleanRefused, clean_leftovers
    from vmvc.hosts import HostError, choose_host
    from vmvc.liveness import RunLockError

    config = _config(None, config_file, {})
    try:
        chosen = choose_host(config, host)
        code = clean_leftovers(out, dry_run=dry_run, cache=cache, config=config, host=chosen)
    except (CleanRefused, RunLockError, HostError) as exc:
        fail(str(exc))
    raise typer.Exit(code)


def _register_optional() -> None:
    """Commands living in their own modules (report, compare, history)."""
    import importlib

    for module_name in ("vmvc.cli_report", "vmvc.cli_analysis"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        module.register(app)


_register_optional()


def main() -> None:
    try:
        code = app(standalone_mode=False)
    except (KeyboardInterrupt, typer.Abort):
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        # Usage errors (typer's bundled click) span several lines and a box; vmvc says one
        # line. Matched by shape because typer does not export the class publicly.
        if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):
            raise
        if not exc.format_message().strip():  # `vmvc` alone: help was shown
            sys.exit(0)
        ctx = getattr(exc, "ctx", None)
        command = ctx.command_path if ctx is not None else "vmvc"
        err.print(
            f"[bold red]error:[/bold red] {exc.format_message()} (see `{command} --help`)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
