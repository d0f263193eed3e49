"""What ``anomaly_map`` found, kept together: the score map, the mask, and the reconstruction and
energy window they came from (so plots and explanations never recompute them); and how each
pixel differs (:class:`PixelDescription`)."""

from __future__ import annotations

import numpy as np

__all__ = ["AnomalyResult", "PixelDescription"]


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
    noise : NoiseModel or None
        The noise model the scores used (:mod:`hyperspy_cvae.noise`).

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
                 pooled=None, regions=None, noise=None, analyses=None, max_shift=10.0):
        self.noise = noise
        self._analyses = dict(analyses or {})
        self._max_shift = max_shift
        self._description = None
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

    def describe(self):
        """How each pixel differs from its reconstruction: shift ± uncertainty, intensity and jump
        ratio against the bulk, the shape change and its spectrum, "no edge" and "outlier"
        (:func:`hyperspy_cvae.scores.describe_pixels`). The scores already computed are reused,
        and the description is kept: a second call returns it.

        Returns
        -------
        PixelDescription
            ``.table()`` lists the pixels that are not bulk, ``.summary()`` counts them by
            explanation, ``.plot()`` draws the maps and the learned change.

        Examples
        --------
        >>> from hyperspy_cvae.synthetic import bifeo3_si
        >>> s = bifeo3_si((32, 32), random_state=0).inject_anomaly("new_peak", n_clusters=2,
        ...                                                         random_state=1)
        >>> res = s.anomaly_map("pca", window=(693., 741.), score="auto")
        >>> d = res.describe()
        >>> d is res.describe()
        True
        >>> fig = d.plot()
        """
        if self._description is not None:
            return self._description
        if self.reconstruction is None:
            raise ValueError(f"{self.method} has no reconstruction to compare the spectra with; describe the "
                             "pixels of a PCA or CVAE result (`anomaly_map('pca')`).")
        from .scores.describe import describe_pixels

        original, rec, pedestal = self.original, self.reconstruction, 0.0
        if self.noise is not None and not self.noise.is_counts:
            original = original._deepcopy_with_new_data(self.noise.to_counts(original.data))
            rec = rec._deepcopy_with_new_data(self.noise.to_counts(rec.data))
            pedestal = self.noise.shift
        mask = None if self.mask is None else self.mask.data
        self._description = describe_pixels(original, rec, self.window, mask=mask, labels=self.labels,
                                            pedestal=pedestal, shift=self._analyses.get("shift"),
                                            change=self._analyses.get("change"), max_shift=self._max_shift)
        return self._description

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


#: Columns of :meth:`PixelDescription.table`: (key, map, format).
TABLE_COLUMNS = (("shift_eV", "shift", "{:+.3f}"), ("shift_sigma_eV", "shift_sigma", "{:.3f}"),
                 ("intensity", "intensity", "{:.3f}"), ("jump_ratio", "jump_ratio", "{:.3f}"),
                 ("shape_z", "shape", "{:+.1f}"), ("change_z", "change", "{:.1f}"),
                 ("background_z", "background", "{:.1f}"), ("evidence_z", "score", "{:.1f}"))

#: Columns that mean nothing without an edge (NaN in the rows of "outlier" and "no edge" pixels).
BLANK_WITHOUT_EDGE = ("shift_eV", "shift_sigma_eV", "shape_z")


