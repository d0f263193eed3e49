"""Bad input: every case is refused with an error that says what is wrong and how to fix it,
or handled in a documented way (negative counts, integer counts, identical spectra).
Inputs are never mutated."""

import logging
import warnings

import hyperspy.api as hs
import numpy as np
import pytest
import torch

from conftest import FIT_TINY, WINDOW, data_hash
from hyperspy_cvae import CVAE, CVAEEELSSpectrum, to_cvae
from hyperspy_cvae.synthetic import bifeo3_si


@pytest.fixture(scope="module")
def cube():
    """32 × 40 map (non-square: catches x/y mix-ups), 660–750 eV."""
    return bifeo3_si((32, 40), offset=660.0, size=300, random_state=0)


@pytest.fixture(scope="module")
def cvae(cube):
    return CVAE(**{k: v for k, v in FIT_TINY.items() if k != "signal_range"}).fit(
        cube.isig[680.0:740.0].data,
        energy_axis={"offset": 680.1, "scale": 0.3, "size": 200, "units": "eV"})


@pytest.fixture(scope="module")
def fitted(cube):
    s = cube.deepcopy()
    s.fit_cvae(**FIT_TINY)
    return s


def _calls(cvae_model):
    """Every public method that takes a window / needs a map, as callables."""
    return {
        "inject_shift": lambda s: s.inject_shift(1.0, window=WINDOW, random_state=0),
        "fit_cvae": lambda s: s.fit_cvae(**FIT_TINY),
        "cvae_decomposition": lambda s: s.cvae_decomposition(cvae=cvae_model),
        "anomaly_map_pca": lambda s: s.anomaly_map("pca", window=WINDOW),
        "anomaly_map_cvae": lambda s: s.anomaly_map("cvae", window=WINDOW, cvae=cvae_model),
    }


ALL = ["inject_shift", "fit_cvae", "cvae_decomposition", "anomaly_map_pca", "anomaly_map_cvae"]
WINDOWED = ["inject_shift", "fit_cvae", "anomaly_map_pca"]
#: The methods that use the trained ``cvae`` fixture.
NEEDS_MODEL = {"cvae_decomposition", "anomaly_map_cvae"}


def _methods(names, slow=NEEDS_MODEL):
    """``names`` as parameters; those in ``slow`` (they train a CVAE or use the trained one) marked slow."""
    return [pytest.param(n, marks=pytest.mark.slow) if n in slow else n for n in names]


def _call(method, request):
    """The public method ``method`` as a callable of the signal; the trained ``cvae`` fixture is
    built only for the methods in ``NEEDS_MODEL`` (a test that asks for none of them trains nothing)."""
    return _calls(request.getfixturevalue("cvae") if method in NEEDS_MODEL else None)[method]


def _compute(out):
    for o in out if isinstance(out, tuple) else (out,):
        if getattr(o, "_lazy", False):
            o.compute()
    return out


# --------------------------------------------------------------------------- axis
@pytest.mark.parametrize("method", WINDOWED)
def test_uncalibrated_energy_axis_with_window_in_eV(method, request):
    s = CVAEEELSSpectrum(np.random.default_rng(0).poisson(50, (32, 32, 300)).astype(np.float32))
    with pytest.raises(ValueError, match="uncalibrated") as err:
        _call(method, request)(s)
    assert "ax.scale" in str(err.value) and "ax.units" in str(err.value)  # says how to fix it


@pytest.mark.parametrize("method", _methods(ALL))
def test_non_uniform_energy_axis(method, cube, request):
    e = 660.0 + np.cumsum(np.linspace(0.25, 0.35, 300))
    s = hs.signals.Signal1D(cube.data, axes=[
        {"size": 32, "scale": 0.1, "units": "nm", "name": "y"},
        {"size": 40, "scale": 0.1, "units": "nm", "name": "x"},
        {"axis": e, "units": "eV", "name": "Energy loss"}])
    s.set_signal_type("CVAE_EELS")
    assert isinstance(s, CVAEEELSSpectrum)
    with pytest.raises(ValueError, match="non-uniform") as err:
        _call(method, request)(s)
    assert "interpolate_on_axis" in str(err.value)


