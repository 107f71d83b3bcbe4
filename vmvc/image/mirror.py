"""The Debian mirror debootstrap uses: the one apt on this host already uses, unless set."""

from __future__ import annotations

import re
from pathlib import Path

SOURCES_LIST = Path("/etc/apt/sources.list")
SOURCES_DIR = Path("/etc/apt/sources.list.d")
# debootstrap checks the mirror's Release signatures against this (debian-archive-keyring).
ARCHIVE_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")


def _one_line_sources(text: str) -> list[tuple[str, str]]:
    found = []
    for line in text.splitlines():
        match = re.match(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
        if match:
            found.append((match.group(1), match.group(2)))
    return found


def _deb822_sources(text: str) -> list[tuple[str, str]]:
    found = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                found.append((uri, suite))
    return found


def apt_sources(root: Path = Path("/")) -> list[tuple[str, str]]:
    """(uri, suite) pairs from the host's apt configuration, in file order."""
    pairs: list[tuple[str, str]] = []
    main = root / SOURCES_LIST.relative_to("/")
    if main.is_file():
        pairs += _one_line_sources(main.read_text(errors="replace"))
    directory = root / SOURCES_DIR.relative_to("/")
    if directory.is_dir():
        for path in sorted(directory.iterdir()):
            if path.suffix == ".list":
                pairs += _one_line_sources(path.read_text(errors="replace"))
            elif path.suffix == ".sources":
                pairs += _deb822_sources(path.read_text(errors="replace"))
    return pairs


def find_mirror(suite: str, root: Path = Path("/")) -> str | None:
    """A mirror that serves `suite` itself (not -updates or -security)."""
    for uri, listed in apt_sources(root):
        if listed == suite and "security" not in uri:
            return uri
    for uri, listed in apt_sources(root):
        if listed.split("-")[0] == suite and "security" not in uri:
            return uri
    return None
