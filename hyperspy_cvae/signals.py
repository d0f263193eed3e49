"""The registered signal classes: thin wrappers that validate, read the
calibrated axes and metadata, and call the plain functions of the package."""

from __future__ import annotations

import logging
from functools import partial

import numpy as np
from exspy.signals import EELSSpectrum, LazyEELSSpectrum
from hyperspy.docstrings.signal import SHOW_PROGRESSBAR_ARG

from ._validation import (all_spectra_identical, check_counts, check_finite_score, check_map_signal,
                          check_real, energy_axis, window_slice)
from .inject import cluster_mask, shift_window

__all__ = ["CVAEEELSSpectrum", "LazyCVAEEELSSpectrum", "to_cvae"]

_logger = logging.getLogger(__name__)

_FIT_KEYS = ("signal_range", "train_mask", "latent_dim", "beta", "shard_size", "stride", "epochs",
             "batch_size", "learning_rate", "loss", "widths", "validation_fraction",
             "early_stopping", "patience", "augment", "random_state", "max_train_shards")


def _nav_map(signal, data, title):
    """An eager Signal2D with the navigation calibration of ``signal``."""
    from hyperspy.signals import Signal2D

    axes = [ax.get_axis_dictionary() for ax in signal.axes_manager.navigation_axes[::-1]]
    for ax in axes:
        ax["navigate"] = False
    out = Signal2D(np.asarray(data), axes=axes)
    out.metadata.General.title = title
    return out


