"""Nothing leaked, nothing lost: signals, kill -9, resume, timeouts, a daemon dying mid-run."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vmvc.results import load

from .conftest import REPO, VMVC, leftovers_of, run_vmvc, write_config

SLOW_CPU = """
profile = "quick"
accel = "tcg"
[run]
repetitions = 2
max_repetitions = 2
warmups = 0
shuffle = false  # the kill -9 test waits for docker's trial, then the VM's boot
[workload.cpu]
seconds = {cpu_seconds}
"""


def _sigint_as_at_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class RunningBench:
    """A `vmvc bench` subprocess whose stderr lines can be waited for."""

    def __init__(self, args: list[str]) -> None:
        self.process = subprocess.Popen(
            [*VMVC, "bench", *args, "--plain"],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # Ctrl-C as a user at a terminal sends it: a shell that starts a job in the
            # background (`make test &`, nohup) hands its children SIGINT ignored, and
            # vmvc rightly keeps an ignored SIGINT ignored.
            preexec_fn=_sigint_as_at_a_terminal,
        )
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._seen:
                self.lines.append(line.rstrip("\n"))
                self._seen.notify_all()

    def wait_for(self, pattern: str, timeout: float = 300) -> str:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        with self._seen:
            while True:
                for line in self.lines:
                    if regex.search(line):
                        return line
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"never saw {pattern!r}; stderr:\n" + "\n".join(self.lines)
                    )
                self._seen.wait(0.5)

    def finish(self, timeout: float = 300) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def result_path(self, out: Path) -> Path:
        [path] = out.glob("*.json")
        return path


@pytest.fixture
def slow_config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "slow.toml", SLOW_CPU.format(cpu_seconds=30))


@pytest.mark.parametrize(
    ("sig", "backend", "moment"),
    [
        (signal.SIGINT, "libvirt", r"libvirt: booting"),
        (signal.SIGTERM, "libvirt", r"libvirt: cpu"),
        (signal.SIGINT, "docker", r"docker: cpu"),
        (signal.SIGTERM, "native", r"native: cpu"),
    ],
)
def test_signal_during_boot_or_workload_leaves_nothing(
    tmp_path: Path, slow_config: Path, sig: signal.Signals, backend: str, moment: str
) -> None:
    out = tmp_path / "out"
    bench = RunningBench(
        ["--backend", backend, "--workload", "cpu", "--config", str(slow_config), "-o", str(out)]
    )
    bench.wait_for(moment)
    bench.process.send_signal(sig)
    assert bench.finish(timeout=120) == 130
    assert "every instance this run created was removed" in bench.stderr
    path = bench.result_path(out)
    assert leftovers_of(path.stem) == []
    doc = load(path)
    assert doc.status == "interrupted"


def test_kill9_then_clean_then_resume(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", SLOW_CPU.format(cpu_seconds=1))
    out = tmp_path / "out"
    bench = RunningBench(
        [
            "--backend",
            "docker",
            "--backend",
            "libvirt",
            "--workload",
            "startup",
            "--workload",
            "cpu",
            "--config",
            str(config),
            "-o",
            str(out),
        ]
    )
    # Wait until the first docker trial is saved and the VM is booting, then kill hard.
    bench.wait_for(r"done: docker instance")
    bench.wait_for(r"libvirt: booting")
    bench.process.kill()
    bench.finish()
    path = bench.result_path(out)
    run_id = path.stem

    # The partial file is valid and holds the finished trial.
    partial = load(path)
    assert partial.status == "running"
    assert {s.backend for s in partial.samples} == {"docker"}

    # The dead run's VM is still there; the next vmvc command says so.
    left = leftovers_of(run_id)
    assert any("domain" in item for item in left), left
    noticed = run_vmvc("doctor", "--no-probe")
    assert "leftover(s) of dead vmvc runs" in noticed.stderr

    dry = run_vmvc("clean", "--dry-run")
    assert dry.returncode == 0 and f"would remove domain vmvc-{run_id}-libvirt-1" in dry.stdout
    assert leftovers_of(run_id) == left
    cleaned = run_vmvc("clean")
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert leftovers_of(run_id) == []

    # Resume runs only what is missing and yields one complete result.
    resumed = run_vmvc("bench", "--resume", run_id, "--output", str(out), "--plain")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    doc = load(path)
    assert doc.status == "complete"
    trials = sorted((t.backend, t.repetition) for t in doc.trials)
    assert trials == [("docker", 0), ("docker", 1), ("libvirt", 0), ("libvirt", 1)]
    # The docker repetition finished before the kill was kept, not measured again.
    first = [s for s in partial.samples if s.backend == "docker" and s.repetition == 0]
    kept = [s for s in doc.samples if s.backend == "docker" and s.repetition == 0]
    assert [s.timestamp for s in kept] == [s.timestamp for s in first]
    assert leftovers_of(run_id) == []


def test_guest_that_never_becomes_ready_times_out_and_run_continues(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.toml",
        'profile = "quick"\naccel = "tcg"\n[timeouts]\nboot_s = 2\n'
        "[run]\nrepetitions = 1\nmax_repetitions = 1\nwarmups = 0\n",
    )
    out = tmp_path / "out"
    done = run_vmvc(
        "bench",
        "--backend",
        "libvirt",
        "--backend",
        "docker",
        "--workload",
        "startup",
        "--config",
        str(config),
        "--plain",
        "-o",
        str(out),
    )
    assert done.returncode == 1
    assert "trial(s) failed" in done.stderr
    [path] = out.glob("*.json")
    doc = load(path)
    [error] = doc.errors
    assert error.backend == "libvirt" and "within 2 s" in error.message
    # The next trial (docker) still ran.
    assert {s.backend for s in doc.samples} == {"docker"}
    assert leftovers_of(path.stem) == []


@pytest.fixture
def restartable_dockerd() -> Iterator[None]:
    yield
    if subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode != 0:
        subprocess.Popen(
            ["dockerd", "--bridge=none", "--iptables=false"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(120):
            if subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
                break
            time.sleep(0.5)
    run_vmvc("clean")


def _dockerd_pid() -> int:
    out = subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True, text=True).stdout
    return int(out.split()[0])


def test_dockerd_dying_mid_run_is_reported_and_recorded(
    tmp_path: Path, restartable_dockerd: None
) -> None:
    config = write_config(
        tmp_path / "c.toml",
        'profile = "quick"\naccel = "tcg"\n'
        "[run]\nrepetitions = 3\nmax_repetitions = 3\nwarmups = 0\n"
        "[run.workload_repetitions]\ncpu = 3\n"  # quick runs cpu once; here every repetition
        "[workload.cpu]\nseconds = 2\n",
    )
    out = tmp_path / "out"
    bench = RunningBench(
        [
            "--backend",
            "native",
            "--backend",
            "docker",
            "--workload",
            "cpu",
            "--config",
            str(config),
            "-o",
            str(out),
        ]
    )
    bench.wait_for(r"done: docker instance")
    os.kill(_dockerd_pid(), signal.SIGTERM)
    code = bench.finish()
    assert code == 1
    assert "trial(s) failed" in bench.stderr
    doc = load(bench.result_path(out))
    assert doc.status == "complete"
    docker_errors = [e for e in doc.errors if e.backend == "docker"]
    assert docker_errors, "docker failures were not recorded"
    # Native went on for all three repetitions.
    native = {s.repetition for s in doc.samples if s.backend == "native"}
    assert native == {0, 1, 2}
