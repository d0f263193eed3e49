"""Shard geometry: cutting spectrum images into shards and stitching them back.

Shards are ``S × S`` windows of the map (all energy channels). On a regular
grid of top-left positions ``0, stride, 2·stride, …`` the map is first padded
at its far edges by reflection so that the last shard ends exactly at the
padded edge; overlapping shards are blended with a separable raised-cosine
(Hann) weight, which for ``stride = S/2`` is a partition of unity: no seams.
"""

from __future__ import annotations

import numpy as np

__all__ = ["grid_padding", "shard_positions", "checkerboard", "cut_shards", "extract_shards", "blend_weights",
           "ShardCanvas", "stitch_shards", "shard_pairs"]


def grid_padding(n: int, shard_size: int, stride: int) -> int:
    """Pixels to add at the far edge so that shards of ``stride`` tile ``n`` exactly."""
    if n < shard_size:
        raise ValueError(f"axis of {n} pixels is smaller than a shard of {shard_size}; "
                         "pass a smaller `shard_size`.")
    return (-(n - shard_size)) % stride


def shard_positions(n: int, shard_size: int, stride: int) -> np.ndarray:
    """Top-left positions of the shard grid along an axis of (padded) length ``n``."""
    return np.arange(0, n - shard_size + 1, stride)


def shard_pairs(pos_y, pos_x, keep=None):
    """The (y, x) shard positions of the grid ``pos_y × pos_x`` (row-major), those where ``keep``
    (a boolean (len(pos_y), len(pos_x)) grid) is True if given."""
    return [(y, x) for i, y in enumerate(pos_y) for j, x in enumerate(pos_x) if keep is None or keep[i, j]]


def checkerboard(n_y, n_x, first=(0, 0), grid=None):
    """Boolean grid (n_y, n_x) of the shards kept by the quincunx blend: ``(i + j)`` even, counted
    from the global grid index ``first`` of the grid's first shard, plus every shard of the
    global grid's first and last rows and columns (``grid``: its shape; default ``(n_y, n_x)``).

    On a grid of stride ``S/2`` the checkerboard is two interleaved grids of stride ``S`` offset
    by half a shard, so every interior pixel lies in two kept shards instead of four. Along the
    map's borders a pixel lies in one row (or column) of shards only; there every shard is kept,
    so that it is still blended from two overlapping shards, as with the full grid.

    Examples
    --------
    >>> checkerboard(3, 5).astype(int)
    array([[1, 1, 1, 1, 1],
           [1, 1, 0, 1, 1],
           [1, 1, 1, 1, 1]])
    >>> checkerboard(5, 5)[1:4, 1:4].astype(int)
    array([[1, 0, 1],
           [0, 1, 0],
           [1, 0, 1]])
    """
    gy, gx = (n_y, n_x) if grid is None else grid
    i = np.arange(n_y)[:, None] + first[0]
    j = np.arange(n_x)[None, :] + first[1]
    return ((i + j) % 2 == 0) | (i == 0) | (i == gy - 1) | (j == 0) | (j == gx - 1)


def cut_shards(cube, pairs, shard_size):
    """Stack the shards whose top-left corners are ``pairs`` ((y, x) in pixels): (N, S, S, E)."""
    s = shard_size
    out = np.empty((len(pairs), s, s) + cube.shape[2:], dtype=cube.dtype)
    for k, (y, x) in enumerate(pairs):
        out[k] = cube[y:y + s, x:x + s]
    return out


def extract_shards(cube, pos_y, pos_x, shard_size, keep=None):
    """Stack the shards at the (pos_y × pos_x) positions (those where ``keep`` is True if given):
    (N, S, S, E)."""
    return cut_shards(cube, shard_pairs(pos_y, pos_x, keep), shard_size)


def blend_weights(shard_size: int, floor: float = 1e-3) -> np.ndarray:
    """Separable Hann weight (S, S), strictly positive."""
    i = np.arange(shard_size)
    w1 = np.sin(np.pi * (i + 0.5) / shard_size) ** 2 + floor
    return np.outer(w1, w1)


class ShardCanvas:
    """A canvas of ``shape`` (ny, nx, ...) on which shards are blended batch by batch.

    :meth:`add` accumulates weighted shards (the Hann weight of :func:`blend_weights` unless
    ``weights`` is given), :meth:`result` returns the weighted average; pixels covered by no shard
    are NaN. The result does not depend on how the shards were split into batches, only on their
    order, so a stream of small batches needs the memory of one batch, not of all shards.

    Examples
    --------
    >>> cube = np.arange(16 * 16 * 2, dtype=float).reshape(16, 16, 2)
    >>> pairs = [(y, x) for y in (0, 4, 8) for x in (0, 4, 8)]
    >>> canvas = ShardCanvas(cube.shape, 8)
    >>> for batch in (pairs[:4], pairs[4:]):
    ...     canvas.add(cut_shards(cube, batch, 8), batch)
    >>> bool(np.allclose(canvas.result(), cube))
    True
    """

    def __init__(self, shape, shard_size, weights=None):
        self.shape = tuple(shape)
        self.shard_size = int(shard_size)
        self.weights = blend_weights(self.shard_size) if weights is None else np.asarray(weights)
        self._acc = self._wsum = self._w = self._wexp = self._tmp = None  # allocated by the first add()

    def add(self, shards, pairs):
        """Blend ``shards`` (N, S, S, ...) whose top-left corners are ``pairs`` ((y, x), N of them)."""
        s = self.shard_size
        if self._acc is None:  # float32 shards add up in float32
            dtype = np.promote_types(shards.dtype, np.float32)
            self._acc = np.zeros(self.shape, dtype=dtype)
            self._wsum = np.zeros(self.shape[:2], dtype=dtype)
            self._w = self.weights.astype(dtype)
            self._wexp = self._w.reshape(self._w.shape + (1,) * (len(self.shape) - 2))
            self._tmp = np.empty((s, s) + self.shape[2:], dtype=dtype)
        for k, (y, x) in enumerate(pairs):
            np.multiply(self._wexp, shards[k], out=self._tmp)
            self._acc[y:y + s, x:x + s] += self._tmp
            self._wsum[y:y + s, x:x + s] += self._w

    def result(self):
        """The weighted average of the shards added (NaN where none covered a pixel). Call it once,
        when every shard is in: the average is computed in place of the running sums."""
        if self._acc is None:
            return np.full(self.shape, np.nan, dtype=np.float32)
        out, self._acc = self._acc, None
        with np.errstate(invalid="ignore", divide="ignore"):
            out /= self._wsum.reshape(self._wsum.shape + (1,) * (len(self.shape) - 2))
        return out


def stitch_shards(shards, pos_y, pos_x, shape, weights=None, keep=None):
    """Weighted average of overlapping shards on a canvas of ``shape`` (ny, nx, ...); ``shards``
    as :func:`extract_shards` cut them (with the same ``keep``).

    Pixels covered by no shard are NaN.
    """
    canvas = ShardCanvas(shape, shards.shape[1], weights)
    canvas.add(shards, shard_pairs(pos_y, pos_x, keep))
    return canvas.result()
