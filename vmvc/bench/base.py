"""What a workload is: the agent command it runs and how its raw output becomes measurements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from vmvc.config import Config

DATA_DIR = "/data"  # where every backend mounts its writable data storage


@dataclass(frozen=True)
class Measurement:
    metric: str
    value: float
    unit: str
    higher_is_better: bool
    metadata: dict[str, Any] = field(default_factory=dict)


class ParseError(Exception):
    """Tool output did not look as expected; the message quotes what was missing."""


class AgentWorkload(Protocol):
    """A workload that runs inside an instance through the agent."""

    name: str

    def command(self, config: Config) -> list[str]:
        """Arguments for `agent run ID <name> ...` (validated tokens)."""
        ...

    def parse(self, lines: list[str]) -> list[Measurement]: ...
