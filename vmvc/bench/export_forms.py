"""The two forms every portable export is measured in: uncompressed, and compressed alike.

C06 compares what it takes to move a VM and a container. Each engine's habitual form differs
(`docker save` writes a plain tar, a VM disk is often shipped as a zlib-compressed qcow2),
and then the comparison measures the compressor, not the thing moved: on the development
host the zlib qcow2 made the VM export 0.40x the container's size and 2.4x slower to
write, while uncompressed the two are within a few percent. So every backend writes ONE
uncompressed stream (`Porter.export` into a sink, `Porter.import_` from a source), and this
module turns it into the two forms, the same way for every engine:

uncompressed  the stream as it is, to a file.
compressed    the same stream piped through `zstd -3 -T1` on the way out and `zstd -d` on
              the way back, so compressing is part of export_s and decompressing part of
              import_s (streamed: the engine and the compressor work at the same time).

Why zstd at level 3: it is zstd's default level; Docker (20.10+) and containerd accept
zstd-compressed layers and qemu-img compresses qcow2 clusters with it, so it is a form both
worlds really ship; and it is fast enough (hundreds of MB/s on one core) that the
compressed row measures moving the image, not a slow compressor (gzip -6 would spend ~15 s
on a 200 MB image here). One thread (`-T1`) so both backends' exports get the same CPU on a
shared host. The compressor, level and threads go into every sample's metadata.

Each form's samples carry ``form`` in their metadata, so statistics, reports and claims keep
the forms apart (vmvc.keys: ``export_bytes@compressed``) and never pool or mix them.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from vmvc.proc import ToolError

# Seconds the compressor may take to finish after the stream ended (it has the data already).
_FINISH_TIMEOUT_S = 600


@dataclass(frozen=True)
class ExportForm:
    """One form of the export: a name (the metric key's variant) and how it is packed."""

    name: str
    suffix: str  # added to the archive file's name
    compressor: str | None = None  # a CLI that compresses stdin to stdout
    level: int | None = None
    threads: int | None = None

    def metadata(self) -> dict[str, Any]:
        """What the sample records about the form (compressor and level, or none)."""
        return {
            "form": self.name,
            "compressor": self.compressor or "none",
            "compression_level": self.level,
            "compression_threads": self.threads,
        }


UNCOMPRESSED = ExportForm("uncompressed", "")
COMPRESSED = ExportForm("compressed", ".zst", "zstd", 3, 1)
FORMS: tuple[ExportForm, ...] = (UNCOMPRESSED, COMPRESSED)


class CountingWriter:
    """A write-only binary sink that counts what passes through (the uncompressed bytes)."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.count = 0

    def write(self, data: bytes) -> int:
        self.target.write(data)
        self.count += len(data)
        return len(data)

    def flush(self) -> None:
        self.target.flush()


def _compressor_argv(form: ExportForm, *, decompress: bool) -> list[str]:
    if form.compressor != "zstd":
        raise ValueError(f"unknown compressor {form.compressor!r}")
    if shutil.which("zstd") is None:
        raise ToolError("export: 'zstd' is not installed (run `make setup`)")
    if decompress:
        return ["zstd", "-d", "-q", "-c"]
    return ["zstd", f"-{form.level}", f"-T{form.threads}", "-q", "-c"]


def _finish(process: subprocess.Popen[bytes], what: str) -> None:
    try:
        code = process.wait(timeout=_FINISH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise ToolError(f"{what}: zstd did not finish within {_FINISH_TIMEOUT_S} s") from None
    if code != 0:
        detail = process.stderr.read().decode(errors="replace").strip() if process.stderr else ""
        raise ToolError(f"{what} failed (zstd exit {code}): {detail or 'no output'}")


@contextlib.contextmanager
def writing(path: Path, form: ExportForm) -> Iterator[CountingWriter]:
    """A sink for the uncompressed export stream; what reaches `path` is in `form`."""
    with open(path, "xb") as out:
        if form.compressor is None:
            yield CountingWriter(out)
            return
        process = subprocess.Popen(
            _compressor_argv(form, decompress=False),
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.PIPE,
        )
        assert process.stdin is not None
        try:
            yield CountingWriter(process.stdin)
        except BaseException:
            process.kill()
            process.wait()
            raise
        process.stdin.close()
        _finish(process, f"compressing {path.name}")


@contextlib.contextmanager
def reading(path: Path, form: ExportForm) -> Iterator[IO[bytes]]:
    """The uncompressed export stream read back from `path` (written by `writing`)."""
    with open(path, "rb") as source:
        if form.compressor is None:
            yield source
            return
        process = subprocess.Popen(
            _compressor_argv(form, decompress=True),
            stdin=source,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdout is not None
        try:
            yield process.stdout
            # A reader may stop at its own end marker (tar's zero blocks): drain the rest,
            # so the decompressor finishes and its exit status says the file was whole.
            while process.stdout.read(1 << 20):
                pass
        except BaseException:
            process.kill()
            process.wait()
            raise
        _finish(process, f"decompressing {path.name}")
