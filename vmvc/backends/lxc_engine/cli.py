"""The lxc command line as vmvc drives it: its own lxcpath, one bounded call, its text output.

LXC has no daemon and no JSON output: every operation is an `lxc-*` process and what vmvc
needs from them (state, init pid, why a start failed) is parsed from their text,
recorded from lxc 5.0.2 on a Debian 12 host (tests/unit/data/lxc). Every container vmvc
makes lives in vmvc's own lxcpath (`-P`), never in /var/lib/lxc, so `lxc-ls` there lists
vmvc's containers and nobody else's; its owner labels are comment lines of its config, which
lxc itself ignores.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

CALL_TIMEOUT_S = 120.0
TOOLS = ("lxc-start", "lxc-stop", "lxc-destroy", "lxc-info", "lxc-ls")
# What lxc tools print to stderr: "lxc-start: NAME: ../src/lxc/file.c: function: 306 message"
TOOL_LINE = re.compile(r"^lxc-[a-z-]+: [^:]*: [^:]*: [^:]*: \d+ (?P<message>.*)$")
# A container's log (lxc.log.file): "lxc-start NAME 20261201142915.360 ERROR    overlay -
# ../src/lxc/storage/overlay.c:ovl_mount:490 - No such file or directory - Failed to mount ..."
LOG_ERROR = re.compile(r"^lxc-\S+ \S+ \d+\.\d+ ERROR\s+\S+ - \S+ - (?P<message>.*)$")
LABEL_PREFIX = "# vmvc-label "


class LxcError(Exception):
    """An lxc call failed or did not finish; one line for the user."""


@dataclass(frozen=True)
class Lxc:
    """The lxc tools on vmvc's own container path."""

    lxcpath: Path

    def argv(self, tool: str, *args: str, name: str | None = None) -> list[str]:
        named = ["-n", name] if name is not None else []
        return [tool, "-P", str(self.lxcpath), *named, *args]

    def call(
        self, tool: str, *args: str, name: str | None = None, timeout: float = CALL_TIMEOUT_S
    ) -> str:
        """stdout of one lxc tool; LxcError with lxc's own last message if it failed."""
        argv = self.argv(tool, *args, name=name)
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise LxcError(f"{tool} did not finish within {timeout:.0f} s") from None
        except OSError as exc:
            raise LxcError(f"{tool} cannot run: {exc.strerror}") from None
        if done.returncode != 0:
            raise LxcError(f"{tool} failed: {tool_message(done.stderr or done.stdout)}")
        return done.stdout


def installed() -> bool:
    return all(shutil.which(tool) is not None for tool in TOOLS)


def tool_message(text: str) -> str:
    """The message of an lxc tool's last stderr line, without its source-location prefix.

    The last line after a failed daemonized start is the generic "Additional information can
    be obtained ..." hint; the line before it that is not a hint says what happened."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    messages = [_strip_location(line) for line in lines]
    meaningful = [m for m in messages if not _is_hint(m)]
    if meaningful:
        return meaningful[-1]
    return messages[-1] if messages else "no message"


def _strip_location(line: str) -> str:
    match = TOOL_LINE.match(line)
    return match.group("message") if match else line


def _is_hint(message: str) -> bool:
    return message.startswith(("To get more details", "Additional information can be obtained"))


def log_errors(text: str) -> list[str]:
    """The ERROR messages of a container's lxc log, in order."""
    found = []
    for line in text.splitlines():
        match = LOG_ERROR.match(line.strip())
        if match:
            found.append(match.group("message"))
    return found


def first_cause(text: str) -> str:
    """Why a start failed: the first ERROR of its log (the later ones are its consequences:
    "Failed to setup rootfs", "Failed to spawn container")."""
    errors = log_errors(text)
    return errors[0] if errors else ""


def parse_version(text: str) -> str:
    """`lxc-start --version`: "5.0.2"."""
    words = text.split()
    return words[0] if words and re.match(r"^\d+(\.\d+)+", words[0]) else ""


@dataclass(frozen=True)
class ContainerInfo:
    """What `lxc-info -n NAME` says: the container's state and its init's pid (0: none)."""

    name: str
    state: str
    pid: int

    @property
    def running(self) -> bool:
        return self.state == "RUNNING"


def parse_info(text: str) -> ContainerInfo:
    """`lxc-info -n NAME` ("Name:  x", "State:  RUNNING", "PID:  25189", ...)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    if "Name" not in fields or "State" not in fields:
        raise LxcError("lxc-info gave no container state")
    pid = fields.get("PID", "")
    return ContainerInfo(fields["Name"], fields["State"], int(pid) if pid.isdigit() else 0)


def parse_ls(text: str) -> list[ContainerInfo]:
    """`lxc-ls --fancy -F NAME,STATE,PID`: a header line, then one container per line
    (a stopped container's PID is "-"); nothing at all when there is no container."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if not lines or lines[0][:3] != ["NAME", "STATE", "PID"]:
        return []
    found = []
    for words in lines[1:]:
        if len(words) >= 3:
            pid = int(words[2]) if words[2].isdigit() else 0
            found.append(ContainerInfo(words[0], words[1], pid))
    return found


def label_lines(labels: dict[str, str]) -> list[str]:
    """Owner labels as config comments (lxc has no labels and ignores comments)."""
    for key, value in labels.items():
        if not re.match(r"^[A-Za-z0-9_.-]+$", key) or "\n" in value or "=" in key:
            raise ValueError(f"label {key!r} cannot be written into an lxc config")
    return [f"{LABEL_PREFIX}{key}={value}" for key, value in sorted(labels.items())]


def parse_labels(config_text: str) -> dict[str, str]:
    """The owner labels of a container, from its config's comment lines."""
    labels = {}
    for line in config_text.splitlines():
        if line.startswith(LABEL_PREFIX):
            key, sep, value = line[len(LABEL_PREFIX) :].partition("=")
            if sep:
                labels[key.strip()] = value.strip()
    return labels
