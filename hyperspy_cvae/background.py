"""Where a core-loss edge starts and the background under it: the onset from the steepest rise of a
mean spectrum, and the pre-edge background, a power law ``A · E^-r`` fitted in log–log to chosen
channels and extrapolated (or a straight line where those channels hold values ≤ 0:
dark-subtracted data)."""

from __future__ import annotations

import numpy as np

__all__ = ["ONSET_SEARCH", "onset_from_data", "power_law_background"]

#: eV below (and above) a database onset searched for the measured one: real energy axes are
#: often offset by a few eV (the Mn L3 line of `LSMO_linescan.hspy` sits 6 eV low).
ONSET_SEARCH = (8.0, 3.0)


def onset_from_data(energy, mean_spectrum, near=None):
    """The energy of the steepest rise of the mean spectrum (smoothed over ~1 eV), anywhere or
    within ``ONSET_SEARCH`` of ``near``; the rise starts about half a line width before it, so
    the onset is put 1 eV lower.

    Examples
    --------
    >>> e = np.arange(680.0, 740.0, 0.3)
    >>> round(onset_from_data(e, 100 * (e / 680.0) ** -3 + 50 * (e > 708.0)), 1)   # the step at 708 eV
    707.2
    """
    energy = np.asarray(energy, float)
    width = max(3, int(round(1.0 / max(float(np.diff(energy[:2])[0]), 1e-9))) | 1)
    smooth = np.convolve(mean_spectrum, np.ones(width) / width, mode="same")
    grad = np.gradient(smooth)
    grad[:width], grad[-width:] = -np.inf, -np.inf
    if near is not None:
        grad[(energy < near - ONSET_SEARCH[0]) | (energy > near + ONSET_SEARCH[1])] = -np.inf
        if not np.isfinite(grad).any():
            return float(near)
    return float(energy[int(np.argmax(grad))]) - 1.0


def power_law_background(energy, spectra, fit, at=None):
    """Per-spectrum background fitted to the channels ``fit`` and evaluated at the channels ``at``.

    Parameters
    ----------
    energy : array (E,)
        Energy axis (eV).
    spectra : array (n, E)
        Spectra, one per row.
    fit : bool array (E,)
        Channels the background is fitted to (at least 2; the pre-edge).
    at : bool array (E,), optional
        Channels it is evaluated at (default: all).

    Returns
    -------
    array (n, E_at)
        A power law where every fitted value of the spectrum is > 0 (least squares in log–log),
        else a straight line (least squares).

    Examples
    --------
    >>> e = np.arange(80.0, 120.0, 0.5)
    >>> y = np.stack([1e4 * (e / 80.0) ** -4, 0.2 - 0.02 * (e - 80.0)])   # ... and a line through 0
    >>> bg = power_law_background(e, y, e < 95)
    >>> bool(np.allclose(bg[0], y[0])), bool(np.allclose(bg[1], y[1]))
    (True, True)
    """
    energy = np.asarray(energy, float)
    fit = np.asarray(fit, bool)
    at = np.ones(energy.size, bool) if at is None else np.asarray(at, bool)
    y = np.asarray(spectra, float)[:, fit]
    positive = (y > 0).all(1)
    X_log = np.stack([np.ones(fit.sum()), np.log(energy[fit])], 1)
    X_lin = np.stack([np.ones(fit.sum()), energy[fit]], 1)
    bg = np.empty((y.shape[0], int(at.sum())))
    if positive.any():
        coef = np.linalg.lstsq(X_log, np.log(y[positive]).T, rcond=None)[0]
        bg[positive] = np.exp(coef[0][:, None] + coef[1][:, None] * np.log(energy[at])[None])
    if (~positive).any():
        coef = np.linalg.lstsq(X_lin, y[~positive].T, rcond=None)[0]
        bg[~positive] = coef[0][:, None] + coef[1][:, None] * energy[at][None]
    return bg
