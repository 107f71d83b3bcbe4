"""Bad input, table-driven: every case exits 2 with one line saying what is wrong and how to
fix it, prints no traceback, and creates nothing (no result, no work dir, no cache entry).

The CLI runs in-process with no engine reachable (tests/unit/conftest.py): every refusal
must come before vmvc talks to dockerd or libvirtd, or the case fails with another message.
Its work root and cache are private to the test, so anything it made would be seen.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from vmvc import cli

CONFIGS = {
    "zero-repetitions": ("[run]\nrepetitions = 0\n", "run.repetitions"),
    "negative-repetitions": ("[run]\nrepetitions = -3\n", "run.repetitions"),
    "unknown-key": ("[run]\nrepetition = 3\n", "unknown key"),
    "unknown-section": ("[turbo]\nx = 1\n", "unknown key"),
    "wrong-type": ('[workload.cpu]\nseconds = "ten"\n', "workload.cpu.seconds"),
    "unknown-workload": ('workloads = ["cpu", "gpu"]\n', "unknown workload 'gpu'"),
    "unknown-backend": ('backends = ["firecracker"]\n', "unknown backend 'firecracker'"),
    "memory-beyond-host": ("[instance]\nmemory_mib = 1000000\n", "more than this host's memory"),
    "zero-vcpus": ("[instance]\nvcpus = 0\n", "instance.vcpus"),
    "bad-accel": ('accel = "hvf"\n', "key 'accel'"),
    "zero-scale-count": ("[workload.scale]\ncounts = [0, 2]\n", "counts must be"),
    "bad-core-count": ('[workload.scale]\ncounts = [1, "cores*2"]\n', "counts must be"),
    "shell-in-core-count": ('[workload.scale]\ncounts = ["cores; rm -rf /"]\n', "counts must be"),
    "bool-scale-count": ("[workload.scale]\ncounts = [true]\n", "counts must be"),
    "negative-timeout": ("[timeouts]\nboot_s = -1\n", "timeouts.boot_s"),
    "bad-mirror": ('[image]\nmirror = "ftp://x"\n', "mirror must be"),
    "shell-in-package": ('[image]\npackages = ["fio; rm -rf /"]\n', "not a Debian package"),
    "unknown-profile": ('profile = "turbo"\n', "unknown profile 'turbo'"),
    "negative-seed": ("[run]\nseed = -1\n", "run.seed"),
    "unknown-export-form": ('[workload.portability]\nforms = ["gzip"]\n', "portability.forms"),
    "repeated-export-form": (
        '[workload.portability]\nforms = ["compressed", "compressed"]\n',
        "each form at most once",
    ),
    "no-export-form": ("[workload.portability]\nforms = []\n", "portability.forms"),
    "zero-spectrum-repetitions": ("[run]\nspectrum_repetitions = 0\n", "spectrum_repetitions"),
    "bad-steady-backends": ('[run]\nsteady_backends = "some"\n', "steady_backends"),
    "invalid-toml": ("[run\n", "invalid TOML"),
    "not-utf8": (b"\xff\xfe[run]\n", "not UTF-8"),
}

ARGUMENTS = {
    "unknown-backend-arg": (["bench", "--backend", "firecracker"], "unknown backend 'firecracker'"),
    "unknown-workload-arg": (["bench", "--workload", "gpu"], "unknown workload 'gpu'"),
    "bad-accel-arg": (["bench", "--accel", "maybe"], "--accel must be"),
    "zero-repetitions-arg": (["bench", "-n", "0"], "--repetitions must be at least 1"),
    "not-a-number": (["bench", "-n", "abc"], "--repetitions"),
    "negative-seed-arg": (["bench", "--seed", "-1"], "--seed must be from 0"),
    "unknown-profile-arg": (["bench", "--profile", "turbo"], "unknown profile 'turbo'"),
    "missing-config": (["bench", "--config", "/nonexistent/vmvc.toml"], "config file not found"),
    "config-is-directory": (["bench", "--config", "/tmp"], "cannot read config"),
    "unknown-option": (["bench", "--turbo"], "No such option"),
    "resume-unknown-run": (["bench", "--resume", "20990101T000000Z-000000"], "cannot resume"),
}


def _result(tmp: Path) -> dict:
    return {
        "schema_version": 1,
        "run_id": "20260101T000000Z-abcdef",
        "started_at": "2026-01-01T00:00:00+00:00",
        "environment": {"hostname": "h", "accel": "tcg"},
        "samples": [],
    }


def _write_results(tmp: Path) -> dict[str, Path]:
    good = _result(tmp)
    files = {
        "good": json.dumps(good),
        "truncated": json.dumps(good)[:40],
        "not-json": "this is not json\n",
        "other-schema": json.dumps({**good, "schema_version": 99}),
        "no-schema": json.dumps({"hello": 1}),
        "bad-field": json.dumps({**good, "samples": [{"backend": 1}]}),
        "kvm": json.dumps({**good, "environment": {"hostname": "h", "accel": "kvm"}}),
    }
    paths = {}
    for name, text in files.items():
        paths[name] = tmp / f"{name}.json"
        paths[name].write_text(text)
    return paths


RESULT_FILES = {
    "report-missing": (["report", "{missing}"], "no such result file"),
    "report-truncated": (["report", "{truncated}"], "truncated"),
    "report-not-json": (["report", "{not-json}"], "not a vmvc result"),
    "report-other-schema": (["report", "{other-schema}"], "schema_version 99"),
    "report-no-schema": (["report", "{no-schema}"], "no schema_version"),
    "report-bad-field": (["report", "{bad-field}"], "invalid result file"),
    "report-unknown-format": (["report", "{good}", "--format", "pdf"], "pdf"),
    "compare-truncated": (["compare", "{good}", "{truncated}"], "truncated"),
    "compare-other-schema": (["compare", "{other-schema}", "{good}"], "schema_version 99"),
    "compare-accel-differs": (["compare", "{good}", "{kvm}"], "--force"),
}

CASES = (
    [
        pytest.param("config", text, msg, id=f"config-{name}")
        for name, (text, msg) in CONFIGS.items()
    ]
    + [pytest.param("args", args, msg, id=name) for name, (args, msg) in ARGUMENTS.items()]
    + [pytest.param("result", args, msg, id=name) for name, (args, msg) in RESULT_FILES.items()]
)


def test_there_are_at_least_25_cases() -> None:
    assert len(CASES) >= 25


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


def run_vmvc(
    *args: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Done:
    """`vmvc ARGS` in this process, as its console script runs it (vmvc.cli.main)."""
    monkeypatch.setattr(sys, "argv", ["vmvc", *args])
    code: int | str | None = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return Done(code if isinstance(code, int) else 1, captured.out, captured.err)


@pytest.mark.parametrize(("kind", "given", "message"), CASES)
def test_bad_input(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    given: object,
    message: str,
) -> None:
    out = tmp_path / "out"
    state = tmp_path / "state"
    monkeypatch.setenv("VMVC_WORKDIR", str(state / "work"))
    monkeypatch.setenv("VMVC_CACHE", str(state / "cache"))
    monkeypatch.setenv("COLUMNS", "300")  # one error line, however long, is not wrapped
    if kind == "config":
        path = tmp_path / "bad.toml"
        if isinstance(given, bytes):
            path.write_bytes(given)
        else:
            path.write_text(str(given))
        args = ["bench", "--config", str(path), "--output", str(out)]
    elif kind == "args":
        args = [*given, "--output", str(out)] if given[0] == "bench" else list(given)  # type: ignore[index]
    else:
        paths = _write_results(tmp_path)
        mapping = {k.replace("-", "_"): str(v) for k, v in paths.items()}
        mapping["missing"] = str(tmp_path / "missing.json")
        args = [a.replace("-", "_").format(**mapping) if a.startswith("{") else a for a in given]  # type: ignore[union-attr]
    done = run_vmvc(*args, monkeypatch=monkeypatch, capsys=capsys)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert message in errors[0], errors[0]
    assert not out.exists(), "a result directory was created"
    made = sorted(p.relative_to(state) for p in state.rglob("*")) if state.exists() else []
    assert made == [], f"vmvc made {made}"
    if kind == "result":
        produced = [p for p in tmp_path.iterdir() if p.suffix in {".html", ".md", ".csv"}]
        assert produced == [], "a report file was created"
