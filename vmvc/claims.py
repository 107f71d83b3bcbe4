"""The study note's claims (shared/CLAIMS.md, C01-C10) as rules over the statistics.

Each claim is a small rule that reads the typed ``statistics`` (see vmvc.stats), the facts
observed inside instances and the thresholds, and gives a `vmvc.analysed.Verdict`: claim,
title (claim titles live here and nowhere else), verdict (confirmed, refuted, inconclusive,
not measured, not measured under KVM, reported, fact), text, qualifier, numbers, host,
accel, emulated.

Which backends a claim compares comes from their kinds (doc.backend_info), never from their
names: the first selected backend of kind "vm" against the first of kind "container", both
against the first of kind "native"; every verdict names them (Verdict.compared). The facts
claims (C07, C09) read every instance backend along the isolation spectrum; C01 also splits
a full-OS VM's start into guest OS and VMM/firmware/kernel when both VM flavours ran. A
backend of another kind is judged by no other claim.

Rules for threshold claims: *confirmed* when the whole confidence interval of the ratio lies
above the threshold, *refuted* when it lies wholly below, *inconclusive* when it straddles
the threshold — or when there are too few repetitions for the interval method at all, and
then the qualifier says how many it needs (computed from the method, vmvc.intervals). A
claim whose metrics are missing is *not measured*, never confirmed.

Emulation decides what can be concluded, per host: where that host's VM did not run under
KVM, the claims whose VM figure depends on guest execution speed (C01, C03, C04, C05, C08)
and the memory claims (C02, C10: QEMU's TCG translation cache is part of the VM's memory and
is not measured apart) get **not measured under KVM**; their emulated figures stay in the
text as context. Facts (C07, C09) and C06's sizes and host-side copies keep their verdicts.
A result with several hosts gets one set of verdicts per host.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vmvc import catalogue
from vmvc import stats as st
from vmvc.analysed import (
    CONFIRMED,
    FACT,
    INCONCLUSIVE,
    NOT_KVM,
    NOT_MEASURED,
    REFUTED,
    REPORTED,
    Curve,
    Statistics,
    Verdict,
    is_io_anomaly,
)
from vmvc.config import Thresholds
from vmvc.environment import host_accel
from vmvc.formatting import format_number, format_quantity
from vmvc.keys import split_form
from vmvc.results import ResultDocument

# What a claim calls a kind when no backend of that kind ran (and it names what is missing).
KIND_WORDS = {"native": "native", "container": "container", "vm": "VM"}
_ABSENT = "<no {kind}>"  # never a backend name (names match [a-z][a-z0-9_-]*)


def _title(workload: str, metric: str) -> str:
    return catalogue.metric_title(workload, metric)


# C01: VM boot phases, named as the catalogue names them.
VM_PHASES = {
    m: _title("startup", m) for m in ("create_s", "firmware_kernel_s", "initramfs_s", "userspace_s")
}
# C03: the steady-state resources a verdict rests on (the catalogue says which), each
# measured against native.
RESOURCES = {f"{w}/{m}": _title(w, m) for w, m in catalogue.steady_resources()}
PORTABILITY_METRICS = {
    m: _title("portability", m) for m in ("export_bytes", "export_s", "import_s")
}

EMULATED_TIMING_NOTE = (
    "The VM ran emulated (QEMU TCG, no KVM): this says little about KVM overhead."
)
# Why a claim gets no verdict from an emulated VM, by the kind of VM figure it rests on.
NOT_JUDGED_SPEED = (
    "the VM ran emulated (QEMU TCG, no KVM), and this claim's VM figure depends on guest "
    "execution speed, which under a binary translator says nothing about KVM"
)
NOT_JUDGED_MEMORY = (
    "the VM ran emulated (QEMU TCG, no KVM), and QEMU's translation cache is part of the "
    "VM's memory here; vmvc does not measure it apart, so the figure is not a KVM VM's"
)
UNKNOWN_ACCEL = (
    "the VM's acceleration was not recorded for this host, so it cannot be taken for KVM"
)
EMULATED_FACT_NOTE = (
    "The VM ran emulated (QEMU TCG, no KVM); these facts do not depend on that, "
    "but its timings say little about KVM overhead."
)

Outcome = tuple[str, str, dict[str, Any]]  # verdict, text, numbers
GE = "\N{GREATER-THAN OR EQUAL TO}"
# Typographic signs for the sentences (escaped so the source stays ASCII-unambiguous).
TIMES = "\N{MULTIPLICATION SIGN}"
EN_DASH = "\N{EN DASH}"


@dataclass(frozen=True)
class Context:
    """What every rule may read."""

    doc: ResultDocument
    stats: Statistics
    thresholds: Thresholds
    host: str

    def _role(self, kind: str) -> str:
        return self.doc.first_of_kind(kind) or _ABSENT.format(kind=kind)

    @property
    def vm(self) -> str:
        return self._role("vm")

    @property
    def container(self) -> str:
        return self._role("container")

    @property
    def native(self) -> str:
        return self._role("native")

    def label(self, backend: str) -> str:
        """The backend's own short label ("VM"); the kind's word when none of it ran."""
        for kind, word in KIND_WORDS.items():
            if backend == _ABSENT.format(kind=kind):
                return word
        return self.doc.record(backend).label

    @property
    def confidence(self) -> float:
        return self.stats.confidence

    def summary(self, backend: str, workload: str, metric: str) -> dict[str, Any] | None:
        """The summary as plain values (the rules read it like the numbers they store)."""
        found = self.stats.summary(backend, workload, metric, self.host)
        return found.model_dump() if found else None

    def ratio(self, top: str, bottom: str, workload: str, metric: str) -> dict[str, Any] | None:
        """The stored ratio, or (for a direction stats does not store, e.g. C10's
        container/VM) the same computation on the two summaries' values."""
        stored = self.stats.ratio(top, bottom, workload, metric, self.host)
        if stored is not None:
            return stored.model_dump()
        a, b = self.summary(top, workload, metric), self.summary(bottom, workload, metric)
        if a is None or b is None:
            return None
        return st.ratio_summary(a["values"], b["values"], self.confidence)


@dataclass(frozen=True)
class Claim:
    id: str
    title: str
    rule: Callable[[Context], Outcome]
    # Facts (kernel, visibility) hold whatever the acceleration; timings do not.
    timing: bool = True
    # What of the VM's figure emulation falsifies: "speed", "memory" or "" (nothing).
    emulation: str = ""
    # The kinds the claim sets against each other, named in the verdict (Verdict.compared):
    # the first selected backend of each (Context.vm, .container, .native).
    compares: tuple[str, ...] = ("vm", "container")


