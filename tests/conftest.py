import hashlib

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _no_progressbar():
    import hyperspy.api as hs

    old = hs.preferences.General.show_progressbar
    hs.preferences.General.show_progressbar = False
    yield
    hs.preferences.General.show_progressbar = old


def data_hash(signal):
    d = signal.data
    d = d.compute() if hasattr(d, "compute") else d
    return hashlib.sha256(np.ascontiguousarray(d).tobytes()).hexdigest()


@pytest.fixture(scope="session")
def small_cube():
    """48 × 48 map, 640–760 eV (400 channels) around Fe L2,3."""
    from hyperspy_cvae.data import bifeo3_si

    return bifeo3_si((48, 48), offset=640.0, size=400, random_state=0)


def assert_doctests_pass(obj):
    """Run the numpydoc Examples of ``obj`` as written, in the namespace of its module."""
    import doctest
    import sys

    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in doctest.DocTestFinder(recurse=False).find(obj, globs=dict(vars(sys.modules[obj.__module__]))):
        runner.run(test)
    assert runner.tries > 0 and runner.failures == 0, obj.__qualname__
