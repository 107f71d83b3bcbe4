"""The runner on fake backends (tests/fakes.py): order, seeds, warm-ups, failures, resume,
dynamic repetitions and cleanup, on a fake clock, with no engine at all."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import FakeBackend, FakeClock, Timing, fake_artefacts
from vmvc import events, stats
from vmvc.backends.base import Backend
from vmvc.backends.capabilities import Capability
from vmvc.config import Config, RunSettings
from vmvc.paths import run_workdir
from vmvc.progress import PlainLog, RunTracker
from vmvc.results import ResultDocument, load, new_run_id, now_iso
from vmvc.runner import BenchRunner, finish

WORKLOADS = ["startup", "footprint", "cpu", "memory"]
CAPPED = {"cpu": 2, "memory": 2}  # warm-ups then measure only start-up and footprint


class Recorder:
    """An observer that keeps every event."""

    def __init__(self) -> None:
        self.events: list[events.Event] = []

    def notify(self, event: events.Event) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def started(self) -> list[tuple[str, int]]:
        return [(e.trial.backend, e.trial.repetition) for e in self.of(events.TrialStarted)]


@pytest.fixture(autouse=True)
def work_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private work root: the runner makes its run dir there (never the shared one)."""
    root = tmp_path / "work"
    monkeypatch.setenv("VMVC_WORKDIR", str(root))
    return root


def make_config(**run: Any) -> Config:
    # A fixed order unless a test asks for the (default) shuffle: most tests here are about
    # other things and name trials by their place in the run.
    settings = {"repetitions": 2, "max_repetitions": 2, "warmups": 0, "shuffle": False, **run}
    return Config(workloads=list(WORKLOADS), run=RunSettings(**settings))


def fakes(*names: str, clock: FakeClock | None = None) -> dict[str, FakeBackend]:
    shared = clock or FakeClock()
    kinds = {"vm": "libvirt", "container": "docker", "native": "native"}
    made = {}
    for name in names:
        kind = name if name in kinds else "sandbox"
        made[name] = FakeBackend(name=name, kind=kind, flavour=kinds.get(kind, "docker"))
        made[name].clock = shared
    return made


def new_doc(config: Config) -> ResultDocument:
    return ResultDocument(
        run_id=new_run_id(), started_at=now_iso(), pid=os.getpid(), config=config.model_dump()
    )


def run(
    config: Config,
    backends: dict[str, FakeBackend],
    tmp_path: Path,
    *,
    doc: ResultDocument | None = None,
    needs_more: Callable[[ResultDocument, float], tuple[bool, str]] | None = None,
) -> tuple[ResultDocument, Recorder]:
    recorder = Recorder()
    clock = next(iter(backends.values())).clock
    typed: dict[str, Backend] = dict(backends)
    runner = BenchRunner(
        config,
        typed,
        fake_artefacts(tmp_path),
        doc or new_doc(config),
        tmp_path / "result.json",
        recorder,
        needs_more=needs_more,
        clock=clock,
        sleep=clock.sleep,
    )
    return runner.run(), recorder


# -- order --------------------------------------------------------------------------------


def test_repetitions_interleave_the_backends(tmp_path: Path) -> None:
    doc, seen = run(make_config(repetitions=3, max_repetitions=3), fakes("a", "b", "c"), tmp_path)
    assert seen.started() == [(b, r) for r in range(3) for b in ("a", "b", "c")]
    assert [(t.backend, t.repetition) for t in doc.trials] == seen.started()
    assert all(t.status == "ok" for t in doc.trials)


def orders(seed: int, tmp_path: Path) -> list[list[str]]:
    config = make_config(repetitions=4, max_repetitions=4, shuffle=True, seed=seed)
    _, seen = run(config, fakes("a", "b", "c", "d", "e"), tmp_path)
    started = seen.started()
    return [[b for b, r in started if r == repetition] for repetition in range(4)]


def test_the_same_seed_gives_the_same_shuffled_order(tmp_path: Path) -> None:
    first, again = orders(7, tmp_path / "1"), orders(7, tmp_path / "2")
    assert first == again
    assert len({tuple(o) for o in first}) > 1  # shuffled per repetition, not once
    assert orders(8, tmp_path / "3") != first


