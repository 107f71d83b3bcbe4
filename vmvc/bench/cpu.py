"""CPU throughput: sysbench cpu (prime search), events per second."""

from __future__ import annotations

import re

from vmvc.bench.base import Measurement, ParseError
from vmvc.config import Config

EVENTS = re.compile(r"events per second:\s*([0-9.]+)")


class CpuWorkload:
    name = "cpu"

    def command(self, config: Config) -> list[str]:
        cpu = config.workload.cpu
        # one thread per vCPU (config refuses any other count): every backend fully loaded
        threads = cpu.threads or config.instance.vcpus
        return [str(threads), str(cpu.seconds), str(cpu.max_prime)]

    def parse(self, lines: list[str]) -> list[Measurement]:
        for line in lines:
            match = EVENTS.search(line)
            if match:
                return [Measurement("events_per_s", float(match.group(1)), "events/s", True)]
        raise ParseError("sysbench cpu output has no 'events per second' line")
