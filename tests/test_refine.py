"""The per-pixel refit of a reconstruction: background and edge intensities and a small drift."""

import numpy as np
import pytest

from hyperspy_cvae import denoising_mse
from hyperspy_cvae.refine import COEFFICIENTS, refine_reconstruction, refine_spectra
from hyperspy_cvae.synthetic import bifeo3_si
from hyperspy_cvae.synthetic.data import Scene

WINDOW = (690.0, 730.0)


def _cube(shape=(32, 32), seed=0, **kw):
    return bifeo3_si(shape, random_state=seed, return_expected=True, **kw)


def _mean_reconstruction(s, lo=660.0, hi=760.0):
    """The map's mean spectrum at every pixel: a reconstruction with none of the pixels' detail."""
    d = s.isig[lo:hi]
    mean = np.asarray(d.data, float).mean((0, 1))
    return d._deepcopy_with_new_data(np.broadcast_to(mean, d.data.shape).astype(np.float32))


def test_refit_recovers_intensities_and_drift_of_each_spectrum():
    e = np.arange(660.0, 760.0, 0.3)

    def spectrum(bg, edge, drift):
        x = e - drift
        return bg * 1e3 * (x / 660) ** -3 + edge * 400 / (1 + ((x - 708) / 0.8) ** 2)

    truths = [(1.0, 1.0, 0.0), (0.7, 1.3, -0.15), (1.4, 0.5, 0.2)]
    y = np.stack([spectrum(*t) for t in truths])
    mu = np.tile(spectrum(1.0, 1.0, 0.0), (3, 1))
    refined, coef = refine_spectra(e, y, mu, 707.0)
    np.testing.assert_allclose(coef[:, :2], np.array(truths)[:, :2], atol=0.03)   # first order in the drift
    np.testing.assert_allclose(coef[:, 2], np.array(truths)[:, 2], atol=0.02)   # the drift's sign and size
    assert np.abs(refined - y).max() < 0.1 * np.abs(mu - y).max()


def test_refit_denoises_a_rough_reconstruction_and_finds_each_pixels_drift():
    s, truth = _cube()
    rough = _mean_reconstruction(s)
    refined, maps = refine_reconstruction(s, rough, edge="Fe_L2,3")
    before, after = denoising_mse(rough, truth, WINDOW), denoising_mse(refined, truth, WINDOW)
    assert after < before / 5
    assert sorted(maps) == sorted(COEFFICIENTS)
    scene = Scene(s.metadata.CVAE.synthetic.as_dictionary(), np.random.default_rng(0))
    assert np.corrcoef(maps["drift"].data.ravel(), scene.drift.ravel())[0, 1] > 0.7
    md = refined.metadata.CVAE.refinement
    assert 704 < md.onset_eV < 709 and "Fe_L2,3" in md.onset_source
    assert maps["drift"].metadata.CVAE.refinement.units == "eV"


def test_refit_does_not_touch_its_inputs_and_lazy_equals_eager():
    s, _ = _cube((24, 24))
    rough = _mean_reconstruction(s)
    before = (s.data.copy(), rough.data.copy(), s.metadata.as_dictionary())
    refined, maps = refine_reconstruction(s, rough)
    assert np.array_equal(s.data, before[0]) and np.array_equal(rough.data, before[1])
    assert s.metadata.as_dictionary() == before[2]
    lazy, lazy_maps = refine_reconstruction(s.as_lazy(), rough.as_lazy())
    assert lazy._lazy and lazy_maps["edge"]._lazy
    np.testing.assert_array_equal(np.asarray(lazy.data.compute()), refined.data)
    np.testing.assert_array_equal(np.asarray(lazy_maps["drift"].data.compute()), maps["drift"].data)


def test_lazy_blocks_that_cut_the_energy_axis_and_an_eager_reconstruction():
    s, _ = _cube((24, 24))
    rough = _mean_reconstruction(s)
    refined, maps = refine_reconstruction(s, rough)
    lazy = s.as_lazy()
    lazy.data = lazy.data.rechunk((12, 12, 100))                 # energy in 12 blocks
    out, lazy_maps = refine_reconstruction(lazy, rough)          # the reconstruction in memory
    assert out._lazy
    np.testing.assert_array_equal(np.asarray(out.data.compute()), refined.data)
    np.testing.assert_array_equal(np.asarray(lazy_maps["drift_sigma"].data.compute()), maps["drift_sigma"].data)


def test_drift_uncertainty_is_calibrated():
    s, _ = _cube((32, 32))
    _, maps = refine_reconstruction(s, _mean_reconstruction(s), edge="Fe_L2,3")
    true = Scene(s.metadata.CVAE.synthetic.as_dictionary(), np.random.default_rng(0)).drift
    z = (maps["drift"].data - true) / maps["drift_sigma"].data
    assert 0.8 < np.nanstd(z) < 1.25 and abs(np.nanmean(z)) < 0.25


def test_refit_weights_follow_the_noise_model():
    """Data with a detector gain: the same refit as the counts, in the data's units."""
    s, _ = _cube((24, 24))
    rough = _mean_reconstruction(s)
    gained = s._deepcopy_with_new_data(s.data * np.float32(5.0))
    gained.metadata.set_item("Signal.Noise_properties.Variance_linear_model",
                             {"gain_factor": 5.0, "gain_offset": 0.0, "correlation_factor": 1.0})
    rough5 = rough._deepcopy_with_new_data(rough.data * np.float32(5.0))
    r1, m1 = refine_reconstruction(s, rough, noise="counts")
    r5, m5 = refine_reconstruction(gained, rough5)
    assert r5.metadata.CVAE.refinement.noise.gain_factor == 5.0
    np.testing.assert_allclose(r5.data, 5.0 * r1.data, rtol=1e-5)
    np.testing.assert_allclose(m5["edge"].data, m1["edge"].data, rtol=1e-5)


