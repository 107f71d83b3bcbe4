"""vmvc.claims: every verdict outcome of the threshold claims, and the emulation label."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from vmvc import claims, stats
from vmvc.config import Thresholds
from vmvc.results import InstanceReport

STEADY = (
    "cpu/events_per_s",
    "memory/bandwidth_mib_s",
    "io/randread_4k_iops",
    "io/randwrite_4k_iops",
)
NATIVE = {
    "cpu/events_per_s": 2313,
    "memory/bandwidth_mib_s": 4961,
    "io/randread_4k_iops": 33891,
    "io/randwrite_4k_iops": 30802,
}


def noisy(center: float, n: int, rng: np.random.Generator, spread: float) -> list[float]:
    return [float(v) for v in center * rng.uniform(1 - spread, 1 + spread, n)]


def verdict_of(doc, claim: str, thresholds: Thresholds | None = None) -> dict:
    result = {v.claim: v for v in claims.evaluate(doc, stats.summarize(doc), thresholds)}
    return result[claim]


def two_backends(build_doc, key, centers, *, spread=0.05, n=7, seed=0, accel="kvm"):
    """A document with one metric for the given {backend: typical value}."""
    rng = np.random.default_rng(seed)
    data = {b: {key: noisy(center, n, rng, spread)} for b, center in centers.items()}
    return build_doc(data, accel=accel)


# ---------------------------------------------------------------- the full realistic run


def test_realistic_tcg_run(realistic_doc):
    verdicts = claims.evaluate(realistic_doc, stats.summarize(realistic_doc), Thresholds())
    assert [v.claim for v in verdicts] == [f"C{i:02d}" for i in range(1, 11)]
    # Under TCG every claim whose VM figure depends on guest speed or on QEMU's memory
    # (translation cache) is not judged; facts and C06 keep their verdicts.
    assert {v.claim: v.verdict for v in verdicts} == {
        "C01": "not measured under KVM",
        "C02": "not measured under KVM",
        "C03": "not measured under KVM",
        "C04": "not measured under KVM",
        "C05": "not measured under KVM",
        "C06": "reported",
        "C07": "fact",
        "C08": "not measured under KVM",
        "C09": "fact",
        "C10": "not measured under KVM",
    }
    for verdict in verdicts:
        assert set(verdict.model_dump()) == {
            "claim", "title", "verdict", "qualifier", "text", "numbers", "host", "accel",
            "emulated", "compared",
        }  # fmt: skip
        assert verdict.title and verdict.text
    json.dumps([v.model_dump() for v in verdicts], allow_nan=False)


def test_realistic_kvm_run(make_realistic):
    verdicts = claims.evaluate(make_realistic(accel="kvm"))  # a fresh summary by default
    assert {v.claim: v.verdict for v in verdicts} == {
        "C01": "confirmed",
        "C02": "confirmed",
        "C03": "confirmed",
        "C04": "refuted",  # the clone step alone is about as fast (issue 13)
        "C05": "confirmed",
        "C06": "reported",
        "C07": "fact",
        "C08": "reported",
        "C09": "fact",
        "C10": "confirmed",
    }


def test_empty_document_is_not_measured_never_confirmed(build_doc):
    verdicts = claims.evaluate(build_doc({}), None, Thresholds())
    assert {v.verdict for v in verdicts} == {"not measured"}
    assert all("emulated" not in v.text for v in verdicts)


# ---------------------------------------------------------------- emulation label


def test_emulated_run_says_so_in_every_verdict(realistic_doc):
    for verdict in claims.evaluate(realistic_doc):
        assert verdict.accel == "tcg" and verdict.emulated is True
        assert "emulated (QEMU TCG" in verdict.text


PERFORMANCE = ("C01", "C03", "C04", "C05", "C08")


@pytest.mark.parametrize("seed", range(5))
def test_tcg_yields_no_performance_verdict(make_realistic, seed):
    verdicts = {v.claim: v for v in claims.evaluate(make_realistic(seed=seed, accel="tcg"))}
    for claim in (*PERFORMANCE, "C02", "C10"):
        verdict = verdicts[claim]
        assert verdict.verdict == "not measured under KVM", verdict
        assert verdict.qualifier == "VM ran under TCG"
        # The emulated figures stay, as context, and the reason is said.
        assert "Not judged" in verdict.text and "for context only" in verdict.text
        assert verdict.numbers
    assert "translation cache" in verdicts["C02"].text
    assert "guest execution speed" in verdicts["C01"].text


def test_acceleration_is_read_per_host(make_realistic):
    # A remote-only run: no local libvirt, so environment.accel is None; the host's own
    # record says TCG. Reading the top-level value would have let C01 be confirmed.
    doc = make_realistic(accel=None, host="lab1")
    doc.environment["hosts"] = {"lab1": {"accel": "tcg"}}
    verdicts = claims.evaluate(doc)
    assert {v.host for v in verdicts} == {"lab1"}
    assert all(v.accel == "tcg" for v in verdicts)
    assert {v.verdict for v in verdicts if v.claim in PERFORMANCE} == {"not measured under KVM"}
    # Acceleration not recorded at all: not taken for KVM either.
    del doc.environment["hosts"]
    unknown = {v.claim: v for v in claims.evaluate(doc)}
    assert unknown["C01"].verdict == "not measured under KVM"
    assert "not recorded" in unknown["C01"].text


def test_a_result_mixing_hosts_gives_verdicts_per_host(make_realistic):
    doc = make_realistic(accel="kvm")
    remote = make_realistic(seed=1, accel=None, host="lab1")
    doc.samples += remote.samples
    doc.environment["hosts"] = {"lab1": {"accel": "tcg"}}
    verdicts = claims.evaluate(doc)
    assert [v.host for v in verdicts] == ["local"] * 10 + ["lab1"] * 10
    by_host = {(v.host, v.claim): v.verdict for v in verdicts}
    assert by_host[("local", "C01")] == "confirmed"
    assert by_host[("lab1", "C01")] == "not measured under KVM"


def test_three_repetitions_never_confirm_nor_print_95_percent(make_realistic):
    for seed in range(5):
        doc = make_realistic(seed=seed, repetitions=3, accel="kvm")
        for verdict in claims.evaluate(doc):
            assert verdict.verdict not in ("confirmed", "refuted"), verdict
            # no "95% CI" / "95 %" (a median such as "2.95 s" may contain the digits)
            assert re.search(r"95 ?%", verdict.text) is None, verdict.text
            if verdict.verdict == "inconclusive":
                assert verdict.qualifier.startswith("n = 3; needs \N{GREATER-THAN OR EQUAL TO}")
                assert verdict.text.startswith(f"Inconclusive ({verdict.qualifier})")


def test_kvm_run_has_no_emulation_note(make_realistic):
    doc = make_realistic(accel="kvm")
    for verdict in claims.evaluate(doc):
        assert verdict.accel == "kvm" and verdict.emulated is False
        assert "emulated" not in verdict.text


# ---------------------------------------------------------------- C01 start to ready


@pytest.mark.parametrize(
    ("vm", "spread", "expected"),
    [(8.56, 0.1, "confirmed"), (0.25, 0.05, "refuted"), (0.42, 0.2, "inconclusive")],
)
def test_c01_outcomes(build_doc, vm, spread, expected):
    doc = two_backends(
        build_doc, "startup/total_s", {"docker": 0.21, "libvirt": vm}, spread=spread, n=5
    )
    verdict = verdict_of(doc, "C01")
    assert verdict.verdict == expected, verdict.text
    numbers = verdict.numbers
    assert numbers["ratio"] == pytest.approx(vm / 0.21, rel=0.3)
    assert numbers["threshold"] == 2.0
    assert numbers["ci_low"] <= numbers["ratio"] <= numbers["ci_high"]


def test_c01_not_measured_without_containers(build_doc):
    doc = two_backends(build_doc, "startup/total_s", {"libvirt": 8.56})
    verdict = verdict_of(doc, "C01")
    assert verdict.verdict == "not measured"
    assert "container startup/total_s" in verdict.text


def test_c01_names_the_largest_vm_phase(realistic_doc):
    verdict = verdict_of(realistic_doc, "C01")
    assert "Largest VM phase: firmware + kernel" in verdict.text
    assert set(verdict.numbers["vm_phases"]) == {
        "create_s", "firmware_kernel_s", "initramfs_s", "userspace_s"
    }  # fmt: skip


def test_c01_threshold_comes_from_config(make_realistic):
    strict = Thresholds(c01_startup_ratio=100.0)
    assert verdict_of(make_realistic(accel="kvm"), "C01", strict).verdict == "refuted"


def test_c01_single_repetition_is_inconclusive(build_doc):
    doc = build_doc(
        {"docker": {"startup/total_s": [0.21]}, "libvirt": {"startup/total_s": [8.56]}},
        accel="kvm",
    )
    verdict = verdict_of(doc, "C01")
    assert verdict.verdict == "inconclusive"
    assert verdict.qualifier == "n = 1; needs \N{GREATER-THAN OR EQUAL TO} 4"
    assert "no interval" in verdict.text


# ---------------------------------------------------------------- C02 first instance


@pytest.mark.parametrize(
    ("vm", "spread", "expected"),
    [(250.0, 0.05, "confirmed"), (16.0, 0.03, "refuted"), (28.0, 0.25, "inconclusive")],
)
def test_c02_outcomes(build_doc, vm, spread, expected):
    doc = two_backends(
        build_doc, "density/first_instance_mib", {"docker": 14.0, "libvirt": vm}, spread=spread, n=5
    )
    assert verdict_of(doc, "C02").verdict == expected


def test_c02_and_c10_say_how_memory_was_counted(make_realistic):
    verdicts = {v.claim: v for v in claims.evaluate(make_realistic(accel="kvm"))}
    c02, c10 = verdicts["C02"], verdicts["C10"]
    assert c02.text.startswith("Host memory of the first instance:")
    assert "MemAvailable" in c02.text and "breakdown" in c02.text
    assert c02.numbers["basis"] == "host MemAvailable drop with 1 instance"
    # C10 divides by the marginal cost, named with both backends' figures.
    assert "marginal cost per extra instance" in c10.text
    assert re.search(r"over N: container 4\.\d+ MiB, VM 2\d\d MiB\)", c10.text)
    assert c10.numbers["basis"] == "host MemAvailable at start / marginal_mib"
    assert c10.numbers["container_marginal_mib"] == pytest.approx(4.3, rel=0.15)


def test_c02_c10_say_when_the_series_was_within_the_hosts_noise(make_realistic):
    doc = make_realistic(accel="kvm")
    assert "noise" not in verdict_of(doc, "C10").text
    for sample in doc.samples:
        if sample.backend == "docker" and sample.metric == "marginal_mib":
            sample.metadata["above_noise"] = False
    for claim in ("C02", "C10"):
        assert "noise-dominated" in verdict_of(doc, claim).text
        assert "for container:" in verdict_of(doc, claim).text


def test_a_drop_that_is_not_positive_forms_no_ratio(build_doc):
    doc = two_backends(
        build_doc,
        "density/first_instance_mib",
        {"docker": -34.0, "libvirt": 318.0},
        spread=0.01,
        n=5,
    )
    verdict = verdict_of(doc, "C02")
    assert verdict.verdict == "inconclusive"
    assert "was not positive" in verdict.text and "container" in verdict.text
    data = {
        "docker": {"density/marginal_mib": [-22.0] * 5, "density/density_instances": []},
        "libvirt": {"density/marginal_mib": [208.0] * 5, "density/density_instances": [110.0] * 5},
    }
    c10 = verdict_of(build_doc(data, accel="kvm"), "C10")
    assert c10.verdict == "inconclusive" and "marginal_mib" in c10.text


def test_c02_not_measured(build_doc):
    doc = two_backends(build_doc, "density/first_instance_mib", {"docker": 14.0})
    assert verdict_of(doc, "C02").verdict == "not measured"


# ---------------------------------------------------------------- C03 overhead vs native


def steady_doc(build_doc, vm_factor, ct_factor, *, spread=0.02, n=7, seed=1, backends=None):
    rng = np.random.default_rng(seed)
    factors = {"native": 1.0, "docker": ct_factor, "libvirt": vm_factor}
    data = {
        backend: {key: noisy(NATIVE[key] * factor, n, rng, spread) for key in STEADY}
        for backend, factor in factors.items()
        if backends is None or backend in backends
    }
    return build_doc(data, accel="kvm")


def test_c03_confirmed_when_vm_is_slow_and_container_near_native(build_doc):
    verdict = verdict_of(steady_doc(build_doc, vm_factor=0.3, ct_factor=1.0), "C03")
    assert verdict.verdict == "confirmed"
    numbers = verdict.numbers
    assert numbers["vm_overhead_confirmed"] == numbers["vm_resources"] == 4
    assert numbers["container_overhead_confirmed"] == 0
    cpu = numbers["resources"]["cpu/events_per_s"]
    assert cpu["libvirt"]["overhead"] == pytest.approx(0.7, abs=0.03)
    assert cpu["libvirt"]["verdict"] == "confirmed"
    assert cpu["docker"]["verdict"] == "refuted"  # overhead clearly below 5 %: near native
    assert "CPU" in verdict.text


def test_c03_refuted_when_the_vm_is_near_native(build_doc):
    verdict = verdict_of(steady_doc(build_doc, vm_factor=0.99, ct_factor=1.0), "C03")
    assert verdict.verdict == "refuted"
    assert verdict.numbers["vm"] == "refuted"


def test_c03_refuted_when_containers_are_not_near_native(build_doc):
    verdict = verdict_of(steady_doc(build_doc, vm_factor=0.3, ct_factor=0.6), "C03")
    assert verdict.verdict == "refuted"
    assert verdict.numbers["container_near_native"] == "refuted"


def test_c03_inconclusive_when_overhead_straddles_the_threshold(build_doc):
    doc = steady_doc(build_doc, vm_factor=0.95, ct_factor=1.0, spread=0.1, n=5)
    verdict = verdict_of(doc, "C03")
    assert verdict.verdict == "inconclusive", verdict.numbers


def test_c03_not_measured_without_native(build_doc):
    doc = steady_doc(build_doc, 0.3, 1.0, backends={"docker", "libvirt"})
    assert verdict_of(doc, "C03").verdict == "not measured"


def test_c03_container_half_missing_is_said(build_doc):
    doc = steady_doc(build_doc, 0.3, 1.0, backends={"native", "libvirt"})
    verdict = verdict_of(doc, "C03")
    assert verdict.verdict == "confirmed"
    assert "container overhead not measured" in verdict.text


def io_doc(build_doc, seqread: dict[str, float], *, n=7, seed=3):
    """VM clearly slow on CPU and memory; the 1M sequential read per backend as given."""
    rng = np.random.default_rng(seed)
    data = {}
    for backend, factor in {"native": 1.0, "docker": 1.0, "libvirt": 0.3}.items():
        data[backend] = {
            key: noisy(NATIVE[key] * factor, n, rng, 0.02)
            for key in ("cpu/events_per_s", "memory/bandwidth_mib_s")
        }
        data[backend]["io/seqread_1m_mib_s"] = noisy(1000 * seqread[backend], n, rng, 0.02)
    return build_doc(data, accel="kvm")


def test_c03_io_faster_than_native_is_an_anomaly_and_not_counted(build_doc):
    # The recorded quick run: the container read 1M blocks 22 % faster than native.
    doc = io_doc(build_doc, {"native": 1.0, "docker": 1.22, "libvirt": 1.25})
    verdict = verdict_of(doc, "C03")
    numbers = verdict.numbers
    flagged = {(a["backend"], a["resource"]) for a in numbers["anomalies"]}
    assert flagged == {("docker", "io/seqread_1m_mib_s"), ("libvirt", "io/seqread_1m_mib_s")}
    # Neither counts: the VM half rests on CPU and memory alone, the container half too.
    assert "io/seqread_1m_mib_s" not in numbers["resources"]
    assert numbers["vm_resources"] == 2 and numbers["container_resources"] == 2
    assert verdict.verdict == "confirmed"
    assert "ANOMALY (not counted)" in verdict.text
    assert "container 1M sequential read +22%" in verdict.text


def test_c03_io_within_the_noise_threshold_counts_as_usual(build_doc):
    doc = io_doc(build_doc, {"native": 1.0, "docker": 1.03, "libvirt": 0.3})
    numbers = verdict_of(doc, "C03").numbers
    assert numbers["anomalies"] == []
    assert set(numbers["resources"]["io/seqread_1m_mib_s"]) == {"docker", "libvirt"}


def test_c03_anomaly_uses_the_configured_noise_threshold(build_doc):
    doc = io_doc(build_doc, {"native": 1.0, "docker": 1.08, "libvirt": 0.3})
    assert verdict_of(doc, "C03").numbers["anomalies"]  # 8 % > the default 5 %
    loose = Thresholds(noise_threshold=0.10)
    assert verdict_of(doc, "C03", loose).numbers["anomalies"] == []


def test_c03_faster_cpu_or_memory_is_not_an_io_anomaly(build_doc):
    # Only disk I/O has a physical floor (the same disk under more layers); a container's
    # CPU a few % above native is noise and stays counted.
    verdict = verdict_of(steady_doc(build_doc, vm_factor=0.3, ct_factor=1.08), "C03")
    assert not any(
        a["resource"].startswith(("cpu", "memory")) for a in verdict.numbers["anomalies"]
    )
    assert "cpu/events_per_s" in verdict.numbers["resources"]


def test_c03_counts_memory_latency_lower_is_better(build_doc):
    rng = np.random.default_rng(5)
    data = {
        backend: {"memory/latency_ns": noisy(250 * factor, 7, rng, 0.02)}
        for backend, factor in {"native": 1.0, "docker": 1.0, "libvirt": 3.0}.items()
    }
    verdict = verdict_of(build_doc(data, accel="kvm"), "C03")
    latency = verdict.numbers["resources"]["memory/latency_ns"]
    assert latency["libvirt"]["overhead"] == pytest.approx(2.0, abs=0.1)  # 3x slower
    assert latency["libvirt"]["verdict"] == "confirmed"
    assert "memory latency" in verdict.text


# ---------------------------------------------------------------- C05 scale-out slope


def scale_doc(build_doc, curves, *, n=7, spread=0.05, cpus=2, seed=0, accel="kvm"):
    """A document with all_ready_s per N: {backend: {N: typical seconds}}."""
    rng = np.random.default_rng(seed)
    data = {
        b: {f"scale/all_ready_s@N={count}": noisy(v, n, rng, spread) for count, v in c.items()}
        for b, c in curves.items()
    }
    metadata = {
        f"{b}:scale/all_ready_s@N={count}": {"host_cpus": cpus}
        for b, c in curves.items()
        for count in c
    }
    return build_doc(data, accel=accel, metadata=metadata)


KNEE = {1: 6.5, 2: 6.6, 5: 16.3}  # emulated VMs on 2 cores: flat, then rising
LINE = {1: 0.28, 2: 0.40, 5: 0.85}  # containers: a little more per instance


@pytest.mark.parametrize(
    ("docker", "libvirt", "expected"),
    [
        (LINE, KNEE, "confirmed"),
        (KNEE, LINE, "refuted"),
        ({1: 1.0, 2: 1.1, 5: 1.5}, {1: 1.0, 2: 1.1, 5: 1.5 * 2.0}, "inconclusive"),
    ],
)
def test_c05_judges_the_ratio_at_the_largest_common_count(build_doc, docker, libvirt, expected):
    doc = scale_doc(build_doc, {"docker": docker, "libvirt": libvirt})
    verdict = verdict_of(doc, "C05")
    assert verdict.verdict == expected, verdict.text
    assert verdict.numbers["largest_common_n"] == 5
    assert verdict.numbers["ratio"] == pytest.approx(libvirt[5] / docker[5], rel=0.12)
    assert set(verdict.numbers["per_n"]) == {"1", "2", "5"}


def test_c05_uses_the_largest_count_both_measured(build_doc):
    # The VM's N=5 was refused by the memory guard: the verdict rests on N=2.
    doc = scale_doc(build_doc, {"docker": LINE, "libvirt": {1: 6.5, 2: 6.6}})
    numbers = verdict_of(doc, "C05").numbers
    assert numbers["largest_common_n"] == 2
    assert numbers["ratio"] == pytest.approx(6.6 / 0.40, rel=0.12)


def test_c05_names_the_knee_and_no_slope_across_it(build_doc):
    doc = scale_doc(build_doc, {"docker": LINE, "libvirt": KNEE})
    verdict = verdict_of(doc, "C05")
    assert verdict.numbers["knee_at_cores"] == ["libvirt"]
    vm = verdict.numbers["curves"]["libvirt"]
    assert vm["knee"] and not vm["fits"] and vm["slope"] is None
    assert "bends at the 2 host CPUs" in verdict.text
    assert "CPU saturation" in verdict.text
    container = verdict.numbers["curves"]["docker"]
    assert container["fits"] and container["slope"] == pytest.approx(0.144, rel=0.1)
    assert "slopes" not in verdict.numbers  # a slope on one side only is no comparison


def test_c05_with_two_counts_shows_the_curve_and_no_slope(build_doc):
    doc = scale_doc(build_doc, {"docker": {1: 0.28, 3: 0.5}, "libvirt": {1: 6.5, 3: 10.0}})
    verdict = verdict_of(doc, "C05")
    assert "2 instance counts cannot show whether a line fits" in verdict.text
    assert all(c["slope"] is None for c in verdict.numbers["curves"].values())


def test_c05_not_measured(build_doc):
    doc = scale_doc(build_doc, {"docker": LINE})
    verdict = verdict_of(doc, "C05")
    assert verdict.verdict == "not measured"
    assert "no VM scale/all_ready_s" in verdict.text


# ---------------------------------------------------------------- C10 density


@pytest.mark.parametrize(
    ("docker", "libvirt", "spread", "expected"),
    [(1795, 95.6, 0.05, "confirmed"), (100, 95, 0.02, "refuted"), (200, 100, 0.3, "inconclusive")],
)
def test_c10_outcomes(build_doc, docker, libvirt, spread, expected):
    doc = two_backends(
        build_doc,
        "density/density_instances",
        {"docker": docker, "libvirt": libvirt},
        spread=spread,
        n=5,
    )
    verdict = verdict_of(doc, "C10")
    assert verdict.verdict == expected, verdict.text
    assert verdict.numbers["ratio"] == pytest.approx(docker / libvirt, rel=0.35)


def test_c10_not_measured(build_doc):
    doc = two_backends(build_doc, "density/density_instances", {"libvirt": 95.6})
    assert verdict_of(doc, "C10").verdict == "not measured"


# ---------------------------------------------------------------- the rest, briefly


def test_c04_judges_the_clone_step_alone(build_doc):
    # Issue 13's evidence: the clone itself about 1.07x, the boot after it 36x (that is C01).
    rng = np.random.default_rng(3)
    data = {
        "docker": {
            "clone/clone_s": noisy(0.030, 7, rng, 0.05),
            "clone/clone_to_ready_s": noisy(0.27, 7, rng, 0.05),
        },
        "libvirt": {
            "clone/clone_s": noisy(0.032, 7, rng, 0.05),
            "clone/clone_to_ready_s": noisy(8.61, 7, rng, 0.05),
        },
    }
    verdict = verdict_of(build_doc(data, accel="kvm"), "C04")
    assert verdict.verdict == "refuted", verdict.text
    clone = {b: [s.value for s in verdict_doc_samples(data, b)] for b in data}
    assert verdict.numbers["ratio"] == pytest.approx(
        np.median(clone["libvirt"]) / np.median(clone["docker"])
    )
    low, high = stats.ratio_ci(clone["libvirt"], clone["docker"])
    assert (verdict.numbers["ci_low"], verdict.numbers["ci_high"]) == (
        pytest.approx(low),
        pytest.approx(high),
    )
    assert "judged by C01, not here" in verdict.text
    assert verdict.numbers["clone_to_ready_medians"]["libvirt"] > 8


def verdict_doc_samples(data, backend):
    """The clone_s values of `backend` as sample-like objects (value attribute)."""

    class Value:
        def __init__(self, value: float) -> None:
            self.value = value

    return [Value(v) for v in data[backend]["clone/clone_s"]]


def test_c04_is_not_measured_without_the_clone_step(build_doc):
    data = {
        "docker": {"clone/clone_to_ready_s": [0.27] * 5},
        "libvirt": {"clone/clone_to_ready_s": [8.6] * 5},
    }
    verdict = verdict_of(build_doc(data, accel="kvm"), "C04")
    assert verdict.verdict == "not measured"
    assert "clone/clone_s" in verdict.text


def test_c07_and_c09_facts(realistic_doc, build_doc):
    c07 = verdict_of(realistic_doc, "C07")
    assert c07.verdict == "fact"
    assert c07.numbers["docker"]["shares_host_kernel"] is True
    assert c07.numbers["libvirt"]["shares_host_kernel"] is False
    c09 = verdict_of(realistic_doc, "C09")
    assert c09.verdict == "fact"
    assert "its own kernel 6.1.0-21-amd64" in c09.text
    no_facts = two_backends(build_doc, "cpu/events_per_s", {"docker": 1.0})
    assert verdict_of(no_facts, "C07").verdict == "not measured"
    assert verdict_of(no_facts, "C09").verdict == "not measured"


def test_c06_and_c08_are_reported(realistic_doc, make_realistic):
    c06 = verdict_of(realistic_doc, "C06")
    assert c06.verdict == "reported"
    assert set(c06.numbers) == {"uncompressed", "compressed", "compressed_compressor"}
    for form in ("uncompressed", "compressed"):
        assert set(c06.numbers[form]) == {"export_bytes", "export_s", "import_s"}
    assert c06.numbers["compressed_compressor"] == "zstd -3"
    # One sentence per form, uncompressed first, the compressor named.
    assert c06.text.startswith("Uncompressed (no compression): Export size: VM ")
    assert "Compressed (zstd level 3 on both): Export size: VM " in c06.text
    assert "MiB" in c06.text
    assert verdict_of(realistic_doc, "C08").verdict == "not measured under KVM"  # TCG
    kvm = make_realistic(accel="kvm")
    assert verdict_of(kvm, "C08").verdict == "reported"


def _portability(build_doc, vm: dict[str, list[float]], ct: dict[str, list[float]]):
    return build_doc(
        {
            "libvirt": {f"portability/{k}": v for k, v in vm.items()},
            "docker": {f"portability/{k}": v for k, v in ct.items()},
        },
        accel="kvm",
    )


def test_c06_compares_each_form_with_the_same_form_only(build_doc):
    # Per form the VM/container ratio is 1.0 (uncompressed) and 1.5 (compressed); a ratio
    # across forms would be 0.45 or 3.33, a pooled one something else again.
    doc = _portability(
        build_doc,
        {"export_bytes@uncompressed": [2.0e8] * 4, "export_bytes@compressed": [9.0e7] * 4},
        {"export_bytes@uncompressed": [2.0e8] * 4, "export_bytes@compressed": [6.0e7] * 4},
    )
    verdict = verdict_of(doc, "C06")
    assert verdict.verdict == "reported"
    assert verdict.numbers["uncompressed"]["export_bytes"]["ratio"] == pytest.approx(1.0)
    assert verdict.numbers["compressed"]["export_bytes"]["ratio"] == pytest.approx(1.5)
    uncompressed, compressed = verdict.text.split("Compressed (")
    assert "1.00\N{MULTIPLICATION SIGN}" in uncompressed
    assert "1.50\N{MULTIPLICATION SIGN}" in compressed
    for crossed in ("0.45", "0.450", "3.33"):
        assert crossed not in verdict.text


def test_c06_reports_no_form_that_only_one_side_was_measured_in(build_doc):
    doc = _portability(
        build_doc,
        {"export_bytes@compressed": [7.0e7] * 4},
        {"export_bytes@uncompressed": [2.0e8] * 4},
    )
    verdict = verdict_of(doc, "C06")
    assert verdict.verdict == "not measured" and verdict.numbers == {}
    assert "VM portability/export_bytes@uncompressed" in verdict.text


def test_c06_does_not_compare_exports_recorded_in_each_engines_own_form(build_doc):
    # An older vmvc: a compressed qcow2 against a plain tar, no form in the metadata.
    doc = _portability(build_doc, {"export_bytes": [7.7e7] * 4}, {"export_bytes": [1.9e8] * 4})
    verdict = verdict_of(doc, "C06")
    assert verdict.verdict == "not measured"
    assert "each engine's own form" in verdict.text


# ---------------------------------------------------------------- C03: the guest's own kernel


def with_kernels(doc, **kernels: str):
    """Each backend's instances report this kernel from inside (as InstanceReport does)."""
    doc.instances = [
        InstanceReport(backend=backend, repetition=0, image_id="sha256:1111", kernel=kernel)
        for backend, kernel in kernels.items()
    ]
    return doc


