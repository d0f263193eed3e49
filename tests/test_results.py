"""Issue 6: plots, latent-space scores, phase maps, denoising error, persistence and re-use."""

import matplotlib

matplotlib.use("Agg")

import hyperspy.api as hs  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import hyperspy_cvae  # noqa: E402
from hyperspy_cvae import CVAE  # noqa: E402
from hyperspy_cvae.synthetic import bifeo3_si  # noqa: E402
from hyperspy_cvae.evaluation import denoising_mse  # noqa: E402
from hyperspy_cvae.latent import (cluster_latents, decode_latent, latent_mahalanobis,  # noqa: E402
                                  latent_phase_map, mahalanobis_distances, shard_to_pixels)
from hyperspy_cvae.plotting import (example_pixels, outline_mask, plot_latent_maps,  # noqa: E402
                                    plot_phase_map, plot_score_map)
from hyperspy_cvae.evaluation import detection_metrics  # noqa: E402
from hyperspy_cvae.scores import threshold_anomalies  # noqa: E402
from conftest import FIT_SMALL, WINDOW  # noqa: E402


@pytest.fixture(scope="module")
def run(small_cube):
    """A fitted model and its CVAE results on a cube with injected shifts."""
    bad, truth = small_cube.inject_shift(4.0, WINDOW, n_clusters=2, random_state=1, return_mask=True)
    bad.fit_cvae(**FIT_SMALL)
    rec = bad.cvae_decomposition(show_progressbar=False)
    pcc, mask = bad.anomaly_map("cvae", window=WINDOW, score="pcc", show_progressbar=False)
    return {"s": bad, "truth": truth, "rec": rec, "pcc": pcc, "mask": mask,
            "latent_map": bad.cvae_results["latent_map"]}


# ---------------------------------------------------------------- latent maths
def test_shard_to_pixels_places_values_at_shard_centres():
    v = 3.0 * np.arange(4)[:, None] + 2.0 * np.arange(5)[None, :] + 1.0
    out = shard_to_pixels(v, shard_size=8, stride=4, shape=(20, 24))
    assert out.shape == (20, 24)
    # the centre of shard (i, j) is pixel i*4 + 3.5, halfway between two pixels
    assert out[7:9, 7:9].mean() == pytest.approx(v[1, 1])
    assert out[11:13, 7:9].mean() == pytest.approx(v[2, 1])
    assert out[0, 0] == v[0, 0] and out[-1, -1] == v[-1, -1]    # nearest beyond the outer centres
    lab = shard_to_pixels(v.astype(int), 8, 4, (20, 24), order=0)
    assert lab.dtype.kind == "i" and set(np.unique(lab)) <= set(v.astype(int).ravel())


def test_mahalanobis_robust_to_outliers_and_reference():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(300, 6))
    Z[:15] += 5.0
    d = mahalanobis_distances(Z)
    assert d[:15].min() > np.percentile(d[15:], 99)
    ref = np.zeros(300, bool)
    ref[100:] = True
    d2 = mahalanobis_distances(Z, ref, robust=False)
    assert d2[:15].min() > d2[100:].max() * 0.8
    with pytest.raises(ValueError, match="at least 3"):
        mahalanobis_distances(Z, np.zeros(300, bool))


def test_cluster_latents_silhouette_choice():
    rng = np.random.default_rng(1)
    Z = np.r_[rng.normal(0, 0.2, (60, 4)), rng.normal(4, 0.2, (30, 4)), rng.normal(-4, 0.2, (20, 4))]
    labels, centres, sil = cluster_latents(Z)
    assert len(centres) == 3 and np.bincount(labels).tolist() == [60, 30, 20]
    assert max(sil, key=sil.get) == 3
    labels, _, _ = cluster_latents(Z, method="gmm", n_clusters=3)
    assert np.bincount(labels).tolist() == [60, 30, 20]
    # no structure: one cluster
    labels, centres, _ = cluster_latents(rng.normal(size=(80, 4)))
    assert len(centres) == 1
    with pytest.raises(ValueError, match="kmeans"):
        cluster_latents(Z, method="dbscan")