# ---------------------------------------------------------------- formatting helpers


def fmt(value: float | None) -> str:
    """The reports' shared number format, so verdict sentences and tables show the same digits."""
    if value is None:
        return "n/a"
    return format_number(value)


fmt_value = format_quantity


def too_few(estimate: dict[str, Any]) -> str:
    """'n = 3; needs >= 4' when an estimate has no interval for lack of repetitions, else ''."""
    if estimate.get("ci_low") is not None and estimate.get("ci_high") is not None:
        return ""
    needs = estimate.get("needs_n")
    sizes = [estimate[k] for k in ("n_num", "n_den", "n") if estimate.get(k) is not None]
    if not needs or not sizes:
        return ""
    counts = " and ".join(str(n) for n in dict.fromkeys(sizes))
    return f"n = {counts}; needs {GE} {needs}"


def ci_text(estimate: dict[str, Any], confidence: float, suffix: str = "") -> str:
    """'95% CI 35.1x-47.0x', or why there is none (never a confidence for a mere range)."""
    low, high = estimate.get("ci_low"), estimate.get("ci_high")
    if low is None or high is None:
        short = too_few(estimate)
        return f"no interval: {short} repetitions" if short else "no interval"
    return f"{confidence:.0%} CI {fmt(low)}{suffix}{EN_DASH}{fmt(high)}{suffix}"


def ratio_text(ratio: dict[str, Any], confidence: float) -> str:
    """'40.8x (95% CI 35.1x-47.0x)' with the typographic signs."""
    return f"{fmt(ratio.get('ratio'))}{TIMES} ({ci_text(ratio, confidence, TIMES)})"


def threshold_verdict(low: float | None, high: float | None, threshold: float) -> str:
    """Confirmed only when the whole interval clears the threshold (strictly)."""
    if low is None or high is None:
        return INCONCLUSIVE
    if low > threshold:
        return CONFIRMED
    if high < threshold:
        return REFUTED
    return INCONCLUSIVE


def _ci_position(verdict: str, threshold: float, ratio: dict[str, Any]) -> str:
    if ratio.get("ci_low") is None or ratio.get("ci_high") is None:
        return f"inconclusive without an interval (threshold {threshold:g}{TIMES})"
    where = {CONFIRMED: "lies wholly above", REFUTED: "lies wholly below"}
    return f"the CI {where.get(verdict, 'straddles')} {threshold:g}{TIMES}"


def _missing(ctx: Context, needs: list[tuple[str, str, str]]) -> str:
    """'not measured' text naming what is missing, e.g. 'VM startup/total_s'."""
    absent = [f"{ctx.label(b)} {w}/{m}" for b, w, m in needs if ctx.summary(b, w, m) is None]
    if not absent:
        return "Not measured: no usable ratio (a median of 0)."
    return "Not measured: no " + ", no ".join(absent) + "."


def _ratio_numbers(ratio: dict[str, Any], threshold: float | None = None) -> dict[str, Any]:
    numbers = {
        "ratio": ratio.get("ratio"),
        "ci_low": ratio.get("ci_low"),
        "ci_high": ratio.get("ci_high"),
    }
    if too_few(ratio):
        numbers["needs_n"] = ratio.get("needs_n")
    if threshold is not None:
        numbers["threshold"] = threshold
    return numbers


def _threshold_ratio_claim(
    ctx: Context,
    top: str,
    bottom: str,
    workload: str,
    metric: str,
    threshold: float,
    describe: str,
) -> Outcome:
    """Shared rule for 'top / bottom > threshold' claims on one metric (C01, C02, C10)."""
    ratio = ctx.ratio(top, bottom, workload, metric)
    if ratio is None or ratio.get("ratio") is None:
        needs = [(top, workload, metric), (bottom, workload, metric)]
        return NOT_MEASURED, _missing(ctx, needs), {}
    top_s = ctx.summary(top, workload, metric)
    bottom_s = ctx.summary(bottom, workload, metric)
    assert top_s is not None and bottom_s is not None
    verdict = threshold_verdict(ratio["ci_low"], ratio["ci_high"], threshold)
    unit = top_s["unit"]
    text = (
        f"{describe}: {ctx.label(top)} {fmt_value(top_s['median'], unit)} vs "
        f"{ctx.label(bottom)} {fmt_value(bottom_s['median'], bottom_s['unit'])} (median), "
        f"{ctx.label(top)}/{ctx.label(bottom)} {ratio_text(ratio, ctx.confidence)}; "
        f"{_ci_position(verdict, threshold, ratio)}."
    )
    numbers = {
        f"{top}_median": top_s["median"],
        f"{bottom}_median": bottom_s["median"],
        "unit": unit,
        f"n_{top}": top_s["n"],
        f"n_{bottom}": bottom_s["n"],
        **_ratio_numbers(ratio, threshold),
    }
    return verdict, text, numbers


# ---------------------------------------------------------------- the claims


def c01_startup(ctx: Context) -> Outcome:
    """VM median / container median of start-to-ready, against c01_startup_ratio."""
    verdict, text, numbers = _threshold_ratio_claim(
        ctx,
        ctx.vm,
        ctx.container,
        "startup",
        "total_s",
        ctx.thresholds.c01_startup_ratio,
        "Start to ready",
    )
    if verdict == NOT_MEASURED:
        return verdict, text, numbers
    phases = {
        name: summary["median"]
        for name in VM_PHASES
        if (summary := ctx.summary(ctx.vm, "startup", name)) is not None
    }
    native = ctx.summary(ctx.native, "startup", "total_s")
    if native is not None:
        numbers["native_median"] = native["median"]
    if phases:
        numbers["vm_phases"] = phases
        largest = max(phases, key=lambda name: phases[name])
        text += f" Largest VM phase: {VM_PHASES[largest]} ({fmt(phases[largest])} s)."
    return verdict, text + _guest_os_share(ctx, numbers), numbers


def _flavoured_vm(ctx: Context, flavour: str) -> str | None:
    doc = ctx.doc
    found = [b for b in doc.backend_info if doc.record(b).kind == "vm"]
    return next((b for b in found if doc.record(b).flavour == flavour), None)


