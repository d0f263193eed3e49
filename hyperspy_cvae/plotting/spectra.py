"""Example spectra with their reconstructions around the scoring window."""

from __future__ import annotations

import numpy as np

from .._arrays import values_of as _values

__all__ = ["example_pixels", "plot_example_spectra"]


def example_pixels(score, mask=None, truth=None):
    """Array indices ``(normal, anomalous)`` of two representative pixels, and the kind
    of the anomalous one.

    The anomalous example is the most anomalous pixel among the true anomalies
    when ``truth`` is given (``"anomalous (truth)"``), else among the flagged
    pixels (``"flagged"``), else overall (``"lowest score"`` or
    ``"highest score"``). The normal example is the pixel, neither flagged nor
    truly anomalous, whose score is the median of those pixels.

    Examples
    --------
    >>> v = np.array([[0.9, 0.95], [0.2, 0.97]])
    >>> example_pixels(v)
    ((0, 1), (1, 0), 'lowest score')
    """
    v = _values(score).astype(float)
    high = (score.metadata.get_item("CVAE.score.anomalous", "low") == "high"
            if hasattr(score, "metadata") else False)
    a = np.where(np.isfinite(v), v if high else -v, -np.inf)
    m = np.zeros(v.shape, bool) if mask is None else _values(mask).astype(bool)
    t = np.zeros(v.shape, bool) if truth is None else _values(truth).astype(bool)
    if t.any():
        pool, kind = t, "anomalous (truth)"
    elif m.any():
        pool, kind = m, "flagged"
    else:
        pool, kind = np.ones(v.shape, bool), "highest score" if high else "lowest score"
    anomalous = np.unravel_index(np.argmax(np.where(pool, a, -np.inf)), v.shape)
    rest = ~m & ~t & np.isfinite(v)
    rest[anomalous] = False
    vals = np.where(rest, v, np.nan)
    med = np.nanmedian(vals)
    normal = np.unravel_index(np.nanargmin(np.abs(vals - med)), v.shape)
    return tuple(int(i) for i in normal), tuple(int(i) for i in anomalous), kind


def plot_example_spectra(original, reconstruction, score, mask=None, window=None, ax=None,
                         margin=10.0, pixels=None, truth=None):
    """A normal and an anomalous spectrum with their reconstructions in the window.

    Parameters
    ----------
    original, reconstruction : hyperspy Signal1D
        Spectrum image and its reconstruction (the reconstruction may cover
        only part of the energy axis, e.g. a CVAE's ``signal_range``).
    score : Signal2D
        Score map used to pick the examples (see :func:`example_pixels`).
    mask : Signal2D of bool, optional
    window : tuple of float, optional
        Scoring window in eV (shaded); default ``score.metadata.CVAE.score.window``.
    ax : matplotlib axes, optional
    margin : float
        eV shown on each side of the window.
    pixels : tuple, optional
        ``((iy, ix) normal, (iy, ix) anomalous)`` to show instead.
    truth : Signal2D or array of bool, optional
        True anomalies: the anomalous example is then a true anomaly.

    Returns
    -------
    matplotlib axes
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.4))
    if window is None:
        window = score.metadata.get_item("CVAE.score.window", None)
    if pixels is not None:
        (normal, anomalous), kind = pixels, "anomalous"
    else:
        normal, anomalous, kind = example_pixels(score, mask, truth)
    v = _values(score)
    eo, er = original.axes_manager.signal_axes[0], reconstruction.axes_manager.signal_axes[0]
    lo = max(float(window[0]) - margin, float(er.axis[0])) if window is not None else float(er.axis[0])
    hi = min(float(window[1]) + margin, float(er.axis[-1])) if window is not None else float(er.axis[-1])
    so = (eo.axis >= lo) & (eo.axis <= hi)
    sr = (er.axis >= lo) & (er.axis <= hi)
    peak = 0.0
    skind = score.metadata.get_item("CVAE.score.kind", "score") if hasattr(score, "metadata") else "score"
    skind = "PCC" if skind == "pcc" else skind
    for idx, col, lab in ((normal, "tab:blue", "normal"), (anomalous, "tab:red", kind)):
        nav = tuple(int(i) for i in idx[::-1])  # inav takes (x, y); a line scan has (x,)
        spec = _values(original.inav[nav])
        rec = _values(reconstruction.inav[nav])
        where = ",".join(str(int(i)) for i in idx)
        ax.plot(eo.axis[so], spec[so], color=col, lw=0.7, alpha=0.55,
                label=f"{lab} [{where}] {skind} {v[tuple(idx)]:.3f}")
        ax.plot(er.axis[sr], rec[sr], color=col, lw=1.6, label="its reconstruction")
        peak = max(peak, float(np.nanmax(spec[so])))
    if window is not None:
        ax.axvspan(float(window[0]), float(window[1]), color="0.85", zorder=0, lw=0)
    ax.set_xlim(lo, hi)
    ax.set_ylim(0, peak * 1.35)
    ax.set_xlabel(f"{eo.name} ({eo.units})")
    ax.set_ylabel(str(original.metadata.get_item("Signal.quantity", "Intensity")))
    ax.legend(fontsize=6.5, loc="upper left", ncol=2, frameon=False)
    method = reconstruction.metadata.get_item("CVAE.reconstruction.method", "reconstruction")
    ax.set_title(f"Example spectra, {method}", fontsize=9)
    return ax
