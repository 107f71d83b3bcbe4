"""LXC backend: a system container that boots systemd from the image's system tree, with
vmvc's agent started by systemd as a service, no network, and the Docker container's limits.

What runs: the image's *system tree* (vmvc.image.system: the workload tree plus systemd and
the `vmvc-agent.service` unit that the full VM flavour boots) through an overlay (`overlay:`
rootfs: lxc mounts the tree read-only under an upper directory of the container's own, thrown
away with it), with `/sbin/init` (systemd) as PID 1, so the container boots like the full VM
guest does, minus the kernel.

How the host talks to the agent: systemd connects the service's stdin and stdout to a unix
socket the host listens on (`StandardInput=file:PATH` on an AF_UNIX socket connects to it,
systemd.exec(5)), in a host directory bind-mounted at /vmvc. A drop-in replaces only the
VM unit's serial console by that socket; its respawn (Restart=on-failure and the
VMVC-RESPAWN line) stays, and each respawned agent connects again. The host is the server,
as it is for a VM's console: nothing in the container listens, and no `lxc-attach` process
per command (measured here: 17 ms per `lxc-attach`, 0.08-0.14 ms per command on the socket).

Every container is named `vmvc-...`, lives in vmvc's own lxcpath (never /var/lib/lxc), and
carries its owner labels as comment lines of its config; it is destroyed on every exit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from vmvc.agent.protocol import LineLog, ReadyInfo, run_served, wait_ready
from vmvc.backends.base import (
    Availability,
    Backend,
    BackendError,
    BackendKind,
    Instance,
    InstanceSpec,
    Leftover,
    Progress,
    SyscallScope,
)
from vmvc.backends.capabilities import Capability
from vmvc.backends.cgroup_files import CFS_PERIOD_US, Layout, detect, read_limits
from vmvc.backends.container_labels import owned_leftover, owner_labels
from vmvc.backends.lxc_engine.cli import (
    Lxc,
    LxcError,
    first_cause,
    installed,
    label_lines,
    parse_info,
    parse_labels,
    parse_ls,
    parse_version,
)
from vmvc.backends.memory import MIB, cgroup_memory
from vmvc.config import Config, HostSettings
from vmvc.hosts import is_local
from vmvc.image.build import Artefacts
from vmvc.image.system import AGENT_UNIT
from vmvc.paths import PRIVATE_MODE, make_dirs, work_root

CONTAINER_HOSTNAME = "vmvc-container"  # what the Docker and Podman containers are called
CHANNEL_DIR = "vmvc"  # /vmvc in the container: not under /run, where systemd mounts a tmpfs
SOCKET_NAME = "agent.sock"
PIDS_LIMIT = 512  # docker_engine.backend.container_options
TMP_SIZE = "64m"  # the Docker container's /tmp tmpfs
STOP_TIMEOUT_S = 30.0
POLL_S = 0.2  # how often the channel's thread looks at its stop flag and the container
SYSTEM_ROOTFS_ENV = "VMVC_LXC_SYSTEM_ROOTFS"  # a system tree to use instead of the image's
CGROUP_FS = Path("/sys/fs/cgroup")

# A drop-in, not a unit of its own: the agent runs exactly as in the full VM flavour (same
# unit, same respawn) except for where its stdin/stdout go.
AGENT_DROPIN = f"""# vmvc LXC system container: the agent on the host's unix socket, not on ttyS0.
[Unit]
# The VM unit never rate-limits a respawn. Here a start fails at once when the host's socket
# is gone (vmvc was killed): after 20 failures in 10 s the container powers itself off
# instead of restarting the agent in a tight loop until the reaper comes.
StartLimitIntervalSec=10
StartLimitBurst=20
StartLimitAction=poweroff-immediate
# systemd before v254 runs the success action between a respawn's stop and start as well
# (systemd issues #26903, #27722; seen here with Debian's 252: "Scheduled restart job",
# then "Powering off."), so the VM unit's SuccessAction would end the container at the
# first respawn. The host destroys the container itself: no action needed on success.
SuccessAction=none

