"""Recovery per failure kind: keys, the C08 rule, the report's outcome cells, the VM's
panic device (issue 13 item 5)."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

from tests.unit.conftest import build_document
from vmvc import claims, stats
from vmvc.backends.libvirt_engine.domain_xml import DomainSpec, domain_xml
from vmvc.export.charts import ChartBuilder
from vmvc.export.markdown import render_markdown
from vmvc.export.view import build_view
from vmvc.image.vmboot import BOOT, BootProfile
from vmvc.keys import display, metric_key, split_failure, split_key
from vmvc.orchestrate import reanalyse
from vmvc.results import ResultDocument, Sample

WATCH_S = 12.0


def recovery_doc(
    *, accel: str = "kvm", n: int = 4, vm_instance_restarts: bool = False
) -> ResultDocument:
    """docker: two kinds, both restarted; libvirt: the agent respawned, QEMU not restarted
    (an outcome), a kernel panic restarted by on_crash."""
    doc = build_document({"docker": {}, "libvirt": {}}, accel=accel)
    per_backend = {
        "docker": [("workload_process", "recovery_s", 0.30), ("instance", "recovery_s", 0.32)],
        "libvirt": [
            ("workload_process", "recovery_s", 0.45),
            ("instance", "recovery_s" if vm_instance_restarts else "no_restart_watch_s", WATCH_S),
            ("guest_kernel_panic", "recovery_s", 6.4),
        ],
    }
    samples = []
    for backend, rows in per_backend.items():
        for kind, metric, center in rows:
            for rep in range(1, n + 1):
                samples.append(
                    Sample(
                        backend=backend,
                        workload="recovery",
                        metric=metric,
                        value=center * (1 + 0.01 * rep),
                        unit="s",
                        repetition=rep,
                        higher_is_better=False,
                        timestamp=1_735_689_600.0 + len(samples),
                        metadata={"trial": 1, "failure": kind},
                    )
                )
    doc.samples = samples
    reanalyse(doc)
    return doc


def c08(doc: ResultDocument) -> claims.Verdict:
    return next(v for v in claims.evaluate(doc, stats.summarize(doc)) if v.claim == "C08")


def test_a_failure_kind_is_its_own_metric_key() -> None:
    assert metric_key("recovery_s", {"failure": "instance", "trial": 1}) == "recovery_s@instance"
    assert metric_key("all_ready_s", {"n": 3}) == "all_ready_s@N=3"
    assert metric_key("recovery_s", {"failure": "Not A Kind!"}) == "recovery_s"
    assert split_failure("recovery_s@guest_kernel_panic") == ("recovery_s", "guest_kernel_panic")
    assert split_failure("all_ready_s@N=3") == ("all_ready_s@N=3", None)
    assert split_key("recovery_s@instance") == ("recovery_s", None)
    assert display("recovery_s@guest_kernel_panic") == "recovery_s (guest kernel panic)"


def test_statistics_keep_each_kind_apart() -> None:
    doc = recovery_doc()
    keys = {(s.backend, s.metric) for s in doc.statistics.summaries}
    assert ("docker", "recovery_s@workload_process") in keys
    assert ("docker", "recovery_s@instance") in keys
    assert ("libvirt", "no_restart_watch_s@instance") in keys
    assert ("libvirt", "recovery_s@instance") not in keys
    assert ("libvirt", "recovery_s") not in keys  # never pooled across kinds
    # The VM/container ratio exists only where both sides have a time.
    ratios = {r.metric for r in doc.statistics.ratios}
    assert "recovery_s@workload_process" in ratios
    assert "recovery_s@instance" not in ratios


def test_c08_reports_each_kind_with_no_automatic_restart_as_an_outcome() -> None:
    verdict = c08(recovery_doc())
    assert verdict.verdict == "reported"
    process = verdict.numbers["workload_process"]
    assert process["libvirt_median"] > process["docker_median"]
    assert process["ratio"] > 1
    instance = verdict.numbers["instance"]
    assert instance["libvirt_outcome"] == "no automatic restart"
    assert "libvirt_median" not in instance and "ratio" not in instance
    assert instance["docker_median"] > 0
    panic = verdict.numbers["guest_kernel_panic"]
    assert panic["docker_outcome"].startswith("does not apply")
    assert "instance killed: VM: no automatic restart vs container 0." in verdict.text
    assert "guest kernel panic: VM 6." in verdict.text
    # Emulated: no verdict, but the outcome stays in the text as context.
    tcg = c08(recovery_doc(accel="tcg"))
    assert tcg.verdict == "not measured under KVM"
    assert "no automatic restart" in tcg.text


def test_c08_shows_a_time_when_the_vm_did_come_back() -> None:
    instance = c08(recovery_doc(vm_instance_restarts=True)).numbers["instance"]
    assert instance["libvirt_median"] > WATCH_S
    assert "libvirt_outcome" not in instance


def test_report_prints_the_outcome_instead_of_a_time() -> None:
    view = build_view(recovery_doc())
    table = next(t for t in view.tables if t.workload == "recovery")
    rows = {row.metric: row for row in table.rows}
    instance = rows["recovery_s (instance)"]
    assert instance.cells["libvirt"].startswith("no automatic restart (watched 12")
    assert "docker" in instance.cells
    assert not instance.ratios  # no ratio against an outcome
    panic = rows["recovery_s (guest kernel panic)"]
    assert "docker" not in panic.cells
    assert "Does not apply to containers" in panic.note
    # One row per kind, in the catalogue's order of kinds.
    recovery_rows = [r.metric for r in table.rows if r.metric.startswith("recovery_s")]
    assert recovery_rows == [
        "recovery_s (workload process)",
        "recovery_s (instance)",
        "recovery_s (guest kernel panic)",
    ]
    assert "no automatic restart (watched 12" in render_markdown(recovery_doc())


def _spec(**changes: object) -> DomainSpec:
    spec = DomainSpec(
        name="vmvc-run-libvirt-1",
        run_id="run",
        owner_pid=42,
        domain_type="qemu",
        vcpus=1,
        memory_mib=512,
        kernel=Path("/k"),
        initrd=Path("/i"),
        cmdline=BOOT.cmdline,
        disks=[],
    )
    for key, value in changes.items():
        setattr(spec, key, value)
    return spec


def test_a_vm_reports_panics_to_a_pvpanic_device_and_libvirt_restarts_it() -> None:
    root = ElementTree.fromstring(domain_xml(_spec(restart_on_crash=True)))
    panic = root.find("./devices/panic")
    assert panic is not None and panic.get("model") == "isa"
    address = panic.find("address")
    assert address is not None and address.get("iobase") == "0x505"
    assert root.findtext("on_crash") == "restart"
    # Without the recovery workload a panicking guest is destroyed, never restarted, and
    # boots without the device, exactly as before issue 13 (its start-up is measured).
    plain = ElementTree.fromstring(domain_xml(_spec()))
    assert plain.findtext("on_crash") == "destroy"
    assert plain.find("./devices/panic") is None
    # The kernel never resets itself: on_crash is the only thing that restarts it.
    assert "panic=" not in BOOT.cmdline
    # The panic device is part of how the VM boots, so of the VM id.
    assert BootProfile(panic_device="").identity() != BOOT.identity()


def test_recovery_chart_has_a_bar_per_kind_and_none_for_an_outcome() -> None:
    charts = ChartBuilder(build_view(recovery_doc())).build()
    chart = next(c for c in charts if c.id.startswith("h0-recovery-"))
    bars = {trace["meta"]["backend"]: trace["x"] for trace in chart.data}
    assert bars["docker"] == ["recovery_s (workload process)", "recovery_s (instance)"]
    assert "recovery_s (guest kernel panic)" in bars["libvirt"]
    assert "recovery_s (instance)" not in bars["libvirt"]  # no time: said in words
    assert not any("no_restart" in x for xs in bars.values() for x in xs)
