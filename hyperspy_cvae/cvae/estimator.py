"""The :class:`CVAE` estimator: parameters, fitting and inference on shards.

It works on plain arrays of spectra with shape ``(ny, nx, E)`` (array order,
energy last); :class:`~hyperspy_cvae.signals.CVAEEELSSpectrum` wires it to
calibrated signals. Training data come from :mod:`.sampling`, the loop from
:mod:`.training`, the network from :mod:`.model`, its losses from
:mod:`.losses`, files from :mod:`.checkpoint`.
"""

from __future__ import annotations

import logging
import math
import threading

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .._threads import TORCH_LOCK
from .checkpoint import load_checkpoint, save_checkpoint, weights_checksum
from .device import resolve_device
from .guards import dead_channels, describe_channels, nonfinite_error
from .losses import cross_entropy_loss, kl_divergence, poisson_nll_loss
from .model import CVAE3D, count_macs
from .sampling import (eager_data, normalise_spectra, resolve_shard_size, shard_cache,
                       validation_blocks)
from .training import DEFAULT_EVERY, auto_steps, train

__all__ = ["CVAE"]

_logger = logging.getLogger(__name__)

_INFERENCE_BYTES = 4 << 20  # input spectra per forward pass when batch_size is None

#: Serialises the training sections of concurrent :meth:`CVAE.fit` calls: they seed and draw from
#: torch's process-global RNG (weight initialisation, latent samples), which two threads would
#: otherwise share.
_TRAINING_LOCK = threading.Lock()


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


