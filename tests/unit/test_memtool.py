"""vmvc-memtool: compiled from source at image build, part of the image id, parseable output."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from vmvc.bench.base import ParseError
from vmvc.bench.memory import MemoryWorkload
from vmvc.image import recipe, tools


def _has_interpreter(elf: bytes) -> bool:
    """Whether a 64-bit ELF asks for a dynamic loader (a PT_INTERP program header)."""
    assert elf[:4] == b"\x7fELF" and elf[4] == 2
    offset = int.from_bytes(elf[0x20:0x28], "little")
    size, count = (int.from_bytes(elf[i : i + 2], "little") for i in (0x36, 0x38))
    types = [int.from_bytes(elf[offset + i * size :][:4], "little") for i in range(count)]
    return 3 in types  # PT_INTERP


def test_source_flags_and_compiler_are_part_of_the_image_identity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = recipe.agent_files()
    assert files["memtool.c"] == (Path(tools.__file__).parents[1] / "agent/memtool.c").read_bytes()
    build = files["memtool.build"].decode()
    assert "-static" in build and tools.compiler_version() in build
    before = recipe._digest({k: v.hex() for k, v in files.items()})
    monkeypatch.setattr(tools, "MEMTOOL_FLAGS", ("-O3", "-static", "-pthread"))
    after = recipe._digest({k: v.hex() for k, v in recipe.agent_files().items()})
    assert after != before  # other flags, another binary, another image id


def test_compiled_tool_is_static_and_its_output_parses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tools, "cache_dir", lambda: tmp_path)
    binary = tools.build_memtool()
    assert binary.is_relative_to(tmp_path / "tools")
    assert tools.build_memtool() == binary  # cached by content
    # static: runs in a rootfs whatever its libc (native chroot, container, guest)
    assert not _has_interpreter(binary.read_bytes())
    out = [
        subprocess.run([binary, *args], capture_output=True, text=True, check=True).stdout
        for args in (["bandwidth", "6", "0.2", "2"], ["latency", "4", "0.2"])
    ]
    measured = {m.metric: m for m in MemoryWorkload(2**25).parse("".join(out).splitlines())}
    assert measured["latency_ns"].value > 0 and measured["bandwidth_mib_s"].value > 0
    assert measured["bandwidth_mib_s"].metadata["threads"] == 2
    # 6 MiB against a 32 MiB LLC: recorded as cache, not memory
    assert measured["bandwidth_mib_s"].metadata["past_llc"] is False
    bad = subprocess.run([binary, "latency", "0", "1"], capture_output=True, text=True)
    assert bad.returncode == 2 and "usage" in bad.stderr
    with pytest.raises(ParseError):
        MemoryWorkload(1).parse(bad.stdout.splitlines())
