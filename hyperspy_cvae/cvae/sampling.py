"""Training data for the CVAE: spectra normalised once, shard positions per epoch, batches with
flips and rotations, scattered validation tiles, and a bounded shard cache for dask input.

Functions of the estimator (``est``): they read its parameters and never train.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

__all__ = ["normalise_spectra", "auto_shard_size", "resolve_shard_size"]

_logger = logging.getLogger(__name__)

_DEFAULT_CACHE_BYTES = 128 << 20  # training shard cache for dask input (see CVAE.fit)
_F32_MAX = float(np.finfo(np.float32).max)
#: Most validation tiles held out (a random ``validation_fraction`` of the tiles up to this), so
#: that a measure of the validation loss costs the same on every map.
MAX_VALIDATION_SHARDS = 64


def normalise_spectra(counts, eps=1e-12):
    """Clip negative counts to 0 and normalise each spectrum to sum 1 (float32).

    Negative values (e.g. after background subtraction or dark-reference
    over-correction) have no meaning for a distribution of counted electrons
    over channels; they are clipped to 0 before normalising. All-zero spectra
    become flat.

    Returns
    -------
    p : numpy.ndarray (float32), same shape
    total : numpy.ndarray (float32), shape without the last axis
        The total (clipped) counts of each spectrum.
    """
    x = np.asarray(counts, dtype=np.float32)
    if (x < 0).any():
        x = np.maximum(x, 0, dtype=np.float32)  # a copy: the input is never modified
    total = x.sum(-1, dtype=np.float64)
    n = x.shape[-1]
    empty = total <= eps
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.divide(x, total.astype(np.float32)[..., None], dtype=np.float32)
    if empty.any():
        p[empty] = 1.0 / n
    return p, total.astype(np.float32)


def _mostly_weighted(pos, weight, s, keep_one=True):
    """Shard positions whose S × S block has mean weight >= 0.5.

    With ``keep_one``, the single best-covered shard is kept when none
    qualifies (so training always has a shard).
    """
    frac = np.array([weight[y:y + s, x:x + s].mean() for (y, x) in pos])
    if (frac >= 0.5).any() or not keep_one:
        return pos[frac >= 0.5]
    return pos[np.argsort(-frac)[:1]]


def _warn_negative(n):
    if n:
        _logger.warning("Negative counts found (%d values); they are clipped to 0 for the "
                        "per-spectrum normalisation (the input is not modified).", n)


def auto_shard_size(ny, nx):
    """The shard side ``"auto"`` chooses for a ``ny × nx`` map: 4·⌊min(ny, nx)/8⌋, between 8 and 24.

    The shard is at most half the shorter side from 16 pixels on (8, the smallest shard the
    network takes, below that), so small measured maps get shards that fit several times; maps
    of 48 pixels or more get 24.

    Examples
    --------
    >>> [auto_shard_size(n, n) for n in (8, 13, 16, 32, 47, 48, 1024)]
    [8, 8, 8, 16, 20, 24, 24]
    """
    return int(min(24, max(8, 4 * (min(int(ny), int(nx)) // 8))))


def _side(est):
    """The shard side of ``est``: the one fitted (``shard_size_``), else its integer parameter."""
    side = getattr(est, "shard_size_", None)
    return int(side if side is not None else est.shard_size)


def resolve_shard_size(shard_size, nav_shape):
    """``shard_size`` as an int: :func:`auto_shard_size` of ``nav_shape`` for ``"auto"``."""
    if shard_size == "auto":
        return auto_shard_size(*nav_shape)
    if isinstance(shard_size, (bool, np.bool_)) or not isinstance(shard_size, (int, np.integer)):
        raise ValueError(f"`shard_size` must be 'auto' or a multiple of 4 and >= 8, got {shard_size!r}.")
    return int(shard_size)


def sample_positions(est, rng, y_range, nx):
    s = _side(est)
    y0, y1 = y_range
    if est.shards_per_epoch:
        n = int(est.shards_per_epoch)
        ys = rng.integers(y0, max(y0, y1 - s) + 1, size=n)
        xs = rng.integers(0, max(0, nx - s) + 1, size=n)
        return np.stack([ys, xs], 1)
    if est.stride is None:
        oy, ox = rng.integers(0, s), rng.integers(0, s)
        ys = np.arange(y0 + oy, y1 - s + 1, s)
        xs = np.arange(ox, nx - s + 1, s)
        if ys.size == 0:
            ys = np.array([y0])
        if xs.size == 0:
            xs = np.array([0])
    else:
        ys = np.arange(y0, y1 - s + 1, int(est.stride))
        xs = np.arange(0, nx - s + 1, int(est.stride))
    pos = np.array([(y, x) for y in ys for x in xs])
    return pos[rng.permutation(len(pos))]


def make_batch(est, arrays, pos, rng=None):
    s = _side(est)
    outs = []
    k = None
    flips = None
    if rng is not None and est.augment:
        k = rng.integers(0, 4, size=len(pos))
        flips = rng.integers(0, 2, size=len(pos)).astype(bool)
    for a in arrays:
        b = np.stack([a[y:y + s, x:x + s] for (y, x) in pos])
        if k is not None:
            b = np.stack([np.rot90(bi, ki, axes=(0, 1)) for bi, ki in zip(b, k)])
            b[flips] = b[flips][:, :, ::-1]
        outs.append(torch.from_numpy(np.ascontiguousarray(b)).to(est.device_))
    return outs


def validation_blocks(est, rng, weight):
    """Held-out validation blocks: a random ``validation_fraction`` of the S × S tiles, at most
    ``MAX_VALIDATION_SHARDS`` (a large map keeps the rest for training).

    Scattered over the whole map (not a band at one edge, which on a
    film/substrate cross-section would hide a whole phase from training).
    Returns ``(positions (n, 2) or None, training weights)``: the training
    weights are ``weight`` with the held-out pixels set to 0, so training
    shards never learn from them.
    """
    s = _side(est)
    ny, nx = weight.shape
    frac = float(est.validation_fraction)
    if frac <= 0:
        return None, weight
    ys, xs = np.arange(0, ny - s + 1, s), np.arange(0, nx - s + 1, s)
    tiles = _mostly_weighted(np.array([(y, x) for y in ys for x in xs]), weight, s, keep_one=False)
    n_val = min(int(round(frac * len(tiles))), MAX_VALIDATION_SHARDS)
    if len(tiles) < 4 or n_val < 1:
        _logger.info("Map too small for validation blocks (%d tiles of %d × %d); training "
                     "without validation.", len(tiles), s, s)
        return None, weight
    pos = tiles[np.sort(rng.choice(len(tiles), n_val, replace=False))]
    w_train = weight.copy()
    for y, x in pos:
        w_train[y:y + s, x:x + s] = 0
    return pos, w_train


def _data_info(n_values, n_negative, totals, mean_spec):
    """What :func:`hyperspy_cvae.cvae.guards.diagnose` needs to explain a failed training step."""
    from .model import MEAN_SPECTRUM_FLOOR

    return {"n_values": int(n_values), "n_negative": int(n_negative), "totals": totals,
            "mean_spectrum": mean_spec, "floor": MEAN_SPECTRUM_FLOOR / mean_spec.shape[-1]}


def _overflow_error(where=""):
    return ValueError(f"The data contain values beyond the float32 range (|x| > 3.4e38){where}; the "
                      "CVAE computes in float32: divide the data by a constant before training.")


def eager_data(est, X, weight, w_train, val_pos):
    """Normalised cube, counts and weights, the per-epoch shard sampler and validation grid.

    Also returns the statistics the training guards use to explain a non-finite loss
    (:func:`hyperspy_cvae.cvae.guards.diagnose`).
    """
    s = _side(est)
    ny, nx, _ = X.shape
    if not np.isfinite(X).all():
        raise ValueError(f"X contains {int((~np.isfinite(X)).sum())} NaN/inf value(s); replace "
                         "them (e.g. `np.nan_to_num` on a copy) or crop them before training.")
    if X.dtype.kind == "f" and X.dtype.itemsize > 4 and max(X.max(), -X.min()) > _F32_MAX:
        raise _overflow_error()
    n_neg = int((X < 0).sum())
    _warn_negative(n_neg)
    p, totals = normalise_spectra(X)
    counts32 = X.astype(np.float32, copy=False)  # once, not per batch
    if est.loss == "poisson" and n_neg:  # Poisson counts are >= 0: clip (a copy)
        counts32 = np.maximum(counts32, 0, dtype=np.float32)
    val_arrays = None if val_pos is None else (p, counts32, weight - w_train)
    mean_spec = (p * w_train[..., None]).sum((0, 1)) / w_train.sum()

    def next_positions(rng):
        return _mostly_weighted(sample_positions(est, rng, (0, ny), nx), w_train, s)

    est.n_train_shards_ = None
    info = _data_info(X.size, n_neg, totals, mean_spec)
    return (p, counts32, w_train), next_positions, (val_pos, val_arrays), mean_spec, info


def shard_cache(est, X, weight, w_train, val_pos, rng, max_train_shards):
    """Sample shards of a dask cube into a bounded in-memory cache (never the whole cube).

    The cached shards are laid out as a "tall" cube ``(N·S, S, E)`` so that
    the training loop indexes them like an in-memory map (shard ``i`` at
    position ``(i·S, 0)``).
    """
    import dask

    s = _side(est)
    ny, nx, n_e = X.shape
    half = max(1, s // 2)
    oy, ox = (int(v) for v in rng.integers(0, half, size=2))
    ys = np.arange(oy, ny - s + 1, half)
    xs = np.arange(ox, nx - s + 1, half)
    ys = ys if ys.size else np.array([0])
    xs = xs if xs.size else np.array([0])
    cand = _mostly_weighted(np.array([(y, x) for y in ys for x in xs]), w_train, s)
    val = np.empty((0, 2), int) if val_pos is None else val_pos
    per_shard = s * s * n_e * 4 * (2 if est.loss == "poisson" else 1) + s * s * 4
    if max_train_shards is None:
        cap = max(2, _DEFAULT_CACHE_BYTES // per_shard)
    else:
        cap = int(max_train_shards)
        if cap < 1:
            raise ValueError(f"`max_train_shards` must be >= 1, got {max_train_shards}.")
    n_va = 0
    if len(val) and cap > 1:
        n_va = min(len(val), max(1, int(round(cap * float(est.validation_fraction)))))
    n_tr = min(len(cand), cap - n_va)
    tr = cand[np.sort(rng.choice(len(cand), n_tr, replace=False))]
    va = val[np.sort(rng.choice(len(val), n_va, replace=False))] if n_va else val[:0]
    pos = np.concatenate([tr, va]) if n_va else tr
    n = len(pos)
    p_cache = np.empty((n, s, s, n_e), np.float32)
    t_cache = np.empty((n, s, s), np.float32)  # spectrum totals, for the training guards
    c_cache = np.empty((n, s, s, n_e), np.float32) if est.loss == "poisson" else None
    w_cache = np.stack([w_train[y:y + s, x:x + s] for (y, x) in tr]
                       + [weight[y:y + s, x:x + s] for (y, x) in va]).astype(np.float32)
    group = max(1, (32 << 20) // (s * s * n_e * 4))  # shards per dask.compute: ~32 MiB
    n_neg = 0
    t0 = time.perf_counter()
    for i in range(0, n, group):
        blocks = dask.compute(*[X[y:y + s, x:x + s] for (y, x) in pos[i:i + group]])
        with np.errstate(over="ignore"):  # values beyond float32 become inf: refused below
            g = np.stack(blocks).astype(np.float32, copy=False)
        bad = ~np.isfinite(g)
        if bad.any():
            k = int(np.nonzero(bad.any((1, 2, 3)))[0][0])
            y, x = pos[i + k]
            if np.isfinite(blocks[k]).all():  # finite, but not in float32
                raise _overflow_error(f" (first in the shard at pixel y={y}, x={x})")
            raise ValueError(
                f"The data contain NaN/inf (first in the shard at pixel y={y}, x={x}); replace "
                "them (e.g. `s.map(np.nan_to_num)` on a copy) or crop them before training.")
        n_neg += int((g < 0).sum())
        p_cache[i:i + len(g)], t_cache[i:i + len(g)] = normalise_spectra(g)
        if c_cache is not None:
            c_cache[i:i + len(g)] = np.maximum(g, 0)
        del blocks, g
    _warn_negative(n_neg)
    w_tr = w_cache[:n_tr]
    mean_spec = (np.tensordot(w_tr, p_cache[:n_tr], axes=([0, 1, 2], [0, 1, 2]))
                 / w_tr.sum()).astype(np.float32)
    _logger.info("Training on %d shards (+%d validation) sampled from the lazy cube: %.0f MiB "
                 "cache, read in %.1f s.", n_tr, n_va, n * per_shard / 2**20,
                 time.perf_counter() - t0)
    tall = (n * s, s, n_e)
    p_tall = p_cache.reshape(tall)
    arrays = (p_tall, p_tall if c_cache is None else c_cache.reshape(tall),
              w_cache.reshape(n * s, s))
    tall_pos = np.stack([np.arange(n) * s, np.zeros(n, int)], axis=1)
    tr_pos, val_pos = tall_pos[:n_tr], (tall_pos[n_tr:] if n_va else None)
    est.n_train_shards_ = (n_tr, n_va)

    def next_positions(rng):
        return tr_pos[rng.permutation(n_tr)]

    info = _data_info(p_cache.size, n_neg, t_cache, mean_spec)
    return arrays, next_positions, (val_pos, arrays), mean_spec, info


