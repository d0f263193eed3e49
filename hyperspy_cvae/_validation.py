"""Input checks shared by every public entry point.

Every function here raises a specific, actionable error rather than letting a
wrong calibration or a wrong shape produce a silent wrong answer.
"""

from __future__ import annotations

import numpy as np

__all__ = ["energy_axis", "EnergyWindow", "energy_window", "check_map_signal", "check_counts", "check_real",
           "all_spectra_identical", "check_finite_score", "navigation_mask_array", "pixel_mask",
           "crop_energy", "crop_to_model"]


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


class EnergyWindow:
    """An energy range in eV and its channel slice on one calibrated axis.

    Made once where the user's window enters the package, validated there,
    and passed down: the maths reads :attr:`slice`, the metadata reads
    :meth:`as_list`, titles read :attr:`label`. :meth:`on` gives the same
    eV range on another axis (e.g. a signal cropped to a model's range).

    Parameters
    ----------
    axis : hyperspy axis
        A uniform, calibrated energy axis.
    window : tuple of float or EnergyWindow
        ``(start, end)`` in the axis units; the end is exclusive, as in
        ``s.isig[start:end]``.
    min_channels : int
        Smallest accepted number of channels inside the window.
    name : str
        Name of the argument, used in error messages.
    axis_name : str
        What the axis is, for error messages (e.g. "the model's energy range").

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
    >>> w = EnergyWindow(ax, (690.0, 700.0))
    >>> w.slice, w.as_list(), w.label
    (slice(20, 40, None), [690.0, 700.0], '690-700 eV')
    >>> w[0], w[1]
    (690.0, 700.0)
    """

    def __init__(self, axis, window, *, min_channels: int = 3, name: str = "window",
                 axis_name: str = "the energy axis"):
        if isinstance(window, EnergyWindow):
            window = (window.start, window.end)
        if window is None or len(window) != 2:
            raise ValueError(f"`{name}` must be a (start, end) pair in {axis.units}, got {window!r}.")
        lo, hi = (float(w) for w in window)
        if _is_uncalibrated(axis):
            raise ValueError(
                f"The energy axis is uncalibrated (scale 1, offset 0, no units) but `{name}` "
                f"was given in physical units {tuple(window)!r}. Calibrate it first, e.g. "
                "`ax = s.axes_manager.signal_axes[0]; ax.scale = 0.3; ax.offset = 420.; "
                "ax.units = 'eV'`."
            )
        first = float(axis.axis[0])
        last = float(axis.axis[-1]) + axis.scale
        where = "the axis" if axis_name == "the energy axis" else axis_name
        axis_range = f"{where} covers {first:g}–{last:g} {axis.units}"
        if not np.isfinite([lo, hi]).all() or hi <= lo:
            raise ValueError(f"`{name}` {tuple(window)!r} is reversed or empty; {axis_range}.")
        tol = 1e-6 * abs(axis.scale)
        if lo < first - tol or hi > last + tol:
            raise ValueError(f"`{name}` {tuple(window)!r} lies outside {axis_name}; {axis_range}.")
        i0 = int(np.clip(np.round((lo - axis.offset) / axis.scale), 0, axis.size))
        i1 = int(np.clip(np.round((hi - axis.offset) / axis.scale), 0, axis.size))
        if i1 - i0 < min_channels:
            raise ValueError(
                f"`{name}` {tuple(window)!r} covers {i1 - i0} channel(s) but at least "
                f"{min_channels} are needed; {axis_range} at {axis.scale:g} {axis.units}/channel."
            )
        self.start, self.end = lo, hi
        self.slice = slice(i0, i1)
        self.units = str(axis.units) if str(axis.units) not in ("", "<undefined>") else "eV"
        self.scale = float(axis.scale)
        self._axis_key = (float(axis.offset), float(axis.scale), int(axis.size))
        self._options = {"min_channels": min_channels, "name": name}

    def on(self, axis, *, axis_name: str = "the energy axis"):
        """The same eV range on ``axis`` (itself when ``axis`` is the one it was made on)."""
        if (float(axis.offset), float(axis.scale), int(axis.size)) == self._axis_key:
            return self
        return EnergyWindow(axis, (self.start, self.end), axis_name=axis_name, **self._options)

    @property
    def n_channels(self) -> int:
        return self.slice.stop - self.slice.start

    @property
    def label(self) -> str:
        return f"{self.start:g}-{self.end:g} {self.units}"

    def as_list(self):
        """``[start, end]`` in eV, for metadata."""
        return [self.start, self.end]

    def __getitem__(self, i):
        return (self.start, self.end)[i]

    def __len__(self):
        return 2

    def __iter__(self):
        return iter((self.start, self.end))

    def __repr__(self):
        return f"EnergyWindow({self.start:g}, {self.end:g} {self.units}; channels {self.slice.start}:{self.slice.stop})"