@pytest.mark.parametrize("window,match", [((600.0, 700.0), "outside"), ((700.0, 800.0), "outside"),
                                          ((730.0, 690.0), "reversed"), ((700.0, 700.5), "at least")])
@pytest.mark.parametrize("method", _methods(["inject_shift", "anomaly_map_pca", "anomaly_map_cvae"]))
def test_window_outside_reversed_or_too_narrow(method, window, match, cube, request):
    call = {"inject_shift": lambda: cube.inject_shift(1.0, window=window),
            "anomaly_map_pca": lambda: cube.anomaly_map("pca", window=window),
            "anomaly_map_cvae": lambda: cube.anomaly_map("cvae", window=window,
                                                         cvae=request.getfixturevalue("cvae"))}[method]
    with pytest.raises(ValueError, match=match) as err:
        call()
    assert "the axis covers 660–750 eV" in str(err.value)


@pytest.mark.parametrize("signal_range,match", [((600.0, 700.0), "outside"), ((740.0, 680.0), "reversed"),
                                                ((700.0, 703.0), "at least 16")])
def test_signal_range_outside_reversed_or_too_narrow(signal_range, match, cube):
    with pytest.raises(ValueError, match=match):
        cube.fit_cvae(**dict(FIT_TINY, signal_range=signal_range))


# --------------------------------------------------------------------------- shape
@pytest.mark.parametrize("method", _methods(ALL))
@pytest.mark.parametrize("kind", ["single spectrum"])  # line scans work: tests/test_real_and_lines.py
def test_not_a_map(kind, method, cube, request):
    s = cube.inav[3, 4] if kind == "single spectrum" else cube.inav[:, 4]
    assert s.axes_manager.navigation_dimension == (0 if kind == "single spectrum" else 1)
    with pytest.raises(ValueError, match="two navigation axes") as err:
        _call(method, request)(s)
    assert "Single spectra are not supported" in str(err.value)


@pytest.mark.slow
def test_navigation_smaller_than_shard(cube, cvae):
    tiny = cube.inav[:12, :20]  # 20 × 12 pixels, shards of 16
    with pytest.raises(ValueError, match="smaller than one shard") as err:
        tiny.fit_cvae(**FIT_TINY)
    assert "shard_size=12" in str(err.value)
    with pytest.raises(ValueError, match="smaller than one shard"):
        tiny.cvae_decomposition(cvae=cvae)
    with pytest.raises(ValueError, match="smaller than one shard"):
        tiny.anomaly_map("cvae", cvae=cvae)


# --------------------------------------------------------------------------- values
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("method", _methods(["fit_cvae", "cvae_decomposition", "anomaly_map_pca",
                                             "anomaly_map_cvae"]))
def test_nan_or_inf_refused_eager(method, bad, cube, request):
    s = cube.deepcopy()
    s.data[5, 7, 120] = bad
    before = data_hash(s)
    with pytest.raises(ValueError, match="NaN") as err:
        _compute(_call(method, request)(s))
    assert "nan_to_num" in str(err.value)
    assert data_hash(s) == before


@pytest.mark.parametrize("method", _methods(["cvae_decomposition", "anomaly_map_pca", "anomaly_map_cvae"]))
def test_nan_refused_lazy(method, cube, request):
    """Lazy data are checked block by block: the error comes when the result is computed."""
    s = cube.deepcopy()
    s.data[30, 35, 120] = np.nan
    s = s.as_lazy()
    with pytest.raises(ValueError, match="NaN"):
        _compute(_call(method, request)(s))


def test_nan_refused_lazy_fit(cube):
    s = cube.deepcopy()
    s.data[..., 120] = np.nan  # in every sampled shard
    with pytest.raises(ValueError, match="NaN/inf .* shard at pixel"):
        s.as_lazy().fit_cvae(**FIT_TINY)