def _guest_os_share(ctx: Context, numbers: dict[str, Any]) -> str:
    """How much of a full-OS VM's start is the guest OS (full - minimal flavour: the same
    kernel, firmware and machine, so the difference is what the booted OS adds) and how
    much the VMM, firmware and kernel (the minimal flavour's phases up to its user space)."""
    full, minimal = _flavoured_vm(ctx, "full"), _flavoured_vm(ctx, "minimal")
    if full is None or minimal is None:
        return ""
    full_total = ctx.summary(full, "startup", "total_s")
    minimal_total = ctx.summary(minimal, "startup", "total_s")
    if full_total is None or minimal_total is None or full_total["median"] <= 0:
        return ""
    guest_os = full_total["median"] - minimal_total["median"]
    below = {
        name: summary["median"]
        for name in ("create_s", "firmware_kernel_s", "initramfs_s")
        if (summary := ctx.summary(minimal, "startup", name)) is not None
    }
    numbers["guest_os_s"] = guest_os
    numbers["guest_os_share"] = guest_os / full_total["median"]
    text = (
        f" Of the full-OS VM's start ({ctx.label(full)}, {fmt(full_total['median'])} s), the "
        f"guest OS takes {fmt(guest_os)} s ({guest_os / full_total['median']:.0%}: full "
        f"{EN_DASH} minimal flavour, same kernel and firmware)"
    )
    if below:
        vmm = sum(below.values())
        numbers["vmm_firmware_kernel_s"] = vmm
        parts = ", ".join(f"{VM_PHASES[name]} {fmt(value)}" for name, value in below.items())
        text += f"; the VMM, firmware and kernel {fmt(vmm)} s ({parts} s, minimal VM)"
    return text + "."


# How C02 and C10 count memory (vmvc.bench.host_memory): said in both verdicts' text.
HOST_MEMORY_BASIS = (
    "Counted as the drop of the host's MemAvailable (engine daemons, shims, QEMU and kernel "
    "included; page cache not dropped), after every instance touched {touch} of memory"
)


def _memory_basis(ctx: Context, backend: str) -> str:
    """The counting sentence, with the touched working set the samples record."""
    touched = {
        s.metadata.get("touch_mib")
        for s in ctx.doc.measured()
        if (s.host, s.backend, s.workload) == (ctx.host, backend, "density")
    } - {None}
    touch = f"{touched.pop()} MiB" if len(touched) == 1 else "the same amount"
    return HOST_MEMORY_BASIS.format(touch=touch)


def _noise_note(ctx: Context) -> str:
    """A sentence naming the backends whose series did not rise above the host's noise."""
    noisy = []
    for backend in (ctx.vm, ctx.container):
        flags = [
            s.metadata.get("above_noise")
            for s in ctx.doc.measured()
            if (s.host, s.backend, s.workload, s.metric)
            == (ctx.host, backend, "density", "marginal_mib")
        ]
        if False in flags:
            noisy.append(ctx.label(backend))
    if not noisy:
        return ""
    return (
        f" On this host the drop over the series did not stand above the host's own noise "
        f"for {' and '.join(noisy)}: its figures are noise-dominated."
    )


def _breakdown(ctx: Context, metric: str) -> dict[str, Any]:
    """Per-backend medians of a density figure, for the numbers (a breakdown, not a verdict)."""
    found: dict[str, Any] = {}
    for kind, backend in (("vm", ctx.vm), ("container", ctx.container)):
        summary = ctx.summary(backend, "density", metric) if backend else None
        if summary is not None:
            found[f"{kind}_{metric}"] = summary["median"]
    return found


def _not_above_noise(ctx: Context, metric: str) -> str | None:
    """Which backend's density figure is not positive (the host's drop was within its own
    noise: other work freed more than the instances took), or None."""
    for backend in (ctx.vm, ctx.container):
        summary = ctx.summary(backend, "density", metric)
        if summary is not None and summary["median"] <= 0:
            return (
                f"The host's MemAvailable drop for {ctx.label(backend)} was not positive "
                f"({metric} {fmt_value(summary['median'], summary['unit'])}): other work on "
                "the host moved more memory than the instances took, so no ratio is formed."
            )
    return None


def c02_footprint(ctx: Context) -> Outcome:
    """VM / container memory cost of the FIRST instance (host MemAvailable drop, daemons'
    growth included), against c02_footprint_ratio; the marginal cost is C10's."""
    noisy = _not_above_noise(ctx, "first_instance_mib")
    if noisy is not None:
        return INCONCLUSIVE, noisy, {"basis": "host MemAvailable drop with 1 instance"}
    verdict, text, numbers = _threshold_ratio_claim(
        ctx,
        ctx.vm,
        ctx.container,
        "density",
        "first_instance_mib",
        ctx.thresholds.c02_footprint_ratio,
        "Host memory of the first instance",
    )
    if verdict == NOT_MEASURED:
        return verdict, text, numbers
    text += f" {_memory_basis(ctx, ctx.container)}; per-process PSS is only its breakdown."
    text += _noise_note(ctx)
    numbers["basis"] = "host MemAvailable drop with 1 instance"
    numbers.update(_breakdown(ctx, "marginal_mib"))
    return verdict, text, numbers


def _overhead(ctx: Context, backend: str, key: str) -> dict[str, Any] | None:
    """Overhead of backend vs native on one resource, with its CI and per-part verdict.

    overhead = 1 - backend/native for higher-is-better metrics (throughput, IOPS) and
    backend/native - 1 for lower-is-better ones (latency), so it is positive when slower.
    """
    workload, metric = key.split("/")
    ratio = ctx.ratio(backend, ctx.native, workload, metric)
    native = ctx.summary(ctx.native, workload, metric)
    if ratio is None or ratio.get("ratio") is None or native is None:
        return None
    sign = -1.0 if native["higher_is_better"] else 1.0
    low, high = ratio["ci_low"], ratio["ci_high"]
    ends = None if low is None or high is None else sorted([sign * (low - 1), sign * (high - 1)])
    threshold = ctx.thresholds.c03_overhead_fraction
    return {
        "ratio": ratio["ratio"],
        "overhead": sign * (ratio["ratio"] - 1),
        "overhead_ci_low": ends[0] if ends else None,
        "overhead_ci_high": ends[1] if ends else None,
        "n": min(ratio["n_num"], ratio["n_den"]),
        "too_few": bool(too_few(ratio)),
        "needs_n": ratio.get("needs_n"),
        # confirmed: overhead above the threshold; refuted: below it (near-native).
        "verdict": threshold_verdict(
            ends[0] if ends else None, ends[1] if ends else None, threshold
        ),
    }


