"""Synthetic anomalies: sub-channel energy shifts of an edge in chosen pixels.

Plain array functions; :meth:`CVAEEELSSpectrum.inject_shift` wires them to a
signal.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cluster_mask", "shift_window", "window_taper"]


def cluster_mask(shape, n_clusters=6, cluster_size=6, *, gap=1, random_state=None,
                 max_tries=10000):
    """Boolean map of ``n_clusters`` non-overlapping square patches.

    Parameters
    ----------
    shape : tuple of int
        Map shape ``(ny, nx)`` (array order).
    n_clusters : int
        Number of patches.
    cluster_size : int
        Side of each square patch in pixels (1 gives single-pixel anomalies).
    gap : int
        Minimum number of clean pixels between two patches.
    random_state : int, numpy.random.Generator or None
        Seed for the patch positions.

    Returns
    -------
    numpy.ndarray of bool

    Examples
    --------
    >>> m = cluster_mask((48, 48), n_clusters=3, cluster_size=4, random_state=0)
    >>> int(m.sum())
    48
    """
    ny, nx = shape
    if cluster_size < 1 or n_clusters < 1:
        raise ValueError("`n_clusters` and `cluster_size` must be >= 1.")
    if cluster_size > min(ny, nx):
        raise ValueError(f"`cluster_size`={cluster_size} does not fit in a {ny} × {nx} map.")
    rng = np.random.default_rng(random_state)
    occupied = np.zeros((ny, nx), bool)
    mask = np.zeros((ny, nx), bool)
    placed, tries = 0, 0
    while placed < n_clusters:
        tries += 1
        if tries > max_tries:
            raise ValueError(
                f"Could not place {n_clusters} non-overlapping {cluster_size} × {cluster_size} "
                f"patches in a {ny} × {nx} map; use fewer or smaller clusters.")
        y0 = rng.integers(0, ny - cluster_size + 1)
        x0 = rng.integers(0, nx - cluster_size + 1)
        ys = slice(max(y0 - gap, 0), y0 + cluster_size + gap)
        xs = slice(max(x0 - gap, 0), x0 + cluster_size + gap)
        if occupied[ys, xs].any():
            continue
        occupied[ys, xs] = True
        mask[y0:y0 + cluster_size, x0:x0 + cluster_size] = True
        placed += 1
    return mask


def window_taper(n_channels, window, ramp):
    """Weights that are 1 inside ``window`` and ramp to 0 (raised cosine) at its ends.

    Parameters
    ----------
    n_channels : int
        Length of the spectrum.
    window : slice
        Channel slice of the window.
    ramp : int
        Width of each raised-cosine ramp in channels (inside the window).
    """
    w = np.zeros(n_channels)
    i0, i1 = window.start, window.stop
    w[i0:i1] = 1.0
    ramp = int(max(0, min(ramp, (i1 - i0) // 2)))
    if ramp:
        r = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp) + 0.5) / ramp)
        w[i0:i0 + ramp] = r
        w[i1 - ramp:i1] = r[::-1]
    return w


def shift_window(spectra, shift_channels, window, ramp=6):
    """Shift the content of ``window`` by a (fractional) number of channels.

    The shift is a count-conserving linear rebinning: the cumulative counts are
    interpolated at the shifted channel edges and differenced, so a shift of
    ``s`` channels moves intensity to higher channel indices for ``s > 0`` and a
    whole-channel shift is an exact roll of the window (no wrap-around: the
    channels that enter the window come from the spectrum beyond it, the axis
    ends being extended by their edge value). The shifted window is blended into
    the original spectrum with :func:`window_taper`, so the spectrum outside the
    window is untouched and continuous, and the counts inside the window are
    restored to their original total (the difference is distributed in
    proportion to the shifted intensity).

    Fractional shifts average neighbouring channels, which slightly smooths the
    Poisson noise of the shifted pixels. For residual scores (PCC, deviance) this
    makes the injected pixels look *more* like a smooth reconstruction, i.e. the
    injection is conservative: it never makes an anomaly easier to detect.

    Parameters
    ----------
    spectra : numpy.ndarray
        Array of shape ``(..., E)``. Not modified.
    shift_channels : float
        Shift in channels (``dE / scale``).
    window : slice
        Channel slice to shift.
    ramp : int
        Width of the blending ramps at each end of the window, in channels.

    Returns
    -------
    numpy.ndarray
        Shifted spectra, float64 unless the input is float32.

    Examples
    --------
    >>> x = np.zeros(20); x[8] = 10.0
    >>> y = shift_window(x, 2.0, slice(2, 18), ramp=1)
    >>> int(np.argmax(y)), float(y.sum())
    (10, 10.0)
    """
    x = np.asarray(spectra)
    dtype = x.dtype if x.dtype == np.float32 else np.float64
    x = x.astype(np.float64, copy=False)
    n = x.shape[-1]
    m = int(np.floor(shift_channels))
    f = shift_channels - m
    pad = abs(m) + 2
    xp = np.concatenate([np.repeat(x[..., :1], pad, axis=-1), x,
                         np.repeat(x[..., -1:], pad, axis=-1)], axis=-1)
    c = np.concatenate([np.zeros(x.shape[:-1] + (1,)), np.cumsum(xp, axis=-1)], axis=-1)
    # Shifted bin k covers original positions [k - s, k + 1 - s]; C(p) interpolated.
    edges = np.arange(n + 1) + pad  # index of channel edge k in padded coordinates
    lo = edges - m - 1
    cs = f * c[..., lo] + (1 - f) * c[..., lo + 1]
    shifted = np.diff(cs, axis=-1)

    w = window_taper(n, window, ramp)
    out = x + w * (shifted - x)
    sl = window
    deficit = x[..., sl].sum(-1) - out[..., sl].sum(-1)
    share = (w * shifted)[..., sl]
    tot = share.sum(-1)
    safe = np.where(tot > 0, tot, 1.0)
    out[..., sl] += np.where(tot > 0, deficit / safe, 0.0)[..., None] * share
    return out.astype(dtype, copy=False)


def shift_pixels(data, truth, shift_channels, window, ramp):
    """A float copy of the cube ``data`` (ny, nx, E) with the pixels of ``truth`` shifted in ``window``.

    :func:`shift_window` applied to the selected spectra; numpy in, numpy
    out (the input is not modified), dask in, dask out (block by block).
    float32 stays float32, anything else becomes float64.

    Examples
    --------
    >>> cube = np.ones((2, 2, 50))
    >>> cube[..., 20:25] = 10.0
    >>> truth = np.array([[True, False], [False, False]])
    >>> out = shift_pixels(cube, truth, 2.0, slice(10, 40), 2)
    >>> int(np.argmax(out[0, 0])), int(np.argmax(out[0, 1])), float(cube[0, 0, 20])
    (22, 20, 10.0)
    """
    dtype = data.dtype if data.dtype == np.float32 else np.float64
    if hasattr(data, "dask"):
        import dask.array as da

        data = data.rechunk({-1: -1})
        m = da.from_array(truth, chunks=data.chunks[:2])

        def _kernel(block, mblock):
            out = block.astype(dtype, copy=True)
            sel = mblock[..., 0]
            if sel.any():
                out[sel] = shift_window(block[sel], shift_channels, window, ramp)
            return out

        return da.map_blocks(_kernel, data, m[..., None], dtype=dtype)
    new = data.astype(dtype, copy=True)
    if truth.any():
        new[truth] = shift_window(data[truth], shift_channels, window, ramp)
    return new
