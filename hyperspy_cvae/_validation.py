"""Input checks shared by every public entry point.

Every function here raises a specific, actionable error rather than letting a
wrong calibration or a wrong shape produce a silent wrong answer.
"""

from __future__ import annotations

import numpy as np

__all__ = ["energy_axis", "window_slice", "check_map_signal", "check_counts", "check_real",
           "all_spectra_identical", "check_finite_score"]


def energy_axis(signal):
    """Return the signal (energy-loss) axis after checking it is usable.

    Raises
    ------
    ValueError
        If the signal is not one-dimensional in signal space or the energy axis
        is non-uniform.
    """
    if signal.axes_manager.signal_dimension != 1:
        raise ValueError(
            "Expected a spectrum image with one signal (energy) axis, got "
            f"signal_dimension={signal.axes_manager.signal_dimension}. Use "
            "`s.as_signal1D(...)` or `s.set_signal_type('CVAE_EELS')` on a 1D signal."
        )
    axis = signal.axes_manager.signal_axes[0]
    if not axis.is_uniform:
        raise ValueError(
            f"The energy axis '{axis.name}' is non-uniform; hyperspy-cvae needs a "
            "uniform axis. Interpolate it first, e.g. "
            "`s.interpolate_on_axis(new_uniform_axis, axis=-1)`."
        )
    return axis


def _is_uncalibrated(axis) -> bool:
    units = axis.units
    no_units = units is None or str(units) in ("", "<undefined>", "<Undefined>")
    return no_units and axis.scale == 1 and axis.offset == 0


def window_slice(axis, window, *, min_channels: int = 3, name: str = "window") -> slice:
    """Convert an energy window given in axis units (eV) to a channel slice.

    Parameters
    ----------
    axis : hyperspy axis
        A uniform, calibrated energy axis.
    window : tuple of float
        ``(start, end)`` in the axis units; the end is exclusive, as in
        ``s.isig[start:end]``.
    min_channels : int
        Smallest accepted number of channels inside the window.
    name : str
        Name of the argument, used in error messages.

    Returns
    -------
    slice
        Channel slice ``start_index:end_index``.

    Raises
    ------
    ValueError
        If the axis is uncalibrated, the window is reversed, lies (partly)
        outside the axis, or covers fewer than ``min_channels`` channels.

    Examples
    --------
    >>> import hyperspy.api as hs
    >>> s = hs.signals.Signal1D(np.zeros(100))
    >>> ax = s.axes_manager[-1]
    >>> ax.scale, ax.offset, ax.units = 0.5, 680.0, "eV"
    >>> window_slice(ax, (690.0, 700.0))
    slice(20, 40, None)
    """
    if window is None or len(window) != 2:
        raise ValueError(f"`{name}` must be a (start, end) pair in {axis.units}, got {window!r}.")
    lo, hi = (float(w) for w in window)
    if _is_uncalibrated(axis):
        raise ValueError(
            f"The energy axis is uncalibrated (scale 1, offset 0, no units) but `{name}` "
            f"was given in physical units {window!r}. Calibrate it first, e.g. "
            "`ax = s.axes_manager.signal_axes[0]; ax.scale = 0.3; ax.offset = 420.; "
            "ax.units = 'eV'`."
        )
    first = float(axis.axis[0])
    last = float(axis.axis[-1]) + axis.scale
    axis_range = f"the axis covers {first:g}–{last:g} {axis.units}"
    if not np.isfinite([lo, hi]).all() or hi <= lo:
        raise ValueError(f"`{name}` {window!r} is reversed or empty; {axis_range}.")
    tol = 1e-6 * abs(axis.scale)
    if lo < first - tol or hi > last + tol:
        raise ValueError(f"`{name}` {window!r} lies outside the energy axis; {axis_range}.")
    i0 = int(np.clip(np.round((lo - axis.offset) / axis.scale), 0, axis.size))
    i1 = int(np.clip(np.round((hi - axis.offset) / axis.scale), 0, axis.size))
    if i1 - i0 < min_channels:
        raise ValueError(
            f"`{name}` {window!r} covers {i1 - i0} channel(s) but at least "
            f"{min_channels} are needed; {axis_range} at {axis.scale:g} {axis.units}/channel."
        )
    return slice(i0, i1)


