"""Noise-aware scores (deviance, shift likelihood), RX, the oracle and the threshold rules."""

import numpy as np
import pytest

from conftest import WINDOW
from hyperspy_cvae.baselines import rx_map, rx_scores
from hyperspy_cvae.scores import (deviance_map, estimate_shift, likelihood_ratio, poisson_deviance,
                                  shift_analysis, threshold_anomalies, unimodality_test)


def _peak(e, centre):
    return 20 + 300 * np.exp(-0.5 * ((e - centre) / 2.0) ** 2)


@pytest.mark.parametrize("true_shift", [-3.7, -0.4, 0.0, 0.25, 1.5, 6.0])
def test_estimate_shift_recovers_subchannel_shifts(true_shift):
    rng = np.random.default_rng(0)
    e = np.arange(200.0)
    r = _peak(e, 100.0)
    y = rng.poisson(np.tile(_peak(e[30:170] - true_shift, 100.0), (400, 1)))
    d, sigma, glrt = estimate_shift(y, np.tile(r, (400, 1)), 30)
    assert abs(d.mean() - true_shift) < 0.02
    # The curvature uncertainty matches the scatter of the estimates.
    assert 0.7 < d.std() / np.median(sigma) < 1.4
    if true_shift == 0.0:
        # Unshifted: the statistic behaves like chi2 with 1 degree of freedom.
        assert 0.6 < glrt.mean() < 1.5
    elif abs(true_shift) >= 0.4:
        assert np.median(glrt) > 16 and glrt.min() > 4


@pytest.mark.parametrize("scale", [1e3, 1e5])
def test_estimate_shift_is_calibrated_at_detector_unit_counts(scale):
    # 10⁶–10⁸ counts per window (maps in detector units): the statistic stays χ²₁ under no shift
    # and the shift is still found (no loss of precision in the likelihood scan)
    rng = np.random.default_rng(3)
    e = np.arange(200.0)
    r = scale * _peak(e, 100.0)
    y = rng.poisson(np.tile(scale * _peak(e[30:170], 100.0), (2000, 1))).astype(np.float64)
    d, sigma, glrt = estimate_shift(y, np.tile(r, (2000, 1)), 30)
    assert 0.8 < glrt.mean() < 1.25
    assert 0.8 < d.std() / np.median(sigma) < 1.25
    y = rng.poisson(np.tile(scale * _peak(e[30:170] - 0.05, 100.0), (200, 1))).astype(np.float64)
    d, _, _ = estimate_shift(y, np.tile(r, (200, 1)), 30)
    assert abs(d.mean() - 0.05) < 0.005


def test_estimate_shift_checks_extension_length():
    with pytest.raises(ValueError, match="C \\+ 2"):
        estimate_shift(np.ones((2, 10)), np.ones((2, 12)), 2)


def test_poisson_deviance_is_one_for_a_correct_model_at_any_dose():
    rng = np.random.default_rng(1)
    for dose in (10.0, 30.0, 3000.0):
        mu = np.full((3000, 80), dose)
        d = poisson_deviance(rng.poisson(mu), 2.5 * mu)  # amplitude is profiled out
        assert abs(d.mean() - 1.0) < 0.08


def test_deviance_and_shift_on_signals(small_cube):
    s = small_cube
    bad, truth = s.inject_shift(2.0, n_clusters=2, random_state=3, return_mask=True)
    from hyperspy_cvae.synthetic import bifeo3_si

    _, ex = bifeo3_si((48, 48), offset=640.0, size=400, random_state=0, return_expected=True)
    dev = deviance_map(bad, ex)
    assert dev.metadata.CVAE.score.anomalous == "high"
    assert dev.data[truth.data].min() > np.percentile(dev.data[~truth.data], 99)
    res = shift_analysis(bad, ex, WINDOW)
    assert res["shift"].axes_manager[0].scale == s.axes_manager[0].scale
    assert abs(res["shift"].data[truth.data].mean() - 2.0) < 0.05
    assert abs(res["shift"].data[~truth.data].mean()) < 0.02
    # sigma is the 1-sigma uncertainty of the shift: finite everywhere, and the clean pixels'
    # shifts (true shift 0) scatter by one sigma
    assert np.isfinite(res["sigma"].data).all()
    pulls = res["shift"].data[~truth.data] / res["sigma"].data[~truth.data]
    assert 0.85 < pulls.std() < 1.15
    assert res["score"].data[truth.data].min() > res["score"].data[~truth.data].max()
    # Lazy in, lazy out, same numbers.
    lz = shift_analysis(bad.as_lazy(), ex.as_lazy(), WINDOW)
    assert lz["score"]._lazy
    np.testing.assert_allclose(lz["score"].data.compute(), res["score"].data)


