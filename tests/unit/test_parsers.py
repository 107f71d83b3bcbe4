"""Workload parsers on output recorded from real runs (tests/data, one file per backend)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmvc.bench import footprint, startup
from vmvc.bench.base import ParseError
from vmvc.bench.cpu import CpuWorkload
from vmvc.bench.io import IoWorkload
from vmvc.bench.memory import MemoryWorkload
from vmvc.config import load_config

DATA = Path(__file__).resolve().parents[1] / "data"
BACKENDS = ("native", "docker", "libvirt")


def lines(name: str) -> list[str]:
    return (DATA / name).read_text().splitlines()


@pytest.mark.parametrize("backend", BACKENDS)
def test_cpu_parses_events_per_second(backend: str) -> None:
    [m] = CpuWorkload().parse(lines(f"{backend}-cpu.txt"))
    assert m.metric == "events_per_s" and m.unit == "events/s" and m.higher_is_better
    assert 100 < m.value < 100_000


def test_cpu_value_is_exactly_what_sysbench_printed() -> None:
    text = lines("libvirt-cpu.txt")
    printed = next(line for line in text if "events per second" in line).split(":")[1].strip()
    [m] = CpuWorkload().parse(text)
    assert m.value == float(printed)


@pytest.mark.parametrize("backend", BACKENDS)
def test_memory_parses_bandwidth(backend: str) -> None:
    [m] = MemoryWorkload().parse(lines(f"{backend}-memory.txt"))
    assert m.metric == "bandwidth_mib_s" and m.unit == "MiB/s"
    assert m.value > 100
    assert m.metadata["transferred_mib"] > 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_io_parses_all_fio_jobs(backend: str) -> None:
    measured = {m.metric: m for m in IoWorkload().parse(lines(f"{backend}-io.txt"))}
    assert set(measured) == {
        "randread_4k_iops",
        "randwrite_4k_iops",
        "randread_4k_lat_us",
        "randwrite_4k_lat_us",
        "seqread_1m_mib_s",
        "seqwrite_1m_mib_s",
    }
    assert measured["randread_4k_iops"].higher_is_better
    assert not measured["randread_4k_lat_us"].higher_is_better
    assert all(m.value > 0 for m in measured.values())
    # The prefill job is not a measurement (it only lays the file out).
    assert not any("prefill" in name for name in measured)


def test_io_bandwidth_is_converted_from_kib() -> None:
    import json

    text = "\n".join(lines("native-io.txt"))
    report = json.loads(text[text.index("{") :])
    job = next(j for j in report["jobs"] if j["jobname"] == "seqread_1m")
    measured = {m.metric: m.value for m in IoWorkload().parse(lines("native-io.txt"))}
    assert measured["seqread_1m_mib_s"] == pytest.approx(job["read"]["bw"] / 1024)


@pytest.mark.parametrize(
    ("workload", "text", "message"),
    [
        (CpuWorkload(), ["sysbench: command not found"], "events per second"),
        (MemoryWorkload(), ["FATAL: out of memory"], "MiB transferred"),
        (IoWorkload(), ["fio: no such file"], "no JSON"),
        (IoWorkload(), ['{"jobs": [{"jobname": "prefill"}]}'], "no job"),
        (IoWorkload(), ['{"jobs": [ broken'], "malformed"),
    ],
)
def test_parsers_reject_unexpected_output(workload: object, text: list[str], message: str) -> None:
    with pytest.raises(ParseError, match=message):
        workload.parse(text)  # type: ignore[attr-defined]


def test_commands_are_built_from_config() -> None:
    config = load_config("quick")
    assert CpuWorkload().command(config) == ["1", str(config.workload.cpu.seconds), "10000"]
    assert IoWorkload().command(config)[-1] == "/data"


def test_startup_and_footprint_measurements_keep_phase_order() -> None:
    phases = {"create_s": 0.3, "firmware_kernel_s": 5.0, "initramfs_s": 0.6, "total_s": 6.1}
    measured = startup.measurements(phases)
    assert [m.metric for m in measured] == list(phases)
    assert [m.metadata["phase"] for m in measured] == [True, True, True, False]
    memory = footprint.measurements(
        {"cgroup_mib": 1.0, "shim_pss_mib": 12.0, "total_mib": 13.0, "processes": 2.0}
    )
    assert {m.metric for m in memory} == {"cgroup_mib", "shim_pss_mib", "total_mib"}