@pytest.mark.slow
def test_latent_mahalanobis_map(run):
    lm = run["latent_map"]
    score = latent_mahalanobis(lm)
    s = run["s"]
    assert score.data.shape == (48, 48) and np.isfinite(score.data).all()
    for a, b in zip(score.axes_manager.signal_axes, s.axes_manager.navigation_axes):
        assert (a.name, a.units, a.size) == (b.name, b.units, b.size)
        assert a.scale == pytest.approx(b.scale) and a.offset == pytest.approx(b.offset)
    assert score.metadata.CVAE.score.kind == "latent_mahalanobis"
    assert score.metadata.CVAE.score.anomalous == "high"
    mask = threshold_anomalies(score)
    assert mask.data.dtype == bool
    shards = latent_mahalanobis(lm, on="shards")
    assert shards.data.shape == lm.data.shape[1:]
    # bulk given on the pixel grid or on the shard grid
    bulk = ~run["truth"].data
    assert latent_mahalanobis(lm, bulk_mask=bulk).data.shape == (48, 48)
    with pytest.raises(ValueError, match="pixel grid"):
        latent_mahalanobis(lm, bulk_mask=np.ones((7, 7), bool))
    # signal wrapper reuses the stored latent map (same model and stride)
    via_signal = s.latent_mahalanobis(stride=lm.metadata.CVAE.latent.stride)
    np.testing.assert_allclose(via_signal.data, score.data)


@pytest.mark.slow
def test_phase_map_finds_substrate():
    s = bifeo3_si((48, 48), offset=640.0, size=400, substrate_fraction=0.4, random_state=0)
    s.fit_cvae(**dict(FIT_SMALL, signal_range=(660.0, 760.0)))
    labels, centres = s.cvae_phase_map(n_clusters=2, stride=8, show_progressbar=False)
    sub = np.zeros((48, 48), bool)
    sub[48 - 19:] = True
    agree = max(np.mean((labels.data == 1) == sub), np.mean((labels.data == 0) == sub))
    assert agree > 0.85
    assert centres.axes_manager.navigation_shape == (2,)
    assert centres.axes_manager.signal_axes[0].offset == pytest.approx(s.cvae.energy_axis_["offset"])
    md = labels.metadata.CVAE.phase_map
    assert md.n_clusters == 2 and md.centres.shape == (2, 16)
    from hyperspy_cvae.latent import phase_means

    means = phase_means(s, labels, like=centres)
    assert means.data.shape == (2, centres.data.shape[-1])
    sub = labels.data == 1
    np.testing.assert_allclose(means.data[1], s.isig[660.0:760.0].data[sub].mean(0)[:means.data.shape[1]], rtol=1e-5)
    fig = plot_phase_map(labels, centres, means=means)
    assert len(fig.axes) == 2 and len(fig.axes[1].lines) == 4
    auto, _ = latent_phase_map(s.cvae_results["latent_map"], k_range=(2, 4))
    assert auto.metadata.CVAE.phase_map.silhouette_k == [2, 3, 4]


@pytest.mark.slow
def test_decode_latent_shapes_and_checks(run):
    cvae = run["s"].cvae
    spec = decode_latent(cvae, np.zeros((3, cvae.latent_dim)), counts=100.0)
    assert spec.data.shape == (3, cvae.n_channels_)
    np.testing.assert_allclose(spec.data.sum(-1), 100.0, rtol=1e-6)
    with pytest.raises(ValueError, match="latent space"):
        decode_latent(cvae, np.zeros((1, 3)))


# ------------------------------------------------------------------- denoising
def test_denoising_mse_against_truth():
    s, truth = bifeo3_si((24, 24), offset=640.0, size=400, random_state=0, return_expected=True)
    assert denoising_mse(truth, truth) == 0.0
    raw = denoising_mse(s, truth, WINDOW)
    assert raw == pytest.approx(np.mean(truth.isig[690.0:730.0].data), rel=0.1)  # Poisson: var = mean
    pca = hyperspy_cvae.baselines.pca_reconstruction(s, 3)
    assert denoising_mse(pca, truth, WINDOW) < raw / 5
    # a cropped reconstruction is compared on its own channels
    crop = s.isig[680.0:740.0]
    assert denoising_mse(crop, truth, WINDOW) == pytest.approx(raw)
    m = denoising_mse(pca, truth, WINDOW, per_pixel=True)
    assert m.data.shape == (24, 24) and m.metadata.CVAE.denoising.mse == pytest.approx(m.data.mean())
    with pytest.raises(ValueError, match="energy axis"):
        denoising_mse(s.isig[::2], truth)