[Service]
# No `stty raw`: a socket has no line discipline.
ExecStart=
ExecStart=/opt/vmvc/agent serve
# The VM unit ends its guest with sysrq o when the agent exits normally. A system container
# shares the host's kernel: that line must never run here (lxc's proc:mixed mounts
# /proc/sysrq-trigger read-only, but a privileged container is not where to rely on it).
# Only the respawn line stays; the host destroys the container itself.
ExecStopPost=
ExecStopPost=/bin/bash -c 'case "$$SERVICE_RESULT" in signal|core-dump) \
    echo "VMVC-RESPAWN status=$$((128 + $$(kill -l "$$EXIT_STATUS")))" ;; esac'
# The same path for both: systemd connects once and uses the connection for both.
StandardInput=file:/{CHANNEL_DIR}/{SOCKET_NAME}
StandardOutput=file:/{CHANNEL_DIR}/{SOCKET_NAME}
StandardError=inherit
Environment=LC_ALL=C
"""


def lxcpath() -> Path:
    """vmvc's own lxcpath, on the disk of the work root (the overlay's upper layer is
    written there, like the other backends' instance files)."""
    return work_root() / "lxc"


def system_rootfs(artefacts: Artefacts) -> Path:
    """The system tree to boot: $VMVC_LXC_SYSTEM_ROOTFS when set, else the image's
    `system_rootfs`. BackendError when there is none or it cannot boot the agent."""
    override = os.environ.get(SYSTEM_ROOTFS_ENV)
    found = Path(override) if override else artefacts.system_rootfs
    if found is None:
        raise BackendError("the image has no system tree (systemd) for the lxc backend")
    rootfs = Path(found)
    # lexists: /sbin/init is an absolute symlink into the tree (/lib/systemd/systemd)
    if not os.path.lexists(rootfs / "sbin" / "init"):
        raise BackendError(f"{rootfs} has no /sbin/init: not a system tree")
    if not (rootfs / "etc" / "systemd" / "system" / AGENT_UNIT).is_file():
        raise BackendError(f"{rootfs} has no {AGENT_UNIT}: not vmvc's system tree")
    return rootfs


def limit_lines(spec: InstanceSpec, layout: Layout, swap_accounting: bool) -> list[str]:
    """The Docker container's limits (`--cpus`, `--memory` = `--memory-swap`, pids 512) as
    lxc cgroup keys: v1 keys where the controllers are on v1 (a hybrid host), else v2."""
    memory = f"{spec.memory_mib}M"
    quota = spec.vcpus * CFS_PERIOD_US
    if layout.version == 1:
        lines = [
            f"lxc.cgroup.memory.limit_in_bytes = {memory}",
            f"lxc.cgroup.cpu.cfs_period_us = {CFS_PERIOD_US}",
            f"lxc.cgroup.cpu.cfs_quota_us = {quota}",
            f"lxc.cgroup.pids.max = {PIDS_LIMIT}",
        ]
        if swap_accounting:  # without it the kernel has no memsw file (and no swap limit)
            lines.insert(1, f"lxc.cgroup.memory.memsw.limit_in_bytes = {memory}")
        return lines
    return [
        f"lxc.cgroup2.memory.max = {memory}",
        "lxc.cgroup2.memory.swap.max = 0",
        f"lxc.cgroup2.cpu.max = {quota} {CFS_PERIOD_US}",
        f"lxc.cgroup2.pids.max = {PIDS_LIMIT}",
    ]


def container_config(spec: InstanceSpec, rootfs: Path, directory: Path, limits: list[str]) -> str:
    """The container's whole lxc config (no lxc.include of /etc/lxc/default.conf: that one
    gives a veth on lxcbr0)."""
    for path in (rootfs, directory, spec.workdir):
        if any(c.isspace() for c in str(path)):  # mount entries are space-separated
            raise ValueError(f"{path} has white space: it cannot go into an lxc config")
    lines = [
        *label_lines({**owner_labels(spec.run_id), **spec.labels}),
        f"lxc.uts.name = {CONTAINER_HOSTNAME}",
        f"lxc.rootfs.path = overlay:{rootfs}:{directory / 'upper'}",
        "lxc.net.0.type = empty",  # a loopback only: no network
        # lxc's usual container: capabilities minus mac_*, sys_time, sys_module, sys_rawio;
        # its seccomp list; the device allow-list; proc/sys/cgroup mounted :mixed
        "lxc.include = /usr/share/lxc/config/common.conf",
        "lxc.tty.dir =",
        "lxc.tty.max = 0",  # no /dev/ttyN: no getty to start
        "lxc.pty.max = 16",
        "lxc.autodev = 1",
        "lxc.signal.halt = SIGRTMIN+3",  # what makes systemd power off
        "lxc.init.cmd = /sbin/init",
        f"lxc.console.logfile = {directory / 'console.log'}",
        f"lxc.log.file = {directory / 'lxc.log'}",
        "lxc.log.level = ERROR",
        f"lxc.mount.entry = {directory / 'channel'} {CHANNEL_DIR} none bind,create=dir 0 0",
        f"lxc.mount.entry = {spec.workdir / 'data'} data none bind,create=dir 0 0",
        f"lxc.mount.entry = tmpfs tmp tmpfs rw,nosuid,nodev,mode=1777,size={TMP_SIZE} 0 0",
        *limits,
    ]
    return "\n".join(lines) + "\n"