def test_anomaly_map_scores_and_shift_map_method(small_cube):
    bad, truth = small_cube.inject_shift(1.5, n_clusters=1, random_state=4, return_mask=True)
    for score, direction in (("pcc", "low"), ("deviance", "high"), ("shift", "high")):
        smap, mask = bad.anomaly_map("pca", n_components=3, score=score)
        assert smap.metadata.CVAE.score.kind == score
        assert smap.metadata.CVAE.score.anomalous == direction
        assert mask.metadata.CVAE.threshold.anomalous == direction
    with pytest.raises(ValueError, match="score"):
        bad.anomaly_map("pca", score="chi3")
    dE, sigma = bad.shift_map(method="pca", return_uncertainty=True)
    assert dE.metadata.Signal.quantity == "Energy shift (eV)"
    assert sigma.data.mean() < 0.2


def test_rx_flags_an_outlier_and_runs_through_anomaly_map(small_cube):
    rng = np.random.default_rng(0)
    x = rng.poisson(200, (400, 30)).astype(float)
    x[7, 5:15] *= 1.5
    assert int(np.argmax(rx_scores(x, 5))) == 7
    rx = rx_map(small_cube, WINDOW, n_components=5)
    assert rx.metadata.CVAE.score.kind == "rx" and rx.data.shape == (48, 48)
    smap, mask = small_cube.anomaly_map("rx", n_components=5)
    assert mask.data.sum() == 0  # clean cube: no anomalies


def test_likelihood_ratio_prefers_the_true_hypothesis():
    rng = np.random.default_rng(2)
    mu0, mu1 = np.full(50, 10.0), np.full(50, 12.0)
    assert likelihood_ratio(rng.poisson(mu1), mu0, mu1) > 0
    assert likelihood_ratio(rng.poisson(mu0), mu0, mu1) < 0


def test_unimodality_ignores_a_few_isolated_tail_pixels():
    rng = np.random.default_rng(3)
    z = np.abs(rng.normal(size=20000))
    z[:5] = 12.0  # five extreme pixels: not a population
    assert not unimodality_test(z, anomalous="high")["bimodal"]
    z[:60] = rng.normal(12.0, 0.3, 60)
    assert unimodality_test(z, anomalous="high")["bimodal"]


def test_threshold_never_cuts_into_the_main_mode():
    import hyperspy.api as hs

    rng = np.random.default_rng(4)
    v = rng.normal(0.0, 1.0, (128, 128))
    v.flat[:40] = 30.0 + rng.normal(0, 0.2, 40)  # tiny far population: Otsu alone may split the bulk
    s = hs.signals.Signal2D(v)
    s.metadata.set_item("CVAE.score", {"kind": "shift", "anomalous": "high"})
    mask = threshold_anomalies(s)
    assert mask.data.sum() == 40
    assert mask.metadata.CVAE.threshold.threshold > 4.0


def test_anomaly_map_navigation_mask_leaves_pixels_out(small_cube):
    """HyperSpy's navigation_mask semantics: True = not scored (NaN), never flagged, not in the
    histogram the threshold is chosen on; lazy stays lazy; clear errors for bad masks."""
    bad, truth = small_cube.inject_shift(2.0, n_clusters=1, random_state=4, return_mask=True)
    ny, nx = truth.data.shape
    out = np.zeros((ny, nx), bool)
    out[: ny // 3] = True
    out &= ~truth.data  # leave out a band of clean pixels
    full, mask_full = bad.anomaly_map("rx", n_components=5)
    smap, mask = bad.anomaly_map("rx", n_components=5, navigation_mask=out)
    assert np.isnan(smap.data[out]).all() and np.isfinite(smap.data[~out]).all()
    np.testing.assert_allclose(smap.data[~out], full.data[~out])  # same scores elsewhere
    assert not mask.data[out].any()
    assert smap.metadata.CVAE.score.n_left_out == int(out.sum())
    assert mask_full.data[truth.data].all() and mask.data[truth.data].all()
    assert not np.isnan(full.data).any()  # the user's score map of the other call is untouched
    lazy_map, none = bad.as_lazy().anomaly_map("pca", n_components=3, navigation_mask=out, threshold=None)
    assert lazy_map._lazy and none is None
    assert np.isnan(np.asarray(lazy_map.data.compute())[out]).all()
    with pytest.raises(TypeError, match="boolean"):
        bad.anomaly_map("pca", navigation_mask=out.astype(int))
    with pytest.raises(ValueError, match="navigation shape"):
        bad.anomaly_map("pca", navigation_mask=out[:3])
    with pytest.raises(ValueError, match="every pixel"):
        bad.anomaly_map("pca", navigation_mask=np.ones_like(out))
