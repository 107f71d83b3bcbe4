"""`vmvc bench` from start to end: choose backends, build the image, run, analyse, report."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import signal
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from vmvc.backends.base import Backend, BackendError
from vmvc.cleanup import find_leftovers
from vmvc.config import Config
from vmvc.environment import host_environment
from vmvc.hosts import LOCAL_HOST, HostError, choose_hosts, local_host
from vmvc.image.build import Artefacts, ImageBuildError, build_image
from vmvc.liveness import hold_run_lock, is_alive
from vmvc.paths import check_run_dir_possible
from vmvc.progress import LiveView, PlainLog, RunTracker
from vmvc.results import (
    BackendRecord,
    ResultDocument,
    SkippedBackend,
    is_run_id,
    new_run_id,
    now_iso,
    save,
)
from vmvc.runner import BenchRunner, finish
from vmvc.selection import HostRun, prepare_host, prepare_hosts, record_hosts, select_hosts

Say = Callable[[str], None]


class BenchError(Exception):
    """A reason not to start (or continue) a run; one line for the user, exit code 2."""


class OutputDirError(BenchError):
    """--output cannot hold results; checked before anything is built or started."""


def check_output_dir(output: Path) -> None:
    """Refuse an --output vmvc could not write into, without leaving anything behind.

    An existing directory must take a new file; a missing one must be creatable under its
    nearest existing parent (that is what `save` will do). Both are tried for real with a
    temporary file or directory that is removed at once: only the kernel knows that
    /proc/x cannot be made or that a read-only mount refuses root too.
    """
    if output.exists() or output.is_symlink():
        if not output.is_dir():
            raise OutputDirError(f"--output {output} is not a directory; give a directory")
        probe_in = output
    else:
        probe_in = next((p for p in output.parents if p.exists()), Path("."))
        if not probe_in.is_dir():
            raise OutputDirError(f"--output {output}: {probe_in} is not a directory")
    try:
        if probe_in == output:
            fd, name = tempfile.mkstemp(prefix=".vmvc-probe-", dir=output)
            os.close(fd)
            os.unlink(name)
        else:
            os.rmdir(tempfile.mkdtemp(prefix=".vmvc-probe-", dir=probe_in))
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise OutputDirError(f"--output {output}: cannot write there ({reason})") from None


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: the run stopped, its partial result is saved."""

    def __init__(self, run_id: str, path: Path, left: list[str]) -> None:
        super().__init__(run_id)
        self.run_id = run_id
        self.path = path
        self.left = left


@dataclass
class Selection:
    backends: dict[str, Backend]
    skipped: list[SkippedBackend] = field(default_factory=list)


def select_backends(config: Config, requested_all: bool) -> Selection:
    """The local host's backends (selection.select_host, the path every host takes)."""
    try:
        run = select_hosts(config, [local_host()], requested_all, lambda _message: None)[0]
    except HostError as exc:
        raise BenchError(str(exc)) from None
    return Selection(run.backends, run.skipped)


def prepare_image(config: Config, say: Say) -> Artefacts:
    try:
        return build_image(
            config.image.suite,
            config.image.packages,
            config.image.mirror,
            timeout=config.timeouts.image_build_s,
            progress=say,
        )
    except ImageBuildError as exc:
        raise BenchError(f"image build failed: {exc}") from None


def prepare_backends(selection: Selection, artefacts: Artefacts, say: Say) -> dict[str, Any]:
    """The local backends' forms of the image (selection.prepare_host)."""
    run = HostRun(local_host(), selection.backends)
    try:
        prepare_host(run, artefacts, say)
    except (HostError, BackendError) as exc:
        raise BenchError(str(exc)) from None
    return run.prepared


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so every context manager tears down."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def new_document(
    config: Config, selection: Selection, artefacts: Artefacts, prepared: dict[str, Any]
) -> ResultDocument:
    environment = host_environment()
    for backend in selection.backends.values():
        environment.update(backend.environment())
    environment.setdefault("accel", None)  # no libvirt backend in this run
    doc = ResultDocument(
        run_id=new_run_id(),
        started_at=now_iso(),
        pid=os.getpid(),
        config=config.model_dump(),
        environment=environment,
        image={**artefacts.describe(), "prepared": prepared},
        skipped=selection.skipped,
        backend_info={
            name: BackendRecord(**dataclasses.asdict(backend.info()))
            for name, backend in selection.backends.items()
        },
    )
    return doc


def analyse(doc: ResultDocument, config: Config) -> None:
    """Statistics and claim verdicts, computed once and stored beside the raw values.

    The only place verdicts are made: exporters read them from the document.
    """
    from vmvc import claims, stats
    from vmvc.backend_records import fill_backend_info

    fill_backend_info(doc)  # results from before backends described themselves
    doc.statistics = stats.summarize(doc)
    doc.verdicts = claims.evaluate(doc, doc.statistics, config.thresholds)


