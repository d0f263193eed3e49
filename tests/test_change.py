"""score="auto": residuals beyond the nuisances and the learned direction of change (issue 14, item 1)."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from hyperspy_cvae.scores import change_analysis
from hyperspy_cvae.synthetic import bifeo3_si

WINDOW = (693.0, 741.0)


@pytest.fixture(scope="module")
def clean():
    return bifeo3_si((64, 64), random_state=3)


def _pca(s, k=3):
    work = s.isig[660.0:770.0].deepcopy()
    work.decomposition(print_info=False)
    return work, work.get_decomposition_model(k)


@pytest.mark.parametrize("kind", ["new_peak", "valence"])
def test_finds_shape_changes_the_shift_score_misses(clean, kind):
    bad, truth = clean.inject_anomaly(kind, n_clusters=4, cluster_size=5, random_state=2, return_mask=True)
    original, rec = _pca(bad)
    res = change_analysis(original, rec, WINDOW)
    t = truth.data.ravel()
    assert roc_auc_score(t, res["score"].data.ravel()) > 0.99
    assert res["score"].metadata.CVAE.score.kind == "auto"
    assert res["score"].metadata.CVAE.score.anomalous == "high"


def test_learned_direction_is_the_change(clean):
    bad = clean.inject_anomaly("new_peak", n_clusters=4, cluster_size=5, random_state=2)
    res = change_analysis(*_pca(bad), WINDOW)
    d = res["direction"]
    e = d.axes_manager[0].axis
    assert abs(e[np.argmax(d.data)] - 714.5) < 1.5            # the peak midway between L3 and L2
    assert d.axes_manager[0].units == "eV" and np.isclose(np.linalg.norm(d.data), 1.0)


def test_weak_shared_change_is_learned_from_its_boxes(clean):
    # a 30 % L2/L3 ratio change is weak in each pixel's χ² (spread over every channel): the boxes
    # with the largest χ² seed a rough direction, the boxes of its matched filter refine it
    bad, truth = clean.inject_anomaly("l3_l2_ratio", n_clusters=4, cluster_size=5, random_state=2,
                                      return_mask=True)
    res = change_analysis(*_pca(bad), WINDOW)
    assert roc_auc_score(truth.data.ravel(), res["score"].data.ravel()) > 0.92     # 0.88 unrefined
    assert "largest mean projection" in res["score"].metadata.CVAE.score.direction_from


def test_opposite_changes_share_the_direction(clean):
    # the ratio up in 4 patches and down in 2: the refined direction aligns both (each box with
    # its sign) and each side of the projection is a test with its own weight
    up, t_up = clean.inject_anomaly("l3_l2_ratio", 0.3, n_clusters=4, cluster_size=5, random_state=2,
                                    return_mask=True)
    down = np.zeros((64, 64), bool)
    down[40:45, 5:10] = down[5:10, 50:55] = True
    down &= ~t_up.data
    bad = up.deepcopy()
    bad.data[down] = clean.inject_anomaly("l3_l2_ratio", -0.3, mask=down, random_state=4).data[down]
    res = change_analysis(*_pca(bad), WINDOW)
    score, proj = res["score"].data, res["projection"].data
    assert np.sign(np.median(proj[t_up.data])) == -np.sign(np.median(proj[down]))
    assert roc_auc_score(down[~t_up.data], score[~t_up.data]) > 0.75                 # 0.66 unrefined
    weights = res["score"].metadata.CVAE.score.weights
    assert weights["opposite_projection"] > 3 * weights["chi2"]


def test_small_map_keeps_the_seeded_direction_two_sided():
    # 40 x 40 pixels: 16 seeds (1 %), fewer than a box's worth: the direction stays as seeded and
    # both sides of its projection weigh the same
    from hyperspy_cvae.scores.change import MIN_REFINE_SEEDS

    bad, truth = bifeo3_si((40, 40), random_state=3).inject_anomaly(
        "new_peak", n_clusters=2, cluster_size=4, random_state=2, return_mask=True)
    res = change_analysis(*_pca(bad), WINDOW)
    meta = res["score"].metadata.CVAE.score
    assert int(0.01 * 40 * 40) < MIN_REFINE_SEEDS
    assert "largest mean projection" not in meta.direction_from
    assert np.isclose(meta.weights["projection"], meta.weights["opposite_projection"])
    assert roc_auc_score(truth.data.ravel(), res["score"].data.ravel()) > 0.99


@pytest.mark.parametrize("threshold", ["otsu", "fdr"])
def test_nuisances_and_null_are_not_flagged(clean, threshold):
    thick = clean.inject_anomaly("thickness", n_clusters=4, cluster_size=5, random_state=2)
    for s in (clean, thick):
        res = s.anomaly_map("pca", WINDOW, score="auto", threshold=threshold)
        assert res.mask.data.mean() <= 0.001, (threshold, res.mask.data.sum())


def test_drift_is_a_nuisance():
    # the same cube with 4x the per-pixel energy jitter: the score's bulk barely moves
    calm = change_analysis(*_pca(bifeo3_si((48, 48), random_state=0, drift=0.05)), WINDOW)["chi2"].data
    shaky = change_analysis(*_pca(bifeo3_si((48, 48), random_state=0, drift=0.2)), WINDOW)["chi2"].data
    assert np.percentile(shaky, 99) < 2.0 * np.percentile(calm, 99) + 2.0


@pytest.mark.parametrize("kept", [True, False])
def test_lazy_equals_eager(clean, kept, monkeypatch):
    """A lazy signal is read block by block (a halo for the boxes, then the learned direction and
    the projection, twice), from memory when its window is small (``kept``): every map and the direction
    equal the eager ones, whatever the chunks."""
    from hyperspy_cvae.scores import change

    if not kept:
        monkeypatch.setattr(change, "_PERSIST_BYTES", 0)
    bad = clean.inject_anomaly("new_peak", n_clusters=2, cluster_size=5, random_state=1)
    original, rec = _pca(bad)
    eager = change_analysis(original, rec, WINDOW)
    lazy_o, lazy_r = original.as_lazy(), rec.as_lazy()
    lazy_o.data = lazy_o.data.rechunk((13, 11, -1))
    lazy_r.data = lazy_r.data.rechunk((7, 20, 50))
    lazy = change_analysis(lazy_o, lazy_r, WINDOW)
    assert lazy_o._lazy and lazy_r._lazy                        # the inputs are left as they were
    for k in ("score", "chi2", "projection", "nuisance", "shift", "direction"):
        np.testing.assert_allclose(np.asarray(lazy[k].data), eager[k].data, rtol=0, atol=1e-9, err_msg=k)
    given = np.zeros(bad.axes_manager.navigation_shape[::-1], bool)
    given[:6, :6] = True
    np.testing.assert_allclose(change_analysis(lazy_o, lazy_r, WINDOW, seed=given)["direction"].data,
                               change_analysis(original, rec, WINDOW, seed=given)["direction"].data, atol=1e-12)


def test_bad_arguments(clean):
    original, rec = _pca(clean)
    for kw in ({"box": 4}, {"background_degree": -1}, {"seed_fraction": 0.7}):
        with pytest.raises(ValueError):
            change_analysis(original, rec, WINDOW, **kw)
    with pytest.raises(ValueError, match="channels"):
        change_analysis(original, rec, (700.0, 702.0))


def test_shift_is_one_of_the_tests(clean):
    """A 0.5 eV edge shift, which the nuisances' drift column would absorb as a nuisance, is found
    by the drift's own t-statistic against the bulk: signed like the shift."""
    s, ideal = bifeo3_si((64, 64), random_state=3, return_expected="no_drift")
    bad, truth = s.inject_shift(0.5, window=(690.0, 730.0), n_clusters=4, cluster_size=5,
                                random_state=2, return_mask=True)
    res = change_analysis(bad, ideal, WINDOW)
    t = truth.data.ravel()
    assert roc_auc_score(t, res["score"].data.ravel()) > 0.97
    assert np.median(res["shift"].data[truth.data]) > 3.0          # to higher energy loss: positive
    down = s.inject_shift(-0.5, window=(690.0, 730.0), mask=truth)
    assert np.median(change_analysis(down, ideal, WINDOW)["shift"].data[truth.data]) < -3.0
    assert "drift t-statistic" in res["score"].metadata.CVAE.score.tests
