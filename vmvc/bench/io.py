"""Disk I/O: fio direct I/O on the instance's data storage (VM virtio disk, container bind
mount, native directory): 4k random read/write IOPS and latency, 1M sequential bandwidth."""

from __future__ import annotations

import json

from vmvc.bench.base import DATA_DIR, Measurement, ParseError
from vmvc.config import Config

# fio job name -> (direction, metric prefix)
JOBS = {
    "randread_4k": ("read", "randread_4k"),
    "randwrite_4k": ("write", "randwrite_4k"),
    "seqread_1m": ("read", "seqread_1m"),
    "seqwrite_1m": ("write", "seqwrite_1m"),
}


class IoWorkload:
    name = "io"

    def command(self, config: Config) -> list[str]:
        io = config.workload.io
        return [str(io.file_size_mib), str(io.runtime_s), DATA_DIR]

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
        measurements = []
        for job_name, (direction, prefix) in JOBS.items():
            job = jobs.get(job_name)
            if job is None:
                raise ParseError(f"fio report has no job '{job_name}'")
            if job.get("error"):
                raise ParseError(f"fio job '{job_name}' failed with error {job['error']}")
            stats = job[direction]
            meta = {"fio_version": report.get("fio version"), "direct": True, "engine": "psync"}
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