def reanalyse(doc: ResultDocument) -> None:
    """A loaded result's statistics and verdicts, recomputed from its samples.

    What a file stores under `statistics` and `verdicts` is never shown (`results.load`
    drops it): anyone who can write the file could forge a verdict or a crash there. The
    thresholds are the result's own config (validated by `results.load`). Should the
    analysis fail on odd but valid samples, both stay empty and the statistics' note says
    why, which every report shows.
    """
    from vmvc.analysed import Statistics

    doc.statistics, doc.verdicts = Statistics(), []
    config = Config.model_validate(doc.config)
    try:
        analyse(doc, config)
    except Exception as exc:  # a report of the raw samples is still worth having
        why = f"analysis failed ({exc.__class__.__name__}: {exc})"
        doc.statistics, doc.verdicts = Statistics(note=f"{why}: no statistics, no verdicts"), []


def write_reports(doc: ResultDocument, directory: Path) -> list[Path]:
    from vmvc import report

    return report.write_reports(doc, directory, formats=("html", "md"))


def run_bench(
    config: Config,
    *,
    requested_all: bool,
    output: Path,
    plain: bool,
    say: Say,
    resume: ResultDocument | None = None,
    hosts: list[str] | None = None,
) -> tuple[ResultDocument, Path, list[Path]]:
    if hosts is None and resume is not None:
        hosts = resume.environment.get("benchmarked_hosts")
    runs: list[HostRun] = []
    try:
        try:
            # Every host's engines are probed before anything is built: a dead link fails fast.
            runs = select_hosts(config, choose_hosts(config, hosts), requested_all, say)
            artefacts = prepare_image(config, say)
            prepare_hosts(runs, artefacts, say)
        except (HostError, BackendError) as exc:
            raise BenchError(str(exc)) from None
        local = next((run for run in runs if run.local), None)
        selection = Selection(local.backends, local.skipped) if local else Selection({})
        prepared = local.prepared if local else {}
        if resume is not None:
            doc = resume
            if not is_run_id(doc.run_id):  # load() refuses these; a caller may not use it
                raise BenchError(f"cannot resume: {doc.run_id!r} is not a vmvc run id")
            if doc.image.get("id") != artefacts.image_id:
                raise BenchError(
                    f"cannot resume {doc.run_id}: it used image {doc.image.get('id')}, "
                    f"this vmvc builds {artefacts.image_id}"
                )
            if is_alive(doc.run_id):
                raise BenchError(f"run {doc.run_id} is still running (pid {doc.pid})")
            # What the interrupted process left (it is dead: its lock is free) goes first,
            # so the resumed trials start from a clean host and can reuse instance names.
            for item in find_leftovers():
                if item.run_id == doc.run_id:
                    say(f"removing {item.kind} {item.name} left by the interrupted run")
                    item.remove()
            doc.status = "running"
            doc.pid = os.getpid()
            # A result from before backend_info: the stopping rule picks its pairs by kind.
            for name, backend in selection.backends.items():
                info = BackendRecord(**dataclasses.asdict(backend.info()))
                doc.backend_info.setdefault(name, info)
        else:
            doc = new_document(config, selection, artefacts, prepared)
            record_hosts(doc, runs)
        path = output / f"{doc.run_id}.json"
        check_run_dir_possible(doc.run_id)  # refuse before the result file exists
        with hold_run_lock(doc.run_id), terminate_as_interrupt():
            save(doc, path)
            say(f"run {doc.run_id}: writing {path}")
            plans = [(run.name, run.backends) for run in runs if run.backends]
            try:
                for host, backends in plans:
                    if host != LOCAL_HOST or len(plans) > 1:
                        say(f"host {host}: {', '.join(backends)}")
                    _run_host(host, config, backends, artefacts, doc, path, plain)
            except KeyboardInterrupt:
                finish(doc, path, "interrupted")
                # A second Ctrl-C may have cut teardown short: say exactly what is left.
                left = [f"{i.kind} {i.name}" for i in find_leftovers() if i.run_id == doc.run_id]
                raise Interrupted(doc.run_id, path, left) from None
        analyse(doc, config)
        finish(doc, path, "complete")
        reports = write_reports(doc, output)
        return doc, path, reports
    finally:
        for run in runs:
            run.close()


def _run_host(
    host: str,
    config: Config,
    backends: dict[str, Backend],
    artefacts: Artefacts,
    doc: ResultDocument,
    path: Path,
    plain: bool,
) -> None:
    """One host's whole plan; its samples, trials and errors carry the host's name."""
    tracker = RunTracker(list(backends), config.workloads)  # the runner gives it the plan
    tracker.resumed(doc, host=host)  # a resumed run's finished trials count as done
    view = PlainLog(tracker) if plain else LiveView(tracker)
    runner = BenchRunner(
        config,
        backends,
        artefacts,
        doc,
        path,
        observer=view,
        host=host,
        needs_more=_needs_more(host),
    )
    with view:
        runner.run()


def _needs_more(host: str) -> Callable[[ResultDocument, float], tuple[bool, str]] | None:
    """The stopping rule on this host's own samples (the ratios its verdicts use)."""
    try:
        from vmvc.stats import repetition_status
    except ImportError:
        return None
    return functools.partial(repetition_status, host=host)
