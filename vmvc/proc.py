"""Running host tools: argument lists only (never a shell string), bounded time, clear errors."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path


class ToolError(Exception):
    """A host tool failed; the message names the tool and its last words."""


def run(
    argv: Sequence[str | Path],
    *,
    timeout: float,
    what: str,
    cwd: Path | None = None,
    input_bytes: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    args = [str(a) for a in argv]
    try:
        done = subprocess.run(
            args,
            cwd=cwd,
            input=input_bytes,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise ToolError(f"{what}: '{args[0]}' is not installed (run `make setup`)") from None
    except subprocess.TimeoutExpired:
        raise ToolError(f"{what}: '{args[0]}' did not finish within {timeout:.0f} s") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()[-3:]
        detail = " | ".join(line.strip() for line in tail) or "no output"
        raise ToolError(f"{what} failed (exit {done.returncode}): {detail}")
    return done
