"""Residual scores of data against a reconstruction: Pearson correlation (the paper's PCC) and
the Poisson deviance."""

from __future__ import annotations

import numpy as np

from .._validation import energy_window
from ._common import per_spectrum, provenance, reconstruction_label, score_signal

__all__ = ["pearson", "pcc_map", "poisson_deviance", "deviance_map"]


def pearson(a, b):
    """Pearson correlation of ``a`` and ``b`` along the last axis, in float64.

    Works on numpy and dask arrays (lazy in, lazy out).

    Constant spectra have no defined correlation; the convention here is: if
    both spectra are constant the correlation is 1 (the reconstruction
    reproduces a flat spectrum perfectly), if only one is constant it is 0. No
    warning is emitted and the result never contains NaN for finite input.

    Examples
    --------
    >>> float(pearson(np.array([1., 2., 3.]), np.array([2., 4., 7.])))  # doctest: +ELLIPSIS
    0.99339...
    """
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    ac = a - a.mean(axis=-1, keepdims=True)
    bc = b - b.mean(axis=-1, keepdims=True)
    saa = (ac * ac).sum(axis=-1)
    sbb = (bc * bc).sum(axis=-1)
    sab = (ac * bc).sum(axis=-1)
    # Relative tolerance: spectra whose variance is at rounding level are "constant".
    za = saa <= 1e-24 * ((a * a).sum(axis=-1) + 1e-300)
    zb = sbb <= 1e-24 * ((b * b).sum(axis=-1) + 1e-300)
    denom = (saa * sbb) ** 0.5
    safe = denom + (za | zb)  # avoid 0/0 without warnings
    r = sab / safe
    r = r * ~(za | zb) + (za & zb) * 1.0
    return r.clip(-1.0, 1.0) if hasattr(r, "clip") else np.clip(r, -1.0, 1.0)


def pcc_map(original, reconstruction, window=None):
    """Per-pixel Pearson correlation between two spectrum images inside an eV window.

    Parameters
    ----------
    original, reconstruction : hyperspy Signal1D
        Spectrum images with identical navigation shape and energy axis (e.g.
        ``s`` and ``s.get_decomposition_model(3)``).
    window : tuple of float
        ``(start, end)`` of the window in the energy-axis units (eV).

    Returns
    -------
    hyperspy Signal2D
        PCC map with the navigation calibration of ``original`` (lazy if either
        input is lazy). Low values are anomalous. See :func:`pearson` for the
        convention on constant spectra.

    Examples
    --------
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> s = bifeo3_si((24, 24), random_state=0)
    >>> s.decomposition(print_info=False)
    >>> pcc = pcc_map(s, s.get_decomposition_model(3), (690., 730.))
    >>> pcc.axes_manager.signal_shape
    (24, 24)
    """
    window = energy_window(original, window)
    r = per_spectrum(pearson, original, reconstruction, window)
    method = reconstruction_label(reconstruction)
    return score_signal(original, r, kind="pcc", anomalous="low", window=window,
                        title=f"PCC {method} {window[0]:g}-{window[1]:g} eV",
                        extra=provenance(reconstruction))


def _amplitude_matched(y, r, eps=1e-9):
    """Scale the reconstruction ``r`` to the counts of ``y`` (per spectrum, float64)."""
    y = np.asarray(y, np.float64)
    r = np.asarray(r, np.float64)
    ry = y.sum(-1, keepdims=True)
    rr = r.sum(-1, keepdims=True)
    scale = np.where(rr > 0, ry / np.where(rr > 0, rr, 1.0), 0.0)
    floor = eps * np.maximum(np.abs(ry) / y.shape[-1], 1.0)
    return y, np.maximum(r * scale, floor)


def poisson_deviance(y, r):
    """Mean Poisson deviance per channel of counts ``y`` against a reconstruction ``r``.

    The reconstruction is first rescaled to the counts of each spectrum (the
    amplitude is a nuisance: thickness, not chemistry), then

    ``D = (2 / C) · Σ_k [y_k log(y_k / μ_k) − (y_k − μ_k)]``

    over the ``C`` channels of the last axis (``0 log 0 = 0``; negative counts
    are clipped to 0). Under a correct model ``D ≈ 1`` whatever the dose (to
    within ≈ 1/(6 μ) for mean counts μ ≳ 5 per channel), so
    unlike PCC it does not flag pixels where the edge is weak or absent: high
    values are anomalous. A spectrum without counts (after clipping) has no
    deviance: NaN.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> mu = np.full((2000, 100), 50.0)
    >>> d = poisson_deviance(rng.poisson(mu), mu)
    >>> round(float(d.mean()), 1)
    1.0
    """
    y, mu = _amplitude_matched(np.clip(y, 0, None), r)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0)
    d = 2.0 * (t - (y - mu)).sum(-1) / y.shape[-1]
    return np.where(y.sum(-1) > 0, d, np.nan)  # no counts: nothing to compare, not a perfect fit


def deviance_map(original, reconstruction, window=None):
    """Per-pixel Poisson deviance per channel between data and reconstruction in a window.

    A noise-aware alternative to :func:`pcc_map` (see :func:`poisson_deviance`):
    ≈ 1 where the reconstruction explains the counts, high where it does not.
    It stays ≈ 1 where the edge is weak or absent (substrate, holes), where PCC
    measures noise and drops.

    Parameters
    ----------
    original, reconstruction : hyperspy Signal1D
        Counts and their reconstruction, same navigation shape and energy axis.
    window : tuple of float
        Energy window in eV.

    Returns
    -------
    hyperspy Signal2D
        Deviance map (``metadata.CVAE.score.anomalous == "high"``).

    Examples
    --------
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> s = bifeo3_si((24, 24), random_state=0)
    >>> s.decomposition(print_info=False)
    >>> dev = deviance_map(s, s.get_decomposition_model(3), (690., 730.))
    >>> 0.8 < float(dev.data.mean()) < 1.3
    True
    """
    window = energy_window(original, window)
    d = per_spectrum(poisson_deviance, original, reconstruction, window)
    method = reconstruction_label(reconstruction)
    return score_signal(original, d, kind="deviance", anomalous="high", window=window,
                        extra=dict(provenance(reconstruction), nan_means="no counts in the window"),
                        title=f"Poisson deviance {method} {window[0]:g}-{window[1]:g} eV")


