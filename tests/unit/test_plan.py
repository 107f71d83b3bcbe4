"""The trial plan: what each repetition runs, and how many VM boots a profile costs."""

from __future__ import annotations

from vmvc.config import RunSettings, load_config
from vmvc.intervals import median_min_n, ratio_min_n
from vmvc.plan import (
    instance_workloads,
    isolation_in_warmup,
    judged_backends,
    repetitions_of,
    runs_lifecycle,
    runs_trial,
    spectrum_measures,
    trial_kinds,
    vm_boots,
)

ALL = ["startup", "cpu", "footprint", "clone", "scale", "isolation"]


def test_capped_workloads_run_in_the_first_repetitions_only() -> None:
    caps = {"cpu": 2, "clone": 1}
    assert instance_workloads(ALL, caps, 0) == ["startup", "cpu", "footprint"]
    assert instance_workloads(ALL, caps, 2) == ["startup", "footprint"]
    assert trial_kinds(ALL, caps, 0) == ["instance", "clone", "scale", "isolation"]
    assert trial_kinds(ALL, caps, 1) == ["instance", "scale", "isolation"]


def test_a_warmup_boots_once_and_measures_what_every_repetition_does() -> None:
    caps = {"cpu": 2}
    assert trial_kinds(ALL, caps, -1) == ["instance"]
    assert instance_workloads(ALL, caps, -1) == ["startup", "footprint"]
    # only capped workloads chosen: the warm-up runs them rather than nothing
    assert instance_workloads(["cpu"], caps, -1) == ["cpu"]
    assert trial_kinds(["cpu"], caps, 5) == []  # the runner stops: nothing left to measure


def test_the_first_warmup_observes_isolation_instead_of_a_boot_of_its_own() -> None:
    caps = {"cpu": 2}
    assert instance_workloads(ALL, caps, -1, warmups=1) == ["startup", "footprint", "isolation"]
    assert "isolation" not in trial_kinds(ALL, caps, 0, warmups=1)
    # two warm-ups: the first observes, the second only warms
    assert instance_workloads(ALL, caps, -2, warmups=2)[-1] == "isolation"
    assert instance_workloads(ALL, caps, -1, warmups=2) == ["startup", "footprint"]
    # no warm-up, or no boot in it: isolation keeps its own trial
    assert trial_kinds(ALL, caps, 0, warmups=0)[-1] == "isolation"
    assert not isolation_in_warmup(["isolation", "clone"], 1)
    assert trial_kinds(["isolation", "clone"], {}, 0, warmups=1) == ["isolation", "clone"]
    assert not isolation_in_warmup(ALL, 0)


def test_quick_profile_keeps_its_promises() -> None:
    """Start-up and footprint: >= 6 measured repetitions (95 % intervals need them) and a
    warm-up; the whole run boots few VMs (it booted 34 before issue 14, for 3 repetitions)."""
    quick = load_config("quick")
    assert quick.run.warmups >= 1
    for workload in ("startup", "footprint"):
        assert repetitions_of(workload, quick) >= 6
    boots = vm_boots(quick)
    assert boots["instance"] == quick.run.warmups + quick.run.repetitions
    assert "isolation" not in boots  # observed in the warm-up's boot
    # 16 before density (+2: VMs at N = 1, 2), -1 isolation; -2: recovery's kinds share a boot
    assert boots["recovery"] == 2  # the shared instance and its reboot after the panic
    assert sum(boots.values()) <= 17


def test_default_profile_gives_every_verdict_its_interval() -> None:
    """Every workload gets the values a 95 % ratio interval needs (4 + 4); start-up and
    footprint, measured by every boot, the 6 a median's own interval needs."""
    default = load_config("default")
    for workload in default.workloads:
        if workload != "isolation":  # facts, observed once
            assert repetitions_of(workload, default) >= ratio_min_n(), workload
    for workload in ("startup", "footprint", "cpu", "memory"):
        assert repetitions_of(workload, default) >= median_min_n(), workload


SPECTRUM = {
    "native": "native",
    "docker": "container",
    "podman": "container",
    "gvisor": "sandbox",
    "lxc": "system",
    "libvirt": "vm",
    "libvirt-full": "vm",
}


def test_judged_backends_are_the_first_of_each_compared_kind() -> None:
    assert judged_backends(SPECTRUM) == {"native", "docker", "libvirt"}
    # The order decides: with podman first it is the container the claims take.
    assert judged_backends({"podman": "container", "docker": "container"}) == {"podman"}
    assert judged_backends({"gvisor": "sandbox", "lxc": "system"}) == set()


def test_judged_lifecycle_keeps_instances_and_isolation_everywhere() -> None:
    judged = judged_backends(SPECTRUM)
    for backend in SPECTRUM:
        assert runs_lifecycle("instance", backend, judged, "judged")
        assert runs_lifecycle("isolation", backend, judged, "judged")
        assert runs_lifecycle("clone", backend, judged, "all")
        assert runs_lifecycle("clone", backend, judged, "judged") == (backend in judged)
    # quick stays a first look with every engine installed; default runs everything
    assert load_config("quick").run.lifecycle_backends == "judged"
    assert load_config("default").run.lifecycle_backends == "all"


def test_the_spectrum_gets_fewer_boots_and_no_steady_workloads_when_asked() -> None:
    judged = judged_backends(SPECTRUM)
    first_look = RunSettings(
        lifecycle_backends="judged", steady_backends="judged", spectrum_repetitions=4
    )
    measures = ["startup", "footprint", "cpu", "memory", "io"]
    for backend in SPECTRUM:
        is_judged = backend in judged
        assert runs_trial("instance", backend, 3, judged, first_look)
        assert runs_trial("instance", backend, 4, judged, first_look) == is_judged
        assert runs_trial("instance", backend, -1, judged, first_look)  # warm-ups stay
        assert runs_trial("isolation", backend, 0, judged, first_look)
        assert runs_trial("clone", backend, 0, judged, first_look) == is_judged
        expected = measures if is_judged else ["startup", "footprint"]
        assert spectrum_measures(measures, backend, judged, "judged") == expected
        assert spectrum_measures(measures, backend, judged, "all") == measures
        assert runs_trial("instance", backend, 40, judged, RunSettings())
    quick, default = load_config("quick").run, load_config("default").run
    assert (quick.steady_backends, quick.spectrum_repetitions) == ("judged", 4)
    assert (default.steady_backends, default.spectrum_repetitions) == ("all", None)
    # 4 measured boots: the fewest for a ratio's 95 % interval against native
    assert quick.spectrum_repetitions >= ratio_min_n()
