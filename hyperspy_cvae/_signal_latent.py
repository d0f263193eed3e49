"""The latent-space methods of the signal class (a mixin of :class:`~hyperspy_cvae.CVAEEELSSpectrum`):
re-using a saved model, the latent Mahalanobis map, the latent phase map and the latent view."""

from __future__ import annotations

from hyperspy.docstrings.signal import SHOW_PROGRESSBAR_ARG

from . import workflow
from ._arrays import to_numpy, values_of
from ._validation import check_map_signal, crop_to_model
from ._version import __version__

__all__ = ["LatentMethods"]


class LatentMethods:
    """``load_cvae``, ``latent_mahalanobis``, ``cvae_phase_map`` and ``plot_latent_embedding``."""

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
        >>> from hyperspy_cvae.synthetic import bifeo3_si
        >>> s = bifeo3_si((48, 48), random_state=0)
        >>> _ = s.fit_cvae(signal_range=(680., 740.), shard_size=16, epochs=1, show_progressbar=False)
        >>> path = s.cvae.save(os.path.join(tempfile.mkdtemp(), "bfo.pt"))
        >>> s2 = bifeo3_si((48, 48), random_state=5)          # a new acquisition
        >>> _ = s2.load_cvae(path)
        >>> z, mask = s2.anomaly_map("cvae", window=(690., 730.), show_progressbar=False)
        >>> z.metadata.CVAE.score.checkpoint == path
        True
        """
        from .cvae import CVAE

        cvae = CVAE.load(path, device=device)
        crop_to_model(self, cvae)  # raises if the energy axes do not match
        check_map_signal(self, min_size=int(cvae.shard_size_), what="load_cvae")
        self.cvae = cvae
        self.metadata.set_item("CVAE.model", {
            "checksum": cvae.checksum(), "checkpoint": str(path),
            "signal_range": list(cvae.signal_range_) if cvae.signal_range_ else None,
            "latent_dim": int(cvae.latent_dim), "beta": float(cvae.beta),
            "package_version": __version__,
            "trained_with_package_version": str(getattr(cvae, "package_version_", "") or "")})
        return cvae

    def latent_mahalanobis(self, bulk_mask=None, robust=True, on="pixels", cvae=None, stride=None,
                           show_progressbar=None):
        """Latent anomaly map: distance of each shard's latent mean from the bulk.

        A second anomaly map next to the one of :meth:`anomaly_map`: it needs
        no reconstruction error, so it also sees changes that the decoder
        reproduces well (extended regions, fine-structure changes), at the
        resolution of the shard stride. See
        :func:`hyperspy_cvae.latent.latent_mahalanobis` for the maths. Uses
        ``s.cvae_results["latent_map"]`` when it has the model and the stride
        (else runs :meth:`cvae_decomposition` with every shard of that grid).

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
            smaller = finer map, slower. Default: half a shard (an existing
            latent map of that stride is reused).
        %s

        Returns
        -------
        Signal2D
            High = anomalous; ``metadata.CVAE.score.kind == "latent_mahalanobis"``.
            Classify with :func:`hyperspy_cvae.scores.threshold_anomalies`.

        Examples
        --------
        >>> from hyperspy_cvae.synthetic import bifeo3_si
        >>> from hyperspy_cvae.scores import threshold_anomalies
        >>> s = bifeo3_si((48, 48), random_state=0).inject_shift(4.0, n_clusters=2, random_state=1)
        >>> _ = s.fit_cvae(signal_range=(680., 740.), shard_size=16, epochs=1, show_progressbar=False)
        >>> score = s.latent_mahalanobis(show_progressbar=False)
        >>> mask = threshold_anomalies(score)
        >>> score.axes_manager.signal_shape
        (48, 48)
        """
        from .latent import latent_mahalanobis

        cvae = workflow.model_of(self, cvae)
        lm = workflow.latent_map(self, cvae, show_progressbar=show_progressbar, stride=stride)
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
        >>> from hyperspy_cvae.synthetic import bifeo3_si
        >>> s = bifeo3_si((48, 48), substrate_fraction=0.4, random_state=0)
        >>> _ = s.fit_cvae(signal_range=(440., 740.), shard_size=16, epochs=2, show_progressbar=False)
        >>> labels, centres = s.cvae_phase_map(n_clusters=2, show_progressbar=False)
        >>> centres.axes_manager.navigation_shape, labels.data.shape
        ((2,), (48, 48))
        """
        from .latent import decode_latent, latent_phase_map

        cvae = workflow.model_of(self, cvae)
        lm = workflow.latent_map(self, cvae, show_progressbar=show_progressbar, stride=stride)
        labels, z = latent_phase_map(lm, n_clusters, method=method, k_range=k_range,
                                     random_state=random_state, on=on, navigation=self)
        counts = float(to_numpy(crop_to_model(self, cvae).data.sum(-1).mean()))
        centres = decode_latent(cvae, z, counts=counts)
        centres.metadata.General.title = f"Decoded phase centres ({self.metadata.General.title})"
        labels.metadata.set_item("CVAE.source", self.metadata.General.title)
        return labels, centres

    cvae_phase_map.__doc__ %= SHOW_PROGRESSBAR_ARG

    def plot_latent_embedding(self, method="pca", mask=None, n_phases=None, cvae=None, path=None,
                              random_state=0, show_progressbar=None):
        """The latent view: the shards' latent means embedded in 2D, one point per shard.

        Embeds the latent map of half-shard stride (``s.cvae_results["latent_map"]``
        when it is that one, else :meth:`cvae_decomposition` with every shard) with :func:`hyperspy_cvae.latent.latent_embedding`,
        optionally clusters it into phases (as :meth:`cvae_phase_map`, on the
        shard grid) and flags the shards that contain a pixel of ``mask``, then
        draws :func:`hyperspy_cvae.plotting.plot_latent_embedding`. Clicking a
        point (interactive backends) shows that shard's spectra.

        Parameters
        ----------
        method : {"pca", "umap", "auto"}
            Embedding (UMAP needs ``pip install umap-learn``).
        mask : Signal2D or array of bool (ny, nx), optional
            Pixel mask, e.g. the anomaly mask of :meth:`anomaly_map`; a shard is
            flagged when its footprint holds any True pixel.
        n_phases : int, optional
            Colour by this many latent phases (k-means, see :meth:`cvae_phase_map`).
        cvae : hyperspy_cvae.CVAE, optional
            Model (default ``s.cvae``).
        path : str or pathlib.Path, optional
            Write the figure there.
        random_state : int or None
            Seed of UMAP and of the phase clustering.
        %s

        Returns
        -------
        fig : matplotlib.figure.Figure
        embedding : hyperspy_cvae.latent.LatentEmbedding

        Examples
        --------
        >>> from hyperspy_cvae.synthetic import bifeo3_si
        >>> s = bifeo3_si((48, 48), random_state=0)
        >>> _ = s.fit_cvae(signal_range=(680., 740.), shard_size=16, epochs=1, show_progressbar=False)
        >>> fig, emb = s.plot_latent_embedding(n_phases=2, show_progressbar=False)
        >>> emb.coords.shape, len(fig.axes)
        ((25, 2), 1)
        """
        from .latent import latent_embedding, latent_phase_map, shard_flags
        from .plotting import plot_latent_embedding

        cvae = workflow.model_of(self, cvae)
        lm = workflow.latent_map(self, cvae, show_progressbar=show_progressbar)
        emb = latent_embedding(lm, method=method, random_state=random_state)
        labels = flags = None
        if n_phases is not None:
            labels = latent_phase_map(lm, int(n_phases), random_state=random_state, on="shards",
                                      navigation=self)[0].data
        if mask is not None:
            mask, shape = values_of(mask), tuple(self.axes_manager.navigation_shape[::-1])
            if mask.shape not in (shape, emb.grid_shape):
                raise ValueError(f"`mask` has shape {mask.shape}; expected the navigation shape {shape} "
                                 f"or the shard grid {emb.grid_shape} (array order y, x).")
            flags = shard_flags(mask, emb.shard_size, emb.stride, emb.grid_shape)
        fig = plot_latent_embedding(emb, colour_by=flags, labels=labels, signal=self, path=path)
        return fig, emb

    plot_latent_embedding.__doc__ %= SHOW_PROGRESSBAR_ARG
