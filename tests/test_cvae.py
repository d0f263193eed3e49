import numpy as np
import pytest
import torch

from hyperspy_cvae import CVAE
from hyperspy_cvae.latent import latent_pair_similarity
from hyperspy_cvae.evaluation import detection_metrics
from conftest import data_hash

FIT = dict(signal_range=(680.0, 740.0), shard_size=16, latent_dim=16, epochs=3, batch_size=4,
           random_state=0, show_progressbar=False)


@pytest.fixture(scope="module")
def fitted(small_cube):
    s = small_cube.deepcopy()
    s.fit_cvae(**FIT)
    return s


@pytest.mark.slow
def test_fit_stores_model_history_metadata(fitted):
    cvae = fitted.cvae
    assert cvae.is_fitted and len(cvae.history_["train_loss"]) >= 1
    assert np.isfinite(cvae.history_["train_loss"]).all()
    assert cvae.n_channels_ == 200 and cvae.energy_axis_["offset"] == pytest.approx(680.0, abs=0.3)
    assert fitted.metadata.CVAE.model.checksum == cvae.checksum()
    assert cvae.get_params()["latent_dim"] == 16
    from hyperspy_cvae.plotting import plot_history

    ax = plot_history(cvae)
    assert ax.get_xlabel() == "optimiser step"
    steps = cvae.history_["steps"]  # one point per epoch here (epochs=2), at its last step
    assert len(steps) == len(cvae.history_["train_loss"]) and steps[-1] == cvae.n_steps_
    assert np.all(np.diff(steps) > 0)


@pytest.mark.slow
def test_same_seed_same_model(small_cube):
    a = small_cube.deepcopy().fit_cvae(**dict(FIT, epochs=1))
    b = small_cube.deepcopy().fit_cvae(**dict(FIT, epochs=1))
    c = small_cube.deepcopy().fit_cvae(**dict(FIT, epochs=1, random_state=1))
    assert a.checksum() == b.checksum() != c.checksum()


@pytest.mark.slow
def test_reconstruction_lazy_equals_eager_and_no_mutation(fitted):
    before = data_hash(fitted)
    rec = fitted.cvae_decomposition(show_progressbar=False)
    assert data_hash(fitted) == before
    assert type(rec) is type(fitted) and rec.data.shape == (48, 48, 200)
    assert rec.axes_manager[-1].offset == pytest.approx(680.0, abs=0.3)
    assert rec.metadata.CVAE.reconstruction.method == "CVAE"
    lat = fitted.cvae_results["latent_map"]  # quincunx blend: the kept shards of stride 16
    assert lat.axes_manager.navigation_shape == (16,) and lat.axes_manager.signal_shape == (3, 3)
    assert rec.metadata.CVAE.reconstruction.blend == "quincunx"
    full = fitted.deepcopy().cvae_decomposition(cvae=fitted.cvae, blend="full", show_progressbar=False)
    assert fitted.cvae_results["latent_map"].axes_manager.signal_shape == (3, 3)
    np.testing.assert_allclose(full.data, rec.data, rtol=0.05, atol=0.5)  # two blends of one model
    lazy = fitted.as_lazy()
    rec_l = lazy.cvae_decomposition(cvae=fitted.cvae, chunk=16)
    assert rec_l._lazy
    rec_l.compute()
    np.testing.assert_allclose(rec_l.data, rec.data, rtol=1e-4, atol=1e-3)
    # Reconstruction conserves each spectrum's counts (softmax × total).
    crop = fitted.isig[680.0:740.0].data
    np.testing.assert_allclose(rec.data.sum(-1), crop.sum(-1), rtol=1e-4)


@pytest.mark.slow
def test_checkpoint_roundtrip(fitted, tmp_path):
    path = fitted.cvae.save(tmp_path / "m.pt")
    loaded = CVAE.load(path)
    assert loaded.checksum() == fitted.cvae.checksum()
    a = fitted.cvae_decomposition(show_progressbar=False)
    b = fitted.cvae_decomposition(cvae=loaded, show_progressbar=False)
    np.testing.assert_array_equal(a.data, b.data)
    assert loaded.signal_range_ == fitted.cvae.signal_range_