def _shifted_axis(signal, channels):
    """``signal`` with its energy offset moved by a fraction of a channel (another calibration)."""
    out = signal.deepcopy()
    ax = out.axes_manager[-1]
    ax.offset = ax.offset + channels * ax.scale
    return out


@pytest.mark.parametrize("bad, match", [
    (lambda s, r: refine_reconstruction(s, r.inav[:10, :10]), "not of this signal's grid"),
    (lambda s, r: refine_reconstruction(s, r, onset=r.axes_manager[-1].axis[1]), "pre-edge"),
    (lambda s, r: refine_reconstruction(s, r, edge="O_K"), "outside the reconstruction's range"),
    (lambda s, r: refine_reconstruction(s, r, edge=3), "edge"),
    (lambda s, r: refine_reconstruction(s, _shifted_axis(r, 0.1)), "of a channel off"),
    (lambda s, r: s.cvae_decomposition(refine=1), "refine"),
])
def test_refit_refuses_bad_input(bad, match):
    s, _ = _cube((24, 24))
    with pytest.raises(ValueError, match=match):
        bad(s, _mean_reconstruction(s))


@pytest.mark.slow
def test_cvae_decomposition_refine_keeps_the_maps_and_denoises():
    s, truth = _cube((48, 48))
    s.fit_cvae(signal_range=(660.0, 760.0), max_steps=150, random_state=0, show_progressbar=False)
    rec = s.cvae_decomposition()
    refined = s.cvae_decomposition(refine=True)
    assert "refinement" in s.cvae_results and s.cvae_results["refinement"]["edge"].data.shape == (48, 48)
    assert refined.metadata.CVAE.reconstruction.method == "CVAE"          # its provenance kept
    assert denoising_mse(refined, truth, WINDOW) < denoising_mse(rec, truth, WINDOW) / 2


@pytest.mark.slow
def test_denoising_benchmark_quick_run_committed_summary_and_readme(tmp_path):
    import csv
    import pathlib

    from conftest import benchmark_module

    db = benchmark_module("denoising")
    db.main(["--quick", "--out", str(tmp_path)])
    rows = list(csv.DictReader(open(tmp_path / "denoising.csv")))
    assert {r["method"] for r in rows} == set(db.METHODS)
    got = {r["method"]: float(r["mse_bulk"]) for r in rows}
    assert got["cvae_refined"] < got["cvae"] < got["raw"]
    # the committed summary and README block are what write() renders from the committed rows
    root = pathlib.Path(__file__).resolve().parent.parent
    committed = root / "benchmarks" / "results" / "denoising"
    synthetic = list(csv.DictReader(open(committed / "denoising.csv")))
    measured = list(csv.DictReader(open(committed / "measured.csv")))
    db.write(tmp_path / "again", synthetic, measured)
    for name in ("summary.md", "readme_block.md"):
        assert (tmp_path / "again" / name).read_text() == (committed / name).read_text(), name
    readme = (root / "README.md").read_text()
    block = readme.split("<!-- denoising:start -->", 1)[1].split("<!-- denoising:end -->", 1)[0]
    assert block.strip() == (committed / "readme_block.md").read_text().strip()


def test_no_drift_where_there_is_no_edge():
    s, _ = _cube((32, 32), substrate_fraction=0.3)
    _, maps = refine_reconstruction(s, _mean_reconstruction(s), edge="Fe_L2,3")
    drift = maps["drift"].data
    substrate = Scene(s.metadata.CVAE.synthetic.as_dictionary(), np.random.default_rng(0)).substrate
    assert np.isnan(drift[substrate]).mean() > 0.9 and np.isfinite(drift[~substrate]).mean() > 0.99
    assert np.nanmax(np.abs(drift[~substrate])) < 0.5


def test_readme_prose_on_denoising_matches_the_committed_rows():
    """What the README says in words about `benchmarks/results/denoising/`."""
    import csv
    import pathlib

    out = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "denoising"
    syn = list(csv.DictReader(open(out / "denoising.csv")))
    mea = {(r["map"], r["method"]): float(r["heldout_error"]) for r in csv.DictReader(open(out / "measured.csv"))
           if r["heldout_error"]}

    def mean(case, method):
        return np.mean([float(r["mse_bulk"]) for r in syn if r["case"] == case and r["method"] == method])

    for case in {r["case"] for r in syn}:          # "the map's mean spectrum refitted does as well or better"
        assert mean(case, "mean_refined") <= mean(case, "cvae_refined") + 0.01, case
        assert mean(case, "cvae_refined") < mean(case, "cvae"), case
    for m in ("GeSolarCell_AlL_SiL_PL_SI_22x45_70-172eV.dm3", "SI_16x16_28-540eV.dm3"):   # layers, materials
        assert mea[(m, "cvae_refined")] < mea[(m, "mean_refined")], m
    for m in {k[0] for k in mea}:                      # "PCA(3) stays the cleanest on all five"
        assert mea[(m, "pca3")] < min(mea[(m, k)] for k in ("cvae", "cvae_refined", "mean_refined")), m
    assert len({k[0] for k in mea}) == 5
    cuzn = "CuZn_EELS_SI_40x50_700-1988eV.hspy"          # "on the Cu/ZnO map the refit does not help"
    assert mea[(cuzn, "cvae_refined")] >= mea[(cuzn, "cvae")] - 0.005
    wedge = [float(r["ripple"]) for r in syn if r["case"].startswith("thick wedge") and r["method"] != "pca3"
             and r["method"] in ("cvae", "cvae_refined")]
    assert min(wedge) > 5                               # "a 4-channel ripple that the refit keeps"