@pytest.mark.slow
@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("loss", ["ce", "poisson"])
def test_negative_counts_clipped_with_warning(lazy, loss, cube, caplog):
    s = cube.deepcopy()
    s.data -= np.float32(np.median(cube.data))  # an over-subtracted background: many negative counts
    assert (s.data < 0).sum() > 1000
    s = s.as_lazy() if lazy else s
    before = data_hash(s)
    with caplog.at_level(logging.WARNING, logger="hyperspy_cvae"):
        cvae = s.fit_cvae(**dict(FIT_TINY, loss=loss), noise="counts")   # taken as counts: clipped
    assert any("Negative counts" in r.message and "clipped to 0" in r.message for r in caplog.records)
    assert np.isfinite(cvae.history_["train_loss"]).all()
    rec = _compute(s.cvae_decomposition())
    assert (rec.data >= 0).all() and np.isfinite(rec.data).all()
    score, mask = s.anomaly_map("cvae", window=WINDOW, noise="counts")  # the default shift score
    assert np.isfinite(score.data).all()
    assert data_hash(s) == before


def test_negative_counts_are_an_offset_for_the_noise_model(cube, caplog):
    """The default noise model sees the subtracted level as an offset (``Var = E + level``): the
    Poisson-equivalent counts are non-negative again and nothing is clipped."""
    s = cube.deepcopy()
    level = float(np.median(cube.isig[660.:760.].data))
    s.data -= np.float32(level)
    with caplog.at_level(logging.WARNING, logger="hyperspy_cvae"):
        s.fit_cvae(**FIT_TINY)
    noise = s.metadata.CVAE.model.noise
    assert noise.source == "estimated"
    e = np.array([-0.5, 0.0, 0.5]) * level            # the variance law Var = E + level, over the data
    np.testing.assert_allclose(noise.gain_factor * e + noise.gain_offset, e + level, rtol=0.1)
    assert not any("clipped to 0" in r.message for r in caplog.records)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["uint16", "int32"])
def test_integer_counts(dtype, cube, fitted):
    s = cube.deepcopy()
    s.change_dtype(dtype)
    before = data_hash(s)
    out, truth = s.inject_shift(2.0, window=WINDOW, random_state=1, return_mask=True)
    assert np.issubdtype(out.data.dtype, np.floating)
    cvae = s.fit_cvae(**FIT_TINY)
    assert cvae.checksum() == fitted.cvae.checksum()  # counts are counts, whatever their dtype
    rec = s.cvae_decomposition()
    assert rec.data.dtype == np.float32
    pcc, _ = s.anomaly_map("pca", window=WINDOW, score="pcc")
    pcc_f, _ = cube.anomaly_map("pca", window=WINDOW, score="pcc")
    np.testing.assert_allclose(pcc.data, pcc_f.data, atol=1e-6)
    z, _ = s.anomaly_map("pca", window=WINDOW)  # the default shift score: sqrt of a likelihood ratio
    z_f, _ = cube.anomaly_map("pca", window=WINDOW)
    np.testing.assert_allclose(z.data, z_f.data, atol=1e-3)
    s.anomaly_map("cvae", window=WINDOW)
    assert data_hash(s) == before and s.data.dtype == dtype


@pytest.mark.parametrize("method", _methods(ALL))
def test_complex_data_refused(method, cube, request):
    s = CVAEEELSSpectrum(cube.data.astype(np.complex64))
    s.axes_manager[-1].update_from(cube.axes_manager[-1], ("units", "scale", "offset", "name"))
    with pytest.raises(TypeError, match="complex") as err:
        _call(method, request)(s)
    assert "abs(s)" in str(err.value)


def test_complex_signal_not_converted():
    c = hs.signals.Signal1D(np.ones((4, 4, 50), complex))
    with pytest.raises(TypeError, match="complex"):
        to_cvae(c)
    with pytest.raises(TypeError, match="complex"):
        CVAE(shard_size=8, epochs=1).fit(np.ones((8, 8, 20), complex))


# --------------------------------------------------------------------------- checkpoints
@pytest.mark.slow
def test_checkpoint_trained_on_another_energy_axis(fitted, tmp_path):
    loaded = CVAE.load(fitted.cvae.save(tmp_path / "m.pt"))
    finer = fitted.deepcopy()
    finer.axes_manager[-1].scale = 0.25
    with pytest.raises(ValueError, match="0.3 eV/channel, the data have 0.25") as err:
        finer.cvae_decomposition(cvae=loaded)
    assert "interpolate_on_axis" in str(err.value)
    shifted = fitted.deepcopy()
    shifted.axes_manager[-1].offset += 0.1
    with pytest.raises(ValueError, match="not aligned"):
        shifted.anomaly_map("cvae", cvae=loaded)
    with pytest.raises(ValueError, match="trained on 680.1–740.1 eV but the data cover"):
        fitted.isig[700.0:].cvae_decomposition(cvae=loaded)


