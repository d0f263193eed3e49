"""Denoising error of a reconstruction against a noise-free truth.

The reconstruction of :meth:`CVAEEELSSpectrum.cvae_decomposition` (or of PCA,
``get_decomposition_model(k)``) is a denoised spectrum image. On synthetic data
(:func:`hyperspy_cvae.synthetic.bifeo3_si` with ``return_expected=True``) the
noise-free expected counts are known, so the denoising quality is measured
directly as the mean squared error against them.
"""

from __future__ import annotations

import numpy as np

from .._arrays import compute_all
from .._validation import energy_axis, energy_window

__all__ = ["denoising_mse"]


def _channel_range(reconstruction, truth):
    """Index range of ``truth``'s energy axis that matches ``reconstruction``'s channels."""
    a, b = energy_axis(reconstruction), energy_axis(truth)
    if not np.isclose(a.scale, b.scale, rtol=1e-6):
        raise ValueError(f"The reconstruction has {a.scale:g} {a.units}/channel and the truth "
                         f"{b.scale:g} {b.units}/channel; they must share the energy axis.")
    start = (a.offset - b.offset) / b.scale
    i0 = int(round(start))
    if abs(start - i0) > 0.01 or i0 < 0 or i0 + a.size > b.size:
        raise ValueError(
            f"The reconstruction's energy range ({a.offset:g} eV + {a.size} × {a.scale:g} eV) is not a "
            f"channel-aligned part of the truth's ({b.offset:g} eV + {b.size} × {b.scale:g} eV).")
    return i0


def denoising_mse(reconstruction, truth, window=None, *, per_pixel=False):
    """Mean squared error of a reconstruction against the noise-free truth.

    Parameters
    ----------
    reconstruction : hyperspy Signal1D
        Denoised spectrum image, e.g. ``s.cvae_decomposition()`` (which covers
        only the model's energy range) or ``s.get_decomposition_model(3)``.
    truth : hyperspy Signal1D
        Noise-free expected counts on the same navigation grid, e.g. the
        second output of ``bifeo3_si(..., return_expected=True)``; its energy
        axis must contain the reconstruction's channels (it is cropped to them).
    window : tuple of float, optional
        ``(start, end)`` in eV; default: the reconstruction's whole range.
    per_pixel : bool
        Return a map of the per-pixel MSE (mean over the channels) instead of
        the overall mean.

    Returns
    -------
    float or Signal2D
        MSE in counts² (per channel and pixel); with ``per_pixel`` a map
        calibrated like the navigation axes, ``metadata.CVAE.denoising``
        recording the method and window. Lazy inputs are computed.

    Examples
    --------
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> s, truth = bifeo3_si((24, 24), random_state=0, return_expected=True)
    >>> s.decomposition(print_info=False)
    >>> mse_pca = denoising_mse(s.get_decomposition_model(3), truth, (690., 730.))
    >>> mse_raw = denoising_mse(s, truth, (690., 730.))
    >>> bool(mse_pca < mse_raw / 5)
    True
    """
    if reconstruction.axes_manager.navigation_shape != truth.axes_manager.navigation_shape:
        raise ValueError(
            "The reconstruction and the truth have different navigation shapes "
            f"{reconstruction.axes_manager.navigation_shape} vs {truth.axes_manager.navigation_shape}.")
    i0 = _channel_range(reconstruction, truth)
    axis = energy_axis(reconstruction)
    sl = energy_window(reconstruction, window).slice if window is not None else slice(0, axis.size)
    r = reconstruction.data[..., sl]
    t = truth.data[..., i0 + sl.start:i0 + sl.stop]
    r, t = (np.asarray(x, np.float64) for x in compute_all(r, t))
    err = ((r - t) ** 2).mean(axis=-1)
    if not per_pixel:
        return float(err.mean())
    out = reconstruction._get_navigation_signal(data=err)
    if out._lazy:
        out.compute()
    method = reconstruction.metadata.get_item("CVAE.reconstruction.method", "reconstruction")
    lo = float(axis.offset + sl.start * axis.scale)
    hi = float(axis.offset + sl.stop * axis.scale)
    out.metadata.General.title = f"Denoising MSE {method} {lo:g}-{hi:g} eV"
    out.metadata.set_item("CVAE.denoising", {"method": method, "window": [lo, hi], "mse": float(err.mean())})
    return out
