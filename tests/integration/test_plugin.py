"""The plugin promise: a backend from another package runs through vmvc with no change to vmvc.

examples/vmvc-bwrap is installed into the test venv the way a user installs a plugin (pip,
its own pyproject and entry point), then measured with `vmvc bench --backend bwrap` beside
the native baseline and rendered with `vmvc report`. It is uninstalled afterwards so the
other tests see the built-in backends only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from vmvc.paths import run_workdir

from .conftest import REPO, VMVC, leftovers_of, load_json, run_vmvc, write_config

PLUGIN = REPO / "examples" / "vmvc-bwrap"
RUN_ID_ENV = "VMVC_BWRAP_RUN_ID"  # what the example marks its sandbox processes with
BASIC = {"startup", "cpu", "memory", "io", "footprint"}

SMALL_TOML = """
profile = "quick"
workloads = ["startup", "cpu", "memory", "io", "footprint"]
[run]
repetitions = 2
max_repetitions = 2
warmups = 0
steady_backends = "all"  # bwrap is a sandbox, not a backend the claims compare
[run.workload_repetitions]
cpu = 2
memory = 2
io = 2
[workload.cpu]
seconds = 1
[workload.memory]
seconds = 1
working_set_mib = 24
latency_working_set_mib = 16
latency_seconds = 1
[workload.io]
file_size_mib = 16
runtime_s = 1
ramp_s = 0
"""


def _pip(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@contextlib.contextmanager
def plugin_installed() -> Iterator[None]:
    # Not editable: built and copied into site-packages like any third-party plugin, from a
    # copy of the example so the build leaves nothing in the repository.
    with tempfile.TemporaryDirectory(prefix="vmvc-plugin-") as scratch:
        source = Path(scratch) / PLUGIN.name
        shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
        _pip("install", "--no-deps", str(source))
    try:
        yield
    finally:
        _pip("uninstall", "-y", "vmvc-bwrap")


def sandbox_processes(run_id: str | None = None) -> dict[int, str]:
    """Processes that carry a bwrap sandbox's run id (of this run, or of any): pid -> run id."""
    found = {}
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error):
            value = proc.environ().get(RUN_ID_ENV)
            if value is not None and (run_id is None or value == run_id):
                found[proc.pid] = value
    return found


@pytest.fixture
def installed() -> Iterator[None]:
    with plugin_installed():
        yield