def check_map_signal(signal, *, min_size: int = 1, what: str = "this method"):
    """Check that ``signal`` is a 2D map of spectra (two navigation axes).

    Parameters
    ----------
    min_size : int
        Minimum number of pixels along each navigation axis (e.g. the shard
        size).
    """
    energy_axis(signal)
    check_real(signal.data, name="The signal")
    nav = signal.axes_manager.navigation_dimension
    if nav != 2:
        raise ValueError(
            f"{what} needs a spectrum image with two navigation axes (a map), got "
            f"navigation_dimension={nav}. Line scans and single spectra are not supported; "
            "for a stack of maps, apply the method to each map (`s.inav[..., i]`)."
        )
    shape = signal.axes_manager.navigation_shape[::-1]  # array order (y, x)
    if min(shape) < min_size:
        raise ValueError(
            f"The map is {shape[0]} × {shape[1]} pixels, smaller than one shard of "
            f"{min_size} × {min_size}. Pass a smaller `shard_size` (e.g. "
            f"shard_size={max(8, (min(shape) // 4) * 4)}, a multiple of 4, at least 8) or use a larger map."
        )
    return shape


def check_real(data, *, name: str = "data"):
    """Reject complex and non-numeric data (numpy or dask: only the dtype is read)."""
    dtype = np.dtype(data.dtype)
    if np.issubdtype(dtype, np.complexfloating):
        raise TypeError(f"{name} is complex ({dtype}); hyperspy-cvae needs real counts. Use the "
                        "real part or the modulus first, e.g. `s.real` or `abs(s)`.")
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise TypeError(f"{name} has dtype {dtype}; hyperspy-cvae needs real counts (integer or "
                        "float). Convert with `s.change_dtype('float32')`.")


def all_spectra_identical(data, sl):
    """True if every spectrum of ``data`` (…, E) is identical inside the channel slice ``sl``.

    Works on numpy (returns bool) and dask arrays (returns a lazy 0-d array).
    A cube of identical spectra has, by definition, no anomalous pixel.
    """
    w = data[..., sl]
    ref = w[(0,) * (w.ndim - 1)]
    return (w == ref).all()


def check_finite_score(values, *, name="The score map"):
    """Refuse a score map with NaN/inf: scores of finite data are always finite, so a
    non-finite score means NaN/inf in the data (found late in lazy data)."""
    bad = int((~np.isfinite(values)).sum())
    if bad:
        raise ValueError(
            f"{name} has {bad} NaN/inf pixel(s): the data (or its reconstruction) contain NaN or "
            "inf values. Replace them first, e.g. `s.map(np.nan_to_num)` on a copy, or crop the "
            "bad region.")


def check_counts(data, *, name: str = "data"):
    """Reject complex data and non-finite values in a numpy array.

    Lazy (dask) arrays are checked chunk by chunk by the callers' kernels.
    """
    if np.iscomplexobj(data):
        raise TypeError(f"{name} is complex; hyperspy-cvae needs real counts (take `.real` or `abs()`).")
    if isinstance(data, np.ndarray) and not np.isfinite(data).all():
        n = int((~np.isfinite(data)).sum())
        raise ValueError(
            f"{name} contains {n} NaN/inf value(s). Replace them first, e.g. "
            "`s.data = np.nan_to_num(s.data)` on a copy, or crop the bad region."
        )


def navigation_mask_array(signal, mask, *, name: str = "navigation_mask"):
    """``mask`` (bool array or Signal2D/BaseSignal of the navigation shape) as a numpy bool
    array in array order ``(y, x)``, with a clear error for a wrong shape or dtype."""
    shape = tuple(signal.axes_manager.navigation_shape[::-1])
    arr = mask.data if hasattr(mask, "axes_manager") else mask
    if hasattr(arr, "compute"):
        arr = arr.compute()
    arr = np.asarray(arr)
    if arr.dtype != bool:
        raise TypeError(f"`{name}` must be boolean (True = leave the pixel out), got dtype {arr.dtype}.")
    if arr.shape != shape:
        raise ValueError(f"`{name}` has shape {arr.shape}, expected the navigation shape {shape} "
                         "(array order y, x).")
    if arr.all():
        raise ValueError(f"`{name}` leaves out every pixel; nothing is left to score.")
    return arr
