"""No silent wrong answer from the scoring side: uninformative spectra, bad thresholds and ramps,
masks that cannot be drawn, shared objects, the model's range, and lazy files that vanish."""

import glob
import os
import shutil

import hyperspy.api as hs
import numpy as np
import pytest

from conftest import WINDOW
from hyperspy_cvae.scores import SHIFT_FLAGS, estimate_shift, shift_analysis
from hyperspy_cvae.synthetic import bifeo3_si


@pytest.fixture(scope="module")
def pair():
    s, bulk = bifeo3_si((16, 16), random_state=0, return_expected=True)
    return s, bulk


def test_uninformative_spectra_give_nan_and_a_reason(pair):
    s, bulk = pair
    s = s.deepcopy()
    s.data[0, :3] = 0.0                              # dead pixels: no counts at all
    flat = bulk.deepcopy()
    flat.data[1, :2] = 100.0                         # a flat reconstruction: no edge to locate
    res = shift_analysis(s, flat, WINDOW, max_shift=10.0)
    flag = res["flag"].data
    assert (flag[0, :3] == 1).all() and (flag[1, :2] == 2).all()
    for key in ("shift", "sigma", "score"):
        assert np.isnan(res[key].data[0, :3]).all() and np.isnan(res[key].data[1, :2]).all()
    ok = flag == 0
    assert ok.sum() >= 16 * 16 - 5 - 2               # ordinary pixels keep their numbers
    assert np.isfinite(res["score"].data[ok]).all()
    # never a shift outside the searched range, with or without a flag
    shifts = res["shift"].data[np.isfinite(res["shift"].data)]
    assert np.abs(shifts).max() <= 10.0
    assert res["flag"].metadata.CVAE.score.codes["1"] == SHIFT_FLAGS[1]


def test_shift_beyond_the_search_range_is_flagged_not_clipped():
    e = np.arange(200.0)
    r = 10 + 200 * np.exp(-0.5 * ((e - 100) / 3) ** 2)
    y = 10 + 200 * np.exp(-0.5 * ((e[20:180] - 130) / 3) ** 2)   # 30 channels away, margin 20
    d, sig, g, flag = estimate_shift(y[None], r[None, 0:200], 20, return_flag=True)
    assert flag[0] == 3 and np.isnan(d[0]) and np.isnan(sig[0])
    assert g[0] > 100                                              # still strong evidence of a shift


def test_anomaly_map_counts_uninformative_pixels_and_never_flags_them(pair):
    s, _ = pair
    bad = s.inject_shift(4.0, WINDOW, n_clusters=1, cluster_size=4, random_state=1)
    bad.data[15, 15] = 0.0
    z, mask = bad.anomaly_map("pca", window=WINDOW, n_components=3)
    assert np.isnan(z.data[15, 15]) and not mask.data[15, 15]
    assert mask.metadata.CVAE.threshold.n_no_information == 1


@pytest.mark.parametrize("threshold", [float("nan"), float("inf"), True, "median", [0.5]])
def test_threshold_must_be_otsu_or_a_finite_number(pair, threshold):
    s, _ = pair
    with pytest.raises(ValueError, match="otsu"):
        s.anomaly_map("pca", window=WINDOW, n_components=3, threshold=threshold)


@pytest.mark.parametrize("ramp", [-5.0, float("nan")])
def test_inject_shift_ramp_must_be_a_width(pair, ramp):
    with pytest.raises(ValueError, match="ramp"):
        pair[0].inject_shift(1.0, WINDOW, ramp=ramp)


def test_truth_mask_is_a_copy_not_the_metadata_object(pair):
    bad, truth = pair[0].inject_shift(1.0, WINDOW, n_clusters=1, random_state=0, return_mask=True)
    truth.data[:] = False
    assert bad.metadata.CVAE.injection.mask.data.any()


def test_plot_results_refuses_masks_it_cannot_draw(pair):
    import matplotlib

    matplotlib.use("Agg")
    s, _ = pair
    res = s.anomaly_map("pca", window=WINDOW, n_components=3)
    with pytest.raises(ValueError, match="shape"):
        s.plot_anomaly_results(res, np.zeros((4, 4), bool))
    with pytest.raises(TypeError, match="mask"):
        s.plot_anomaly_results(res.score, reconstruction=res.reconstruction, mask=np.zeros((16, 16), bool))


