"""The podman command line as vmvc drives it: global options, one bounded call, its JSON.

Podman has no daemon to talk to (that is the point of measuring it): every operation is a
`podman` process, the way its users run it. Where the host has no systemd (a container, a
CI sandbox) podman's defaults (systemd cgroup manager, journald events) do not work, so the
cgroupfs manager and a file event log are chosen explicitly; the choice is recorded.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from vmvc.backends.capabilities import ByteSink, ByteSource

CALL_TIMEOUT_S = 120.0
CHUNK_BYTES = 1 << 20  # streamed commands (save, load, import) move data in 1 MiB pieces
SYSTEMD_RUNNING = Path("/run/systemd/system")  # sd_booted(3): systemd is the init


class PodmanError(Exception):
    """A podman call failed or did not finish; one line for the user."""


@dataclass(frozen=True)
class Engine:
    """How podman is invoked: the binary, and the OCI runtime and its flags (gVisor's runsc
    with its platform, or podman's default runc/crun when `runtime` is None)."""

    runtime: str | None = None
    runtime_flags: tuple[str, ...] = ()

    def argv(self, *args: str) -> list[str]:
        return ["podman", *global_options(), *self.runtime_options(), *args]

    def runtime_options(self) -> list[str]:
        if self.runtime is None:
            return []
        options = ["--runtime", self.runtime]
        for flag in self.runtime_flags:
            options += ["--runtime-flag", flag]
        return options

    def call(self, *args: str, timeout: float = CALL_TIMEOUT_S) -> str:
        """stdout of one podman command; PodmanError with podman's own last line if not 0."""
        argv = self.argv(*args)
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise PodmanError(f"podman {args[0]} did not finish within {timeout:.0f} s") from None
        except OSError as exc:
            raise PodmanError(f"podman cannot run: {exc.strerror}") from None
        if done.returncode != 0:
            raise PodmanError(f"podman {args[0]} failed: {last_line(done.stderr)}")
        return done.stdout

    def stream(
        self,
        *args: str,
        stdin: IO[bytes] | None = None,
        source: ByteSource | None = None,
        sink: ByteSink | None = None,
        timeout: float = CALL_TIMEOUT_S,
    ) -> str:
        """One podman command with a byte stream in or out, bounded by `timeout` like `call`.

        Its stdin is `stdin` (a pipe: another process's output) or is fed from
        `source.read`; its stdout goes into `sink.write`, chunk by chunk, or is returned as
        text. Neither end needs a file descriptor: a sink or source may be a compressor's
        pipe or a counting wrapper, and a stream is never held in memory whole.
        """
        argv = self.argv(*args)
        given: IO[bytes] | int = subprocess.PIPE if source is not None else subprocess.DEVNULL
        try:
            process = subprocess.Popen(
                argv,
                stdin=given if stdin is None else stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as exc:
            raise PodmanError(f"podman cannot run: {exc.strerror}") from None
        run = _Streamed(process, timeout)
        if source is not None:
            run.feed(source)
        output = run.drain(sink)
        if run.timed_out:
            raise PodmanError(f"podman {args[0]} did not finish within {timeout:.0f} s")
        if run.errors:  # the source failed: what podman made of a cut stream is no result
            raise run.errors[0]
        if process.returncode != 0:
            raise PodmanError(f"podman {args[0]} failed: {last_line(run.stderr)}")
        return output.decode(errors="replace")


class _Streamed:
    """The threads around one streamed podman process: stderr collected, stdin fed, and a
    deadline that kills it; stdout is drained on the caller's thread."""

    def __init__(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        self.process = process
        self.errors: list[BaseException] = []
        self.timed_out = False
        self._stderr: list[bytes] = []
        self._threads = [self._thread(self._collect_stderr, "podman-stderr")]
        self._deadline = threading.Timer(timeout, self._expire)
        self._deadline.daemon = True
        self._deadline.start()

    @property
    def stderr(self) -> str:
        return b"".join(self._stderr).decode(errors="replace")

    def _thread(self, target: Any, name: str, *args: Any) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        return thread

    def _expire(self) -> None:
        self.timed_out = True
        self.process.kill()

    def _collect_stderr(self) -> None:
        assert self.process.stderr is not None
        self._stderr.append(self.process.stderr.read())

    def feed(self, source: ByteSource) -> None:
        self._threads.append(self._thread(self._feed, "podman-stdin", source))

    def _feed(self, source: ByteSource) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        try:
            for chunk in iter(lambda: source.read(CHUNK_BYTES), b""):
                stdin.write(chunk)
        except BrokenPipeError:
            pass  # podman stopped reading: its exit status says why
        except BaseException as exc:  # handed to the caller's thread
            self.errors.append(exc)
            self.process.kill()  # never let podman take a cut stream for a whole one
        finally:
            with contextlib.suppress(OSError):
                stdin.close()

    def drain(self, sink: ByteSink | None) -> bytes:
        """stdout into `sink` (returns b"") or collected; the process is reaped either way."""
        stdout = self.process.stdout
        assert stdout is not None
        collected: list[bytes] = []
        try:
            for chunk in iter(lambda: stdout.read(CHUNK_BYTES), b""):
                if sink is None:
                    collected.append(chunk)
                else:
                    sink.write(chunk)
        except BaseException:
            self.process.kill()  # the sink failed (a compressor died): stop podman too
            raise
        finally:
            self.process.wait()
            self._deadline.cancel()
            for thread in self._threads:
                thread.join(timeout=CALL_TIMEOUT_S)
        return b"".join(collected)


def global_options() -> list[str]:
    """Without systemd as init, podman's systemd cgroup manager and journald event log are
    not there: cgroupfs and a file log instead (what podman's docs advise for containers)."""
    if SYSTEMD_RUNNING.is_dir():
        return []
    return ["--cgroup-manager", "cgroupfs", "--events-backend", "file"]


def installed() -> bool:
    return shutil.which("podman") is not None


def last_line(text: str) -> str:
    """The last non-empty line of a tool's stderr (the error, after any warnings)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


@dataclass(frozen=True)
class ContainerState:
    """What `podman inspect` says about a running container that vmvc needs."""

    container_id: str
    pid: int
    conmon_pid: int
    cgroup_path: str
    running: bool
    oci_runtime: str


def parse_inspect(text: str) -> ContainerState:
    """`podman inspect --type container NAME` output (a JSON list of one object)."""
    try:
        entries = json.loads(text)
        entry = entries[0]
        state = entry["State"]
        return ContainerState(
            container_id=str(entry["Id"]),
            pid=int(state.get("Pid") or 0),
            conmon_pid=int(state.get("ConmonPid") or 0),
            cgroup_path=str(state.get("CgroupPath") or ""),
            running=bool(state.get("Running")),
            oci_runtime=str(entry.get("OCIRuntime") or ""),
        )
    except (ValueError, LookupError, TypeError) as exc:
        raise PodmanError(f"podman inspect gave no container state ({exc})") from None


def parse_ps(text: str) -> list[dict[str, Any]]:
    """`podman ps --all --format json`: name, id and labels of each container."""
    try:
        entries = json.loads(text or "[]")
    except ValueError as exc:
        raise PodmanError(f"podman ps gave no JSON ({exc})") from None
    found = []
    for entry in entries or []:
        names = entry.get("Names") or []
        found.append(
            {
                "name": names[0] if names else str(entry.get("Id", ""))[:12],
                "id": str(entry.get("Id", "")),
                "labels": dict(entry.get("Labels") or {}),
            }
        )
    return found


def parse_version(text: str) -> dict[str, str]:
    """`podman version --format json`: the client's version, Go version and OS/arch."""
    try:
        client = json.loads(text).get("Client") or {}
    except (ValueError, AttributeError):
        return {}
    return {
        "podman_version": str(client.get("Version", "")),
        "podman_go_version": str(client.get("GoVersion", "")),
        "podman_os_arch": str(client.get("OsArch", "")),
    }