class PixelDescription:
    """How each pixel differs from its reconstruction
    (:func:`hyperspy_cvae.scores.describe_pixels`, ``AnomalyResult.describe()``).

    Attributes
    ----------
    maps : dict of Signal2D
        ``"shift"`` and ``"shift_sigma"`` (eV), ``"intensity"`` and ``"jump_ratio"`` (over the
        bulk's median: 1 = as the bulk), ``"shape"`` (signed projection on the learned change,
        z), ``"change"`` (residual χ² beyond the nuisances, z), ``"background"`` (the nuisance
        coefficients against the map's, z), ``"score"`` (the strongest test's evidence, z) and
        ``"explanation"`` (codes into :attr:`names`).
    labels : Signal2D of int
        "bulk", "anomalous", "outlier", "no edge" (:func:`hyperspy_cvae.scores.label_pixels`).
    direction : Signal1D or None
        The change that the anomalous pixels share, as a spectrum (Pearson-residual units:
        positive = more counts than the reconstruction); None where the window is too narrow
        for the shape tests.
    names : list of str
        What the explanation codes mean: the tests (:data:`hyperspy_cvae.scores.EXPLANATIONS`)
        for anomalous pixels, then "bulk", "outlier" and "no edge".
    window : EnergyWindow
    method : str
        The reconstruction's label.
    bulk_spectrum : Signal1D or None
        The mean spectrum of the bulk pixels in the window, in Poisson-equivalent counts less
        the noise model's pedestal (the data divided by the gain).

    Examples
    --------
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> s = bifeo3_si((32, 32), random_state=0).inject_shift(1.5, n_clusters=1, cluster_size=4, random_state=1)
    >>> d = s.anomaly_map("pca", window=(690., 730.)).describe()
    >>> d.summary()["anomalous"]["shift"]["pixels"] > 0
    True
    >>> print(d)                                  # doctest: +SKIP
    """

    def __init__(self, maps, labels, direction, *, names, window, method="", bulk_spectrum=None):
        self.bulk_spectrum = bulk_spectrum
        self.maps = maps
        self.labels = labels
        self.direction = direction
        self.names = list(names)
        self.window = window
        self.method = method

    def _positions(self, index):
        axes = self.labels.axes_manager.signal_axes[::-1]   # array order
        return tuple(float(ax.offset + ax.scale * i) for ax, i in zip(axes, index))

    def table(self, which=("anomalous", "outlier", "no edge")):
        """One row (a dict) per pixel with one of the labels in ``which``: its index (array order),
        calibrated position, label, explanation and every map's value (the shift and the shape
        change are NaN for outliers and pixels without the edge); anomalous pixels first,
        each label's pixels by decreasing evidence.

        Examples
        --------
        >>> from hyperspy_cvae.synthetic import bifeo3_si
        >>> s = bifeo3_si((32, 32), random_state=0).inject_shift(1.5, n_clusters=1, cluster_size=4, random_state=1)
        >>> rows = s.anomaly_map("pca", window=(690., 730.)).describe().table()
        >>> sorted(rows[0])[:4]
        ['background_z', 'change_z', 'evidence_z', 'explanation']
        """
        from .scores.labels import LABELS

        if isinstance(which, str):
            which = (which,)
        unknown = [w for w in which if w not in LABELS]
        if unknown:
            raise ValueError(f"`which` takes labels among {LABELS}, got {unknown}.")
        codes = np.asarray(self.labels.data)
        expl = np.asarray(self.maps["explanation"].data)
        values = {key: np.asarray(self.maps[m].data, float) for key, m, _ in TABLE_COLUMNS}
        rows = []
        for name in which:
            idx = np.argwhere(codes == LABELS.index(name))
            ev = values["evidence_z"][tuple(idx.T)]
            for i in idx[np.argsort(-np.nan_to_num(ev, nan=-np.inf), kind="stable")]:
                i = tuple(int(v) for v in i)
                row = {"index": i, "position": self._positions(i), "label": name,
                       "explanation": self.names[expl[i]] if expl[i] >= 0 else "unknown"}
                row.update({key: float(v[i]) for key, v in values.items()})
                if name in ("outlier", "no edge"):  # no edge to shift or reshape
                    row.update({key: float("nan") for key in BLANK_WITHOUT_EDGE})
                rows.append(row)
        return rows

    def summary(self):
        """Per label and explanation: the number of pixels and the median of every column.

        Returns
        -------
        dict
            ``{label: {explanation: {"pixels": n, "shift_eV": median, ...}}}``
        """
        out = {}
        for row in self.table():
            out.setdefault(row["label"], {}).setdefault(row["explanation"], []).append(row)
        return {lab: {ex: dict(pixels=len(rows), **{k: float(np.nanmedian([r[k] for r in rows]))
                                                    if any(np.isfinite(r[k]) for r in rows) else float("nan")
                                                    for k, _, _ in TABLE_COLUMNS})
                      for ex, rows in by.items()} for lab, by in out.items()}

    def _pretty(self, max_rows):
        from prettytable import PrettyTable

        t = PrettyTable(["pixel", "label", "explanation"] + [k for k, _, _ in TABLE_COLUMNS])
        rows = self.table()
        for row in rows[:max_rows]:
            t.add_row([row["index"], row["label"], row["explanation"]] +
                      [("" if not np.isfinite(row[k]) else f.format(row[k])) for k, _, f in TABLE_COLUMNS])
        more = f"\n... {len(rows) - max_rows} more rows: `.table()`" if len(rows) > max_rows else ""
        return t, more

    def __repr__(self):
        parts = [f"{lab if lab == ex else f'{lab} ({ex})'}: {d['pixels']}"
                 for lab, by in self.summary().items() for ex, d in by.items()]
        return f"<PixelDescription: {self.method}, {self.window.label}; " + (", ".join(parts) or "all bulk") + ">"

    def __str__(self):
        t, more = self._pretty(20)
        return f"{self!r}\n{t.get_string()}{more}"

    def _repr_html_(self):
        t, more = self._pretty(20)
        from html import escape

        return f"<p>{escape(repr(self))}</p>" + t.get_html_string() + escape(more)

    def plot(self, path=None):
        """Labels, shift, shape change, jump ratio and intensity maps, and the learned change as a
        spectrum (:func:`hyperspy_cvae.plotting.plot_description`).

        Returns
        -------
        matplotlib.figure.Figure
        """
        from .plotting.describe import plot_description

        return plot_description(self, path=path)
