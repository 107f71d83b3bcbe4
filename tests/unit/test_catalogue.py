"""vmvc.catalogue and vmvc.formatting: every metric a workload emits is known, one formatter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vmvc import catalogue
from vmvc.bench.cpu import CpuWorkload
from vmvc.bench.io import IoWorkload
from vmvc.bench.memory import MemoryWorkload
from vmvc.formatting import format_estimate, format_number, format_quantity, format_range
from vmvc.results import load

DATA = Path(__file__).resolve().parents[1] / "data"
RECORDED = next((Path(__file__).resolve().parents[2] / "results" / "example").glob("*.json"))
LLC_32_MIB = 32 * 2**20  # tests/data/sysfs-cpu0-cache


def _recorded_measurements() -> list[tuple[str, str, str, bool]]:
    """(workload, metric, unit, higher_is_better) of real output: the parsers on tests/data
    (one file per backend) and every sample of the recorded quick-profile run."""
    found = []
    for backend in ("native", "docker", "libvirt"):
        for workload, parser in (
            ("cpu", CpuWorkload()),
            ("memory", MemoryWorkload(LLC_32_MIB)),
            ("io", IoWorkload()),
        ):
            text = (DATA / f"{backend}-{workload}.txt").read_text().splitlines()
            found += [(workload, m.metric, m.unit, m.higher_is_better) for m in parser.parse(text)]
    found += [(s.workload, s.metric, s.unit, s.higher_is_better) for s in load(RECORDED).samples]
    return sorted(set(found))


def test_every_metric_of_real_output_is_in_the_catalogue() -> None:
    measured = _recorded_measurements()
    assert len(measured) > 35
    for workload, metric, unit, higher in measured:
        entry = catalogue.metric(workload, metric)
        assert entry is not None, f"{workload}/{metric} is not in the catalogue"
        assert (entry.unit, entry.higher_is_better) == (unit, higher), f"{workload}/{metric}"
        assert entry.title and entry.title != metric


def test_headlines_are_metrics_of_their_workload() -> None:
    for workload in catalogue.WORKLOADS:
        names = [m.name for m in workload.metrics]
        assert len(names) == len(set(names)), workload.name
        assert workload.headline is None or workload.headline in names
    assert [w.name for w in catalogue.WORKLOADS][:2] == ["startup", "cpu"]


def test_order_keeps_known_first_and_renders_unknown_ones() -> None:
    assert catalogue.order_workloads({"zzz", "io", "startup"}) == ["startup", "io", "zzz"]
    assert catalogue.order_metrics("startup", {"ready_s", "x_s", "total_s"}) == [
        "total_s",
        "ready_s",
        "x_s",
    ]
    assert catalogue.order_metrics("plugin-work", {"b", "a"}) == ["a", "b"]
    assert catalogue.workload_title("plugin-work") == "plugin-work"
    assert catalogue.metric_title("cpu", "new_metric") == "new_metric"
    assert catalogue.metric("cpu", "events_per_s").format == "number"
    assert catalogue.metric("clone", "clone_bytes").format == "bytes"


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (8.564, "s", "8.56 s"),
        (3 * 2**20, "bytes", "3.00 MiB"),
        (1.07e9, "bytes", "1020 MiB"),
        (2.5 * 2**30, "bytes", "2.50 GiB"),
        (None, "s", "n/a"),
        (12.0, "", "12.0"),
    ],
)
def test_format_quantity(value, unit, text) -> None:
    assert format_quantity(value, unit) == text


def test_one_formatter_everywhere() -> None:
    assert format_estimate(2313.4, 2200.2, 2400.9) == "2313 [2200, 2401]"
    assert format_range(0.2134, 0.2, 0.25, 3) == "0.213 (range 0.200\N{EN DASH}0.250, n = 3)"
    assert format_number(True) == "yes"


def _vmvc_modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {m for m in out if m.startswith("vmvc.")}


def test_catalogue_and_formatter_are_the_bottom_layer() -> None:
    assert _vmvc_modules_after("import vmvc.catalogue, vmvc.formatting") == {
        "vmvc.catalogue",
        "vmvc.formatting",
    }


def test_exporters_load_neither_claims_nor_statistics() -> None:
    loaded = _vmvc_modules_after(
        "import vmvc.export.markdown, vmvc.export.html_page, vmvc.export.charts, "
        "vmvc.export.csv_samples, vmvc.export.json_document, vmvc.report"
    )
    assert "vmvc.export.view" in loaded
    assert not loaded & {"vmvc.claims", "vmvc.stats", "vmvc.intervals", "vmvc.orchestrate"}


def test_the_figures_verdicts_rest_on_are_marked_in_the_catalogue() -> None:
    from vmvc import claims, stats
    from vmvc.keys import split_key

    deciding = {(w.name, m.name) for w in catalogue.WORKLOADS for m in w.metrics if m.decides}
    # A ratio per failure kind (recovery_s@instance) rests on its metric (recovery_s).
    used = {(w, split_key(m)[0]) for w, m, _top, _bottom in stats.DECISION_RATIOS}
    used |= set(stats.DECISION_MEDIANS)
    used.add(stats.C05_CURVE[:2])  # per N: the largest count both measured
    assert used == deciding
    assert list(claims.RESOURCES) == [f"{w}/{m}" for w, m in catalogue.steady_resources()]
    assert len(claims.RESOURCES) == 7
