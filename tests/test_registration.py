import importlib.metadata
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import hyperspy.api as hs
from exspy.signals import EELSSpectrum, LazyEELSSpectrum

import hyperspy_cvae
from hyperspy_cvae import CVAEEELSSpectrum, LazyCVAEEELSSpectrum, to_cvae


def _spectrum_image(cls=hs.signals.Signal1D):
    s = cls(np.random.default_rng(0).poisson(100, (6, 5, 64)).astype(float))
    ax = s.axes_manager[-1]
    ax.scale, ax.offset, ax.units = 0.5, 690.0, "eV"
    return s


@pytest.mark.parametrize("cls", [CVAEEELSSpectrum, LazyCVAEEELSSpectrum])
def test_set_signal_type_returns_class(cls):
    s = _spectrum_image()
    if cls is LazyCVAEEELSSpectrum:
        s = s.as_lazy()
    s.set_signal_type(cls._signal_type)
    assert type(s) is cls


def test_from_eels_and_alias():
    s = _spectrum_image()
    s.set_signal_type("EELS")
    assert isinstance(s, EELSSpectrum)
    s.set_signal_type("CVAE_EELS")
    assert type(s) is CVAEEELSSpectrum and isinstance(s, EELSSpectrum)
    s2 = _spectrum_image()
    s2.set_signal_type("CVAE EELS")
    assert type(s2) is CVAEEELSSpectrum


def test_lazy_roundtrip_classes():
    s = to_cvae(_spectrum_image())
    lz = s.as_lazy()
    assert type(lz) is LazyCVAEEELSSpectrum and isinstance(lz, LazyEELSSpectrum)
    lz.compute()
    assert type(lz) is CVAEEELSSpectrum


@pytest.mark.parametrize("ext", ["hspy", "zspy"])
def test_save_load_keeps_class(tmp_path, ext):
    s = to_cvae(_spectrum_image())
    fn = tmp_path / f"si.{ext}"
    s.save(fn)
    assert type(hs.load(fn)) is CVAEEELSSpectrum
    assert type(hs.load(fn, lazy=True)) is LazyCVAEEELSSpectrum
    plain = _spectrum_image()
    fn2 = tmp_path / f"plain.{ext}"
    plain.save(fn2)
    loaded = hs.load(fn2, signal_type="CVAE_EELS")
    assert type(loaded) is CVAEEELSSpectrum
    np.testing.assert_array_equal(loaded.data, plain.data)


def test_to_cvae_shares_data_and_exports():
    s = _spectrum_image()
    c = hyperspy_cvae.to_cvae(s)
    assert type(c) is CVAEEELSSpectrum and type(s) is hs.signals.Signal1D
    assert np.shares_memory(c.data, s.data)
    assert hyperspy_cvae.__version__
    assert hyperspy_cvae.CVAEEELSSpectrum is CVAEEELSSpectrum


def test_to_cvae_rejects_images():
    with pytest.raises(ValueError, match="one signal"):
        to_cvae(hs.signals.Signal2D(np.zeros((4, 4))))


def test_exspy_methods_still_work(small_cube):
    s = small_cube.deepcopy()
    s.add_elements(("Fe", "O"))
    s.set_microscope_parameters(beam_energy=300, convergence_angle=30, collection_angle=50)
    bg = s.remove_background(signal_range=(650.0, 690.0), fast=True, show_progressbar=False)
    assert type(bg) is CVAEEELSSpectrum
    assert bg.isig[700.0:715.0].data.mean() > 0
    ext = s.power_law_extrapolation(window_size=20, extrapolation_size=50)
    assert type(ext) is CVAEEELSSpectrum and ext.axes_manager[-1].size == s.axes_manager[-1].size + 50
    sl = s.isig[690.0:730.0]
    assert type(sl) is CVAEEELSSpectrum
    assert sorted(s.metadata.Sample.elements) == ["Fe", "O"]


def test_entry_point_and_yaml_in_wheel(tmp_path):
    eps = importlib.metadata.entry_points(group="hyperspy.extensions")
    assert any(ep.name == "hyperspy_cvae" and ep.value == "hyperspy_cvae" for ep in eps)
    from hyperspy.extensions import ALL_EXTENSIONS

    assert ALL_EXTENSIONS["signals"]["CVAEEELSSpectrum"]["signal_type"] == "CVAE_EELS"
    import pathlib

    root = pathlib.Path(hyperspy_cvae.__file__).parent.parent
    if not (root / "pyproject.toml").exists():
        pytest.skip("not a source checkout")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(root), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(tmp_path)], check=True)
    (wheel,) = tmp_path.glob("hyperspy_cvae-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "hyperspy_cvae/hyperspy_extension.yaml" in names
    assert any(n.endswith("entry_points.txt") for n in names)
