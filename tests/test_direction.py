"""The one-sided shift score (``anomaly_map(direction=...)``, ``directional_shift_score``)."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from hyperspy_cvae.scores import directional_shift_score, shift_analysis
from hyperspy_cvae.synthetic import bifeo3_si

WINDOW = (690.0, 730.0)


@pytest.fixture(scope="module")
def jittery():
    """A cube whose per-pixel energy jitter (0.32 eV s.d.) is as large as the injected shift,
    scored against its drift-free truth."""
    clean, _ = bifeo3_si((48, 48), random_state=0, drift=0.32, return_expected=True)
    _, bulk = bifeo3_si((48, 48), random_state=0, drift=0.32, return_expected="no_drift")
    bad, truth = clean.inject_shift(0.5, window=WINDOW, n_clusters=4, cluster_size=6,
                                    random_state=2, return_mask=True)
    return bad, truth.data, shift_analysis(bad, bulk, WINDOW)


def test_one_sided_score_is_the_signed_root_and_ranks_better(jittery):
    _, truth, res = jittery
    z, d = res["score"].data, res["shift"].data
    up = directional_shift_score(res["score"], res["shift"], "higher").data
    down = directional_shift_score(res["score"], res["shift"], "lower").data
    ok = np.isfinite(d)
    np.testing.assert_array_equal(up[ok], np.sign(d[ok]) * z[ok])
    np.testing.assert_array_equal(down[ok], -up[ok])
    both = roc_auc_score(truth.ravel(), z.ravel())
    one = roc_auc_score(truth.ravel(), up.ravel())
    # the jitter of the other sign no longer competes: a clear gain (0.70 -> 0.82 on this cube)
    assert one > both + 0.05, (both, one)
    assert roc_auc_score(truth.ravel(), down.ravel()) < 0.25   # the other way: ranked last
    assert directional_shift_score(res["score"], res["shift"], "both") is res["score"]


def test_unlocated_shifts_keep_their_score_and_no_information_stays_nan(jittery):
    _, _, res = jittery
    score, shift = res["score"].deepcopy(), res["shift"].deepcopy()
    score.data[0, :3] = [7.0, 2.0, np.nan]
    shift.data[0, :3] = [np.nan, -0.4, np.nan]   # beyond max_shift / located / no counts
    out = directional_shift_score(score, shift, "higher")
    assert out.data[0, 0] == 7.0 and out.data[0, 1] == -2.0 and np.isnan(out.data[0, 2])
    assert out.metadata.CVAE.score.direction == "higher"
    assert "higher" in out.metadata.General.title
    assert not score.metadata.CVAE.score.has_item("direction")   # the input is left as it was


def test_lazy_gives_the_same_map(jittery):
    bad, _, res = jittery
    lazy = directional_shift_score(res["score"].as_lazy(), res["shift"].as_lazy(), "lower")
    assert lazy._lazy
    lazy.compute()
    np.testing.assert_array_equal(lazy.data, directional_shift_score(res["score"], res["shift"], "lower").data)


def test_anomaly_map_finds_only_the_sign_asked_for():
    s = bifeo3_si((48, 48), random_state=0)
    down, m = s.inject_shift(-1.0, n_clusters=2, random_state=1, return_mask=True)
    for threshold, spatial in (("otsu", None), ("fdr", None), ("fdr", "auto")):
        low = down.anomaly_map("pca", window=WINDOW, direction="lower", threshold=threshold,
                               spatial=spatial)
        assert low.mask.data[m.data].mean() > 0.95 and (low.mask.data & ~m.data).sum() <= 5, threshold
        high = down.anomaly_map("pca", window=WINDOW, direction="higher", threshold=threshold,
                                spatial=spatial)
        assert high.mask.data.sum() == 0, (threshold, spatial)
    assert low.score.metadata.CVAE.score.direction == "lower"
    # describe() still reports the signed shift of the flagged pixels
    rows = low.describe().table("anomalous")
    assert np.median([r["shift_eV"] for r in rows]) < -0.8


def test_bad_direction():
    s = bifeo3_si((16, 16), random_state=0)
    with pytest.raises(ValueError, match="`direction` must be one of"):
        s.anomaly_map("pca", window=WINDOW, direction="up")
    with pytest.raises(ValueError, match="applies to score='shift'"):
        s.anomaly_map("pca", window=WINDOW, direction="lower", score="pcc")
    with pytest.raises(ValueError, match="applies to score='shift'"):
        s.anomaly_map("rx", window=WINDOW, direction="higher")
    res = shift_analysis(s, s, WINDOW)
    with pytest.raises(ValueError, match="`direction` must be one of"):
        directional_shift_score(res["score"], res["shift"], None)
