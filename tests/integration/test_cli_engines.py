"""Availability, acceleration and doctor against the real engines of this host."""

from __future__ import annotations

import json
from pathlib import Path

from vmvc.backends.libvirt_engine.accel import cached_probe

from .conftest import run_vmvc, write_config

UNREACHABLE_LIBVIRT = """
profile = "quick"
accel = "tcg"
libvirt_uri = "qemu+unix:///system?socket=/run/libvirt/vmvc-test-no-such-sock"
[run]
repetitions = 1
max_repetitions = 1
"""


def test_named_unavailable_backend_is_an_error(tmp_path: Path, no_leftovers: None) -> None:
    config = write_config(tmp_path / "c.toml", UNREACHABLE_LIBVIRT)
    done = run_vmvc(
        "bench",
        "--backend",
        "libvirt",
        "--config",
        str(config),
        "--plain",
        "-o",
        str(tmp_path / "out"),
    )
    assert done.returncode == 2
    assert "backend 'libvirt' is not available" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_all_skips_unavailable_backend_and_says_why(tmp_path: Path, no_leftovers: None) -> None:
    config = write_config(tmp_path / "c.toml", UNREACHABLE_LIBVIRT)
    out = tmp_path / "out"
    done = run_vmvc(
        "bench",
        "--backend",
        "all",
        "--workload",
        "startup",
        "--config",
        str(config),
        "--plain",
        "-o",
        str(out),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "skipping backend libvirt" in done.stderr
    [path] = out.glob("*.json")
    doc = json.loads(path.read_text())
    # both VM flavours are libvirt's: both skipped, each with the reason
    assert [s["backend"] for s in doc["skipped"]] == ["libvirt", "libvirt-full"]
    assert all(s["reason"] for s in doc["skipped"])
    assert {s["backend"] for s in doc["samples"]} == {"native", "docker", "podman", "gvisor", "lxc"}


def test_accel_kvm_where_kvm_does_not_work_is_a_clear_error(tmp_path: Path) -> None:
    probe = cached_probe("qemu:///system")
    if probe is not None and probe["ok"]:
        # A host where KVM works: --accel kvm must then be accepted by doctor's probe.
        assert "booted under KVM" in str(probe["reason"])
        return
    done = run_vmvc(
        "bench",
        "--backend",
        "libvirt",
        "--accel",
        "kvm",
        "--workload",
        "startup",
        "-n",
        "1",
        "--plain",
        "-o",
        str(tmp_path / "out"),
    )
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "--accel kvm" in lines[0] and "KVM does not work here" in lines[0]


def test_doctor_reports_prerequisites_and_kvm_verdict() -> None:
    done = run_vmvc("doctor", env={"COLUMNS": "200"})
    assert done.returncode == 0, done.stdout + done.stderr
    text = " ".join(done.stdout.split())
    for check in (
        "host tools",
        "backend docker",
        "backend libvirt",
        "backend native",
        "backend podman",
        "backend gvisor",
        "KVM",
    ):
        assert check in text
    assert "(ptrace platform)" in text  # how gVisor intercepts, as the VM's accel is said
    probe = cached_probe("qemu:///system")
    assert probe is not None
    if probe["ok"]:
        assert "booted under KVM" in text
    else:
        assert "/dev/kvm exists but a probe guest did not boot" in text
        assert "emulated (TCG)" in text
