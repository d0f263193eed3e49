"""The shift likelihood with a smooth background slope profiled out (``nuisance="tilt"``)."""

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from sklearn.metrics import roc_auc_score

from hyperspy_cvae.scores import SHIFT_NUISANCES, estimate_shift, shift_analysis
from hyperspy_cvae.synthetic import bifeo3_si

WINDOW = (690.0, 730.0)


def _spectra(n=60, C=100, m=12, seed=0):
    """A weak edge on a steep power-law background; each spectrum tilted by exp(b t), |b| ~ 0.04,
    a third of them shifted by 1 channel. Returns (y, r_ext, m, true shifts, tilts)."""
    rng = np.random.default_rng(seed)
    e = np.arange(C + 2 * m, dtype=float)
    r = 2000 * ((e + 40) / 80) ** -3 + 400 / (1 + np.exp(-(e - 60) / 1.5))
    t = np.linspace(-1, 1, C)
    shift = np.where(np.arange(n) % 3 == 0, 1.0, 0.0)
    tilt = rng.normal(0, 0.04, n)
    y = np.stack([rng.poisson(np.interp(np.arange(C) + m - d, e, r) * np.exp(b * t))
                  for d, b in zip(shift, tilt)]).astype(float)
    return y, np.tile(r, (n, 1)), m, shift, tilt


def _profile_brute(y, r, m, s):
    """max over (a, b) of the Poisson log-likelihood of y ~ a · r(k + m − s) · exp(b t), up to
    terms in y alone, by a bounded scalar search over b (a in closed form)."""
    C = len(y)
    t = np.linspace(-1, 1, C)
    rs = np.interp(np.arange(C) + m - s, np.arange(len(r)), r)

    def neg(b):
        mu = rs * np.exp(b * t)
        return -(np.sum(y * np.log(mu)) - y.sum() * np.log(mu.sum()))
    return -minimize_scalar(neg, bounds=(-0.5, 0.5), method="bounded", options={"xatol": 1e-10}).fun


def test_tilt_profile_matches_a_direct_maximisation():
    y, r, m, _, _ = _spectra(n=12)
    d, _, glrt = estimate_shift(y, r, m, nuisance="tilt")
    for i in range(len(y)):
        grid = np.linspace(d[i] - 0.3, d[i] + 0.3, 61)
        best = max(_profile_brute(y[i], r[i], m, s) for s in grid)
        direct = 2 * (best - _profile_brute(y[i], r[i], m, 0.0))
        # the library's parabola between grid points may only be (slightly) above the grid's maximum
        assert direct - 0.01 <= glrt[i] <= direct + 0.05, (i, glrt[i], direct)


def test_tilt_is_not_read_as_a_shift_and_shifts_stay_found():
    y, r, m, shift, tilt = _spectra(n=300)
    anomalous = shift > 0
    d0, _, g0 = estimate_shift(y, r, m)
    d1, _, g1 = estimate_shift(y, r, m, nuisance="tilt")
    # intensity only: the slopes of the unshifted spectra pass for shifts (their scores track |tilt|)
    assert np.corrcoef(np.abs(tilt[~anomalous]), np.sqrt(g0[~anomalous]))[0, 1] > 0.8
    assert np.median(np.sqrt(g0[~anomalous])) > 3
    # with the slope profiled out the unshifted spectra are at the noise (≈ |N(0, 1)|) ...
    assert np.median(np.sqrt(g1[~anomalous])) < 1.0
    # ... and the shifted ones are found, the shift measured without the slope's bias
    auc0 = roc_auc_score(anomalous, np.sqrt(g0))
    auc1 = roc_auc_score(anomalous, np.sqrt(g1))
    assert auc1 > 0.98 and auc1 > auc0 + 0.2, (auc0, auc1)
    assert abs(np.median(d1[anomalous]) - 1.0) < 0.1
    assert np.abs(np.median(d0[anomalous]) - 1.0) > 2 * abs(np.median(d1[anomalous]) - 1.0)


