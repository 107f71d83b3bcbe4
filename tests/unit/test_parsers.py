"""Workload parsers on output recorded from real runs (tests/data, one file per backend)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmvc.backends.memory import cgroup_memory, cgroup_v1_memory
from vmvc.bench import footprint, startup
from vmvc.bench.base import ParseError
from vmvc.bench.cpu import CpuWorkload
from vmvc.bench.io import IoWorkload
from vmvc.bench.memory import MemoryWorkload
from vmvc.config import load_config
from vmvc.environment import last_level_cache

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


LLC_32_MIB = 32 * 2**20  # this machine's L3 (tests/data/sysfs-cpu0-cache)


@pytest.mark.parametrize("backend", BACKENDS)
def test_memory_parses_bandwidth_and_latency(backend: str) -> None:
    measured = {
        m.metric: m for m in MemoryWorkload(LLC_32_MIB).parse(lines(f"{backend}-memory.txt"))
    }
    assert set(measured) == {"bandwidth_mib_s", "copy_mib_s", "latency_ns"}
    triad, latency = measured["bandwidth_mib_s"], measured["latency_ns"]
    assert triad.unit == "MiB/s" and triad.higher_is_better and triad.value > 100
    assert latency.unit == "ns" and not latency.higher_is_better and 10 < latency.value < 10_000
    # The working sets and the LLC they were judged against are in every sample.
    assert triad.metadata["working_set_mib"] == 256 and triad.metadata["llc_bytes"] == LLC_32_MIB
    assert triad.metadata["past_llc"] and triad.metadata["working_set_llc_multiple"] == 8
    assert latency.metadata["page_kib"] == 4 and latency.metadata["stride_bytes"] == 64
    assert latency.metadata["accesses"] > 1_000_000


def test_memory_values_are_exactly_what_memtool_printed() -> None:
    text = lines("libvirt-memory.txt")
    measured = {m.metric: m.value for m in MemoryWorkload(LLC_32_MIB).parse(text)}
    assert measured == {"bandwidth_mib_s": 585.0, "copy_mib_s": 1854.0, "latency_ns": 393.08}


def test_memory_working_set_below_4x_llc_is_not_past_the_cache() -> None:
    # The same 256 MiB on a host with a 96 MiB L3 (3D V-Cache parts) is cache-sized.
    [triad, *_] = MemoryWorkload(96 * 2**20).parse(lines("native-memory.txt"))
    assert triad.metadata["past_llc"] is False


def test_last_level_cache_from_recorded_sysfs() -> None:
    llc = last_level_cache(DATA / "sysfs-cpu0-cache")
    assert llc == {"level": 3, "size_bytes": LLC_32_MIB, "shared_cpu_list": "0-1"}
    assert last_level_cache(DATA / "no-such-dir") is None


def test_docker_memory_from_memory_stat_not_the_fuzzy_usage() -> None:
    stat = (DATA / "docker-cgroup-memory.stat").read_text()
    usage = int((DATA / "docker-cgroup-memory.usage_in_bytes").read_text())
    values = {k: int(v) for k, v in (line.split() for line in stat.splitlines())}
    figures = cgroup_v1_memory(values)
    expected = values["total_rss"] + values["total_cache"] - values["total_inactive_file"]
    assert figures["total_mib"] == pytest.approx(expected / 2**20)
    # Recorded on this machine: the counter said 2.9 MiB for 1.2 MiB of charged pages.
    assert abs(figures["total_mib"] - usage / 2**20) > 1
    # Inactive file cache is left out, as `docker stats` does (none in the recording).
    with_inactive = {**values, "total_inactive_file": 2**20}
    assert cgroup_v1_memory(with_inactive)["total_mib"] == pytest.approx(figures["total_mib"] - 1)


def test_docker_cgroup_directory_is_read_through_memory_stat(tmp_path: Path) -> None:
    (tmp_path / "memory.stat").write_text((DATA / "docker-cgroup-memory.stat").read_text())
    (tmp_path / "memory.usage_in_bytes").write_text("999999999\n")
    measured = cgroup_memory([tmp_path / "missing", tmp_path])
    assert measured is not None and measured[1] == str(tmp_path)
    assert measured[0]["total_mib"] < 2  # not the 954 MiB the usage counter claims


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
    # The semantics fio ran with, from its own report, identical on every backend.
    meta = measured["randread_4k_iops"].metadata
    assert {k: meta[k] for k in ("ioengine", "direct", "iodepth", "fsync", "end_fsync")} == {
        "ioengine": "psync",
        "direct": 1,
        "iodepth": 1,
        "fsync": 0,
        "end_fsync": 1,
    }
    # Recorded at the quick profile's size: said to be not past the caches.
    assert (meta["file_size_mib"], meta["ramp_s"]) == (64, 1)
    assert meta["runtime_s"] == pytest.approx(3.0, abs=0.1)  # as fio measured it
    assert meta["past_caches"] is False


def _sized(job_ms: int, ramp: str = "2", size: str = "1G") -> list[str]:
    import json

    text = "\n".join(lines("native-io.txt"))
    report = json.loads(text[text.index("{") :])
    report["global options"]["size"] = size
    for job in report["jobs"]:
        job["job_runtime"] = job_ms
        job.setdefault("job options", {})["ramp_time"] = ramp
    return json.dumps(report).splitlines()


def test_io_sized_past_the_caches_is_said_so() -> None:
    # The default profile's sizing: 1 GiB, 4 jobs x 5 s after a 2 s ramp = 20 s measured.
    measured = IoWorkload().parse(_sized(5000))
    assert all(m.metadata["past_caches"] for m in measured)
    assert measured[0].metadata["file_size_mib"] == 1024
    assert measured[0].metadata["run_runtime_s"] == pytest.approx(20.0)


@pytest.mark.parametrize(
    ("job_ms", "ramp", "size", "why"),
    [
        (4900, "2", "1G", "jobs measured under 5 s (19.6 s together)"),
        (5000, "0", "1G", "no ramp-up"),
        (30000, "5", "1023M", "a file under 1 GiB"),
    ],
)
def test_io_not_past_the_caches(job_ms: int, ramp: str, size: str, why: str) -> None:
    measured = IoWorkload().parse(_sized(job_ms, ramp, size))
    assert not any(m.metadata["past_caches"] for m in measured), why


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
        (MemoryWorkload(1), ["vmvc-memtool: mmap: Cannot allocate memory"], "no 'bandwidth'"),
        (MemoryWorkload(1), [lines("native-memory.txt")[0]], "no 'latency'"),
        (
            MemoryWorkload(1),
            ["vmvc-memtool latency working_set_mib=1", "vmvc-memtool bandwidth"],
            "number",
        ),
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
    io = config.workload.io
    assert IoWorkload().command(config) == ["64", str(io.runtime_s), str(io.ramp_s), "/data"]
    memory = config.workload.memory
    assert MemoryWorkload(1).command(config) == [
        str(memory.working_set_mib),
        str(memory.seconds),
        "1",  # one thread per vCPU
        str(memory.latency_working_set_mib),
        str(memory.latency_seconds),
    ]


def test_startup_and_footprint_measurements_keep_phase_order() -> None:
    phases = {"create_s": 0.3, "firmware_kernel_s": 5.0, "initramfs_s": 0.6, "total_s": 6.1}
    measured = startup.measurements(phases)
    assert [m.metric for m in measured] == list(phases)
    assert [m.metadata["phase"] for m in measured] == [True, True, True, False]
    memory = footprint.measurements(
        {"cgroup_mib": 1.0, "shim_pss_mib": 12.0, "total_mib": 13.0, "processes": 2.0}
    )
    assert {m.metric for m in memory} == {"cgroup_mib", "shim_pss_mib", "total_mib"}