@pytest.mark.slow
def test_corrupt_or_foreign_checkpoint_refused_without_executing_code(fitted, tmp_path):
    good = fitted.cvae.save(tmp_path / "good.pt")
    blob = good.read_bytes()
    cases = {"random bytes": b"\x00garbage" * 50, "truncated": blob[: len(blob) // 2], "empty": b""}
    for name, content in cases.items():
        p = tmp_path / f"{name}.pt"
        p.write_bytes(content)
        with pytest.raises(ValueError, match="not a valid hyperspy-cvae checkpoint"):
            CVAE.load(p)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    with pytest.raises(ValueError, match="not a hyperspy-cvae checkpoint"):
        CVAE.load(foreign)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = tmp_path / "evil.pt"
    torch.save({"meta_json": "{}", "state_dict": {}, "x": Evil()}, evil)
    with pytest.raises(ValueError, match="weights_only"):
        CVAE.load(evil)
    assert not marker.exists()  # the payload never ran
    ckpt = torch.load(good, weights_only=True)
    ckpt["meta_json"] = ckpt["meta_json"].replace('"n_channels": 200', '"n_channels": 180')
    tampered = tmp_path / "tampered.pt"
    torch.save(ckpt, tampered)
    with pytest.raises(ValueError, match="do not match the stored architecture"):
        CVAE.load(tampered)


# --------------------------------------------------------------------------- inject_shift
@pytest.mark.parametrize("lazy", [False, True])
def test_inject_shift_dE_larger_than_window(lazy, cube):
    s = cube.as_lazy() if lazy else cube
    with pytest.raises(ValueError, match="smaller than the window width 40 eV"):
        s.inject_shift(45.0, window=WINDOW)
    with pytest.raises(ValueError, match="smaller than the window width"):
        s.inject_shift(-40.0, window=WINDOW)


@pytest.mark.parametrize("lazy", [False, True])
def test_inject_shift_mask_of_wrong_shape(lazy, cube):
    s = cube.as_lazy() if lazy else cube
    with pytest.raises(ValueError, match=r"shape \(40, 32\), expected .* \(32, 40\)"):
        s.inject_shift(1.0, window=WINDOW, mask=np.zeros((40, 32), bool))  # x/y swapped
    with pytest.raises(ValueError, match="navigation shape"):
        s.inject_shift(1.0, window=WINDOW, mask=hs.signals.Signal2D(np.zeros((32, 39), bool)))


# --------------------------------------------------------------------------- degenerate data
@pytest.mark.parametrize("score", ["shift", "pcc"])
@pytest.mark.parametrize("method", ["pca", pytest.param("cvae", marks=pytest.mark.slow)])
@pytest.mark.parametrize("lazy", [False, True])
def test_anomaly_map_all_identical_spectra(method, lazy, score, cube, request):
    s = cube.deepcopy()
    s.data[:] = cube.data.mean((0, 1))
    s = s.as_lazy() if lazy else s
    kw = {"cvae": request.getfixturevalue("cvae")} if method == "cvae" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no 0/0 or invalid-value spam
        score_map, mask = s.anomaly_map(method, window=WINDOW, score=score, **kw)
    assert np.isfinite(score_map.data).all()
    assert not mask.data.any()
    assert "identical" in mask.metadata.CVAE.threshold.decision


# --------------------------------------------------------------------------- no mutation
@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("method", _methods(ALL, slow=NEEDS_MODEL | {"fit_cvae"}))
def test_public_methods_never_mutate_input(method, lazy, cube, request):
    s = cube.deepcopy()
    s.data[0, :3, :50] = -2.0  # a few negative counts: clipping must work on a copy
    s = s.as_lazy() if lazy else s
    before = data_hash(s)
    _compute(_call(method, request)(s))
    assert data_hash(s) == before
