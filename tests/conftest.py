"""Helpers, settings and fixtures shared by the test modules.

Tests that train a CVAE (or use a fixture that does), run an example script or the benchmark's
quick mode, or start a dask LocalCluster are marked ``slow``; ``python -m pytest -m "not slow"``
runs the others.
"""

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

#: The Fe L2,3 window (eV) the tests inject shifts into and score (the library's default window).
WINDOW = (690.0, 730.0)

#: Training settings shared by several modules (read-only: derive variants with ``dict(FIT_TINY, ...)``).
#: ``FIT_TINY``: the cheapest training (8 latent dimensions, 1 epoch), for input checks, lazy paths
#: and determinism.
FIT_TINY = MappingProxyType(dict(signal_range=(680.0, 740.0), shard_size=16, latent_dim=8, epochs=1,
                                 batch_size=4, random_state=0, show_progressbar=False))
#: ``FIT_SMALL``: 16 latent dimensions, 2 epochs, for results drawn from a fitted model.
FIT_SMALL = MappingProxyType(dict(signal_range=(680.0, 740.0), shard_size=16, latent_dim=16, epochs=2,
                                  batch_size=4, random_state=0, show_progressbar=False))


@pytest.fixture(autouse=True)
def _no_progressbar():
    import hyperspy.api as hs

    old = hs.preferences.General.show_progressbar
    hs.preferences.General.show_progressbar = False
    yield
    hs.preferences.General.show_progressbar = old


@pytest.fixture(autouse=True)
def _close_figures():
    """Close the figures a test left open (only if it imported pyplot: no backend chosen here)."""
    yield
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")


def data_hash(signal):
    d = signal.data
    d = d.compute() if hasattr(d, "compute") else d
    return hashlib.sha256(np.ascontiguousarray(d).tobytes()).hexdigest()


@pytest.fixture(scope="session")
def small_cube():
    """48 × 48 map, 640–760 eV (400 channels) around Fe L2,3."""
    from hyperspy_cvae.synthetic import bifeo3_si

    return bifeo3_si((48, 48), offset=640.0, size=400, random_state=0)


def benchmark_module(name):
    """A script of ``benchmarks/`` (outside the installed package) imported as a module."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


#: What a docstring example does when it trains a CVAE (or runs long): such examples are ``slow``.
_DOCTEST_TRAINS = ("fit_cvae(", ".fit(", "anomaly_map(\"cvae\"", "cvae_phase_map(", "latent_mahalanobis(",
                   "plot_reconstruction(")


def pytest_collection_modifyitems(config, items):
    """Mark the library's docstring examples that train a CVAE as ``slow`` (a session-wide hook:
    it sees the doctests collected from ``hyperspy_cvae/`` too)."""
    for item in items:
        test = getattr(item, "dtest", None)  # a doctest item
        if test is not None and any(t in ex.source for ex in test.examples for t in _DOCTEST_TRAINS):
            item.add_marker(pytest.mark.slow)
