"""Numpy/dask helpers: one home for "is it lazy?" and "give me the numbers"."""

from __future__ import annotations

import numpy as np

__all__ = ["is_lazy", "to_numpy", "values_of", "compute_all"]


def is_lazy(x) -> bool:
    """True for a dask array (or anything with a dask graph)."""
    return hasattr(x, "dask")


def to_numpy(x, dtype=None):
    """``x`` as a numpy array, computing it first if it is a dask array."""
    if hasattr(x, "compute"):
        x = x.compute()
    return np.asarray(x, dtype=dtype)


def values_of(x, dtype=None):
    """The numbers of a signal (its ``data``) or of an array, as numpy."""
    if hasattr(x, "data") and hasattr(x, "axes_manager"):
        x = x.data
    return to_numpy(x, dtype)


def compute_all(*xs):
    """Compute several arrays in one dask pass (numpy ones are returned as they are)."""
    if not any(is_lazy(x) for x in xs):
        return xs
    import dask

    return dask.compute(*xs)
