"""Validated run configuration: profiles (quick / default / nightly) and TOML files.

Every value a user can set lives here with its allowed range, so a bad config is refused
with one line naming the file, the key and what is allowed, before anything is created.
"""

from __future__ import annotations

import os
import re
import tomllib
from importlib import resources
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from vmvc.uris import UriError, check_docker_host, check_libvirt_uri

PROFILES = ("quick", "default", "nightly")
STEADY_WORKLOADS = ("cpu", "memory", "io")
BASIC_WORKLOADS = ("startup", "cpu", "memory", "io", "footprint")
LIFECYCLE_WORKLOADS = (
    "provision",
    "clone",
    "scale",
    "density",
    "recovery",
    "portability",
    "isolation",
)
ALL_WORKLOADS = BASIC_WORKLOADS + LIFECYCLE_WORKLOADS
# Backends are whatever is installed in this group (vmvc's own and any plugin package); the
# same group vmvc.backends.base loads them from. Config only needs their names.
BACKEND_ENTRY_POINT_GROUP = "vmvc.backends"
Accel = Literal["auto", "kvm", "tcg"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RunSettings(Strict):
    repetitions: int = Field(3, ge=1, le=1000, description="minimum measured repetitions")
    max_repetitions: int = Field(3, ge=1, le=1000)
    # At least one warm-up boot per backend and a shuffled backend order, in every profile
    # and by default: a fixed order (native first, the VM last) would book the host's drift
    # and the cold caches of the first trial on the same backend every time ("equal footing").
    warmups: int = Field(1, ge=0, le=100)
    target_ci_width: float = Field(
        0.10,
        gt=0,
        le=10,
        description="stop when the 95% interval of every ratio a verdict uses is this narrow",
    )
    time_budget_s: float = Field(3600, gt=0, description="stop adding repetitions after this")
    shuffle: bool = True
    # None: drawn at random by the runner and recorded in the result's config, so the run
    # order can be replayed (`--seed`) and a resumed run keeps the order it started with.
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    # workload -> measured repetitions that include it (the first N); unlisted: every one.
    # Start-up and footprint come from every boot; see vmvc.plan.
    workload_repetitions: dict[str, int] = Field(default_factory=dict)
    # Which backends run the lifecycle workloads other than isolation: "all" (every backend
    # with the capabilities), or "judged": the ones the claims compare (native, the first
    # container, the first VM; vmvc.plan.judged_backends). The spectrum's other backends
    # then give start-up, footprint, the steady workloads and isolation: the quick profile's
    # way to stay a first look when every engine is installed.
    lifecycle_backends: Literal["all", "judged"] = "all"
    # Which backends run the steady workloads (cpu, memory, io) in their instance trials:
    # "all", or "judged" (as above). One short sample of each on every engine of the
    # spectrum cost the quick profile a minute and judges nothing.
    steady_backends: Literal["all", "judged"] = "all"
    # Measured repetitions of the instance trial (start-up, footprint) on the backends the
    # claims do not compare; None: as many as the judged ones get. Below 6 their medians
    # have no 95 % interval, from 4 their ratios to native do (vmvc.intervals).
    spectrum_repetitions: int | None = Field(None, ge=1, le=1000)

    @field_validator("workload_repetitions")
    @classmethod
    def _known_capped_workloads(cls, value: dict[str, int]) -> dict[str, int]:
        for name, count in value.items():
            if name not in ALL_WORKLOADS:
                raise ValueError(f"unknown workload '{name}' (allowed: {', '.join(ALL_WORKLOADS)})")
            if not 1 <= count <= 1000:
                raise ValueError(f"{name}: repetitions must be from 1 to 1000")
        return value


class InstanceSettings(Strict):
    vcpus: int = Field(1, ge=1, le=64)
    memory_mib: int = Field(512, ge=128, le=1_048_576)
    # Holds the default 1 GiB fio file plus ext4's journal and metadata (a sparse file).
    data_disk_mib: int = Field(2048, ge=64, le=1_048_576)


class TimeoutSettings(Strict):
    image_build_s: float = Field(1800, gt=0)
    boot_s: float = Field(180, gt=0)
    workload_s: float = Field(600, gt=0)
    probe_s: float = Field(45, gt=0)


class CpuSettings(Strict):
    seconds: int = Field(5, ge=1, le=3600)
    # None: one thread per vCPU of the instance. Any other count would compare a loaded
    # instance with an idle one (or an oversubscribed one), so it must equal instance.vcpus.
    threads: int | None = Field(None, ge=1, le=256)
    max_prime: int = Field(10000, ge=100, le=10_000_000)


# What the guest kernel, its init and the agent need besides a memory working set, measured
# in the default 512 MiB VM (MemTotal 457 MiB, about 60 MiB of it used before the workload).
MEMORY_HEADROOM_MIB = 160


class MemorySettings(Strict):
    # STREAM's three arrays together (copy touches two thirds of it, triad all of it): at
    # least 4x the host's last-level cache (32 MiB here -> 128 MiB; 256 leaves copy 170 MiB)
    # and, with MEMORY_HEADROOM_MIB, within the instance's memory.
    working_set_mib: int = Field(256, ge=3, le=1_048_576)
    seconds: int = Field(10, ge=1, le=3600, description="bandwidth run, half copy, half triad")
    # Far past the LLC and the TLB's reach with 4 KiB pages (a few MiB).
    latency_working_set_mib: int = Field(256, ge=1, le=1_048_576)
    latency_seconds: int = Field(5, ge=1, le=3600)


# A file this big, measured this long after a ramp-up, is past every cache on the way to the
# disk: the guest's page cache is bypassed by O_DIRECT, the host's by cache=none, a virtual
# disk's own cache is smaller than the file; end_fsync=1 makes the writes reach the disk
# before a job ends. Every one of the four jobs is measured >= IO_PAST_CACHES_JOB_S after its
# own ramp_time, so a run measures >= 20 s of I/O: the default profile runs 4 x 5 s (it must
# fit 20 minutes with 6 repetitions under TCG), nightly 4 x 30 s. Smaller runs are recorded
# and reported as not past the caches.
IO_PAST_CACHES_FILE_MIB = 1024
IO_PAST_CACHES_JOB_S = 5


class IoSettings(Strict):
    file_size_mib: int = Field(IO_PAST_CACHES_FILE_MIB, ge=8, le=1_048_576)
    runtime_s: int = Field(IO_PAST_CACHES_JOB_S, ge=1, le=3600, description="per fio job")
    ramp_s: int = Field(2, ge=0, le=600, description="fio ramp_time before each measured job")


# A scale count relative to the host's cores: "cores", "cores+1", "2*cores", "2*cores+1".
_CORE_COUNT = re.compile(r"^(?:(?P<times>[1-9][0-9]?)\*)?cores(?:\+(?P<plus>[0-9]{1,3}))?$")
MAX_SCALE_COUNT = 1024
COUNTS_ALLOWED = (
    "counts must be a non-empty list of integers from 1 to 1024 or of counts relative "
    'to the cores like "cores", "cores+1", "2*cores+1"'
)


def host_cores() -> int:
    """The CPUs this process may run on (its affinity mask, which a cpuset narrows), >= 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def resolve_count(count: int | str, cores: int) -> int:
    """One entry of [workload.scale] counts as a number of instances on a host with `cores`."""
    if isinstance(count, int):
        return count
    match = _CORE_COUNT.match(count)
    if match is None:
        raise ValueError(f"'{count}' is not a count")
    return int(match["times"] or 1) * cores + int(match["plus"] or 0)


class ScaleSettings(Strict):
    # Instance counts launched at once, one round each. Numbers, or counts relative to the
    # host's cores ("cores", "cores+1", "2*cores+1"): instances start in parallel until they
    # outnumber the cores, so the curve's knee is at the core count and the counts must
    # reach past it on any host (README, "Scale: a curve with a knee").
    counts: list[int | str] = Field(default_factory=lambda: [1, "cores", "2*cores+1"])
    safe_memory_fraction: float = Field(0.5, gt=0, le=0.9)

    @field_validator("counts", mode="before")
    @classmethod
    def _no_booleans(cls, value: Any) -> Any:
        # TOML's true would otherwise be taken for the count 1.
        if isinstance(value, list) and any(isinstance(c, bool) for c in value):
            raise ValueError(COUNTS_ALLOWED)
        return value

    @field_validator("counts")
    @classmethod
    def _positive_counts(cls, value: list[int | str]) -> list[int | str]:
        allowed = COUNTS_ALLOWED
        if not value:
            raise ValueError(allowed)
        for count in value:
            if isinstance(count, int) and not 1 <= count <= MAX_SCALE_COUNT:
                raise ValueError(allowed)
            if isinstance(count, str) and _CORE_COUNT.match(count) is None:
                raise ValueError(allowed)
        return value

    def resolve(self, cores: int) -> list[int]:
        """The counts on a host with `cores` CPUs: sorted, distinct, at most 1024 each."""
        return sorted({min(MAX_SCALE_COUNT, resolve_count(c, cores)) for c in self.counts})


class DensitySettings(Strict):
    """The density workload (vmvc.bench.density): instance counts at which the host's
    MemAvailable drop is read, for containers/processes and (fewer, larger) for VMs."""

    # Dozens of containers: a few MiB each must stand above the host's noise (a floor of
    # 9-18 MiB here once the per-CPU free lists are counted; 64 at ~4 MiB rise ~260 MiB).
    counts: list[int] = Field(default_factory=lambda: [1, 16, 32, 64])
    # Several VMs: each holds hundreds of MiB, so few stand above the noise.
    vm_counts: list[int] = Field(default_factory=lambda: [1, 2, 4])
    # Every instance runs vmvc-memtool over this working set before it is counted.
    touch_mib: int = Field(64, ge=3, le=65_536)
    settle_s: float = Field(2.0, ge=0, le=120)
    reads: int = Field(5, ge=1, le=100, description="/proc/meminfo reads per point (median)")
    safe_memory_fraction: float = Field(0.5, gt=0, le=0.9)

    @field_validator("counts", "vm_counts")
    @classmethod
    def _series(cls, value: list[int]) -> list[int]:
        if not value or any(n < 1 or n > 1024 for n in value):
            raise ValueError("counts must be a non-empty list of integers from 1 to 1024")
        value = sorted(set(value))
        if value[0] != 1:
            raise ValueError("counts must start at 1 (the first instance's cost)")
        return value


class RecoverySettings(Strict):
    trials: int = Field(1, ge=1, le=100)
    # How long an instance nothing restarts (libvirt's killed QEMU) is watched before "no
    # automatic restart" is recorded: far longer than any engine here takes to *start* a
    # restart (Docker ~0.3 s; libvirt resets a panicked guest within 0.04 s of its crashed
    # event). One still running at the end is waited for like any restart (a boot timeout).
    no_restart_watch_s: float = Field(5.0, ge=1.0, le=600.0)


class PortabilitySettings(Strict):
    # The export forms measured, in this order (vmvc.bench.export_forms): each form is a
    # metric group of its own, never pooled. quick measures the uncompressed one only.
    forms: list[Literal["uncompressed", "compressed"]] = Field(
        default_factory=lambda: ["uncompressed", "compressed"], min_length=1
    )

    @field_validator("forms")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each form at most once")
        return value


class WorkloadSettings(Strict):
    cpu: CpuSettings = Field(default_factory=CpuSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)
    io: IoSettings = Field(default_factory=IoSettings)
    scale: ScaleSettings = Field(default_factory=ScaleSettings)
    density: DensitySettings = Field(default_factory=DensitySettings)
    recovery: RecoverySettings = Field(default_factory=RecoverySettings)
    portability: PortabilitySettings = Field(default_factory=PortabilitySettings)


class Thresholds(Strict):
    """Verdict thresholds for the study note's claims (shared/CLAIMS.md defaults)."""

    c01_startup_ratio: float = Field(2.0, gt=0)
    c02_footprint_ratio: float = Field(2.0, gt=0)
    c03_overhead_fraction: float = Field(0.05, gt=0, lt=10)
    c04_clone_ratio: float = Field(2.0, gt=0)
    # C05: VM / container time until N are all ready, at the largest N both measured.
    c05_scale_ratio: float = Field(2.0, gt=0)
    c10_density_ratio: float = Field(2.0, gt=0)
    noise_threshold: float = Field(0.05, ge=0, lt=10, description="compare: smallest real change")


class ImageSettings(Strict):
    suite: str = Field("bookworm", pattern=r"^[a-z][a-z0-9-]{1,31}$")
    mirror: str | None = Field(None, description="Debian mirror URL; default: the one apt uses")
    packages: list[str] = Field(default_factory=lambda: ["fio", "sysbench"])

    @field_validator("packages")
    @classmethod
    def _package_names(cls, value: list[str]) -> list[str]:
        import re

        for name in value:
            if not re.fullmatch(r"[a-z0-9][a-z0-9+.-]{0,63}", name):
                raise ValueError(f"'{name}' is not a Debian package name")
        return value

    @field_validator("mirror")
    @classmethod
    def _mirror_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://", "file:/")):
            raise ValueError("mirror must be an http://, https:// or file:/ URL")
        return value


class HostSettings(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    libvirt_uri: str | None = None
    docker_host: str | None = None
    # Docker's tcp:// is plaintext and unauthenticated: a name that says so, off by default.
    insecure_plaintext_tcp: bool = False

    @field_validator("libvirt_uri")
    @classmethod
    def _remote_libvirt_uri(cls, value: str | None) -> str | None:
        return None if value is None else check_libvirt_uri(value, remote=True)

    @model_validator(mode="after")
    def _docker_host(self) -> HostSettings:
        if self.docker_host is not None:
            try:
                check_docker_host(
                    self.docker_host, insecure_plaintext_tcp=self.insecure_plaintext_tcp
                )
            except UriError as exc:
                # Raised from the model, so name the key the way a field error would.
                raise ValueError(f"docker_host: {exc}") from None
        return self


# Backend names come from entry points; they end up in instance names and labels.
BACKEND_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"


def installed_backend_names() -> list[str]:
    """Names of the installed backends: vmvc's own first, then plugins.

    Only the entry points' names are read, nothing is imported: loading a config never runs a
    plugin's code, and a broken plugin fails where it is used, not here. (The order of a run,
    by kind, is set where the classes are loaded: vmvc.backends.base.in_usual_order.)
    """
    entries = list(entry_points(group=BACKEND_ENTRY_POINT_GROUP))
    own = [e.name for e in entries if e.module.partition(".")[0] == "vmvc"]
    return list(dict.fromkeys(own + [e.name for e in entries]))


class Config(Strict):
    profile: Literal["quick", "default", "nightly"] = "quick"
    # Default: every installed backend (`--backend all` then skips the unavailable ones).
    # The model checks only the form of a name: a saved result whose plugin has since been
    # uninstalled must still load; load_config refuses names that are not installed.
    backends: list[Annotated[str, Field(pattern=BACKEND_NAME_PATTERN)]] = Field(
        default_factory=installed_backend_names
    )
    workloads: list[str] = Field(default_factory=lambda: list(BASIC_WORKLOADS))
    accel: Accel = "auto"
    libvirt_uri: str = "qemu:///system"
    run: RunSettings = Field(default_factory=RunSettings)
    instance: InstanceSettings = Field(default_factory=InstanceSettings)
    timeouts: TimeoutSettings = Field(default_factory=TimeoutSettings)
    workload: WorkloadSettings = Field(default_factory=WorkloadSettings)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    image: ImageSettings = Field(default_factory=ImageSettings)
    hosts: list[HostSettings] = Field(default_factory=list)

    @field_validator("libvirt_uri")
    @classmethod
    def _local_libvirt_uri(cls, value: str) -> str:
        return check_libvirt_uri(value, remote=False)

    @model_validator(mode="after")
    def _workloads_fit_the_instance(self) -> Config:
        """Equal footing and sizes that fit: checked before anything is created."""
        vcpus, cpu = self.instance.vcpus, self.workload.cpu
        # threads stays None when left out (vmvc.bench.cpu uses the vCPU count then), so a
        # later override of instance.vcpus still derives it
        if cpu.threads is not None and cpu.threads != vcpus:
            raise ValueError(
                f"workload.cpu.threads ({cpu.threads}) must equal instance.vcpus ({vcpus}) "
                "(or be left out: one thread per vCPU)"
            )
        room = self.instance.memory_mib - MEMORY_HEADROOM_MIB
        memory = self.workload.memory
        for key, size in (
            ("working_set_mib", memory.working_set_mib),
            ("latency_working_set_mib", memory.latency_working_set_mib),
        ):
            if size > room:
                raise ValueError(
                    f"workload.memory.{key} ({size} MiB) does not fit instance.memory_mib "
                    f"({self.instance.memory_mib} MiB) with {MEMORY_HEADROOM_MIB} MiB for the "
                    f"guest kernel and agent: at most {max(room, 0)} MiB"
                )
        disk = self.instance.data_disk_mib
        fits = disk - disk // 16 - 64  # ext4 journal, inode tables, reserved blocks
        if self.workload.io.file_size_mib > fits:
            raise ValueError(
                f"workload.io.file_size_mib ({self.workload.io.file_size_mib} MiB) does not fit "
                f"instance.data_disk_mib ({disk} MiB): at most {max(fits, 0)} MiB"
            )
        return self

    @field_validator("backends")
    @classmethod
    def _known_backends(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one backend is needed")
        return list(dict.fromkeys(value))

    @field_validator("workloads")
    @classmethod
    def _known_workloads(cls, value: list[str]) -> list[str]:
        unknown = [w for w in value if w not in ALL_WORKLOADS]
        if unknown:
            raise ValueError(
                f"unknown workload '{unknown[0]}' (allowed: {', '.join(ALL_WORKLOADS)})"
            )
        if not value:
            raise ValueError("at least one workload is needed")
        return list(dict.fromkeys(value))


class ConfigError(Exception):
    """A config that cannot be used; the message is one line naming file, key and rule."""


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _profile_data(name: str) -> dict[str, Any]:
    if name not in PROFILES:
        raise ConfigError(f"unknown profile '{name}' (allowed: {', '.join(PROFILES)})")
    text = resources.files("vmvc.profiles").joinpath(f"{name}.toml").read_text()
    return tomllib.loads(text)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (IsADirectoryError, PermissionError) as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.__class__.__name__})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: config is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None


def validation_message(source: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    if not key:  # a rule across keys (model validator): its message names them
        return f"{source}: {message}"
    return f"{source}: key '{key}': {message}"


def _host_memory_mib() -> int:
    import psutil

    return int(psutil.virtual_memory().total // 2**20)


def load_config(
    profile: str | None = None,
    path: Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Config:
    """Profile defaults, then the config file, then command-line overrides."""
    file_data: dict[str, Any] = _read_toml(path) if path else {}
    chosen = profile or file_data.get("profile") or "quick"
    if not isinstance(chosen, str):
        raise ConfigError(f"{path}: key 'profile': must be one of {', '.join(PROFILES)}")
    data = _merge(_profile_data(chosen), file_data)
    data["profile"] = chosen
    source = str(path) if path else f"profile '{chosen}'"
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_message(source, exc)) from None
    if overrides:
        try:
            config = Config.model_validate(_merge(config.model_dump(), overrides))
        except ValidationError as exc:
            raise ConfigError(validation_message("command line", exc)) from None
    host_mib = _host_memory_mib()
    if config.instance.memory_mib > host_mib:
        raise ConfigError(
            f"{source}: key 'instance.memory_mib': {config.instance.memory_mib} MiB is more "
            f"than this host's memory ({host_mib} MiB)"
        )
    _check_installed_backends(config, source, overrides)
    if config.run.max_repetitions < config.run.repetitions:
        config.run.max_repetitions = config.run.repetitions
    return config


def _check_installed_backends(
    config: Config, source: str, overrides: dict[str, Any] | None
) -> None:
    installed = installed_backend_names()
    if not installed:  # a source tree never pip-installed: vmvc.backends.base falls back
        return
    unknown = [name for name in config.backends if name not in installed]
    if unknown:
        if overrides and "backends" in overrides:
            source = "command line"
        raise ConfigError(
            f"{source}: key 'backends': unknown backend '{unknown[0]}' "
            f"(installed: {', '.join(installed)})"
        )
