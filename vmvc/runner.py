"""Plan execution: repetitions interleaved across backends, timing, teardown, saving as it goes.

One repetition runs every backend once, in a shuffled order by default (B A C, C B A, ...,
from a recorded seed; `shuffle = false` gives A B C, A B C, ...), so slow drift of a noisy
host spreads over all backends instead of biasing one. Each trial is an instance's whole
life: provision, ready (startup phases), idle footprint, then the steady workloads inside
it. What each repetition runs is decided by vmvc.plan (warm-ups and
capped workloads). The result file is rewritten atomically after every trial.

The observer hears typed events (vmvc.events): the whole plan once, then each trial's start,
phases, samples and end. The clock and the sleep are parameters so the runner's tests run
on a fake clock (tests/fakes.py) in milliseconds.
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from vmvc import events
from vmvc.agent.protocol import AgentError
from vmvc.backends.base import Backend, Instance, InstanceSpec
from vmvc.bench import AGENT_WORKLOADS, footprint, isolation, startup
from vmvc.bench.base import Measurement, ParseError
from vmvc.bench.lifecycle import LIFECYCLE_WORKLOADS, LifecycleContext, applies
from vmvc.config import STEADY_WORKLOADS, Config
from vmvc.events import Observer, PlannedTrial
from vmvc.image.build import Artefacts
from vmvc.paths import make_run_dir, run_workdir
from vmvc.plan import (
    INSTANCE_TRIAL,
    INSTANCE_WORKLOADS,
    ISOLATION,
    Plan,
    instance_workloads,
    judged_backends,
    runs_trial,
    spectrum_measures,
    trial_kinds,
)
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

__all__ = ["BenchRunner", "Observer", "TrialFailed", "error_kind", "finish"]


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
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.backends = backends
        self.artefacts = artefacts
        self.doc = doc
        self.path = path
        self.observer = observer
        self.host = host
        self.needs_more = needs_more
        self.clock = clock
        self.sleep = sleep
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
        settings = self.config.run
        return [
            kind
            for kind in trial_kinds(
                self.config.workloads,
                settings.workload_repetitions,
                repetition,
                warmups=settings.warmups,
            )
            if kind == INSTANCE_TRIAL or kind in LIFECYCLE_WORKLOADS
        ]

    def plan(self, repetition: int) -> Plan:
        warmup = repetition < 0
        settings = self.config.run
        order = list(self.backends)
        if settings.shuffle:
            random.Random(self.seed + repetition).shuffle(order)
        judged = judged_backends({name: b.kind for name, b in self.backends.items()})
        base = instance_workloads(
            self.config.workloads,
            settings.workload_repetitions,
            repetition,
            warmups=settings.warmups,
        )
        measured = {}
        for name, backend in self.backends.items():
            measures = spectrum_measures(base, name, judged, settings.steady_backends)
            if ISOLATION in measures and not applies(ISOLATION, backend):
                measures.remove(ISOLATION)
            measured[name] = measures
        trials = [
            (backend, kind)
            for kind in self.kinds(repetition)
            for backend in order
            if applies(kind, self.backends[backend])
            and runs_trial(kind, backend, repetition, judged, settings)
            and (kind != INSTANCE_TRIAL or measured[backend])
        ]
        return Plan(repetition, warmup, trials, measured)

    def done(self) -> set[tuple[str, str, str, int]]:
        return {t.key for t in self.doc.trials if t.status == "ok"}

    def planned_trials(self, plan: Plan) -> list[PlannedTrial]:
        """A repetition's trials as the observer sees them (a resumed run's done ones marked)."""
        finished = self.done()
        return [
            PlannedTrial(
                backend=backend,
                kind=kind,
                repetition=plan.repetition,
                measures=(
                    tuple(plan.instance_workloads[backend]) if kind == INSTANCE_TRIAL else (kind,)
                ),
                done=(self.host, backend, kind, plan.repetition) in finished,
            )
            for backend, kind in plan.trials
        ]

    def whole_plan(self) -> events.RunPlanned:
        """Every trial the run may make, warm-ups to the maximum repetitions, in run order."""
        settings = self.config.run
        trials: list[PlannedTrial] = []
        for repetition in range(-settings.warmups, settings.max_repetitions):
            plan = self.plan(repetition)
            if repetition >= 0 and not plan.trials:
                break  # the run stops there too (see run)
            trials += self.planned_trials(plan)
        return events.RunPlanned(
            backends=tuple(self.backends),
            workloads=tuple(self.config.workloads),
            trials=tuple(trials),
            repetitions=settings.repetitions,
            max_repetitions=max(settings.max_repetitions, settings.repetitions),
            warmups=settings.warmups,
            time_budget_s=settings.time_budget_s,
        )

    # -- running --------------------------------------------------------------------------

    def run(self) -> ResultDocument:
        started = self.clock()
        # Made now and exclusively under the root-only work root: a dir that exists already
        # (planted, or left by a dead run) is refused, never reused (vmvc.paths).
        make_run_dir(self.doc.run_id)
        self.observer.notify(self.whole_plan())
        if self.config.run.shuffle and len(self.backends) > 1:
            # said once, so a log shows how to replay the order (--seed)
            self.observer.notify(
                events.Note(f"backend order shuffled in every repetition, seed {self.seed}")
            )
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
        if self.clock() - started > settings.time_budget_s:
            return self._stop(f"time budget of {settings.time_budget_s:.0f} s reached")
        if self.needs_more is None:
            return self._stop(f"minimum of {repetition} repetitions reached (no stopping rule)")
        more, why = self.needs_more(self.doc, settings.target_ci_width)
        if more:
            self.observer.notify(events.Note(f"{why}: repetition {repetition + 1}"))
            return True
        return self._stop(f"after {repetition} repetitions: {why}")

    def _stop(self, why: str) -> bool:
        """Record in the result why this host's run stopped where it did (run.stop_reason)."""
        self.doc.run.setdefault("stop_reason", {})[self.host] = why
        self.observer.notify(events.Note(f"stopped: {why}"))
        return False

    def _run_repetition(self, plan: Plan) -> None:
        for trial in self.planned_trials(plan):
            if trial.done:
                continue  # resumed run: this trial already succeeded
            self._run_trial(trial, plan.instance_workloads[trial.backend])

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

    def _run_trial(self, trial: PlannedTrial, measured: list[str] | None = None) -> None:
        backend_name, kind, repetition, warmup = (
            trial.backend,
            trial.kind,
            trial.repetition,
            trial.warmup,
        )
        self._forget_partial(backend_name, kind, repetition)
        self.observer.notify(events.TrialStarted(trial))
        started = self.clock()
        # Until the trial returns it has not succeeded: one cut short by Ctrl-C is saved as
        # failed, so a resumed run measures it again instead of keeping its partial samples.
        status: str = "failed"
        message = ""
        kind_of_error = ""
        try:
            if kind == INSTANCE_TRIAL:
                self._instance_trial(backend_name, repetition, warmup, measured)
            else:
                self._lifecycle_trial(backend_name, kind, repetition, warmup)
            status = "ok"
        except (TrialFailed, AgentError, ParseError, ToolError, OSError, RuntimeError) as exc:
            status, message, kind_of_error = "failed", _one_line(exc), error_kind(exc)
            tail = exc.console_tail if isinstance(exc, TrialFailed) else []
            self._record_error(backend_name, kind, repetition, message, tail)
        except Exception as exc:  # an engine's own error must not end the run
            status, message = "failed", f"{exc.__class__.__name__}: {_one_line(exc)}"
            kind_of_error = error_kind(exc)
            self._record_error(backend_name, kind, repetition, message, [])
        finally:
            self.doc.trials = [
                t for t in self.doc.trials if t.key != (self.host, backend_name, kind, repetition)
            ]
            seconds = round(self.clock() - started, 3)
            self.doc.trials.append(
                TrialRecord(
                    backend=backend_name,
                    kind=kind,
                    repetition=repetition,
                    warmup=warmup,
                    status="ok" if status == "ok" else "failed",
                    host=self.host,
                    seconds=seconds,
                )
            )
            save(self.doc, self.path)
        if status == "ok":
            self.observer.notify(events.TrialFinished(trial, seconds))
        else:
            self.observer.notify(events.TrialFailed(trial, seconds, kind_of_error, message))

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
        self._phase(backend_name, "provisioning")
        with backend.provision(self.artefacts, self.spec(backend_name)) as instance:
            self._phase(backend_name, "booting" if backend.kind == "vm" else "starting")
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
                    limits=instance.applied_limits(),
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
                self._phase(backend_name, "footprint (idle)")
                self.sleep(footprint.SETTLE_SECONDS)
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
                self._phase(backend_name, name)
                try:
                    lines = instance.run(name, workload.command(self.config), timeouts.workload_s)
                    measured = workload.parse(lines)
                except (AgentError, ParseError) as exc:
                    # one failed workload does not void the others measured in this instance
                    self._record_error(
                        backend_name, name, repetition, _one_line(exc), instance.console_tail()
                    )
                    self.observer.notify(
                        events.WorkloadFailed(
                            backend_name, name, repetition, error_kind(exc), _one_line(exc)
                        )
                    )
                    if instance.log.closed:
                        raise TrialFailed("instance died", instance.console_tail()) from None
                    continue
                self._record(backend_name, name, repetition, warmup, measured)
            if ISOLATION in chosen:
                # The first warm-up's instance: fresh, and nothing measured runs beside it
                # (vmvc.plan.isolation_in_warmup); what the isolation trial would boot for.
                self._observe_isolation(backend_name, instance)
            self._phase(backend_name, "tearing down")

    def _observe_isolation(self, backend_name: str, instance: Instance) -> None:
        backend = self.backends[backend_name]
        if isolation.already_observed(
            self.doc.facts.get(backend_name), backend.on_this_host, self.host
        ):
            return  # a resumed run observed them before
        self.doc.facts[backend_name] = isolation.observe(
            instance,
            local=backend.on_this_host,
            host=self.host,
            timeout=self.config.timeouts.workload_s,
            phase=lambda text: self._phase(backend_name, text),
        )

    def _lifecycle_trial(self, backend_name: str, kind: str, repetition: int, warmup: bool) -> None:
        workload = LIFECYCLE_WORKLOADS[kind]
        context = LifecycleContext(
            config=self.config,
            backend=self.backends[backend_name],
            artefacts=self.artefacts,
            make_spec=self.spec,
            phase=lambda text: self._phase(backend_name, text),
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
            self.observer.notify(events.SampleRecorded(sample))

    def _phase(self, backend: str, text: str) -> None:
        self.observer.notify(events.PhaseChanged(backend, text))

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


def error_kind(exc: BaseException) -> str:
    """What failed, in one word the views can count and colour without parsing text."""
    if isinstance(exc, TrialFailed):
        return "instance"
    if isinstance(exc, AgentError):
        return "agent"
    if isinstance(exc, ParseError):
        return "parse"
    if isinstance(exc, ToolError):
        return "tool"
    if isinstance(exc, OSError):
        return "os"
    return "engine"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


def finish(doc: ResultDocument, path: Path, status: str) -> None:
    doc.status = status  # type: ignore[assignment]
    doc.finished_at = now_iso()
    save(doc, path)
