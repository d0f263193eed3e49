"""Shard geometry: cutting spectrum images into shards and stitching them back.

Shards are ``S × S`` windows of the map (all energy channels). On a regular
grid of top-left positions ``0, stride, 2·stride, …`` the map is first padded
at its far edges by reflection so that the last shard ends exactly at the
padded edge; overlapping shards are blended with a separable raised-cosine
(Hann) weight, which for ``stride = S/2`` is a partition of unity: no seams.
"""

from __future__ import annotations

import numpy as np

__all__ = ["grid_padding", "shard_positions", "extract_shards", "blend_weights", "stitch_shards"]


def grid_padding(n: int, shard_size: int, stride: int) -> int:
    """Pixels to add at the far edge so that shards of ``stride`` tile ``n`` exactly."""
    if n < shard_size:
        raise ValueError(f"axis of {n} pixels is smaller than a shard of {shard_size}; "
                         "pass a smaller `shard_size`.")
    return (-(n - shard_size)) % stride


def shard_positions(n: int, shard_size: int, stride: int) -> np.ndarray:
    """Top-left positions of the shard grid along an axis of (padded) length ``n``."""
    return np.arange(0, n - shard_size + 1, stride)


def extract_shards(cube, pos_y, pos_x, shard_size):
    """Stack the shards at all (pos_y × pos_x) positions: (N, S, S, E)."""
    s = shard_size
    out = np.empty((len(pos_y) * len(pos_x), s, s) + cube.shape[2:], dtype=cube.dtype)
    k = 0
    for y in pos_y:
        for x in pos_x:
            out[k] = cube[y:y + s, x:x + s]
            k += 1
    return out


def blend_weights(shard_size: int, floor: float = 1e-3) -> np.ndarray:
    """Separable Hann weight (S, S), strictly positive."""
    i = np.arange(shard_size)
    w1 = np.sin(np.pi * (i + 0.5) / shard_size) ** 2 + floor
    return np.outer(w1, w1)


def stitch_shards(shards, pos_y, pos_x, shape, weights=None):
    """Weighted average of overlapping shards on a canvas of ``shape`` (ny, nx, ...).

    Pixels covered by no shard are NaN.
    """
    s = shards.shape[1]
    w = blend_weights(s) if weights is None else weights
    acc = np.zeros(shape, dtype=np.float64)
    wsum = np.zeros(shape[:2], dtype=np.float64)
    wexp = w.reshape(w.shape + (1,) * (shards.ndim - 3))
    k = 0
    for y in pos_y:
        for x in pos_x:
            acc[y:y + s, x:x + s] += wexp * shards[k]
            wsum[y:y + s, x:x + s] += w
            k += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        out = acc / wsum.reshape(wsum.shape + (1,) * (len(shape) - 2))
    return out
