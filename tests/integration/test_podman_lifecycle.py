"""Podman's and gVisor's lifecycle operations on the real engines, through `vmvc bench`.

The runner plans provision, clone and portability from the backends' capabilities (gVisor
has no export/import: its save and load would be podman's), the workloads time podman's
commands, and nothing is left behind: no container, no work dir, no temporary image (the
`no_leftovers` fixture lists podman's run-labelled images too). A second test leaves
temporary images of a dead run on purpose and sees each backend reap only its own. The
recovery workload SIGKILLs each backend's container from the host and podman's restart
policy brings it back: the agent prints a second ready marker and answers again.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from rich.console import Console

from vmvc.backends.container_labels import LABEL
from vmvc.backends.podman_engine.cli import Engine
from vmvc.backends.podman_engine.images import (
    image_labels,
    import_rootfs_as,
    list_images,
    remove_image,
    temp_tag,
)
from vmvc.cleanup import find_leftovers, remove_dead

from .conftest import load_json, run_vmvc, write_config

LIFECYCLE_TOML = """
profile = "quick"
workloads = ["provision", "clone", "portability"]
[run]
repetitions = 1
max_repetitions = 1
warmups = 0
lifecycle_backends = "all"  # quick runs them on the judged backends only (not gVisor)
[workload.portability]
forms = ["uncompressed", "compressed"]  # quick measures the uncompressed one only
"""
RECOVERY_TOML = """
profile = "quick"
workloads = ["recovery"]
[run]
repetitions = 1
max_repetitions = 1
warmups = 0
lifecycle_backends = "all"
"""
MAX_SECONDS = 120.0
# Under runsc the agent is no host process: only the sandbox is killed (GvisorBackend).
RECOVERED_KINDS = {"podman": {"workload_process", "instance"}, "gvisor": {"instance"}}
# FinishedAt is the exit file's time, from the kernel's coarse file clock (one tick, 4 ms
# at HZ=250, behind the real time): a death conmon saw at once may read up to that early.
FILE_CLOCK_S = 0.01
PROVISION = ("prepare_s", "define_s", "teardown_s")
CLONE = ("clone_s", "clone_to_ready_s")
PORTABILITY = ("export_s", "import_s")


def by_metric(doc: dict[str, Any], backend: str, workload: str) -> dict[str, dict[str, Any]]:
    """metric (with its form, for portability) -> the one measured sample."""
    found: dict[str, dict[str, Any]] = {}
    for s in doc["samples"]:
        if s["backend"] == backend and s["workload"] == workload and not s["warmup"]:
            form = s["metadata"].get("form")
            key = f"{s['metric']}@{form}" if form else s["metric"]
            assert key not in found, f"two samples of {key} on {backend}"
            found[key] = s
    return found


def assert_seconds(samples: dict[str, dict[str, Any]], *metrics: str) -> None:
    for metric in metrics:
        assert metric in samples, f"no {metric} in {sorted(samples)}"
        sample = samples[metric]
        assert sample["unit"] == "s", metric
        assert 0 < sample["value"] < MAX_SECONDS, (metric, sample["value"])


def bench_podman_and_gvisor(tmp_path: Path, toml: str, *args: str) -> dict[str, Any]:
    """`vmvc bench` on podman and gVisor with this config: the result, which must be whole."""
    config = write_config(tmp_path / "run.toml", toml)
    out = tmp_path / "results"
    done = run_vmvc(
        "bench", "--backend", "podman", "--backend", "gvisor", *args, "--config", str(config),
        "--plain", "--output", str(out),
        timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    [result] = out.glob("*.json")
    doc = load_json(result)
    assert doc["errors"] == []
    return doc


def test_podman_and_gvisor_provision_clone_and_port(tmp_path: Path, no_leftovers: None) -> None:
    doc = bench_podman_and_gvisor(tmp_path, LIFECYCLE_TOML)
    trials = {(t["backend"], t["kind"]): t["status"] for t in doc["trials"]}
    assert trials == {
        ("podman", "provision"): "ok",
        ("podman", "clone"): "ok",
        ("podman", "portability"): "ok",
        ("gvisor", "provision"): "ok",
        ("gvisor", "clone"): "ok",
    }  # gVisor's export/import would be podman's save and load again: not planned

    clone_bytes: dict[str, float] = {}
    for backend in ("podman", "gvisor"):
        provision = by_metric(doc, backend, "provision")
        assert_seconds(provision, *PROVISION)
        assert provision["prepare_s"]["metadata"]["step"] == "tar | podman import"
        # the imported image holds the whole rootfs: tens of MiB at least
        assert provision["prepare_s"]["metadata"]["image_bytes"] > 10 * 2**20
        assert provision["define_s"]["metadata"]["step"] == "podman create (image)"
        assert provision["teardown_s"]["metadata"]["step"].startswith("podman rm + podman rmi")

        clone = by_metric(doc, backend, "clone")
        assert_seconds(clone, *CLONE)
        assert clone["clone_s"]["metadata"]["step"] == "podman create (rootfs dir, overlay)"
        assert "full_copy_s" not in clone  # a container clone is always a layer
        stored = clone["clone_bytes"]
        assert stored["unit"] == "bytes"
        # copy-on-write: the overlay's own dirs, a few KiB, never the rootfs (tens of MiB)
        assert 0 < stored["value"] < 8 * 2**20, (backend, stored)
        assert stored["metadata"]["what"], backend
        clone_bytes[backend] = stored["value"]
    print("clone_bytes", clone_bytes)  # numbers for the notes

    port = by_metric(doc, "podman", "portability")
    assert_seconds(port, *(f"{m}@{f}" for m in PORTABILITY for f in ("uncompressed", "compressed")))
    plain, packed = port["export_bytes@uncompressed"], port["export_bytes@compressed"]
    assert plain["unit"] == "bytes" and 10 * 2**20 < plain["value"] < 4 * 2**30
    # the compressed file is the same stream through zstd -3, smaller
    assert packed["metadata"]["stream_bytes"] == plain["value"] > packed["value"]
    assert plain["metadata"]["holds"].startswith("docker-archive from podman save")
    assert port["import_s@uncompressed"]["metadata"]["step"] == "podman load (layer rebuilt)"
    assert by_metric(doc, "gvisor", "portability") == {}


def meta_before_kill(recovery: dict[str, Any]) -> float:
    return float(recovery["metadata"].get("finished_before_kill_s", 0.0))


def by_failure(doc: dict[str, Any], backend: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(failure kind, metric) -> the one measured recovery sample of `backend`."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for s in doc["samples"]:
        if s["backend"] == backend and s["workload"] == "recovery" and not s["warmup"]:
            key = (s["metadata"]["failure"], s["metric"])
            assert key not in found, f"two samples of {key} on {backend}"
            found[key] = s
    return found


def test_podman_and_gvisor_recover_from_a_sigkill(tmp_path: Path, no_leftovers: None) -> None:
    doc = bench_podman_and_gvisor(tmp_path, RECOVERY_TOML, "-w", "recovery")
    trials = {(t["backend"], t["kind"]): t["status"] for t in doc["trials"]}
    assert trials == {("podman", "recovery"): "ok", ("gvisor", "recovery"): "ok"}
    times: dict[str, dict[str, tuple[float, float]]] = {}
    for backend, kinds in RECOVERED_KINDS.items():
        found = by_failure(doc, backend)
        assert {kind for kind, _ in found} == kinds
        for kind in kinds:
            recovery, detect = found[kind, "recovery_s"], found[kind, "detect_s"]
            assert recovery["unit"] == detect["unit"] == "s"
            assert 0 < recovery["value"] < MAX_SECONDS, (backend, kind)
            # never before the kill; a coarse clock's earlier reading is kept in the metadata
            assert 0 <= detect["value"] < recovery["value"], (backend, kind)
            assert meta_before_kill(recovery) < FILE_CLOCK_S, (backend, kind)
            meta = recovery["metadata"]
            assert meta["ready_markers"] == 2  # really back: a second ready marker
            assert meta["restart_count"] == 1
            assert "podman restart policy" in meta["restarted_by"]
            assert detect["metadata"]["basis"].startswith("State.FinishedAt")
            times.setdefault(backend, {})[kind] = (recovery["value"], detect["value"])
    print("recovery_s, detect_s", times)  # numbers for the notes


def _image(engine: Engine, tree: Path, name: str, labels: dict[str, str]) -> str:
    return import_rootfs_as(engine, tree, temp_tag(name, "leftover"), labels)


def test_temporary_images_of_a_dead_run_are_reaped_by_the_backend_that_made_them(
    tmp_path: Path,
) -> None:
    """A podman image and a gVisor one of a dead run: each listed once, by its own backend,
    and removed; an image with only the bare `vmvc` label is not vmvc's to remove."""
    engine = Engine()
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "file").write_text("leftover\n")
    dead_run = f"20260101T000000Z-{secrets.token_hex(3)}"
    made = {
        backend: _image(
            engine, tree, f"vmvc-{dead_run}-{backend}-1", image_labels(dead_run, "x", backend)
        )
        for backend in ("podman", "gvisor")
    }
    foreign = _image(engine, tree, f"vmvc-foreign-{secrets.token_hex(3)}", {LABEL: "1"})
    try:
        found = [item for item in find_leftovers() if item.run_id == dead_run]
        assert sorted((item.kind, item.name) for item in found) == sorted(
            ("image", f"{temp_tag(f'vmvc-{dead_run}-{backend}-1', 'leftover')}") for backend in made
        )
        remove_dead(Console(quiet=True), found, dry_run=False)
        left = {image.image_id for image in list_images(engine, LABEL)}
        assert not left & set(made.values())
        assert foreign in left
    finally:
        for image in (*made.values(), foreign):
            remove_image(engine, image)