def write_upper(upper: Path, lower: Path) -> None:
    """What the container adds to the tree, in the overlay's upper layer: the agent's
    drop-in and the containers' hostname. A directory in the upper layer gives the merged
    directory its mode, so each takes the mode of the tree's own."""
    units = Path("etc/systemd/system") / f"{AGENT_UNIT}.d"
    _make_upper_dirs(upper, lower, units)
    (upper / units / "lxc.conf").write_text(AGENT_DROPIN)
    (upper / "etc" / "hostname").write_text(f"{CONTAINER_HOSTNAME}\n")


def _make_upper_dirs(upper: Path, lower: Path, relative: Path) -> None:
    upper.mkdir()
    for directory, counterpart in [(upper, lower), *_pairs(upper, lower, relative)]:
        directory.mkdir(exist_ok=True)
        with contextlib.suppress(OSError):  # new in the upper layer only: mkdir's mode
            os.chmod(directory, counterpart.stat().st_mode & 0o7777)


def _pairs(upper: Path, lower: Path, relative: Path) -> Iterator[tuple[Path, Path]]:
    for index in range(1, len(relative.parts) + 1):
        part = Path(*relative.parts[:index])
        yield upper / part, lower / part


def listen_unix(directory: Path, name: str) -> socket.socket:
    """A listening unix socket `directory/name`, bound through /proc/self/fd: an instance's
    directory can be longer than a socket address may be (108 bytes)."""
    fd = os.open(directory, os.O_PATH | os.O_DIRECTORY)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(f"/proc/self/fd/{fd}/{name}")
        listener.listen(4)
    except OSError:
        listener.close()
        raise
    finally:
        os.close(fd)
    return listener


class AgentChannel:
    """The host's end of the agent's socket: accepts each connection the agent service makes
    (one per start, again after a respawn), feeds what it prints into the instance's log,
    and writes the host's commands to the current one (a CommandSink for run_served).

    The log closes (the instance is gone) when the channel is closed, or when no agent is
    connected and `alive` says the container stopped."""

    def __init__(self, directory: Path, log: LineLog, alive: Callable[[], bool]) -> None:
        self.log = log
        self.connections = 0
        self._alive = alive
        self._listener = listen_unix(directory, SOCKET_NAME)
        self._listener.settimeout(POLL_S)
        self._current: socket.socket | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="lxc-agent", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    connection, _ = self._listener.accept()
                except TimeoutError:
                    if not self._alive():
                        break
                    continue
                except OSError:
                    break
                self._pump(connection)
        finally:
            self.log.close()

    def _pump(self, connection: socket.socket) -> None:
        connection.settimeout(POLL_S)
        with self._lock:
            self._current = connection
            self.connections += 1
        last = b"\n"
        try:
            while not self._stop.is_set():
                try:
                    data = connection.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not data:
                    break
                self.log.feed(data)
                last = data[-1:]
        finally:
            with self._lock:
                self._current = None
            connection.close()
            if last != b"\n":  # an agent killed mid-line: its next life starts a new line
                self.log.feed(b"\n")

    def write(self, data: bytes) -> int:
        with self._lock:
            connection = self._current
        if connection is None:
            raise BrokenPipeError("no agent is connected")
        connection.sendall(data)
        return len(data)

    def flush(self) -> None:
        """Nothing to flush: `write` sends at once."""

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()