def _half_verdict(parts: list[dict[str, Any]], *, near_native: bool) -> str:
    """Majority rule over resources for one backend.

    For the VM the claim is 'has overhead' (a confirmed part supports it); for containers it
    is 'near native' (a refuted overhead supports it). Strict majority of measured resources.
    """
    if not parts:
        return NOT_MEASURED
    support = REFUTED if near_native else CONFIRMED
    against = CONFIRMED if near_native else REFUTED
    if sum(p["verdict"] == support for p in parts) * 2 > len(parts):
        return CONFIRMED
    if sum(p["verdict"] == against for p in parts) * 2 > len(parts):
        return REFUTED
    return INCONCLUSIVE


def _overhead_list(parts: dict[str, dict[str, Any]]) -> str:
    return ", ".join(f"{RESOURCES[key]} {part['overhead']:+.0%}" for key, part in parts.items())


def c03_overhead(ctx: Context) -> Outcome:
    """Overhead versus native per resource, for the VM and for the container.

    Per resource and backend: overhead > c03_overhead_fraction with the CI above it is a
    confirmed overhead, a CI wholly below it is 'near native'. The VM half ('virtualization
    adds overhead') is confirmed when overhead is confirmed on a strict majority of the
    resources measured for the VM, refuted when near native on a strict majority. The
    container half ('near native') is confirmed when near native on a strict majority,
    refuted when overhead is confirmed on a strict majority; only its refutation changes the
    overall verdict. Overall:

    - not measured: no resource has both a VM and a native measurement;
    - refuted: the VM half is refuted (overhead below the threshold on a majority), or the
      container half is refuted (containers clearly not near-native);
    - confirmed: the VM half is confirmed and the container half is not refuted (a missing
      container measurement is named in the text);
    - inconclusive otherwise.
    Per-resource ratios, overheads, CIs and part verdicts are in numbers["resources"].
    """
    resources: dict[str, dict[str, Any]] = {}
    anomalies: list[dict[str, Any]] = []
    noise = ctx.thresholds.noise_threshold
    for key in RESOURCES:
        parts: dict[str, dict[str, Any]] = {}
        for backend in (ctx.vm, ctx.container):
            part = _overhead(ctx, backend, key)
            if part is None:
                continue
            if is_io_anomaly(key, part, noise):
                anomalies.append(
                    {
                        "resource": key,
                        "backend": backend,
                        "ratio": part["ratio"],
                        "overhead": part["overhead"],
                    }
                )
                continue  # never evidence for or against the claim
            parts[backend] = part
        if parts:
            resources[key] = parts
    vm = {key: parts[ctx.vm] for key, parts in resources.items() if ctx.vm in parts}
    ct = {key: parts[ctx.container] for key, parts in resources.items() if ctx.container in parts}
    vm_half = _half_verdict(list(vm.values()), near_native=False)
    ct_half = _half_verdict(list(ct.values()), near_native=True)
    threshold = ctx.thresholds.c03_overhead_fraction
    numbers: dict[str, Any] = {
        "threshold": threshold,
        "vm": vm_half,
        "container_near_native": ct_half,
        "vm_overhead_confirmed": sum(p["verdict"] == CONFIRMED for p in vm.values()),
        "vm_resources": len(vm),
        "container_overhead_confirmed": sum(p["verdict"] == CONFIRMED for p in ct.values()),
        "container_resources": len(ct),
        "resources": resources,
        "anomalies": anomalies,
        "noise_threshold": noise,
    }
    anomaly_text = _anomaly_text(ctx, anomalies, noise)
    kernels = kernel_mismatch(ctx)
    if kernels is not None:
        numbers["kernels"] = kernels
    if vm_half == NOT_MEASURED:
        text = "Not measured: no resource has both a VM and a native result."
        return NOT_MEASURED, text + anomaly_text, {"anomalies": anomalies} if anomalies else {}
    short = [p for parts in resources.values() for p in parts.values() if p["too_few"]]
    if short:
        numbers["n_min"] = min(p["n"] for p in short)
        numbers["needs_n"] = short[0]["needs_n"]
    if REFUTED in (vm_half, ct_half):
        verdict = REFUTED
    elif vm_half == CONFIRMED:
        verdict = CONFIRMED
    else:
        verdict = INCONCLUSIVE
    text = (
        f"VM overhead vs native: {_overhead_list(vm)} (above {threshold:.0%} with the CI "
        f"clear of it on {numbers['vm_overhead_confirmed']} of {len(vm)})"
    )
    if ct:
        text += (
            f"; container: {_overhead_list(ct)} (clearly above {threshold:.0%} on "
            f"{numbers['container_overhead_confirmed']} of {len(ct)})."
        )
    else:
        text += "; container overhead not measured."
    return verdict, text + anomaly_text + _kernel_text(kernels), numbers


def _kernel_of(ctx: Context, backend: str) -> str:
    """The kernel release the backend's instances on this host reported from inside."""
    for inst in ctx.doc.instances:
        if inst.backend == backend and inst.host == ctx.host and inst.kernel:
            return inst.kernel
    return ""


def kernel_mismatch(ctx: Context) -> dict[str, Any] | None:
    """The VM guest's kernel against the host's, for C03 (None when either is unknown).

    Native and the container run the host's kernel, the guest its own: where the two differ
    (the guest cannot boot the host's kernel version, e.g. a custom host kernel), part of
    what C03 books as the VM's overhead may be the kernel. The host's is what native (else
    the container) reported from inside on that host, else this machine's recorded one.
    """
    guest = _kernel_of(ctx, ctx.vm)
    host = _kernel_of(ctx, ctx.native) or _kernel_of(ctx, ctx.container)
    if not host and ctx.host == "local":
        host = str(ctx.doc.environment.get("kernel") or "")
    if not guest or not host:
        return None
    return {"guest": guest, "host": host, "differs": guest != host}


def _short_release(release: str) -> str:
    """6.1.0-57-cloud-amd64 -> 6.1 (major.minor), else the release itself."""
    match = re.match(r"(\d+\.\d+)", release)
    return match.group(1) if match else release


