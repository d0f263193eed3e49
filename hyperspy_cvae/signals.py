"""The registered signal classes: thin wrappers that validate, read the
calibrated axes and metadata, and call the plain functions of the package."""

from __future__ import annotations

import logging
from functools import partial

import numpy as np
from exspy.signals import EELSSpectrum, LazyEELSSpectrum
from hyperspy.docstrings.signal import SHOW_PROGRESSBAR_ARG

from ._validation import (all_spectra_identical, check_counts, check_finite_score, check_map_signal,
                          check_real, energy_axis, navigation_mask_array, window_slice)
from ._version import __version__
from .inject import cluster_mask, shift_window

__all__ = ["CVAEEELSSpectrum", "LazyCVAEEELSSpectrum", "to_cvae"]

_logger = logging.getLogger(__name__)

_FIT_KEYS = ("signal_range", "train_mask", "latent_dim", "beta", "shard_size", "stride", "epochs",
             "batch_size", "learning_rate", "loss", "widths", "validation_fraction",
             "early_stopping", "patience", "augment", "random_state", "shards_per_epoch",
             "max_train_shards")


def _nav_map(signal, data, title):
    """An eager Signal2D with the navigation calibration of ``signal``."""
    from hyperspy.signals import Signal2D

    axes = [ax.get_axis_dictionary() for ax in signal.axes_manager.navigation_axes[::-1]]
    for ax in axes:
        ax["navigate"] = False
    out = Signal2D(np.asarray(data), axes=axes)
    out.metadata.General.title = title
    return out


