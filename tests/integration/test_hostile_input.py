"""Hostile input through the real command line: one `error:` line, exit 2, nothing touched.

Each case hands `vmvc` (a subprocess, as a user would run it, as root) a result file or a
config someone else could have written, and checks that the command refuses it with one
line, no traceback, creates nothing, and that a canary — the directory or file the attack
aims at — is still there. The unit tests (tests/unit/test_hostile_*.py) cover every rule;
these prove the real entry points apply them before anything happens.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from vmvc.paths import run_workdir, state_dir
from vmvc.results import MAX_RESULT_BYTES

from .conftest import REPO, leftovers_of, run_vmvc

EXAMPLE = next((REPO / "results" / "example").glob("*.json"))
RUN_ID = "20260101T000000Z-c0ffee"


def _example() -> dict[str, Any]:
    doc = json.loads(EXAMPLE.read_text())
    doc["run_id"] = RUN_ID
    return doc


def _climb_to(target: Path) -> str:
    """A run id that, joined into /var/tmp/vmvc-<id>, names `target` (the old bug)."""
    up = len(run_workdir("x").parent.parts) + 1
    return "x/" + "../" * up + str(target).lstrip("/")


def _one_error(done: subprocess.CompletedProcess[str], says: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert says in errors[0], errors[0]


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    directory = tmp_path / "canary"
    directory.mkdir()
    (directory / "keep").write_text("must survive\n")
    return directory


def _survives(canary: Path) -> None:
    assert (canary / "keep").read_text() == "must survive\n", "the canary was touched"


# -- vmvc bench --resume -------------------------------------------------------------------


def _resume_cases(canary: Path) -> dict[str, tuple[str, dict[str, Any] | None, str]]:
    """name -> (RUN_ID argument, file content written as <RUN_ID>.json or None, message)."""
    climbing = copy.deepcopy(_example())
    climbing["run_id"] = _climb_to(canary)
    markup = copy.deepcopy(_example())
    markup["run_id"] = "20260101T000000Z-[bold]x[/]"
    other = copy.deepcopy(_example())
    other["run_id"] = "20260101T000000Z-000001"
    ext = copy.deepcopy(_example())
    ext["config"]["libvirt_uri"] = f"qemu+ext:///system?command={canary}/run-me"
    host_cmd = copy.deepcopy(_example())
    host_cmd["config"]["hosts"] = [
        {"name": "lab1", "libvirt_uri": f"qemu+ssh://lab1/system?command={canary}/run-me"}
    ]
    forged_hosts = copy.deepcopy(_example())
    forged_hosts["environment"]["benchmarked_hosts"] = ["-oProxyCommand=x"]
    nan = json.dumps(_example()).replace('"value": ', '"value": NaN, "x": ', 1)
    return {
        "argument-climbs": (_climb_to(canary), None, "is not of the form"),
        "argument-markup": ("[bold]x[/]", None, "is not of the form"),
        "file-run-id-climbs": (RUN_ID, climbing, "invalid result file at 'run_id'"),
        "file-run-id-markup": (RUN_ID, markup, "invalid result file at 'run_id'"),
        "file-names-another-run": (RUN_ID, other, "holds run"),
        "config-libvirt-ext": (RUN_ID, ext, "config.libvirt_uri"),
        "config-host-command": (RUN_ID, host_cmd, "parameter 'command' is refused"),
        "forged-benchmarked-hosts": (RUN_ID, forged_hosts, "benchmarked_hosts"),
        "nan-sample": (RUN_ID, {"raw": nan}, "NaN is not JSON"),
    }


RESUME_CASES = [
    "argument-climbs",
    "argument-markup",
    "file-run-id-climbs",
    "file-run-id-markup",
    "file-names-another-run",
    "config-libvirt-ext",
    "config-host-command",
    "forged-benchmarked-hosts",
    "nan-sample",
]


@pytest.mark.parametrize("case", RESUME_CASES)
def test_resume_refuses_a_hostile_result(tmp_path: Path, canary: Path, case: str) -> None:
    run_id, content, says = _resume_cases(canary)[case]
    out = tmp_path / "out"
    out.mkdir()
    if content is not None:
        text = content["raw"] if "raw" in content else json.dumps(content)
        (out / f"{RUN_ID}.json").write_text(text)
    before_files = sorted(out.iterdir())
    done = run_vmvc("bench", "--resume", run_id, "--output", str(out), "--plain", timeout=120)
    _one_error(done, says)
    _survives(canary)
    assert not (canary / "ran").exists()
    assert sorted(out.iterdir()) == before_files, "a result or report was written"
    assert not run_workdir(RUN_ID).exists(), "a work dir was made"
    assert not list(state_dir().rglob(f"*{RUN_ID}*")), "a lock was taken"
    assert leftovers_of(RUN_ID) == []


def test_resume_refuses_a_symlinked_result(tmp_path: Path, canary: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    real = canary / "elsewhere.json"
    real.write_text(json.dumps(_example()))
    (out / f"{RUN_ID}.json").symlink_to(real)
    done = run_vmvc("bench", "--resume", RUN_ID, "--output", str(out), "--plain", timeout=120)
    _one_error(done, "symbolic link")
    _survives(canary)


# -- vmvc report / compare / history ---------------------------------------------------------


def _hostile_files(tmp_path: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}

    def write(name: str, doc: dict[str, Any] | str) -> None:
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(doc if isinstance(doc, str) else json.dumps(doc))

    good = _example()
    write("good", good)
    for name, path, value in (
        ("run-id-climbs", ("run_id",), "../../../etc"),
        ("run-id-markup", ("run_id",), "20260101T000000Z-[/]"),
        ("statistics-list", ("statistics",), ["oops"]),
        ("value-huge", ("samples", 0, "value"), 1e300),
        ("value-wrong-type", ("samples", 0, "value"), {"x": 1}),
        ("metric-pipe", ("samples", 0, "metric"), "a|b"),
        ("accel-forged", ("environment", "accel"), "<b>kvm</b>"),
    ):
        doc = copy.deepcopy(good)
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        write(name, doc)
    write("nan", json.dumps(good).replace('"value": ', '"value": NaN, "x": ', 1))
    shadow = tmp_path / "shadow.json"
    shadow.symlink_to("/etc/shadow")
    files["symlink-to-shadow"] = shadow
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    files["fifo"] = fifo
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as handle:
        handle.truncate(MAX_RESULT_BYTES + 1)
    files["huge"] = huge
    return files


FILE_CASES = {
    "run-id-climbs": "'run_id'",
    "run-id-markup": "'run_id'",
    "statistics-list": "'statistics'",
    "value-huge": "not a finite number",
    "value-wrong-type": "samples.0.value",
    "metric-pipe": "metric 'a|b'",
    "accel-forged": "accel",
    "nan": "NaN is not JSON",
    "symlink-to-shadow": "symbolic link",
    "fifo": "not a regular file",
    "huge": "256 MiB",
}


@pytest.mark.parametrize("command", ["report", "compare", "history"])
@pytest.mark.parametrize("case", list(FILE_CASES))
def test_analysis_commands_refuse_a_hostile_result(tmp_path: Path, command: str, case: str) -> None:
    files = _hostile_files(tmp_path)
    hostile = files[case]
    if command == "report":
        args = ["report", str(hostile), "--format", "md"]
    elif command == "compare":
        args = ["compare", str(files["good"]), str(hostile), "--format", "md"]
    else:
        args = ["history", str(hostile), "--format", "md"]
    done = run_vmvc(*args, timeout=60)  # a FIFO that blocked would time out here
    _one_error(done, FILE_CASES[case] if command != "history" else "no readable vmvc result")
    if command == "history":
        assert FILE_CASES[case] in done.stderr  # the WARNING line names why it was skipped
    assert not [p for p in tmp_path.iterdir() if p.suffix in {".md", ".html", ".csv"}]
    assert "root:" not in done.stdout + done.stderr  # nothing of /etc/shadow leaked


def test_report_of_forged_statistics_is_recomputed(tmp_path: Path) -> None:
    doc = _example()
    doc["statistics"] = {"summaries": ["oops"]}
    doc["verdicts"] = [{"claim": "C01", "verdict": "confirmed", "text": "FORGED"}]
    path = tmp_path / "forged.json"
    path.write_text(json.dumps(doc))
    for fmt in ("md", "html"):
        done = run_vmvc("report", str(path), "--format", fmt, "-o", "-", timeout=120)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        assert "FORGED" not in done.stdout and "C01" in done.stdout


# -- hostile configs and outputs for vmvc bench ----------------------------------------------


def _bench_config(canary: Path) -> dict[str, tuple[str, str]]:
    run_me = canary / "run-me"
    return {
        "libvirt-ext": (f'libvirt_uri = "qemu+ext:///system?command={run_me}"\n', "qemu+ext"),
        "libvirt-socket-in-tmp": (
            f'libvirt_uri = "qemu+unix:///system?socket={canary}/sock"\n',
            "socket must be under",
        ),
        "host-command": (
            f'[[hosts]]\nname = "lab1"\nlibvirt_uri = "qemu+ssh://lab1/system?command={run_me}"\n',
            "parameter 'command' is refused",
        ),
        "host-netcat": (
            f'[[hosts]]\nname = "lab1"\nlibvirt_uri = "qemu+ssh://lab1/system?netcat={run_me}"\n',
            "parameter 'netcat' is refused",
        ),
        "host-no-verify": (
            '[[hosts]]\nname = "lab1"\nlibvirt_uri = "qemu+ssh://lab1/system?no_verify=1"\n',
            "parameter 'no_verify' is refused",
        ),
        "host-ssh-option": (
            '[[hosts]]\nname = "lab1"\nlibvirt_uri = "qemu+ssh://-oProxyCommand=x/system"\n',
            "no leading '-'",
        ),
        "docker-tcp": (
            '[[hosts]]\nname = "lab1"\ndocker_host = "tcp://lab1:2375"\n',
            "insecure_plaintext_tcp",
        ),
        "docker-user-option": (
            '[[hosts]]\nname = "lab1"\ndocker_host = "ssh://-oProxyCommand=x@lab1"\n',
            "user name",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "libvirt-ext",
        "libvirt-socket-in-tmp",
        "host-command",
        "host-netcat",
        "host-no-verify",
        "host-ssh-option",
        "docker-tcp",
        "docker-user-option",
    ],
)
def test_bench_refuses_a_hostile_config(tmp_path: Path, canary: Path, case: str) -> None:
    text, says = _bench_config(canary)[case]
    run_me = canary / "run-me"  # would leave a mark if libvirt ever ran it
    run_me.write_text(f"#!/bin/sh\ntouch {canary}/ran\n")
    run_me.chmod(0o755)
    config = tmp_path / "hostile.toml"
    config.write_text(text)
    out = tmp_path / "out"
    done = run_vmvc("bench", "--config", str(config), "--output", str(out), timeout=120)
    _one_error(done, says)
    _survives(canary)
    assert not (canary / "ran").exists()
    # A run writes its result first thing: no directory means no run started. (Listing
    # engines for new vmvc resources would also see other people's runs on a shared host.)
    assert not out.exists()


def test_doctor_and_clean_refuse_a_hostile_host_config(tmp_path: Path, canary: Path) -> None:
    text, says = _bench_config(canary)["host-command"]
    config = tmp_path / "hostile.toml"
    config.write_text(text)
    for command in ("doctor", "clean"):
        done = run_vmvc(command, "--host", "lab1", "--config", str(config), timeout=120)
        _one_error(done, says)
    _survives(canary)


@pytest.mark.parametrize(
    ("output", "says"),
    [
        ("/proc/x", "cannot write there"),
        ("/proc", "cannot write there"),
        ("{file}", "is not a directory"),
        ("{file}/sub", "is not a directory"),
    ],
    ids=["proc-x", "proc", "a-file", "under-a-file"],
)
def test_bench_refuses_an_output_it_cannot_write(tmp_path: Path, output: str, says: str) -> None:
    a_file = tmp_path / "results.txt"
    a_file.write_text("not a directory\n")
    target = output.format(file=a_file)
    done = run_vmvc(
        "bench", "-b", "native", "-w", "cpu", "-n", "1", "--plain", "--output", target,
        timeout=120,
    )  # fmt: skip
    _one_error(done, says)
    assert a_file.read_text() == "not a directory\n"
    assert not list(Path("/proc").glob(".vmvc-probe-*"))
    assert not list(tmp_path.glob(".vmvc-probe-*"))
    assert not [p for p in tmp_path.iterdir() if p.name != "results.txt"]
