"""Where a vmvc VM's start-up goes, next to a bare QEMU boot of the very same artefacts.

In one run, interleaved (so drift of a shared host hits both alike), N times:

* vmvc's libvirt guest, create -> ready, split into vmvc's phases (create_s: libvirt
  createXML of the paused domain; firmware_kernel_s: resume to the initramfs marker;
  initramfs_s: modules and root mount; userspace_s: to the agent's ready line);
* a bare `qemu-system-x86_64` with the same kernel, initramfs, firmware, machine type,
  command line, root overlay and data disk, timed from spawn to the same markers.

Optionally (--quick, --profile default) it then times one `vmvc bench` of that profile, its
trials, and how close the live view's time-left was after the first measured repetition.
Prints medians and the ratios the issue asks for (vmvc / bare <= 1.10).
Usage: .venv/bin/python benchmarks/boot_phases.py [--runs 5] [--accel tcg|kvm] [--quick]
       [--profile default]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from vmvc.backends.base import InstanceSpec
from vmvc.backends.libvirt_engine.backend import LibvirtBackend, create_overlay
from vmvc.config import load_config
from vmvc.image.build import Artefacts, build_image
from vmvc.paths import work_root

MARKERS = ("INITRAMFS", "ROOTMOUNT", "READY")
RUN_ID = "20000101T000000Z-bench1"
KEEP = Path("/tmp/vmvc-bench-results")  # the timed profiles' results, outside the repo


def bare_qemu_argv(artefacts: Artefacts, accel: str, overlay: Path, data: Path) -> list[str]:
    """QEMU started by hand with what vmvc's domain uses: kernel, initramfs, firmware,
    machine, command line, root overlay and data disk (the baseline both scripts time)."""
    argv = [
        "qemu-system-x86_64",
        "-machine",
        f"{artefacts.machine},accel={accel}",
        "-m",
        "512",
        "-smp",
        "1",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-kernel",
        str(artefacts.kernel),
        "-initrd",
        str(artefacts.initrd),
        "-append",
        artefacts.cmdline,
        "-drive",
        f"file={overlay},if=virtio,format=qcow2",
        "-drive",
        f"file={data},if=virtio,format=raw,cache=none",
    ]
    if artefacts.firmware is not None:
        argv += ["-bios", str(artefacts.firmware)]
    return argv


def bare_qemu(artefacts: Artefacts, workdir: Path, accel: str, timeout: float = 300) -> dict:
    """Seconds from spawning QEMU to each boot marker on its serial console."""
    overlay, data = workdir / "root.qcow2", workdir / "data.raw"
    overlay.unlink(missing_ok=True)
    create_overlay(artefacts.base_disk, overlay)
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", str(data), "1024M"], check=True)
    argv = bare_qemu_argv(artefacts, accel, overlay, data)
    started = time.monotonic()
    process = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    watchdog = threading.Timer(timeout, process.kill)  # a hung guest prints nothing more
    watchdog.start()
    seen: dict[str, float] = {}
    assert process.stdout is not None
    try:
        for raw in iter(process.stdout.readline, b""):
            for name in MARKERS:
                if f"VMVC-{name}".encode() in raw and name not in seen:
                    seen[name] = time.monotonic() - started
            if "READY" in seen:
                break
    finally:
        watchdog.cancel()
        process.kill()
        process.wait()
    if "READY" not in seen:
        raise RuntimeError("bare QEMU never printed the ready marker")
    return {
        "to_initramfs_s": seen["INITRAMFS"],
        "initramfs_s": seen["ROOTMOUNT"] - seen["INITRAMFS"],
        "userspace_s": seen["READY"] - seen["ROOTMOUNT"],
        "total_s": seen["READY"],
    }


def vmvc_boot(backend: LibvirtBackend, artefacts: Artefacts, index: int) -> dict:
    name = f"vmvc-{RUN_ID}-libvirt-{index}"
    spec = InstanceSpec(run_id=RUN_ID, name=name, workdir=work_root() / name)
    with backend.provision(artefacts, spec) as instance:
        instance.wait_ready(300)
        return dict(instance.phases)


ELAPSED = re.compile(r"^\[(?:(\d+):)?(\d+):(\d+)\] ")
LEFT = re.compile(r"; left ~(?:(\d+):)?(\d+):(\d+)")
REPETITION_2 = re.compile(r"trial \d+/\d+: \S+ \S+ repetition 2/")


def _seconds(match: re.Match[str]) -> float:
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def eta_after_first_repetition(lines: list[str]) -> float | None:
    """The total the live view predicted when the first measured repetition ended: the
    elapsed time of the last "trial ... done" line before repetition 2 starts plus the
    "left ~m:ss" it printed (the same estimate the rich view shows)."""
    predicted = None
    for line in lines:
        if REPETITION_2.search(line):
            return predicted
        elapsed, left = ELAPSED.match(line), LEFT.search(line)
        if elapsed and left:
            predicted = _seconds(elapsed) + _seconds(left)
    return None


def time_profile(profile: str, output: Path, backends: list[str]) -> None:
    chosen = [arg for name in backends for arg in ("--backend", name)] or ["--backend", "all"]
    started = time.monotonic()
    done = subprocess.run(
        [".venv/bin/vmvc", "bench", "--profile", profile, *chosen, "--plain", "-o", str(output)],
        capture_output=True,
        text=True,
    )
    wall = time.monotonic() - started
    results = sorted(output.glob("*.json"))
    print(f"\n{profile} profile ({' '.join(chosen)}): {wall:.0f} s wall, exit {done.returncode}")
    predicted = eta_after_first_repetition(done.stderr.splitlines())  # the live view
    if predicted is not None:
        print(
            f"  live view's total after the first repetition: {predicted:.0f} s "
            f"= {predicted / wall:.2f} x the actual (target 0.75-1.25)"
        )
    if not results:
        return
    kept = KEEP / profile
    kept.mkdir(parents=True, exist_ok=True)
    for path in output.iterdir():  # the JSON and its reports, for reading afterwards
        shutil.copy2(path, kept / path.name)
    print(f"  result kept in {kept}")
    doc = json.loads(results[-1].read_text())
    per_kind: dict[str, list[float]] = {}
    for trial in doc["trials"]:
        per_kind.setdefault(f"{trial['backend']} {trial['kind']}", []).append(trial["seconds"])
    failed = [t for t in doc["trials"] if t["status"] != "ok"]
    print(f"  {len(doc['trials'])} trials, {len(failed)} failed")
    for key, seconds in sorted(per_kind.items()):
        print(f"  {key:<22} {len(seconds):>2} x median {statistics.median(seconds):6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--accel", choices=("tcg", "kvm"), default="tcg")
    parser.add_argument("--quick", action="store_true", help="also time the quick profile")
    parser.add_argument("--profile", help="also time this profile (e.g. default)")
    parser.add_argument(
        "--backend",
        action="append",
        default=[],
        help="the profiles' runs use only these backends (repeat; default: all installed)",
    )
    args = parser.parse_args()
    config = load_config("quick", overrides={"accel": args.accel})
    artefacts = build_image(config.image.suite, config.image.packages)
    print(
        f"image {artefacts.image_id}, VM form {artefacts.vm_id}: "
        f"{artefacts.recipe.get('kernel_package')}, firmware {artefacts.recipe.get('firmware')}, "
        f"machine {artefacts.machine}"
    )
    backend = LibvirtBackend(config)
    backend.prepare(artefacts, print)
    vmvc: list[dict] = []
    bare: list[dict] = []
    workdir = Path(tempfile.mkdtemp(prefix="vmvc-bench-", dir=work_root()))
    try:
        for index in range(1, args.runs + 1):  # interleaved, so drift hits both alike
            vmvc.append(vmvc_boot(backend, artefacts, index))
            bare.append(bare_qemu(artefacts, workdir, args.accel))
            ours, theirs = vmvc[-1]["total_s"], bare[-1]["total_s"]
            print(f"run {index}: vmvc {ours:.3f} s, bare {theirs:.3f} s")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        backend.close()

    def median(rows: list[dict], key: str) -> float:
        return statistics.median(row[key] for row in rows)

    print(f"\nmedians over {args.runs} runs ({args.accel}):")
    print("  vmvc (libvirt)                bare qemu")
    print(f"  create_s          {median(vmvc, 'create_s'):6.3f}")
    print(
        f"  firmware_kernel_s {median(vmvc, 'firmware_kernel_s'):6.3f}"
        f"      spawn to initramfs {median(bare, 'to_initramfs_s'):6.3f}"
    )
    print(
        f"  initramfs_s       {median(vmvc, 'initramfs_s'):6.3f}"
        f"      initramfs_s        {median(bare, 'initramfs_s'):6.3f}"
    )
    print(
        f"  userspace_s       {median(vmvc, 'userspace_s'):6.3f}"
        f"      userspace_s        {median(bare, 'userspace_s'):6.3f}"
    )
    print(
        f"  total_s           {median(vmvc, 'total_s'):6.3f}"
        f"      total_s            {median(bare, 'total_s'):6.3f}"
    )
    total = median(vmvc, "total_s") / median(bare, "total_s")
    guest = (median(vmvc, "total_s") - median(vmvc, "create_s")) / median(bare, "total_s")
    pairs = zip(vmvc, bare, strict=True)
    paired = statistics.median(ours["total_s"] / theirs["total_s"] for ours, theirs in pairs)
    print(f"vmvc create->ready / bare spawn->ready  = {total:.3f} (target <= 1.10)")
    print(f"  median of the {args.runs} interleaved pairs' ratios = {paired:.3f}")
    print(f"vmvc resume->ready / bare spawn->ready  = {guest:.3f} (the guest's own boot)")
    for profile in (["quick"] if args.quick else []) + ([args.profile] if args.profile else []):
        # Not under the work root: `vmvc clean` would take a vmvc-* directory there for a
        # dead run's.
        with tempfile.TemporaryDirectory(prefix=f"bench-{profile}-") as out:
            time_profile(profile, Path(out), args.backend)


if __name__ == "__main__":
    main()
