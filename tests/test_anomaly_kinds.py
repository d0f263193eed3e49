"""inject_anomaly: the kinds of change, the exact redraw, the generator's checks (issue 14)."""

import numpy as np
import pytest

from hyperspy_cvae.synthetic import bifeo3_si
from hyperspy_cvae.synthetic.anomalies import (KINDS, NUISANCES, anomaly_expectations, generator_params,
                                               redraw_counts)


@pytest.fixture(scope="module")
def film():
    return bifeo3_si((24, 24), random_state=0, substrate_fraction=0.25, return_expected=True)


def _window(s, lo, hi):
    e = s.axes_manager[-1].axis
    return (e >= lo) & (e < hi)


def test_expectation_without_change_is_the_generators(film):
    s, ex = film
    mu0, _ = anomaly_expectations(generator_params(s.metadata, s.data), "valence")
    assert np.array_equal(mu0, ex.data)
    _, nodrift = bifeo3_si((24, 24), random_state=0, substrate_fraction=0.25, return_expected="no_drift")
    mu0, _ = anomaly_expectations(generator_params(s.metadata), "valence", drift=False)
    assert np.array_equal(mu0, nodrift.data)


@pytest.mark.parametrize("kind, where, sign", [
    ("valence", (705.5, 707.5), +1),       # Fe2+ L3 1.5 eV below the Fe3+ line
    ("valence", (708.5, 710.0), -1),
    ("l3_l2_ratio", (719.5, 722.5), +1),
    ("prepeak", (531.5, 533.5), -1),
    ("new_peak", (713.5, 715.5), +1),
    ("missing_edge", (706.0, 712.0), -1),
    ("thickness", (420.0, 780.0), +1),
])
def test_each_kind_changes_what_it_says(film, kind, where, sign):
    s, _ = film
    mu0, mu1 = anomaly_expectations(generator_params(s.metadata), kind, pixels=[0, 1, 2])
    w = _window(s, *where)
    rel = (mu1[:, w].sum(-1) - mu0[:, w].sum(-1)) / mu0[:, w].sum(-1)
    assert np.all(np.sign(rel) == sign) and np.all(np.abs(rel) > 0.02), rel
    if kind != "thickness":  # far from every edge only the lines' Lorentzian tails change
        far = _window(s, 440.0, 450.0)
        np.testing.assert_allclose(mu1[:, far], mu0[:, far], rtol=1e-3)


def test_film_kinds_leave_the_substrate_alone(film):
    s, _ = film
    bad, truth = s.inject_anomaly("valence", mask=np.ones((24, 24), bool), random_state=1,
                                  return_mask=True)
    assert truth.data[:18].all() and not truth.data[18:].any()
    assert np.array_equal(bad.data[18:], s.data[18:])
    assert bad.metadata.CVAE.injection.n_chosen_unchanged == 6 * 24
    assert not np.array_equal(bad.data[:18], s.data[:18])


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_redrawn_counts_follow_the_changed_expectation(kind):
    s = bifeo3_si((48, 48), random_state=2)
    bad, truth = s.inject_anomaly(kind, mask=np.ones((48, 48), bool), random_state=3, return_mask=True)
    mu0, mu1 = anomaly_expectations(generator_params(s.metadata), kind)
    t = truth.data
    # summed over the 2304 pixels, each channel is Poisson(Σ mu1): standardised residuals ~ N(0, 1)
    z = (bad.data[t].sum(0) - mu1[t].sum(0)) / np.sqrt(mu1[t].sum(0))
    assert abs(z.mean()) < 0.15 and 0.85 < z.std() < 1.15
    # and not Poisson(Σ mu0) where the kind changes the spectrum
    changed = np.abs(mu1[t].sum(0) - mu0[t].sum(0)) > 5 * np.sqrt(mu0[t].sum(0))
    assert changed.any()
    z0 = (bad.data[t].sum(0) - mu0[t].sum(0)) / np.sqrt(mu0[t].sum(0))
    assert np.abs(z0[changed]).min() > 2
    assert bad.data.dtype == s.data.dtype and np.array_equal(bad.data, np.round(bad.data))


