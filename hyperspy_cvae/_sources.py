"""Is a lazy signal's file still there? Checks run before every long lazy fit or scoring run.

A lazy signal reads its file (``.zspy`` zarr store, ``.hspy`` HDF5) only when computed. If the
store was deleted, truncated or overwritten after ``hs.load(..., lazy=True)``, zarr returns its
fill value (zeros) for every missing chunk: the package would fit and score zeros without a
word. These checks turn that into an error.
"""

from __future__ import annotations

import hashlib
import itertools
import os

import numpy as np

__all__ = ["check_lazy_source"]


def _sources(data):
    """The zarr arrays and h5py datasets a dask array reads from."""
    out = []
    for value in dict(data.dask).values():
        kind = type(value).__module__.split(".")[0]
        if kind in ("zarr", "h5py") and hasattr(value, "shape"):
            out.append(value)
    return out


def _describe(src):
    store = getattr(src, "store", None)
    path = getattr(store, "path", None)
    if path is None and hasattr(src, "file"):
        path = src.file.filename
    return str(path) if path else repr(src)


def _check_zarr(src, expected_shape):
    import zarr

    where = _describe(src)
    path = getattr(src.store, "path", None)
    if path and not os.path.exists(path):
        raise ValueError(f"The lazy signal's zarr store {where} no longer exists; reload the file "
                         "(`hs.load(..., lazy=True)`) or compute the signal before deleting it.")
    try:
        now = zarr.open_array(store=src.store, path=src.path, mode="r")
    except Exception as err:  # store replaced by something that is not this array
        raise ValueError(f"The lazy signal's zarr store {where} cannot be read as the array it was "
                         f"loaded from ({type(err).__name__}); it was overwritten. Reload the file.") from err
    if (tuple(now.shape) != tuple(expected_shape) or now.dtype != src.dtype
            or tuple(now.chunks) != tuple(src.chunks)):
        raise ValueError(f"The lazy signal's zarr store {where} was overwritten: it now holds "
                         f"{now.dtype} {tuple(now.shape)} in chunks {tuple(now.chunks)}, the signal "
                         f"was loaded as {src.dtype} {tuple(expected_shape)} in chunks "
                         f"{tuple(src.chunks)}. Reload the file.")
    grid = [range(-(-n // c)) for n, c in zip(now.shape, now.chunks)]
    keys = (now._chunk_key(idx) for idx in itertools.product(*grid))
    missing = sum(1 for key in keys if key not in now.chunk_store)
    if missing > 0:
        raise ValueError(f"The lazy signal's zarr store {where} lacks {missing} of its {now.nchunks} "
                         "chunks (deleted or truncated); zarr would read them as zeros. Reload or "
                         "rewrite the file.")


def _check_h5(src):
    where = _describe(src)
    if not src.id.valid:
        raise ValueError(f"The lazy signal's HDF5 file {where} was closed; reload it with "
                         "`hs.load(..., lazy=True)`.")
    if not os.path.exists(src.file.filename):
        raise ValueError(f"The lazy signal's HDF5 file {where} no longer exists; reload the file or "
                         "compute the signal before deleting it.")


def _fingerprint(data):
    """SHA-256 of the first navigation chunk's first spectra (one small read)."""
    block = data[tuple(slice(0, c[0]) for c in data.chunks[:-1]) + (slice(None),)]
    sample = np.asarray(block[(0,) * (block.ndim - 1)].compute())
    return hashlib.sha256(np.ascontiguousarray(sample).tobytes()).hexdigest()


def check_lazy_source(signal):
    """Raise ``ValueError`` if the file behind a lazy signal vanished, lost chunks or changed.

    Eager signals pass. The first check on a signal records a fingerprint of a
    small sample (one spectrum); later checks compare it, so a store that is
    overwritten between two runs is caught too.

    Examples
    --------
    >>> import os, shutil, tempfile
    >>> import hyperspy.api as hs
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> path = os.path.join(tempfile.mkdtemp(), "map.zspy")
    >>> bifeo3_si((16, 16), random_state=0).isig[680.:700.].save(path)
    >>> lazy = hs.load(path, lazy=True)
    >>> check_lazy_source(lazy)
    >>> shutil.rmtree(path)
    >>> check_lazy_source(lazy)
    Traceback (most recent call last):
    ...
    ValueError: The lazy signal's zarr store ... no longer exists; ...
    """
    if not getattr(signal, "_lazy", False) or not hasattr(signal.data, "dask"):
        return
    for src in _sources(signal.data):
        if type(src).__module__.startswith("zarr"):
            _check_zarr(src, src.shape)
        else:
            _check_h5(src)
    try:
        fp = _fingerprint(signal.data)
    except (OSError, ValueError, RuntimeError) as err:
        raise ValueError(f"The file behind this lazy signal cannot be read any more "
                         f"({type(err).__name__}: {err}); reload it with `hs.load(..., lazy=True)`.") from err
    known = getattr(signal, "_cvae_source_fingerprint", None)
    if known is not None and known[0] == id(signal.data) and known[1] != fp:
        raise ValueError("The file behind this lazy signal changed since it was first read (a sample "
                         "spectrum differs); reload it with `hs.load(..., lazy=True)`.")
    signal._cvae_source_fingerprint = (id(signal.data), fp)
