"""The training budget in optimiser steps: the same on every map, with its progress bar."""

import functools

import dask.array as da
import pytest

from hyperspy_cvae import CVAE
from hyperspy_cvae.synthetic import bifeo3_si


@functools.lru_cache(maxsize=None)
def _cube(n):
    return bifeo3_si((n, n), random_state=0).isig[690.0:730.0].data


@pytest.mark.parametrize("n", [16, 64])
def test_step_budget_does_not_grow_with_the_map(n):
    cvae = CVAE(max_steps=12, validation_every=4, early_stopping=False, latent_dim=8,
                random_state=0, show_progressbar=False).fit(_cube(n))
    assert cvae.n_steps_ == 12
    assert cvae.history_["steps"] == [4, 8, 12]
    assert len(cvae.history_["train_loss"]) == len(cvae.history_["val_loss"]) == 3


def test_step_budget_on_dask_input_and_last_interval_shorter():
    cvae = CVAE(max_steps=10, validation_every=4, early_stopping=False, latent_dim=8,
                random_state=0, show_progressbar=False).fit(da.from_array(_cube(32), chunks=(16, 16, -1)))
    assert cvae.history_["steps"] == [4, 8, 10]


def test_early_stopping_counts_measures():
    # learning rate ~0: the validation loss (2 of the 16 tiles) cannot improve after the first measure
    cvae = CVAE(max_steps=40, validation_every=2, patience=2, learning_rate=1e-12, latent_dim=8,
                random_state=0, show_progressbar=False).fit(_cube(96))
    assert cvae.history_["steps"] == [2, 4, 6]
    assert cvae.n_steps_ == 6


def test_epochs_give_a_budget_in_passes():
    cvae = CVAE(epochs=2, latent_dim=8, random_state=0, show_progressbar=False).fit(_cube(48))
    steps = cvae.history_["steps"]  # a pass = the batches of one randomly offset tiling
    assert len(cvae.history_["train_loss"]) == len(steps) == 2 and 0 < steps[0] < steps[1]


def test_progress_bar_shows_budget_loss_and_time_left(capsys):
    CVAE(max_steps=6, validation_every=3, latent_dim=8, random_state=0,
         show_progressbar=True).fit(_cube(16))
    err = capsys.readouterr().err
    assert "6/6" in err and "step" in err and "loss=" in err and "<" in err  # elapsed<remaining


@pytest.mark.parametrize("kw", [dict(max_steps=0), dict(validation_every=0), dict(max_steps=2.5),
                                dict(epochs=0), dict(max_steps=True)])
def test_bad_budget_is_refused(kw):
    with pytest.raises(ValueError, match="must be an integer >= 1"):
        CVAE(**kw).fit(_cube(16))


def test_same_seed_same_model_under_the_step_budget():
    a = CVAE(max_steps=4, validation_every=2, latent_dim=8, random_state=3, show_progressbar=False).fit(_cube(16))
    b = CVAE(max_steps=4, validation_every=2, latent_dim=8, random_state=3, show_progressbar=False).fit(_cube(16))
    assert a.checksum() == b.checksum()


def test_anomaly_map_passes_stride_and_blend_to_the_reconstruction():
    from hyperspy_cvae.synthetic import bifeo3_si as cube

    s = cube((32, 32), random_state=0)
    s.fit_cvae(shard_size=16, max_steps=2, latent_dim=8, random_state=0, show_progressbar=False)
    res = s.anomaly_map("cvae", stride=16, show_progressbar=False)
    assert res.reconstruction.metadata.CVAE.reconstruction.stride == 16
    assert res.reconstruction.metadata.CVAE.reconstruction.blend == "full"
    res = s.anomaly_map("cvae", blend="full", show_progressbar=False)
    assert res.reconstruction.metadata.CVAE.reconstruction.blend == "full"
    with pytest.raises(ValueError, match="would be ignored"):
        s.anomaly_map("cvae", latent_dim=4, show_progressbar=False)


@pytest.mark.parametrize("n, shard", [(16, 8), (32, 16), (48, 24)])
def test_auto_budget_scales_with_the_shard_area(monkeypatch, n, shard):
    import hyperspy_cvae.cvae.training as training

    monkeypatch.setattr(training, "DEFAULT_STEPS", 4)  # 4 steps with shards of 24: 36 with 8
    cvae = CVAE(validation_every=50, latent_dim=8, random_state=0, show_progressbar=False).fit(_cube(n))
    assert cvae.shard_size_ == shard
    assert cvae.n_steps_ == cvae.max_steps_ == {8: 36, 16: 9, 24: 4}[shard]


def test_without_validation_tiles_the_whole_budget_is_trained(caplog):
    import logging

    # learning rate ~0: with validation tiles this stops after 3 measures (above); without, the
    # training loss is no convergence test, so all 12 steps run and the last weights are kept
    with caplog.at_level(logging.INFO, logger="hyperspy_cvae"):
        cvae = CVAE(max_steps=12, validation_every=2, patience=2, learning_rate=1e-12, latent_dim=8,
                    validation_fraction=0.0, random_state=0, show_progressbar=False).fit(_cube(96))
    assert cvae.n_steps_ == 12 and cvae.history_["steps"][-1] == 12
    assert "without early stopping" in caplog.text


def test_auto_budget_is_refused_misspelt():
    with pytest.raises(ValueError, match="integer >= 1 or 'auto'"):
        CVAE(max_steps="Auto").fit(_cube(16))


def test_auto_interval_between_measures_scales_like_the_budget(monkeypatch):
    import hyperspy_cvae.cvae.training as training

    monkeypatch.setattr(training, "DEFAULT_STEPS", 4)
    cvae = CVAE(latent_dim=8, random_state=0, show_progressbar=False).fit(_cube(16))
    assert cvae.validation_every_ == 225 and cvae.history_["steps"] == [36]  # the budget in one measure
    back = CVAE(max_steps=6, validation_every=2, latent_dim=8, random_state=0, show_progressbar=False)
    assert back.fit(_cube(16)).history_["steps"] == [2, 4, 6]