def payload_cgroup(proc_cgroup: str, controller: str, name: str) -> str | None:
    """The container's cgroup (relative to the controller's mount) from its init's
    /proc/PID/cgroup, which systemd has moved into init.scope below it: the path up to the
    `lxc.payload.<name>` component. `controller` "" is the v2 line ("0::/...")."""
    component = f"lxc.payload.{name}"
    for line in proc_cgroup.splitlines():
        _, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if controller not in controllers.split(","):  # "".split(",") == [""]: the v2 line
            continue
        parts = path.strip("/").split("/")
        if component in parts:
            return "/".join(parts[: parts.index(component) + 1])
    return None


@dataclass(frozen=True)
class HostCgroups:
    """The host facts a container's config depends on."""

    layout: Layout
    swap_accounting: bool

    @classmethod
    def detect(cls) -> HostCgroups | None:
        layout = detect()
        if layout is None:
            return None
        memsw = layout.memory / "memory.memsw.limit_in_bytes"
        return cls(layout, layout.version == 1 and memsw.exists())


class LxcInstance(Instance):
    """One system container, made in two steps the lifecycle workloads time apart:
    `create` (config, overlay upper layer, the agent's socket) and `start` (lxc-start)."""

    def __init__(
        self, lxc: Lxc, backend: str, rootfs: Path, spec: InstanceSpec, host: HostCgroups
    ) -> None:
        super().__init__()
        self.lxc = lxc
        self.backend = backend
        self.name = spec.name
        self.spec = spec
        self.host = host
        self.rootfs = rootfs
        self.directory = lxc.lxcpath / spec.name
        self.channel: AgentChannel | None = None
        self._init: psutil.Process | None = None
        self._t0 = self._created = self._started = 0.0

    def create(self) -> None:
        self._t0 = time.monotonic()
        self._create(self.rootfs)
        self._created = time.monotonic()

    def start(self) -> None:
        self._start()
        self._started = time.monotonic()
        self._init = self._init_process()

    def _create(self, rootfs: Path) -> None:
        """The container's directory: config, overlay upper layer, the channel's socket."""
        make_dirs(self.directory, PRIVATE_MODE)
        write_upper(self.directory / "upper", rootfs)
        (self.directory / "channel").mkdir(mode=0o700)
        limits = limit_lines(self.spec, self.host.layout, self.host.swap_accounting)
        config = container_config(self.spec, rootfs, self.directory, limits)
        (self.directory / "config").write_text(config)
        # listening before the container starts: the agent connects as soon as it runs
        self.channel = AgentChannel(self.directory / "channel", self.log, self._alive)

    def _start(self) -> None:
        try:
            self.lxc.call("lxc-start", "-d", name=self.name, timeout=STOP_TIMEOUT_S)
        except LxcError as exc:
            cause = first_cause(self._read("lxc.log"))
            raise LxcError(f"lxc-start failed: {cause}" if cause else str(exc)) from None

    def _init_process(self) -> psutil.Process | None:
        with contextlib.suppress(LxcError, psutil.Error):
            info = parse_info(self.lxc.call("lxc-info", name=self.name))
            if info.pid:
                return psutil.Process(info.pid)
        return None

    def _alive(self) -> bool:
        """Whether the container's init still runs (True until it is known)."""
        return self._init is None or self._init.is_running()

    def _read(self, file: str) -> str:
        try:
            return (self.directory / file).read_text(errors="replace")
        except OSError:
            return ""

    def wait_ready(self, timeout: float) -> ReadyInfo:
        _, info = wait_ready(self.log, timeout)
        self.phases = {
            "create_s": self._created - self._t0,  # config, upper layer, socket
            "start_s": self._started - self._created,  # lxc-start -d: init is running
            "userspace_s": max(0.0, info.at - self._started),  # systemd boots to the agent
            "total_s": info.at - self._t0,
        }
        self.ready_info = info
        return info

    def run(self, workload: str, args: list[str], timeout: float) -> list[str]:
        assert self.channel is not None
        task_id = self.next_task_id()
        return run_served(self.channel, self.log, task_id, workload, args, timeout)

    def console_tail(self, count: int = 20) -> list[str]:
        """The agent's lines, or while it has printed none (a boot that went wrong) the
        container console's: systemd's boot messages."""
        if len(self.log):
            return self.log.tail(count)
        return self._read("console.log").splitlines()[-count:]

    def cgroup_dir(self, mount: Path, controller: str) -> Path:
        """The container's cgroup under a controller's mount, where its init says it is
        (lxc's default place when that cannot be read)."""
        relative = None
        if self._init is not None:
            with contextlib.suppress(OSError):
                text = Path(f"/proc/{self._init.pid}/cgroup").read_text()
                relative = payload_cgroup(text, controller, self.name)
        return mount / (relative or f"lxc.payload.{self.name}")

    def applied_limits(self) -> dict[str, str | int | float]:
        layout = self.host.layout
        v1 = layout.version == 1
        cpu = self.cgroup_dir(layout.cpu, "cpu" if v1 else "")
        memory = self.cgroup_dir(layout.memory, "memory" if v1 else "")
        try:
            limits = read_limits(layout.version, cpu, memory)
        except (OSError, ValueError):
            return {}  # unknown; a report line is not worth failing the trial for
        limits["how"] = f"lxc, {limits['how']}"
        return limits

    def syscall_scope(self) -> SyscallScope | None:
        """The container's init (systemd) and everything below it: the agent service and
        its workloads, and whatever else the booted OS runs meanwhile (that is part of what a
        system container asks of the host kernel)."""
        if self._init is None:
            return None
        return SyscallScope((self._init.pid,), what="the container's init and its tree")

    def monitor_pids(self) -> list[int]:
        """lxc's monitor of this container (`[lxc monitor] PATH NAME`): outside the
        container's cgroup, in lxc.monitor.<name>, and there only for it."""
        layout = self.host.layout
        procs = layout.memory / f"lxc.monitor.{self.name}" / "cgroup.procs"
        with contextlib.suppress(OSError):
            return [int(pid) for pid in procs.read_text().split() if pid.isdigit()]
        return []

    def footprint(self) -> dict[str, float]:
        """The container's memory cgroup (as Docker's: RSS + cache - inactive file) plus
        the PSS of lxc's monitor, as Podman's counts conmon."""
        layout = self.host.layout
        controller = "memory" if layout.version == 1 else ""
        measured = cgroup_memory([self.cgroup_dir(layout.memory, controller)])
        monitor = 0.0
        for pid in self.monitor_pids():
            with contextlib.suppress(psutil.Error):
                monitor += psutil.Process(pid).memory_full_info().pss / MIB
        figures = measured[0] if measured is not None else {}
        cgroup_mib = figures.get("total_mib", 0.0)
        return {
            **{f"cgroup_{k}": v for k, v in figures.items() if k in ("rss_mib", "cache_mib")},
            "cgroup_mib": cgroup_mib,
            "monitor_pss_mib": monitor,
            "total_mib": cgroup_mib + monitor,
        }

    def remove(self) -> None:
        """Kill the container, close the channel, destroy it (config and upper layer)."""
        destroy(self.lxc, self.name)
        self.close_channel()

    def close_channel(self) -> None:
        channel, self.channel = self.channel, None
        if channel is not None:
            channel.close()


