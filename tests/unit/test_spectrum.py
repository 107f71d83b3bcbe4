"""The isolation spectrum (issue 15): verdicts name the backends they compare; the report
sets every backend side by side in spectrum order, speed as a ratio to native, I/O that
beats native marked, and which kernel answers each one's system calls."""

from __future__ import annotations

import pytest

from vmvc.claims import evaluate
from vmvc.config import Config
from vmvc.export.markdown import render_markdown
from vmvc.export.spectrum import ANOMALY, build_spectrum
from vmvc.export.view import build_view
from vmvc.orchestrate import analyse
from vmvc.report import render
from vmvc.results import BackendRecord, ResultDocument

SPEEDS = {"native": 1.0, "docker": 0.98, "podman": 0.97, "gvisor": 0.9, "libvirt": 0.2}
# The order a user selected them in: the spectrum reorders by kind, not by this.
SELECTED = ("libvirt", "gvisor", "podman", "docker", "native")
FACTS = {
    "docker": {"shares_host_kernel": True, "seccomp": "filter", "host_syscalls_reached": 61},
    "podman": {"shares_host_kernel": True, "seccomp": "filter"},
    "gvisor": {"shares_host_kernel": False, "seccomp": "disabled", "host_syscalls_reached": 38},
    "libvirt": {"shares_host_kernel": False, "seccomp": "disabled"},
}


def _data(n: int = 6) -> dict[str, dict[str, list[float]]]:
    return {
        name: {
            "cpu/events_per_s": [2300 * speed * (1 + 0.004 * i) for i in range(n)],
            "memory/latency_ns": [90 / speed * (1 + 0.003 * i) for i in range(n)],
            "startup/total_s": [0.2 / speed * (1 + 0.005 * i) for i in range(n)],
            # gVisor "reads" 3x faster than native: a cache answered
            "io/seqread_1m_mib_s": [
                800 * (3.0 if name == "gvisor" else speed) * (1 + 0.002 * i) for i in range(n)
            ],
        }
        for name, speed in SPEEDS.items()
    }


@pytest.fixture
def spectrum_doc(build_doc) -> ResultDocument:
    data = _data()
    doc = build_doc({b: data[b] for b in SELECTED}, accel="kvm", facts=FACTS)
    # What the backends' own info() records (podman is a second container engine).
    records = {
        "libvirt": BackendRecord(
            label="VM",
            kind="vm",
            display_name="VM (libvirt)",
            syscalls_answered_by="guest kernel",
        ),
        "gvisor": BackendRecord(
            label="gVisor",
            kind="sandbox",
            display_name="gVisor",
            syscalls_answered_by="user-space kernel (gVisor Sentry)",
        ),
        "podman": BackendRecord(label="podman", kind="container", display_name="podman"),
        "docker": BackendRecord(label="container", kind="container", display_name="docker"),
        "native": BackendRecord(label="native", kind="native", display_name="native"),
    }
    doc.backend_info = {name: records[name] for name in SELECTED}
    analyse(doc, Config())
    return doc


def test_backends_are_in_spectrum_order_not_selection_order(spectrum_doc) -> None:
    spectrum = build_spectrum(spectrum_doc, spectrum_doc.statistics)
    # containers in the order selected (podman before docker), then sandbox, then VM
    assert spectrum.backends == ["native", "podman", "docker", "gvisor", "libvirt"]


def test_speed_rows_are_ratios_to_native(spectrum_doc) -> None:
    spectrum = build_spectrum(spectrum_doc, spectrum_doc.statistics)
    cpu = next(r for r in spectrum.rows if r.label == "CPU events/s")
    assert cpu.cells["native"] == "1 (baseline)"
    # 0.2 of native's events/s: the VM's cell starts with its ratio, not its median
    assert cpu.cells["libvirt"].startswith("0.2")
    latency = next(r for r in spectrum.rows if r.label == "memory latency")
    assert latency.cells["libvirt"].startswith("5")  # 90/0.2 ns over 90 ns


def test_io_faster_than_native_is_marked_only_where_it_is(spectrum_doc) -> None:
    view = build_view(spectrum_doc)
    (spectrum,) = view.spectra
    seqread = next(r for r in spectrum.rows if r.label == "1M sequential read")
    assert ANOMALY in seqread.cells["gvisor"]
    assert all(ANOMALY not in seqread.cells[b] for b in ("docker", "podman", "libvirt"))


def test_syscall_kernel_and_facts_rows(spectrum_doc) -> None:
    spectrum = build_spectrum(spectrum_doc, spectrum_doc.statistics)
    rows = {r.label: r.cells for r in spectrum.rows}
    answered = rows["system calls answered by"]
    assert answered["docker"] == "host kernel"  # the container kind's
    assert answered["gvisor"] == "user-space kernel (gVisor Sentry)"
    assert answered["libvirt"] == "guest kernel"
    reached = rows["distinct host system calls reached"]
    assert reached == {"docker": "61", "gvisor": "38"}  # only where it was counted