def test_plugin_backend_runs_and_reports_end_to_end(
    installed: None, tmp_path: Path, no_leftovers: None
) -> None:
    config = write_config(tmp_path / "small.toml", SMALL_TOML)
    out = tmp_path / "results"
    done = run_vmvc(
        "bench",
        "--backend",
        "native",
        "--backend",
        "bwrap",
        "--config",
        str(config),
        "--plain",
        "--output",
        str(out),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [result_path] = out.glob("*.json")
    run_id = result_path.stem
    doc = load_json(result_path)
    assert doc["status"] == "complete" and doc["errors"] == []

    # The backend describes itself; the result records it as the backend said.
    assert doc["backend_info"]["bwrap"] == {
        "label": "bwrap",
        "kind": "sandbox",
        "display_name": "sandbox (bubblewrap)",
        "syscalls_answered_by": "",  # a sandbox says what answers; this plugin does not
        "flavour": "",
    }
    assert doc["environment"]["bwrap_version"] not in ("", "unknown")

    # Every basic workload has measured samples for both backends, both repetitions.
    measured = {
        (s["backend"], s["workload"], s["repetition"]) for s in doc["samples"] if not s["warmup"]
    }
    for backend in ("native", "bwrap"):
        for workload in BASIC:
            assert {(backend, workload, 0), (backend, workload, 1)} <= measured, (
                backend,
                workload,
            )
    # The sandbox ran the shared image: the agent inside reported its id.
    bwrap_instances = [i for i in doc["instances"] if i["backend"] == "bwrap"]
    assert len(bwrap_instances) == 2
    assert {i["image_id"] for i in bwrap_instances} == {doc["image"]["id"]}

    # Statistics cover the plugin like any backend.
    summarised = {(row["backend"], row["workload"]) for row in doc["statistics"]["summaries"]}
    assert {("bwrap", workload) for workload in BASIC} <= summarised

    # Reports render from the file alone, with the backend's own label.
    for fmt in ("md", "html", "csv"):
        report = run_vmvc("report", str(result_path), "-f", fmt, "-o", "-")
        assert report.returncode == 0, f"{fmt}: {report.stderr[-2000:]}"
        assert "bwrap" in report.stdout, fmt
    markdown = run_vmvc("report", str(result_path), "-f", "md", "-o", "-").stdout
    assert "| bwrap |" in markdown  # a column of its own, headed by the backend's label

    # Nothing of the sandbox is left: no process, no work dir.
    assert sandbox_processes(run_id) == {}
    assert not run_workdir(run_id).exists()
    assert leftovers_of(run_id) == []


def test_an_unknown_backend_lists_the_installed_plugin(installed: None) -> None:
    done = run_vmvc("bench", "--backend", "nosuch", "--plain")
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: unknown backend 'nosuch' (installed: ")
    assert "bwrap" in line and "Traceback" not in done.stderr


def test_the_sandbox_dies_with_vmvc_even_on_kill_9(
    installed: None, tmp_path: Path, no_leftovers: None
) -> None:
    """--die-with-parent: a `kill -9` of vmvc leaves no sandbox process (only its work dir,
    which the next vmvc command reports and `vmvc clean` removes)."""
    config = write_config(
        tmp_path / "slow.toml",
        'profile = "quick"\n[run]\nrepetitions = 1\nmax_repetitions = 1\nwarmups = 0\n'
        "[workload.cpu]\nseconds = 60\n",
    )
    out = tmp_path / "out"
    bench = subprocess.Popen(
        [*VMVC, "bench", "-b", "bwrap", "-w", "cpu", "-c", str(config), "--plain", "-o", str(out)],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not sandbox_processes() and time.monotonic() < deadline:
            assert bench.poll() is None, "vmvc bench ended before the sandbox started"
            time.sleep(0.2)
        started = sandbox_processes()
        assert started, "no sandbox process appeared"
        [run_id] = set(started.values())
        time.sleep(2)  # inside the cpu workload now
    finally:
        os.kill(bench.pid, signal.SIGKILL)
        bench.wait(timeout=30)
    deadline = time.monotonic() + 10
    while sandbox_processes(run_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sandbox_processes(run_id) == {}
    # The dead run left its work dir only; remove exactly that (never another run's).
    workdir = run_workdir(run_id)
    assert all(p.name.startswith(f"vmvc-{run_id}-bwrap-") for p in workdir.iterdir())
    shutil.rmtree(workdir)
    assert leftovers_of(run_id) == []


def test_after_uninstall_the_backend_is_unknown_and_its_results_still_render(
    tmp_path: Path,
) -> None:
    config = write_config(
        tmp_path / "tiny.toml",
        'profile = "quick"\nworkloads = ["startup", "footprint"]\n'
        "[run]\nrepetitions = 1\nmax_repetitions = 1\nwarmups = 0\n",
    )
    out = tmp_path / "out"
    with plugin_installed():
        done = run_vmvc("bench", "-b", "bwrap", "-c", str(config), "--plain", "-o", str(out))
        assert done.returncode == 0, done.stderr[-2000:]
    [result_path] = out.glob("*.json")

    refused = run_vmvc("bench", "--backend", "bwrap", "--plain")
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: unknown backend 'bwrap' (installed: ")
    report = run_vmvc("report", str(result_path), "-f", "md", "-o", "-")
    assert report.returncode == 0, report.stderr[-2000:]
    assert "bwrap" in report.stdout