def test_redraw_counts_thins_and_adds_exactly():
    rng = np.random.default_rng(0)
    mu0 = np.full(200_000, 50.0)
    y = rng.poisson(mu0).astype(np.float32)
    for target in (5.0, 49.0, 51.0, 120.0):
        z = redraw_counts(y, mu0, np.full_like(mu0, target), rng)
        assert abs(z.mean() - target) < 4 * np.sqrt(target / z.size)
        assert abs(z.var() / target - 1) < 0.02
    with pytest.raises(ValueError, match="counts"):
        redraw_counts(y + 0.5, mu0, mu0, rng)


def test_injection_metadata_reproducibility_and_no_side_effects(film):
    s, _ = film
    before = s.data.copy()
    a, ta = s.inject_anomaly("prepeak", random_state=5, n_clusters=2, cluster_size=3, return_mask=True)
    b = s.inject_anomaly("prepeak", random_state=5, n_clusters=2, cluster_size=3)
    assert np.array_equal(a.data, b.data) and np.array_equal(s.data, before)
    info = a.metadata.CVAE.injection
    assert (info.kind, info.strength, info.n_pixels) == ("prepeak", KINDS["prepeak"][0], 18)
    assert np.array_equal(info.mask.data, ta.data) and "prepeak" in a.metadata.General.title
    assert not s.metadata.has_item("CVAE.injection")


def test_injection_keeps_laziness():
    s = bifeo3_si((16, 16), random_state=0, lazy=True)
    bad = s.inject_anomaly("new_peak", n_clusters=1, cluster_size=4, random_state=0)
    assert bad._lazy and bad.data.shape == s.data.shape


def test_noise_free_cube_gets_the_changed_expectation():
    s = bifeo3_si((12, 12), random_state=0, noise=False)
    bad, truth = s.inject_anomaly("missing_edge", n_clusters=1, cluster_size=3, random_state=0,
                                  return_mask=True)
    _, mu1 = anomaly_expectations(generator_params(s.metadata), "missing_edge")
    assert np.array_equal(bad.data[truth.data], mu1[truth.data])


@pytest.mark.parametrize("make, match", [
    (lambda: bifeo3_si((8, 8)), "integer random_state"),
    (lambda: bifeo3_si((8, 8), random_state=0) * 2, "no longer the generator's output"),
    (lambda: bifeo3_si((8, 8), random_state=0).isig[500.:], "no longer the generator's output"),
    (lambda: bifeo3_si((16, 16), random_state=0).inject_shift(1.0, n_clusters=1, cluster_size=2,
                                                              random_state=0),
     "no longer the generator's output"),
])
def test_refuses_what_it_cannot_redraw(make, match):
    with pytest.raises(ValueError, match=match):
        make().inject_anomaly("valence", n_clusters=1, cluster_size=2)


def test_refuses_measured_data():
    import hyperspy.api as hs

    s = hs.signals.Signal1D(np.ones((8, 8, 64)))
    s.set_signal_type("CVAE_EELS")
    with pytest.raises(ValueError, match="inject_shift"):
        s.inject_anomaly("valence")


@pytest.mark.parametrize("kind, strength", [("valence", 1.5), ("valence", 0), ("missing_edge", -0.1),
                                            ("prepeak", -1.5), ("thickness", "a lot"), ("nope", None)])
def test_bad_kind_or_strength(kind, strength):
    s = bifeo3_si((8, 8), random_state=0)
    with pytest.raises(ValueError, match="kind|strength"):
        s.inject_anomaly(kind, strength)


def test_every_kind_is_documented():
    assert set(NUISANCES) <= set(KINDS)
    from hyperspy_cvae.signals import CVAEEELSSpectrum

    doc = CVAEEELSSpectrum.inject_anomaly.__doc__
    assert all(f'"{k}"' in doc for k in KINDS)