# ------------------------------------------------------------------------ plots
@pytest.mark.slow
def test_plot_anomaly_results_and_outlines(run, tmp_path):
    s, pcc, mask, truth = run["s"], run["pcc"], run["mask"], run["truth"]
    fig = s.plot_anomaly_results(pcc, truth, reconstruction=run["rec"], mask=mask, path=tmp_path / "a.png")
    assert (tmp_path / "a.png").stat().st_size > 10_000
    ax_map, ax_hist = fig.axes[0], fig.axes[1]
    ax_spec = next(a for a in fig.axes if a.get_xlabel().startswith("Energy"))
    assert ax_hist.get_yscale() == "log"
    assert "Otsu" in ax_hist.get_title()
    assert ax_map.collections  # outlines
    labels = [t.get_text() for t in ax_map.get_legend().get_texts()]
    assert any(t.startswith(("detected", "missed")) for t in labels)
    assert len(ax_spec.lines) == 4
    # the result of anomaly_map keeps its reconstruction: nothing is rebuilt
    result = s.anomaly_map("pca", window=WINDOW, n_components=3)
    fig = s.plot_anomaly_results(result, truth)
    assert any("PCA(3)" in a.get_title() for a in fig.axes)
    # a bare score map does not say what it was scored against
    with pytest.raises(ValueError, match="reconstruction"):
        s.plot_anomaly_results(result.score)
    # the mask of anomaly_map passed where the truth goes is refused, not drawn as the truth
    with pytest.raises(TypeError, match="truth"):
        s.plot_anomaly_results(result, result.mask)


def test_outline_is_pixel_exact():
    fig, ax = plt.subplots()
    m = np.zeros((5, 5), bool)
    m[1:3, 1:4] = True
    lc = outline_mask(ax, m, [-0.5, 4.5, 4.5, -0.5])
    assert len(lc.get_segments()) == 2 * (2 + 3)  # perimeter of a 2 × 3 block in unit edges
    assert outline_mask(ax, np.zeros((3, 3), bool), [0, 3, 3, 0]) is None


def test_example_pixels_prefers_truth_then_mask():
    v = np.full((6, 6), 0.9)
    v[0, 0], v[5, 5] = 0.1, 0.5
    t = np.zeros((6, 6), bool)
    t[5, 5] = True
    assert example_pixels(v, truth=t)[1:] == ((5, 5), "anomalous (truth)")
    assert example_pixels(v, mask=t)[1:] == ((5, 5), "flagged")
    assert example_pixels(v)[1:] == ((0, 0), "lowest score")


@pytest.mark.slow
def test_plot_comparison_rows_and_results(run, tmp_path):
    s = run["s"]
    fig, res = s.plot_comparison(methods=("cvae", ("pca", 4)), window=WINDOW, path=tmp_path / "c.png")
    assert list(res) == ["CVAE", "PCA(4)"]
    pcc_c, mask_c = res["CVAE"]
    np.testing.assert_allclose(pcc_c.data, run["pcc"].data)      # same as anomaly_map
    np.testing.assert_array_equal(mask_c.data, run["mask"].data)
    assert res["CVAE"].reconstruction.metadata.CVAE.reconstruction.method == "CVAE"
    assert "detected" in fig._suptitle.get_text()                  # truth read from the injection
    assert (tmp_path / "c.png").stat().st_size > 20_000
    fig2 = hyperspy_cvae.plot_comparison(res)                       # draws only: same rows again
    assert len(fig2.axes) == len(fig.axes)
    with pytest.raises(ValueError, match="methods"):
        s.compare_methods(methods=("ica",))
    from hyperspy_cvae.workflow import parse_method

    assert [parse_method(m, 3) for m in ("CVAE", "pca", "PCA(5)", "pca 2", ("pca", 6))] == [
        ("cvae", 3), ("pca", 3), ("pca", 5), ("pca", 2), ("pca", 6)]


@pytest.mark.slow
def test_latent_maps_plot_and_browsable_stack(run):
    lm = run["latent_map"]
    assert lm.axes_manager.navigation_shape == (16,)
    fig = plot_latent_maps(lm, n=6)
    assert sum(1 for a in fig.axes if a.images) == 6
    lm.plot()  # HyperSpy browsing works under Agg


@pytest.mark.slow
def test_plot_reconstruction_overlays_and_follows_navigation(run):
    s, rec, pcc = run["s"], run["rec"], run["pcc"]
    shown = s.plot_reconstruction(rec, navigator=pcc)
    lines = shown._plot.signal_plot.ax_lines
    assert len(lines) == 2
    shown.axes_manager.indices = (5, 7)
    np.testing.assert_allclose(lines[1].line.get_ydata(), rec.data[7, 5], rtol=1e-6)
    shown._plot.close()


