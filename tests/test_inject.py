import numpy as np
import pytest
from scipy import ndimage

from hyperspy_cvae.synthetic import bifeo3_si
from hyperspy_cvae.synthetic import cluster_mask, shift_window, window_taper
from conftest import data_hash


def _measured_shift(x, y, energy, lo=696.0, hi=726.0):
    """Shift s minimising sum (y(E) - x(E - s))^2 in [lo, hi], scanned to 1 meV."""
    sel = (energy >= lo) & (energy < hi)
    cands = np.arange(-10.0, 10.0, 0.001)
    best = min(cands[::50], key=lambda s: np.sum((y[sel] - np.interp(energy[sel] - s, energy, x)) ** 2))
    fine = best + np.arange(-0.06, 0.06, 0.001)
    return min(fine, key=lambda s: np.sum((y[sel] - np.interp(energy[sel] - s, energy, x)) ** 2))


@pytest.mark.parametrize("dE", [0.4, 1.3, -2.05, 4.0])
def test_shift_recovered_noise_free(dE):
    s = bifeo3_si((8, 8), offset=640.0, size=400, noise=False, drift=0.0, random_state=0)
    mask = np.zeros((8, 8), bool)
    mask[2, 3] = True
    out = s.inject_shift(dE, mask=mask)
    e = s.axes_manager[-1].axis
    assert abs(_measured_shift(s.data[2, 3], out.data[2, 3], e) - dE) <= 0.05
    np.testing.assert_array_equal(out.data[~mask], s.data[~mask])


def test_no_wraparound_and_counts_conserved():
    x = np.ones(100)
    x[70] = 50.0  # a peak near the top of the window [20, 80)
    y = shift_window(x, 15.0, slice(20, 80), ramp=3)
    # The peak leaves the window; nothing re-enters at the bottom.
    assert y[20:40].max() < 2.0
    assert y[:20].tolist() == x[:20].tolist() and y[80:].tolist() == x[80:].tolist()
    assert y[20:80].sum() == pytest.approx(x[20:80].sum())
    # Fractional shift of noisy counts: window total preserved to float precision.
    rng = np.random.default_rng(0)
    z = rng.poisson(100, size=(5, 200)).astype(float)
    w = shift_window(z, 3.7, slice(50, 150), ramp=5)
    np.testing.assert_allclose(w[:, 50:150].sum(1), z[:, 50:150].sum(1), rtol=1e-12)


def test_taper_is_continuous():
    w = window_taper(50, slice(10, 40), 5)
    assert w[9] == 0 and w[40] == 0 and w[20] == 1
    assert np.all(np.abs(np.diff(w)) < 0.35)


def test_truth_mask_geometry_and_metadata(small_cube):
    before = data_hash(small_cube)
    out, truth = small_cube.inject_shift(2.5, n_clusters=3, cluster_size=5, random_state=7,
                                         return_mask=True)
    assert data_hash(small_cube) == before  # input untouched
    lab, n = ndimage.label(truth.data)
    assert n == 3 and sorted(np.bincount(lab.ravel())[1:]) == [25, 25, 25]
    assert truth.axes_manager.signal_shape == (48, 48)
    assert truth.axes_manager[0].units == "nm" and truth.axes_manager[0].scale == pytest.approx(0.1)
    inj = out.metadata.CVAE.injection
    # no window given: the Fe L2,3 window from metadata.Sample.elements of the synthetic cube
    assert inj.dE == 2.5 and inj.window == [693.0, 741.0] and inj.random_state == 7
    np.testing.assert_array_equal(inj.mask.data, truth.data)
    again, truth2 = small_cube.inject_shift(2.5, n_clusters=3, cluster_size=5, random_state=7,
                                            return_mask=True)
    np.testing.assert_array_equal(again.data, out.data)
    assert type(out) is type(small_cube)


def test_lazy_equals_eager(small_cube):
    eager = small_cube.inject_shift(1.5, random_state=2)
    lazy = small_cube.as_lazy().inject_shift(1.5, random_state=2)
    assert lazy._lazy
    lazy.compute()
    np.testing.assert_allclose(lazy.data, eager.data, rtol=1e-6)


def test_user_mask_signal(small_cube):
    m = np.zeros((48, 48), bool)
    m[:2] = True
    out, truth = small_cube.inject_shift(1.0, mask=m, return_mask=True)
    assert truth.data.sum() == 96
    with pytest.raises(ValueError, match="navigation shape"):
        small_cube.inject_shift(1.0, mask=np.zeros((47, 48), bool))


@pytest.mark.parametrize("window,match", [((600.0, 700.0), "outside"), ((730.0, 690.0), "reversed"),
                                          ((700.0, 700.5), "at least 3"), ((700.0, 800.0), "outside")])
def test_bad_windows(small_cube, window, match):
    with pytest.raises(ValueError, match=match) as err:
        small_cube.inject_shift(1.0, window=window)
    assert "640–760 eV" in str(err.value)


def test_dE_larger_than_window(small_cube):
    with pytest.raises(ValueError, match="window width"):
        small_cube.inject_shift(50.0)  # the default window (Fe L2,3) is 48 eV wide


def test_cluster_mask_errors():
    with pytest.raises(ValueError, match="non-overlapping"):
        cluster_mask((10, 10), n_clusters=20, cluster_size=5, random_state=0)