def test_anomaly_map_records_the_nuisance_and_lazy_agrees():
    s = bifeo3_si((48, 48), random_state=0)
    bad, m = s.inject_shift(1.0, window=WINDOW, n_clusters=2, random_state=1, return_mask=True)
    res = bad.anomaly_map("pca", window=WINDOW, nuisance="tilt")
    assert res.score.metadata.CVAE.score.nuisance == "tilt"
    assert bad.anomaly_map("pca", window=WINDOW).score.metadata.CVAE.score.nuisance == "scale"
    assert res.mask.data[m.data].mean() > 0.9 and (res.mask.data & ~m.data).sum() <= 2
    shift = bad.shift_map(window=WINDOW, method="pca", nuisance="tilt")
    assert abs(np.median(shift.data[m.data]) - 1.0) < 0.1
    lazy = shift_analysis(bad.as_lazy(), bad, WINDOW, nuisance="tilt")["score"]
    lazy.compute()
    np.testing.assert_allclose(lazy.data, shift_analysis(bad, bad, WINDOW, nuisance="tilt")["score"].data,
                               rtol=1e-6, atol=1e-6)


def test_line_scans_pass_the_nuisance_on():
    line = bifeo3_si((8, 40), random_state=0).inav[:, 3]
    bad = line.inject_shift(1.0, window=WINDOW, mask=np.arange(40) // 3 == 5)
    res = bad.anomaly_map("pca", window=WINDOW, nuisance="tilt")
    assert res.score.data.shape == (40,) and res.score.metadata.CVAE.score.nuisance == "tilt"
    # the line's score is the tilted scan of its own original and reconstruction, not the plain one
    direct = {nu: shift_analysis(res.original, res.reconstruction, WINDOW, nuisance=nu)["score"].data.ravel()
              for nu in SHIFT_NUISANCES}
    np.testing.assert_allclose(res.score.data, direct["tilt"], rtol=1e-9)
    assert not np.allclose(direct["tilt"], direct["scale"], rtol=1e-6)
    shift = bad.shift_map(window=WINDOW, method="pca", nuisance="tilt")
    assert shift.data.shape == (40,) and shift.metadata.CVAE.score.nuisance == "tilt"


def test_bad_nuisance():
    s = bifeo3_si((16, 16), random_state=0)
    assert set(SHIFT_NUISANCES) == {"scale", "tilt"}
    with pytest.raises(ValueError, match="`nuisance` must be one of"):
        s.anomaly_map("pca", window=WINDOW, nuisance="slope")
    with pytest.raises(ValueError, match="applies to score='shift'"):
        s.anomaly_map("pca", window=WINDOW, nuisance="tilt", score="deviance")
    with pytest.raises(ValueError, match="applies to score='shift'"):
        s.anomaly_map("rx", window=WINDOW, nuisance="tilt")
    with pytest.raises(ValueError, match="`nuisance` must be one of"):
        s.shift_map(window=WINDOW, method="pca", nuisance=None)
    with pytest.raises(ValueError, match="`nuisance` must be one of"):
        shift_analysis(s, s, WINDOW, nuisance="both")


def test_benchmark_quick_run_and_committed_summary(tmp_path):
    import csv
    import pathlib

    from conftest import benchmark_module

    nb = benchmark_module("nuisance")
    nb.main(["--quick", "--out", str(tmp_path)])
    text = (tmp_path / "summary.md").read_text()
    assert "| default | 0.3 | CVAE |" in text and "Change with the tilt" in text
    # the committed summary is what write() renders from the committed rows
    committed = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "nuisance"
    rows = list(csv.DictReader(open(committed / "nuisance.csv")))
    for r in rows:
        r["dE"], r["roc_auc"] = float(r["dE"]), float(r["roc_auc"])
    nb.write(tmp_path / "again", rows)
    assert (tmp_path / "again" / "summary.md").read_text() == (committed / "summary.md").read_text()
