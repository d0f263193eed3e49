"""Fitting and applying the 3D-CVAE: the :class:`CVAE` estimator.

The estimator works on plain arrays of spectra with shape ``(ny, nx, E)``
(array order, energy last). :class:`~hyperspy_cvae.signals.CVAEEELSSpectrum`
wires it to calibrated signals (energy windows in eV, lazy data, metadata).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import logging
import math
import time

import numpy as np
import torch

from ._version import __version__
from .model import CVAE3D, count_macs, cross_entropy_loss, kl_divergence, poisson_nll_loss

__all__ = ["CVAE", "resolve_device", "normalise_spectra"]

_logger = logging.getLogger(__name__)

_CHECKPOINT_FORMAT = "hyperspy-cvae-checkpoint"
_CHECKPOINT_VERSION = 1


def resolve_device(device="auto") -> torch.device:
    """``"auto"`` → CUDA if available, else CPU; otherwise ``torch.device(device)``.

    Raises
    ------
    ValueError
        If CUDA is requested but not available.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but CUDA is not available; use device='cpu' "
                         "or device='auto'.")
    return dev


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
    x = np.clip(np.asarray(counts, dtype=np.float32), 0, None)
    total = x.sum(-1, dtype=np.float64)
    n = x.shape[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(total[..., None] > eps, x / total[..., None], 1.0 / n).astype(np.float32)
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


_DEFAULT_CACHE_BYTES = 128 << 20  # training shard cache for dask input (see CVAE.fit)
_INFERENCE_BYTES = 4 << 20  # input spectra per forward pass when batch_size is None
_WORKER_MODELS = {}  # (checksum, device) -> CVAE, one per process (see ModelHandle)


def _warn_negative(n):
    if n:
        _logger.warning("Negative counts found (%d values); they are clipped to 0 for the "
                        "per-spectrum normalisation (the input is not modified).", n)


def _release_freed_memory():
    """Hand memory freed by the training loop back to the OS (glibc keeps it otherwise, and the
    process's resident size stays at its training peak during the inference that follows)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def _check_random_state(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


class CVAE:
    """3D convolutional VAE for anomaly detection in spectrum images.

    A scikit-learn–style estimator: parameters are stored unchanged in
    ``__init__``; learned state (``model_``, ``history_``, ...) exists after
    :meth:`fit`.

    Parameters
    ----------
    latent_dim : int
        Size of the latent Gaussian.
    beta : float
        Weight of the KL term.
    shard_size : int
        Shard side in pixels (multiple of 4).
    stride : int or None
        Training shard stride. None draws, each epoch, a random offset of a
        non-overlapping tiling (fast, and every pixel is seen each epoch);
        an int uses the fixed overlapping grid of that stride.
    epochs : int
        Maximum number of epochs.
    batch_size : int
        Shards per optimisation step. Small batches give more optimiser steps
        per epoch (a 192 × 192 map has 64 shards per epoch), which the model
        needs to start using its latent space.
    learning_rate : float
        Peak learning rate of Adam (cosine-annealed over ``epochs``).
    loss : {"poisson", "ce"}
        ``"poisson"`` (default): Poisson likelihood of the measured counts
        (:func:`~hyperspy_cvae.model.poisson_nll_loss`, the cross-entropy
        weighted by each spectrum's counts). ``"ce"``: the paper's cross-entropy
        of normalised spectra, which weighs every spectrum as a single draw; with
        ``beta=1.2`` its KL term outweighs what a shard carries and the latent
        space collapses to the mean spectrum (``benchmarks/NOTES.md`` §6).
    widths : tuple of 4 int
        Channel widths of the network stages.
    validation_fraction : float
        Fraction of the map's S × S tiles, drawn at random over the whole map
        (``random_state``), held out to monitor the validation loss (training
        shards get zero weight on those pixels); 0 disables it. Maps with
        fewer than 4 tiles train without validation.
    early_stopping : bool
        Stop when the validation loss (training loss without validation) has
        not improved for ``patience`` epochs; the best weights are kept.
    patience : int
        See ``early_stopping``.
    augment : bool
        Random flips and 90° rotations of shards in x–y during training.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
    random_state : int, numpy.random.Generator or None
        Seed for weight initialisation, shard sampling and the latent samples.
    show_progressbar : bool or None
        None follows ``hs.preferences.General.show_progressbar``.
    shards_per_epoch : int, optional
        Draw this many shards at uniformly random positions per epoch instead
        of one randomly offset tiling (which gives only ``(ny/24)·(nx/24)``
        shards, e.g. 64 on a 192 × 192 map, i.e. 8 optimiser steps per
        epoch). More shards per epoch = more optimiser steps = a model that
        uses its latent space (see ``benchmarks/NOTES.md``), at a proportional
        cost in time.

    Examples
    --------
    >>> from hyperspy_cvae.data import bifeo3_si
    >>> s = bifeo3_si((48, 48), random_state=0).isig[680.:740.]
    >>> cvae = CVAE(epochs=2, random_state=0, show_progressbar=False).fit(s.data)
    >>> len(cvae.history_["train_loss"])
    2
    """

    def __init__(self, latent_dim=48, beta=1.2, shard_size=24, stride=None, epochs=30,
                 batch_size=2, learning_rate=1e-3, loss="poisson", widths=(8, 16, 32, 32),
                 validation_fraction=0.1, early_stopping=True, patience=6, augment=True,
                 device="auto", random_state=None, show_progressbar=None, shards_per_epoch=None):
        self.shards_per_epoch = shards_per_epoch
        self.latent_dim = latent_dim
        self.beta = beta
        self.shard_size = shard_size
        self.stride = stride
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.loss = loss
        self.widths = widths
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.augment = augment
        self.device = device
        self.random_state = random_state
        self.show_progressbar = show_progressbar

    # -- scikit-learn protocol -------------------------------------------------
    _param_names = ("latent_dim", "beta", "shard_size", "stride", "epochs", "batch_size",
                    "learning_rate", "loss", "widths", "validation_fraction", "early_stopping",
                    "patience", "augment", "device", "random_state", "show_progressbar",
                    "shards_per_epoch")

    def get_params(self, deep=True):
        """Constructor parameters as a dict (scikit-learn convention)."""
        return {k: getattr(self, k) for k in self._param_names}

    def set_params(self, **params):
        """Set constructor parameters; returns self."""
        for k, v in params.items():
            if k not in self._param_names:
                raise ValueError(f"Unknown parameter {k!r}; valid: {', '.join(self._param_names)}.")
            setattr(self, k, v)
        return self

    def __repr__(self):
        fitted = "fitted" if self.is_fitted else "not fitted"
        return (f"CVAE(latent_dim={self.latent_dim}, beta={self.beta}, shard_size={self.shard_size}, "
                f"loss={self.loss!r}, {fitted})")

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "model_")

    def _check_is_fitted(self):
        if not self.is_fitted:
            raise RuntimeError("This CVAE is not fitted yet; call `fit` (or `s.fit_cvae()`) first.")

    def _validate_params(self):
        if self.loss not in ("ce", "poisson"):
            raise ValueError(f"`loss` must be 'ce' or 'poisson', got {self.loss!r}.")
        if int(self.shard_size) % 4 or int(self.shard_size) < 8:
            raise ValueError(f"`shard_size` must be a multiple of 4 and >= 8, got {self.shard_size}.")
        if self.stride is not None and not 1 <= int(self.stride) <= int(self.shard_size):
            raise ValueError(f"`stride` must be in [1, shard_size], got {self.stride}.")
        if int(self.epochs) < 1 or int(self.batch_size) < 1:
            raise ValueError("`epochs` and `batch_size` must be >= 1.")
        if not 0 <= float(self.validation_fraction) < 0.5:
            raise ValueError("`validation_fraction` must be in [0, 0.5).")
        if float(self.beta) < 0 or int(self.latent_dim) < 1:
            raise ValueError("`beta` must be >= 0 and `latent_dim` >= 1.")

    # -- training ----------------------------------------------------------------
    def _sample_positions(self, rng, y_range, nx):
        s = int(self.shard_size)
        y0, y1 = y_range
        if self.shards_per_epoch:
            n = int(self.shards_per_epoch)
            ys = rng.integers(y0, max(y0, y1 - s) + 1, size=n)
            xs = rng.integers(0, max(0, nx - s) + 1, size=n)
            return np.stack([ys, xs], 1)
        if self.stride is None:
            oy, ox = rng.integers(0, s), rng.integers(0, s)
            ys = np.arange(y0 + oy, y1 - s + 1, s)
            xs = np.arange(ox, nx - s + 1, s)
            if ys.size == 0:
                ys = np.array([y0])
            if xs.size == 0:
                xs = np.array([0])
        else:
            ys = np.arange(y0, y1 - s + 1, int(self.stride))
            xs = np.arange(0, nx - s + 1, int(self.stride))
        pos = np.array([(y, x) for y in ys for x in xs])
        return pos[rng.permutation(len(pos))]

    def _batch(self, arrays, pos, rng=None):
        s = int(self.shard_size)
        outs = []
        k = None
        flips = None
        if rng is not None and self.augment:
            k = rng.integers(0, 4, size=len(pos))
            flips = rng.integers(0, 2, size=len(pos)).astype(bool)
        for a in arrays:
            b = np.stack([a[y:y + s, x:x + s] for (y, x) in pos])
            if k is not None:
                b = np.stack([np.rot90(bi, ki, axes=(0, 1)) for bi, ki in zip(b, k)])
                b[flips] = b[flips][:, :, ::-1]
            outs.append(torch.from_numpy(np.ascontiguousarray(b)).to(self.device_))
        return outs

    def _loss(self, model, p, counts, weight, sample=True):
        logits, mu, logvar = model(p, sample=sample)
        if self.loss == "ce":
            rec = cross_entropy_loss(logits, p, weight)
        else:
            rec = poisson_nll_loss(logits, counts, weight)
        kl = kl_divergence(mu, logvar)
        return rec + float(self.beta) * kl, rec, kl

    def _validation_blocks(self, rng, weight):
        """Held-out validation blocks: a random ``validation_fraction`` of the S × S tiles.

        Scattered over the whole map (not a band at one edge, which on a
        film/substrate cross-section would hide a whole phase from training).
        Returns ``(positions (n, 2) or None, training weights)``: the training
        weights are ``weight`` with the held-out pixels set to 0, so training
        shards never learn from them.
        """
        s = int(self.shard_size)
        ny, nx = weight.shape
        frac = float(self.validation_fraction)
        if frac <= 0:
            return None, weight
        ys, xs = np.arange(0, ny - s + 1, s), np.arange(0, nx - s + 1, s)
        tiles = _mostly_weighted(np.array([(y, x) for y in ys for x in xs]), weight, s, keep_one=False)
        n_val = int(round(frac * len(tiles)))
        if len(tiles) < 4 or n_val < 1:
            _logger.info("Map too small for validation blocks (%d tiles of %d × %d); training "
                         "without validation.", len(tiles), s, s)
            return None, weight
        pos = tiles[np.sort(rng.choice(len(tiles), n_val, replace=False))]
        w_train = weight.copy()
        for y, x in pos:
            w_train[y:y + s, x:x + s] = 0
        return pos, w_train

    # -- training data: the whole array in memory, or a bounded cache of shards ----
    def _eager_data(self, X, weight, w_train, val_pos):
        """Normalised cube, counts and weights, the per-epoch shard sampler and validation grid."""
        s = int(self.shard_size)
        ny, nx, _ = X.shape
        if not np.isfinite(X).all():
            raise ValueError(f"X contains {int((~np.isfinite(X)).sum())} NaN/inf value(s); replace "
                             "them (e.g. `np.nan_to_num` on a copy) or crop them before training.")
        _warn_negative(int((X < 0).sum()))
        p, _ = normalise_spectra(X)
        counts32 = X.astype(np.float32, copy=False)  # once, not per batch
        if self.loss == "poisson" and (counts32 < 0).any():  # Poisson counts are >= 0: clip (a copy)
            counts32 = np.maximum(counts32, 0, dtype=np.float32)
        val_arrays = None if val_pos is None else (p, counts32, weight - w_train)
        mean_spec = (p * w_train[..., None]).sum((0, 1)) / w_train.sum()

        def next_positions(rng):
            return _mostly_weighted(self._sample_positions(rng, (0, ny), nx), w_train, s)

        self.n_train_shards_ = None
        return (p, counts32, w_train), next_positions, (val_pos, val_arrays), mean_spec

    def _shard_cache(self, X, weight, w_train, val_pos, rng, max_train_shards):
        """Sample shards of a dask cube into a bounded in-memory cache (never the whole cube).

        The cached shards are laid out as a "tall" cube ``(N·S, S, E)`` so that
        the training loop indexes them like an in-memory map (shard ``i`` at
        position ``(i·S, 0)``).
        """
        import dask

        s = int(self.shard_size)
        ny, nx, n_e = X.shape
        half = max(1, s // 2)
        oy, ox = (int(v) for v in rng.integers(0, half, size=2))
        ys = np.arange(oy, ny - s + 1, half)
        xs = np.arange(ox, nx - s + 1, half)
        ys = ys if ys.size else np.array([0])
        xs = xs if xs.size else np.array([0])
        cand = _mostly_weighted(np.array([(y, x) for y in ys for x in xs]), w_train, s)
        val = np.empty((0, 2), int) if val_pos is None else val_pos
        per_shard = s * s * n_e * 4 * (2 if self.loss == "poisson" else 1) + s * s * 4
        if max_train_shards is None:
            cap = max(2, _DEFAULT_CACHE_BYTES // per_shard)
        else:
            cap = int(max_train_shards)
            if cap < 1:
                raise ValueError(f"`max_train_shards` must be >= 1, got {max_train_shards}.")
        n_va = 0
        if len(val) and cap > 1:
            n_va = min(len(val), max(1, int(round(cap * float(self.validation_fraction)))))
        n_tr = min(len(cand), cap - n_va)
        tr = cand[np.sort(rng.choice(len(cand), n_tr, replace=False))]
        va = val[np.sort(rng.choice(len(val), n_va, replace=False))] if n_va else val[:0]
        pos = np.concatenate([tr, va]) if n_va else tr
        n = len(pos)
        p_cache = np.empty((n, s, s, n_e), np.float32)
        c_cache = np.empty((n, s, s, n_e), np.float32) if self.loss == "poisson" else None
        w_cache = np.stack([w_train[y:y + s, x:x + s] for (y, x) in tr]
                           + [weight[y:y + s, x:x + s] for (y, x) in va]).astype(np.float32)
        group = max(1, (32 << 20) // (s * s * n_e * 4))  # shards per dask.compute: ~32 MiB
        n_neg = 0
        t0 = time.perf_counter()
        for i in range(0, n, group):
            blocks = dask.compute(*[X[y:y + s, x:x + s] for (y, x) in pos[i:i + group]])
            g = np.stack(blocks).astype(np.float32, copy=False)
            bad = ~np.isfinite(g)
            if bad.any():
                k = int(np.nonzero(bad.any((1, 2, 3)))[0][0])
                y, x = pos[i + k]
                raise ValueError(
                    f"The data contain NaN/inf (first in the shard at pixel y={y}, x={x}); replace "
                    "them (e.g. `s.map(np.nan_to_num)` on a copy) or crop them before training.")
            n_neg += int((g < 0).sum())
            p_cache[i:i + len(g)] = normalise_spectra(g)[0]
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
        self.n_train_shards_ = (n_tr, n_va)

        def next_positions(rng):
            return tr_pos[rng.permutation(n_tr)]

        return arrays, next_positions, (val_pos, arrays), mean_spec

    def fit(self, X, train_mask=None, energy_axis=None, max_train_shards=None):
        """Train on a cube of spectra.

        Parameters
        ----------
        X : array-like (ny, nx, E)
            Counts: a numpy array (used as is), or a dask array (e.g. a lazy
            signal's data), which is **never loaded as a whole**: training shards
            are sampled (``random_state``) and only those ``S × S × E`` blocks
            are read, chunk by chunk, into a bounded shard cache (see
            ``max_train_shards``).
        train_mask : array of bool (ny, nx), optional
            Pixels to learn from (the "bulk"); others get zero weight in the
            loss and shards with less than half of their pixels in the mask are
            skipped.
        energy_axis : dict, optional
            ``{"offset", "scale", "size", "units"}`` of the energy axis of ``X``;
            stored in the checkpoint to refuse incompatible data later.
        max_train_shards : int, optional
            Dask input only: number of shards held in memory for training
            (validation shards included). Default: as many as fit in 128 MiB
            (``S·S·E`` float32 values per shard, twice that for
            ``loss="poisson"``), at most all the candidate shards. Candidates
            lie on a grid of stride ``S/2`` (random offset) above the
            validation band; the cache is filled once and every epoch visits
            all cached shards in a new random order, with random flips and
            rotations. Memory of the fit ≈ this cache + a few dask chunks.

        Returns
        -------
        self

        Notes
        -----
        Negative counts (e.g. after background subtraction) are clipped to 0
        before the per-spectrum normalisation (a warning gives their number);
        the input is not modified. NaN/inf, complex and non-3D input is refused.
        Integer counts are converted to float32.
        """
        from hyperspy.defaults_parser import preferences
        from tqdm.auto import tqdm

        self._validate_params()
        s = int(self.shard_size)
        lazy = hasattr(X, "dask")
        if not lazy:
            X = X.compute() if hasattr(X, "compute") else np.asarray(X)
        if X.ndim != 3:
            raise ValueError(f"X must have shape (ny, nx, E), got {X.shape}.")
        if np.iscomplexobj(X):
            raise TypeError("X is complex; the CVAE needs real counts (take `.real` or `abs()` first).")
        ny, nx, n_e = X.shape
        if min(ny, nx) < s:
            raise ValueError(f"The map ({ny} × {nx}) is smaller than one shard ({s} × {s}); pass a "
                             f"smaller `shard_size` (e.g. {max(8, (min(ny, nx) // 4) * 4)}).")
        if train_mask is None:
            weight = np.ones((ny, nx), np.float32)
        else:
            train_mask = np.asarray(train_mask, bool)
            if train_mask.shape != (ny, nx):
                raise ValueError(f"`train_mask` has shape {train_mask.shape}, expected {(ny, nx)}.")
            weight = train_mask.astype(np.float32)
        if weight.sum() == 0:
            raise ValueError("`train_mask` selects no pixel.")
        self.device_ = resolve_device(self.device)
        rng = _check_random_state(self.random_state)
        torch_seed = int(rng.integers(0, 2**31 - 1))
        val_pos, w_train = self._validation_blocks(rng, weight)
        if lazy:
            data = self._shard_cache(X, weight, w_train, val_pos, rng, max_train_shards)
        else:
            data = self._eager_data(X, weight, w_train, val_pos)
        arrays, next_positions, (val_pos, val_arrays), mean_spec = data
        self.energy_axis_ = dict(energy_axis) if energy_axis else {"offset": 0.0, "scale": 1.0,
                                                                    "size": n_e, "units": ""}
        self.n_channels_ = n_e
        show = preferences.General.show_progressbar if self.show_progressbar is None else self.show_progressbar

        with torch.random.fork_rng(devices=[] if self.device_.type == "cpu" else [self.device_]):
            torch.manual_seed(torch_seed)
            model = CVAE3D(n_e, s, int(self.latent_dim), tuple(self.widths),
                           mean_spectrum=torch.from_numpy(mean_spec)).to(self.device_)
            opt = torch.optim.Adam(model.parameters(), lr=float(self.learning_rate))
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=int(self.epochs),
                                                               eta_min=float(self.learning_rate) / 20)
            history = {"train_loss": [], "val_loss": [], "kl": [], "seconds": []}
            best, best_state, bad = np.inf, None, 0
            use_amp = self.device_.type == "cuda"
            bar = tqdm(range(int(self.epochs)), disable=not show, desc="Training CVAE", unit="epoch")
            t_start = time.perf_counter()
            for epoch in bar:
                model.train()
                pos = next_positions(rng)
                tot, tot_kl, nb = 0.0, 0.0, 0
                for i in range(0, len(pos), int(self.batch_size)):
                    pb, cb, wb = self._batch(arrays, pos[i:i + int(self.batch_size)], rng)
                    with torch.autocast(self.device_.type, dtype=torch.bfloat16, enabled=use_amp):
                        loss, rec, kl = self._loss(model, pb, cb, wb)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    tot += loss.item() * len(pb)
                    tot_kl += kl.item() * len(pb)
                    nb += len(pb)
                sched.step()
                train_loss = tot / max(nb, 1)
                history["train_loss"].append(train_loss)
                history["kl"].append(tot_kl / max(nb, 1))
                val_loss = float("nan")
                if val_pos is not None:
                    model.eval()
                    with torch.no_grad():
                        vt, vn = 0.0, 0
                        for i in range(0, len(val_pos), int(self.batch_size)):
                            pb, cb, wb = self._batch(val_arrays, val_pos[i:i + int(self.batch_size)])
                            loss, _, _ = self._loss(model, pb, cb, wb, sample=False)
                            vt += float(loss) * len(pb)
                            vn += len(pb)
                    val_loss = vt / vn
                history["val_loss"].append(val_loss)
                history["seconds"].append(time.perf_counter() - t_start)
                bar.set_postfix(loss=f"{train_loss:.2f}", val=f"{val_loss:.2f}")
                monitor = val_loss if val_pos is not None else train_loss
                if monitor < best - 1e-3:  # the loss includes the spectra's entropy: absolute tolerance
                    best, bad = monitor, 0
                    best_state = copy.deepcopy(model.state_dict())
                else:
                    bad += 1
                    if self.early_stopping and bad >= int(self.patience):
                        _logger.info("Early stopping at epoch %d (no improvement for %d epochs).",
                                     epoch + 1, bad)
                        break
            bar.close()
            if self.early_stopping and best_state is not None:
                model.load_state_dict(best_state)
        model.eval()
        self.model_ = model
        self.history_ = history
        self.fit_seconds_ = history["seconds"][-1] if history["seconds"] else 0.0
        self.n_train_pixels_ = int(weight.sum())
        del arrays, data
        _release_freed_memory()
        return self

    # -- inference ------------------------------------------------------------
    def _forward_shards(self, shards, batch_size=None):
        """Counts shards (N, S, S, E) → reconstructed counts (N, S, S, E), latent means (N, L).

        ``batch_size`` None: as many shards per pass as hold about 4 MiB of
        input spectra (the network's activations are ~15× that), which bounds
        the memory of every inference task.
        """
        self._check_is_fitted()
        if batch_size is None:
            batch_size = max(1, _INFERENCE_BYTES // max(1, shards[0].size * 4)) if len(shards) else 1
        model = self.model_
        dev = next(model.parameters()).device
        p, total = normalise_spectra(shards)
        recs, lats = [], []
        with torch.no_grad():
            for i in range(0, len(p), batch_size):
                pb = torch.from_numpy(p[i:i + batch_size]).to(dev)
                mu, _ = model.encode(pb)
                probs = torch.softmax(model.decode(mu).float(), dim=-1)
                recs.append(probs.cpu().numpy())
                lats.append(mu.float().cpu().numpy())
        rec = np.concatenate(recs) * total[..., None]
        return rec.astype(np.float32), np.concatenate(lats)

    def transform(self, shards, batch_size=None):
        """Latent means of count shards (N, S, S, E) → (N, latent_dim)."""
        return self._forward_shards(np.asarray(shards), batch_size)[1]

    def reconstruct_shards(self, shards, batch_size=None):
        """Reconstructed counts of count shards (N, S, S, E), from the latent mean."""
        return self._forward_shards(np.asarray(shards), batch_size)[0]

    def to(self, device):
        """Move the fitted network to ``device`` ("auto", "cpu", "cuda"); returns self."""
        self._check_is_fitted()
        self.device_ = resolve_device(device)
        self.model_.to(self.device_)
        return self

    def check_energy_axis(self, offset, scale, size=None, units=None):
        """Raise ``ValueError`` if an energy axis differs from the training one.

        The model only applies to spectra on the channels it was trained on:
        same dispersion (scale), and the training range must be found on the
        axis (compared to a hundredth of a channel).
        """
        self._check_is_fitted()
        tr = self.energy_axis_
        if not math.isclose(scale, tr["scale"], rel_tol=1e-6):
            raise ValueError(
                f"This model was trained on an energy axis of {tr['scale']:g} {tr['units']}/channel, "
                f"the data have {scale:g}. Rebin/interpolate the data to {tr['scale']:g} "
                f"{tr['units']}/channel (e.g. `s.interpolate_on_axis`) or train a new model.")
        start = (tr["offset"] - offset) / scale
        if abs(start - round(start)) > 0.01:
            raise ValueError(
                f"The energy channels are not aligned with the training axis (offset "
                f"{offset:g} vs {tr['offset']:g} {tr['units']}, {start - round(start):+.2f} channel); "
                "interpolate the data onto the training axis.")

    # -- persistence ---------------------------------------------------------------
    def _checkpoint_dict(self):
        self._check_is_fitted()
        params = self.get_params()
        params["device"] = "auto"
        params["random_state"] = params["random_state"] if isinstance(
            params["random_state"], (int, type(None))) else None
        params["widths"] = list(params["widths"])
        meta = {
            "format": _CHECKPOINT_FORMAT, "format_version": _CHECKPOINT_VERSION,
            "package_version": __version__, "params": params,
            "architecture": {"class": "CVAE3D", "n_channels": self.n_channels_,
                             "shard_size": int(self.shard_size), "latent_dim": int(self.latent_dim),
                             "widths": list(self.widths)},
            "energy_axis": self.energy_axis_,
            "normalisation": "spectra clipped at 0 and normalised to sum 1; input = p / mean_spectrum - 1",
            "history": self.history_,
            "signal_range": getattr(self, "signal_range_", None),
        }
        state = {k: v.detach().cpu() for k, v in self.model_.state_dict().items()}
        return {"meta_json": json.dumps(meta), "state_dict": state}

    def save(self, path):
        """Save weights and everything needed to apply them (a ``torch.save`` file).

        The file holds only tensors and a JSON string, so :meth:`load` reads it
        with ``torch.load(weights_only=True)`` (no code is executed).
        """
        torch.save(self._checkpoint_dict(), path)
        self.checkpoint_path_ = str(path)
        return path

    def checksum(self) -> str:
        """SHA-256 of the weights (identifies the model in results' metadata)."""
        buf = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in self.model_.state_dict().items()}, buf)
        return hashlib.sha256(buf.getvalue()).hexdigest()

    @classmethod
    def load(cls, path, device="auto"):
        """Load a checkpoint written by :meth:`save`.

        Raises
        ------
        ValueError
            If the file is not a readable hyperspy-cvae checkpoint (corrupt,
            truncated, or foreign). Files containing pickled code are refused
            by ``torch.load(weights_only=True)``.
        """
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise
        except Exception as err:  # corrupt zip, pickled objects, ...
            raise ValueError(f"{path} is not a valid hyperspy-cvae checkpoint (it could not be read "
                             f"safely with weights_only=True: {type(err).__name__}).") from err
        if not isinstance(ckpt, dict) or "meta_json" not in ckpt or "state_dict" not in ckpt:
            raise ValueError(f"{path} is not a hyperspy-cvae checkpoint (missing metadata).")
        try:
            meta = json.loads(ckpt["meta_json"])
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: corrupt checkpoint metadata.") from err
        if meta.get("format") != _CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not a hyperspy-cvae checkpoint (format {meta.get('format')!r}).")
        if meta.get("format_version", 0) > _CHECKPOINT_VERSION:
            raise ValueError(f"{path} was written by a newer hyperspy-cvae "
                             f"({meta.get('package_version')}); upgrade to load it.")
        params = meta["params"]
        params["widths"] = tuple(params["widths"])
        obj = cls(**params)
        arch = meta["architecture"]
        obj.device_ = resolve_device(device)
        model = CVAE3D(arch["n_channels"], arch["shard_size"], arch["latent_dim"], tuple(arch["widths"]))
        try:
            model.load_state_dict(ckpt["state_dict"])
        except RuntimeError as err:
            raise ValueError(f"{path}: weights do not match the stored architecture.") from err
        model.eval()
        obj.model_ = model.to(obj.device_)
        obj.n_channels_ = arch["n_channels"]
        obj.energy_axis_ = meta["energy_axis"]
        obj.history_ = meta["history"]
        obj.signal_range_ = meta.get("signal_range")
        obj.package_version_ = meta.get("package_version")
        obj.checkpoint_path_ = str(path)
        obj.fit_seconds_ = obj.history_["seconds"][-1] if obj.history_.get("seconds") else 0.0
        return obj

    def summary(self) -> dict:
        """Parameter count and multiply-adds per spectrum of the fitted network."""
        self._check_is_fitted()
        return count_macs(self.model_)

    def plot_history(self, ax=None):
        """Plot training and validation loss per epoch; returns the matplotlib axes."""
        import matplotlib.pyplot as plt

        self._check_is_fitted()
        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.5))
        ep = np.arange(1, len(self.history_["train_loss"]) + 1)
        ax.plot(ep, self.history_["train_loss"], label="train")
        if np.isfinite(self.history_["val_loss"]).any():
            ax.plot(ep, self.history_["val_loss"], label="validation")
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"loss ({self.loss} + β·KL) per shard")
        ax.legend()
        return ax


