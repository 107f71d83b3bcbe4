"""An in-process backend with a fake clock, for testing the runner without any engine.

`FakeBackend` implements vmvc.backends.base.Backend: `provision` yields a `FakeInstance`
whose `wait_ready`, `run` and `footprint` answer at once but move a shared `FakeClock` by
plausible durations, and whose `run` returns real agent output recorded on the development
host (tests/data/<flavour>-<workload>.txt), so the real parsers run on it.

It can be told to fail: `fail(instance=N, at=..., how=...)` makes the N-th instance it
creates (1-based, counted per backend) fail at a step, the way a real engine does:

- how="error":     the step raises (an engine error mid-trial: RuntimeError)
- how="timeout":   the step takes its whole timeout, then the agent gives up (AgentError)
- how="hang":      like timeout, for a workload that never answers (AgentError)
- how="interrupt": the step is interrupted by Ctrl-C (KeyboardInterrupt)
- how="die":       the instance dies during the step (its log closes; AgentError)

`at` is "provision", "ready", "footprint" or a workload name. Every instance made and removed
is recorded (`created`, `removed`, `live`), so a test can assert that nothing is left.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmvc.agent.protocol import AgentError, ReadyInfo
from vmvc.backends.base import Availability, Backend, BackendKind, Instance, InstanceSpec
from vmvc.image.build import Artefacts

DATA = Path(__file__).parent / "data"
IMAGE_ID = "fakeimage0001"


class FakeClock:
    """Monotonic seconds that move only when something sleeps or works."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)


@dataclass(frozen=True)
class Failure:
    instance: int  # the N-th instance this backend creates, 1-based
    at: str  # provision, ready, footprint, or a workload name
    how: str  # error, timeout, hang, interrupt, die


@dataclass
class Timing:
    """Seconds each step takes on the fake clock, and what the step reports."""

    provision_s: float = 0.1
    ready_s: float = 0.2
    workload_s: float = 3.0
    footprint_mib: float = 14.0


def fake_artefacts(root: Path) -> Artefacts:
    return Artefacts(image_id=IMAGE_ID, root=root)


class FakeInstance(Instance):
    def __init__(self, backend: FakeBackend, spec: InstanceSpec, number: int) -> None:
        super().__init__()
        self.backend = backend.name
        self.name = spec.name
        self.number = number
        self._owner = backend

    def _step(self, at: str, seconds: float, timeout: float) -> None:
        failure = self._owner.failure_for(self.number, at)
        clock = self._owner.clock
        if failure is None:
            clock.sleep(seconds)
            return
        if failure.how == "error":
            clock.sleep(seconds / 2)
            raise RuntimeError(f"fake engine error during {at}")
        if failure.how in ("timeout", "hang"):
            clock.sleep(timeout)
            raise AgentError(f"no answer from the agent within {timeout:.0f} s ({at})")
        if failure.how == "interrupt":
            raise KeyboardInterrupt
        if failure.how == "die":
            self.log.close()
            raise AgentError(f"instance exited during {at}")
        raise ValueError(f"unknown failure {failure.how!r}")

    def wait_ready(self, timeout: float) -> ReadyInfo:
        timing = self._owner.timing
        self._step("ready", timing.ready_s, timeout)
        self.phases = {"create_s": timing.provision_s, "ready_s": timing.ready_s}
        self.phases["total_s"] = timing.provision_s + timing.ready_s
        self.ready_info = ReadyInfo(self._owner.image_id, "6.1.0-fake", self._owner.clock())
        return self.ready_info

    def run(self, workload: str, args: list[str], timeout: float) -> list[str]:
        self._step(workload, self._owner.timing.workload_s, timeout)
        self._owner.ran.append((self.name, workload))
        return self._owner.output(workload, self.number)

    def footprint(self) -> dict[str, float]:
        self._step("footprint", 0.05, 10)
        mib = self._owner.timing.footprint_mib
        return {"total_mib": mib, "process_mib": mib}


@dataclass(eq=False)  # compared by identity, like any backend
class FakeBackend(Backend):
    """A backend of any kind; `flavour` picks whose recorded output it returns."""

    name: str = "fake"
    kind: BackendKind = "container"
    flavour: str = "docker"  # native, docker or libvirt: the recorded output in tests/data
    clock: FakeClock = field(default_factory=FakeClock)
    timing: Timing = field(default_factory=Timing)
    image_id: str = IMAGE_ID
    failures: list[Failure] = field(default_factory=list)
    # What happened: instance names in creation order, removed ones, live ones.
    created: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    ran: list[tuple[str, str]] = field(default_factory=list)  # (instance, workload)
    # per workload: a function of the instance number scaling the recorded figures
    scale: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.label = self.name
        self.display_name = f"fake {self.kind}"

    @property
    def live(self) -> list[str]:
        return [name for name in self.created if name not in self.removed]

    def fail(self, instance: int, at: str, how: str = "error") -> FakeBackend:
        self.failures.append(Failure(instance, at, how))
        return self

    def failure_for(self, number: int, at: str) -> Failure | None:
        return next((f for f in self.failures if f.instance == number and f.at == at), None)

    def output(self, workload: str, number: int) -> list[str]:
        lines = (DATA / f"{self.flavour}-{workload}.txt").read_text().splitlines()
        factor = self.scale.get(workload)
        if factor is None:
            return lines
        return [_scaled(line, factor(number)) for line in lines]

    def probe(self) -> Availability:
        return Availability(True, "in-process fake")

    def _instance(self, spec: InstanceSpec) -> FakeLease:
        number = len(self.created) + 1
        self.created.append(spec.name)
        return FakeLease(self, FakeInstance(self, spec, number))

    def provision(
        self, artefacts: Artefacts, spec: InstanceSpec
    ) -> contextlib.AbstractContextManager[Instance]:
        return self._instance(spec)


class FakeLease:
    """What `provision` returns: removal happens in __exit__ only, as with a real engine (a
    generator-based context manager would also clean up when garbage-collected, hiding a
    runner that forgot to leave it)."""

    def __init__(self, backend: FakeBackend, instance: FakeInstance) -> None:
        self.backend = backend
        self.instance = instance

    def __enter__(self) -> Instance:
        try:
            self.instance._step("provision", self.backend.timing.provision_s, 60)
        except BaseException:
            self.backend.removed.append(self.instance.name)  # a failed create cleans itself
            raise
        return self.instance

    def __exit__(self, *exc: object) -> None:
        self.backend.removed.append(self.instance.name)


def _scaled(line: str, factor: float) -> str:
    """sysbench's 'events per second:' line with its figure multiplied (other lines as is)."""
    label = "events per second:"
    if label not in line:
        return line
    head, value = line.split(label)
    return f"{head}{label}  {float(value) * factor:.2f}"
