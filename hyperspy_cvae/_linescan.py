"""Line scans (one navigation axis) as maps of identical rows, and back.

The detector works on maps. A line scan of ``N`` pixels becomes a map of ``rows`` identical rows
(a ``row`` axis of ``rows`` pixels in front of the line's own axis): one row for PCA, RX and the
scores, a shard's height for the CVAE, whose shards then see the line's 1D context along ``x``
and the same spectra along ``y``. Results come back on the line's own axis.
"""

from __future__ import annotations

import numpy as np

from ._arrays import is_lazy

__all__ = ["is_line", "as_map", "middle_row", "as_line"]


def is_line(signal) -> bool:
    """True for a line scan: one navigation axis."""
    return signal.axes_manager.navigation_dimension == 1


def is_one_row(signal) -> bool:
    """True for a map of one row (a line scan made a map by :func:`as_map`)."""
    am = signal.axes_manager
    return am.navigation_dimension == 2 and am.navigation_shape[1] == 1


def as_map(signal, rows: int = 1):
    """The line scan ``signal`` as a map of ``rows`` identical rows (a new signal; lazy stays lazy).

    A one-row map (the result of ``as_map(line)``) is widened to ``rows`` rows the same way.

    Examples
    --------
    >>> import hyperspy.api as hs
    >>> line = hs.signals.Signal1D(np.arange(30.0).reshape(3, 10))
    >>> m = as_map(line, rows=2)
    >>> m.axes_manager.navigation_shape, bool((m.data[0] == m.data[1]).all())
    ((3, 2), True)
    """
    dicts = signal.axes_manager._get_axes_dicts()  # array order
    data = signal.data
    if is_one_row(signal):
        dicts, data = dicts[1:], data[0]
    elif not is_line(signal):
        raise ValueError("as_map takes a line scan (one navigation axis) or a one-row map.")
    row = {"name": "row", "size": int(rows), "scale": 1.0, "offset": 0.0, "units": "px", "navigate": True}
    if is_lazy(data):
        import dask.array as da

        data = da.broadcast_to(data[None], (int(rows),) + data.shape)
    else:
        data = np.repeat(np.asarray(data)[None], int(rows), axis=0)
    out = signal.__class__(data, axes=[row] + dicts, metadata=signal.metadata.as_dictionary(),
                           original_metadata=signal.original_metadata.as_dictionary())
    return out


def middle_row(signal):
    """Row ``rows // 2`` of a map of identical rows, as a one-row map (the row least affected by the
    network's zero padding at the top and bottom of a shard)."""
    rows = signal.axes_manager.navigation_shape[1]
    return signal.inav[:, rows // 2:rows // 2 + 1]


def as_line(sig):
    """A one-row map (spectra, or a score or mask image of one row) on the line's own axis."""
    if sig is None:
        return None
    am = sig.axes_manager
    if am.navigation_dimension == 2 and am.navigation_shape[1] == 1:
        return sig.inav[:, 0]
    if am.navigation_dimension == 0 and am.signal_dimension == 2 and am.signal_shape[1] == 1:
        out = sig.isig[:, 0]
        out.metadata.add_dictionary(sig.metadata.as_dictionary())
        return out
    return sig
