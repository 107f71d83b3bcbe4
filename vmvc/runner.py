"""Plan execution: repetitions interleaved across backends, timing, teardown, saving as it goes.

One repetition runs every backend once (A B C, A B C, ... or shuffled with a recorded seed),
so slow drift of a noisy host spreads over all backends instead of biasing one. Each trial
is an instance's whole life: provision, ready (startup phases), idle footprint, then the
steady workloads inside it. What each repetition runs is decided by vmvc.plan (warm-ups and
capped workloads). The result file is rewritten atomically after every trial.
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from vmvc.agent.protocol import AgentError
from vmvc.backends.base import Backend, InstanceSpec
from vmvc.bench import AGENT_WORKLOADS, footprint, startup
from vmvc.bench.base import Measurement, ParseError
from vmvc.bench.lifecycle import LIFECYCLE_WORKLOADS, LifecycleContext, applies
from vmvc.config import STEADY_WORKLOADS, Config
from vmvc.image.build import Artefacts
from vmvc.paths import make_run_dir, run_workdir
from vmvc.plan import INSTANCE_TRIAL, INSTANCE_WORKLOADS, Plan, instance_workloads, trial_kinds
from vmvc.proc import ToolError
from vmvc.results import (
    InstanceReport,
    ResultDocument,
    Sample,
    TrialError,
    TrialRecord,
    now_iso,
    save,
)


class Observer(Protocol):
    """What the live view (or plain log) is told as the run goes."""

    def trial_started(self, backend: str, kind: str, repetition: int, warmup: bool) -> None: ...
    def phase(self, backend: str, text: str) -> None: ...
    def sample(self, sample: Sample) -> None: ...
    def trial_finished(self, backend: str, kind: str, ok: bool, message: str) -> None: ...
    def message(self, text: str) -> None: ...


class TrialFailed(Exception):
    def __init__(self, message: str, console_tail: list[str] | None = None) -> None:
        super().__init__(message)
        self.console_tail = console_tail or []


class BenchRunner:
    def __init__(
        self,
        config: Config,
        backends: dict[str, Backend],
        artefacts: Artefacts,
        doc: ResultDocument,
        path: Path,
        observer: Observer,
        host: str = "local",
        needs_more: Callable[[ResultDocument, float], tuple[bool, str]] | None = None,
    ) -> None:
        self.config = config
        self.backends = backends
        self.artefacts = artefacts
        self.doc = doc
        self.path = path
        self.observer = observer
        self.host = host
        self.needs_more = needs_more
        self.workdir = run_workdir(doc.run_id)
        if config.run.seed is None:
            # Recorded in the result's config, so the run order can be reproduced.
            config.run.seed = random.randrange(2**31)
            self.doc.config.setdefault("run", {})["seed"] = config.run.seed
        self.seed = config.run.seed
        self._names: dict[str, int] = {}

    # -- planning -------------------------------------------------------------------------

    def kinds(self, repetition: int = 0) -> list[str]:
        """Trial kinds of a repetition (negative: a warm-up), see vmvc.plan."""
        return [
            kind
            for kind in trial_kinds(
                self.config.workloads, self.config.run.workload_repetitions, repetition
            )
            if kind == INSTANCE_TRIAL or kind in LIFECYCLE_WORKLOADS
        ]

    def plan(self, repetition: int) -> Plan:
        warmup = repetition < 0
        order = list(self.backends)
        if self.config.run.shuffle:
            random.Random(self.seed + repetition).shuffle(order)
        trials = [
            (backend, kind)
            for kind in self.kinds(repetition)
            for backend in order
            if applies(kind, self.backends[backend])
        ]
        measured = instance_workloads(
            self.config.workloads, self.config.run.workload_repetitions, repetition
        )
        return Plan(repetition, warmup, trials, measured)

    def done(self) -> set[tuple[str, str, str, int]]:
        return {t.key for t in self.doc.trials if t.status == "ok"}

    # -- running --------------------------------------------------------------------------

    def run(self) -> ResultDocument:
        started = time.monotonic()
        # Made now and exclusively under the root-only work root: a dir that exists already
        # (planted, or left by a dead run) is refused, never reused (vmvc.paths).
        make_run_dir(self.doc.run_id)
        try:
            for repetition in range(-self.config.run.warmups, 0):
                self._run_repetition(self.plan(repetition))
            repetition = 0
            while self._want_repetition(repetition, started):
                plan = self.plan(repetition)
                if not plan.trials:
                    break  # every chosen workload has had all the repetitions it is given
                self._run_repetition(plan)
                repetition += 1
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return self.doc

    def _want_repetition(self, repetition: int, started: float) -> bool:
        """The sequential stopping rule (vmvc.stats.repetition_status) between the bounds."""
        settings = self.config.run
        if repetition < settings.repetitions:
            return True
        if repetition >= settings.max_repetitions:
            bound = "fixed count" if settings.repetitions == settings.max_repetitions else "maximum"
            return self._stop(f"{bound} of {repetition} repetitions reached")
        if time.monotonic() - started > settings.time_budget_s:
            self.observer.message(f"time budget of {settings.time_budget_s:.0f} s reached")
            return self._stop(f"time budget of {settings.time_budget_s:.0f} s reached")
        if self.needs_more is None:
            return self._stop(f"minimum of {repetition} repetitions reached (no stopping rule)")
        more, why = self.needs_more(self.doc, settings.target_ci_width)
        if more:
            self.observer.message(f"{why}: repetition {repetition + 1}")
            return True
        return self._stop(f"after {repetition} repetitions: {why}")

    def _stop(self, why: str) -> bool:
        """Record in the result why this host's run stopped where it did (run.stop_reason)."""
        self.doc.run.setdefault("stop_reason", {})[self.host] = why
        return False

    def _run_repetition(self, plan: Plan) -> None:
        finished = self.done()
        for backend_name, kind in plan.trials:
            key = (self.host, backend_name, kind, plan.repetition)
            if key in finished:
                continue  # resumed run: this trial already succeeded
            self._run_trial(
                backend_name, kind, plan.repetition, plan.warmup, plan.instance_workloads
            )

    def _forget_partial(self, backend_name: str, kind: str, repetition: int) -> None:
        """A retried trial (resume) replaces what its failed attempt recorded."""
        workloads = set(INSTANCE_WORKLOADS) | {kind} if kind == INSTANCE_TRIAL else {kind}

        def ours(item: Sample | TrialError) -> bool:
            return (
                item.host == self.host
                and item.backend == backend_name
                and item.repetition == repetition
                and item.workload in workloads
            )

        self.doc.samples = [s for s in self.doc.samples if not ours(s)]
        self.doc.errors = [e for e in self.doc.errors if not ours(e)]
        self.doc.instances = [
            i
            for i in self.doc.instances
            if not (
                kind == INSTANCE_TRIAL
                and i.backend == backend_name
                and i.repetition == repetition
                and i.host == self.host
            )
        ]

    def _run_trial(
        self,
        backend_name: str,
        kind: str,
        repetition: int,
        warmup: bool,
        measured: list[str] | None = None,
    ) -> None:
        self._forget_partial(backend_name, kind, repetition)
        self.observer.trial_started(backend_name, kind, repetition, warmup)
        started = time.monotonic()
        status: str = "ok"
        message = ""
        try:
            if kind == INSTANCE_TRIAL:
                self._instance_trial(backend_name, repetition, warmup, measured)
            else:
                self._lifecycle_trial(backend_name, kind, repetition, warmup)
        except (TrialFailed, AgentError, ParseError, ToolError, OSError, RuntimeError) as exc:
            status, message = "failed", _one_line(exc)
            tail = exc.console_tail if isinstance(exc, TrialFailed) else []
            self._record_error(backend_name, kind, repetition, message, tail)
        except Exception as exc:  # an engine error (docker/libvirt) must not end the run
            status, message = "failed", f"{exc.__class__.__name__}: {_one_line(exc)}"
            self._record_error(backend_name, kind, repetition, message, [])
        finally:
            self.doc.trials = [
                t for t in self.doc.trials if t.key != (self.host, backend_name, kind, repetition)
            ]
            self.doc.trials.append(
                TrialRecord(
                    backend=backend_name,
                    kind=kind,
                    repetition=repetition,
                    warmup=warmup,
                    status="ok" if status == "ok" else "failed",
                    host=self.host,
                    seconds=round(time.monotonic() - started, 3),
                )
            )
            save(self.doc, self.path)
        self.observer.trial_finished(backend_name, kind, status == "ok", message)

    def spec(self, backend_name: str, *, restart_on_crash: bool = False) -> InstanceSpec:
        index = self._names.get(backend_name, 0) + 1
        self._names[backend_name] = index
        name = f"vmvc-{self.doc.run_id}-{backend_name}-{index}"
        settings = self.config.instance
        return InstanceSpec(
            run_id=self.doc.run_id,
            name=name,
            workdir=self.workdir / name,
            vcpus=settings.vcpus,
            memory_mib=settings.memory_mib,
            data_disk_mib=settings.data_disk_mib,
            boot_timeout=self.config.timeouts.boot_s,
            restart_on_crash=restart_on_crash,
        )

    def _instance_trial(
        self, backend_name: str, repetition: int, warmup: bool, measured: list[str] | None
    ) -> None:
        backend = self.backends[backend_name]
        chosen = self.config.workloads if measured is None else measured
        timeouts = self.config.timeouts
        self.observer.phase(backend_name, "provisioning")
        with backend.provision(self.artefacts, self.spec(backend_name)) as instance:
            self.observer.phase(
                backend_name, "booting" if backend_name == "libvirt" else "starting"
            )
            try:
                info = instance.wait_ready(timeouts.boot_s)
            except AgentError as exc:
                raise TrialFailed(str(exc), instance.console_tail()) from None
            self.doc.instances.append(
                InstanceReport(
                    backend=backend_name,
                    repetition=repetition,
                    image_id=info.image_id,
                    kernel=info.kernel,
                    host=self.host,
                )
            )
            if info.image_id != self.artefacts.image_id:
                raise TrialFailed(
                    f"instance reports image {info.image_id}, expected {self.artefacts.image_id}"
                )
            if "startup" in chosen:
                self._record(
                    backend_name,
                    "startup",
                    repetition,
                    warmup,
                    startup.measurements(instance.phases),
                )
            if "footprint" in chosen:
                self.observer.phase(backend_name, "footprint (idle)")
                time.sleep(footprint.SETTLE_SECONDS)
                self._record(
                    backend_name,
                    "footprint",
                    repetition,
                    warmup,
                    footprint.measurements(instance.footprint()),
                )
            for name in STEADY_WORKLOADS:
                if name not in chosen:
                    continue
                workload = AGENT_WORKLOADS[name]
                self.observer.phase(backend_name, name)
                try:
                    lines = instance.run(name, workload.command(self.config), timeouts.workload_s)
                    measured = workload.parse(lines)
                except (AgentError, ParseError) as exc:
                    # one failed workload does not void the others measured in this instance
                    self._record_error(
                        backend_name, name, repetition, _one_line(exc), instance.console_tail()
                    )
                    if instance.log.closed:
                        raise TrialFailed("instance died", instance.console_tail()) from None
                    continue
                self._record(backend_name, name, repetition, warmup, measured)
            self.observer.phase(backend_name, "tearing down")

    def _lifecycle_trial(self, backend_name: str, kind: str, repetition: int, warmup: bool) -> None:
        workload = LIFECYCLE_WORKLOADS[kind]
        context = LifecycleContext(
            config=self.config,
            backend=self.backends[backend_name],
            artefacts=self.artefacts,
            make_spec=self.spec,
            phase=lambda text: self.observer.phase(backend_name, text),
            host=self.host,
            known_facts=self.doc.facts.get(backend_name),
        )
        result = workload.run(context)
        if result.facts is not None:  # where claims C07/C09 and the reports read them
            self.doc.facts[backend_name] = result.facts
        self._record(backend_name, kind, repetition, warmup, result.measurements)

    def _record(
        self,
        backend: str,
        workload: str,
        repetition: int,
        warmup: bool,
        measured: list[Measurement],
    ) -> None:
        for m in measured:
            sample = Sample(
                backend=backend,
                workload=workload,
                metric=m.metric,
                value=m.value,
                unit=m.unit,
                repetition=repetition,
                higher_is_better=m.higher_is_better,
                warmup=warmup,
                host=self.host,
                metadata=m.metadata,
            )
            self.doc.samples.append(sample)
            self.observer.sample(sample)

    def _record_error(
        self, backend: str, workload: str, repetition: int, message: str, tail: list[str]
    ) -> None:
        self.doc.errors.append(
            TrialError(
                backend=backend,
                workload=workload,
                repetition=repetition,
                message=message,
                host=self.host,
                console_tail=tail[-20:],
            )
        )
        self.observer.message(f"{backend} {workload} repetition {repetition + 1}: {message}")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


def finish(doc: ResultDocument, path: Path, status: str) -> None:
    doc.status = status  # type: ignore[assignment]
    doc.finished_at = now_iso()
    save(doc, path)
