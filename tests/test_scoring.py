import numpy as np
import pytest
import hyperspy.api as hs
from scipy import stats
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from hyperspy_cvae.evaluation import detection_metrics, precision_recall_curve
from hyperspy_cvae.scores import otsu_threshold, pcc_map, pearson, threshold_anomalies, unimodality_test


def test_pearson_matches_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(20, 50)), rng.normal(size=(20, 50))
    b[:5] += 3 * a[:5]
    ref = [stats.pearsonr(x, y)[0] for x, y in zip(a, b)]
    np.testing.assert_allclose(pearson(a, b), ref, rtol=1e-12)


def test_pearson_constant_spectra_defined(recwarn):
    a = np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 2.0, 3.0]])
    b = np.array([[2.0, 2.0, 2.0], [1.0, 2.0, 3.0], [5.0, 5.0, 5.0]])
    r = pearson(a, b)
    np.testing.assert_array_equal(r, [1.0, 0.0, 0.0])
    assert not any(issubclass(w.category, RuntimeWarning) for w in recwarn)


def _pair():
    rng = np.random.default_rng(1)
    base = np.exp(-0.5 * ((np.arange(100) - 50) / 5.0) ** 2) * 100 + 20
    data = rng.poisson(base, size=(10, 12, 100)).astype(float)
    s = hs.signals.Signal1D(data)
    rec = hs.signals.Signal1D(np.broadcast_to(base, data.shape).copy())
    for sig in (s, rec):
        ax = sig.axes_manager[-1]
        ax.scale, ax.offset, ax.units = 0.5, 680.0, "eV"
        for nav in sig.axes_manager.navigation_axes:
            nav.scale, nav.units, nav.offset = 2.0, "nm", 1.0
    return s, rec, base


def test_pcc_map_eager_lazy_and_calibration():
    s, rec, base = _pair()
    pcc = pcc_map(s, rec, (690.0, 720.0))
    assert pcc.axes_manager.signal_shape == (12, 10)
    assert pcc.axes_manager[0].scale == 2.0 and pcc.axes_manager[0].offset == 1.0
    assert pcc.axes_manager[0].units == "nm"
    ref = pearson(s.data[..., 20:80], rec.data[..., 20:80])
    np.testing.assert_allclose(pcc.data, ref)
    assert pcc.metadata.CVAE.score.kind == "pcc" and pcc.metadata.CVAE.score.window == [690.0, 720.0]
    lazy = pcc_map(s.as_lazy(), rec, (690.0, 720.0))
    assert lazy._lazy
    lazy.compute()
    np.testing.assert_allclose(lazy.data, ref)


def test_pcc_map_axis_mismatch():
    s, rec, _ = _pair()
    rec.axes_manager[-1].offset = 681.0
    with pytest.raises(ValueError, match="different energy axes"):
        pcc_map(s, rec, (690.0, 720.0))


def test_unimodality_and_otsu():
    rng = np.random.default_rng(0)
    bulk = np.clip(rng.normal(0.93, 0.02, (100, 100)), -1, 1)
    pcc = hs.signals.Signal2D(bulk.copy())
    pcc.metadata.set_item("CVAE.score.anomalous", "low")
    m = threshold_anomalies(pcc)
    assert m.data.sum() == 0 and m.metadata.CVAE.threshold.decision.startswith("unimodal")
    assert m.metadata.CVAE.threshold.bimodal is False
    # Skewed unimodal (beta) distribution: still no anomalies.
    skew = hs.signals.Signal2D(1 - rng.beta(2, 30, (150, 150)))
    assert threshold_anomalies(skew, anomalous="low").data.sum() == 0
    with pytest.raises(ValueError, match="which end"):  # a plain map has no direction: no guess
        threshold_anomalies(skew)
    bad = bulk.copy()
    bad[10:16, 10:16] = rng.normal(0.5, 0.03, (6, 6))
    pcc2 = hs.signals.Signal2D(bad)
    m2 = threshold_anomalies(pcc2, anomalous="low")
    assert m2.metadata.CVAE.threshold.threshold == otsu_threshold(bad)
    assert m2.data[10:16, 10:16].all() and m2.data.sum() == 36
    assert m2.data.dtype == bool
    high = threshold_anomalies(hs.signals.Signal2D(-bad), anomalous="high")
    np.testing.assert_array_equal(high.data, m2.data)
    forced = threshold_anomalies(pcc, unimodality=False)
    assert forced.data.sum() > 0


