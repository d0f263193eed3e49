"""Latent maps on the shard grid and the pixel grid: reading them, interpolating between them,
and building maps on either grid."""

from __future__ import annotations

import numpy as np

from .._arrays import to_numpy
from .._maps import navigation_map


def latent_array(latent_map):
    """(L, gy, gx) float64 array of a latent-map Signal2D stack (or array)."""
    d = to_numpy(latent_map.data if hasattr(latent_map, "axes_manager") else latent_map, np.float64)
    if d.ndim != 3:
        raise ValueError(f"A latent map has shape (latent_dim, gy, gx), got {d.shape}; pass "
                         "`s.cvae_results['latent_map']` after `s.cvae_decomposition()`.")
    if not np.isfinite(d).all():
        raise ValueError("The latent map contains NaN or inf values.")
    return d


def pixel_grid(latent_map, navigation=None):
    """Pixel-grid description: ``{"y": {...}, "x": {...}}`` with size/scale/offset/units/name,
    plus the shard size and stride, from ``navigation`` (a signal) or the latent metadata."""
    md = latent_map.metadata.get_item("CVAE.latent", None) if hasattr(latent_map, "metadata") else None
    if md is None or "shard_size" not in md:
        raise ValueError("The latent map has no `metadata.CVAE.latent` (shard size, stride, pixel grid); "
                         "use `s.cvae_results['latent_map']` from `s.cvae_decomposition()`.")
    grid = {"shard_size": int(md["shard_size"]), "stride": int(md["stride"])}
    if navigation is not None:
        ax_x, ax_y = navigation.axes_manager.navigation_axes[:2]
        for key, ax in (("y", ax_y), ("x", ax_x)):
            grid[key] = {"size": int(ax.size), "scale": float(ax.scale), "offset": float(ax.offset),
                         "units": str(ax.units), "name": str(ax.name)}
    else:
        pg = md["pixel_grid"]
        pg = pg.as_dictionary() if hasattr(pg, "as_dictionary") else pg
        for key in ("y", "x"):
            grid[key] = dict(pg[key])
    return grid


def shard_to_pixels(values, shard_size, stride, shape, order=1):
    """Interpolate values on the shard grid onto the pixel grid.

    Shard ``(i, j)`` covers pixels ``i·stride … i·stride + shard_size - 1``
    (rows; likewise columns); its value is placed at the shard centre
    ``i·stride + (shard_size - 1)/2`` and interpolated between centres
    (``order=1``: bilinear; ``order=0``: nearest, for labels). Pixels outside
    the outermost centres take the nearest centre's value.

    Parameters
    ----------
    values : array (..., gy, gx)
        Values on the shard grid (leading axes are kept).
    shard_size, stride : int
        As in :meth:`CVAEEELSSpectrum.cvae_decomposition`.
    shape : tuple of int
        ``(ny, nx)`` of the pixel grid.
    order : {0, 1}
        Interpolation order.

    Returns
    -------
    numpy.ndarray (..., ny, nx)

    Examples
    --------
    >>> v = np.array([[0., 1.], [2., 3.]])
    >>> shard_to_pixels(v, 4, 2, (6, 6))[:, 2]
    array([0.25, 0.25, 0.75, 1.75, 2.25, 2.25])
    """
    from scipy.ndimage import map_coordinates

    values = np.asarray(values)
    ny, nx = int(shape[0]), int(shape[1])
    gy, gx = values.shape[-2:]
    c = (shard_size - 1) / 2.0
    yy = np.clip((np.arange(ny) - c) / stride, 0, gy - 1)
    xx = np.clip((np.arange(nx) - c) / stride, 0, gx - 1)
    if order == 0:
        iy, ix = np.rint(yy).astype(int), np.rint(xx).astype(int)
        return values[..., iy[:, None], ix[None, :]]
    coords = np.stack(np.meshgrid(yy, xx, indexing="ij"))
    flat = values.reshape((-1, gy, gx)).astype(np.float64)
    out = np.stack([map_coordinates(v, coords, order=1, mode="nearest") for v in flat])
    return out.reshape(values.shape[:-2] + (ny, nx))


def bulk_on_grid(bulk_mask, grid, shape_grid):
    """Boolean (gy, gx) reference mask from a pixel- or shard-grid mask (True = bulk)."""
    m = to_numpy(bulk_mask.data if hasattr(bulk_mask, "axes_manager") else bulk_mask).astype(bool)
    if m.shape == tuple(shape_grid):
        return m
    ny, nx = grid["y"]["size"], grid["x"]["size"]
    if m.shape != (ny, nx):
        raise ValueError(f"`bulk_mask` has shape {m.shape}; expected the pixel grid {(ny, nx)} or "
                         f"the shard grid {tuple(shape_grid)} (array order).")
    s, st = grid["shard_size"], grid["stride"]
    cy = np.minimum(np.arange(shape_grid[0]) * st + s // 2, ny - 1)
    cx = np.minimum(np.arange(shape_grid[1]) * st + s // 2, nx - 1)
    return m[np.ix_(cy, cx)]


def shard_signal(latent_map, data, title):
    """Signal2D on the latent map's shard grid (its signal axes)."""
    axes = latent_map.axes_manager.signal_axes
    grid = {key: axes[i].get_axis_dictionary() for key, i in (("y", 1), ("x", 0))}
    return navigation_map(grid, data, title)


def pixel_signal(data, grid, title):
    """Signal2D on the pixel grid described by ``grid`` (see :func:`pixel_grid`)."""
    return navigation_map({k: grid[k] for k in ("y", "x")}, data, title)


def latent_map_signal(latents, navigation, *, stride, shard_size, provenance):
    """Latent means on the shard grid as a Signal2D stack (one image per latent dimension).

    Parameters
    ----------
    latents : numpy or dask array (latent_dim, gy, gx)
    navigation : hyperspy signal
        The spectrum image whose navigation axes the shards were cut from.
    stride, shard_size : int
        Shard grid: shard ``(i, j)`` starts at pixel ``(i·stride, j·stride)``.
    provenance : dict
        What made the latents (model checksum, checkpoint, signal range, ...),
        stored in ``metadata.CVAE.latent`` with the shard grid.
    """
    from hyperspy.signals import Signal2D

    ax_x, ax_y = navigation.axes_manager.navigation_axes[:2]
    axes = [{"name": "latent dimension", "size": latents.shape[0], "navigate": True}]
    for ax, n in ((ax_y, latents.shape[1]), (ax_x, latents.shape[2])):
        axes.append({"name": ax.name, "units": ax.units, "size": n, "navigate": False,
                     "scale": ax.scale * stride, "offset": ax.offset + ax.scale * (shard_size - 1) / 2})
    out = Signal2D(latents, axes=axes)
    if not isinstance(latents, np.ndarray) and not out._lazy:
        out = out.as_lazy()
    out.metadata.General.title = "CVAE latent means (shard centres)"
    grid = {key: {"size": int(ax.size), "scale": float(ax.scale), "offset": float(ax.offset),
                  "units": str(ax.units), "name": str(ax.name)} for key, ax in (("y", ax_y), ("x", ax_x))}
    info = {"shard_size": int(shard_size), "stride": int(stride), "pixel_grid": grid}
    info.update(provenance)
    out.metadata.set_item("CVAE.latent", info)
    return out
