"""What ``anomaly_map`` found, kept together: the score map, the mask, and the reconstruction and
energy window they came from (so plots and explanations never recompute them)."""

from __future__ import annotations

__all__ = ["AnomalyResult"]


class AnomalyResult:
    """The result of :meth:`~hyperspy_cvae.CVAEEELSSpectrum.anomaly_map`.

    It unpacks like the pair it replaces, ``score, mask = s.anomaly_map(...)``,
    and keeps what produced them: the scored spectra (the input cropped to the
    reconstruction's energy range, a view, not a copy), the reconstruction
    (lazy if the input was lazy: nothing is computed to keep it) and the
    :class:`~hyperspy_cvae._validation.EnergyWindow`. The input signal is not
    modified.

    Attributes
    ----------
    score : Signal2D
        Score map, ``metadata.CVAE.score`` says its kind and direction.
    mask : Signal2D of bool or None
        Flagged pixels (None with ``threshold=None``).
    original : hyperspy Signal1D
        The spectra that were scored.
    reconstruction : hyperspy Signal1D or None
        What they were scored against (None for RX, which has none).
    window : EnergyWindow
        The scoring window (eV and channels).
    method : str
        Label of the method, e.g. ``"CVAE"``, ``"PCA(3)"``, ``"RX(3)"``.
    labels : Signal2D of int or None
        What the detector saw in every pixel: "bulk", "anomalous", "outlier"
        (a glitch) or "no edge" (vacuum, a substrate), as codes into
        :data:`hyperspy_cvae.scores.LABELS`
        (:func:`hyperspy_cvae.scores.label_pixels`; None without a threshold).
    pooled : Signal2D or None
        With ``anomaly_map(spatial=...)``: the per-pixel scores pooled over
        several box sizes (:func:`hyperspy_cvae.scores.pool_scores`); the mask
        is then the pooled one, at the false-discovery rate ``fdr``.
    regions : list of dict or None
        With ``spatial``: one row per flagged region (area, centroid, mean
        score, smallest adjusted p-value).

    Examples
    --------
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> s = bifeo3_si((32, 32), random_state=0).inject_shift(4.0, n_clusters=1, random_state=1)
    >>> res = s.anomaly_map("pca", window=(690., 730.), n_components=3)
    >>> score, mask = res                      # the (score, mask) pair
    >>> res.method, res.window.label, res.reconstruction.metadata.CVAE.reconstruction.method
    ('PCA(3)', '690-730 eV', 'PCA(3)')
    """

    def __init__(self, score, mask, *, original, reconstruction, window, method, labels=None,
                 pooled=None, regions=None):
        self.labels = labels
        self.pooled = pooled
        self.regions = regions
        self.score = score
        self.mask = mask
        self.original = original
        self.reconstruction = reconstruction
        self.window = window
        self.method = method

    def __iter__(self):
        return iter((self.score, self.mask))

    def __len__(self):
        return 2

    def __getitem__(self, i):
        return (self.score, self.mask)[i]

    def __repr__(self):
        n = self.mask.metadata.get_item("CVAE.threshold.n_flagged") if self.mask is not None else None
        kind = self.score.metadata.get_item("CVAE.score.kind", "score")
        flagged = f", {n} flagged" if n is not None else ""
        return f"<AnomalyResult: {self.method}, {kind} score, {self.window.label}{flagged}>"

    def plot(self, truth=None, path=None, axes=None):
        """Map, histogram and example spectra with their reconstruction
        (:func:`hyperspy_cvae.plotting.plot_anomaly_results`).

        Parameters
        ----------
        truth : Signal2D or array of bool, optional
            True anomalies: detected, missed and false pixels are outlined.
        path : str, optional
            Also save the figure (PNG).
        axes : sequence of 3 matplotlib axes, optional

        Returns
        -------
        matplotlib.figure.Figure
        """
        from .plotting.results import plot_anomaly_results

        if self.reconstruction is None:
            raise ValueError(f"{self.method} has no reconstruction to show; plot the score map with "
                             "`hyperspy_cvae.plotting.plot_score_map(result.score, result.mask)`.")
        return plot_anomaly_results(self.original, self.reconstruction, self.score, self.mask, truth,
                                    axes=axes, path=path, label=self.method)

    def plot_labels(self, path=None):
        """The label map ("bulk", "anomalous", "outlier", "no edge") and the mean spectrum of each
        label with its reconstruction (:func:`hyperspy_cvae.plotting.plot_labels`).

        Returns
        -------
        matplotlib.figure.Figure
        """
        from .plotting.results import plot_labels

        if self.labels is None:
            raise ValueError("This result has no labels: they come with a threshold "
                             "(`anomaly_map(threshold='otsu')`).")
        return plot_labels(self.labels, self.original, self.reconstruction, self.window, path=path,
                           title=f"{self.method}: what the detector saw")
