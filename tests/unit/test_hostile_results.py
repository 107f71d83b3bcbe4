"""Hostile result files: every one is refused by `results.load` with one line, no traceback.

A result file is input to a root tool (`vmvc bench --resume` turns its run id into paths it
creates and removes, its config into engine connections), so each case here is something
an attacker who can write a result file would try. Cases start from the committed example
result (a real run) so the only thing wrong in each is the thing under test.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from vmvc.results import (
    MAX_RESULT_BYTES,
    ResultDocument,
    ResultFileError,
    check_run_id,
    is_run_id,
    load,
    new_run_id,
    save,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = next((REPO / "results" / "example").glob("*.json"))

Mutation = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def example() -> dict[str, Any]:
    return json.loads(EXAMPLE.read_text())


def _set(*path: Any, value: Any) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


# (mutation, what the one-line error must say)
HOSTILE: dict[str, tuple[Mutation, str]] = {
    "run-id-climbs": (_set("run_id", value="x/../../../etc"), "'run_id': run id"),
    "run-id-absolute": (_set("run_id", value="/etc"), "'run_id'"),
    "run-id-markup": (_set("run_id", value="20261129T130319Z-[bold]x[/]"), "'run_id'"),
    "run-id-uppercase-hex": (_set("run_id", value="20261129T130319Z-160E6F"), "'run_id'"),
    "run-id-newline": (_set("run_id", value="20261129T130319Z-160e6f\n"), "'run_id'"),
    "run-id-not-a-string": (_set("run_id", value=["a"]), "'run_id'"),
    "summaries-wrong-type": (_set("statistics", value=["oops"]), "'statistics'"),
    "verdicts-wrong-type": (_set("verdicts", value={"C01": "confirmed"}), "'verdicts'"),
    "value-huge": (_set("samples", 0, "value", value=1e300), "not a finite number"),
    "value-string": (_set("samples", 0, "value", value="fast"), "samples.0.value"),
    "value-bool-list": (_set("samples", 0, "value", value=[1]), "samples.0.value"),
    "timestamp-huge": (_set("samples", 0, "timestamp", value=-1e200), "timestamp"),
    "repetition-huge": (_set("samples", 0, "repetition", value=10**12), "repetition"),
    "metric-pipe": (_set("samples", 0, "metric", value="x|y"), "metric 'x|y'"),
    "metric-markup": (_set("samples", 0, "metric", value="[/]"), "metric"),
    "backend-climbs": (_set("samples", 0, "backend", value="../x"), "backend"),
    "host-ssh-option": (_set("samples", 0, "host", value="-oProxyCommand=x"), "host"),
    "unit-newline": (_set("samples", 0, "unit", value="s\n# pwned"), "unit"),
    "metadata-n-list": (_set("samples", 0, "metadata", value={"n": [1]}), "metadata.n"),
    "metadata-deep": (
        _set("samples", 0, "metadata", value={"a": [[[[[[[[1]]]]]]]]}),
        "nested deeper",
    ),
    "trial-kind-climbs": (_set("trials", 0, "kind", value="../../x"), "trial kind"),
    "accel-markup": (_set("environment", "accel", value="[red]kvm"), "accel"),
    "remote-accel-forged": (
        _set("environment", "hosts", value={"lab1": {"accel": "<b>kvm</b>"}}),
        "environment",
    ),
    "remote-host-name": (
        _set("environment", "hosts", value={"-oProxyCommand=x": {"accel": "tcg"}}),
        "environment",
    ),
    "benchmarked-host-option": (
        _set("environment", "benchmarked_hosts", value=["-oProxyCommand=x"]),
        "benchmarked_hosts",
    ),
    "started-not-a-time": (_set("started_at", value="yesterday"), "ISO 8601"),
    "pid-zero": (_set("pid", value=0), "pid"),
    "status-unknown": (_set("status", value="owned"), "status"),
    "extra-field": (_set("owner", value="me"), "owner"),
    "backend-label-newline": (
        _set(
            "backend_info",
            value={"docker": {"label": "x\n# pwned", "kind": "container", "display_name": "d"}},
        ),
        "backend_info.docker.label",
    ),
    "backend-kind-unknown": (
        _set("backend_info", value={"docker": {"label": "c", "kind": "god", "display_name": "d"}}),
        "backend_info.docker.kind",
    ),
    "config-libvirt-ext": (
        _set("config", "libvirt_uri", value="qemu+ext:///system?command=/tmp/x"),
        "config.libvirt_uri",
    ),
    "config-libvirt-tcp": (
        _set("config", "libvirt_uri", value="qemu+tcp://127.0.0.1/system"),
        "config.libvirt_uri",
    ),
    "config-host-command": (
        _set(
            "config",
            "hosts",
            value=[{"name": "h", "libvirt_uri": "qemu+ssh://h/system?command=/tmp/x"}],
        ),
        "parameter 'command' is refused",
    ),
    "config-host-netcat": (
        _set(
            "config",
            "hosts",
            value=[{"name": "h", "libvirt_uri": "qemu+ssh://h/system?netcat=/tmp/x"}],
        ),
        "parameter 'netcat' is refused",
    ),
    "config-docker-tcp": (
        _set("config", "hosts", value=[{"name": "h", "docker_host": "tcp://h:2375"}]),
        "plaintext",
    ),
    "config-unknown-key": (_set("config", "run", "turbo", value=True), "config.run.turbo"),
    "config-wrong-type": (_set("config", "run", "repetitions", value="many"), "config.run"),
    "config-shell-package": (
        _set("config", "image", "packages", value=["fio; rm -rf /"]),
        "not a Debian package",
    ),
}


def _write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc))
    return path


def _refused(path: Path) -> str:
    with pytest.raises(ResultFileError) as caught:
        load(path)
    message = str(caught.value)
    assert "\n" not in message and "\x1b" not in message
    return message


def test_the_example_result_loads() -> None:
    doc = load(EXAMPLE)
    assert is_run_id(doc.run_id) and doc.samples


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_result_is_refused(tmp_path: Path, example: dict[str, Any], name: str) -> None:
    mutate, says = HOSTILE[name]
    doc = copy.deepcopy(example)
    mutate(doc)
    message = _refused(_write(tmp_path / "r.json", doc))
    assert says in message, message


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"schema_version": 1, "samples": [{"value": NaN}]}', "NaN is not JSON"),
        ('{"schema_version": 1, "samples": [{"value": Infinity}]}', "Infinity is not JSON"),
        ('{"schema_version": 1, "samples": [{"value": 1e999}]}', "out of range"),
        ('{"schema_version": 1, "x": ' + "9" * 5000 + "}", "not a vmvc result"),
        ('{"schema_version": 1, "x": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested"),
        ('{"schema_version": 1, "run_id": "x", "sampl', "truncated"),
        ("[1, 2]", "no schema_version"),
    ],
    ids=["nan", "infinity", "overflow", "huge-int", "deep", "truncated", "not-an-object"],
)
def test_hostile_json_is_refused(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(text)
    assert says in _refused(path)


def test_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(b'{"schema_version": 1, "run_id": "\xff"}')
    assert "not UTF-8" in _refused(path)


def test_symlink_is_refused_even_to_a_valid_result(tmp_path: Path) -> None:
    link = tmp_path / "latest.json"
    link.symlink_to(EXAMPLE)
    assert "symbolic link" in _refused(link)


def test_symlink_to_a_secret_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$secret-hash:19000:0:99999:7:::\n")
    link = tmp_path / "r.json"
    link.symlink_to(secret)
    message = _refused(link)
    assert "symbolic link" in message and "secret-hash" not in message


@pytest.fixture
def alarm() -> Iterator[None]:
    """Fail instead of hanging forever if a read blocks (a FIFO without a writer)."""

    def expired(_signum: int, _frame: Any) -> None:
        raise TimeoutError("load() blocked")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(10)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_fifo_is_refused_without_blocking(tmp_path: Path, alarm: None) -> None:
    fifo = tmp_path / "r.json"
    os.mkfifo(fifo)
    assert "not a regular file" in _refused(fifo)


def test_device_is_refused() -> None:
    assert "not a regular file" in _refused(Path("/dev/zero"))


def test_directory_is_refused(tmp_path: Path) -> None:
    assert "directory" in _refused(tmp_path)


def test_huge_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    with open(path, "wb") as handle:  # sparse: costs no disk
        handle.truncate(MAX_RESULT_BYTES + 1)
    assert "256 MiB" in _refused(path)


def test_file_name_with_escape_codes_stays_one_line(tmp_path: Path) -> None:
    path = tmp_path / "evil\n\x1b[2J.json"
    path.write_text("{}")
    message = _refused(path)
    assert "\\n\\x1b[2J" in message


def test_run_id_pattern_is_exactly_what_new_run_id_makes() -> None:
    for _ in range(50):
        assert check_run_id(new_run_id())
    for bad in ("", "20261129T130319Z-160e6", "20261129T130319Z-160e6f0", "run", "../x"):
        assert not is_run_id(bad)
        with pytest.raises(ValueError, match="is not of the form"):
            check_run_id(bad)


def test_saved_results_are_owner_only_and_load_again(tmp_path: Path, realistic_doc) -> None:
    doc = realistic_doc.model_copy(update={"run_id": new_run_id()})
    path = tmp_path / "r.json"
    save(doc, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load(path)
    assert again.samples == doc.samples


def test_in_memory_documents_are_not_held_to_the_disk_rules() -> None:
    """Only what comes from disk is untrusted; vmvc's own documents (and the report tests'
    hostile documents, which check escaping) are built freely."""
    doc = ResultDocument(run_id="[b]x[/b]", started_at="now")
    assert doc.run_id == "[b]x[/b]"
