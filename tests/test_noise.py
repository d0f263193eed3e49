"""The noise model: HyperSpy's metadata, the estimate from the data, Poisson-equivalent counts (issue 14)."""

import logging

import numpy as np
import pytest

from hyperspy_cvae.noise import (COUNTS, NoiseModel, counts_signal, estimate_noise_model, read_noise_model,
                                 resolve_noise_model)
from hyperspy_cvae.synthetic import bifeo3_si


def _detector(s, gain, read_noise, dark, seed=0):
    """``s`` (counts) as a detector would record it: ``gain · n + N(0, read_noise²) + dark``."""
    rng = np.random.default_rng(seed)
    data = gain * s.data + rng.normal(0, read_noise, s.data.shape) + dark
    out = s._deepcopy_with_new_data(data.astype(np.float32))
    out.metadata.General.title = f"gain {gain}"
    return out


@pytest.fixture(scope="module")
def cube():
    return bifeo3_si((32, 32), random_state=0, dose=150)


@pytest.mark.parametrize("gain, read_noise, dark", [(0.3, 1.0, -5.0), (1.0, 0.0, 0.0), (3.0, 4.0, -20.0),
                                                     (20.0, 30.0, 100.0)])
def test_estimate_recovers_the_variance_law(cube, gain, read_noise, dark):
    d = _detector(cube, gain, read_noise, dark)
    nm = estimate_noise_model(d.data)
    # the variance at the data's intensities, not each coefficient (they trade off on a narrow range)
    e = np.quantile(d.data, [0.1, 0.5, 0.9])
    true = gain * (e - dark) + read_noise**2
    np.testing.assert_allclose(nm.gain * e + nm.offset, true, rtol=0.08)
    assert nm.source == "estimated" and len(nm.support) == 2


def test_poisson_equivalent_counts_are_calibrated():
    rng = np.random.default_rng(1)
    mu = rng.uniform(5, 500, (4000, 1)) * np.ones((1, 50))
    y = 7.0 * rng.poisson(mu) + rng.normal(0, 20, mu.shape) - 300     # Var = 7 E + 2500
    z = NoiseModel(7.0, 7.0 * 300 + 400, "given").to_counts(y)
    ez = mu + (7.0 * 300 + 400) / 49 - 300 / 7.0
    ratio = ((z - ez) ** 2).mean(1) / ez.mean(1)
    assert abs(np.median(ratio) - 1) < 0.05
    nm = NoiseModel(7.0, 2500.0, "given")
    np.testing.assert_allclose(nm.from_counts(nm.to_counts(y[:3] + 1000)), y[:3] + 1000, rtol=1e-5)


def test_counts_are_left_as_they_are(cube):
    nm = resolve_noise_model(cube, "auto")
    assert nm.is_counts and nm.source.startswith("counts")
    assert counts_signal(cube, nm) is cube
    assert resolve_noise_model(cube, "counts") is COUNTS


def test_metadata_model_is_read_and_checked(cube, caplog):
    d = _detector(cube, 4.0, 0.0, 0.0)
    d.metadata.set_item("Signal.Noise_properties.Variance_linear_model",
                        {"gain_factor": 2.0, "gain_offset": 10.0, "correlation_factor": 2.0})
    nm = resolve_noise_model(d)
    assert (nm.gain, nm.offset, nm.source) == (4.0, 20.0, "metadata")
    d.metadata.Signal.Noise_properties.Variance_linear_model.gain_factor = 20.0   # 10 × too high
    with caplog.at_level(logging.WARNING, logger="hyperspy_cvae.noise"):
        nm = resolve_noise_model(d)
    assert nm.source == "estimated (metadata disagreed)" and 3.0 < nm.gain < 5.5
    assert "gain of 40" in caplog.text
    d.metadata.Signal.Noise_properties.Variance_linear_model.gain_factor = -1.0
    with pytest.raises(ValueError, match="gain_factor > 0"):
        read_noise_model(d.metadata)


@pytest.mark.parametrize("noise, match", [("poisson", "must be 'auto'"), ({"gain": 2}, "takes gain_factor"),
                                          ({"gain_factor": 0}, "gain_factor > 0"), (3.0, "must be 'auto'")])
def test_bad_noise_argument(cube, noise, match):
    with pytest.raises(ValueError, match=match):
        resolve_noise_model(cube, noise)


def test_given_model_and_bad_models():
    assert resolve_noise_model(None, {"gain_factor": 2.0, "gain_offset": 3.0, "correlation_factor": 0.5}) \
        == NoiseModel(1.0, 1.5, "given")
    with pytest.raises(ValueError, match="gain must be a positive"):
        NoiseModel(0.0)
    with pytest.raises(ValueError, match="offset must be finite"):
        NoiseModel(1.0, np.nan)


