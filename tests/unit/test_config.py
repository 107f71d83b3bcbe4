"""Config validation: profiles, files, overrides, one-line messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmvc.config import PROFILES, ConfigError, load_config


@pytest.mark.parametrize("profile", PROFILES)
def test_profiles_load(profile: str) -> None:
    config = load_config(profile)
    assert config.profile == profile
    assert config.run.max_repetitions >= config.run.repetitions


def test_profiles_grow() -> None:
    quick, default, nightly = (load_config(p) for p in PROFILES)
    assert quick.run.repetitions <= default.run.repetitions <= nightly.run.repetitions
    assert max(nightly.workload.scale.counts) >= 16


def test_file_overrides_profile_and_cli_overrides_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('profile = "default"\n[workload.cpu]\nseconds = 7\n')
    config = load_config(None, path, {"workload": {"cpu": {"max_prime": 20000}}})
    assert config.profile == "default"
    assert (config.workload.cpu.seconds, config.workload.cpu.max_prime) == (7, 20000)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[run]\nrepetitions = 0\n", "key 'run.repetitions'"),
        ("[run]\nrepetition = 3\n", "key 'run.repetition': unknown key"),
        ('[workload.cpu]\nseconds = "ten"\n', "key 'workload.cpu.seconds'"),
        ('workloads = ["cpu", "gpu"]\n', "unknown workload 'gpu'"),
        ('accel = "hvf"\n', "key 'accel'"),
        ("[workload.scale]\ncounts = [0, 2]\n", "counts must be"),
        ('profile = "turbo"\n', "unknown profile 'turbo'"),
        ("[run\n", "invalid TOML"),
        ('[image]\nmirror = "ftp://x"\n', "mirror must be"),
        ('[image]\npackages = ["fio; rm -rf /"]\n', "not a Debian package name"),
        ("[workload.cpu]\nthreads = 2\n", "workload.cpu.threads (2) must equal instance.vcpus"),
        (
            "[workload.memory]\nworking_set_mib = 400\n",
            "workload.memory.working_set_mib (400 MiB) does not fit instance.memory_mib",
        ),
        (
            "[workload.memory]\nlatency_working_set_mib = 353\n",
            "at most 352 MiB",
        ),
        (
            "[instance]\ndata_disk_mib = 1024\n[workload.io]\nfile_size_mib = 1024\n",
            "does not fit instance.data_disk_mib (1024 MiB): at most 896 MiB",
        ),
    ],
)
def test_bad_config_gives_one_line_naming_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(None, path)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    if "profile" not in message:
        assert str(path) in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(None, tmp_path / "nope.toml")


def test_cpu_threads_follow_the_vcpus(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[instance]\nvcpus = 2\n[workload.cpu]\nthreads = 2\n")
    assert load_config(None, path).workload.cpu.threads == 2
    path.write_text("[instance]\nvcpus = 2\n")
    config = load_config(None, path)
    from vmvc.bench.cpu import CpuWorkload
    from vmvc.bench.memory import MemoryWorkload

    # left out: one thread per vCPU, for the CPU and the memory bandwidth workloads
    assert CpuWorkload().command(config)[0] == "2"
    assert MemoryWorkload(llc_bytes=2**25).command(config)[2] == "2"


def test_working_sets_that_fit_a_bigger_instance_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[instance]\nmemory_mib = 2048\n[workload.memory]\nworking_set_mib = 1024\n")
    assert load_config(None, path).workload.memory.working_set_mib == 1024


@pytest.mark.parametrize("profile", PROFILES)
def test_io_is_sized_past_the_caches_outside_quick(profile: str) -> None:
    io = load_config(profile).workload.io
    if profile == "quick":
        assert io.file_size_mib < 1024  # quick: a first look; results say it is not past caches
    else:
        # 1 GiB, the four jobs >= 20 s measured together, each >= 5 s after a ramp-up
        assert io.file_size_mib >= 1024 and 4 * io.runtime_s >= 20 and io.runtime_s >= 5
        assert io.ramp_s > 0