def test_a_run_without_a_seed_records_the_one_it_drew(tmp_path: Path) -> None:
    config = make_config(shuffle=True)
    doc, seen = run(config, fakes("a", "b", "c", "d"), tmp_path)
    seed = doc.config["run"]["seed"]
    assert isinstance(seed, int)
    replay = make_config(shuffle=True, seed=seed)
    _, again = run(replay, fakes("a", "b", "c", "d"), tmp_path / "again")
    assert again.started() == seen.started()


def test_the_default_shuffles_with_a_recorded_seed(tmp_path: Path) -> None:
    # RunSettings as a profile or config gives it: shuffled, warmed up, seed drawn
    config = Config(workloads=list(WORKLOADS), run=RunSettings(repetitions=4, max_repetitions=4))
    assert config.run.shuffle and config.run.warmups >= 1 and config.run.seed is None
    doc, seen = run(config, fakes("a", "b", "c", "d", "e"), tmp_path)
    seed = doc.config["run"]["seed"]
    assert isinstance(seed, int) and load(tmp_path / "result.json").config["run"]["seed"] == seed
    measured = [[b for b, r in seen.started() if r == rep] for rep in range(4)]
    assert len({tuple(o) for o in measured}) > 1  # not one fixed order
    notes = [n.text for n in seen.of(events.Note)]
    assert f"backend order shuffled in every repetition, seed {seed}" in notes


def test_a_resumed_shuffled_run_keeps_its_order(tmp_path: Path) -> None:
    """A resume runs with the config stored in the result (vmvc.cli): same seed, same order."""
    names = ("a", "b", "c", "d")
    fresh = make_config(repetitions=3, max_repetitions=3, shuffle=True)  # seed drawn
    first = fakes(*names)
    first["c"].fail(instance=2, at="memory", how="interrupt")
    doc = new_doc(fresh)
    with pytest.raises(KeyboardInterrupt):
        run(fresh, first, tmp_path, doc=doc)
    finish(doc, tmp_path / "result.json", "interrupted")
    saved = load(tmp_path / "result.json")
    stored = Config.model_validate(saved.config)
    assert stored.run.seed == fresh.run.seed is not None

    _, resumed = run(stored, fakes(*names), tmp_path, doc=saved)
    again = make_config(repetitions=3, max_repetitions=3, shuffle=True, seed=stored.run.seed)
    _, replay = run(again, fakes(*names), tmp_path / "replay")
    expected = [(t.backend, t.repetition) for t in replay.of(events.RunPlanned)[0].trials]
    (plan,) = resumed.of(events.RunPlanned)
    assert [(t.backend, t.repetition) for t in plan.trials] == expected
    done = {(t.backend, t.repetition) for t in plan.trials if t.done}
    assert done and resumed.started() == [trial for trial in expected if trial not in done]


def test_the_plan_is_given_once_and_matches_what_runs(tmp_path: Path) -> None:
    config = make_config(warmups=1, shuffle=True, seed=3, workload_repetitions=CAPPED)
    _, seen = run(config, fakes("vm", "container", "native"), tmp_path)
    (plan,) = seen.of(events.RunPlanned)
    assert seen.events[0] is plan
    assert [(t.backend, t.repetition) for t in plan.trials] == seen.started()
    assert plan.trials[0].warmup and plan.trials[0].measures == ("startup", "footprint")


# -- warm-ups -----------------------------------------------------------------------------


def test_warmups_are_recorded_and_left_out_of_the_statistics(tmp_path: Path) -> None:
    doc, seen = run(make_config(warmups=1, workload_repetitions=CAPPED), fakes("a", "b"), tmp_path)
    assert seen.started()[:2] == [("a", -1), ("b", -1)]
    warm = [s for s in doc.samples if s.warmup]
    assert warm and all(s.repetition == -1 for s in warm)
    assert {s.workload for s in warm} == {"startup", "footprint"}  # warm-ups measure less
    summaries = stats.summarize(doc).summaries
    startup = next(s for s in summaries if (s.backend, s.metric) == ("a", "total_s"))
    assert startup.n == 2  # the two measured repetitions, not the warm-up


# -- failures -----------------------------------------------------------------------------