def test_c03_flags_a_guest_kernel_other_than_the_hosts(build_doc):
    doc = with_kernels(
        steady_doc(build_doc, vm_factor=0.3, ct_factor=1.0),
        native="6.18.44-fc-v595",
        docker="6.18.44-fc-v595",
        libvirt="6.1.0-57-cloud-amd64",
    )
    verdict = verdict_of(doc, "C03")
    assert verdict.numbers["kernels"] == {
        "guest": "6.1.0-57-cloud-amd64",
        "host": "6.18.44-fc-v595",
        "differs": True,
    }
    assert "Kernel differs: 6.1 guest vs 6.18 host" in verdict.text
    assert "part of the overhead may be the kernel" in verdict.text
    assert verdict.verdict == "confirmed"  # a flag, not a change of verdict


def test_c03_names_full_releases_when_only_the_package_differs(build_doc):
    doc = with_kernels(
        steady_doc(build_doc, vm_factor=0.3, ct_factor=1.0),
        native="6.1.0-18-amd64",
        libvirt="6.1.0-57-cloud-amd64",
    )
    assert "Kernel differs: 6.1.0-57-cloud-amd64 guest vs 6.1.0-18-amd64 host;" in (
        verdict_of(doc, "C03").text
    )


def test_c03_says_nothing_when_guest_and_host_run_the_same_kernel(build_doc):
    # a Debian host whose guest boots the host's own kernel package
    doc = with_kernels(
        steady_doc(build_doc, vm_factor=0.3, ct_factor=1.0),
        native="6.1.0-18-amd64",
        libvirt="6.1.0-18-amd64",
    )
    verdict = verdict_of(doc, "C03")
    assert verdict.numbers["kernels"]["differs"] is False
    assert "Kernel differs" not in verdict.text