def _kernel_text(kernels: dict[str, Any] | None) -> str:
    if not kernels or not kernels["differs"]:
        return ""
    guest, host = kernels["guest"], kernels["host"]
    releases = ""
    if _short_release(guest) != _short_release(host):
        guest, host = _short_release(guest), _short_release(host)
        releases = f" ({kernels['guest']} vs {kernels['host']})"
    return (
        f" Kernel differs: {guest} guest vs {host} host{releases}; part of the overhead may "
        "be the kernel."
    )


def _anomaly_text(ctx: Context, anomalies: list[dict[str, Any]], noise: float) -> str:
    if not anomalies:
        return ""
    listed = ", ".join(
        f"{ctx.label(a['backend'])} {RESOURCES[a['resource']]} {-a['overhead']:+.0%}"
        for a in anomalies
    )
    return (
        f" ANOMALY (not counted): faster than native at disk I/O by more than the "
        f"{noise:.0%} noise threshold, which only a cache can do: {listed}."
    )


def c04_clone(ctx: Context) -> Outcome:
    """The clone step alone (create from the prepared image), VM / container, against
    c04_clone_ratio. Starting the clone is a boot, which C01 judges: it stays out of the
    ratio and is shown as context, so C04 does not repeat C01."""
    verdict, text, numbers = _threshold_ratio_claim(
        ctx,
        ctx.vm,
        ctx.container,
        "clone",
        "clone_s",
        ctx.thresholds.c04_clone_ratio,
        "Clone step alone (create from the prepared image)",
    )
    if verdict == NOT_MEASURED:
        return verdict, text, numbers
    boot = {
        b: summary["median"]
        for b in (ctx.vm, ctx.container)
        if (summary := ctx.summary(b, "clone", "clone_to_ready_s")) is not None
    }
    if len(boot) == 2:
        numbers["clone_to_ready_medians"] = boot
        text += (
            f" Starting the clone to ready (a boot, judged by C01, not here): "
            f"{ctx.label(ctx.vm)} {fmt(boot[ctx.vm])} s vs {ctx.label(ctx.container)} "
            f"{fmt(boot[ctx.container])} s."
        )
    return verdict, text, numbers


def _latest_metadata(
    ctx: Context, backend: str, workload: str, metric: str, form: str | None = None
) -> dict[str, Any]:
    """Metadata of the last measured sample (e.g. the instance counts behind a slope), of
    one export form when given."""
    matching = [
        s
        for s in ctx.doc.measured()
        if (s.host, s.backend, s.workload, s.metric) == (ctx.host, backend, workload, metric)
        and (form is None or s.metadata.get("form") == form)
    ]
    return dict(matching[-1].metadata) if matching else {}


def _curve_text(ctx: Context, curve: Curve) -> str:
    """'VM 6.5 s at N=1, 6.6 s at N=2, 10 s at N=3 (2 host CPUs); no slope: ...'."""
    points = ", ".join(f"{fmt(p.median)} s at N={p.n}" for p in curve.points)
    cpus = f" ({curve.host_cpus} host CPUs)" if curve.host_cpus else ""
    if curve.fits and curve.slope is not None:
        fit = (
            f"a line fits: {fmt(curve.slope)} s per extra instance "
            f"(r\N{SUPERSCRIPT TWO} = {curve.r_squared:.2f})"
            if curve.r_squared is not None
            else f"a flat line fits: {fmt(curve.slope)} s per extra instance"
        )
    else:
        fit = curve.note
    text = f"{ctx.label(curve.backend)} {points}{cpus}; {fit}"
    if curve.refused_counts:
        refused = ", ".join(f"N={n}" for n in curve.refused_counts)
        text += f"; {refused} refused by the memory guard"
    return text


def c05_scale(ctx: Context) -> Outcome:
    """Time until N instances are all ready, per N: VM / container at the largest N both
    measured, against c05_scale_ratio; the curves (and a slope only where a line fits,
    vmvc.curves) as the evidence. A knee at the core count (CPU saturation) is named as the
    finding. The slopes decide nothing: a line through a knee hides it, and with a line on
    both sides the per-N ratios already say which grows faster."""
    vm_name, ct_name = ctx.vm, ctx.container
    vm, ct = (ctx.stats.curve(b, "scale", "all_ready_s", ctx.host) for b in (vm_name, ct_name))
    if vm is None or ct is None:
        absent = [
            f"{ctx.label(b)} scale/all_ready_s"
            for b, c in ((vm_name, vm), (ct_name, ct))
            if c is None
        ]
        return NOT_MEASURED, "Not measured: no " + ", no ".join(absent) + ".", {}
    common = sorted({p.n for p in vm.points} & {p.n for p in ct.points})
    raw: dict[int, dict[str, Any]] = {}
    for n in common:
        found = ctx.ratio(vm_name, ct_name, "scale", f"all_ready_s@N={n}")
        if found and found.get("ratio") is not None:
            raw[n] = found
    per_n = {str(n): _ratio_numbers(r) for n, r in raw.items()}
    curves = f"{_curve_text(ctx, ct)}. {_curve_text(ctx, vm)}."
    numbers: dict[str, Any] = {
        "per_n": per_n,
        "curves": {c.backend: c.model_dump() for c in (ct, vm)},
    }
    if not per_n:
        return NOT_MEASURED, f"Not measured: no instance count both measured. {curves}", numbers
    largest = max(raw)
    ratio = raw[largest]
    threshold = ctx.thresholds.c05_scale_ratio
    verdict = threshold_verdict(ratio["ci_low"], ratio["ci_high"], threshold)
    both = [b for b in (vm, ct) if b.fits and b.slope is not None]
    text = (
        f"Time until N are all ready, {ctx.label(vm_name)}/{ctx.label(ct_name)} at the "
        f"largest N both measured (N={largest}): "
        f"{ratio_text(ratio, ctx.confidence)}; "
        f"{_ci_position(verdict, threshold, ratio)}. Curves: {curves}"
    )
    if len(both) == 2 and vm.slope is not None and ct.slope is not None:
        numbers["slopes"] = {vm_name: vm.slope, ct_name: ct.slope}
        lower = ctx.label(ct_name) if ct.slope < vm.slope else ctx.label(vm_name)
        text += f" Where both lines fit, the {lower}'s slope is the lower."
    knees = [c for c in (vm, ct) if c.knee]
    if knees:
        numbers["knee_at_cores"] = [c.backend for c in knees]
        names = " and ".join(ctx.label(c.backend) for c in knees)
        curve, rise = ("curves are", "rise") if len(knees) > 1 else ("curve is", "rises")
        text += (
            f" The {names} {curve} flat up to the host's {knees[0].host_cpus} CPUs and {rise} "
            "past them: CPU saturation. That knee is the finding: one more instance costs "
            "nearly nothing while a core is free and a whole start's CPU time after that."
        )
    numbers.update(
        {
            "largest_common_n": largest,
            **_ratio_numbers(ratio, threshold),
            f"n_{vm_name}": min(p.repetitions for p in vm.points),
            f"n_{ct_name}": min(p.repetitions for p in ct.points),
        }
    )
    return verdict, text, numbers


