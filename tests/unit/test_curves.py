"""The scale curve and when a line may be named (vmvc.linefit, vmvc.curves)."""

from __future__ import annotations

import numpy as np
import pytest

from vmvc import stats
from vmvc.analysed import CurvePoint
from vmvc.curves import knee_at_cores
from vmvc.linefit import MIN_COUNTS, R2_FLOOR, fit_line


def saturation(counts: list[int], cores: int, start_s: float = 3.3) -> list[float]:
    """N starts of start_s CPU-seconds each on `cores` cores: processor sharing."""
    return [start_s * max(1.0, n / cores) for n in counts]


def test_the_floor_rejects_the_knee_issue_13_measured() -> None:
    # Issue 13's evidence: 2 cores, N = 1, 2, 3 emulated VMs ready after 6.5, 6.6, 10.0 s.
    fit = fit_line([1, 2, 3], [6.5, 6.6, 10.0])
    assert fit is not None and fit.r_squared == pytest.approx(0.77, abs=0.01)
    assert not fit.fits()
    assert fit.why_not() == "no slope: a line does not fit (r\N{SUPERSCRIPT TWO} = 0.77 < 0.95)"


@pytest.mark.parametrize(
    ("counts", "r_squared"),
    [([1, 2, 3], 0.75), ([1, 2, 5], 0.942), ([1, 2, 3, 5], 0.933)],
)
def test_a_pure_knee_stays_below_the_floor(counts: list[int], r_squared: float) -> None:
    # Why 0.95 and not 0.9: a knee sampled at the default counts (1, c, 2c+1) reaches 0.94.
    fit = fit_line(counts, saturation(counts, 2))
    assert fit is not None and fit.r_squared == pytest.approx(r_squared, abs=0.001)
    assert fit.r_squared < R2_FLOOR
    assert not fit.fits()


def test_a_line_fits_where_the_points_lie_on_one() -> None:
    rng = np.random.default_rng(5)
    counts = [1, 2, 5]
    fit = fit_line(counts, [0.2 + 0.12 * n * rng.uniform(0.97, 1.03) for n in counts])
    assert fit is not None and fit.r_squared >= R2_FLOOR
    assert fit.fits() and fit.why_not() == ""


def test_two_counts_never_give_a_slope() -> None:
    # r² is 1 by construction with two points: it says nothing about a line.
    fit = fit_line([1, 3], [3.3, 11.8])
    assert fit is not None and fit.r_squared == 1.0
    assert MIN_COUNTS == 3 and not fit.fits()
    assert "2 instance counts cannot show whether a line fits" in fit.why_not()


def test_a_flat_curve_is_a_line() -> None:
    fit = fit_line([1, 2, 5], [4.0, 4.0, 4.0])
    assert fit is not None and fit.r_squared is None and fit.fits()


def points(values: dict[int, float]) -> list[CurvePoint]:
    return [
        CurvePoint(n=n, median=v, min=v, max=v, repetitions=1) for n, v in sorted(values.items())
    ]


def test_knee_at_the_core_count() -> None:
    assert knee_at_cores(points({1: 6.5, 2: 6.6, 5: 16.3}), 2)
    assert not knee_at_cores(points({1: 0.28, 2: 0.40, 5: 0.85}), 2)  # rising all along
    assert not knee_at_cores(points({1: 6.5, 2: 6.6, 5: 7.0}), 2)  # flat all along
    assert not knee_at_cores(points({1: 6.5, 3: 10.0}), 2)  # one point below: flat unseen
    assert not knee_at_cores(points({1: 6.5, 2: 6.6, 5: 16.3}), None)  # cores unknown


def scale_document(build_doc, curves: dict[str, dict[int, float]], cpus: int = 2):
    rng = np.random.default_rng(11)
    data = {
        backend: {
            f"scale/all_ready_s@N={n}": [v * rng.uniform(0.98, 1.02) for _ in range(3)]
            for n, v in curve.items()
        }
        for backend, curve in curves.items()
    }
    metadata = {
        f"{backend}:scale/all_ready_s@N={n}": {
            "host_cpus": cpus,
            "refused_counts": [9],
            "refused": f"scale N=9 on {backend} refused: needs about 4608 MiB",
        }
        for backend, curve in curves.items()
        for n in curve
    }
    return build_doc(data, metadata=metadata)


def test_the_analysis_stores_one_curve_per_backend(build_doc) -> None:
    doc = scale_document(build_doc, {"docker": {1: 0.28, 2: 0.40, 5: 0.85}, "libvirt": KNEE})
    summary = stats.summarize(doc)
    container = summary.curve("docker", "scale", "all_ready_s")
    vm = summary.curve("libvirt", "scale", "all_ready_s")
    assert container is not None and vm is not None
    assert [p.n for p in vm.points] == [1, 2, 5]
    assert vm.points[2].repetitions == 3
    assert vm.host_cpus == 2 and vm.refused_counts == [9]
    assert "N=9 on libvirt refused" in vm.refused
    # The VM bends at the cores: no slope, whatever r² says; the container's line fits.
    assert vm.knee and not vm.fits and vm.slope is None
    assert vm.note.startswith("no slope: the curve bends at the 2 host CPUs")
    assert container.fits and container.slope == pytest.approx(0.144, rel=0.05)
    assert container.r_squared is not None and container.r_squared >= R2_FLOOR


def test_a_curve_below_the_floor_has_no_slope(build_doc) -> None:
    # Rising, no knee at the cores (3 cores here), but far from a line: r² 0.75.
    doc = scale_document(build_doc, {"docker": {1: 1.0, 2: 1.0, 3: 5.0}}, cpus=8)
    curve = stats.summarize(doc).curve("docker", "scale", "all_ready_s")
    assert curve is not None and not curve.knee
    assert curve.r_squared == pytest.approx(0.75, abs=0.03)
    assert not curve.fits and curve.slope is None
    assert "a line does not fit" in curve.note


KNEE = {1: 6.5, 2: 6.6, 5: 16.3}


def test_a_knee_gives_no_slope_even_where_r_squared_passes(build_doc) -> None:
    # Flat to the cores (6.5 -> 7.8 s, within 1.25x), then 20 s at N=5: r² 0.98 >= 0.95,
    # yet a slope through the knee would describe neither side of it.
    doc = scale_document(build_doc, {"libvirt": {1: 6.5, 2: 7.8, 5: 20.0}})
    curve = stats.summarize(doc).curve("libvirt", "scale", "all_ready_s")
    assert curve is not None and curve.r_squared is not None
    assert curve.r_squared >= R2_FLOOR
    assert curve.knee and not curve.fits and curve.slope is None
    assert "bends at the 2 host CPUs" in curve.note
