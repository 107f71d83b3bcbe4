"""Memory bandwidth: sysbench memory (sequential writes of blocks), MiB/s."""

from __future__ import annotations

import re

from vmvc.bench.base import Measurement, ParseError
from vmvc.config import Config

TRANSFERRED = re.compile(r"([0-9.]+) MiB transferred \(([0-9.]+) MiB/sec\)")


class MemoryWorkload:
    name = "memory"

    def command(self, config: Config) -> list[str]:
        memory = config.workload.memory
        threads = config.workload.cpu.threads
        return [
            str(memory.block_size_kib),
            str(memory.total_size_mib),
            str(memory.seconds),
            str(threads),
        ]

    def parse(self, lines: list[str]) -> list[Measurement]:
        for line in lines:
            match = TRANSFERRED.search(line)
            if match:
                return [
                    Measurement(
                        "bandwidth_mib_s",
                        float(match.group(2)),
                        "MiB/s",
                        True,
                        {"transferred_mib": float(match.group(1))},
                    )
                ]
        raise ParseError("sysbench memory output has no 'MiB transferred' line")
