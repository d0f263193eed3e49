"""Helpers shared by every score: the energy-axis check, the per-spectrum map over a window,
the score map's metadata, the reconstruction's provenance and spectra on a window's axis."""

from __future__ import annotations

import numpy as np

from .._arrays import is_lazy
from .._maps import navigation_map
from .._validation import energy_axis, energy_window
from .._version import __version__

__all__ = ["score_signal", "reconstruction_label"]


def check_same_energy_axis(original, reconstruction):
    """The common energy axis of two spectrum images (same range and navigation shape), or a
    ``ValueError`` saying how they differ."""
    a, b = energy_axis(original), energy_axis(reconstruction)
    if a.size != b.size or not np.isclose(a.offset, b.offset) or not np.isclose(a.scale, b.scale):
        raise ValueError(
            "The original and the reconstruction have different energy axes "
            f"({a.offset:g} eV + {a.size} × {a.scale:g} eV vs {b.offset:g} eV + "
            f"{b.size} × {b.scale:g} eV); crop both to the same range first.")
    if original.axes_manager.navigation_shape != reconstruction.axes_manager.navigation_shape:
        raise ValueError(
            "The original and the reconstruction have different navigation shapes "
            f"{original.axes_manager.navigation_shape} vs "
            f"{reconstruction.axes_manager.navigation_shape}.")
    return a


def score_signal(like, data, *, kind, anomalous, window, title, extra=None):
    """A score array on the navigation grid of ``like``, as a calibrated score map.

    Parameters
    ----------
    like : hyperspy signal
        The spectrum image the scores belong to (its navigation axes).
    data : numpy or dask array (ny, nx)
        One score per pixel; a dask array gives a lazy map.
    kind : str
        Name of the score (``metadata.CVAE.score.kind``).
    anomalous : {"low", "high", "both"}
        Which end of the score is anomalous.
    window : EnergyWindow or (float, float)
        Energy window the score was computed in (eV).
    title : str
    extra : dict, optional
        More ``metadata.CVAE.score`` items (method, provenance, ...).

    Returns
    -------
    hyperspy Signal2D
        With ``metadata.CVAE.score`` = ``{kind, anomalous, window, **extra}``.

    Examples
    --------
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> s = bifeo3_si((8, 8), random_state=0)
    >>> z = score_signal(s, np.zeros((8, 8)), kind="mine", anomalous="high",
    ...                  window=(690., 730.), title="My score")
    >>> z.metadata.CVAE.score.kind, z.metadata.CVAE.score.window
    ('mine', [690.0, 730.0])
    """
    info = {"kind": kind, "anomalous": anomalous, "window": [float(window[0]), float(window[1])]}
    info.update(extra or {})
    return navigation_map(like, data, title, metadata={"CVAE.score": info})


def per_spectrum(func, original, reconstruction, window):
    """``func(a, b)`` → one value per spectrum, on the window of both signals (lazy if either is)."""
    check_same_energy_axis(original, reconstruction)
    sl = energy_window(original, window).slice
    a = original.data[..., sl]
    b = reconstruction.data[..., sl]
    if is_lazy(a) or is_lazy(b):
        import dask.array as da

        a = da.asarray(a).rechunk({-1: -1})  # whole spectra in one block
        b = da.asarray(b).rechunk(a.chunks)
        return da.map_blocks(func, a, b, drop_axis=a.ndim - 1, dtype=np.float64)
    return func(a, b)


def reconstruction_label(reconstruction):
    """The method that made a reconstruction (``metadata.CVAE.reconstruction.method``)."""
    return reconstruction.metadata.get_item("CVAE.reconstruction.method", "reconstruction")


def provenance(reconstruction):
    """What produced a reconstruction (for score metadata): method, model, versions."""
    rmd = reconstruction.metadata.get_item("CVAE.reconstruction", None)
    info = {"method": reconstruction_label(reconstruction), "package_version": __version__}
    if rmd is not None:
        for key in ("model_checksum", "checkpoint", "n_components", "signal_range"):
            if rmd.has_item(key) and rmd.get_item(key) is not None:
                info[key] = rmd.get_item(key)
    return info


def window_spectrum(like, values, window, title):
    """``values`` (one per channel of ``window``) as a Signal1D on the energy axis of ``like``
    inside the window (a learned change, a mean spectrum)."""
    from hyperspy.signals import Signal1D

    ax = like.axes_manager.signal_axes[0]
    out = Signal1D(np.asarray(values))
    e = out.axes_manager[0]
    e.scale, e.offset, e.units, e.name = ax.scale, float(ax.axis[window.slice][0]), ax.units, ax.name
    out.metadata.General.title = title
    return out
