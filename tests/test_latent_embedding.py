"""The latent view: 2D embedding of the shards' latent means, its figure and the signal method."""

import sys
import types

import matplotlib

matplotlib.use("Agg")

import hyperspy.api as hs  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from hyperspy_cvae.latent import LatentEmbedding, latent_embedding, shard_flags  # noqa: E402
from hyperspy_cvae.plotting import plot_latent_embedding  # noqa: E402
from conftest import FIT_TINY  # noqa: E402


def fake_latent_map(shape=(8, 5, 6), seed=0, shard_size=4, stride=2):
    """A latent-map stack (latent_dim, gy, gx) with the shard grid in its metadata."""
    lm = hs.signals.Signal2D(np.random.default_rng(seed).normal(size=shape))
    lm.metadata.set_item("CVAE.latent", {"shard_size": shard_size, "stride": stride})
    return lm


def fake_signal(ny=12, nx=14, size=20):
    s = hs.signals.Signal1D(np.random.default_rng(1).poisson(50, (ny, nx, size)).astype(float))
    s.axes_manager.signal_axes[0].name = "Energy loss"
    return s


# ---------------------------------------------------------------- embedding
def test_pca_embedding_shape_positions_and_variance():
    lm = fake_latent_map()
    emb = latent_embedding(lm)
    assert isinstance(emb, LatentEmbedding) and emb.method == "pca"
    assert emb.coords.shape == (30, 2) and emb.positions.shape == (30, 2)
    assert emb.grid_shape == (5, 6) and (emb.shard_size, emb.stride) == (4, 2)
    # positions follow the grid in row-major order
    assert emb.positions[0].tolist() == [0, 0] and emb.positions[7].tolist() == [1, 1]
    assert emb.positions[-1].tolist() == [4, 5]
    evr = emb.explained_variance_ratio
    assert evr.shape == (2,) and evr[0] >= evr[1] > 0 and evr.sum() <= 1
    # the coordinates are the first two PCs of the standardised latents (sklearn agrees up to sign)
    from sklearn.decomposition import PCA

    Z = lm.data.reshape(8, -1).T
    Z = (Z - Z.mean(0)) / Z.std(0)
    pca = PCA(2).fit(Z)
    np.testing.assert_allclose(evr, pca.explained_variance_ratio_, rtol=1e-8)
    ref = pca.transform(Z)
    np.testing.assert_allclose(np.abs(emb.coords), np.abs(ref), atol=1e-8)


def test_pca_embedding_separates_two_groups_and_is_reproducible():
    lat = np.random.default_rng(3).normal(0, 0.1, (6, 4, 5))
    lat[:, :2] += 2.0                              # top two shard rows: another phase
    emb = latent_embedding(lat)
    top = emb.positions[:, 0] < 2
    assert np.ptp(np.sign(emb.coords[top, 0])) == 0 and np.ptp(np.sign(emb.coords[~top, 0])) == 0
    assert np.sign(emb.coords[top, 0][0]) != np.sign(emb.coords[~top, 0][0])
    again = latent_embedding(lat, random_state=7)
    np.testing.assert_array_equal(emb.coords, again.coords)
    assert emb.shard_size is None and emb.stride is None      # a bare array has no metadata


def test_embedding_rejects_bad_input():
    lat = np.random.default_rng(0).normal(size=(4, 3, 3))
    lat[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match="1 of 9 shards have NaN"):
        latent_embedding(lat)
    with pytest.raises(ValueError, match="at least 3 shards"):
        latent_embedding(np.zeros((4, 1, 2)))
    with pytest.raises(ValueError, match="`method` must be one of"):
        latent_embedding(fake_latent_map(), method="tsne")
    with pytest.raises(ValueError, match="latent_dim, gy, gx"):
        latent_embedding(np.zeros((4, 5)))


def test_umap_missing_raises_and_auto_falls_back(monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)
    with pytest.raises(ImportError, match="pip install umap-learn"):
        latent_embedding(fake_latent_map(), method="umap")
    emb = latent_embedding(fake_latent_map(), method="auto")
    assert emb.method == "pca" and emb.explained_variance_ratio is not None


def test_umap_is_called_with_the_seed(monkeypatch):
    seen = {}

    class FakeUMAP:
        def __init__(self, **kwargs):
            seen.update(kwargs)

        def fit_transform(self, Z):
            return Z[:, :2] * 0.5

    monkeypatch.setitem(sys.modules, "umap", types.SimpleNamespace(UMAP=FakeUMAP))
    emb = latent_embedding(fake_latent_map(), method="auto", random_state=3, n_neighbors=50)
    assert emb.method == "umap" and emb.explained_variance_ratio is None
    assert emb.coords.shape == (30, 2)
    assert seen == {"n_components": 2, "n_neighbors": 29, "random_state": 3}


