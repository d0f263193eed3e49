import numpy as np
import pytest

from hyperspy_cvae import CVAEEELSSpectrum
from hyperspy_cvae.synthetic import bifeo3_si, spectrum_components


def test_calibration_and_class():
    s = bifeo3_si((16, 20), random_state=0)
    assert type(s) is CVAEEELSSpectrum
    assert s.data.shape == (16, 20, 1200)
    ax = s.axes_manager[-1]
    assert (ax.offset, ax.scale, ax.units) == (420.0, 0.3, "eV")
    assert [a.units for a in s.axes_manager.navigation_axes] == ["nm", "nm"]
    assert s.axes_manager[0].scale == pytest.approx(0.1)


def test_reproducible_and_seed_dependent():
    a = bifeo3_si((16, 16), size=300, offset=640.0, random_state=3)
    b = bifeo3_si((16, 16), size=300, offset=640.0, random_state=3)
    c = bifeo3_si((16, 16), size=300, offset=640.0, random_state=4)
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data, c.data)


def test_edge_positions():
    e = np.arange(500, 760, 0.01)
    comp = spectrum_components(e)
    fe = comp["fe"]
    l3 = e[np.argmax(np.where(e < 714, fe, 0))]
    l2 = e[np.argmax(np.where(e > 714, fe, 0))]
    assert abs(l3 - 708.0) < 0.5 and abs(l2 - 721.0) < 0.5
    from scipy.signal import find_peaks

    peaks = e[find_peaks(comp["o_bfo"])[0]]
    assert np.min(np.abs(peaks - 532.5)) < 0.5  # O K pre-peak just above the 532 eV onset
    # In a generated cube (no drift) the L3 maximum of the mean spectrum is at 708 eV too.
    s = bifeo3_si((8, 8), offset=690.0, size=100, drift=0.0, noise=False, random_state=0)
    mean = s.data.mean((0, 1))
    ax = s.axes_manager[-1].axis
    assert abs(ax[np.argmax(np.where(ax < 714, mean, 0))] - 708.0) <= 0.3


def test_poisson_statistics_and_dose():
    s, e = bifeo3_si((32, 32), offset=640.0, size=400, dose=200.0, random_state=1,
                     return_expected=True)
    z = (s.data - e.data) / np.sqrt(e.data)
    assert abs(z.mean()) < 0.01
    assert abs(z.std() - 1.0) < 0.02
    assert np.all(s.data == np.round(s.data))
    win = s.isig[690.0:730.0].data
    assert win.mean() == pytest.approx(200.0, rel=0.02)
    s2 = bifeo3_si((32, 32), offset=640.0, size=400, dose=20.0, random_state=1)
    assert s2.isig[690.0:730.0].data.mean() == pytest.approx(20.0, rel=0.03)


def test_drift_and_substrate():
    s = bifeo3_si((40, 8), offset=420.0, size=1100, substrate_fraction=0.25, noise=False,
                  random_state=0, drift=0.0)
    film, sub = s.data[0, 0], s.data[-1, 0]
    e = s.axes_manager[-1].axis
    fe = (e > 705) & (e < 711)
    assert film[fe].max() > 1.3 * sub[fe].max()
    assert s.metadata.CVAE.synthetic.substrate_fraction == 0.25


def test_expected_without_drift():
    """``return_expected="no_drift"``: same counts, same thickness/lattice, drift removed."""
    kw = dict(offset=640.0, size=400, random_state=2, drift=0.3)
    s, ex = bifeo3_si((16, 16), return_expected=True, **kw)
    s2, bulk = bifeo3_si((16, 16), return_expected="no_drift", **kw)
    assert np.array_equal(s.data, s2.data)
    e = s.axes_manager[-1].axis
    l3 = (e > 700) & (e < 716)
    peak = e[l3][np.argmax(bulk.data[..., l3], -1)]
    assert np.ptp(peak) == 0.0 and abs(peak[0, 0] - 708.0) <= 0.3  # every pixel's L3 at 708 eV
    assert np.ptp(e[l3][np.argmax(ex.data[..., l3], -1)]) >= 0.6    # the drifted ones are not
    # Same intensities (thickness, lattice) up to the drift.
    assert bulk.data.sum((-1)) == pytest.approx(ex.data.sum(-1), rel=0.01)
    with pytest.raises(ValueError, match="return_expected"):
        bifeo3_si((4, 4), return_expected="yes")


@pytest.mark.parametrize("kw", [{"dose": 0}, {"substrate_fraction": 1.0}, {"shape": (0, 3)}])
def test_bad_parameters(kw):
    shape = kw.pop("shape", (4, 4))
    with pytest.raises(ValueError):
        bifeo3_si(shape, size=64, offset=680.0, **kw)
