"""The report's method/environment says how the backends were put on an equal footing: the
run order and its seed, the warm-ups, and each backend's limits as read back."""

from __future__ import annotations

import pytest

from vmvc.export.markdown import render_markdown
from vmvc.export.view import build_view, footing_rows
from vmvc.results import InstanceReport, ResultDocument

LIMITS = {
    "native": {"cpus": 1.0, "memory_mib": 512.0, "swap_mib": 0.0, "how": "cgroup v1"},
    "docker": {"cpus": 1.0, "memory_mib": 512.0, "swap_mib": 0.0, "how": "docker --cpus"},
    "libvirt": {"cpus": 1, "memory_mib": 512.0, "swap_mib": 0, "how": "vCPU threads"},
}


def footed(doc: ResultDocument, *, shuffle: bool = True) -> ResultDocument:
    doc.config["run"] = {"shuffle": shuffle, "seed": 465874312, "warmups": 1}
    doc.instances = [
        InstanceReport(backend=b, repetition=r, image_id="sha256:1111", limits=LIMITS[b])
        for r in (-1, 0)
        for b in ("libvirt", "docker", "native")
    ]
    return doc


def test_the_report_names_the_shuffled_order_its_seed_and_the_warmups(make_realistic) -> None:
    rows = dict(footing_rows(footed(make_realistic())))
    assert rows["run order"] == "shuffled in every repetition, seed 465874312"
    assert rows["warm-ups"] == "1 per backend, not counted"


def test_a_fixed_order_is_said_to_be_fixed(make_realistic) -> None:
    rows = dict(footing_rows(footed(make_realistic(), shuffle=False)))
    assert rows["run order"].startswith("fixed")


def test_each_backends_read_back_limits_are_in_the_environment(make_realistic) -> None:
    doc = footed(make_realistic())
    view = build_view(doc)
    limits = [(k, v) for k, v in view.environment if k.startswith("limits")]
    # one row per backend, in the report's backend order, labelled as the backend labels itself
    assert [k for k, _ in limits] == ["limits (native)", "limits (container)", "limits (VM)"]
    assert dict(limits)["limits (native)"].startswith("cpus 1")
    assert "memory_mib 512" in dict(limits)["limits (container)"]
    markdown = render_markdown(doc)
    assert "shuffled in every repetition, seed 465874312" in markdown
    assert "limits (VM)" in markdown


def test_limits_in_a_result_file_are_plain_values() -> None:
    with pytest.raises(ValueError):
        InstanceReport(backend="x", repetition=0, image_id="i", limits={"cpus": {"nested": 1}})


def test_a_judged_only_lifecycle_plan_says_where_the_lifecycle_workloads_ran(
    make_realistic,
) -> None:
    from vmvc.results import BackendRecord

    doc = footed(make_realistic())
    doc.backend_info["podman"] = BackendRecord(label="podman", kind="container", display_name="p")
    doc.backend_info["lxc"] = BackendRecord(label="system", kind="system", display_name="l")
    assert "lifecycle workloads" not in dict(footing_rows(doc))  # "all" (or older): no row
    doc.config["run"]["lifecycle_backends"] = "judged"
    row = dict(footing_rows(doc))["lifecycle workloads"]
    assert row.startswith("on the backends the claims compare only (native, docker, libvirt)")
    assert "; not on podman, lxc (isolation on every backend" in row
    assert "lifecycle workloads" in render_markdown(doc)
    assert "steady workloads (cpu, memory, I/O)" not in dict(footing_rows(doc))
    assert "measured boots" not in dict(footing_rows(doc))
    doc.config["run"]["steady_backends"] = "judged"
    doc.config["run"]["spectrum_repetitions"] = 4
    rows = dict(footing_rows(doc))
    assert "; not on podman, lxc" in rows["steady workloads (cpu, memory, I/O)"]
    assert rows["measured boots"].startswith("podman, lxc: 4 (start-up and footprint")
    assert "measured boots" in render_markdown(doc)