def _reported(ctx: Context, workload: str, metrics: dict[str, str]) -> Outcome:
    """Side-by-side medians and VM/container ratios, no threshold (C06, C08)."""
    parts, numbers = [], {}
    vm_name, ct_name = ctx.vm, ctx.container
    for metric, label in metrics.items():
        vm, ct = ctx.summary(vm_name, workload, metric), ctx.summary(ct_name, workload, metric)
        if vm is None and ct is None:
            continue
        ratio = ctx.ratio(vm_name, ct_name, workload, metric)
        unit = next(s["unit"] for s in (vm, ct) if s)
        vm_median, ct_median = (vm["median"] if vm else None), (ct["median"] if ct else None)
        entry = {
            f"{vm_name}_median": vm_median,
            f"{ct_name}_median": ct_median,
            "unit": unit,
            **_ratio_numbers(ratio or {}),
        }
        numbers[metric] = entry
        sentence = (
            f"{label}: VM {fmt_value(vm_median, unit)} vs container {fmt_value(ct_median, unit)}"
        )
        if ratio and ratio.get("ratio") is not None:
            sentence += f", {ratio_text(ratio, ctx.confidence)}"
        parts.append(sentence)
    if not parts:
        needs = [(b, workload, m) for m in metrics for b in (vm_name, ct_name)]
        return NOT_MEASURED, _missing(ctx, needs), {}
    text = "; ".join(parts) + " (medians, VM/container ratios)."
    return REPORTED, _cap(text), numbers


def _portability_forms(ctx: Context) -> list[str]:
    """The export forms both the VM and the container were measured in, catalogue order."""
    found: dict[str, set[str]] = {}
    for summary in ctx.stats.summaries:
        metric, form = split_form(summary.metric)
        mine = summary.workload == "portability" and summary.host == ctx.host
        if mine and form and metric in PORTABILITY_METRICS:
            found.setdefault(form, set()).add(summary.backend)
    both = [f for f, backends in found.items() if {ctx.vm, ctx.container} <= backends]
    return sorted(both, key=lambda form: catalogue.form_rank("portability", form))


def c06_portability(ctx: Context) -> Outcome:
    """Export size and export/import times, VM/container, per export form and never across
    forms: each form packs both sides alike (the same compressor and level, or none)."""
    forms = _portability_forms(ctx)
    if not forms:
        old = [(b, "portability", m) for m in PORTABILITY_METRICS for b in (ctx.vm, ctx.container)]
        if any(ctx.summary(*need) is not None for need in old):
            return (
                NOT_MEASURED,
                "Not measured alike: this result's exports are each engine's own form "
                "(recorded before vmvc exported both the same way: the VM's a compressed "
                "qcow2, the container's a plain tar), so their sizes and times are not "
                "compared; run the portability workload again.",
                {},
            )
        needs = [
            (b, "portability", f"{m}@uncompressed")
            for m in PORTABILITY_METRICS
            for b in (ctx.vm, ctx.container)
        ]
        return NOT_MEASURED, _missing(ctx, needs), {}
    parts, numbers = [], {}
    for form in forms:
        metrics = {f"{m}@{form}": label for m, label in PORTABILITY_METRICS.items()}
        _verdict, text, per_form = _reported(ctx, "portability", metrics)
        meta = _latest_metadata(ctx, ctx.vm, "portability", "export_bytes", form)
        compressor = meta.get("compressor") or "none"
        how = (
            "no compression"
            if compressor == "none"
            else f"{compressor} level {meta.get('compression_level')} on both"
        )
        parts.append(f"{_cap(form)} ({how}): {text}")
        numbers[form] = {key.split("@", 1)[0]: value for key, value in per_form.items()}
        if compressor != "none":
            numbers[f"{form}_compressor"] = f"{compressor} -{meta.get('compression_level')}"
    return REPORTED, " ".join(parts), numbers


def c08_recovery(ctx: Context) -> Outcome:
    """Per failure kind (vmvc.catalogue.FAILURES): the time from kill to ready again on each
    side, their VM/container ratio, or the outcome "no automatic restart" where the engine
    has none; a failure a container cannot have (a guest kernel panic) says so. A result
    from before failure kinds (plain recovery_s) is reported as it was."""
    if ctx.summary(ctx.vm, "recovery", "recovery_s") or ctx.summary(
        ctx.container, "recovery", "recovery_s"
    ):
        return _reported(ctx, "recovery", {"recovery_s": "time from kill to ready again"})
    parts, numbers = [], {}
    sides = [("VM", ctx.vm), ("container", ctx.container)]
    for kind in catalogue.FAILURES:
        key = f"recovery_s@{kind.name}"
        outcomes = {b: _recovery_outcome(ctx, b, kind.name) for _, b in sides if b}
        if all(o is None for o in outcomes.values()):
            continue  # this kind was measured on neither side
        entry: dict[str, Any] = {"unit": "s"}
        shown = []
        for label, backend in sides:
            outcome = outcomes.get(backend) if backend else None
            if outcome is None and label == "container" and not kind.container:
                outcome = "does not apply (no kernel of its own)"
            if isinstance(outcome, float):
                entry[f"{backend}_median"] = outcome
                shown.append(f"{label} {fmt_value(outcome, 's')}")
            elif outcome is not None:
                entry[f"{backend or label}_outcome"] = outcome
                shown.append(f"{label}: {outcome}")
        ratio = ctx.ratio(ctx.vm, ctx.container, "recovery", key)
        sentence = f"{kind.title}: " + " vs ".join(shown)
        if ratio and ratio.get("ratio") is not None:
            entry.update(_ratio_numbers(ratio))
            sentence += f", {ratio_text(ratio, ctx.confidence)}"
        numbers[kind.name] = entry
        parts.append(sentence)
    if not parts:
        needs = [(b, "recovery", "recovery_s") for b in (ctx.vm, ctx.container)]
        return NOT_MEASURED, _missing(ctx, needs), {}
    text = "; ".join(parts) + " (medians, VM/container ratios)."
    return REPORTED, _cap(text), numbers