def test_c03_takes_the_host_kernel_from_the_environment_without_native(build_doc):
    doc = with_kernels(steady_doc(build_doc, vm_factor=0.3, ct_factor=1.0), libvirt="6.1.0-57")
    doc.instances = [i for i in doc.instances if i.backend == "libvirt"]
    kernels = verdict_of(doc, "C03").numbers["kernels"]
    assert kernels["host"] == doc.environment["kernel"]
    assert kernels["differs"] is True


def test_c03_keeps_the_kernel_flag_when_not_judged_under_tcg(build_doc):
    doc = with_kernels(
        steady_doc(build_doc, vm_factor=0.3, ct_factor=1.0),
        native="6.18.44-fc-v595",
        libvirt="6.1.0-57-cloud-amd64",
    )
    doc.environment["accel"] = "tcg"
    verdict = verdict_of(doc, "C03")
    assert verdict.verdict == "not measured under KVM"
    assert "Kernel differs: 6.1 guest vs 6.18 host" in verdict.text


def test_c05_names_a_knee_on_both_sides(build_doc):
    # Measured here under load: containers bend at the cores too (0.28, 0.26, 0.58 s).
    doc = scale_doc(build_doc, {"docker": {1: 0.28, 2: 0.26, 5: 0.58}, "libvirt": KNEE})
    verdict = verdict_of(doc, "C05")
    assert set(verdict.numbers["knee_at_cores"]) == {"docker", "libvirt"}
    assert "The VM and container curves are flat up to the host's 2 CPUs and rise" in verdict.text