def destroy(lxc: Lxc, name: str) -> None:
    """Stop (SIGKILL to init: nothing in it is worth a clean shutdown), destroy, and remove
    what a failed start can leave behind: the directory and lxc's cgroups of that name."""
    with contextlib.suppress(LxcError):  # "is not running" is fine
        lxc.call("lxc-stop", "-k", name=name, timeout=STOP_TIMEOUT_S)
    with contextlib.suppress(LxcError):
        lxc.call("lxc-destroy", "-f", name=name, timeout=STOP_TIMEOUT_S)
    # lxc-destroy removes the upper layer only, never the tree it lies on; rmtree does not
    # follow symlinks and the bind mounts are gone with the container's mount namespace
    shutil.rmtree(lxc.lxcpath / name, ignore_errors=True)
    remove_cgroups(name)


def remove_cgroups(name: str, root: Path = CGROUP_FS) -> None:
    """Empty cgroups lxc left for `name` (a start that failed half-way leaves
    lxc.monitor.<name> behind); rmdir refuses a cgroup that still has processes."""
    hierarchies = [root, *(p for p in root.iterdir() if p.is_dir())] if root.is_dir() else []
    for hierarchy in hierarchies:
        for prefix in ("lxc.monitor.", "lxc.payload."):
            top = hierarchy / f"{prefix}{name}"
            if not top.is_dir():
                continue
            for directory, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
                with contextlib.suppress(OSError):
                    os.rmdir(directory)


