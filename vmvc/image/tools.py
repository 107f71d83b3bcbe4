"""Agent-side tools vmvc compiles itself: Debian has no memory latency benchmark in bookworm
(no lmbench, no tinymembench), so vmvc/agent/memtool.c is built here, statically, once.

One static binary serves every backend: it runs in the native chroot, the container and the
guest without any library of the rootfs. The binary is a cache artefact (never committed);
its source, compiler flags and compiler version are part of the image id (tool_sources()
enters the recipe hash through vmvc.image.recipe.agent_files).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from importlib import resources
from pathlib import Path

from vmvc.paths import cache_dir
from vmvc.proc import ToolError, run

MEMTOOL_SOURCE = "memtool.c"
MEMTOOL_BINARY = "vmvc-memtool"  # installed as /opt/vmvc/vmvc-memtool
# -O2 without -march: the baseline x86-64 instruction set runs under every CPU model QEMU
# emulates; -static: no dependency on the rootfs's libc.
MEMTOOL_FLAGS = ("-O2", "-static", "-pthread", "-Wall")
COMPILER = "gcc"


def compiler_version() -> str:
    """First line of `gcc --version` (part of the image id: another compiler, another binary)."""
    if shutil.which(COMPILER) is None:
        raise ToolError(f"{COMPILER} is not installed (run `make setup`)")
    output = run([COMPILER, "--version"], timeout=30, what=COMPILER).stdout.decode()
    return output.splitlines()[0].strip() if output else "unknown"


def tool_sources() -> dict[str, bytes]:
    """What the compiled tools are made of: files installed next to the agent in /opt/vmvc."""
    build = f"{compiler_version()}\n{COMPILER} {' '.join(MEMTOOL_FLAGS)}\n"
    return {
        MEMTOOL_SOURCE: resources.files("vmvc.agent").joinpath(MEMTOOL_SOURCE).read_bytes(),
        "memtool.build": build.encode(),
    }


def build_memtool(timeout: float = 300) -> Path:
    """The compiled memtool in the cache, keyed by source, flags and compiler version."""
    sources = tool_sources()
    key = hashlib.sha256(b"".join(sources[name] for name in sorted(sources))).hexdigest()[:16]
    target = cache_dir() / "tools" / key / MEMTOOL_BINARY
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    source = target.parent / MEMTOOL_SOURCE
    source.write_bytes(sources[MEMTOOL_SOURCE])
    partial = target.parent / f".{MEMTOOL_BINARY}.{os.getpid()}"
    try:
        run(
            [COMPILER, *MEMTOOL_FLAGS, "-o", partial, source],
            timeout=timeout,
            what=f"{COMPILER} (vmvc-memtool; needs libc6-dev)",
        )
        partial.rename(target)  # atomic: a half-written binary is never found
    finally:
        partial.unlink(missing_ok=True)
    return target


def install_tools(rootfs: Path, timeout: float = 300) -> None:
    """Copy the compiled tools into the image's /opt/vmvc."""
    destination = rootfs / "opt" / "vmvc" / MEMTOOL_BINARY
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(build_memtool(timeout), destination)
    os.chmod(destination, 0o755)