def test_shard_flags_marks_shards_covering_a_pixel():
    m = np.zeros((12, 14), bool)
    m[5, 0] = True                      # rows 5 lie in shards 1 (2–5) and 2 (4–7); col 0 in shard 0
    flags = shard_flags(m, 4, 2, (5, 6))
    assert flags.shape == (5, 6) and flags.sum() == 2 and flags[1, 0] and flags[2, 0]
    assert shard_flags(hs.signals.Signal2D(m), 4, 2, (5, 6)).sum() == 2
    assert shard_flags(np.eye(5, 6, dtype=bool), 4, 2, (5, 6)).sum() == 5   # shard grid as is
    with pytest.raises(ValueError, match="pixel grid"):
        shard_flags(np.zeros((6, 6), bool), 4, 2, (5, 6))


# ---------------------------------------------------------------- figure
def test_plot_two_panels_legends_labels_and_pick():
    emb = latent_embedding(fake_latent_map())
    labels = (np.arange(30).reshape(5, 6) % 3)
    flags = np.zeros((5, 6), bool)
    flags[0, :2] = True
    s = fake_signal()
    n_before = len(plt.get_fignums())
    fig = plot_latent_embedding(emb, colour_by=flags, labels=labels, signal=s)
    assert len(fig.axes) == 2
    assert fig.axes[0].get_xlabel().startswith("latent PC 1 (") and fig.axes[0].get_xlabel().endswith(" %)")
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "phase 0 (10)", "phase 1 (10)", "phase 2 (10)"]
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == ["flagged (2)", "not flagged (28)"]
    assert len(plt.get_fignums()) == n_before + 1

    # a click on point 7 = shard (1, 1): pixels 2..5 in y and x
    fig.canvas.callbacks.process("pick_event", types.SimpleNamespace(ind=[7]))
    assert "CVAE shard spectra" in plt.get_figlabels()
    spec_fig = plt.figure("CVAE shard spectra")
    lines = spec_fig.axes[0].get_lines()
    assert len(lines) == 16 + 1
    np.testing.assert_allclose(lines[-1].get_ydata(), s.data[2:6, 2:6].reshape(16, -1).mean(0))
    assert "Shard (1, 1)" in spec_fig.axes[0].get_title()
    # a second click updates the same figure
    fig.canvas.callbacks.process("pick_event", types.SimpleNamespace(ind=[0]))
    assert plt.get_figlabels().count("CVAE shard spectra") == 1
    assert "Shard (0, 0)" in plt.figure("CVAE shard spectra").axes[0].get_title()


def test_plot_single_panels_and_path(tmp_path):
    emb = latent_embedding(fake_latent_map())
    assert len(plot_latent_embedding(emb).axes) == 1
    fig = plot_latent_embedding(emb, colour_by=np.arange(30.).reshape(5, 6), path=tmp_path / "view.png")
    assert len(fig.axes) == 2                                   # the panel and its colour bar
    assert (tmp_path / "view.png").stat().st_size > 0
    umap_like = LatentEmbedding(emb.coords, emb.positions, "umap", None, emb.grid_shape)
    assert plot_latent_embedding(umap_like).axes[0].get_xlabel() == "UMAP 1"
    with pytest.raises(ValueError, match="shard grid"):
        plot_latent_embedding(emb, labels=np.zeros((12, 14), int))
    with pytest.raises(ValueError, match="needs `shard_size` and `stride`"):
        plot_latent_embedding(umap_like, signal=fake_signal())


# ---------------------------------------------------------------- signal method
@pytest.mark.slow
def test_signal_method_end_to_end(small_cube):
    s = small_cube.deepcopy()
    s.fit_cvae(**FIT_TINY)
    mask = np.zeros((48, 48), bool)
    mask[20:24, 30:34] = True
    fig, emb = s.plot_latent_embedding(mask=mask, n_phases=2, show_progressbar=False)
    assert emb.coords.shape == (25, 2) and emb.grid_shape == (5, 5)
    assert (emb.shard_size, emb.stride) == (16, 8)
    assert len(fig.axes) == 2
    legend = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    # 16-pixel shards, stride 8: rows 20–23 lie in shard rows 1, 2; cols 30–33 in shard cols 2, 3, 4
    assert legend == ["flagged (6)", "not flagged (19)"]
    fig.canvas.callbacks.process("pick_event", types.SimpleNamespace(ind=[24]))
    assert "CVAE shard spectra" in plt.get_figlabels()
    with pytest.raises(ValueError, match="navigation shape"):
        s.plot_latent_embedding(mask=np.zeros((10, 10), bool))