class CVAE(BaseEstimator):
    """3D convolutional VAE for anomaly detection in spectrum images.

    A scikit-learn estimator: parameters are stored unchanged in ``__init__``
    (``get_params``, ``set_params`` and the ``repr`` come from
    :class:`sklearn.base.BaseEstimator`); learned state (``model_``,
    ``history_``, ...) exists after :meth:`fit`.

    Parameters
    ----------
    latent_dim : int
        Size of the latent Gaussian.
    beta : float
        Weight of the KL term.
    shard_size : int or "auto"
        Shard side in pixels (a multiple of 4, at least 8). ``"auto"`` (the
        default) chooses it from the map at :meth:`fit`
        (:func:`~hyperspy_cvae.cvae.sampling.auto_shard_size`: 24 on maps of
        at least 48 pixels a side, smaller on smaller maps, down to 8); the
        size used is ``shard_size_``.
    stride : int or None
        Training shard stride. None draws, each epoch, a random offset of a
        non-overlapping tiling (fast, and every pixel is seen each epoch);
        an int uses the fixed overlapping grid of that stride.
    max_steps : int or "auto"
        The training budget in optimiser steps (each a batch of ``batch_size``
        shards): shards are drawn from random tilings of the map until the
        budget is spent (a small map is visited many times, a large one
        partly), so the time of a fit does not grow with the map. ``"auto"``
        (the default): ``training.DEFAULT_STEPS`` (400) for shards of 24 × 24 pixels,
        scaled by ``(24 / S)²`` for smaller shards ``S`` (900 for 16, 3600
        for 8), so that a fit shows the network as many spectra on a small
        measured map as on a large one
        (:func:`~hyperspy_cvae.cvae.training.auto_steps`); the budget
        used is ``max_steps_``. The validation loss is measured every
        ``validation_every`` steps; see ``early_stopping``. Ignored when
        ``epochs`` is given.
    validation_every : int or "auto"
        Optimiser steps between two measures of the validation loss (the
        progress bar's update, a point of ``history_``, one step of the
        learning-rate schedule) when the budget is ``max_steps``. ``"auto"``
        (the default): 25 for shards of 24, scaled like ``max_steps`` (225
        for shards of 8), so that every fit has the same schedule counted in
        spectra seen; the interval used is ``validation_every_``.
    epochs : int, optional
        A budget in passes over the map instead (one random tiling each, so the
        number of steps grows with the map's area): the validation loss is then
        measured after each pass.
    batch_size : int
        Shards per optimisation step. Small batches give more optimiser steps
        per shard seen, which the model needs to start using its latent space.
    learning_rate : float
        Peak learning rate of Adam, cosine-annealed over the budget (to 1/20 of
        it, in ``validation_every``-step intervals, or per epoch).
    loss : {"poisson", "ce"}
        ``"poisson"`` (default): Poisson likelihood of the measured counts
        (:func:`~hyperspy_cvae.cvae.losses.poisson_nll_loss`, the cross-entropy
        weighted by each spectrum's counts). ``"ce"``: the paper's cross-entropy
        of normalised spectra, which weighs every spectrum as a single draw; with
        ``beta=1.2`` its KL term can outweigh what a shard carries, and the
        latent space then collapses to the mean spectrum.
    widths : tuple of 4 int
        Channel widths of the network stages.
    validation_fraction : float
        Fraction of the map's S × S tiles, drawn at random over the whole map
        (``random_state``), held out to monitor the validation loss (training
        shards get zero weight on those pixels); 0 disables it. Maps with
        fewer than 4 tiles train without validation.
    early_stopping : bool
        Stop when the validation loss has not improved for ``patience``
        measures; the best weights are kept. Without validation tiles
        (``validation_fraction=0``, or a map of fewer than 4 tiles) the whole
        budget is trained and the last weights are kept: the training loss
        of a few batches is too noisy to tell convergence.
        The validation tiles are at most 64 (``sampling.MAX_VALIDATION_SHARDS``), so a
        measure costs the same on every map.
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
        Draw this many shards at uniformly random positions per tiling instead
        of one randomly offset tiling (``(ny/S)·(nx/S)`` shards, e.g. 64 on a
        192 × 192 map).

    Examples
    --------
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> s = bifeo3_si((48, 48), random_state=0).isig[680.:740.]
    >>> cvae = CVAE(max_steps=20, validation_every=10, random_state=0,
    ...             show_progressbar=False).fit(s.data)
    >>> cvae.history_["steps"]
    [10, 20]
    >>> len(CVAE(epochs=2, random_state=0, show_progressbar=False).fit(s.data).history_["train_loss"])
    2
    """

    def __init__(self, latent_dim=48, beta=1.2, shard_size="auto", stride=None, max_steps="auto",
                 validation_every="auto", epochs=None, batch_size=2, learning_rate=1e-3, loss="poisson",
                 widths=(8, 16, 32, 32), validation_fraction=0.1, early_stopping=True, patience=6,
                 augment=True, device="auto", random_state=None, show_progressbar=None,
                 shards_per_epoch=None):
        self.shards_per_epoch = shards_per_epoch
        self.max_steps = max_steps
        self.validation_every = validation_every
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

    def __sklearn_is_fitted__(self):
        return hasattr(self, "model_")

    @property
    def is_fitted(self) -> bool:
        """True once :meth:`fit` (or :meth:`load`) has run."""
        return hasattr(self, "model_")

    def _validate_params(self):
        if self.loss not in ("ce", "poisson"):
            raise ValueError(f"`loss` must be 'ce' or 'poisson', got {self.loss!r}.")
        if self.shard_size != "auto" and (isinstance(self.shard_size, str) or int(self.shard_size) % 4
                                          or int(self.shard_size) < 8):
            raise ValueError(f"`shard_size` must be 'auto' or a multiple of 4 and >= 8, got "
                             f"{self.shard_size!r}.")
        top = 24 if self.shard_size == "auto" else int(self.shard_size)
        if self.stride is not None and not 1 <= int(self.stride) <= top:
            raise ValueError(f"`stride` must be in [1, shard_size], got {self.stride}.")
        budget = ("epochs",) if self.epochs is not None else ("max_steps", "validation_every")
        for name in budget + ("batch_size",):
            value, auto = getattr(self, name), name in ("max_steps", "validation_every")
            if auto and isinstance(value, str) and value == "auto":
                continue
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
                also = " or 'auto'" if auto else ""
                raise ValueError(f"`{name}` must be an integer >= 1{also}, got {value!r}.")
        if not 0 <= float(self.validation_fraction) < 0.5:
            raise ValueError("`validation_fraction` must be in [0, 0.5).")
        if float(self.beta) < 0 or int(self.latent_dim) < 1:
            raise ValueError("`beta` must be >= 0 and `latent_dim` >= 1.")

    def _loss(self, model, p, counts, weight, sample=True):
        logits, mu, logvar = model(p, sample=sample)
        if self.loss == "ce":
            rec = cross_entropy_loss(logits, p, weight)
        else:
            rec = poisson_nll_loss(logits, counts, weight)
        kl = kl_divergence(mu, logvar)
        return rec + float(self.beta) * kl, rec, kl

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
            ``{"offset", "scale", "size", "units"}`` of the energy axis of ``X``
            (``size`` and ``units`` default to ``E`` and ""); stored in the
            checkpoint to refuse incompatible data later, and used to name dead
            channels in eV.
        max_train_shards : int, optional
            Dask input only: number of shards held in memory for training
            (validation shards included). Default: as many as fit in 128 MiB
            (``S·S·E`` float32 values per shard, twice that for
            ``loss="poisson"``), at most all the candidate shards. Candidates
            lie on a grid of stride ``S/2`` (random offset) outside the
            validation tiles; the cache is filled once and every epoch visits
            all cached shards in a new random order, with random flips and
            rotations. Memory of the fit ≈ this cache + a few dask chunks.

        Returns
        -------
        self

        Raises
        ------
        NonFiniteTrainingError
            (a ``FloatingPointError`` and a ``ValueError``) if a training loss,
            a gradient or a validation loss becomes NaN/inf; the step is not
            applied, and the message names the likely cause found in the data
            (dead channels, all-zero spectra, negative offsets, huge counts).

        Notes
        -----
        Negative counts (e.g. after background subtraction) are clipped to 0
        before the per-spectrum normalisation (a warning gives their number);
        the input is not modified. NaN/inf, complex and non-3D input is refused.
        Integer counts are converted to float32. A channel without counts in
        every training spectrum (a dead channel) is allowed (a warning names
        it): the model reconstructs it as ~0.

        ``history_["val_loss"]`` is NaN only when the fit has no validation
        tiles (``validation_fraction=0`` or a map of fewer than 4 tiles); with
        validation, every value is finite (checked like the training loss).

        Threads: the training section (from the weight initialisation to the
        last epoch) holds a module-level lock, because it seeds and draws from
        torch's process-global RNG. Concurrent ``fit`` calls in several threads
        therefore train one after the other (their data preparation still runs
        in parallel), and each gives the same model, bit for bit, as the same
        fit run alone.
        """
        from hyperspy.defaults_parser import preferences
        self._validate_params()
        lazy = hasattr(X, "dask")
        if not lazy:
            X = X.compute() if hasattr(X, "compute") else np.asarray(X)
        if X.ndim != 3:
            raise ValueError(f"X must have shape (ny, nx, E), got {X.shape}.")
        if np.iscomplexobj(X):
            raise TypeError("X is complex; the CVAE needs real counts (take `.real` or `abs()` first).")
        ny, nx, n_e = X.shape
        s = self.shard_size_ = resolve_shard_size(self.shard_size, (ny, nx))
        by_steps = self.epochs is None
        self.max_steps_ = auto_steps(self.max_steps, s) if by_steps else None
        self.validation_every_ = auto_steps(self.validation_every, s, DEFAULT_EVERY) if by_steps else None
        if self.stride is not None and int(self.stride) > s:
            raise ValueError(f"`stride` ({self.stride}) exceeds the shard size ({s}).")
        if min(ny, nx) < 8:
            raise ValueError(f"The map ({ny} × {nx}) is smaller than the smallest shard (8 × 8): the "
                             "CVAE needs maps of at least 8 pixels a side.")
        if min(ny, nx) < s:
            raise ValueError(f"The map ({ny} × {nx}) is smaller than one shard ({s} × {s}); pass a "
                             f"smaller `shard_size` (e.g. {max(8, (min(ny, nx) // 4) * 4)}) or "
                             "shard_size='auto'.")
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
        val_pos, w_train = validation_blocks(self, rng, weight)
        if lazy:
            data = shard_cache(self, X, weight, w_train, val_pos, rng, max_train_shards)
        else:
            data = eager_data(self, X, weight, w_train, val_pos)
        arrays, next_positions, (val_pos, val_arrays), mean_spec, info = data
        axis = {"offset": 0.0, "scale": 1.0, "size": n_e, "units": ""}
        if energy_axis:  # the caller's axis; size and units default as above
            axis = dict(energy_axis)
            axis.setdefault("size", n_e)
            axis.setdefault("units", "")
        dead = dead_channels(mean_spec, info["floor"])
        if dead.size:
            what = describe_channels(dead, axis)
            _logger.warning("%s%s %s no counts in any training spectrum (dead channel?); the model "
                            "reconstructs %s as ~0.", what[0].upper(), what[1:],
                            "has" if dead.size == 1 else "have", "it" if dead.size == 1 else "them")
        show = preferences.General.show_progressbar if self.show_progressbar is None else self.show_progressbar

        def failure(what, value, epoch, step):
            return nonfinite_error(what, value, epoch, step, info, axis, self)

        with _TRAINING_LOCK, torch.random.fork_rng(
                devices=[] if self.device_.type == "cpu" else [self.device_]):
            torch.manual_seed(torch_seed)
            model = CVAE3D(n_e, s, int(self.latent_dim), tuple(self.widths),
                           mean_spectrum=torch.from_numpy(mean_spec)).to(self.device_)
            history, n_steps = train(self, model, arrays, next_positions, val_pos, val_arrays, rng,
                                     failure, show)
        model.eval()
        self.energy_axis_ = axis  # set with the model: a failed refit leaves the old state whole
        self.n_channels_ = n_e
        self.model_ = model
        self.history_ = history
        self.fit_seconds_ = history["seconds"][-1] if history["seconds"] else 0.0
        self.n_steps_ = n_steps
        self.n_train_pixels_ = int(weight.sum())
        del arrays, data
        _release_freed_memory()
        return self

    # -- inference ------------------------------------------------------------
    def forward_shards(self, shards, batch_size=None):
        """Counts shards (N, S, S, E) → reconstructed counts (N, S, S, E), latent means (N, L).

        ``batch_size`` None: as many shards per pass as hold about 4 MiB of
        input spectra (the network's activations are ~15× that), which bounds
        the memory of every inference task.
        """
        p, total = normalise_spectra(shards)
        return self.forward_normalised(p, total, batch_size)

    def forward_normalised(self, p, total, batch_size=None):
        """:meth:`forward_shards` of spectra already normalised: ``p`` (N, S, S, E) float32 and
        their totals (N, S, S) (:func:`~hyperspy_cvae.cvae.sampling.normalise_spectra`)."""
        check_is_fitted(self)
        if batch_size is None:
            batch_size = max(1, _INFERENCE_BYTES // max(1, p[0].size * 4)) if len(p) else 1
        model = self.model_
        dev = next(model.parameters()).device
        rec = np.empty(p.shape, np.float32)
        lats = np.empty((len(p), int(self.latent_dim)), np.float32)
        with TORCH_LOCK, torch.no_grad():
            for i in range(0, len(p), batch_size):
                pb = torch.from_numpy(np.ascontiguousarray(p[i:i + batch_size])).to(dev)
                mu, _ = model.encode(pb)
                probs = torch.softmax(model.decode(mu).float(), dim=-1)
                rec[i:i + batch_size] = probs.cpu().numpy()
                lats[i:i + batch_size] = mu.float().cpu().numpy()
        rec *= np.asarray(total, np.float32)[..., None]
        return rec, lats

    def transform(self, shards, batch_size=None):
        """Latent means of count shards (N, S, S, E) → (N, latent_dim)."""
        return self.forward_shards(np.asarray(shards), batch_size)[1]

    def to(self, device):
        """Move the fitted network to ``device`` ("auto", "cpu", "cuda"); returns self."""
        check_is_fitted(self)
        self.device_ = resolve_device(device)
        self.model_.to(self.device_)
        return self

    def check_energy_axis(self, offset, scale, size=None, units=None):
        """Raise ``ValueError`` if an energy axis differs from the training one.

        The model only applies to spectra on the channels it was trained on:
        same dispersion (scale), and the training range must be found on the
        axis (compared to a hundredth of a channel).
        """
        check_is_fitted(self)
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

    # -- persistence (see :mod:`hyperspy_cvae.cvae.checkpoint`) -------------------
    def save(self, path):
        """Save weights and everything needed to apply them (a ``torch.save`` file).

        The file holds only tensors and a JSON string (with a SHA-256 of the
        weights), so :meth:`load` reads it with ``torch.load(weights_only=True)``
        (no code is executed) and verifies it. The file is written atomically.

        Raises
        ------
        OSError
            If ``path`` is a folder, its folder does not exist or is not
            writable (the message names the path and the reason).
        """
        check_is_fitted(self)
        save_checkpoint(self, path)
        self.checkpoint_path_ = str(path)
        return path

    def checksum(self) -> str:
        """SHA-256 of the weights (identifies the model in results' metadata)."""
        check_is_fitted(self)
        return weights_checksum(self.model_)

    @classmethod
    def load(cls, path, device="auto"):
        """Load a checkpoint written by :meth:`save`.

        Raises
        ------
        ValueError
            If the file is not a readable hyperspy-cvae checkpoint (corrupt,
            truncated, or foreign), its weights do not match the SHA-256 stored
            with them (format version 2; version 1 files load unverified), its
            metadata break the schema (the offending field is named: see
            :func:`~hyperspy_cvae.cvae.checkpoint.validate_metadata`), or its
            weights are NaN/inf. Files containing pickled code are refused by
            ``torch.load(weights_only=True)``.
        """
        return load_checkpoint(cls, path, device)

    def summary(self) -> dict:
        """Parameter count and multiply-adds per spectrum of the fitted network."""
        check_is_fitted(self)
        return count_macs(self.model_)
