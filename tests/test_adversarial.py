"""Adversarial inputs beyond the known bad-input list: each is called as a user would and must
give its recorded outcome, a specific error (type and message) or a correct result. The README's
"Bad input" section quotes this table (checked in tests/test_bad_input_table.py)."""

import numpy as np
import pytest

from conftest import WINDOW
from hyperspy_cvae import CVAE
from hyperspy_cvae.synthetic import bifeo3_si

TINY = dict(shard_size=8, latent_dim=4, epochs=1, batch_size=4, random_state=0, show_progressbar=False)


def _map(shape=(16, 16), **kw):
    return bifeo3_si(shape, random_state=0, **kw).isig[680.0:740.0].deepcopy()


def _window_as_string():
    return _map().anomaly_map("pca", window="690-730")


def _window_of_three():
    return _map().anomaly_map("pca", window=(690.0, 700.0, 710.0))


def _window_with_nan():
    return _map().anomaly_map("pca", window=(690.0, float("nan")))


def _dE_infinite():
    return _map().inject_shift(float("inf"), WINDOW)


def _too_many_patches():
    return _map().inject_shift(1.0, WINDOW, n_clusters=50, cluster_size=6, random_state=0)


def _patch_larger_than_map():
    return _map().inject_shift(1.0, WINDOW, n_clusters=1, cluster_size=40, random_state=0)


def _navigation_mask_all_true():
    s = _map()
    return s.anomaly_map("pca", window=WINDOW, navigation_mask=np.ones((16, 16), bool))


def _navigation_mask_integers():
    s = _map()
    return s.anomaly_map("pca", window=WINDOW, navigation_mask=np.zeros((16, 16), int))


def _zero_components():
    return _map().anomaly_map("pca", window=WINDOW, n_components=0)


def _max_shift_zero():
    return _map().anomaly_map("pca", window=WINDOW, max_shift=0.0)


def _unknown_score():
    return _map().anomaly_map("pca", window=WINDOW, score="PCC")


def _unknown_method():
    return _map().anomaly_map("ica", window=WINDOW)


def _signal_range_15_channels():
    return _map().fit_cvae(signal_range=(690.0, 694.5), **TINY)


def _huge_shard():
    return _map().fit_cvae(**dict(TINY, shard_size=4096))


def _shard_not_multiple_of_4():
    return _map().fit_cvae(**dict(TINY, shard_size=10))


def _shard_size_word():
    return _map().fit_cvae(**dict(TINY, shard_size="big"))


def _epochs_zero():
    return _map().fit_cvae(**dict(TINY, epochs=0))


def _steps_zero():
    kw = {k: v for k, v in TINY.items() if k != "epochs"}
    return _map().fit_cvae(**dict(kw, max_steps=0))


def _validation_fraction_too_large():
    return _map().fit_cvae(**dict(TINY, validation_fraction=0.7))


def _unknown_loss():
    return _map().fit_cvae(**dict(TINY, loss="mse"))


def _unknown_fit_argument():
    return _map().fit_cvae(**dict(TINY, learning_rat=1e-3))


def _stride_larger_than_shard():
    return _map().fit_cvae(**dict(TINY, stride=9))


def _missing_checkpoint(tmp_path):
    return CVAE.load(tmp_path / "nowhere.pt")


def _float16_data():
    s = _map()
    s.change_dtype("float16")
    z, mask = s.anomaly_map("pca", window=WINDOW)
    assert z.data.dtype == np.float64 and np.isfinite(z.data).all()
    return "ok"


def _bool_data():
    s = _map()
    s.data = s.data > 100
    return s.anomaly_map("pca", window=WINDOW)


def _transform_before_fit():
    return CVAE().transform(np.zeros((1, 8, 8, 20), np.float32))


def _set_unknown_param():
    return CVAE().set_params(beta_=2.0)


def _inject_mask_of_floats():
    return _map().inject_shift(1.0, WINDOW, mask=np.full((16, 16), 0.5))


def _train_mask_of_integers():
    return _map().fit_cvae(train_mask=np.ones((16, 16), int), **TINY)


def _deviance_of_a_dead_pixel():
    s = _map()
    s.data[3, 4] = 0.0
    z, mask = s.anomaly_map("pca", window=WINDOW, score="deviance")
    assert np.isnan(z.data[3, 4]) and not mask.data[3, 4] and np.isfinite(z.data).sum() == 255
    return "ok"