def test_unimodality_test_small_cluster():
    rng = np.random.default_rng(3)
    x = np.r_[rng.normal(0, 1, 30000), rng.normal(-9, 0.5, 36)]
    r = unimodality_test(x)
    assert r["bimodal"] and r["valley_ratio"] < 0.5
    assert not unimodality_test(rng.normal(size=30000))["bimodal"]
    assert not unimodality_test(np.ones(100))["bimodal"]


def test_detection_metrics_against_sklearn():
    rng = np.random.default_rng(0)
    truth = rng.random((30, 30)) < 0.1
    scores = rng.normal(size=(30, 30)) - 2 * truth
    mask = scores < -1.5
    m = detection_metrics(mask, truth, scores, anomalous="low")
    assert m["f1"] == pytest.approx(f1_score(truth.ravel(), mask.ravel()))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(truth.ravel(), -scores.ravel()))
    assert m["pr_auc"] == pytest.approx(average_precision_score(truth.ravel(), -scores.ravel()))
    p, r, t = precision_recall_curve(truth, scores, anomalous="low")
    assert p[-1] == 1 and r[-1] == 0 and len(t) == len(p) - 1
    # f1_best: brute force over every threshold the scores allow.
    best = max(f1_score(truth.ravel(), (scores <= v).ravel()) for v in np.unique(scores))
    assert m["f1_best"] == pytest.approx(best)  # (>= f1: the mask's own threshold is among them)
    with pytest.raises(ValueError, match="different sizes"):
        detection_metrics(mask[:5], truth)
    # Left-out (NaN) pixels count over the whole map, ranked below every scored pixel:
    # leaving out clean pixels can only help, leaving out anomalies costs recall.
    out = np.zeros_like(truth)
    out[:10] = True
    held = np.where(out, np.nan, scores)
    m2 = detection_metrics(mask & ~out, truth, held, anomalous="low")
    ranked = np.where(out, scores.max() + 1, scores)
    assert m2["roc_auc"] == pytest.approx(roc_auc_score(truth.ravel(), -ranked.ravel()))
    best2 = max(f1_score(truth.ravel(), ((scores <= v) & ~out).ravel()) for v in np.unique(scores))
    assert m2["f1_best"] == pytest.approx(best2)
    assert m2["roc_auc"] != pytest.approx(m["roc_auc"])


def test_unimodality_broad_anomalous_mode_and_heavy_tails():
    """A broad, low anomalous mode beyond a long sparse tail is found; unimodal
    skewed/heavy-tailed samples (the sparse tails that fooled the old test) are not."""
    rng = np.random.default_rng(4)
    # Shift-score-like: bulk |N(0, 1.9)|, 216 anomalies spread as N(9.5, 1.6), a few far outliers.
    z = np.r_[np.abs(rng.normal(0, 1.9, 36648)), rng.normal(9.5, 1.6, 216), [18.0, 19.5, 21.0]]
    r = unimodality_test(z, anomalous="high")
    assert r["bimodal"] and 5.0 < r["valley"] < 8.5, r
    assert r["n_beyond_valley"] >= 180
    for draw in (lambda: rng.chisquare(1, 9216), lambda: rng.lognormal(0, 0.7, 9216),
                 lambda: rng.exponential(size=9216), lambda: rng.standard_t(3, 9216),
                 lambda: np.abs(rng.normal(size=2304))):
        for _ in range(5):
            x = draw()
            assert not unimodality_test(x, anomalous="high")["bimodal"]
            assert not unimodality_test(x, anomalous="low")["bimodal"]