def _recovery_outcome(ctx: Context, backend: str | None, kind: str) -> float | str | None:
    """The median time back for one failure kind, the outcome recorded instead of a time
    ("no automatic restart"), or None when that kind was not measured on the backend."""
    if backend is None:
        return None
    found = ctx.summary(backend, "recovery", f"recovery_s@{kind}")
    if found is not None:
        return float(found["median"])
    for outcome in catalogue.outcome_metrics("recovery", "recovery_s"):
        if ctx.summary(backend, "recovery", f"{outcome.name}@{kind}") is not None:
            return outcome.outcome
    return None


def _instance(doc: ResultDocument, backend: str) -> bool:
    return doc.record(backend).kind != "native"


def _facts(ctx: Context) -> dict[str, dict[str, Any]]:
    """Facts of every instance backend, along the isolation spectrum (report order: container,
    sandbox, system container, VM); native is the host itself, so no news there."""
    doc = ctx.doc
    return {b: dict(doc.facts[b]) for b in doc.order_backends(set(doc.facts)) if _instance(doc, b)}


def _shares_kernel(facts: dict[str, Any]) -> bool | None:
    """Prefer the observed fact; equal release strings alone can be a coincidence."""
    if isinstance(facts.get("shares_host_kernel"), bool):
        return facts["shares_host_kernel"]
    kernel, host = facts.get("kernel_release"), facts.get("host_kernel_release")
    return None if not kernel or not host else kernel == host


def _cap(text: str) -> str:
    """A sentence's first word capitalised, unless it is a name with capitals of its own
    ("gVisor", "VM")."""
    if text[1:2].isupper():
        return text
    return text[:1].upper() + text[1:]


def _yes_no(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "unknown"


def _capabilities(value: Any) -> str:
    """A capability mask as recorded, or a list of names joined."""
    if value is None:
        return "unknown"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) or "none"
    return str(value)


def c07_isolation(ctx: Context) -> Outcome:
    """Side-by-side isolation facts seen from inside each instance, no timing."""
    facts = _facts(ctx)
    if not facts:
        return NOT_MEASURED, "Not measured: no isolation facts from a container or a VM.", {}
    keys = ("shares_host_kernel", "host_processes_visible", "capabilities", "devices_visible")
    numbers: dict[str, Any] = {}
    parts = []
    for backend, seen in facts.items():
        shares = _shares_kernel(seen)
        numbers[backend] = {key: seen.get(key) for key in keys} | {"shares_host_kernel": shares}
        parts.append(
            f"{_cap(ctx.label(backend))} (host kernel shared: {_yes_no(shares)}, "
            f"host processes visible: {_yes_no(seen.get('host_processes_visible'))}, "
            f"devices visible: {seen.get('devices_visible', 'unknown')}, "
            f"capabilities: {_capabilities(seen.get('capabilities'))})"
        )
    return FACT, "; ".join(parts) + "." + _exposure_text(ctx, numbers), numbers


def _exposure_text(ctx: Context, numbers: dict[str, Any]) -> str:
    """The host kernel's exposure along the spectrum: distinct host system calls a fixed mix
    reached (vmvc.bench.syscalls), native's as the baseline. Adds the counts to numbers."""
    doc = ctx.doc
    counted = {
        b: doc.facts[b]["host_syscalls_reached"]
        for b in doc.order_backends(set(doc.facts))
        if isinstance(doc.facts[b].get("host_syscalls_reached"), int)
    }
    if not counted:
        return ""
    for backend, reached in counted.items():
        numbers.setdefault(backend, {})["host_syscalls_reached"] = reached
    listed = ", ".join(f"{ctx.label(b)} {n}" for b, n in counted.items())
    lower = [b for b in counted if doc.facts[b].get("host_syscall_lost_events")]
    bound = (
        f" ({', '.join(map(ctx.label, lower))}: at least; the trace overflowed)" if lower else ""
    )
    workload = (
        next((doc.facts[b].get("host_syscall_workload") for b in counted), None) or "a fixed mix"
    )
    return (
        f" Host kernel exposure, distinct host system calls reached by the same mix "
        f"({workload}): {listed}{bound}."
    )


def c09_kernel(ctx: Context) -> Outcome:
    """Kernel and OS release inside each instance against the host's."""
    facts = {b: f for b, f in _facts(ctx).items() if f.get("kernel_release")}
    if not facts:
        return NOT_MEASURED, "Not measured: no kernel release seen inside a container or VM.", {}
    numbers: dict[str, Any] = {}
    parts = []
    for backend, seen in facts.items():
        shares = _shares_kernel(seen)
        numbers[backend] = {
            "kernel_release": seen.get("kernel_release"),
            "host_kernel_release": seen.get("host_kernel_release"),
            "os_release": seen.get("os_release"),
            "shares_host_kernel": shares,
        }
        kernel, host = seen["kernel_release"], seen.get("host_kernel_release")
        whose = {True: "the host's kernel", False: "its own kernel"}.get(shares, "kernel")
        sentence = f"{_cap(ctx.label(backend))} runs {whose} {kernel}"
        if host and host == kernel and shares is False:
            # A VM may boot the very same kernel package as the host: same string, own kernel.
            sentence += " (same release string as the host's, but a separate kernel)"
        elif host and host != kernel:
            sentence += f" (host: {host})"
        if seen.get("os_release"):
            sentence += f", OS {seen['os_release']}"
        parts.append(sentence)
    return FACT, "; ".join(parts) + ".", numbers


