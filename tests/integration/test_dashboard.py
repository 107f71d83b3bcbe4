"""The live dashboard, the plain log and the interactive selection, on real runs.

(a) the dashboard in a terminal (tmux, fixed size), captured while the run goes and after it;
(b) the plain log through a pipe, with and without --plain: no escape code, a line per event;
(c) `vmvc bench --interactive` in a pseudo-terminal (pexpect): answers, the equivalent command,
    and a run of the chosen backends only. Each run must leave nothing vmvc-named behind.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from vmvc.image.build import Artefacts
from vmvc.paths import run_workdir

from .conftest import REPO, load_json, run_vmvc, write_config

# No warm-up (the quick profile has one): the trial counts below are the measured ones.
SMALL_TOML = "[run]\nwarmups = 0\n[workload.cpu]\nseconds = 1\n"
ROWS, COLUMNS = 40, 120
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
STAMP = re.compile(r"^\[\d+:\d\d\] ")


def bench_args(config: Path, output: Path) -> list[str]:
    return [
        "bench",
        "--backend",
        "native",
        "--backend",
        "docker",
        "--workload",
        "startup",
        "--workload",
        "cpu",
        "-n",
        "2",
        "--accel",
        "tcg",
        "--config",
        str(config),
        "--output",
        str(output),
    ]


def terminal_env() -> dict[str, str]:
    """The environment without what would override terminal detection or its size."""
    drop = {"FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "LINES"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def leftovers_of(run_id: str) -> list[str]:
    """What `docker ps -a --filter label=vmvc` and `virsh list --all` still show of a run
    (filtered by run id: other vmvc runs may share this host), and its work directory."""
    containers = subprocess.run(
        ["docker", "ps", "-a", "--filter", "label=vmvc", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    domains = subprocess.run(
        ["virsh", "-c", "qemu:///system", "list", "--all", "--name"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    left = [f"container {c}" for c in containers if run_id in c]
    left += [f"domain {d}" for d in domains if run_id in d]
    if run_workdir(run_id).exists():
        left.append(f"dir {run_workdir(run_id)}")
    return left


def the_result(output: Path) -> dict:
    [path] = output.glob("*.json")
    return load_json(path)


@pytest.fixture
def small_toml(tmp_path: Path, artefacts: Artefacts) -> Path:
    # `artefacts` builds the image first, so no run below spends a minute on it.
    return write_config(tmp_path / "small.toml", SMALL_TOML)


# -- (a) the dashboard in a terminal ----------------------------------------------------------


class Tmux:
    """A private tmux server (own socket) with one fixed-size window."""

    def __init__(self, name: str) -> None:
        self.base = ["tmux", "-L", name]

    def start(self, command: str) -> None:
        size = ["-x", str(COLUMNS), "-y", str(ROWS)]
        subprocess.run(
            [
                *self.base,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "dash",
                *size,
                "bash",
                "--norc",
                "-c",
                command,
            ],
            check=True,
            env=terminal_env(),
            cwd=REPO,
        )

    def screen(self) -> str:
        done = subprocess.run(
            [*self.base, "capture-pane", "-p", "-t", "dash"], capture_output=True, text=True
        )
        return done.stdout

    def stop(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True)


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    assert shutil.which("tmux"), "tmux is not installed (make setup installs it)"
    # A server of its own per test: reusing a name races with the previous kill-server.
    session = Tmux(f"vmvc-test-{os.getpid()}-{secrets.token_hex(4)}")
    yield session
    session.stop()


def is_mid_run(screen: str) -> bool:
    """The live table with both backends, a phase, a partial median and the time left."""
    return (
        re.search(r"^native\s+[█░]+\s+\d/2", screen, re.M) is not None
        and re.search(r"^docker\s+[█░]+\s+\d/2", screen, re.M) is not None
        and re.search(r"provisioning|starting|booting|cpu|tearing down|waiting", screen) is not None
        and re.search(r"\d n=1/2", screen) is not None
        and "left ~" in screen
        and "now: " in screen
    )


def test_dashboard_in_a_terminal(tmp_path: Path, small_toml: Path, tmux: Tmux) -> None:
    output = tmp_path / "results"
    argv = [sys.executable, "-m", "vmvc", *bench_args(small_toml, output)]
    tmux.start(f"{shlex.join(argv)}; echo VMVC-EXIT=$?; sleep 600")

    mid_run = ""
    deadline = time.monotonic() + 150
    screen = ""
    while time.monotonic() < deadline:
        screen = tmux.screen()
        if "VMVC-EXIT=" in screen:
            break
        if not mid_run and is_mid_run(screen):
            mid_run = screen
        time.sleep(0.1)
    final = tmux.screen()
    (tmp_path / "mid-run.txt").write_text(mid_run)
    (tmp_path / "final.txt").write_text(final)
    print(f"\n--- mid-run ---\n{mid_run.rstrip()}\n--- final ---\n{final.rstrip()}")

    assert "VMVC-EXIT=0" in final, final
    assert mid_run, f"never saw the live table mid-run; last screen:\n{screen}"
    assert re.search(r"trial [1-4]/4 · elapsed \d+:\d\d · left ~\d+:\d\d", mid_run), mid_run
    assert "median so far (n / planned)" in mid_run

    # The final state stays on screen, once, with no trace of the redrawn frames.
    assert final.count("vmvc bench finished after") == 1, final
    assert "4 trials, none failed" in final
    assert "left ~" not in final
    assert re.search(r"^native\s+█{12}\s+2/2\s+done", final, re.M), final
    assert re.search(r"^docker\s+█{12}\s+2/2\s+done", final, re.M), final
    assert re.search(r"^startup total_s\s+[\d.]+ n=2/2\s+[\d.]+ n=2/2", final, re.M), final
    assert re.search(r"^cpu events_per_s\s+[\d,]+ n=2/2\s+[\d,]+ n=2/2", final, re.M)
    assert "results: " in final

    doc = the_result(output)
    assert doc["status"] == "complete"
    assert leftovers_of(doc["run_id"]) == []


def test_a_failed_trial_stays_visible(tmp_path: Path, artefacts: Artefacts, tmux: Tmux) -> None:
    # A ready timeout no instance can meet: every trial fails, the run goes on to its end.
    config = write_config(
        tmp_path / "fail.toml", "[run]\nwarmups = 0\n[timeouts]\nboot_s = 0.001\n"
    )
    output = tmp_path / "results"
    argv = [sys.executable, "-m", "vmvc", "bench", "--backend", "native", "--workload"]
    argv += ["startup", "-n", "1", "--config", str(config), "--output", str(output)]
    tmux.start(f"{shlex.join(argv)}; echo VMVC-EXIT=$?; sleep 600")
    deadline = time.monotonic() + 90
    while "VMVC-EXIT=" not in tmux.screen() and time.monotonic() < deadline:
        time.sleep(0.2)
    final = tmux.screen()
    print(f"\n--- a failed trial, final ---\n{final.rstrip()}")
    assert "VMVC-EXIT=1" in final, final
    assert "finished after" in final and "1 trial, 1 failed" in final, final
    assert re.search(r"^native\s+█+\s+1/1 1 failed\s+FAILED: no ready marker", final, re.M)
    assert re.search(r"^startup total_s\s+- n=0/1 ✗1", final, re.M), final
    assert "✗ native instance repetition 1: no ready marker" in final
    assert leftovers_of(the_result(output)["run_id"]) == []


# -- (b) plain log through a pipe -------------------------------------------------------------


@pytest.mark.parametrize("plain", [True, False], ids=["--plain", "pipe"])
def test_plain_log_through_a_pipe(tmp_path: Path, small_toml: Path, plain: bool) -> None:
    output = tmp_path / "results"
    args = bench_args(small_toml, output) + (["--plain"] if plain else [])
    done = run_vmvc(*args, timeout=150, env={"FORCE_COLOR": "", "TTY_COMPATIBLE": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    both = done.stdout + done.stderr
    assert "\x1b" not in both, repr(both[:500])
    assert "\r" not in both

    lines = done.stderr.splitlines()
    log = [line for line in lines if STAMP.match(line)]
    assert all(line.isascii() for line in log)
    # One line per event: each trial's start and end, each phase, each headline value.
    starts = [line for line in log if re.search(r"\] trial \d/4: (native|docker) instance", line)]
    ends = [
        line for line in log if re.search(r"\] trial \d/4 done: (native|docker) instance", line)
    ]
    values = [line for line in log if re.search(r"(startup total_s|cpu events_per_s) = ", line)]
    phases = [line for line in log if re.search(r"\]   (native|docker): [a-z]", line)]
    assert [s.split("] ", 1)[1][:10] for s in starts] == [f"trial {n}/4:" for n in (1, 2, 3, 4)]
    assert len(ends) == 4
    assert len(values) == 8  # 2 backends x 2 workloads x 2 repetitions
    assert len(phases) >= 4 * 3  # provisioning, starting, cpu (, tearing down) per trial
    assert re.search(r"left ~\d+:\d\d", ends[0])
    assert log[0].endswith("plan: native, docker x startup, cpu: 2 repetitions, 4 trials")
    assert any("finished after" in line and "4 trials, none failed" in line for line in log)

    doc = the_result(output)
    assert leftovers_of(doc["run_id"]) == []


def test_interactive_without_a_terminal_is_a_one_line_error(tmp_path: Path) -> None:
    done = run_vmvc("bench", "--interactive", "--output", str(tmp_path / "results"), timeout=60)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: --interactive needs a terminal (stdin and stdout are not both TTYs); "
        "pass --backend/--workload/--profile instead"
    ]
    assert not (tmp_path / "results").exists()


# -- (c) interactive selection in a pseudo-terminal -------------------------------------------


def test_interactive_selection(tmp_path: Path, small_toml: Path) -> None:
    output = tmp_path / "results"
    child = pexpect.spawn(
        sys.executable,
        [
            "-m",
            "vmvc",
            "bench",
            "--interactive",
            "--accel",
            "tcg",
            "-n",
            "2",
            "--config",
            str(small_toml),
            "--output",
            str(output),
        ],
        cwd=str(REPO),
        env=terminal_env(),
        dimensions=(ROWS, 200),
        encoding="utf-8",
        timeout=60,
    )
    transcript: list[str] = []
    try:
        child.expect("Which backends")
        transcript.append(child.before)
        child.sendline("docker, 42")  # 42 is no backend: the question comes again
        child.expect("try again")
        child.expect("Which backends")
        child.sendline("docker")
        child.expect("Which workloads")
        transcript.append(child.before)
        child.sendline("1, cpu")
        child.expect("Which profile")
        child.sendline("")  # the default: quick
        child.expect("Run it now")
        transcript.append(child.before)
        child.sendline("y")
        child.expect(pexpect.EOF, timeout=150)
        transcript.append(child.before)
    finally:
        child.close(force=True)
    text = ANSI.sub("", "".join(transcript))
    questions = ANSI.sub("", "".join(transcript[:3]))
    print(f"\n--- interactive transcript (questions) ---\n{questions.strip()}")
    assert child.exitstatus == 0, text[-3000:]

    # What doctor found, then the equivalent command, before the run.
    assert re.search(r"✓ native", text) and re.search(r"✓ docker", text)
    assert "VMs: emulated with TCG (--accel tcg)" in text
    command = (
        "vmvc bench --backend docker --workload startup --workload cpu --profile quick "
        f"--config {small_toml} --accel tcg --repetitions 2 --output {output}"
    )
    assert command in text
    assert text.index(command) < text.index("vmvc bench finished after")

    # The run had the chosen backend only, the chosen workloads and profile.
    doc = the_result(output)
    assert doc["status"] == "complete"
    assert doc["config"]["backends"] == ["docker"]
    assert doc["config"]["workloads"] == ["startup", "cpu"]
    assert doc["config"]["profile"] == "quick"
    assert {s["backend"] for s in doc["samples"]} == {"docker"}
    assert {s["workload"] for s in doc["samples"]} == {"startup", "cpu"}
    assert {t["backend"] for t in doc["trials"]} == {"docker"}
    assert leftovers_of(doc["run_id"]) == []