def energy_window(signal, window, **kwargs):
    """``window`` (a pair in eV or an :class:`EnergyWindow`) on the energy axis of ``signal``.

    An :class:`EnergyWindow` already made on that axis is returned as it is. ``None`` takes the
    window of the edges in ``metadata.Sample.elements``, or raises listing the edges in the axis
    (:func:`hyperspy_cvae.edges.resolve_window`).
    """
    if window is None:
        from .edges import resolve_window

        window, _ = resolve_window(signal)
    axis = energy_axis(signal)
    if isinstance(window, EnergyWindow):
        return window.on(axis, **{k: v for k, v in kwargs.items() if k == "axis_name"})
    return EnergyWindow(axis, window, **kwargs)


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
            f"navigation_dimension={nav}. Single spectra are not supported; "
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


def pixel_mask(signal, mask, *, name: str, meaning: str):
    """``mask`` (bool array or a signal of the navigation shape) as a numpy bool array in array
    order ``(y, x)`` (a copy), with a clear error for a wrong shape or a non-boolean dtype.

    ``meaning`` says what True means, for the error message (e.g. "True = leave the pixel out").
    """
    shape = tuple(signal.axes_manager.navigation_shape[::-1])
    arr = mask.data if hasattr(mask, "axes_manager") else mask
    if hasattr(arr, "compute"):
        arr = arr.compute()
    arr = np.array(arr)
    if arr.dtype != bool:
        raise TypeError(f"`{name}` must be boolean ({meaning}), got dtype {arr.dtype}; e.g. "
                        f"`{name}=values > threshold`.")
    if arr.shape != shape:
        raise ValueError(f"`{name}` has shape {arr.shape}, expected the navigation shape {shape} "
                         "(array order y, x).")
    return arr


def navigation_mask_array(signal, mask, *, name: str = "navigation_mask"):
    """:func:`pixel_mask` of a mask of pixels to leave out (True), which must leave some."""
    arr = pixel_mask(signal, mask, name=name, meaning="True = leave the pixel out")
    if arr.all():
        raise ValueError(f"`{name}` leaves out every pixel; nothing is left to score.")
    return arr


def crop_energy(signal, signal_range):
    """``signal`` cropped to ``signal_range`` (eV) and the range actually kept, on whole channels.

    None keeps the whole axis. Returns ``(cropped signal, (start, end))``.
    """
    axis = energy_axis(signal)
    if signal_range is None:
        return signal, (float(axis.axis[0]), float(axis.axis[-1] + axis.scale))
    sl = EnergyWindow(axis, signal_range, min_channels=16, name="signal_range").slice
    lo = float(axis.offset + sl.start * axis.scale)
    return signal.isig[sl.start:sl.stop], (lo, lo + (sl.stop - sl.start) * axis.scale)


def crop_to_model(signal, cvae):
    """``signal`` cropped to the energy channels a fitted CVAE was trained on.

    Raises ``ValueError`` if the dispersion or the channel alignment differs
    from the training axis, or the data do not cover the model's range.
    """
    axis = energy_axis(signal)
    cvae.check_energy_axis(axis.offset, axis.scale)
    tr = cvae.energy_axis_
    i0 = int(round((tr["offset"] - axis.offset) / axis.scale))
    i1 = i0 + cvae.n_channels_
    if i0 < 0 or i1 > axis.size:
        last = axis.offset + axis.size * axis.scale
        raise ValueError(
            f"The model was trained on {tr['offset']:g}–{tr['offset'] + cvae.n_channels_ * axis.scale:g} "
            f"{axis.units} but the data cover {axis.offset:g}–{last:g} {axis.units}.")
    return signal.isig[i0:i1]