def test_an_engine_error_mid_trial_is_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    backends = fakes("a", "b")
    backends["b"].fail(instance=1, at="cpu", how="error")
    doc, seen = run(make_config(), backends, tmp_path)
    status = {(t.backend, t.repetition): t.status for t in doc.trials}
    assert status == {("a", 0): "ok", ("b", 0): "failed", ("a", 1): "ok", ("b", 1): "ok"}
    (error,) = doc.errors
    assert (error.backend, error.workload, error.repetition) == ("b", "instance", 0)
    assert "fake engine error during cpu" in error.message
    (failed,) = seen.of(events.TrialFailed)
    assert (failed.trial.backend, failed.error_kind) == ("b", "engine")
    assert backends["b"].live == []  # the instance was torn down


def test_a_boot_timeout_fails_the_trial_with_the_console_tail(tmp_path: Path) -> None:
    backends = fakes("vm")
    backends["vm"].fail(instance=1, at="ready", how="timeout")
    config = make_config()
    doc, seen = run(config, backends, tmp_path)
    assert [t.status for t in doc.trials] == ["failed", "ok"]
    assert seen.of(events.TrialFailed)[0].error_kind == "instance"
    # the fake clock moved by the whole boot budget: the runner waited, then gave up
    assert doc.trials[0].seconds >= config.timeouts.boot_s


def test_a_hung_workload_loses_only_that_workload(tmp_path: Path) -> None:
    backends = fakes("a")
    backends["a"].fail(instance=1, at="cpu", how="hang")
    doc, seen = run(make_config(), backends, tmp_path)
    assert [t.status for t in doc.trials] == ["ok", "ok"]
    (error,) = doc.errors
    assert (error.workload, error.repetition) == ("cpu", 0)
    measured = {(s.workload, s.repetition) for s in doc.samples}
    assert ("memory", 0) in measured and ("cpu", 0) not in measured
    (failed,) = seen.of(events.WorkloadFailed)
    assert (failed.workload, failed.error_kind) == ("cpu", "agent")


def test_an_instance_that_dies_ends_its_trial(tmp_path: Path) -> None:
    backends = fakes("a")
    backends["a"].fail(instance=1, at="cpu", how="die")
    doc, _ = run(make_config(), backends, tmp_path)
    assert [t.status for t in doc.trials] == ["failed", "ok"]
    assert {e.workload for e in doc.errors} == {"cpu", "instance"}
    assert ("memory", 0) not in {(s.workload, s.repetition) for s in doc.samples}


def test_an_instance_of_another_image_is_refused(tmp_path: Path) -> None:
    backends = fakes("a")
    backends["a"].image_id = "someotherimage"
    doc, _ = run(make_config(), backends, tmp_path)
    assert {t.status for t in doc.trials} == {"failed"}
    assert "expected fakeimage0001" in doc.errors[0].message
    assert not [s for s in doc.samples if s.workload == "cpu"]


# -- resume -------------------------------------------------------------------------------


def test_a_resumed_run_repeats_no_trial_and_keeps_its_run_id(tmp_path: Path) -> None:
    config = make_config(repetitions=3, max_repetitions=3)
    first = fakes("a", "b")
    first["b"].fail(instance=2, at="memory", how="interrupt")  # Ctrl-C in b's 2nd trial
    doc = new_doc(config)
    with pytest.raises(KeyboardInterrupt):
        run(config, first, tmp_path, doc=doc)
    finish(doc, tmp_path / "result.json", "interrupted")
    saved = load(tmp_path / "result.json")
    ok_before = {(t.backend, t.repetition) for t in saved.trials if t.status == "ok"}
    assert ok_before == {("a", 0), ("b", 0), ("a", 1)}

    second = fakes("a", "b")
    resumed, seen = run(config, second, tmp_path, doc=saved)
    assert resumed.run_id == doc.run_id
    assert not ok_before & set(seen.started())
    assert sorted((t.backend, t.repetition) for t in resumed.trials) == sorted(
        (b, r) for b in ("a", "b") for r in range(3)
    )
    assert all(t.status == "ok" for t in resumed.trials)
    # b's interrupted repetition 1 is measured once, by the resumed run
    cpu = [s for s in resumed.samples if (s.backend, s.workload, s.repetition) == ("b", "cpu", 1)]
    assert len(cpu) == 1
    (plan,) = seen.of(events.RunPlanned)
    assert {(t.backend, t.repetition) for t in plan.trials if t.done} == ok_before


