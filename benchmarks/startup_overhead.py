"""How much does vmvc itself add to start-up? Compares, on this host and in one run:

* vmvc's libvirt create->ready with a bare `qemu-system-x86_64` direct boot of the same
  kernel, initramfs, firmware, command line and disk (copy-on-write overlay), timed to the
  same ready marker (benchmarks/boot_phases.py splits this into boot phases);
* vmvc's docker create->ready with a plain `docker run` of the same image, timed outside
  vmvc to the same ready marker.

Targets: VM ratio <= 1.10, container ratio <= 1.05. Medians of N interleaved runs.
Usage: .venv/bin/python benchmarks/startup_overhead.py [--runs 5] [--accel tcg|kvm]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from boot_phases import bare_qemu_argv  # this folder is on sys.path when run as a script

from vmvc.backends.base import InstanceSpec
from vmvc.backends.docker import DockerBackend
from vmvc.backends.libvirt_engine.backend import LibvirtBackend, create_overlay
from vmvc.config import load_config
from vmvc.image.build import Artefacts, build_image
from vmvc.paths import work_root


def until_ready(argv: list[str], timeout: float = 300) -> float:
    """Seconds from spawning `argv` until it prints the agent's ready marker."""
    started = time.monotonic()
    process = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert process.stdout is not None
    try:
        for raw in iter(process.stdout.readline, b""):
            if b"VMVC-READY" in raw:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                break
        raise RuntimeError(f"{argv[0]} never printed the ready marker")
    finally:
        process.kill()
        process.wait()


def bare_qemu(artefacts: Artefacts, workdir: Path, accel: str) -> float:
    overlay = workdir / "root.qcow2"
    data = workdir / "data.raw"
    overlay.unlink(missing_ok=True)
    create_overlay(artefacts.base_disk, overlay)
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", str(data), "1024M"], check=True)
    return until_ready(bare_qemu_argv(artefacts, accel, overlay, data))


def plain_docker_run(artefacts: Artefacts) -> float:
    return until_ready(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "none",
            artefacts.docker_tag,
            "/opt/vmvc/agent",
            "ready",
        ]
    )


def vmvc_start(backend: LibvirtBackend | DockerBackend, artefacts: Artefacts, index: int) -> float:
    run_id = "20000101T000000Z-bench0"
    name = f"vmvc-{run_id}-{backend.name}-{index}"
    spec = InstanceSpec(run_id=run_id, name=name, workdir=work_root() / name)
    with backend.provision(artefacts, spec) as instance:
        instance.wait_ready(300)
        return instance.phases["total_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--accel", choices=("tcg", "kvm"), default="tcg")
    args = parser.parse_args()
    config = load_config("quick", overrides={"accel": args.accel})
    artefacts = build_image(config.image.suite, config.image.packages)
    libvirt_backend, docker_backend = LibvirtBackend(config), DockerBackend(config)
    libvirt_backend.prepare(artefacts, print)
    docker_backend.prepare(artefacts, print)
    times: dict[str, list[float]] = {"qemu": [], "libvirt": [], "docker run": [], "docker": []}
    workdir = Path(tempfile.mkdtemp(prefix="vmvc-bench-", dir=work_root()))
    try:
        for index in range(1, args.runs + 1):  # interleaved, so drift hits all alike
            times["qemu"].append(bare_qemu(artefacts, workdir, args.accel))
            times["libvirt"].append(vmvc_start(libvirt_backend, artefacts, index))
            times["docker run"].append(plain_docker_run(artefacts))
            times["docker"].append(vmvc_start(docker_backend, artefacts, index))
            print(f"run {index}: " + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in times.items()))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        libvirt_backend.close()
        docker_backend.close()
    medians = {k: statistics.median(v) for k, v in times.items()}
    print("\nmedians over", args.runs, "runs (accel:", args.accel + ")")
    for key, value in medians.items():
        print(f"  {key:<11} {value:.3f} s")
    print(
        f"VM: vmvc libvirt / bare qemu        = {medians['libvirt'] / medians['qemu']:.3f}"
        " (target <= 1.10)"
    )
    print(
        f"container: vmvc docker / docker run = {medians['docker'] / medians['docker run']:.3f}"
        " (target <= 1.05)"
    )


if __name__ == "__main__":
    main()