class LxcBackend(Backend):
    name = "lxc"
    label = "system container"
    kind: BackendKind = "system"
    display_name = "system container (LXC, systemd)"
    capabilities = frozenset({Capability.ISOLATION_FACTS})

    def __init__(self, config: Config, host: HostSettings | None = None) -> None:
        self.config = config
        self.host = host
        self.lxc = Lxc(lxcpath())
        self._host_facts: HostCgroups | None = None

    def probe(self) -> Availability:
        if not is_local(self.host):
            return Availability(False, "lxc runs on the local host only", offered=False)
        if os.geteuid() != 0:
            return Availability(False, "lxc system containers need root", "run vmvc as root")
        if not installed():
            return Availability(False, "lxc is not installed", "apt-get install lxc")
        if self.host_facts() is None:
            return Availability(False, "no cgroup cpu and memory controllers found")
        if "overlay" not in _filesystems():
            return Availability(False, "the kernel has no overlayfs", "modprobe overlay")
        return Availability(True, f"lxc {self.version() or '?'}")

    def host_facts(self) -> HostCgroups | None:
        if self._host_facts is None:
            self._host_facts = HostCgroups.detect()
        return self._host_facts

    def version(self) -> str:
        with contextlib.suppress(LxcError):
            return parse_version(self.lxc.call("lxc-start", "--version"))
        return ""

    def prepare(self, artefacts: Artefacts, progress: Progress) -> dict[str, Any]:
        """Nothing to import: each container runs the system tree through an overlay."""
        return {"system_rootfs": str(system_rootfs(artefacts))}

    @contextlib.contextmanager
    def provision(self, artefacts: Artefacts, spec: InstanceSpec) -> Iterator[Instance]:
        host = self.host_facts()
        if host is None:
            raise BackendError("no cgroup cpu and memory controllers found")
        rootfs = system_rootfs(artefacts)
        make_dirs(self.lxc.lxcpath)
        make_dirs(spec.workdir / "data")
        instance = LxcInstance(self.lxc, self.name, rootfs, spec, host)
        try:
            instance.create()
            instance.start()
            yield instance
        finally:
            # also after a failure half-way: no container, directory or cgroup of that name
            instance.remove()
            shutil.rmtree(spec.workdir, ignore_errors=True)  # the runner made it here

    def environment(self) -> dict[str, Any]:
        host = self.host_facts()
        return {
            "lxc_version": self.version(),
            "lxc_path": str(self.lxc.lxcpath),
            "lxc_cgroup_version": host.layout.version if host else None,
            # what the container may do: root inside is root outside
            "lxc_privileges": "privileged (no user namespace), lxc common.conf capabilities"
            " and seccomp, AppArmor " + ("enabled" if _apparmor() else "not in this kernel"),
        }

    def leftovers(self, live_run_ids: set[str]) -> list[Leftover]:
        try:
            listed = parse_ls(self.lxc.call("lxc-ls", "--fancy", "-F", "NAME,STATE,PID"))
        except LxcError:
            return []
        found = []
        for container in listed:
            labels = parse_labels(self._config_text(container.name))
            item = owned_leftover(
                "container",
                container.name,
                labels,
                live_run_ids,
                remove=lambda name=container.name: destroy(self.lxc, name),
            )
            if item is not None:
                found.append(item)
        return found

    def _config_text(self, name: str) -> str:
        try:
            return (self.lxc.lxcpath / name / "config").read_text(errors="replace")
        except OSError:
            return ""

    def engine_daemons(self) -> dict[str, int]:
        return {}  # no daemon: each container's monitor is counted in its footprint


def _filesystems() -> set[str]:
    try:
        text = Path("/proc/filesystems").read_text()
    except OSError:
        return set()
    return {line.split()[-1] for line in text.splitlines() if line.strip()}


def _apparmor() -> bool:
    try:
        return Path("/sys/module/apparmor/parameters/enabled").read_text().strip() == "Y"
    except OSError:
        return False