# -- dynamic repetitions ------------------------------------------------------------------


def cpu_width(doc: ResultDocument, target: float) -> tuple[bool, str]:
    """A stopping rule on one figure: the interval of b's cpu events/s."""
    values = [
        s.value
        for s in doc.samples
        if (s.backend, s.workload, s.metric) == ("b", "cpu", "events_per_s") and not s.warmup
    ]
    width = stats.ci_relative_width(values)
    if width is None:
        return True, "too few repetitions"
    return width > target, f"width {width:.3f}"


def noisy_until(quiet_from: int) -> Callable[[int], float]:
    """Figures that swing by 40 % until instance `quiet_from`, then barely move."""
    return lambda n: (1.0 + (0.4 if n % 2 else -0.4)) if n < quiet_from else 1.0 + n * 1e-4


def test_the_stopping_rule_adds_repetitions_until_the_interval_is_narrow(
    tmp_path: Path,
) -> None:
    backends = fakes("a", "b")
    backends["b"].scale["cpu"] = noisy_until(4)
    config = make_config(repetitions=2, max_repetitions=30, target_ci_width=0.05)
    doc, seen = run(config, backends, tmp_path, needs_more=cpu_width)
    repetitions = max(t.repetition for t in doc.trials) + 1
    assert 2 < repetitions < 30
    narrow, _ = cpu_width(doc, 0.05)
    assert not narrow  # it stopped once the interval was narrow ...
    fewer = doc.model_copy(
        update={"samples": [s for s in doc.samples if s.repetition < repetitions - 1]}
    )
    assert cpu_width(fewer, 0.05)[0]  # ... and not a repetition earlier
    assert "width" in doc.run["stop_reason"]["local"]
    assert any("repetition 3" in n.text for n in seen.of(events.Note))


def test_the_stopping_rule_stops_at_the_maximum(tmp_path: Path) -> None:
    backends = fakes("a", "b")
    backends["b"].scale["cpu"] = noisy_until(10_000)
    config = make_config(repetitions=2, max_repetitions=5, target_ci_width=0.01)
    doc, _ = run(config, backends, tmp_path, needs_more=cpu_width)
    assert max(t.repetition for t in doc.trials) == 4
    assert doc.run["stop_reason"]["local"] == "maximum of 5 repetitions reached"


def test_the_time_budget_stops_added_repetitions(tmp_path: Path) -> None:
    clock = FakeClock()
    backends = fakes("a", "b", clock=clock)
    for backend in backends.values():
        backend.timing = Timing(workload_s=100.0)  # a trial: two workloads, ~200 s
    backends["b"].scale["cpu"] = noisy_until(10_000)
    config = make_config(repetitions=2, max_repetitions=50, time_budget_s=1000)
    doc, _ = run(config, backends, tmp_path, needs_more=cpu_width)
    repetitions = max(t.repetition for t in doc.trials) + 1
    assert repetitions == 3  # 2 x 2 trials of ~200 s = 800 s < 1000 s: one more, then stop
    assert "time budget" in doc.run["stop_reason"]["local"]


# -- cleanup ------------------------------------------------------------------------------

FAILURES = [
    None,
    ("provision", "error"),
    ("ready", "timeout"),
    ("footprint", "error"),
    ("cpu", "error"),
    ("cpu", "hang"),
    ("memory", "die"),
    ("cpu", "interrupt"),
    ("ready", "interrupt"),
]


@pytest.mark.parametrize("failure", FAILURES, ids=lambda f: "-".join(f) if f else "none")
def test_nothing_is_left_however_a_trial_ends(
    failure: tuple[str, str] | None, tmp_path: Path
) -> None:
    backends = fakes("vm", "container")
    if failure:
        backends["vm"].fail(instance=1, at=failure[0], how=failure[1])
    config = make_config()
    doc = new_doc(config)
    if failure and failure[1] == "interrupt":
        with pytest.raises(KeyboardInterrupt):
            run(config, backends, tmp_path, doc=doc)
    else:
        run(config, backends, tmp_path, doc=doc)
    assert backends["vm"].created, "no instance made: the test would prove nothing"
    for backend in backends.values():
        assert backend.live == []
        assert sorted(backend.removed) == sorted(backend.created)
    assert not run_workdir(doc.run_id).exists()


