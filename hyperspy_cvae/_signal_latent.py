"""The latent-space methods of the signal class (a mixin of :class:`~hyperspy_cvae.CVAEEELSSpectrum`):
re-using a saved model, the latent Mahalanobis map and the latent phase map."""

from __future__ import annotations

from hyperspy.docstrings.signal import SHOW_PROGRESSBAR_ARG

from . import workflow
from ._arrays import to_numpy
from ._validation import check_map_signal, crop_to_model
from ._version import __version__

__all__ = ["LatentMethods"]


class LatentMethods:
    """``load_cvae``, ``latent_mahalanobis`` and ``cvae_phase_map``."""

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
        ``s.cvae_results["latent_map"]`` (running :meth:`cvae_decomposition`
        first if needed).

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
