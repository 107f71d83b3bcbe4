"""Disk I/O: fio direct I/O on the instance's data storage (VM virtio disk, container bind
mount, native directory): 4k random read/write IOPS and latency, 1M sequential bandwidth.

Every sample carries the semantics fio actually ran, read back from its own report (direct,
ioengine, iodepth, fsync, end_fsync, file size, runtime, ramp-up), and whether the run was
sized past the caches (``past_caches``: a file of >= 1 GiB, every one of the four jobs
measured >= 5 s after its ramp-up, so >= 20 s of measured I/O per run; see vmvc.config);
a smaller run (the quick profile) says so instead of passing for a disk measurement.
"""

from __future__ import annotations

import json
import re
from typing import Any

from vmvc.bench.base import DATA_DIR, Measurement, ParseError
from vmvc.config import IO_PAST_CACHES_FILE_MIB, IO_PAST_CACHES_JOB_S, Config

# fio job name -> (direction, metric prefix)
JOBS = {
    "randread_4k": ("read", "randread_4k"),
    "randwrite_4k": ("write", "randwrite_4k"),
    "seqread_1m": ("read", "seqread_1m"),
    "seqwrite_1m": ("write", "seqwrite_1m"),
}
SEMANTICS = ("ioengine", "direct", "iodepth", "fsync", "end_fsync")
SIZE = re.compile(r"^(\d+)([KMG]?)i?B?$", re.IGNORECASE)


def _size_mib(text: str | None) -> float | None:
    """fio's size option ("1024M", "1G") in MiB."""
    match = SIZE.match(text or "")
    if not match:
        return None
    scale = {"": 2**-20, "K": 2**-10, "M": 1, "G": 2**10}[match.group(2).upper()]
    return int(match.group(1)) * scale


def _int_option(options: dict[str, Any], key: str) -> int | None:
    try:
        return int(str(options[key]))
    except (KeyError, ValueError):
        return None


def semantics(report: dict[str, Any], job: dict[str, Any], run_s: float) -> dict[str, Any]:
    """What this fio job ran with, from fio's own echo of its options; `run_s` is the measured
    time of the run's jobs together (recorded, for the reader)."""
    options = {**report.get("global options", {}), **job.get("job options", {})}
    meta: dict[str, Any] = {"fio_version": report.get("fio version")}
    for key in SEMANTICS:
        value = options.get(key)
        meta[key] = int(value) if isinstance(value, str) and value.isdigit() else value
    meta["file_size_mib"] = _size_mib(options.get("size"))
    meta["runtime_s"] = job.get("job_runtime", 0) / 1000.0  # fio counts after the ramp
    meta["ramp_s"] = _int_option(options, "ramp_time") or 0
    meta["run_runtime_s"] = round(run_s, 3)
    meta["past_caches"] = bool(
        meta["file_size_mib"] is not None
        and meta["file_size_mib"] >= IO_PAST_CACHES_FILE_MIB
        and meta["runtime_s"] >= IO_PAST_CACHES_JOB_S
        and meta["ramp_s"] > 0
    )
    return meta


class IoWorkload:
    name = "io"

    def command(self, config: Config) -> list[str]:
        io = config.workload.io
        return [str(io.file_size_mib), str(io.runtime_s), str(io.ramp_s), DATA_DIR]

    def parse(self, lines: list[str]) -> list[Measurement]:
        text = "\n".join(lines)
        start, end = text.find("{"), text.rfind("}")
        if start < 0:
            raise ParseError("fio printed no JSON report")
        try:
            report = json.loads(text[start : end + 1])
        except json.JSONDecodeError as exc:
            raise ParseError(f"fio JSON report is malformed ({exc.msg})") from None
        jobs = {job["jobname"]: job for job in report.get("jobs", [])}
        run_s = sum(jobs[name].get("job_runtime", 0) for name in JOBS if name in jobs) / 1000.0
        measurements = []
        for job_name, (direction, prefix) in JOBS.items():
            job = jobs.get(job_name)
            if job is None:
                raise ParseError(f"fio report has no job '{job_name}'")
            if job.get("error"):
                raise ParseError(f"fio job '{job_name}' failed with error {job['error']}")
            stats = job[direction]
            meta = semantics(report, job, run_s)
            if prefix.endswith("4k"):
                measurements.append(
                    Measurement(f"{prefix}_iops", stats["iops"], "IOPS", True, meta)
                )
                clat = stats.get("clat_ns", {})
                median_ns = clat.get("percentile", {}).get("50.000000", clat.get("mean", 0.0))
                measurements.append(
                    Measurement(f"{prefix}_lat_us", median_ns / 1000.0, "us", False, meta)
                )
            else:
                # fio's "bw" is KiB/s
                measurements.append(
                    Measurement(f"{prefix}_mib_s", stats["bw"] / 1024.0, "MiB/s", True, meta)
                )
        return measurements