# -- the views on a real run --------------------------------------------------------------


def test_the_plain_log_follows_a_run_from_its_events(tmp_path: Path) -> None:
    backends = fakes("a", "b")
    backends["b"].fail(instance=1, at="cpu", how="error")
    backends["a"].fail(instance=2, at="memory", how="hang")
    config = make_config()
    clock = backends["a"].clock
    tracker = RunTracker(list(backends), config.workloads, clock=clock)
    stream = io.StringIO()
    view = PlainLog(tracker, stream)
    with view:
        BenchRunner(
            config,
            dict(backends),
            fake_artefacts(tmp_path),
            new_doc(config),
            tmp_path / "result.json",
            view,
            clock=clock,
            sleep=clock.sleep,
        ).run()
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith(
        "plan: a, b x startup, footprint, cpu, memory: 2 repetitions, 4 trials"
    )
    assert any(
        line.endswith("error: b instance repetition 1: fake engine error during cpu")
        for line in lines
    )
    assert any("error: a memory repetition 2: no answer from the agent" in line for line in lines)
    assert "finished after" in lines[-3] and "4 trials, 1 failed, 1 workload error" in lines[-3]
    assert tracker.state["b"].failed_repetitions("memory") == 1  # lost with its trial
    assert tracker.state["a"].failed_repetitions("memory") == 1


# -- the spectrum's first look and isolation in the warm-up ------------------------------------


def with_isolation(backends: dict[str, FakeBackend]) -> dict[str, FakeBackend]:
    for backend in backends.values():
        backend.capabilities = frozenset({Capability.ISOLATION_FACTS})
    return backends


def spectrum_config(**run: Any) -> Config:
    settings = {"repetitions": 2, "max_repetitions": 2, "warmups": 1, "shuffle": False, **run}
    return Config(workloads=[*WORKLOADS, "isolation"], run=RunSettings(**settings))


def test_the_first_warmup_instance_observes_isolation(tmp_path: Path) -> None:
    backends = with_isolation(fakes("native", "vm"))
    doc, _ = run(spectrum_config(), backends, tmp_path)
    assert set(doc.facts) == {"native", "vm"}
    assert not [t for t in doc.trials if t.kind == "isolation"]  # no boot of its own
    for backend in backends.values():
        facts_ran = [name for name, workload in backend.ran if workload == "facts"]
        assert facts_ran == [backend.created[0]]  # the warm-up's instance, once
        assert len(backend.created) == 3  # warm-up + 2 measured: nothing booted for facts
    # after its start-up and footprint, which stay warm-up samples
    assert {s.repetition for s in doc.samples if s.warmup} == {-1}


def test_without_a_warmup_isolation_boots_its_own_instance(tmp_path: Path) -> None:
    backends = with_isolation(fakes("native"))
    doc, _ = run(spectrum_config(warmups=0), backends, tmp_path)
    assert "isolation" in [t.kind for t in doc.trials]
    # 2 measured boots and one for the facts (a later isolation trial boots nothing)
    assert "native" in doc.facts and len(backends["native"].created) == 3


def test_the_spectrum_beyond_the_judged_backends_gets_a_first_look(tmp_path: Path) -> None:
    config = spectrum_config(
        repetitions=3, max_repetitions=3, steady_backends="judged", spectrum_repetitions=1
    )
    doc, _ = run(config, with_isolation(fakes("native", "container", "vm", "sandbox")), tmp_path)
    measured = [(t.backend, t.repetition) for t in doc.trials if not t.warmup]
    assert [r for b, r in measured if b == "sandbox"] == [0]
    assert [r for b, r in measured if b == "vm"] == [0, 1, 2]
    workloads = {(s.backend, s.workload) for s in doc.samples if not s.warmup}
    assert ("sandbox", "startup") in workloads and ("sandbox", "footprint") in workloads
    assert ("sandbox", "cpu") not in workloads and ("vm", "cpu") in workloads
    assert set(doc.facts) == {"native", "container", "vm", "sandbox"}
