"""The registered signal classes: thin methods that validate, read the calibrated axes and
metadata, and call :mod:`hyperspy_cvae.workflow` and the plain functions of the package."""

from __future__ import annotations

import logging

import numpy as np  # noqa: F401  (the doctests)
from exspy.signals import EELSSpectrum, LazyEELSSpectrum
from hyperspy.docstrings.signal import SHOW_PROGRESSBAR_ARG

from . import workflow
from ._signal_inject import InjectMethods
from ._signal_latent import LatentMethods
from ._signal_plots import PlotMethods
from ._validation import check_real, energy_axis
from .noise import fitted_noise_model
from .refine import check_refine, refine_reconstruction

__all__ = ["CVAEEELSSpectrum", "LazyCVAEEELSSpectrum", "to_cvae"]

_logger = logging.getLogger(__name__)


class CVAEEELSSpectrum(InjectMethods, LatentMethods, PlotMethods, EELSSpectrum):
    """EELS spectrum image with 3D-CVAE anomaly detection.

    Everything :class:`exspy.signals.EELSSpectrum` does, plus
    :meth:`fit_cvae`, :meth:`cvae_decomposition`,
    :meth:`anomaly_map`, :meth:`compare_methods` and :meth:`shift_map` (here),
    :meth:`inject_shift` and :meth:`inject_anomaly` of
    :class:`~hyperspy_cvae._signal_inject.InjectMethods`,
    the latent-space methods of :class:`~hyperspy_cvae._signal_latent.LatentMethods`
    and the plots of :class:`~hyperspy_cvae._signal_plots.PlotMethods`. Get one
    with ``s.set_signal_type("CVAE_EELS")``, ``hs.load(file, signal_type="CVAE_EELS")``
    or :func:`hyperspy_cvae.to_cvae`.
    """

    _signal_type = "CVAE_EELS"
    _alias_signal_types = ["CVAE EELS"]

    # -------------------------------------------------------------------- CVAE
    def fit_cvae(self, signal_range=None, train_mask=None, *, edge=None, show_progressbar=None,
                 max_train_shards=None, noise="auto", robust=False, **params):
        """Train a 3D convolutional VAE on this spectrum image.

        A lazy signal is never loaded as a whole: training shards are sampled
        (``random_state``) and only those blocks are read from the dask chunks
        into a bounded cache (``max_train_shards``).

        Parameters
        ----------
        signal_range : tuple of float, optional
            ``(start, end)`` energy range in eV to learn (e.g. ``(660., 760.)``
            around Fe L2,3). Default: the scoring window of ``edge`` (or of the
            edges of ``metadata.Sample.elements``) ± 20 eV, clipped to the axis
            (:func:`hyperspy_cvae.edges.fit_range`), so the model sees the edge,
            its pre-edge background and its post-edge; with neither, the whole
            axis (slower). ``metadata.CVAE.model.signal_range_source`` says which.
        train_mask : array of bool (ny, nx) or Signal2D, optional
            Pixels to learn from (known bulk); None uses all pixels (the
            realistic unsupervised case).
        edge : str, optional
            An edge name (``"Si_L2,3"``, ``"Ti_L3"``, ``"O_K"``) whose fit range to
            learn, instead of ``signal_range``.
        %s
        max_train_shards : int, optional
            Lazy signals only: shards held in memory for training (default: as
            many as fit in 128 MiB); see :meth:`hyperspy_cvae.CVAE.fit`.
        noise : "auto", "counts", "estimate", dict or NoiseModel
            The noise model of the Poisson loss (see :meth:`anomaly_map`);
            recorded in ``metadata.CVAE.model.noise``.
        robust : bool
            Fit twice: the pixels the first model flags (``anomaly_map`` with
            the shift score or ``score="auto"``, ``threshold="fdr"``) leave the
            second model's training, so that a change shared by many pixels is
            not learnt into the bulk (:mod:`hyperspy_cvae.robust`). Needs a
            scoring window (``edge`` or ``metadata.Sample.elements``); about
            twice the time. ``metadata.CVAE.model.robust`` records how many
            pixels were flagged and left out, ``cvae.robust_excluded_`` which
            (a bool array, navigation shape). A first pass that flags nothing,
            or more than half of the training pixels (with a warning), keeps
            the first model.
        **params
            Parameters of :class:`hyperspy_cvae.CVAE`, with its defaults:
            ``latent_dim`` (48), ``beta`` (1.2), ``shard_size`` ("auto": 24 on maps of
            48 pixels a side or more, down to 8 on small maps),
            ``stride``, ``max_steps`` ("auto": 400 optimiser steps with shards of
            24, up to 3600 with shards of 8: the training budget),
            ``validation_every`` ("auto": 25 steps with shards of 24, scaled
            likewise), ``epochs`` (None: a
            budget in passes over the map instead), ``batch_size`` (2),
            ``learning_rate`` (1e-3), ``loss`` ("poisson", or the paper's
            "ce"), ``widths``, ``validation_fraction`` (0.1),
            ``early_stopping`` (True), ``patience`` (6 measures), ``augment`` (True),
            ``device`` ("auto": CUDA if available), ``random_state`` (same
            seed, same model on the CPU) and ``shards_per_epoch``.

        Returns
        -------
        hyperspy_cvae.CVAE
            The fitted model, also stored as ``s.cvae``; ``metadata.CVAE.model``
            records its checksum and settings.

        Examples
        --------
        >>> from hyperspy_cvae.synthetic import bifeo3_si
        >>> s = bifeo3_si((48, 48), random_state=0)
        >>> cvae = s.fit_cvae(signal_range=(680., 740.), epochs=2, random_state=0,
        ...                   show_progressbar=False)
        >>> s.cvae is cvae
        True
        """
        cvae, info = workflow.fit_cvae(self, signal_range, train_mask, max_train_shards=max_train_shards,
                                       edge=edge, show_progressbar=show_progressbar, noise=noise,
                                       robust=robust, **params)
        self.cvae = cvae
        self.metadata.set_item("CVAE.model", info)
        return cvae

    fit_cvae.__doc__ %= SHOW_PROGRESSBAR_ARG

    def cvae_decomposition(self, cvae=None, stride=None, batch_size=None, device="auto",
                           show_progressbar=None, chunk=None, blend=None, refine=False):
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
            Inference stride; default half a shard. Must divide the shard size.
            ``stride=shard_size`` reconstructs each pixel from one shard (the
            fastest; pixels at shard borders are reconstructed less well).
        batch_size : int, optional
            Shards per forward pass (default: about 4 MiB of input spectra,
            which bounds the memory of each task to ~100 MiB).
        device : str
            Where to run the network (``"auto"``: CUDA if available).
        %s
        chunk : int, optional
            Navigation block size in pixels (default: the lazy data's own
            navigation chunks when they are a multiple of the stride and at
            least a shard, else 4 shards; unsuitable chunks are rechunked with a
            log message, see :func:`hyperspy_cvae.cvae.streaming.plan_blocks`).
        blend : {"quincunx", "full"}, optional
            At half-shard stride: ``"quincunx"`` (the default there) runs every
            other shard of the grid, in a checkerboard (and every shard along the
            map's borders), so that each pixel is blended from 2 overlapping
            shards; ``"full"`` runs them all (4 shards per pixel inside the map,
            1.6–2 × the time; ``benchmarks/NOTES.md`` §13 has what it changes).
            Other strides use every shard.
        refine : bool or str
            Refit each pixel's reconstruction to its spectrum (a denoised cube that follows
            each pixel, as PCA's coefficients do): its background's and its edge's intensities
            and a small energy drift, weighted with the fit's noise model
            (:func:`hyperspy_cvae.refine.refine_reconstruction`; a string names the edge whose
            onset splits the two, default from ``metadata.Sample.elements``). Their maps are
            kept in ``s.cvae_results["refinement"]``. Scores use the unrefined reconstruction:
            the refit also absorbs a missing edge and part of a shift.

        Returns
        -------
        CVAEEELSSpectrum or LazyCVAEEELSSpectrum
            Reconstruction over the model's energy range (lazy if ``s`` is lazy),
            with ``metadata.CVAE.reconstruction``. Latent means of the shards
            are kept in ``s.cvae_results["latent_map"]`` (a Signal2D stack, one
            image per latent dimension, on the shard grid: of stride
            ``shard_size`` with the quincunx blend, else ``stride``) with the
            shard positions.

        Examples
        --------
        >>> from hyperspy_cvae.synthetic import bifeo3_si
        >>> s = bifeo3_si((48, 48), random_state=0)
        >>> _ = s.fit_cvae(signal_range=(680., 740.), epochs=1, show_progressbar=False)
        >>> rec = s.cvae_decomposition(show_progressbar=False)
        >>> rec.data.shape
        (48, 48, 200)
        """
        edge = check_refine(refine)
        cvae = workflow.model_of(self, cvae)
        rec, self.cvae_results = workflow.cvae_decomposition(
            self, cvae, stride=stride, batch_size=batch_size, device=device,
            show_progressbar=show_progressbar, chunk=chunk, blend=blend)
        if edge is not False:
            rec, self.cvae_results["refinement"] = refine_reconstruction(
                self, rec, edge=edge, noise=fitted_noise_model(self.metadata) or "auto")
        return rec

    cvae_decomposition.__doc__ %= SHOW_PROGRESSBAR_ARG

    # -------------------------------------------------------------- anomalies
    def anomaly_map(self, method="pca", window=None, n_components=3, threshold="otsu",
                    score="shift", cvae=None, show_progressbar=None, max_shift=10.0,
                    navigation_mask=None, edge=None, spatial=None, fdr=0.05, noise="auto",
                    direction="both", nuisance="scale", **kwargs):
        """Score every pixel and classify anomalies.

        Parameters
        ----------
        method : {"pca", "cvae", "rx"}
            ``"pca"``: HyperSpy's ``decomposition()`` on a copy (``kwargs`` go to
            it, e.g. ``normalize_poissonian_noise=True``) and
            ``get_decomposition_model(n_components)``. ``"cvae"``: the fitted
            model (``s.cvae`` or ``cvae=``); if there is none and ``kwargs`` holds
            :meth:`fit_cvae` arguments (e.g. ``random_state=0``), one is fitted first
            on ``signal_range`` (default: the window ± 20 eV, clipped to the axis).
            Remaining ``kwargs`` go to :meth:`cvae_decomposition` (with a fitted
            model, ``stride``, ``blend`` and ``batch_size`` are the reconstruction's,
            e.g. ``stride=24`` for one shard per pixel). ``"rx"``: the
            Reed–Xiaoli detector on ``n_components`` PCA scores of the window
            (:func:`hyperspy_cvae.baselines.rx_map`; it has its own statistic,
            ``score`` is ignored).
        window : tuple of float, optional
            Energy window in eV in which the score is computed. With neither
            ``window`` nor ``edge``, the edges of ``metadata.Sample.elements``
            that lie in the axis (``s.add_elements(["Ti", "O"])``) give it; with
            no elements either, a ``ValueError`` lists the edges inside the
            energy axis. There is no built-in default material.
        n_components : int
            PCA components kept (``method="pca"`` or ``"rx"``).
        edge : str, optional
            An edge name instead of ``window``: ``"Fe_L2,3"``, ``"Ti_L3"``,
            ``"O_K"``, ... The window then runs from 15 eV before the edge's
            first onset to 20 eV after its last, clipped to the energy axis
            (onsets from exspy's element database,
            :func:`hyperspy_cvae.edges.edge_window`), and the name is recorded
            in ``metadata.CVAE.score.edge``.
        threshold : "otsu", "fdr", float or None
            Classification: ``"otsu"`` (after a unimodality check) or a fixed
            value (see :func:`hyperspy_cvae.scores.threshold_anomalies`);
            ``"fdr"``: per-pixel p-values of the evidence against the map's own
            bulk (median and robust s.d.; the signed ``sign(shift) · score`` for
            the shift score, normal scores of the ranks for the others), flagged
            at the false-discovery rate ``fdr`` (Benjamini–Hochberg), which
            finds a small or a broad anomalous population that has no valley in
            the histogram for Otsu; None skips it (the mask is None and a lazy
            score map stays lazy).
        spatial : None, "auto" or sequence of odd int
            Pool the per-pixel scores over boxes of these sizes (``"auto"``:
            1, 3 and 5 pixels, and bars of 7 × 1 and 1 × 7 pixels on a map) to
            find weak anomalies that cover several pixels
            (:func:`hyperspy_cvae.scores.pool_scores`): the evidence (signed,
            ``sign(shift) · score``, for the shift score; normal scores of the
            ranks for the others) is standardised against the map's bulk, its
            box sums are N(0, 1) without anomalies so each size is calibrated
            exactly, the per-pixel p-value is the smallest over the sizes
            (Bonferroni), the mask is taken at the false-discovery rate ``fdr``
            (Benjamini–Hochberg) and its outlines are redrawn pixel by pixel
            with a spatial prior. The result then carries ``pooled`` (the
            pooled evidence map) and ``regions`` (one row per region: area,
            centroid, mean score and shift, smallest adjusted p-value). Size 1
            keeps single pixels and 1-pixel lines. The null assumes
            exchangeable, independent per-pixel evidence without anomalies
            (shot noise, energy jitter), not a score that follows a smooth
            thickness gradient. None (default): per pixel, as above.
        fdr : float
            False-discovery rate of the pooled mask (``spatial``) or of
            ``threshold="fdr"``.
        score : {"shift", "pcc", "deviance", "auto"}
            Per-pixel score of the input against its reconstruction in the window:
            ``"shift"`` (default): likelihood-ratio evidence for an energy shift
            of the spectrum against its reconstruction, high = anomalous (see
            :meth:`shift_map`); ``"pcc"`` (the paper's): Pearson correlation, low
            = anomalous; ``"deviance"``: Poisson deviance per channel, ≈ 1 for a
            good fit at any dose, high = anomalous; ``"auto"``: any change beyond
            the nuisances (intensity scale, energy drift, smooth background):
            the residual's χ², its projection on the change that neighbouring
            pixels share (learned from the residuals), the nuisances' own size
            and the drift against the bulk's (a shift), combined as one z-value,
            high = anomalous (:func:`hyperspy_cvae.scores.change_analysis`,
            which also returns each test and the learned change as a
            spectrum); a lazy signal is read block by block, three passes
            over the window. ``result.describe()`` says, pixel by
            pixel, which of them explains a flag. How they compare is measured
            by the project's benchmark (``benchmarks/`` in the source repository).
        max_shift : float
            Largest shift searched by ``score="shift"``, in eV.
        direction : {"both", "higher", "lower"}
            Which shifts ``score="shift"`` looks for: ``"both"`` (default), or
            only those to ``"higher"`` or ``"lower"`` energy loss, when the
            chemistry says which way the edge moves (a reduced transition
            metal's L edge moves down, an oxidised one up). The score is then
            the one-sided ``±sign(shift) · score``
            (:func:`hyperspy_cvae.scores.directional_shift_score`): the bulk's
            jitter of the other sign no longer competes with the anomaly, which
            ranks it higher, most where the jitter is large; pixels shifted the
            other way score low and are not flagged. Thresholds and ``spatial``
            pooling then treat the score as one-sided.
        nuisance : {"scale", "tilt"}
            What a spectrum of ``score="shift"`` may differ by from its
            reconstruction without being anomalous: ``"scale"`` (default), its
            intensity; ``"tilt"``, also a smooth slope across the window
            (``exp(b·t)``, ``t`` from −1 to 1, ``|b| ≤ 0.5``), profiled out with and
            without the shift. For maps where the reconstruction does not follow
            each pixel's background slope, which the plain score reads as a
            shift: a weak edge on a steep background at high counts (the Ge
            solar-cell map of the project's measured-data benchmark; on a coarse
            0.5 eV/channel map it did worse). Several times the plain score's time
            (``benchmarks/NOTES.md`` §22); recorded in ``metadata.CVAE.score.nuisance``.
        navigation_mask : array of bool (ny, nx) or Signal2D, optional
            Pixels to leave out, as in HyperSpy's ``decomposition(navigation_mask=...)``:
            True = not scored (NaN in the score map), never flagged, and not part
            of the histogram the threshold is chosen on. For regions where the
            window's edge is absent (a substrate, vacuum, a hole), whose scores
            can form a tail that hides a weak anomalous population.
            :func:`hyperspy_cvae.scores.edge_free_mask` makes such a mask from
            the data (see the example). The reconstruction still uses every pixel.
        noise : "auto", "counts", "estimate", dict or NoiseModel
            The detector's noise model, ``Var = gain · E + offset``
            (:mod:`hyperspy_cvae.noise`); the data are converted to Poisson-equivalent
            counts ``X / gain + offset / gain²`` for every Poisson step (loss,
            scores, thresholds), and results come back in the data's units.
            ``"auto"`` (default): ``metadata.Signal.Noise_properties.Variance_linear_model``
            when the data agree with it (gain within a factor 2 of an estimate),
            else an estimate from the data (PCA residual variance against the
            expected value); data whose estimate says ``Var = E`` (within
            10 %% over their intensities) are used as they are. ``"counts"``: the data
            are counts. ``"estimate"``: always estimate. A dict of HyperSpy's
            ``gain_factor``, ``gain_offset``, ``correlation_factor`` gives it. The
            model used is recorded in the results' ``metadata.CVAE.noise``.
        %s

        Returns
        -------
        hyperspy_cvae.results.AnomalyResult
            Unpacks as ``score_map, mask`` (Signal2D, and Signal2D of bool,
            calibrated like the navigation axes, with ``metadata.CVAE``
            describing method, window, score and threshold), and keeps the
            reconstruction and the window for plotting (``result.plot()``). For
            a lazy signal the score map is computed to threshold it (it is only
            ny × nx); the reconstruction stays lazy.

        Examples
        --------
        >>> from hyperspy_cvae.synthetic import bifeo3_si
        >>> s = bifeo3_si((48, 48), random_state=0).inject_shift(4.0, n_clusters=2, random_state=1)
        >>> z, mask = s.anomaly_map("pca", n_components=3)
        >>> z.metadata.CVAE.score.kind, z.metadata.CVAE.score.anomalous
        ('shift', 'high')
        >>> pcc, mask = s.anomaly_map("pca", n_components=3, score="pcc")   # the paper's score
        >>> pcc.metadata.CVAE.score.anomalous
        'low'
        >>> weak = bifeo3_si((48, 48), random_state=0).inject_shift(0.5, n_clusters=2, random_state=1)
        >>> res = weak.anomaly_map("pca", n_components=2, spatial="auto")   # pooled over 1-5 px
        >>> int(weak.anomaly_map("pca", n_components=2).mask.data.sum())    # per pixel: nothing
        0
        >>> sorted(r["area"] for r in res.regions if r["area"] > 9)         # the two 6 × 6 patches
        [36, 36]

        A reduction moves the edge to lower energy loss: look for that sign only.

        >>> down = bifeo3_si((48, 48), random_state=0).inject_shift(-1.0, n_clusters=2, random_state=1)
        >>> z, mask = down.anomaly_map("pca", direction="lower")
        >>> z.metadata.CVAE.score.direction, int(mask.data.sum()) >= 60
        ('lower', True)
        >>> int(down.anomaly_map("pca", direction="higher").mask.data.sum())   # the other way: none
        0

        Film on a substrate without Fe: score only where the Fe L3 white line
        stands above the pre-edge.

        >>> from hyperspy_cvae.scores import edge_free_mask
        >>> f = bifeo3_si((48, 48), substrate_fraction=0.3, random_state=0)
        >>> no_fe = edge_free_mask(f, edge="Fe_L3")   # Fe L3 white line against its pre-edge
        >>> z, mask = f.anomaly_map("pca", navigation_mask=no_fe)
        >>> int(no_fe.data.sum()), int(np.isnan(z.data).sum()), bool(mask.data[no_fe.data].any())
        (672, 672, False)
        """
        return workflow.anomaly_map(self, method, window, n_components=n_components,
                                    threshold=threshold, score=score, cvae=cvae,
                                    show_progressbar=show_progressbar, max_shift=max_shift,
                                    navigation_mask=navigation_mask, edge=edge, spatial=spatial,
                                    fdr=fdr, noise=noise, direction=direction, nuisance=nuisance,
                                    **kwargs)

    anomaly_map.__doc__ %= SHOW_PROGRESSBAR_ARG

    def compare_methods(self, methods=("cvae", "pca"), window=None, score="pcc",
                        n_components=3, cvae=None, threshold="otsu", edge=None, **decomposition_kwargs):
        """:meth:`anomaly_map` for several methods: ``{label: AnomalyResult}``.

        Draw them side by side with :func:`hyperspy_cvae.plot_comparison`
        (the paper's Fig. 1/3, PCC by default).

        Parameters
        ----------
        methods : sequence
            ``"cvae"``, ``"pca"`` (``n_components``), ``"pca(k)"`` or ``("pca", k)``.
        window, edge, score, threshold, cvae
            As in :meth:`anomaly_map` (``score`` defaults to the paper's PCC).
        n_components : int
            PCA components for ``"pca"``.
        **decomposition_kwargs
            Passed to HyperSpy's ``decomposition()`` for PCA rows.

        Returns
        -------
        dict of hyperspy_cvae.results.AnomalyResult

        Examples
        --------
        >>> from hyperspy_cvae.synthetic import bifeo3_si
        >>> s = bifeo3_si((48, 48), random_state=0).inject_shift(4.0, n_clusters=2, random_state=1)
        >>> list(s.compare_methods(("pca(3)", "pca(5)")))
        ['PCA(3)', 'PCA(5)']
        """
        return workflow.compare_methods(self, methods, window, score=score, n_components=n_components,
                                        cvae=cvae, threshold=threshold, edge=edge,
                                        **decomposition_kwargs)

    def shift_map(self, window=None, method="cvae", n_components=3, cvae=None,
                  max_shift=10.0, return_uncertainty=False, show_progressbar=None, edge=None,
                  noise="auto", nuisance="scale", **kwargs):
        """Map of the edge's energy shift (eV) in every pixel, against the reconstruction.

        For each pixel, the maximum-likelihood shift of its spectrum inside
        ``window`` relative to its own reconstruction (the bulk the model
        expects there): Poisson likelihood with the intensity profiled out,
        sub-channel (linear interpolation), with a 1σ uncertainty from the
        curvature of the likelihood (:func:`hyperspy_cvae.scores.estimate_shift`).
        Positive = the edge moved to higher energy loss (e.g. oxidation of Fe).
        The per-pixel energy jitter of the spectrometer appears in the map as
        noise of its own size.

        Parameters
        ----------
        window : tuple of float, optional
            Energy window in eV (e.g. Fe L2,3 690–730 eV); default as in
            :meth:`anomaly_map`.
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
        edge : str, optional
            An edge name instead of ``window`` (see :meth:`anomaly_map`).
        noise : "auto", "counts", "estimate", dict or NoiseModel
            The noise model of the Poisson likelihood (see :meth:`anomaly_map`).
        nuisance : {"scale", "tilt"}
            Profiled out besides the shift: the intensity, or also a smooth
            slope across the window (see :meth:`anomaly_map`).
        %s

        Returns
        -------
        Signal2D (or a tuple ``(shift, sigma)``)
            Shift in eV, calibrated like the navigation axes (lazy for a lazy
            signal), with ``metadata.CVAE.score`` describing the window.

        Examples
        --------
        >>> from hyperspy_cvae.synthetic import bifeo3_si
        >>> s = bifeo3_si((64, 64), random_state=0)
        >>> bad, truth = s.inject_shift(1.5, n_clusters=1, random_state=1, return_mask=True)
        >>> dE = bad.shift_map(method="pca", n_components=3)
        >>> round(float(dE.data[truth.data].mean()), 1)
        1.5
        """
        shift, sigma = workflow.shift_map(self, window, method, n_components=n_components, cvae=cvae,
                                          max_shift=max_shift, show_progressbar=show_progressbar,
                                          edge=edge, noise=noise, nuisance=nuisance, **kwargs)
        return (shift, sigma) if return_uncertainty else shift

    shift_map.__doc__ %= SHOW_PROGRESSBAR_ARG


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
