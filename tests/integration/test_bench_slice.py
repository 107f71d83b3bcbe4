"""The vertical slice end to end: `vmvc bench --backend all` on real engines."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from vmvc.backends.libvirt_engine.accel import cached_probe

from .conftest import load_json, run_vmvc, write_config

SMALL_TOML = """
profile = "quick"
accel = "auto"
workloads = ["startup", "cpu", "memory", "io", "footprint"]
[run]
repetitions = 2
max_repetitions = 2
steady_backends = "all"  # quick gives the spectrum no steady workloads; this test wants all
[run.workload_repetitions]  # quick runs these once; this test wants both repetitions
cpu = 2
memory = 2
io = 2
[workload.cpu]
seconds = 1
[workload.memory]
seconds = 1
[workload.io]
file_size_mib = 16
runtime_s = 1
"""

BASIC = {"startup", "cpu", "memory", "io", "footprint"}
# Everything `make setup` installs: the baseline, the isolation spectrum's engines, both VM
# flavours (issue 15: `--backend all` runs the whole spectrum).
ALL = ("native", "docker", "podman", "gvisor", "lxc", "libvirt", "libvirt-full")


def test_bench_all_backends_end_to_end(tmp_path: Path, no_leftovers: None) -> None:
    config = write_config(tmp_path / "small.toml", SMALL_TOML)
    out = tmp_path / "results"
    done = run_vmvc(
        "bench", "--backend", "all", "--config", str(config), "--plain", "--output", str(out)
    )
    assert done.returncode == 0, done.stderr[-3000:]

    [result_path] = out.glob("*.json")
    doc = load_json(result_path)
    assert doc["schema_version"] == 1
    assert doc["status"] == "complete"
    assert doc["errors"] == []

    # The acceleration recorded is what the KVM probe decided on this host (TCG here).
    probe = cached_probe("qemu:///system")
    assert probe is not None
    assert doc["environment"]["accel"] == ("kvm" if probe["ok"] else "tcg")
    for key in (
        "kernel",
        "cpu_model",
        "cores",
        "memory_mib",
        "docker_version",
        "libvirt_version",
        "qemu_version",
    ):
        assert doc["environment"].get(key), key

    # Every backend x workload, two measured repetitions each.
    measured = [s for s in doc["samples"] if not s["warmup"]]
    seen = {(s["backend"], s["workload"]) for s in measured}
    assert seen == {(b, w) for b in ALL for w in BASIC}
    reps = Counter((s["backend"], s["workload"], s["metric"]) for s in measured)
    assert set(reps.values()) == {2}

    # Interleaved: repetition 0 of every backend ran before repetition 1 of any.
    order = [(t["repetition"], t["backend"]) for t in doc["trials"]]
    assert order == sorted(order, key=lambda item: item[0])

    # A warm-up boots each backend once and runs no lifecycle trial (vmvc.plan).
    warmups = [t for t in doc["trials"] if t["warmup"]]
    assert {(t["backend"], t["kind"]) for t in warmups} == {(b, "instance") for b in ALL}
    # How the VM booted is recorded: the VM id, kernel, firmware and machine.
    assert doc["image"]["vm_id"] and doc["image"]["recipe"]["kernel_flavour"]
    assert doc["environment"]["vm_firmware"] in ("qboot", "seabios")
    assert doc["environment"]["vm_machine"] == "pc"

    # The same image, proven from inside every instance.
    image_id = doc["image"]["id"]
    reported = {(i["backend"], i["image_id"]) for i in doc["instances"]}
    assert reported == {(b, image_id) for b in ALL}
    # Who answers the system calls: the host's kernel for the containers, gVisor's Sentry
    # (which reports a kernel release of its own) and the guest's kernel otherwise.
    kernels = {i["backend"]: i["kernel"] for i in doc["instances"]}
    assert kernels["docker"] == kernels["podman"] == kernels["lxc"] == kernels["native"]
    assert kernels["gvisor"] != kernels["native"] and kernels["libvirt"] != kernels["native"]
    assert kernels["libvirt-full"] == kernels["libvirt"]  # the same guest kernel, booted fuller
    assert doc["environment"]["gvisor_platform"] == "ptrace"

    # Plausible values: a VM boots slower than a container starts; footprints are positive.
    # Times are compared by their minimum: on a shared host noise only ever adds time (one
    # docker start took 4.0 s in CI once, beside 0.2-0.3 s otherwise), so the fastest of the
    # repetitions is the estimate of what the backend can do (Chen & Revels 2016).
    def values(backend: str, workload: str, metric: str) -> list[float]:
        return sorted(
            s["value"]
            for s in measured
            if (s["backend"], s["workload"], s["metric"]) == (backend, workload, metric)
        )

    def fastest(backend: str, metric: str) -> float:
        return values(backend, "startup", metric)[0]

    def median(backend: str, workload: str, metric: str) -> float:
        found = values(backend, workload, metric)
        return found[len(found) // 2]

    assert fastest("libvirt", "total_s") > fastest("docker", "total_s")
    # The full VM boots the same kernel, then a guest OS: only its user space is longer.
    assert fastest("libvirt-full", "userspace_s") > 2 * fastest("libvirt", "userspace_s")
    assert median("libvirt", "footprint", "total_mib") > 64
    assert median("docker", "cpu", "events_per_s") > 0

    # The markdown summary sits beside the JSON, with the emulation banner when emulated.
    markdown = result_path.with_suffix(".md").read_text()
    assert "| native |" in markdown or "native" in markdown
    # The spectrum, every backend a column, in spectrum order (labels as recorded).
    assert "## Isolation spectrum" in markdown
    header = next(line for line in markdown.splitlines() if line.startswith("| spectrum |"))
    labels = [doc["backend_info"][b]["label"] for b in ALL]
    assert [c.strip() for c in header.strip("|").split("|")][2:] == labels
    if doc["environment"]["accel"] == "tcg":
        assert "Emulated VM" in markdown
    assert result_path.with_suffix(".html").exists()