def test_edge_free_mask_finds_the_substrate_and_nothing_on_a_film():
    """Film on a substrate without Fe: the substrate rows come out, no film pixel; a map with the
    edge everywhere (any dose) gets an all-False mask; lazy gives the same; bad windows refused."""
    from hyperspy_cvae.synthetic import bifeo3_si
    from hyperspy_cvae.scores import edge_free_mask, leave_out

    f = bifeo3_si((32, 32), substrate_fraction=0.25, random_state=3)
    m = edge_free_mask(f)
    film = 32 - 8
    assert not m.data[:film].any() and m.data[film:].mean() > 0.98
    assert m.metadata.CVAE.edge_mask.decision == "two populations"
    assert m.axes_manager.signal_axes[0].scale == f.axes_manager.navigation_axes[0].scale
    np.testing.assert_array_equal(edge_free_mask(f.as_lazy()).data, m.data)
    for dose in (150.0, 15.0):
        e = edge_free_mask(bifeo3_si((32, 32), dose=dose, random_state=3))
        assert not e.data.any() and e.metadata.CVAE.edge_mask.separation < 2.0
    with pytest.raises(ValueError, match="outside"):
        edge_free_mask(f, edge=(900.0, 910.0), pre_edge=(880.0, 890.0))
    with pytest.raises(ValueError, match="needs `pre_edge`"):
        edge_free_mask(f, edge=(706.0, 711.0))
    np.testing.assert_array_equal(edge_free_mask(f, "Fe_L3").data, m.data)
    np.testing.assert_array_equal(edge_free_mask(f, (706.0, 711.0), (695.0, 700.0)).data, m.data)
    # leave_out: NaN where masked, a copy (the input map is untouched).
    z = f._get_navigation_signal(data=np.ones((32, 32)))
    out = leave_out(z, m.data)
    assert np.isnan(out.data[m.data]).all() and not np.isnan(z.data).any()


def _within_class_variance(x, t):
    lo, hi = x[x <= t], x[x > t]
    return lo.size * lo.var() + hi.size * hi.var()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_otsu_threshold_minimises_the_within_class_variance(dtype):
    """Checked against its definition on the raw values, not against its own histogram: the
    threshold splits a two-mode sample between the modes, within a few histogram bins of the
    threshold that minimises the within-class sum of squares of the values themselves."""
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(0.0, 1.0, 5000), rng.normal(6.0, 0.7, 400)]).astype(dtype)
    t = otsu_threshold(x)
    assert isinstance(t, float) and 1.5 < t < 4.5
    step = float(np.ptp(x)) / 256
    grid = np.linspace(float(x.min()), float(x.max()), 2049)[1:-1]
    ss = np.array([_within_class_variance(x, g) for g in grid])
    assert abs(t - grid[ss.argmin()]) <= 3 * step
    assert _within_class_variance(x, t) <= ss.min() * (1 + 1e-3)
    assert otsu_threshold(np.full(5, 2.5, dtype)) == 2.5
    t_int = otsu_threshold(np.array([1, 1, 9, 9, 9]))  # integers: the 1s below, the 9s above
    assert 1 <= t_int < 9
    with pytest.raises(ValueError, match="at least one"):
        otsu_threshold(np.array([]))


def test_otsu_threshold_gives_scikit_image_floats():
    """The thresholds of the committed benchmarks came from scikit-image; they must not move."""
    skf = pytest.importorskip("skimage.filters", reason="scikit-image is not installed (no longer a dependency)")
    rng = np.random.default_rng(0)
    for x in (rng.normal(size=1000), rng.gamma(2.0, size=(64, 64)).astype(np.float32),
              np.concatenate([rng.normal(0, 1, 3000), rng.normal(9, 1, 30)])):
        assert otsu_threshold(x) == float(skf.threshold_otsu(x))
