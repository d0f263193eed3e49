"""fit_cvae(robust=True): the pixels a first model flags leave the second model's training (issue 14)."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from hyperspy_cvae.synthetic import bifeo3_si

FIT = dict(edge="Fe_L3", random_state=0, max_steps=120, validation_every=20)
FAST = dict(FIT, max_steps=20, validation_every=10)   # where the model's quality does not matter


@pytest.fixture(scope="module")
def common():
    """A 0.5 eV shift in a quarter of a 48 x 48 map: common enough to be learnt into the bulk."""
    clean = bifeo3_si((48, 48), random_state=0)
    return clean.inject_shift(0.5, window=(690.0, 730.0), n_clusters=9, cluster_size=8, random_state=1,
                              return_mask=True)


def _auc(s, truth):
    res = s.anomaly_map("cvae", edge="Fe_L3")
    return roc_auc_score(truth.data.ravel(), res.score.data.ravel())


def test_flagged_pixels_leave_the_second_fit(common):
    bad, truth = common
    assert truth.data.mean() > 0.2
    plain = bad.deepcopy()
    plain.fit_cvae(**FIT)
    robust = bad.deepcopy()
    robust.fit_cvae(robust=True, **FIT)
    record = robust.metadata.CVAE.model.robust
    assert record.refit and record.excluded > 0.5 * truth.data.sum()
    assert set(record.scores) == {"shift", "auto"} and record.flagged.shift > 0
    assert _auc(robust, truth) > _auc(plain, truth) + 0.01
    assert not plain.metadata.CVAE.model.has_item("robust")


def test_nothing_flagged_keeps_the_first_model():
    s = bifeo3_si((48, 48), random_state=2)
    cvae = s.fit_cvae(robust=True, **FIT)
    record = s.metadata.CVAE.model.robust
    assert not record.refit and record.excluded == 0 and record.reason == "nothing flagged"
    assert s.cvae is cvae


def test_too_many_flagged_warns_and_keeps_the_first_model(common, monkeypatch):
    from hyperspy_cvae import robust

    bad, _ = common
    s = bad.deepcopy()
    monkeypatch.setattr(robust, "suspected_anomalies",
                        lambda signal, cvae, **kw: (np.ones((48, 48), bool), {"shift": 2304}))
    with pytest.warns(UserWarning, match="more than 50%"):
        s.fit_cvae(robust=True, **FAST)
    assert not s.metadata.CVAE.model.robust.refit


def test_the_user_train_mask_is_kept(common, monkeypatch):
    from hyperspy_cvae import robust

    bad, _ = common
    flagged = np.zeros((48, 48), bool)
    flagged[:10, :10] = True
    mine = np.ones((48, 48), bool)
    mine[:, 40:] = False                                      # the user leaves out a band
    monkeypatch.setattr(robust, "suspected_anomalies", lambda signal, cvae, **kw: (flagged, {"shift": 100}))
    s = bad.deepcopy()
    cvae = s.fit_cvae(train_mask=mine, robust=True, **FAST)
    assert s.metadata.CVAE.model.robust.excluded == 100
    assert cvae.n_train_pixels_ == int((mine & ~flagged).sum())
    assert cvae.robust_excluded_.sum() == 100 and not (cvae.robust_excluded_ & ~mine).any()


def test_robust_needs_a_window(common):
    bad, _ = common
    s = bad.deepcopy()
    s.metadata.Sample.elements = []
    with pytest.raises(ValueError, match="robust=True .* scoring window"):
        s.fit_cvae(signal_range=(660.0, 760.0), robust=True, random_state=0, max_steps=20)


def test_auto_refusing_the_window_leaves_the_shift_flags(common, monkeypatch):
    # a window too narrow for "auto"'s nuisances (8 eV channels on a measured map): the shift
    # score's flags still leave the second fit
    import hyperspy_cvae.scores as scores

    def refuse(*args, **kwargs):
        raise ValueError("The window has 7 channels; score='auto' needs at least 12 (widen it).")

    monkeypatch.setattr(scores, "change_analysis", refuse)
    bad, _ = common
    s = bad.deepcopy()
    s.fit_cvae(robust=True, **FAST)
    assert list(s.metadata.CVAE.model.robust.scores) == ["shift"]