class ModelHandle:
    """A fitted :class:`CVAE` in a form that is cheap to ship to dask workers.

    Holds the checkpoint bytes (weights + metadata, as written by
    :meth:`CVAE.save`) and the weights' checksum. :meth:`get` rebuilds the
    network once per worker process (cached by checksum and device) and
    returns the same object to every later task. Loading goes through
    :meth:`CVAE.load`, i.e. ``torch.load(weights_only=True)``: no code runs.

    Examples
    --------
    >>> from hyperspy_cvae.data import bifeo3_si
    >>> s = bifeo3_si((24, 24), random_state=0).isig[680.:740.]
    >>> cvae = CVAE(shard_size=16, epochs=1, random_state=0, show_progressbar=False).fit(s.data)
    >>> h = ModelHandle(cvae)
    >>> h.get().checksum() == cvae.checksum()
    True
    """

    def __init__(self, cvae, device="auto"):
        buf = io.BytesIO()
        torch.save(cvae._checkpoint_dict(), buf)
        self.blob = buf.getvalue()
        self.checksum = cvae.checksum()
        self.device = device

    def get(self):
        key = (self.checksum, str(self.device))
        model = _WORKER_MODELS.get(key)
        if model is None:
            model = CVAE.load(io.BytesIO(self.blob), device=self.device)
            _WORKER_MODELS.clear()  # keep one model per process
            _WORKER_MODELS[key] = model
        return model


def forward_block(model, shards, batch_size=None):
    """Reconstruct a block of count shards with ``model`` (a :class:`CVAE` or :class:`ModelHandle`).

    The per-task function of :meth:`CVAEEELSSpectrum.cvae_decomposition`:
    refuses NaN/inf (lazy data are checked here, block by block) and returns
    ``(reconstructed shards, latent means)``.
    """
    if not np.isfinite(shards).all():
        raise ValueError("The signal contains NaN or inf values in the model's energy range; replace "
                         "them (e.g. `s.map(np.nan_to_num)` on a copy) or crop the bad region.")
    if isinstance(model, ModelHandle):
        model = model.get()
    return model._forward_shards(shards, batch_size)