def test_both_reports_show_the_spectrum(spectrum_doc) -> None:
    markdown = render_markdown(spectrum_doc)
    assert "## Isolation spectrum" in markdown
    header = next(line for line in markdown.splitlines() if line.startswith("| spectrum | unit |"))
    assert [c.strip() for c in header.strip("|").split("|")][2:] == [
        "native",
        "podman",
        "container",
        "gVisor",
        "VM",
    ]
    html = render(spectrum_doc, "html")
    assert 'id="spectrum-table"' in html and 'href="#spectrum"' in html


def test_no_spectrum_for_the_study_pair_alone(build_doc) -> None:
    data = _data()
    doc = build_doc({b: data[b] for b in ("native", "docker")}, accel="kvm")
    analyse(doc, Config())
    assert build_view(doc).spectra == []
    assert "Isolation spectrum" not in render_markdown(doc)


def test_every_verdict_names_the_backends_it_compares(spectrum_doc) -> None:
    verdicts = {v.claim: v for v in evaluate(spectrum_doc)}
    # the first selected VM and container, whatever order they were given in
    assert verdicts["C01"].compared == ["libvirt", "podman"]
    assert verdicts["C03"].compared == ["libvirt", "podman", "native"]
    # the facts claims read every instance backend along the spectrum
    assert verdicts["C07"].compared == ["podman", "docker", "gvisor", "libvirt"]
    markdown = render_markdown(spectrum_doc)
    c01 = next(line for line in markdown.splitlines() if line.startswith("| C01 "))
    assert "(libvirt (VM) vs podman)" in c01


def test_a_pair_not_measured_is_not_named(build_doc) -> None:
    data = _data()
    doc = build_doc({b: data[b] for b in ("native", "docker")}, accel="kvm")
    analyse(doc, Config())
    c01 = next(v for v in evaluate(doc) if v.claim == "C01")
    assert c01.compared == ["docker"]


def test_c01_splits_a_full_vms_start_into_guest_os_and_vmm(build_doc) -> None:
    n = 6
    phases = {"create_s": 0.5, "firmware_kernel_s": 1.9, "initramfs_s": 0.4}
    minimal = {f"startup/{k}": [v] * n for k, v in phases.items()}
    minimal["startup/userspace_s"] = [0.3] * n
    minimal["startup/total_s"] = [3.1 + 0.01 * i for i in range(n)]
    full = {"startup/total_s": [9.3 + 0.01 * i for i in range(n)]}
    container = {"startup/total_s": [0.2 + 0.001 * i for i in range(n)]}
    doc = build_doc({"docker": container, "libvirt": minimal, "libvirt-full": full}, accel="kvm")
    doc.backend_info["libvirt"] = BackendRecord(
        label="VM", kind="vm", display_name="VM", flavour="minimal"
    )
    doc.backend_info["libvirt-full"] = BackendRecord(
        label="full VM", kind="vm", display_name="full VM", flavour="full"
    )
    analyse(doc, Config())
    c01 = next(v for v in doc.verdicts if v.claim == "C01")
    assert c01.compared == ["libvirt", "docker"]  # the minimal VM was selected first
    assert c01.numbers["guest_os_s"] == pytest.approx(9.325 - 3.125)
    assert c01.numbers["guest_os_share"] == pytest.approx((9.325 - 3.125) / 9.325)
    assert c01.numbers["vmm_firmware_kernel_s"] == pytest.approx(2.8)
    assert "the guest OS takes 6.20 s (66%" in c01.text
    assert "the VMM, firmware and kernel 2.80 s" in c01.text
    # without a minimal flavour to subtract, nothing is claimed about the guest OS
    del doc.backend_info["libvirt"]
    doc.backend_info["libvirt"] = BackendRecord(label="VM", kind="vm", display_name="VM")
    analyse(doc, Config())
    c01 = next(v for v in doc.verdicts if v.claim == "C01")
    assert "guest_os_s" not in c01.numbers and "guest OS" not in c01.text


def test_every_kind_has_a_place_and_a_colour() -> None:
    """A kind added to the spectrum must be ordered, coloured and answered for."""
    from typing import get_args

    from vmvc.export.charts import KIND_COLORS
    from vmvc.results import KIND_ORDER, SYSCALLS_ANSWERED_BY, BackendKind

    kinds = get_args(BackendKind)
    assert KIND_ORDER == ("native", "container", "sandbox", "system", "vm")
    assert set(kinds) == set(KIND_COLORS) == set(SYSCALLS_ANSWERED_BY)