@pytest.mark.slow
def test_score_map_high_is_anomalous_colormap(run):
    score = latent_mahalanobis(run["latent_map"])
    ax = plot_score_map(score, threshold_anomalies(score), run["truth"])
    assert ax.images[0].get_cmap().name == "magma"


# ------------------------------------------------------------------ persistence
@pytest.mark.slow
@pytest.mark.parametrize("ext", ["hspy", "zspy"])
def test_results_round_trip(run, tmp_path, ext):
    s, pcc, mask, rec, lm = run["s"], run["pcc"], run["mask"], run["rec"], run["latent_map"]
    maha = latent_mahalanobis(lm)
    labels, _ = latent_phase_map(lm, n_clusters=2)
    for name, sig in (("pcc", pcc), ("mask", mask), ("rec", rec), ("latent", lm), ("maha", maha),
                      ("labels", labels)):
        sig.save(tmp_path / f"{name}.{ext}")
    p = hs.load(tmp_path / f"pcc.{ext}")
    assert p.axes_manager.signal_shape == (48, 48)
    np.testing.assert_array_equal(p.data, pcc.data)
    sc = p.metadata.CVAE.score
    assert sc.kind == "pcc" and list(sc.window) == [690.0, 730.0] and sc.method == "CVAE"
    assert sc.model_checksum == s.cvae.checksum()
    assert sc.package_version == hyperspy_cvae.__version__
    m = hs.load(tmp_path / f"mask.{ext}")
    assert m.data.dtype == bool
    np.testing.assert_array_equal(m.data, mask.data)
    assert m.metadata.CVAE.threshold.threshold == pytest.approx(mask.metadata.CVAE.threshold.threshold)
    assert m.metadata.CVAE.threshold.decision == mask.metadata.CVAE.threshold.decision
    r = hs.load(tmp_path / f"rec.{ext}")
    assert type(r).__name__ == "CVAEEELSSpectrum"                   # signal type round-trips
    np.testing.assert_allclose(r.data, rec.data)
    assert r.metadata.CVAE.reconstruction.model_checksum == s.cvae.checksum()
    assert r.axes_manager.signal_axes[0].offset == pytest.approx(rec.axes_manager.signal_axes[0].offset)
    lat = hs.load(tmp_path / f"latent.{ext}")
    np.testing.assert_allclose(lat.data, lm.data)
    assert lat.metadata.CVAE.latent.stride == lm.metadata.CVAE.latent.stride
    # the reloaded latent map still knows its pixel grid: scores can be recomputed from the file
    np.testing.assert_allclose(latent_mahalanobis(lat).data, maha.data)
    lab = hs.load(tmp_path / f"labels.{ext}")
    np.testing.assert_array_equal(lab.data, labels.data)
    np.testing.assert_allclose(lab.metadata.CVAE.phase_map.centres, labels.metadata.CVAE.phase_map.centres)


@pytest.mark.slow
def test_saved_model_reapplied_to_new_acquisition(run, tmp_path):
    s = run["s"]
    path = tmp_path / "model.pt"
    s.cvae.save(path)
    new = bifeo3_si((48, 48), offset=640.0, size=400, random_state=7)   # same material, new noise
    new_bad, truth2 = new.inject_shift(4.0, WINDOW, n_clusters=2, random_state=3, return_mask=True)
    cvae = new_bad.load_cvae(path)
    assert new_bad.cvae is cvae and cvae.checksum() == s.cvae.checksum()
    assert new_bad.metadata.CVAE.model.checkpoint == str(path)
    pcc, mask = new_bad.anomaly_map("cvae", window=WINDOW, score="pcc", show_progressbar=False)
    assert pcc.metadata.CVAE.score.checkpoint == str(path)
    assert pcc.metadata.CVAE.score.model_checksum == s.cvae.checksum()
    assert detection_metrics(mask, truth2, pcc)["roc_auc"] > 0.95
    # the same with an explicit estimator, and the energy axis is checked
    pcc2, _ = new_bad.anomaly_map("cvae", window=WINDOW, score="pcc", cvae=CVAE.load(path),
                                 show_progressbar=False)
    np.testing.assert_allclose(pcc2.data, pcc.data)
    other = bifeo3_si((48, 48), offset=640.0, scale=0.25, size=400, random_state=7)
    with pytest.raises(ValueError, match="eV/channel"):
        other.load_cvae(path)