def test_corrupt_and_foreign_checkpoints(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="not a valid"):
        CVAE.load(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ValueError, match="not a hyperspy-cvae checkpoint"):
        CVAE.load(foreign)

    class Evil:
        def __reduce__(self):
            return (exec, ("raise SystemExit('executed')",))

    evil = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, evil)
    with pytest.raises(ValueError, match="weights_only"):
        CVAE.load(evil)


@pytest.mark.slow
def test_incompatible_energy_axis(fitted):
    other = fitted.deepcopy()
    other.axes_manager[-1].scale = 0.25
    with pytest.raises(ValueError, match="eV/channel"):
        other.cvae_decomposition(cvae=fitted.cvae)
    shifted = fitted.deepcopy()
    shifted.axes_manager[-1].offset += 0.1
    with pytest.raises(ValueError, match="not aligned"):
        shifted.cvae_decomposition(cvae=fitted.cvae)
    cropped = fitted.isig[700.0:]
    with pytest.raises(ValueError, match="trained on"):
        cropped.cvae_decomposition(cvae=fitted.cvae)


def test_map_smaller_than_shard(small_cube):
    tiny = small_cube.inav[:10, :10]
    with pytest.raises(ValueError, match="shard_size"):
        tiny.fit_cvae(**FIT)


def test_cuda_requested_without_cuda(small_cube):
    if torch.cuda.is_available():
        pytest.skip("CUDA available: covered by test_cuda_path")
    with pytest.raises(ValueError, match="CUDA is not available"):
        small_cube.fit_cvae(**dict(FIT, device="cuda"))


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_path(small_cube):
    cvae = small_cube.deepcopy().fit_cvae(**dict(FIT, device="cuda"))
    assert next(cvae.model_.parameters()).is_cuda


@pytest.mark.slow
def test_end_to_end_detects_injected_shift(small_cube):
    bad, truth = small_cube.inject_shift(4.0, n_clusters=3, cluster_size=5, random_state=3,
                                         return_mask=True)
    score, mask = bad.anomaly_map("cvae", signal_range=(660.0, 760.0), shard_size=16,
                                  latent_dim=16, epochs=12, batch_size=4, random_state=0)
    assert score.metadata.CVAE.score.kind == "shift"  # the default score: high = anomalous
    m = detection_metrics(mask, truth, score)
    assert m["roc_auc"] > 0.9, m
    assert score.metadata.CVAE.method == "CVAE"
    sim, pos = latent_pair_similarity(bad.cvae, small_cube, bad, n_pairs=8)
    assert sim.shape == (8, 8) and pos.shape == (8, 2)
    # the shards are drawn where the injected anomalies are (truth read from the metadata)
    assert all(truth.data[y:y + 16, x:x + 16].any() for y, x in pos)
    # a shard against itself: cosine similarity 1 on the diagonal, symmetric, same positions
    own, own_pos = latent_pair_similarity(bad.cvae, bad, bad, n_pairs=8)
    np.testing.assert_array_equal(own_pos, pos)
    np.testing.assert_allclose(np.diag(own), 1.0, rtol=0, atol=1e-6)
    np.testing.assert_allclose(own, own.T, rtol=0, atol=1e-6)


def test_shards_per_epoch_draws_random_positions_inside_the_training_rows():
    est = CVAE(shards_per_epoch=37, shard_size=24)
    from hyperspy_cvae.cvae.sampling import sample_positions

    pos = sample_positions(est, np.random.default_rng(0), (0, 40), 48)
    assert pos.shape == (37, 2)
    assert pos[:, 0].min() >= 0 and pos[:, 0].max() <= 40 - 24
    assert pos[:, 1].max() <= 48 - 24
    assert "shards_per_epoch" in est.get_params()
