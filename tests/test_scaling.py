"""benchmarks/scaling.py without its long runs: the exponent fit, the target checks and the
outputs, on rows made up here (the measured rows are in benchmarks/results/scaling.csv)."""

import csv

import numpy as np
import pytest

from conftest import benchmark_module

scaling = benchmark_module("scaling")


def test_exponent_of_power_laws():
    x = np.array([64.0, 128, 256, 512, 1024]) ** 2
    assert scaling.exponent(x, 3e-5 * x) == pytest.approx(1.0)
    assert scaling.exponent(x, 2.0 * x ** 1.2) == pytest.approx(1.2)
    assert scaling.exponent(x, np.full(5, 40.0)) == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(scaling.exponent([1.0], [2.0]))


def _rows(map_seconds, fit_seconds=12.0, pca_seconds=2.0, k=1.0, lazy_peak=500.0):
    rows = []
    for n in (64, 128, 192, 256):
        for step, sec in (("fit", fit_seconds), ("anomaly_map", map_seconds * (n / 192) ** (2 * k)),
                          ("pca", pca_seconds * (n / 192) ** 2)):
            rows.append(dict(series="nav", ny=n, nx=n, channels=334, lazy=False, step=step,
                             seconds=sec, spectra_per_second=round(n * n / sec),
                             peak_rss_increase_mib=100.0, steps=400, fit_channels=290))
    for n in (256, 512):
        for step in ("fit", "anomaly_map"):
            rows.append(dict(series="nav_lazy", ny=n, nx=n, channels=334, lazy=True, step=step,
                             seconds=10.0 * (n / 256) ** 2, spectra_per_second=1,
                             peak_rss_increase_mib=lazy_peak, steps=400, fit_channels=290))
    return rows


def _exps(rows):
    out = {}
    for series in ("nav", "nav_lazy"):
        rs = scaling._rows_of(rows, series, "anomaly_map")
        out[(series, "anomaly_map")] = (scaling.exponent([r["ny"] ** 2 for r in rs],
                                                         [r["seconds"] for r in rs]), 0.0)
    return out


def test_targets_met_and_not_met():
    good = _rows(map_seconds=1.5)  # 24.6 k spectra/s, 0.75 × PCA
    lines = "\n".join(scaling.targets(good, _exps(good)))
    assert "anomaly_map on 192², the process's first: 24576 spectra/s" in lines and "0.75 × PCA" in lines
    assert lines.count(": met.") == 5 and "not met" not in lines  # map, fit, 2 exponents, memory
    again = good + [dict(good[0], ny=192, nx=192, step="anomaly_map_again", seconds=1.0,
                         spectra_per_second=36864)]
    lines = "\n".join(scaling.targets(again, _exps(good)))
    assert "- anomaly_map on 192², called again: 36864 spectra/s, 0.50 × PCA: met." in lines
    slow = _rows(map_seconds=4.0, k=1.2, lazy_peak=900.0)
    by_kind = {line.split(":")[0]: line for line in scaling.targets(slow, _exps(slow))}
    assert by_kind["- anomaly_map on 192², the process's first"].endswith("not met.")  # 9216 spectra/s
    assert by_kind["- anomaly_map time exponent (nav)"].endswith("not met.")  # 1.20
    assert by_kind["- anomaly_map time exponent (nav_lazy)"].endswith(": met.")
    assert by_kind["- peak memory of fit and anomaly_map on the lazy 512² cube"].endswith("not met.")
    assert by_kind["- fit_cvae() defaults on 192²"].endswith(": met.")  # 12 s, (12 + 4) / 2 = 8 × PCA


def test_outputs_written(tmp_path):
    rows = _rows(map_seconds=2.0)
    scaling.write_outputs(rows, tmp_path, wall=60.0, machine="test machine", quick=True)
    with open(tmp_path / "scaling.csv", newline="") as fh:
        back = list(csv.DictReader(fh))
    assert len(back) == len(rows) and set(back[0]) == set(scaling.COLUMNS)
    md = (tmp_path / "scaling.md").read_text()
    assert "| nav | anomaly_map | 1.00 |" in md and "test machine" in md
    assert (tmp_path / "scaling.png").stat().st_size > 10_000
