"""The one builder of 2D maps on a spectrum image's navigation grid (scores, masks, truths)."""

from __future__ import annotations

import numpy as np

from ._arrays import is_lazy

__all__ = ["navigation_map"]


def navigation_map(like, data, title, *, metadata=None):
    """A ``Signal2D`` holding ``data`` (array order ``(ny, nx)``) on a navigation grid.

    Parameters
    ----------
    like : hyperspy signal or dict
        Where the grid comes from: a spectrum image (its navigation axes), a
        map with two signal axes (its axes and metadata are copied), or a grid
        description ``{"y": {...}, "x": {...}}`` of axis dictionaries.
    data : numpy or dask array (ny, nx)
        The values; a dask array gives a lazy map.
    title : str
        ``metadata.General.title`` of the map.
    metadata : dict, optional
        Items set with ``metadata.set_item`` (dotted keys).

    Examples
    --------
    >>> import hyperspy.api as hs
    >>> s = hs.signals.Signal1D(np.zeros((3, 4, 10)))
    >>> navigation_map(s, np.ones((3, 4)), "ones").axes_manager.signal_shape
    (4, 3)
    """
    from hyperspy.signals import Signal2D

    if isinstance(like, dict):
        out = Signal2D(np.asarray(data), axes=[dict(like[k], navigate=False) for k in ("y", "x")])
    elif like.axes_manager.navigation_dimension:
        out = like._get_navigation_signal(data=data)
    else:
        out = Signal2D(data, axes=like.axes_manager._get_axes_dicts(),
                       metadata=like.metadata.as_dictionary())
        if is_lazy(data):
            out = out.as_lazy()
    out.metadata.General.title = title
    for key, value in (metadata or {}).items():
        out.metadata.set_item(key, value)
    return out