@pytest.mark.slow
def test_window_outside_the_models_range_says_so():
    s = bifeo3_si((16, 16), random_state=0)
    s.fit_cvae(signal_range=(680.0, 740.0), shard_size=8, latent_dim=4, epochs=1, random_state=0,
               show_progressbar=False)
    with pytest.raises(ValueError, match="the model's energy range"):
        s.anomaly_map("cvae", window=(520.0, 560.0), show_progressbar=False)


def _saved_lazy(tmp_path, name="map.zspy"):
    path = str(tmp_path / name)
    s = bifeo3_si((16, 16), random_state=0).isig[680.0:740.0].as_lazy()
    s.rechunk(nav_chunks=(8, 8))
    s.save(path)
    lazy = hs.load(path, lazy=True)
    lazy.set_signal_type("CVAE_EELS")
    return path, lazy


def test_lazy_store_deleted_is_an_error_not_zeros(tmp_path):
    path, lazy = _saved_lazy(tmp_path)
    shutil.rmtree(path)
    with pytest.raises(ValueError, match="no longer exists"):
        lazy.anomaly_map("pca", window=WINDOW, n_components=3)
    with pytest.raises(ValueError, match="no longer exists"):
        lazy.fit_cvae(shard_size=8, epochs=1, show_progressbar=False)


def test_lazy_store_with_missing_chunks_is_an_error(tmp_path):
    path, lazy = _saved_lazy(tmp_path)
    chunk = sorted(f for f in glob.glob(path + "/**", recursive=True)
                   if os.path.isfile(f) and os.path.basename(f)[0].isdigit())[0]
    os.remove(chunk)
    with pytest.raises(ValueError, match="lacks 1 of its 4 chunks"):
        lazy.anomaly_map("pca", window=WINDOW, n_components=3)


def test_lazy_store_overwritten_is_an_error(tmp_path):
    path, lazy = _saved_lazy(tmp_path)
    lazy.anomaly_map("pca", window=WINDOW, n_components=3)           # first read: fingerprint
    shutil.rmtree(path)
    other = bifeo3_si((16, 16), random_state=7).isig[680.0:740.0].as_lazy()
    other.rechunk(nav_chunks=(8, 8))
    other.save(path)                                                   # same shape and chunks
    with pytest.raises(ValueError, match="changed since it was first read"):
        lazy.anomaly_map("pca", window=WINDOW, n_components=3)


def test_lazy_hdf5_deleted_is_an_error(tmp_path):
    path = str(tmp_path / "map.hspy")
    bifeo3_si((16, 16), random_state=0).isig[680.0:740.0].save(path)
    lazy = hs.load(path, lazy=True)
    lazy.set_signal_type("CVAE_EELS")
    os.remove(path)
    with pytest.raises(ValueError, match="no longer exists"):
        lazy.anomaly_map("pca", window=WINDOW, n_components=3)


REALDATA = __import__("pathlib").Path(__file__).resolve().parents[2] / "shared" / "realdata"


@pytest.mark.skipif(not REALDATA.exists(), reason="measured data live in ../shared/realdata, absent here")
def test_shift_map_stays_within_max_shift_on_a_measured_map():
    """Ge solar-cell map (0.1 eV/channel stored as float32 0.09999999): no shift beyond ±max_shift,
    the pixels whose maximum lies at the search limit flagged instead."""
    s = hs.load(REALDATA / "si2d" / "GeSolarCell_AlL_SiL_PL_SI_22x45_70-172eV.dm3")
    s.set_signal_type("CVAE_EELS")
    rec = s.anomaly_map("pca", window=(95.0, 125.0), n_components=3).reconstruction
    for max_shift in (10.0, 3.0):
        res = shift_analysis(s, rec, (95.0, 125.0), max_shift=max_shift)
        shift, flag = res["shift"].data, res["flag"].data
        assert np.nanmax(np.abs(shift)) <= max_shift
        assert (flag == 3).any() and np.isnan(shift[flag == 3]).all()
        assert np.isfinite(shift[flag == 0]).all()
