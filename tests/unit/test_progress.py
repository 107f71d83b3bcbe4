"""The run tracker's estimate of time left, and what the live and plain views show."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from vmvc.events import (
    Note,
    PhaseChanged,
    PlannedTrial,
    RunPlanned,
    SampleRecorded,
    TrialFailed,
    TrialFinished,
    TrialStarted,
    WorkloadFailed,
)
from vmvc.plan import instance_workloads, trial_kinds
from vmvc.progress import LiveView, PlainLog, RunTracker, clean, clock
from vmvc.results import ResultDocument, Sample, TrialRecord


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_plan(
    backends: tuple[str, ...] = ("native", "libvirt"),
    workloads: tuple[str, ...] = ("startup", "cpu"),
    repetitions: int = 3,
    max_repetitions: int | None = None,
    warmups: int = 0,
    time_budget_s: float = 3600,
    caps: dict[str, int] | None = None,
    done: frozenset[tuple[str, int]] = frozenset(),
) -> RunPlanned:
    """The plan a runner would give for these settings (every kind on every backend)."""
    most = max_repetitions or repetitions
    trials = []
    for repetition in range(-warmups, most):
        measured = tuple(instance_workloads(workloads, caps or {}, repetition))
        for kind in trial_kinds(workloads, caps or {}, repetition):
            for backend in backends:
                measures = measured if kind == "instance" else (kind,)
                finished = (backend, repetition) in done
                trials.append(PlannedTrial(backend, kind, repetition, measures, finished))
    return RunPlanned(backends, workloads, tuple(trials), repetitions, most, warmups, time_budget_s)


def tracker(
    backends: tuple[str, ...] = ("native", "libvirt"),
    workloads: tuple[str, ...] = ("startup", "cpu"),
    repetitions: int = 3,
    max_repetitions: int | None = None,
    warmups: int = 0,
    time_budget_s: float = 3600,
    *,
    send_plan: bool = True,
    caps: dict[str, int] | None = None,
) -> tuple[RunTracker, FakeClock]:
    fake = FakeClock()
    t = RunTracker(list(backends), list(workloads), clock=fake)
    if send_plan:
        plan = make_plan(
            backends, workloads, repetitions, max_repetitions, warmups, time_budget_s, caps
        )
        t.notify(plan)
    return t, fake


def trial_of(t: RunTracker, backend: str, repetition: int, kind: str = "instance") -> PlannedTrial:
    """The planned trial (a test may start one beyond the plan: it is made up)."""
    for trial in t.trials:
        if (trial.backend, trial.kind, trial.repetition) == (backend, kind, repetition):
            return trial
    return PlannedTrial(backend, kind, repetition, (kind,))


def start(t: RunTracker, backend: str, repetition: int) -> PlannedTrial:
    trial = trial_of(t, backend, repetition)
    t.notify(TrialStarted(trial))
    return trial


def run_trial(
    t: RunTracker, fake: FakeClock, backend: str, repetition: int, seconds: float, ok: bool = True
) -> None:
    trial = start(t, backend, repetition)
    fake.advance(seconds)
    if ok:
        t.notify(TrialFinished(trial, seconds))
    else:
        t.notify(TrialFailed(trial, seconds, "engine", "boom"))


def sample(backend: str, workload: str, metric: str, value: float, rep: int = 0) -> Sample:
    return Sample(
        backend=backend, workload=workload, metric=metric, value=value, unit="u", repetition=rep
    )


# -- estimate ---------------------------------------------------------------------------------


def test_no_estimate_before_the_first_trial_finishes() -> None:
    t, fake = tracker()
    assert t.estimate() is None
    start(t, "native", 0)
    fake.advance(5)
    assert t.estimate() is None
    assert t.describe_estimate() == "left: known after the first trial"


def test_estimate_uses_each_backends_own_duration() -> None:
    # A TCG VM trial takes 20 times a native one: one mean over both would be far off.
    t, fake = tracker(repetitions=3)
    run_trial(t, fake, "native", 0, 1.0)
    run_trial(t, fake, "libvirt", 0, 20.0)
    estimate = t.estimate()
    assert estimate is not None
    assert estimate.seconds == pytest.approx(2 * (1.0 + 20.0))
    assert estimate.rough == []
    assert estimate.extra_repetitions == 0
    # Within the next repetition, after native: one libvirt trial, then a whole repetition.
    run_trial(t, fake, "native", 1, 1.0)
    assert t.estimate().seconds == pytest.approx(20.0 + 21.0)


def test_estimate_counts_down_within_a_running_trial() -> None:
    t, fake = tracker(repetitions=2)
    run_trial(t, fake, "native", 0, 1.0)
    run_trial(t, fake, "libvirt", 0, 20.0)
    run_trial(t, fake, "native", 1, 1.0)
    start(t, "libvirt", 1)
    fake.advance(5.0)
    assert t.estimate().seconds == pytest.approx(15.0)
    fake.advance(30.0)  # slower than ever before: the estimate says 0, never negative
    assert t.estimate().seconds == 0.0


def test_estimate_uses_the_median_duration() -> None:
    t, fake = tracker(backends=("native",), repetitions=5)
    for rep, seconds in enumerate([1.0, 1.0, 9.0]):  # one slow outlier
        run_trial(t, fake, "native", rep, seconds)
    assert t.estimate().seconds == pytest.approx(2 * 1.0)


def test_estimate_is_rough_until_every_backend_ran_once() -> None:
    t, fake = tracker(repetitions=2)
    run_trial(t, fake, "native", 0, 2.0)
    start(t, "libvirt", 0)
    fake.advance(7.0)
    estimate = t.estimate()
    # libvirt is untimed: it is assumed to take at least as long as it already has.
    assert estimate.rough == ["libvirt"]
    assert estimate.seconds == pytest.approx(2.0 + 7.0)
    assert "rough until libvirt has run once" in estimate.describe()


def test_estimate_counts_warmups_and_the_plan() -> None:
    t, fake = tracker(backends=("docker",), repetitions=2, warmups=1)
    assert t.total_trials == 3
    run_trial(t, fake, "docker", -1, 3.0)
    assert t.estimate().seconds == pytest.approx(2 * 3.0)
    assert t.state["docker"].trials_done == 1
    assert t.planned_trials("docker") == 3


def test_extra_repetitions_are_reported_apart() -> None:
    t, fake = tracker(repetitions=3, max_repetitions=10)
    run_trial(t, fake, "native", 0, 1.0)
    run_trial(t, fake, "libvirt", 0, 20.0)
    estimate = t.estimate()
    assert estimate.seconds == pytest.approx(2 * 21.0)  # the minimum: 3 repetitions
    assert estimate.extra_repetitions == 7
    assert estimate.extra_seconds == pytest.approx(7 * 21.0)
    text = estimate.describe()
    assert text.startswith("left ~0:42")
    assert "up to +2:27 (7 more repetitions) if CIs are wide" in text


def test_time_budget_caps_the_extra_repetitions() -> None:
    # The runner starts another repetition only while within the budget: after 21 s done and
    # 42 s left, 100 s leave room to start 2 more (at 63 s and 84 s), not 7.
    t, fake = tracker(repetitions=3, max_repetitions=10, time_budget_s=100)
    run_trial(t, fake, "native", 0, 1.0)
    run_trial(t, fake, "libvirt", 0, 20.0)
    assert t.estimate().extra_repetitions == 2
    t2, fake2 = tracker(repetitions=3, max_repetitions=10, time_budget_s=30)
    run_trial(t2, fake2, "native", 0, 1.0)
    run_trial(t2, fake2, "libvirt", 0, 20.0)
    assert t2.estimate().extra_repetitions == 0


def test_inside_an_extra_repetition_the_plan_grows() -> None:
    t, fake = tracker(backends=("native",), repetitions=2, max_repetitions=5)
    run_trial(t, fake, "native", 0, 2.0)
    run_trial(t, fake, "native", 1, 2.0)
    assert t.total_trials == 2
    assert t.state["native"].phase == "waiting"  # not "done": more repetitions may follow
    start(t, "native", 2)  # the runner found a CI too wide
    assert t.total_trials == 3
    assert t.planned_repetitions() == 3
    assert "repetition 3/3" in t.current
    fake.advance(0.5)
    estimate = t.estimate()
    assert estimate.seconds == pytest.approx(1.5)
    assert estimate.extra_repetitions == 2


def test_a_resumed_run_counts_what_it_skips() -> None:
    fake = FakeClock()
    t = RunTracker(["native", "libvirt"], ["startup", "cpu"], clock=fake)
    doc = ResultDocument(
        run_id="r",
        started_at="2025-01-01T00:00:00+00:00",
        trials=[
            TrialRecord(backend="native", kind="instance", repetition=0, seconds=1.0),
            TrialRecord(backend="libvirt", kind="instance", repetition=0, seconds=20.0),
            TrialRecord(
                backend="native", kind="instance", repetition=1, status="failed", seconds=0.5
            ),
        ],
        samples=[
            sample("libvirt", "cpu", "events_per_s", 636.0, 0),
            sample("native", "cpu", "events_per_s", 1.0, 1),  # of the failed trial: redone
        ],
    )
    t.resumed(doc)
    t.notify(make_plan(repetitions=2, done=frozenset({("native", 0), ("libvirt", 0)})))
    assert t.done_trials == 2
    assert t.state["libvirt"].trials_done == 1
    assert t.median("libvirt", "cpu") == (636.0, 1, "u")
    assert t.median("native", "cpu") is None
    # Left: repetition 2 of both, timed from the first run, nothing rough.
    estimate = t.estimate()
    assert estimate.seconds == pytest.approx(21.0)
    assert estimate.rough == []
    run_trial(t, fake, "native", 1, 1.0)
    assert t.estimate().seconds == pytest.approx(20.0)


def test_the_plan_is_the_runners() -> None:
    """The tracker counts what the runner planned, kinds it has never heard of included."""
    fake = FakeClock()
    t = RunTracker(["docker"], ["cpu"], clock=fake)
    assert t.total_trials == 0
    trials = tuple(
        PlannedTrial("docker", kind, r, (kind,)) for r in range(2) for kind in ("instance", "new")
    )
    t.notify(RunPlanned(("docker",), ("cpu",), trials, 2, 2, 0, 3600))
    assert t.total_trials == 4
    assert t.planned_trials("docker") == 4


# -- what is tracked --------------------------------------------------------------------------


def test_partial_medians_and_repetitions_done() -> None:
    t, _ = tracker(backends=("docker",), workloads=("cpu", "footprint"))
    t.sample(sample("docker", "cpu", "events_per_s", 100.0, 0))
    t.sample(sample("docker", "cpu", "events_per_s", 300.0, 1))
    t.sample(sample("docker", "cpu", "events_per_s", 200.0, 2))
    t.sample(sample("docker", "footprint", "cgroup_mib", 1.0, 0))  # not the headline
    warm = sample("docker", "cpu", "events_per_s", 1e9, -1)
    warm.warmup = True
    t.sample(warm)  # warmups never count
    assert t.median("docker", "cpu") == (200.0, 3, "u")
    assert t.median("docker", "footprint") is None
    assert t.state["docker"].repetitions_done["cpu"] == {0, 1, 2}


def test_several_values_per_repetition_show_both_counts() -> None:
    t, _ = tracker(backends=("docker",), workloads=("scale",), repetitions=3)
    for n in (1, 2, 4):
        t.sample(sample("docker", "scale", "all_ready_s", float(n), 0))
    screen = render_text(LiveView(t, Console(file=io.StringIO())))
    assert re.search(r"scale all_ready_s\s+2.00 n=3, 1/3", screen), screen


def test_a_workload_without_headline_shows_its_first_metric() -> None:
    t, _ = tracker(backends=("docker",), workloads=("isolation",))
    t.sample(sample("docker", "isolation", "escape_s", 0.5))
    assert t.headline("isolation") == "escape_s"
    assert t.median("docker", "isolation") == (0.5, 1, "u")


def test_failures_are_counted_and_errors_classified() -> None:
    t, fake = tracker(repetitions=1)
    run_trial(t, fake, "native", 0, 1.0)
    trial = start(t, "libvirt", 0)
    t.notify(WorkloadFailed("libvirt", "cpu", 0, "agent", "agent did not answer"))
    fake.advance(2.0)
    assert t.notes[-1].error
    assert t.notes[-1].text == "libvirt cpu repetition 1: agent did not answer"
    assert t.state["libvirt"].failed_repetitions("cpu") == 1
    # The instance died too: startup had its value, footprint lost repetition 1 with it.
    t.notify(SampleRecorded(sample("libvirt", "startup", "total_s", 8.0, 0)))
    t.notify(TrialFailed(trial, 2.0, "instance", "instance died"))
    assert t.state["libvirt"].failed_repetitions("cpu") == 1
    assert t.state["libvirt"].failed_repetitions("startup") == 0
    assert t.state["libvirt"].failed_repetitions("footprint") == 1
    assert t.state["libvirt"].failures == 1
    assert t.state["libvirt"].phase == "FAILED: instance died"
    assert t.failed_trials == 1
    t.notify(Note("time budget of 3600 s reached"))
    assert not t.notes[-1].error
    t.finish()
    assert t.state["libvirt"].phase.startswith("FAILED")  # stays visible at the end
    assert t.summary() == ("2 trials, 1 failed, 1 workload error (see 'errors' in the result)")
    assert t.state["native"].phase == "done"


def test_summary_without_failures() -> None:
    t, fake = tracker(backends=("native",), repetitions=1)
    run_trial(t, fake, "native", 0, 1.0)
    assert t.summary() == "1 trial, none failed"


def test_clean_removes_escapes_and_controls() -> None:
    assert clean("\x1b[31mred\x1b[0m text\r\n") == "red text"
    assert clean("a\x1b]0;title\x07b\tc") == "ab c"


def test_clock() -> None:
    assert clock(None) == "?"
    assert clock(0) == "0:00"
    assert clock(61.4) == "1:01"
    assert clock(3725) == "1:02:05"


# -- views ------------------------------------------------------------------------------------


def simulate(view: LiveView | PlainLog, fake: FakeClock) -> None:
    """A small run through the Observer protocol: one success, one failure, one note."""
    plan = make_plan(backends=("native", "docker"), repetitions=2)
    with view:
        view.notify(plan)
        for rep in (0, 1):
            native = trial_of(view.tracker, "native", rep)
            view.notify(TrialStarted(native))
            view.notify(PhaseChanged("native", "provisioning"))
            fake.advance(0.5)
            view.notify(
                SampleRecorded(sample("native", "startup", "total_s", 0.01 * (rep + 1), rep))
            )
            view.notify(PhaseChanged("native", "cpu"))
            view.notify(SampleRecorded(sample("native", "cpu", "events_per_s", 2000.0 + rep, rep)))
            fake.advance(1.0)
            view.notify(TrialFinished(native, 1.5))
            docker = trial_of(view.tracker, "docker", rep)
            view.notify(TrialStarted(docker))
            view.notify(PhaseChanged("docker", "starting"))
            fake.advance(2.0)
            if rep == 0:
                why = "\x1b[31mcontainer gone\x1b[0m ✗"
                view.notify(TrialFailed(docker, 2.0, "engine", why))
            else:
                view.notify(SampleRecorded(sample("docker", "startup", "total_s", 0.2, rep)))
                view.notify(TrialFinished(docker, 2.0))
        view.notify(Note("a 95 % CI is still wider than 10 %: repetition 3"))


def test_plain_log_is_one_ascii_line_per_event_without_escapes() -> None:
    t, fake = tracker(backends=("native", "docker"), repetitions=2, send_plan=False)
    stream = io.StringIO()
    simulate(PlainLog(t, stream), fake)
    text = stream.getvalue()
    assert "\x1b" not in text
    assert "\r" not in text
    assert text.isascii()
    lines = text.splitlines()
    assert all(re.match(r"^\[\d+:\d\d\] +\S", line) for line in lines), lines
    assert sum("trial " in line and ": native instance repetition" in line for line in lines) == 2
    assert sum(" done: " in line for line in lines) == 3
    [failed] = [line for line in lines if "FAILED" in line]
    assert "trial 2/4 FAILED: docker instance in 2.0 s: container gone" in failed
    assert any(
        line.endswith("error: docker instance repetition 1: container gone ?") for line in lines
    )
    assert any("note: a 95 % CI is still wider" in line for line in lines)
    assert "native cpu events_per_s = 2,001 u (median 2,000, n=2)" in text
    assert lines[0].endswith("plan: native, docker x startup, cpu: 2 repetitions, 4 trials")
    assert "finished after 0:07: 4 trials, 1 failed" in lines[-3]
    assert lines[-2].endswith(
        "native: startup total_s 0.015 u (n=2); cpu events_per_s 2,000 u (n=2)"
    )


def render_text(view: LiveView, width: int = 110) -> str:
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    console.print(view.render())
    return console.export_text()


def test_live_view_shows_progress_medians_estimate_and_failures() -> None:
    t, fake = tracker(backends=("native", "docker"), repetitions=2, max_repetitions=4)
    view = LiveView(t, Console(file=io.StringIO(), force_terminal=True, width=110))
    native = trial_of(t, "native", 0)
    view.notify(TrialStarted(native))
    view.notify(PhaseChanged("native", "cpu"))
    view.notify(SampleRecorded(sample("native", "cpu", "events_per_s", 2313.0, 0)))
    fake.advance(1.0)
    view.notify(TrialFinished(native, 1.0))
    docker = trial_of(t, "docker", 0)
    view.notify(TrialStarted(docker))
    fake.advance(3.0)
    view.notify(TrialFailed(docker, 3.0, "engine", "image missing"))
    view.notify(TrialStarted(trial_of(t, "native", 1)))
    view.notify(PhaseChanged("native", "booting"))
    screen = render_text(view)
    assert "trial 3/4" in screen
    assert "left ~0:04" in screen  # the rest of native (1 s) and docker (3 s), 0 s elapsed
    assert "up to +0:08 (2 more repetitions) if CIs are wide" in screen
    assert "now: native · instance · repetition 2/2" in screen
    assert re.search(r"native\s+█+░+\s+1/2\s+booting", screen), screen
    assert re.search(r"docker\s+█+░+\s+1/2 1 failed\s+FAILED: image missing", screen), screen
    assert re.search(r"cpu events_per_s\s+2,313 n=1/2\s+- n=0/2", screen), screen
    assert "✗ docker instance repetition 1: image missing" in screen


def test_live_view_final_state_stays_and_says_how_it_ended() -> None:
    t, fake = tracker(backends=("native", "docker"), repetitions=2, send_plan=False)
    output = io.StringIO()
    view = LiveView(t, Console(file=output, force_terminal=True, width=110, color_system=None))
    simulate(view, fake)
    final = render_text(view)
    assert "finished after 0:07: 4 trials, 1 failed" in final
    assert "left" not in final
    # The failure stays visible: the count in the backend's row, the lost cell, the note.
    assert re.search(r"docker\s+█{12}\s+2/2 1 failed\s+done", final), final
    assert re.search(r"cpu events_per_s\s+2,000 n=2/2\s+- n=0/2 ✗1", final), final
    assert "✗ docker instance repetition 1: container gone" in final
    assert re.search(r"native\s+█{12}\s+2/2\s+done", final), final
    # Live printed the final state last, to the terminal, where it stays.
    assert "finished after 0:07" in output.getvalue().rsplit("\x1b[2K", 1)[-1]


def test_live_view_says_interrupted() -> None:
    t, fake = tracker(backends=("native",), repetitions=2)
    view = LiveView(t, Console(file=io.StringIO(), force_terminal=True, width=100))
    with pytest.raises(KeyboardInterrupt), view:
        view.notify(TrialStarted(trial_of(t, "native", 0)))
        fake.advance(4)
        raise KeyboardInterrupt
    assert "interrupted after 0:04: 0 trials" in render_text(view)


def test_scale_medians_are_per_instance_count() -> None:
    t, _ = tracker(backends=("libvirt",), workloads=("scale",), repetitions=3)
    for rep in range(3):
        for n, value in ((1, 6.6), (2, 6.6), (3, 10.0)):
            s = sample("libvirt", "scale", "all_ready_s", value + rep * 0.01, rep)
            s.metadata = {"n": n}
            t.sample(s)
    assert t.median("libvirt", "scale") == (10.01, 3, "u")  # the largest N, not a pool of 9
    assert t.median("libvirt", "scale", 1) == (pytest.approx(6.61), 3, "u")
    screen = render_text(LiveView(t, Console(file=io.StringIO())))
    assert re.search(r"scale all_ready_s\s+10.01 @N=3 n=3", screen), screen


def test_portability_medians_are_per_export_form() -> None:
    t, _ = tracker(backends=("docker",), workloads=("portability",), repetitions=2)
    stream = io.StringIO()
    log = PlainLog(t, stream)
    for rep in range(2):
        for form, value in (("uncompressed", 1.0), ("compressed", 3.0)):
            s = sample("docker", "portability", "export_s", value + rep, rep)
            s.metadata = {"form": form}
            log.notify(SampleRecorded(s))
    # The first form recorded is the headline; each line gives its own form's median.
    assert t.median("docker", "portability") == (1.5, 2, "u")
    assert t.median("docker", "portability", key="export_s@compressed") == (3.5, 2, "u")
    text = stream.getvalue()
    assert "export_s@compressed = 4.00 u (median 3.50, n=2)" in text, text
    assert "export_s@uncompressed = 2.00 u (median 1.50, n=2)" in text, text
    screen = render_text(LiveView(t, Console(file=io.StringIO())))
    assert re.search(r"portability export_s\s+1.50 \(uncompressed\) n=2", screen), screen


def test_recovery_medians_are_per_failure_kind() -> None:
    t, _ = tracker(backends=("docker",), workloads=("recovery",), repetitions=2)
    for rep in range(2):
        for kind, value in (("instance", 0.5), ("workload_process", 0.3)):
            s = sample("docker", "recovery", "recovery_s", value, rep)
            s.metadata = {"failure": kind}
            t.sample(s)
    # The first kind in the catalogue's order, not a pool of both.
    assert t.median("docker", "recovery") == (0.3, 2, "u")
    assert t.median_label("docker", "recovery") == " @workload_process"


def test_estimate_follows_a_plan_with_capped_workloads() -> None:
    """Quick-profile shape: a warm-up boot, steady workloads in the first repetition only,
    then boots alone. Each instance-trial shape is timed apart, so the estimate after the
    first repetition is exact (the live view's promise: within 25 %)."""
    t, fake = tracker(
        backends=("libvirt",),
        workloads=("startup", "cpu", "footprint"),
        repetitions=3,
        warmups=1,
        caps={"cpu": 1},
    )
    assert t.total_trials == 4
    durations = {-1: 5.0, 0: 20.0, 1: 5.0, 2: 5.0}  # the boot alone, the boot and cpu
    run_trial(t, fake, "libvirt", -1, durations[-1])
    run_trial(t, fake, "libvirt", 0, durations[0])
    estimate = t.estimate()
    assert estimate is not None and not estimate.rough
    assert estimate.seconds == pytest.approx(durations[1] + durations[2])


def test_live_view_before_the_plan_says_planning() -> None:
    t, _ = tracker(send_plan=False)
    assert "vmvc bench planning" in render_text(LiveView(t, Console(file=io.StringIO())))


def test_a_boot_without_the_io_is_priced_without_the_io() -> None:
    """Later repetitions boot without the long workloads (default: I/O in the first 4 only):
    that shape is priced as the timed one less what its I/O phase took, not as the timed one."""
    fake = FakeClock()
    with_io = PlannedTrial("docker", "instance", 0, ("startup", "footprint", "cpu", "io"))
    without = PlannedTrial("docker", "instance", 1, ("startup", "footprint", "cpu"))
    t = RunTracker(["docker"], ["startup", "footprint", "cpu", "io"], clock=fake)
    t.notify(RunPlanned(("docker",), ("cpu",), (with_io, without), 2, 2, 0, 3600))
    t.notify(TrialStarted(with_io))
    for phase, seconds in (("starting", 1.0), ("cpu", 3.0), ("io", 30.0), ("tearing down", 1.0)):
        t.notify(PhaseChanged("docker", phase))
        fake.advance(seconds)
    t.notify(TrialFinished(with_io, 35.0))
    estimate = t.estimate()
    assert estimate is not None
    assert estimate.seconds == pytest.approx(5.0)  # 35 s less the 30 s of I/O
    assert estimate.rough == []  # known well enough: not "rough"