def _latent_info(signal, stride, shard_size, cvae):
    """``metadata.CVAE.latent`` of a latent map: where its shards sit on the pixel grid."""
    ax_x, ax_y = signal.axes_manager.navigation_axes[:2]
    grid = {key: {"size": int(ax.size), "scale": float(ax.scale), "offset": float(ax.offset),
                  "units": str(ax.units), "name": str(ax.name)} for key, ax in (("y", ax_y), ("x", ax_x))}
    sr = getattr(cvae, "signal_range_", None)
    return {"shard_size": int(shard_size), "stride": int(stride), "pixel_grid": grid,
            "signal_range": [float(v) for v in sr] if sr else None,
            "model_checksum": cvae.checksum(), "checkpoint": getattr(cvae, "checkpoint_path_", None) or "",
            "package_version": __version__, "source": signal.metadata.General.title}


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
                "ramp": float(ramp),
                "mask": truth_sig}
        out.metadata.set_item("CVAE.injection", info)
        title = self.metadata.General.title or "Spectrum image"
        out.metadata.General.title = f"{title} (+{dE:g} eV shift injected)"
        return (out, truth_sig) if return_mask else out

    # -------------------------------------------------------------------- CVAE
    def fit_cvae(self, signal_range=None, train_mask=None, latent_dim=48, beta=1.2, shard_size=24,
                 stride=None, epochs=30, batch_size=2, learning_rate=1e-3, device="auto",
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
            Fraction of the S × S tiles (random, scattered over the map) held
            out for the validation loss.
        early_stopping : bool
            Stop when the validation loss stops improving; keep the best weights.
        max_train_shards : int, optional
            Lazy signals only: shards held in memory for training (default: as
            many as fit in 128 MiB); see :meth:`hyperspy_cvae.CVAE.fit`.
        **model_kwargs
            Other :class:`hyperspy_cvae.CVAE` parameters: ``loss`` ("poisson",
            the default, or the paper's "ce"), ``widths``, ``patience``, ``augment``.

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
                                              "fit_seconds": float(cvae.fit_seconds_),
                                              "package_version": __version__})
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
            "model_checksum": cvae.checksum(), "latent": "mean",
            "checkpoint": getattr(cvae, "checkpoint_path_", None) or "", "package_version": __version__})
        lat = latents.transpose(2, 0, 1) if not isinstance(latents, np.ndarray) else np.moveaxis(latents, 2, 0)
        self.cvae_results = {"latent_map": self._latent_signal(lat, grid, stride, s_size, cvae),
                             "pos_y": grid["pos_y"], "pos_x": grid["pos_x"], "stride": stride,
                             "shard_size": s_size}
        return rec

    cvae_decomposition.__doc__ %= SHOW_PROGRESSBAR_ARG

    def _latent_signal(self, lat, grid, stride, shard_size, cvae):
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
        out.metadata.set_item("CVAE.latent", _latent_info(self, stride, shard_size, cvae))
        return out

    # -------------------------------------------------------------- anomalies
    def _reconstruct_for_scoring(self, method, window, n_components, cvae, show_progressbar,
                                 kwargs):
        """(original, reconstruction) on the same energy axis, for ``method`` "pca" or "cvae"."""
        from .baselines import pca_reconstruction

        axis = energy_axis(self)
        window_slice(axis, window)
        check_map_signal(self, min_size=2, what="anomaly_map")
        if not self._lazy:
            check_counts(self.data, name="The signal")
        if method == "pca":
            return self, pca_reconstruction(self, n_components, **kwargs)
        if method != "cvae":
            raise ValueError(f"`method` must be 'pca', 'cvae' or 'rx', got {method!r}.")
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
        return self._crop_to_model(cvae), rec

    def anomaly_map(self, method="pca", window=(690.0, 730.0), n_components=3, threshold="otsu",
                    score="shift", cvae=None, show_progressbar=None, max_shift=10.0,
                    navigation_mask=None, **kwargs):
        """Score every pixel and classify anomalies: returns ``(score_map, mask)``.

        Parameters
        ----------
        method : {"pca", "cvae", "rx"}
            ``"pca"``: HyperSpy's ``decomposition()`` on a copy (``kwargs`` go to
            it, e.g. ``normalize_poissonian_noise=True``) and
            ``get_decomposition_model(n_components)``. ``"cvae"``: the fitted
            model (``s.cvae`` or ``cvae=``); if there is none and ``kwargs`` holds
            :meth:`fit_cvae` arguments (e.g. ``epochs=20``), one is fitted first
            on ``signal_range`` (default: the window ± 20 eV, clipped to the axis).
            Remaining ``kwargs`` go to :meth:`cvae_decomposition`. ``"rx"``: the
            Reed–Xiaoli detector on ``n_components`` PCA scores of the window
            (:func:`hyperspy_cvae.baselines.rx_map`; it has its own statistic,
            ``score`` is ignored).
        window : tuple of float
            Energy window in eV in which the score is computed.
        n_components : int
            PCA components kept (``method="pca"`` or ``"rx"``).
        threshold : "otsu", float or None
            Classification (see :func:`hyperspy_cvae.scoring.threshold_anomalies`);
            None skips it and returns ``(score_map, None)``.
        score : {"shift", "pcc", "deviance"}
            Per-pixel score of the input against its reconstruction in the window:
            ``"shift"`` (default): likelihood-ratio evidence for an energy shift
            of the spectrum against its reconstruction, high = anomalous (see
            :meth:`shift_map`); ``"pcc"`` (the paper's): Pearson correlation, low
            = anomalous; ``"deviance"``: Poisson deviance per channel, ≈ 1 for a
            good fit at any dose, high = anomalous (does not flag pixels where the
            edge is weak or absent). The default is ``"shift"`` because the
            benchmark (``python -m hyperspy_cvae.benchmark``) finds it better than
            PCC in ROC-AUC and F1 for every ΔE, prevalence, dose and case it runs,
            for the CVAE and for PCA; pass ``score="pcc"`` to reproduce the paper.
        max_shift : float
            Largest shift searched by ``score="shift"``, in eV.
        navigation_mask : array of bool (ny, nx) or Signal2D, optional
            Pixels to leave out, as in HyperSpy's ``decomposition(navigation_mask=...)``:
            True = not scored (NaN in the score map), never flagged, and not part
            of the histogram the threshold is chosen on. For regions where the
            window's edge is absent — a substrate, vacuum, a hole: there is no
            edge there to shift, and where a reconstruction leaks a trace of the
            edge into such pixels (a film/substrate interface) their scores form a
            tail that can hide a weak anomalous population. An elemental map
            makes the mask: :func:`hyperspy_cvae.scoring.edge_free_mask` (see the
            example). The reconstruction still uses every pixel.
        %s

        Returns
        -------
        score_map, mask : Signal2D, Signal2D of bool
            Calibrated like the navigation axes, with ``metadata.CVAE``
            describing method, window, score and threshold. For a lazy signal the
            score map is computed to threshold it (it is only ny × nx); with
            ``threshold=None`` it stays lazy.

        Examples
        --------
        >>> from hyperspy_cvae.data import bifeo3_si
        >>> s = bifeo3_si((48, 48), random_state=0).inject_shift(4.0, n_clusters=2, random_state=1)
        >>> z, mask = s.anomaly_map("pca", n_components=3)
        >>> z.metadata.CVAE.score.kind, z.metadata.CVAE.score.anomalous
        ('shift', 'high')
        >>> pcc, mask = s.anomaly_map("pca", n_components=3, score="pcc")   # the paper's score
        >>> pcc.metadata.CVAE.score.anomalous
        'low'

        Film on a substrate without Fe: score only where the Fe L3 white line
        stands above the pre-edge (:func:`hyperspy_cvae.scoring.edge_free_mask`,
        an Otsu split of the edge-jump ratio).

        >>> from hyperspy_cvae.scoring import edge_free_mask
        >>> f = bifeo3_si((48, 48), substrate_fraction=0.3, random_state=0)
        >>> no_fe = edge_free_mask(f, edge=(706., 711.), pre_edge=(695., 700.))
        >>> z, mask = f.anomaly_map("pca", navigation_mask=no_fe)
        >>> int(no_fe.data.sum()), int(np.isnan(z.data).sum()), bool(mask.data[no_fe.data].any())
        (670, 670, False)
        """
        from .baselines import rx_map
        from .scoring import (SCORES, deviance_map, leave_out, pcc_map, shift_score_map,
                              threshold_anomalies)

        if score not in SCORES:
            raise ValueError(f"`score` must be one of {SCORES}, got {score!r}.")
        if navigation_mask is not None:
            check_map_signal(self, min_size=1, what="anomaly_map")
            navigation_mask = navigation_mask_array(self, navigation_mask)
        if method == "rx":
            window_slice(energy_axis(self), window)
            check_map_signal(self, min_size=2, what="anomaly_map")
            if not self._lazy:
                check_counts(self.data, name="The signal")
            smap = rx_map(self, window, n_components=n_components, **kwargs)
            label = smap.metadata.CVAE.score.method
            original = self
        else:
            original, rec = self._reconstruct_for_scoring(method, window, n_components, cvae,
                                                          show_progressbar, kwargs)
            if score == "pcc":
                smap = pcc_map(original, rec, window)
            elif score == "deviance":
                smap = deviance_map(original, rec, window)
            else:
                smap = shift_score_map(original, rec, window, max_shift=max_shift)
            label = rec.metadata.CVAE.reconstruction.method
        if navigation_mask is not None:
            smap = leave_out(smap, navigation_mask)
        if threshold is None:
            return smap, None
        identical = all_spectra_identical(original.data, window_slice(energy_axis(original), window))
        if smap._lazy:
            import dask

            smap.data, identical = dask.compute(smap.data, identical)
            smap._lazy = False
            smap._assign_subclass()
        check_finite_score(smap.data if navigation_mask is None else smap.data[~navigation_mask])
        mask = threshold_anomalies(smap, threshold)
        if identical:  # nothing can be anomalous; Otsu on rounding noise would flag pixels
            mask.data[:] = False
            mask.metadata.set_item("CVAE.threshold.decision", "all spectra identical: no anomalies")
            mask.metadata.set_item("CVAE.threshold.n_flagged", 0)
        for sig in (smap, mask):
            sig.metadata.set_item("CVAE.method", label)
            sig.metadata.set_item("CVAE.source", self.metadata.General.title)
        return smap, mask

    anomaly_map.__doc__ %= SHOW_PROGRESSBAR_ARG

    def shift_map(self, window=(690.0, 730.0), method="cvae", n_components=3, cvae=None,
                  max_shift=10.0, return_uncertainty=False, show_progressbar=None, **kwargs):
        """Map of the edge's energy shift (eV) in every pixel, against the reconstruction.

        For each pixel, the maximum-likelihood shift of its spectrum inside
        ``window`` relative to its own reconstruction (the bulk the model
        expects there): Poisson likelihood with the intensity profiled out,
        sub-channel (linear interpolation), with a 1σ uncertainty from the
        curvature of the likelihood (:func:`hyperspy_cvae.scoring.estimate_shift`).
        Positive = the edge moved to higher energy loss (e.g. oxidation of Fe).
        The per-pixel energy jitter of the spectrometer appears in the map as
        noise of its own size.

        Parameters
        ----------
        window : tuple of float
            Energy window in eV (e.g. Fe L2,3 690–730 eV).
        method : {"cvae", "pca"}
            Reconstruction used as the reference, as in :meth:`anomaly_map`.
        n_components : int
            PCA components (``method="pca"``).
        cvae : hyperspy_cvae.CVAE, optional
            Fitted model (default ``s.cvae``; fit arguments in ``kwargs`` fit one).
        max_shift : float
            Largest shift searched, in eV.
        return_uncertainty : bool
            Also return the 1σ uncertainty map.
        %s

        Returns
        -------
        Signal2D (or a tuple ``(shift, sigma)``)
            Shift in eV, calibrated like the navigation axes (lazy for a lazy
            signal), with ``metadata.CVAE.score`` describing the window.

        Examples
        --------
        >>> from hyperspy_cvae.data import bifeo3_si
        >>> s = bifeo3_si((64, 64), random_state=0)
        >>> bad, truth = s.inject_shift(1.5, n_clusters=1, random_state=1, return_mask=True)
        >>> dE = bad.shift_map(method="pca", n_components=3)
        >>> round(float(dE.data[truth.data].mean()), 1)
        1.5
        """
        from .scoring import shift_map as _shift_map

        original, rec = self._reconstruct_for_scoring(method, window, n_components, cvae,
                                                      show_progressbar, kwargs)
        shift, sigma = _shift_map(original, rec, window, max_shift=max_shift)
        return (shift, sigma) if return_uncertainty else shift

    shift_map.__doc__ %= SHOW_PROGRESSBAR_ARG

    # ------------------------------------------------- results, latent space, plots
    # Thin wrappers over hyperspy_cvae.plotting and hyperspy_cvae.latent.
    def load_cvae(self, path, device="auto"):
        """Load a saved model and attach it to this signal (``s.cvae``).

        Re-applies a model fitted on one acquisition to a new acquisition of
        the same material: the checkpoint's energy axis is checked against this
        signal's (same dispersion, channels aligned, range covered), then
        ``anomaly_map("cvae")``, ``cvae_decomposition()``, ``latent_mahalanobis()``
        and ``cvae_phase_map()`` use it. Results record the checkpoint path
        and the weights' SHA-256 in ``metadata.CVAE``.

        Parameters
        ----------
        path : str or pathlib.Path
            File written by ``s.cvae.save(path)`` (:meth:`hyperspy_cvae.CVAE.save`).
        device : str
            ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``.

        Returns
        -------
        hyperspy_cvae.CVAE
            The loaded model, also stored as ``s.cvae``.

        Examples
        --------
        >>> import os, tempfile
        >>> from hyperspy_cvae.data import bifeo3_si
        >>> s = bifeo3_si((48, 48), random_state=0)
        >>> _ = s.fit_cvae(signal_range=(680., 740.), shard_size=16, epochs=1, show_progressbar=False)
        >>> path = s.cvae.save(os.path.join(tempfile.mkdtemp(), "bfo.pt"))
        >>> s2 = bifeo3_si((48, 48), random_state=5)          # a new acquisition
        >>> _ = s2.load_cvae(path)
        >>> z, mask = s2.anomaly_map("cvae", window=(690., 730.), show_progressbar=False)
        >>> z.metadata.CVAE.score.checkpoint == path
        True
        """
        from .training import CVAE

        cvae = CVAE.load(path, device=device)
        self._crop_to_model(cvae)  # raises if the energy axes do not match
        check_map_signal(self, min_size=int(cvae.shard_size), what="load_cvae")
        self.cvae = cvae
        self.metadata.set_item("CVAE.model", {
            "checksum": cvae.checksum(), "checkpoint": str(path),
            "signal_range": list(cvae.signal_range_) if cvae.signal_range_ else None,
            "latent_dim": int(cvae.latent_dim), "beta": float(cvae.beta),
            "package_version": __version__,
            "trained_with_package_version": str(getattr(cvae, "package_version_", "") or "")})
        return cvae

    def _results_model(self, cvae=None):
        cvae = cvae if cvae is not None else getattr(self, "cvae", None)
        if cvae is None:
            raise RuntimeError("No fitted CVAE: call `s.fit_cvae(...)` or `s.load_cvae(path)` first, "
                               "or pass `cvae=`.")
        return cvae

    def _latent_map_for(self, cvae, show_progressbar=None, stride=None):
        """The latent map of ``cvae`` on this signal (computed if missing, stale or of
        another stride)."""
        res = getattr(self, "cvae_results", None)
        lm = res.get("latent_map") if res else None
        if (lm is None or lm.metadata.get_item("CVAE.latent.model_checksum") != cvae.checksum()
                or (stride is not None and lm.metadata.get_item("CVAE.latent.stride") != int(stride))):
            self.cvae_decomposition(cvae=cvae, stride=stride, show_progressbar=show_progressbar)
            lm = self.cvae_results["latent_map"]
        if lm._lazy:
            lm.compute(show_progressbar=False)
        return lm

    def latent_mahalanobis(self, bulk_mask=None, robust=True, on="pixels", cvae=None, stride=None,
                           show_progressbar=None):
        """Latent anomaly map: distance of each shard's latent mean from the bulk.

        A second anomaly map next to the PCC of :meth:`anomaly_map`: it needs
        no reconstruction error, so it also sees subtle changes that the
        decoder reproduces well (small edge shifts, fine-structure changes,
        extended regions), at the resolution of the shard stride. See
        :func:`hyperspy_cvae.latent.latent_mahalanobis` for the maths and when
        it helps. Uses ``s.cvae_results["latent_map"]`` (running
        :meth:`cvae_decomposition` first if needed).

        Parameters
        ----------
        bulk_mask : Signal2D or array of bool, optional
            Known bulk pixels (True = reference); default all shards, robustly
            trimmed.
        robust : bool
            Trim outlying shards from the bulk estimate.
        on : {"pixels", "shards"}
            Interpolated onto the pixel grid (default) or on the shard grid.
        cvae : hyperspy_cvae.CVAE, optional
            Model (default ``s.cvae``).
        stride : int, optional
            Shard stride of the latent map (a divisor of the shard size);
            smaller = finer map, slower. Default: the existing latent map, or
            half a shard.
        %s

        Returns
        -------
        Signal2D
            High = anomalous; ``metadata.CVAE.score.kind == "latent_mahalanobis"``.
            Classify with :func:`hyperspy_cvae.scoring.threshold_anomalies`.

        Examples
        --------
        >>> from hyperspy_cvae.data import bifeo3_si
        >>> from hyperspy_cvae.scoring import threshold_anomalies
        >>> s = bifeo3_si((48, 48), random_state=0).inject_shift(4.0, n_clusters=2, random_state=1)
        >>> _ = s.fit_cvae(signal_range=(680., 740.), shard_size=16, epochs=1, show_progressbar=False)
        >>> score = s.latent_mahalanobis(show_progressbar=False)
        >>> mask = threshold_anomalies(score)
        >>> score.axes_manager.signal_shape
        (48, 48)
        """
        from .latent import latent_mahalanobis

        cvae = self._results_model(cvae)
        lm = self._latent_map_for(cvae, show_progressbar, stride)
        out = latent_mahalanobis(lm, bulk_mask=bulk_mask, robust=robust, on=on, navigation=self)
        out.metadata.set_item("CVAE.source", self.metadata.General.title)
        return out

    latent_mahalanobis.__doc__ %= SHOW_PROGRESSBAR_ARG

    def cvae_phase_map(self, n_clusters=None, method="kmeans", k_range=(2, 8), random_state=0,
                       on="pixels", cvae=None, stride=None, show_progressbar=None):
        """Phase map from the latent space: clusters of shard latent means.

        k-means (or a Gaussian mixture) on the latent means of the shards,
        the number of clusters chosen by the silhouette score unless given
        (K = 1 when no K in ``k_range`` reaches 0.25: no clear phases). The
        cluster centres are decoded back to spectra, so each phase comes with
        its representative spectrum. See
        :func:`hyperspy_cvae.latent.latent_phase_map`.

        Parameters
        ----------
        n_clusters : int, optional
            Number of phases; None chooses it by silhouette in ``k_range``.
        method : {"kmeans", "gmm"}
        k_range : tuple of int
            Inclusive range of K tried.
        random_state : int or None
        on : {"pixels", "shards"}
            Labels on the pixel grid (default; nearest shard centre) or the
            shard grid.
        cvae : hyperspy_cvae.CVAE, optional
        stride : int, optional
            Shard stride of the latent map (see :meth:`latent_mahalanobis`).
        %s

        Returns
        -------
        labels : Signal2D of int
            Phase label of each pixel (0 = largest phase), with
            ``metadata.CVAE.phase_map`` (K, silhouettes, latent centres).
        centres : Signal1D
            Decoded cluster centres (one spectrum per phase) on the model's
            energy axis, scaled to this signal's mean counts in that range.

        Examples
        --------
        >>> from hyperspy_cvae.data import bifeo3_si
        >>> s = bifeo3_si((48, 48), substrate_fraction=0.4, random_state=0)
        >>> _ = s.fit_cvae(signal_range=(440., 740.), shard_size=16, epochs=2, show_progressbar=False)
        >>> labels, centres = s.cvae_phase_map(n_clusters=2, show_progressbar=False)
        >>> centres.axes_manager.navigation_shape, labels.data.shape
        ((2,), (48, 48))
        """
        from .latent import decode_latent, latent_phase_map

        cvae = self._results_model(cvae)
        lm = self._latent_map_for(cvae, show_progressbar, stride)
        labels, z = latent_phase_map(lm, n_clusters, method=method, k_range=k_range,
                                     random_state=random_state, on=on, navigation=self)
        counts = self._crop_to_model(cvae).data.sum(-1).mean()
        counts = float(counts.compute() if hasattr(counts, "compute") else counts)
        centres = decode_latent(cvae, z, counts=counts)
        centres.metadata.General.title = f"Decoded phase centres ({self.metadata.General.title})"
        labels.metadata.set_item("CVAE.source", self.metadata.General.title)
        return labels, centres

    cvae_phase_map.__doc__ %= SHOW_PROGRESSBAR_ARG

    def _reconstruction_for(self, score):
        """Rebuild the reconstruction a score map was computed from (CVAE or PCA)."""
        from .baselines import pca_reconstruction

        method = str(score.metadata.get_item("CVAE.score.method", "")
                     or score.metadata.get_item("CVAE.method", ""))
        if method.startswith("CVAE"):
            return self.cvae_decomposition()
        if method.startswith("PCA("):
            k = int(method[4:].split(")")[0].split(",")[0])
            kw = {"normalize_poissonian_noise": True} if "Poisson" in method else {}
            return pca_reconstruction(self, k, **kw)
        raise ValueError(f"Cannot tell which reconstruction produced this score map (method "
                         f"{method!r}); pass `reconstruction=`.")

    def plot_anomaly_results(self, score, mask=None, truth=None, reconstruction=None, path=None):
        """Plot one method's anomaly results: map, histogram, example spectra.

        Left: the score map (e.g. PCC) with flagged pixels outlined — with
        ``truth``, detected anomalies in white, missed ones in red and false
        alarms in orange. Middle: the score histogram on a log scale with the
        Otsu threshold and the unimodality verdict. Right: a normal and the
        most anomalous spectrum with their reconstructions in the scoring
        window (shaded).

        Parameters
        ----------
        score, mask : Signal2D
            From :meth:`anomaly_map`.
        truth : Signal2D or array of bool, optional
            True anomalies (e.g. ``inject_shift(..., return_mask=True)``).
        reconstruction : hyperspy Signal1D, optional
            The reconstruction that was scored; default: rebuilt from the
            method recorded in ``score.metadata`` (``s.cvae_decomposition()`` or
            PCA with the same number of components).
        path : str, optional
            Also save the figure (PNG).

        Returns
        -------
        matplotlib.figure.Figure

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from hyperspy_cvae.data import bifeo3_si
        >>> s = bifeo3_si((48, 48), random_state=0)
        >>> bad, truth = s.inject_shift(4.0, n_clusters=2, random_state=1, return_mask=True)
        >>> z, mask = bad.anomaly_map("pca", n_components=3)
        >>> fig = bad.plot_anomaly_results(z, mask, truth)
        """
        from .plotting import plot_anomaly_results

        rec = reconstruction if reconstruction is not None else self._reconstruction_for(score)
        return plot_anomaly_results(self, rec, score, mask, truth, path=path)

    def plot_reconstruction(self, reconstruction=None, navigator=None, color="red", **kwargs):
        """Interactive: browse the spectra with their reconstruction overlaid.

        Plots this signal (cropped to the reconstruction's energy range) with
        HyperSpy's ``plot()``; the reconstruction is drawn as a second line
        that follows the navigation. Pass the PCC map as ``navigator`` to
        navigate by score: clicking a dark (low-PCC) pixel shows the spectrum
        that the model could not reproduce.

        Parameters
        ----------
        reconstruction : hyperspy Signal1D, optional
            Default: ``s.cvae_decomposition()``.
        navigator : Signal2D, optional
            E.g. the score map from :meth:`anomaly_map` (any signal HyperSpy
            accepts as a navigator).
        color : str
            Colour of the reconstruction line.
        **kwargs
            Passed to ``plot()``.

        Returns
        -------
        hyperspy signal
            The plotted (cropped) signal; ``.plot`` state lives there.

        Examples
        --------
        >>> from hyperspy_cvae.data import bifeo3_si
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> s = bifeo3_si((48, 48), random_state=0)
        >>> z, _ = s.anomaly_map("pca", n_components=3)
        >>> from hyperspy_cvae.baselines import pca_reconstruction
        >>> shown = s.plot_reconstruction(pca_reconstruction(s, 3), navigator=z)
        """
        from hyperspy.drawing.signal1d import Signal1DLine

        rec = reconstruction if reconstruction is not None else self.cvae_decomposition()
        er = energy_axis(rec)
        ea = energy_axis(self)
        i0 = int(round((er.offset - ea.offset) / ea.scale))
        shown = self.isig[i0:i0 + er.size] if (i0, er.size) != (0, ea.size) else self
        if shown.axes_manager.navigation_shape != rec.axes_manager.navigation_shape:
            raise ValueError("The reconstruction's navigation shape differs from the signal's.")

        def _rec_data(axes_manager=None):
            d = rec.data[tuple(axes_manager.indices[::-1])]
            return np.asarray(d.compute() if hasattr(d, "compute") else d)

        if navigator is not None:
            kwargs["navigator"] = navigator
        shown.plot(**kwargs)
        line = Signal1DLine()
        line.data_function = _rec_data
        line.set_line_properties(color=color, type="line")
        shown._plot.signal_plot.add_line(line)
        line.plot()
        shown._plot.signal_plot.ax.set_title(
            f"{self.metadata.General.title} (black) and "
            f"{rec.metadata.get_item('CVAE.reconstruction.method', 'reconstruction')} ({color})", fontsize=9)
        return shown


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
