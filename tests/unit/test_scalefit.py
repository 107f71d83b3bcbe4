"""The per-instance cost fit of the scale workload (vmvc.bench.scalefit) and its guard."""

from __future__ import annotations

import numpy as np
import pytest

from vmvc.bench.scale import ScaleRefused, check_counts
from vmvc.bench.scalefit import ScalePoint, density, fit_line, fit_measurements


def test_exact_line() -> None:
    fit = fit_line([1, 2, 4, 8], [8.5 + 6.4 * (n - 1) for n in (1, 2, 4, 8)])
    assert fit is not None
    assert fit.slope == pytest.approx(6.4)
    assert fit.intercept == pytest.approx(2.1)
    assert fit.r_squared == pytest.approx(1.0)
    assert fit.slope_stderr == pytest.approx(0.0, abs=1e-9)
    assert fit.points == 4


def test_noisy_line_recovers_slope_with_an_honest_error() -> None:
    rng = np.random.default_rng(7)
    counts = [1, 2, 4, 8, 16] * 3
    values = [0.2 + 0.16 * n + rng.normal(0, 0.05) for n in counts]
    fit = fit_line(counts, values)
    assert fit is not None
    assert fit.slope == pytest.approx(0.16, abs=3 * fit.slope_stderr)
    assert 0 < fit.slope_stderr < 0.01
    assert 0.9 < fit.r_squared < 1.0


def test_one_count_gives_no_fit() -> None:
    assert fit_line([4], [12.0]) is None
    assert fit_line([4, 4, 4], [12.0, 12.5, 11.8]) is None  # repeated N: still one point
    assert fit_measurements([ScalePoint(4, 12.0, 1000.0)], 24000, 20000) == []


def test_two_points_are_exact_but_have_no_error() -> None:
    fit = fit_line([1, 2], [1.0, 3.0])
    assert fit is not None
    assert (fit.slope, fit.intercept) == (pytest.approx(2.0), pytest.approx(-1.0))
    assert fit.slope_stderr is None and fit.intercept_stderr is None


def test_zero_slope() -> None:
    fit = fit_line([1, 2, 4], [5.0, 5.0, 5.0])
    assert fit is not None
    assert fit.slope == 0.0 and fit.intercept == 5.0
    assert fit.slope_stderr == 0.0
    assert fit.r_squared is None  # no variance to explain: undefined, not 0 or 1
    assert density(24000, fit.slope) is None


def test_lengths_must_match() -> None:
    with pytest.raises(ValueError):
        fit_line([1, 2, 3], [1.0, 2.0])


def test_density_is_memory_over_slope() -> None:
    assert density(24000.0, 240.0) == pytest.approx(100.0)
    assert density(24000.0, -3.0) is None


def test_fit_measurements_names_units_and_metadata() -> None:
    points = [ScalePoint(n, 8.5 + 6.4 * (n - 1), 250.0 * n + 10, 300.0 * n) for n in (1, 2, 4)]
    fits = fit_measurements(points, 24000.0, 20000.0, {"host_cpus": 2})
    measured = {m.metric: m for m in fits}
    assert all(m.metadata["host_cpus"] == 2 for m in fits)
    # The time curve is fitted in the analysis step (vmvc.curves), where a line fits.
    assert set(measured) == {"memory_per_instance_mib", "density_instances"}
    assert measured["memory_per_instance_mib"].metadata["counts"] == [1, 2, 4]
    assert measured["memory_per_instance_mib"].value == pytest.approx(250.0)
    assert measured["memory_per_instance_mib"].metadata["intercept"] == pytest.approx(10.0)
    drop_slope = measured["memory_per_instance_mib"].metadata["host_available_drop_slope_mib"]
    assert drop_slope == pytest.approx(300.0)
    dens = measured["density_instances"]
    assert dens.value == pytest.approx(96.0) and dens.higher_is_better
    assert dens.metadata["density_available_at_start"] == pytest.approx(80.0)


def test_flat_memory_gives_no_density() -> None:
    points = [ScalePoint(n, 0.2 * n, 14.0) for n in (1, 2, 4)]
    metrics = [m.metric for m in fit_measurements(points, 24000.0, 20000.0)]
    assert metrics == ["memory_per_instance_mib"]


def test_refusal_before_launch() -> None:
    # 512 MiB per instance (a VM's estimate), at most half of what is available
    assert check_counts("libvirt", 512.0, 0.5, [1, 2, 4], available_mib=4096) == []  # 2048 fits
    refused = check_counts("libvirt", 512.0, 0.5, [1, 2, 4, 8, 16], available_mib=4096)
    assert [r.n for r in refused] == [8, 16]  # reported; 1, 2 and 4 still run
    assert "N=8 on libvirt refused: needs about 4096 MiB" in refused[0].text("libvirt", 0.5, 4096)
    with pytest.raises(ScaleRefused, match="none fits"):
        check_counts("libvirt", 512.0, 0.5, [4], available_mib=1000)
    assert check_counts("docker", 32.0, 0.5, [1, 2, 4, 8, 16], available_mib=4096) == []