class CVAEEELSSpectrum(EELSSpectrum):
    """EELS spectrum image with 3D-CVAE anomaly detection.

    Everything :class:`exspy.signals.EELSSpectrum` does, plus
    :meth:`fit_cvae`, :meth:`cvae_decomposition`, :meth:`inject_shift` and
    :meth:`anomaly_map`. Get one with ``s.set_signal_type("CVAE_EELS")``,
    ``hs.load(file, signal_type="CVAE_EELS")`` or :func:`hyperspy_cvae.to_cvae`.
    """

    _signal_type = "CVAE_EELS"
    _alias_signal_types = ["CVAE EELS"]

    # ------------------------------------------------------------------ inject
    def inject_shift(self, dE, window=(690.0, 730.0), n_clusters=6, cluster_size=6, mask=None,
                     random_state=None, return_mask=False, ramp=2.0):
        """Return a copy with the edge in ``window`` shifted by ``dE`` eV in chosen pixels.

        The input signal is never modified. Inside the window the spectra of the
        chosen pixels are shifted by sub-channel, count-conserving
        interpolation (see :func:`hyperspy_cvae.inject.shift_window`): no
        wrap-around, the spectrum outside the window is untouched and joined
        continuously through raised-cosine ramps, and the total counts inside
        the window are preserved.

        Parameters
        ----------
        dE : float
            Shift in eV (axis units); positive moves the edge to higher loss.
            Must be smaller than the window width.
        window : tuple of float
            ``(start, end)`` in eV, e.g. the Fe L2,3 edge ``(690., 730.)``.
        n_clusters, cluster_size : int
            Number and side (pixels) of the square, non-overlapping patches
            of anomalous pixels (ignored when ``mask`` is given).
        mask : array of bool (ny, nx) or Signal2D, optional
            Pixels to shift instead of random patches (array order, i.e. the
            shape of ``s.data.shape[:2]``).
        random_state : int, numpy.random.Generator or None
            Seed for the patch positions.
        return_mask : bool
            If True return ``(signal, truth_mask)``.
        ramp : float
            Width in eV of the blending ramps at each end of the window.

        Returns
        -------
        CVAEEELSSpectrum or (CVAEEELSSpectrum, Signal2D)
            The new signal; ``metadata.CVAE.injection`` holds ``dE``, ``window``,
            the seed and the truth mask (a boolean Signal2D with the navigation
            calibration).

        Examples
        --------
        >>> from hyperspy_cvae.data import bifeo3_si
        >>> s = bifeo3_si((48, 48), random_state=0)
        >>> s2, truth = s.inject_shift(2.5, n_clusters=2, random_state=1, return_mask=True)
        >>> int(truth.data.sum())
        72
        """
        axis = energy_axis(self)
        nav_shape = check_map_signal(self, what="inject_shift")
        sl = window_slice(axis, window)
        dE = float(dE)
        width = float(window[1]) - float(window[0])
        if not np.isfinite(dE) or abs(dE) >= width:
            raise ValueError(f"|dE| = {abs(dE):g} eV must be smaller than the window width "
                             f"{width:g} eV.")
        if mask is None:
            truth = cluster_mask(nav_shape, n_clusters, cluster_size, random_state=random_state)
        else:
            truth = np.asarray(mask.data if hasattr(mask, "axes_manager") else mask)
            if truth.shape != tuple(nav_shape):
                raise ValueError(f"`mask` has shape {truth.shape}, expected the navigation shape in "
                                 f"array order {tuple(nav_shape)}.")
            truth = truth.astype(bool)
        if not self._lazy:
            check_counts(self.data, name="The signal")
        shift_ch = dE / axis.scale
        ramp_ch = int(round(ramp / axis.scale))
        data = self.data
        if self._lazy:
            import dask.array as da

            data = data.rechunk({-1: -1})
            m = da.from_array(truth, chunks=data.chunks[:2])

            def _kernel(block, mblock):
                out = block.astype(np.float32 if block.dtype == np.float32 else np.float64, copy=True)
                sel = mblock[..., 0]
                if sel.any():
                    out[sel] = shift_window(block[sel], shift_ch, sl, ramp_ch)
                return out

            dtype = data.dtype if data.dtype == np.float32 else np.float64
            new = da.map_blocks(_kernel, data, m[..., None], dtype=dtype)
        else:
            dtype = data.dtype if data.dtype == np.float32 else np.float64
            new = data.astype(dtype, copy=True)
            if truth.any():
                new[truth] = shift_window(data[truth], shift_ch, sl, ramp_ch)
        out = self._deepcopy_with_new_data(new)
        truth_sig = _nav_map(self, truth, f"Injected shift {dE:g} eV (truth)")
        seed = random_state if isinstance(random_state, (int, np.integer, type(None))) else "Generator"
        info = {"dE": dE, "window": [float(window[0]), float(window[1])],
                "random_state": None if seed is None else (seed if isinstance(seed, str) else int(seed)),
                "n_clusters": None if mask is not None else int(n_clusters),
                "cluster_size": None if mask is not None else int(cluster_size),
                "n_pixels": int(truth.sum()), "method": "count-conserving sub-channel shift",
                "mask": truth_sig}
        out.metadata.set_item("CVAE.injection", info)
        title = self.metadata.General.title or "Spectrum image"
        out.metadata.General.title = f"{title} (+{dE:g} eV shift injected)"
        return (out, truth_sig) if return_mask else out

    # -------------------------------------------------------------------- CVAE
    def fit_cvae(self, signal_range=None, train_mask=None, latent_dim=48, beta=1.2, shard_size=24,
                 stride=None, epochs=30, batch_size=8, learning_rate=1e-3, device="auto",
                 random_state=None, show_progressbar=None, validation_fraction=0.1,
                 early_stopping=True, max_train_shards=None, **model_kwargs):
        """Train a 3D convolutional VAE on this spectrum image.

        A lazy signal is never loaded as a whole: training shards are sampled
        (``random_state``) and only those blocks are read from the dask chunks
        into a bounded cache (``max_train_shards``).

        Parameters
        ----------
        signal_range : tuple of float, optional
            ``(start, end)`` energy range in eV to learn (e.g. ``(660., 760.)``
            around Fe L2,3); None uses the whole axis (slower). Fewer channels =
            faster training.
        train_mask : array of bool (ny, nx) or Signal2D, optional
            Pixels to learn from (known bulk); None uses all pixels (the
            realistic unsupervised case).
        latent_dim, beta : int, float
            Latent size and KL weight of the loss.
        shard_size : int
            Side of the square shards (pixels; multiple of 4).
        stride : int, optional
            Training shard stride (None: randomly offset tiling each epoch).
        epochs, batch_size, learning_rate : int, int, float
            Optimisation settings (Adam, cosine learning-rate schedule).
        device : str
            ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``.
        random_state : int or None
            Seed: same seed, same model on the CPU.
        %s
        validation_fraction : float
            Fraction of rows held out for the validation loss.
        early_stopping : bool
            Stop when the validation loss stops improving; keep the best weights.
        max_train_shards : int, optional
            Lazy signals only: shards held in memory for training (default: as
            many as fit in 128 MiB); see :meth:`hyperspy_cvae.CVAE.fit`.
        **model_kwargs
            Other :class:`hyperspy_cvae.CVAE` parameters: ``loss`` ("ce" or
            "poisson"), ``widths``, ``patience``, ``augment``.

        Returns
        -------
        hyperspy_cvae.CVAE
            The fitted model, also stored as ``s.cvae``.

        Examples
        --------
        >>> from hyperspy_cvae.data import bifeo3_si
        >>> s = bifeo3_si((48, 48), random_state=0)
        >>> cvae = s.fit_cvae(signal_range=(680., 740.), epochs=2, random_state=0,
        ...                   show_progressbar=False)
        >>> s.cvae is cvae
        True
        """
        from .training import CVAE

        check_map_signal(self, min_size=int(shard_size), what="fit_cvae")
        cropped, sr = self._crop_energy(signal_range)
        if train_mask is not None:
            train_mask = np.asarray(train_mask.data if hasattr(train_mask, "axes_manager") else train_mask)
        cvae = CVAE(latent_dim=latent_dim, beta=beta, shard_size=shard_size, stride=stride,
                    epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, device=device,
                    random_state=random_state, show_progressbar=show_progressbar,
                    validation_fraction=validation_fraction, early_stopping=early_stopping,
                    **model_kwargs)
        ax = energy_axis(cropped)
        data = cropped.data
        cvae.fit(data, train_mask=train_mask,
                 energy_axis={"offset": float(ax.offset), "scale": float(ax.scale),
                              "size": int(ax.size), "units": str(ax.units)},
                 max_train_shards=max_train_shards)
        cvae.signal_range_ = list(sr)
        self.cvae = cvae
        self.metadata.set_item("CVAE.model", {"checksum": cvae.checksum(), "signal_range": list(sr),
                                              "latent_dim": int(latent_dim), "beta": float(beta),
                                              "fit_seconds": float(cvae.fit_seconds_)})
        return cvae

    fit_cvae.__doc__ %= SHOW_PROGRESSBAR_ARG

    def _crop_energy(self, signal_range):
        axis = energy_axis(self)
        if signal_range is None:
            return self, (float(axis.axis[0]), float(axis.axis[-1] + axis.scale))
        sl = window_slice(axis, signal_range, min_channels=16, name="signal_range")
        lo = float(axis.offset + sl.start * axis.scale)
        return self.isig[sl.start:sl.stop], (lo, lo + (sl.stop - sl.start) * axis.scale)

    def _crop_to_model(self, cvae):
        axis = energy_axis(self)
        cvae.check_energy_axis(axis.offset, axis.scale)
        tr = cvae.energy_axis_
        i0 = int(round((tr["offset"] - axis.offset) / axis.scale))
        i1 = i0 + cvae.n_channels_
        if i0 < 0 or i1 > axis.size:
            last = axis.offset + axis.size * axis.scale
            raise ValueError(
                f"The model was trained on {tr['offset']:g}–{tr['offset'] + cvae.n_channels_ * axis.scale:g} "
                f"{axis.units} but the data cover {axis.offset:g}–{last:g} {axis.units}.")
        return self.isig[i0:i1]

    def cvae_decomposition(self, cvae=None, stride=None, batch_size=None, device="auto",
                           show_progressbar=None, chunk=None):
        """Reconstruct the spectrum image with a fitted CVAE (latent means).

        The analogue of ``get_decomposition_model()``: shards are cut, encoded
        to their latent mean, decoded and blended back, chunk by chunk through
        dask, so a lazy signal larger than memory is processed with memory
        bounded by a few navigation chunks (and a ``dask.distributed`` client,
        if one is active, runs the chunks on its workers).

        Parameters
        ----------
        cvae : hyperspy_cvae.CVAE, optional
            Fitted model (default ``s.cvae``).
        stride : int, optional
            Inference stride; default half a shard (every pixel is blended from
            4 shards; no seams). Must divide the shard size.
        batch_size : int, optional
            Shards per forward pass (default: about 4 MiB of input spectra,
            e.g. 5 shards of 24 × 24 × 334 channels, which bounds the memory
            of each task to ~100 MiB).
        device : str
            Where to run the network (``"auto"``: CUDA if available).
        %s
        chunk : int, optional
            Navigation block size in pixels (default: the lazy data's own
            navigation chunks when they are a multiple of the stride and at
            least a shard, else 4 shards; unsuitable chunks are rechunked with a
            log message, see :func:`hyperspy_cvae.shards.plan_blocks`).

        Returns
        -------
        CVAEEELSSpectrum or LazyCVAEEELSSpectrum
            Reconstruction over the model's energy range (lazy if ``s`` is lazy),
            with ``metadata.CVAE.reconstruction``. Latent means of every shard
            are kept in ``s.cvae_results["latent_map"]`` (a Signal2D stack, one
            image per latent dimension, on the shard grid) with the shard
            positions.

        Examples
        --------
        >>> from hyperspy_cvae.data import bifeo3_si
        >>> s = bifeo3_si((48, 48), random_state=0)
        >>> _ = s.fit_cvae(signal_range=(680., 740.), epochs=1, show_progressbar=False)
        >>> rec = s.cvae_decomposition(show_progressbar=False)
        >>> rec.data.shape
        (48, 48, 200)
        """
        from hyperspy.defaults_parser import preferences

        from .shards import active_client, map_shards
        from .training import ModelHandle, forward_block

        cvae = cvae if cvae is not None else getattr(self, "cvae", None)
        if cvae is None:
            raise RuntimeError("No fitted CVAE: call `s.fit_cvae(...)` first or pass `cvae=`.")
        cvae.to(device)
        s_size = int(cvae.shard_size)
        check_map_signal(self, min_size=s_size, what="cvae_decomposition")
        cropped = self._crop_to_model(cvae)
        if not self._lazy:
            check_counts(cropped.data, name="The signal")
        stride = int(stride) if stride is not None else max(1, s_size // 2)
        latent_dim = int(cvae.latent_dim)

        # The model travels once per worker (scattered), never pickled into every task.
        payload = ModelHandle(cvae, device) if active_client() is not None else cvae
        recon, latents, grid = map_shards(cropped.data, partial(forward_block, batch_size=batch_size),
                                          shard_size=s_size, stride=stride, n_out=cvae.n_channels_,
                                          chunk=chunk, latent_dim=latent_dim, payload=payload)
        if not self._lazy:
            show = preferences.General.show_progressbar if show_progressbar is None else show_progressbar
            recon, latents = _compute_eager(recon, latents, show)
        rec = cropped._deepcopy_with_new_data(recon)
        rec.metadata.General.title = f"CVAE reconstruction of {self.metadata.General.title}"
        rec.metadata.set_item("CVAE.reconstruction", {
            "method": "CVAE", "stride": stride, "shard_size": s_size,
            "signal_range": list(cvae.signal_range_) if getattr(cvae, "signal_range_", None) else None,
            "model_checksum": cvae.checksum(), "latent": "mean"})
        lat = latents.transpose(2, 0, 1) if not isinstance(latents, np.ndarray) else np.moveaxis(latents, 2, 0)
        self.cvae_results = {"latent_map": self._latent_signal(lat, grid, stride, s_size),
                             "pos_y": grid["pos_y"], "pos_x": grid["pos_x"], "stride": stride,
                             "shard_size": s_size}
        return rec

    cvae_decomposition.__doc__ %= SHOW_PROGRESSBAR_ARG

    def _latent_signal(self, lat, grid, stride, shard_size):
        from hyperspy.signals import Signal2D

        ax_x, ax_y = self.axes_manager.navigation_axes[:2]
        axes = [{"name": "latent dimension", "size": lat.shape[0], "navigate": True}]
        for ax, n in ((ax_y, lat.shape[1]), (ax_x, lat.shape[2])):
            axes.append({"name": ax.name, "units": ax.units, "size": n, "navigate": False,
                         "scale": ax.scale * stride,
                         "offset": ax.offset + ax.scale * (shard_size - 1) / 2})
        out = Signal2D(lat, axes=axes)
        if not isinstance(lat, np.ndarray):
            out = out.as_lazy() if not out._lazy else out
        out.metadata.General.title = "CVAE latent means (shard centres)"
        return out

    # -------------------------------------------------------------- anomalies
    def anomaly_map(self, method="pca", window=(690.0, 730.0), n_components=3, threshold="otsu",
                    score="pcc", cvae=None, show_progressbar=None, **kwargs):
        """Score every pixel and classify anomalies: returns ``(score_map, mask)``.

        Parameters
        ----------
        method : {"pca", "cvae"}
            ``"pca"``: HyperSpy's ``decomposition()`` on a copy (``kwargs`` go to
            it, e.g. ``normalize_poissonian_noise=True``) and
            ``get_decomposition_model(n_components)``. ``"cvae"``: the fitted
            model (``s.cvae`` or ``cvae=``); if there is none and ``kwargs`` holds
            :meth:`fit_cvae` arguments (e.g. ``epochs=20``), one is fitted first
            on ``signal_range`` (default: the window ± 20 eV, clipped to the axis).
            Remaining ``kwargs`` go to :meth:`cvae_decomposition`.
        window : tuple of float
            Energy window in eV in which the score is computed.
        n_components : int
            PCA components kept (``method="pca"``).
        threshold : "otsu", float or None
            Classification (see :func:`hyperspy_cvae.scoring.threshold_anomalies`);
            None skips it and returns ``(score_map, None)``.
        score : {"pcc"}
            Per-pixel score: Pearson correlation of input and reconstruction in
            the window (low = anomalous).
        %s

        Returns
        -------
        score_map, mask : Signal2D, Signal2D of bool
            Calibrated like the navigation axes, with ``metadata.CVAE``
            describing method, window and threshold. For a lazy signal the
            score map is computed to threshold it (it is only ny × nx); with
            ``threshold=None`` it stays lazy.

        Examples
        --------
        >>> from hyperspy_cvae.data import bifeo3_si
        >>> s = bifeo3_si((48, 48), random_state=0).inject_shift(4.0, n_clusters=2, random_state=1)
        >>> pcc, mask = s.anomaly_map("pca", n_components=3)
        >>> pcc.metadata.CVAE.score.kind
        'pcc'
        """
        from .baselines import pca_reconstruction
        from .scoring import pcc_map, threshold_anomalies

        if score != "pcc":
            raise ValueError(f"`score` must be 'pcc', got {score!r}.")
        axis = energy_axis(self)
        window_slice(axis, window)
        check_map_signal(self, min_size=2, what="anomaly_map")
        if not self._lazy:
            check_counts(self.data, name="The signal")
        if method == "pca":
            rec = pca_reconstruction(self, n_components, **kwargs)
            original = self
        elif method == "cvae":
            fit_kw = {k: kwargs.pop(k) for k in list(kwargs) if k in _FIT_KEYS}
            if cvae is None:
                cvae = getattr(self, "cvae", None)
            if cvae is None:
                if not fit_kw:
                    raise RuntimeError(
                        "No fitted CVAE on this signal: call `s.fit_cvae(...)` first, pass `cvae=`, "
                        "or pass fit_cvae arguments (e.g. `epochs=20, random_state=0`) to fit one now.")
                if "signal_range" not in fit_kw:
                    lo = max(float(window[0]) - 20.0, float(axis.axis[0]))
                    hi = min(float(window[1]) + 20.0, float(axis.axis[-1] + axis.scale))
                    fit_kw["signal_range"] = (lo, hi)
                cvae = self.fit_cvae(show_progressbar=show_progressbar, **fit_kw)
            elif fit_kw:
                raise ValueError(f"A fitted CVAE exists; fit arguments {sorted(fit_kw)} would be ignored. "
                                 "Call `s.fit_cvae(...)` to refit.")
            rec = self.cvae_decomposition(cvae=cvae, show_progressbar=show_progressbar, **kwargs)
            original = self._crop_to_model(cvae)
        else:
            raise ValueError(f"`method` must be 'pca' or 'cvae', got {method!r}.")
        pcc = pcc_map(original, rec, window)
        if threshold is None:
            return pcc, None
        identical = all_spectra_identical(original.data, window_slice(energy_axis(original), window))
        if pcc._lazy:
            import dask

            pcc.data, identical = dask.compute(pcc.data, identical)
            pcc._lazy = False
            pcc._assign_subclass()
        check_finite_score(pcc.data)
        mask = threshold_anomalies(pcc, threshold)
        if identical:  # nothing can be anomalous; Otsu on rounding noise would flag pixels
            mask.data[:] = False
            mask.metadata.set_item("CVAE.threshold.decision", "all spectra identical: no anomalies")
            mask.metadata.set_item("CVAE.threshold.n_flagged", 0)
        method_label = rec.metadata.CVAE.reconstruction.method
        for sig in (pcc, mask):
            sig.metadata.set_item("CVAE.method", method_label)
            sig.metadata.set_item("CVAE.source", self.metadata.General.title)
        return pcc, mask

    anomaly_map.__doc__ %= SHOW_PROGRESSBAR_ARG


def _compute_eager(recon, latents, show_progressbar):
    """Compute dask results for an eager signal: the distributed client if one is
    active, otherwise the synchronous scheduler (torch already uses all cores)."""
    import dask

    try:
        from distributed import default_client

        default_client()
        return dask.compute(recon, latents)
    except (ImportError, ValueError):
        pass
    if show_progressbar:
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            return dask.compute(recon, latents, scheduler="synchronous")
    return dask.compute(recon, latents, scheduler="synchronous")


class LazyCVAEEELSSpectrum(CVAEEELSSpectrum, LazyEELSSpectrum):
    """Lazy (dask-backed) twin of :class:`CVAEEELSSpectrum`."""


def to_cvae(signal):
    """Return ``signal`` as a :class:`CVAEEELSSpectrum` (or its lazy twin).

    The data are shared, not copied; metadata and axes are copied.

    Examples
    --------
    >>> import hyperspy.api as hs
    >>> s = hs.signals.Signal1D(np.ones((4, 4, 50)))
    >>> to_cvae(s)
    <CVAEEELSSpectrum, title: , dimensions: (4, 4|50)>
    """
    energy_axis(signal)
    check_real(signal.data, name="The signal")
    out = signal._deepcopy_with_new_data(signal.data)
    out.set_signal_type("CVAE_EELS")
    return out