def test_estimate_refuses_too_little_and_keeps_to_the_data():
    with pytest.raises(ValueError, match="Too few"):
        estimate_noise_model(np.ones((4, 10)))
    # no value near zero: the variance at zero is not extrapolated, Var = A·E (here a Gaussian
    # noise of s.d. 3 at 100: calibrated where the data are)
    flat = np.full((400, 64), 100.0) + np.random.default_rng(0).normal(0, 3, (400, 64))
    nm = estimate_noise_model(flat)
    assert nm.offset == 0.0 and abs(nm.gain * 100 / 9 - 1) < 0.1 and "through the origin" in nm.detail


def test_lazy_data_are_read_a_few_blocks_only(cube):
    import dask.array as da

    d = _detector(cube, 3.0, 2.0, 0.0)
    seen = set()

    def mark(b, block_info=None):
        if block_info and block_info.get(0):
            seen.add(tuple(block_info[0]["chunk-location"]))
        return b

    lazy = da.from_array(d.data, chunks=(8, 8, -1)).map_blocks(mark, dtype=d.data.dtype)
    nm = estimate_noise_model(lazy, max_spectra=128)        # 2 blocks of 64 spectra, of 16
    assert 2.0 < nm.gain < 4.5 and len(seen) == 2


def test_lazy_data_split_along_energy_give_the_same_estimate(cube):
    """Blocks that cut the energy axis are merged into whole spectra before they are sampled."""
    import dask.array as da

    d = _detector(cube, 3.0, 2.0, 0.0)
    whole = estimate_noise_model(da.from_array(d.data, chunks=(8, 8, -1)), max_spectra=128)
    split = estimate_noise_model(da.from_array(d.data, chunks=(8, 8, 300)), max_spectra=128)
    assert (split.gain, split.offset) == (whole.gain, whole.offset)


def test_anomaly_map_on_detector_units(cube):
    bad = cube.inject_shift(1.0, n_clusters=1, cluster_size=4, random_state=1)
    ref = bad.anomaly_map("pca")
    d = _detector(bad, 5.0, 6.0, -40.0)
    before, meta_before = d.data.copy(), str(d.metadata)
    res = d.anomaly_map("pca")
    noise = res.score.metadata.CVAE.noise
    assert noise.source == "estimated" and 4.0 < noise.gain_factor < 6.0
    assert res.mask.metadata.CVAE.noise.gain_factor == noise.gain_factor
    # the same pixels as on the counts, and results in the data's units
    assert np.array_equal(res.mask.data, ref.mask.data) and res.mask.data.sum() == 16
    assert np.corrcoef(res.score.data.ravel(), ref.score.data.ravel())[0, 1] > 0.99
    np.testing.assert_allclose(res.reconstruction.data.mean(), d.data.mean(), rtol=0.01)
    assert res.original is d
    # the user's data and metadata untouched
    assert np.array_equal(d.data, before) and str(d.metadata) == meta_before
    assert not d.metadata.has_item("Signal.Noise_properties")
    # assuming counts here mis-scales every Poisson step: the shift score's null level moves
    wrong = d.anomaly_map("pca", noise="counts")
    bulk = ~ref.mask.data
    assert np.median(wrong.score.data[bulk]) > 1.5 * np.median(res.score.data[bulk])


def test_shift_map_and_fit_record_the_model(cube):
    d = _detector(cube, 3.0, 0.0, 0.0)
    shift = d.shift_map(method="pca")
    assert shift.metadata.CVAE.noise.source == "estimated"
    d.fit_cvae(signal_range=(680.0, 740.0), max_steps=2, validation_every=1, random_state=0,
               show_progressbar=False, noise={"gain_factor": 3.0})
    assert d.metadata.CVAE.model.noise.as_dictionary()["source"] == "given"
    assert d.metadata.CVAE.model.noise.gain_factor == 3.0


def test_huge_detector_units_train_as_counts(cube):
    """Data × 1e35 (finite in float32) overflow the Poisson sums as counts; the noise model sees a
    gain of ~1e35 and trains on Poisson-equivalent counts."""
    s = cube._deepcopy_with_new_data(cube.data * np.float32(1e35))
    cvae = s.fit_cvae(signal_range=(680.0, 740.0), max_steps=4, validation_every=2, shard_size=16,
                      latent_dim=8, random_state=0, show_progressbar=False)
    assert 0.5e35 < s.metadata.CVAE.model.noise.gain_factor < 2e35
    assert np.isfinite(cvae.history_["train_loss"]).all()


def test_injected_copies_keep_the_detectors_model(cube):
    d = _detector(cube, 2.0, 0.0, 0.0)
    d.metadata.set_item("Signal.Noise_properties.Variance_linear_model",
                        {"gain_factor": 2.0, "gain_offset": 0.0, "correlation_factor": 1.0})
    bad = d.inject_shift(1.0, n_clusters=1, cluster_size=4, random_state=0)
    assert read_noise_model(bad.metadata) == read_noise_model(d.metadata)
    assert resolve_noise_model(bad).source == "metadata"