def c10_density(ctx: Context) -> Outcome:
    """Container / VM instances that fit in host memory at the MARGINAL cost (slope of the
    host's MemAvailable drop over N), against c10_density_ratio."""
    noisy = _not_above_noise(ctx, "marginal_mib")
    if noisy is not None:
        return INCONCLUSIVE, noisy, {"basis": "host MemAvailable at start / marginal_mib"}
    verdict, text, numbers = _threshold_ratio_claim(
        ctx,
        ctx.container,
        ctx.vm,
        "density",
        "density_instances",
        ctx.thresholds.c10_density_ratio,
        "Instances that fit in host memory",
    )
    if verdict == NOT_MEASURED:
        return verdict, text, numbers
    numbers.update(_breakdown(ctx, "marginal_mib"))
    marginal = [
        f"{ctx.label(backend)} {fmt_value(numbers[f'{kind}_marginal_mib'], 'MiB')}"
        for kind, backend in (("container", ctx.container), ("vm", ctx.vm))
        if f"{kind}_marginal_mib" in numbers
    ]
    text += (
        f" Each count is the host's MemAvailable at the start divided by the marginal cost per "
        f"extra instance (slope of the drop over N: {', '.join(marginal)}). "
        f"{_memory_basis(ctx, ctx.container)}.{_noise_note(ctx)}"
    )
    numbers["basis"] = "host MemAvailable at start / marginal_mib"
    return verdict, text, numbers


SPEED, MEMORY = "speed", "memory"
SPECTRUM = ("spectrum",)  # Claim.compares: every instance backend whose facts were observed
CLAIMS: tuple[Claim, ...] = (
    Claim("C01", "VMs start much slower than containers", c01_startup, emulation=SPEED),
    Claim(
        "C02", "A VM uses much more host memory than a container", c02_footprint, emulation=MEMORY
    ),
    Claim(
        "C03",
        "Virtualization adds overhead; containers run near native",
        c03_overhead,
        emulation=SPEED,
        compares=("vm", "container", "native"),
    ),
    Claim(
        "C04",
        "Cloning and starting a VM takes much longer than a container",
        c04_clone,
        emulation=SPEED,
    ),
    Claim("C05", "Containers scale out faster than VMs", c05_scale, emulation=SPEED),
    Claim("C06", "Containers are easier to move (export and import)", c06_portability),
    Claim(
        "C07", "VMs isolate better than containers", c07_isolation, timing=False, compares=SPECTRUM
    ),
    Claim(
        "C08", "Dead instances are restarted quickly (self-healing)", c08_recovery, emulation=SPEED
    ),
    Claim(
        "C09",
        "A VM runs its own kernel; a container shares the host's",
        c09_kernel,
        timing=False,
        compares=SPECTRUM,
    ),
    Claim("C10", "Many more containers than VMs fit on one host", c10_density, emulation=MEMORY),
)


def hosts_of(doc: ResultDocument, stats: Statistics) -> list[str]:
    """The hosts with statistics, 'local' first; ['local'] for an empty result."""
    hosts = list(dict.fromkeys(s.host for s in stats.summaries))
    hosts += [h for h in dict.fromkeys(s.host for s in doc.measured()) if h not in hosts]
    if not hosts:
        return ["local"]
    return sorted(hosts, key=lambda h: (h != "local", h))


def _qualifier(verdict: str, numbers: dict[str, Any]) -> str:
    """'n = 3; needs >= 4' for a verdict that is inconclusive for want of repetitions."""
    if verdict != INCONCLUSIVE or not numbers.get("needs_n"):
        return ""
    sizes = [v for k, v in numbers.items() if k.startswith("n_") and isinstance(v, int)]
    if not sizes:
        resources = numbers.get("resources") or {}
        sizes = [p.get("n") for parts in resources.values() for p in parts.values()]
        sizes = [n for n in sizes if isinstance(n, int)]
    counts = " and ".join(str(n) for n in dict.fromkeys(sizes)) or "?"
    return f"n = {counts}; needs {GE} {numbers['needs_n']}"


def compared_backends(doc: ResultDocument, claim: Claim, host: str) -> list[str]:
    """The backends of the claim's kinds that ran on `host`, in the claim's order."""
    ran = {s.backend for s in doc.measured() if s.host == host} | set(doc.facts)
    if claim.compares == SPECTRUM:
        return [name for name in doc.order_backends(set(doc.facts)) if _instance(doc, name)]
    names = [doc.first_of_kind(kind) for kind in claim.compares]
    return [name for name in names if name is not None and name in ran]


def _not_judged(claim: Claim, accel: str | None, text: str) -> str:
    why = NOT_JUDGED_MEMORY if claim.emulation == MEMORY else NOT_JUDGED_SPEED
    if accel != "tcg":
        why = UNKNOWN_ACCEL
    return f"Not judged: {why}. Emulated figures, for context only: {text}"


def _evaluate_host(
    doc: ResultDocument, stats: Statistics, thresholds: Thresholds, host: str
) -> list[Verdict]:
    ctx = Context(doc, stats, thresholds, host)
    accel = host_accel(doc.environment, host)
    vm = doc.first_of_kind("vm")
    vm_ran = vm is not None and any(s.backend == vm and s.host == host for s in doc.measured())
    emulated = accel == "tcg"
    verdicts = []
    for claim in CLAIMS:
        verdict, text, numbers = claim.rule(ctx)
        qualifier = _qualifier(verdict, numbers)
        if claim.emulation and vm_ran and accel != "kvm" and verdict != NOT_MEASURED:
            verdict, text = NOT_KVM, _not_judged(claim, accel, text)
            qualifier = "VM ran under TCG" if emulated else "acceleration unknown"
        elif emulated and verdict != NOT_MEASURED:
            text += " " + (EMULATED_TIMING_NOTE if claim.timing else EMULATED_FACT_NOTE)
        if qualifier and verdict == INCONCLUSIVE:
            text = f"Inconclusive ({qualifier}). {text}"
        verdicts.append(
            Verdict(
                compared=compared_backends(doc, claim, host),
                claim=claim.id,
                title=claim.title,
                verdict=verdict,  # type: ignore[arg-type]  # one of analysed.VerdictKind
                qualifier=qualifier,
                text=text,
                numbers=numbers,
                host=host,
                accel=accel,
                emulated=emulated,
            )
        )
    return verdicts


def evaluate(
    doc: ResultDocument,
    stats: Statistics | None = None,
    thresholds: Thresholds | None = None,
    *,
    host: str | None = None,
) -> list[Verdict]:
    """Verdicts for C01-C10, in order, for one host or (default) for every host in turn.

    ``stats`` defaults to doc.statistics when it was computed by this method, else a fresh
    summarize(doc). Each host's acceleration is its own (vmvc.environment.host_accel).
    """
    if stats is None:
        stored = doc.statistics
        stats = stored if stored.method == st.METHOD else st.summarize(doc)
    thresholds = thresholds or Thresholds()
    hosts = [host] if host else hosts_of(doc, stats)
    return [v for h in hosts for v in _evaluate_host(doc, stats, thresholds, h)]