#: (id, input, outcome, call, expected exception or None, message fragment)
ADVERSARIAL = [
    ("window-string", "window given as a string `\"690-730\"`", "`ValueError`: a (start, end) pair",
     _window_as_string, ValueError, "(start, end) pair"),
    ("window-three", "window with three numbers", "`ValueError`: a (start, end) pair",
     _window_of_three, ValueError, "(start, end) pair"),
    ("window-nan", "window with a NaN bound", "`ValueError`: reversed or empty",
     _window_with_nan, ValueError, "reversed or empty"),
    ("dE-inf", "`inject_shift(dE=inf)`", "`ValueError`: smaller than the window width",
     _dE_infinite, ValueError, "smaller than the window width"),
    ("patches-too-many", "more patches than fit in the map", "`ValueError` saying how many fit",
     _too_many_patches, ValueError, "patch"),
    ("patch-too-large", "a patch larger than the map", "`ValueError`: does not fit in the map",
     _patch_larger_than_map, ValueError, "does not fit"),
    ("mask-all-true", "`navigation_mask` leaving out every pixel", "`ValueError`: nothing left to score",
     _navigation_mask_all_true, ValueError, "every pixel"),
    ("mask-integers", "`navigation_mask` of integers", "`TypeError`: must be boolean",
     _navigation_mask_integers, TypeError, "boolean"),
    ("components-zero", "`n_components=0`", "`ValueError`: must be >= 1",
     _zero_components, ValueError, "n_components"),
    ("max-shift-zero", "`max_shift=0`", "`ValueError`: at least one channel",
     _max_shift_zero, ValueError, "at least one channel"),
    ("score-case", "`score=\"PCC\"` (wrong case)", "`ValueError` listing the scores",
     _unknown_score, ValueError, "'shift'"),
    ("method-unknown", "`anomaly_map(\"ica\")`", "`ValueError` listing the methods",
     _unknown_method, ValueError, "'pca', 'cvae' or 'rx'"),
    ("range-15-channels", "`signal_range` of 15 channels", "`ValueError`: at least 16 channels",
     _signal_range_15_channels, ValueError, "at least 16"),
    ("shard-huge", "`shard_size=4096` on a 16 × 16 map", "`ValueError` suggesting a shard size",
     _huge_shard, ValueError, "shard_size"),
    ("shard-not-4", "`shard_size=10`", "`ValueError`: a multiple of 4",
     _shard_not_multiple_of_4, ValueError, "multiple of 4"),
    ("shard-word", "`shard_size=\"big\"`", "`ValueError`: 'auto' or a multiple of 4",
     _shard_size_word, ValueError, "'auto' or a multiple of 4"),
    ("steps-zero", "`max_steps=0`", "`ValueError`: must be an integer >= 1",
     _steps_zero, ValueError, "`max_steps` must be an integer >= 1"),
    ("epochs-zero", "`epochs=0`", "`ValueError`: must be an integer >= 1",
     _epochs_zero, ValueError, "`epochs` must be an integer >= 1"),
    ("validation-large", "`validation_fraction=0.7`", "`ValueError`: must be in [0, 0.5)",
     _validation_fraction_too_large, ValueError, "validation_fraction"),
    ("loss-unknown", "`loss=\"mse\"`", "`ValueError` listing the losses",
     _unknown_loss, ValueError, "'ce' or 'poisson'"),
    ("fit-typo", "a misspelt fit argument (`learning_rat`)", "`TypeError` listing the valid ones",
     _unknown_fit_argument, TypeError, "learning_rate"),
    ("stride-large", "`stride` larger than the shard", "`ValueError`: must be in [1, shard_size]",
     _stride_larger_than_shard, ValueError, "stride"),
    ("checkpoint-missing", "`CVAE.load` of a file that does not exist", "`FileNotFoundError`",
     _missing_checkpoint, FileNotFoundError, "nowhere.pt"),
    ("float16", "float16 data", "scored in float64, finite", _float16_data, None, "ok"),
    ("inject-mask-floats", "`inject_shift(mask=...)` of floats (0.5)", "`TypeError`: must be boolean",
     _inject_mask_of_floats, TypeError, "must be boolean"),
    ("train-mask-integers", "`fit_cvae(train_mask=...)` of integers", "`TypeError`: must be boolean",
     _train_mask_of_integers, TypeError, "must be boolean"),
    ("deviance-dead-pixel", "a dead (all-zero) pixel scored by the deviance",
     "NaN (no counts: not a perfect fit), never flagged", _deviance_of_a_dead_pixel, None, "ok"),
    ("bool-data", "boolean data", "`TypeError`: needs real counts",
     _bool_data, TypeError, "real counts"),
    ("transform-unfitted", "`CVAE().transform(...)` before `fit`", "`NotFittedError` (a `ValueError`)",
     _transform_before_fit, ValueError, "not fitted"),
    ("param-unknown", "`CVAE().set_params(beta_=2)`", "`ValueError` listing the parameters",
     _set_unknown_param, ValueError, "Invalid parameter"),
]


@pytest.mark.parametrize("case", ADVERSARIAL, ids=[c[0] for c in ADVERSARIAL])
def test_adversarial(case, tmp_path):
    _, _, _, call, error, fragment = case
    args = (tmp_path,) if call.__code__.co_argcount else ()
    if error is None:
        assert call(*args) == fragment
        return
    with pytest.raises(error) as info:
        call(*args)
    assert fragment in str(info.value), str(info.value)


def test_auto_shard_size_fits_small_maps():
    """``shard_size="auto"`` (the default) trains on a 13 × 17 map without a hand-set size."""
    s = bifeo3_si((13, 17), random_state=0).isig[680.0:740.0].deepcopy()
    cvae = s.fit_cvae(**{k: v for k, v in TINY.items() if k != "shard_size"})
    assert cvae.shard_size == "auto" and cvae.shard_size_ == 8
    rec = s.cvae_decomposition(show_progressbar=False)
    assert rec.data.shape == s.data.shape and np.isfinite(rec.data).all()
    with pytest.raises(ValueError, match="smaller than one shard of 8 × 8"):
        bifeo3_si((6, 20), random_state=0).isig[680.0:740.0].fit_cvae(
            **{k: v for k, v in TINY.items() if k != "shard_size"})
