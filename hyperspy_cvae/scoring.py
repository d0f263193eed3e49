"""Anomaly scores, thresholds and detection metrics.

The maths works on numpy or dask arrays; the ``*_map`` functions wire it to
HyperSpy signals and return calibrated ``Signal2D`` maps.

Conventions
-----------
Every score map carries ``metadata.CVAE.score`` with ``kind`` (``"pcc"``,
``"deviance"``, ...), ``anomalous`` (``"low"`` when low values are anomalous,
as for PCC, ``"high"`` otherwise) and the energy ``window`` in eV.
"""

from __future__ import annotations

import logging

import numpy as np

from ._validation import energy_axis, window_slice

__all__ = [
    "pearson", "pcc_map", "unimodality_test", "threshold_anomalies",
    "detection_metrics", "precision_recall_curve", "score_direction",
]

_logger = logging.getLogger(__name__)


def pearson(a, b):
    """Pearson correlation of ``a`` and ``b`` along the last axis, in float64.

    Works on numpy and dask arrays (lazy in, lazy out).

    Constant spectra have no defined correlation; the convention here is: if
    both spectra are constant the correlation is 1 (the reconstruction
    reproduces a flat spectrum perfectly), if only one is constant it is 0. No
    warning is emitted and the result never contains NaN for finite input.

    Examples
    --------
    >>> float(pearson(np.array([1., 2., 3.]), np.array([2., 4., 7.])))  # doctest: +ELLIPSIS
    0.99339...
    """
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    ac = a - a.mean(axis=-1, keepdims=True)
    bc = b - b.mean(axis=-1, keepdims=True)
    saa = (ac * ac).sum(axis=-1)
    sbb = (bc * bc).sum(axis=-1)
    sab = (ac * bc).sum(axis=-1)
    # Relative tolerance: spectra whose variance is at rounding level are "constant".
    za = saa <= 1e-24 * ((a * a).sum(axis=-1) + 1e-300)
    zb = sbb <= 1e-24 * ((b * b).sum(axis=-1) + 1e-300)
    denom = (saa * sbb) ** 0.5
    safe = denom + (za | zb)  # avoid 0/0 without warnings
    r = sab / safe
    r = r * ~(za | zb) + (za & zb) * 1.0
    return r.clip(-1.0, 1.0) if hasattr(r, "clip") else np.clip(r, -1.0, 1.0)


def _check_same_energy_axis(original, reconstruction):
    a, b = energy_axis(original), energy_axis(reconstruction)
    if a.size != b.size or not np.isclose(a.offset, b.offset) or not np.isclose(a.scale, b.scale):
        raise ValueError(
            "The original and the reconstruction have different energy axes "
            f"({a.offset:g} eV + {a.size} × {a.scale:g} eV vs {b.offset:g} eV + "
            f"{b.size} × {b.scale:g} eV); crop both to the same range first.")
    if original.axes_manager.navigation_shape != reconstruction.axes_manager.navigation_shape:
        raise ValueError(
            "The original and the reconstruction have different navigation shapes "
            f"{original.axes_manager.navigation_shape} vs "
            f"{reconstruction.axes_manager.navigation_shape}.")
    return a


def _score_signal(original, data, *, kind, anomalous, window, title, extra=None):
    """Wrap a navigation-shaped score array as a calibrated Signal2D."""
    if hasattr(data, "dask") and not original._lazy:
        original = original.as_lazy()
    out = original._get_navigation_signal(data=data)
    out.metadata.General.title = title
    info = {"kind": kind, "anomalous": anomalous, "window": [float(window[0]), float(window[1])]}
    info.update(extra or {})
    out.metadata.set_item("CVAE.score", info)
    return out


def pcc_map(original, reconstruction, window=(690.0, 730.0)):
    """Per-pixel Pearson correlation between two spectrum images inside an eV window.

    Parameters
    ----------
    original, reconstruction : hyperspy Signal1D
        Spectrum images with identical navigation shape and energy axis (e.g.
        ``s`` and ``s.get_decomposition_model(3)``).
    window : tuple of float
        ``(start, end)`` of the window in the energy-axis units (eV).

    Returns
    -------
    hyperspy Signal2D
        PCC map with the navigation calibration of ``original`` (lazy if either
        input is lazy). Low values are anomalous. See :func:`pearson` for the
        convention on constant spectra.

    Examples
    --------
    >>> from hyperspy_cvae.data import bifeo3_si
    >>> s = bifeo3_si((24, 24), random_state=0)
    >>> s.decomposition(print_info=False)
    >>> pcc = pcc_map(s, s.get_decomposition_model(3), (690., 730.))
    >>> pcc.axes_manager.signal_shape
    (24, 24)
    """
    axis = _check_same_energy_axis(original, reconstruction)
    sl = window_slice(axis, window)
    a = original.data[..., sl]
    b = reconstruction.data[..., sl]
    if hasattr(a, "dask") or hasattr(b, "dask"):
        import dask.array as da

        a = da.asarray(a).rechunk({-1: -1})  # PCC needs whole spectra in one block
        b = da.asarray(b).rechunk(a.chunks)
        r = da.map_blocks(pearson, a, b, drop_axis=a.ndim - 1, dtype=np.float64)
    else:
        r = pearson(a, b)
    method = reconstruction.metadata.get_item("CVAE.reconstruction.method", "reconstruction")
    return _score_signal(original, r, kind="pcc", anomalous="low", window=window,
                         title=f"PCC {method} {window[0]:g}-{window[1]:g} eV",
                         extra={"method": method})


def score_direction(score, anomalous=None):
    """Return ``"low"`` or ``"high"``: which end of ``score`` is anomalous."""
    if anomalous is None and hasattr(score, "metadata"):
        anomalous = score.metadata.get_item("CVAE.score.anomalous", None)
    anomalous = anomalous or "low"
    if anomalous not in ("low", "high"):
        raise ValueError(f"`anomalous` must be 'low' or 'high', got {anomalous!r}.")
    return anomalous


def _as_array(x):
    if hasattr(x, "data") and hasattr(x, "axes_manager"):
        x = x.data
    if hasattr(x, "compute"):
        x = x.compute()
    return np.asarray(x)


def unimodality_test(scores, *, anomalous="low", nbins=256, smooth=2.0, max_valley_ratio=0.5,
                     min_significance=5.0):
    """Decide whether the scores have a separate mode on the anomalous side.

    A local dip test on the histogram. The scores are binned (``nbins``
    equal bins over their range, as for Otsu) and smoothed with a Gaussian of
    ``smooth`` bins. Let ``M`` be the main mode (highest bin). For every local
    maximum ``P`` on the anomalous side of ``M``, the valley ``V`` is the lowest
    smoothed count between ``P`` and ``M``. The distribution is called bimodal
    if, for some ``P``, both hold:

    * the dip is deep: ``V <= max_valley_ratio · P``;
    * the group beyond the valley is not a counting fluctuation: with ``N`` pixels
      beyond the valley in ``k`` bins, a density never exceeding ``V`` allows at
      most ``V·k``, and ``(N - V·k) / sqrt(max(V·k, 1)) >= min_significance``.

    Why not a global test: anomalies are typically < 1 % of the pixels, far
    too few for Hartigan's dip test, and the bulk itself is usually skewed or a
    mixture of pixel types (columns, thickness), so a 1- vs 2-component
    Gaussian mixture prefers two components on clean data. A dip between the
    main mode and a compact group of low scores is what a separable anomaly
    population looks like, and a monotone tail (clean data) has none.

    Parameters
    ----------
    scores : array-like
        Scores, any shape; non-finite values are ignored.
    anomalous : {"low", "high"}
        Side of the distribution where anomalies lie.

    Returns
    -------
    dict
        ``bimodal`` (bool), ``valley_ratio`` (V/P of the most significant dip,
        1 if none), ``significance``, ``anomalous_mode`` and ``valley`` (score
        values), ``test`` (a description).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> unimodality_test(rng.normal(size=20000))["bimodal"]
    False
    >>> x = np.r_[rng.normal(size=20000), rng.normal(-8, 0.5, size=100)]
    >>> unimodality_test(x)["bimodal"]
    True
    """
    from scipy.ndimage import gaussian_filter1d

    z = np.asarray(scores, dtype=np.float64).ravel()
    z = z[np.isfinite(z)]
    desc = (f"histogram dip test ({nbins} bins, smoothing {smooth:g} bins): bimodal iff a mode on "
            f"the {anomalous} side has a valley <= {max_valley_ratio:g}x its height, "
            f">= {min_significance:g} sigma deep")
    result = {"bimodal": False, "valley_ratio": 1.0, "significance": 0.0, "anomalous_mode": None,
              "valley": None, "n_beyond_valley": 0, "test": desc}
    if z.size < 10 or np.ptp(z) <= 1e-12 * max(1.0, np.abs(z).max()):
        return result
    counts, edges = np.histogram(z, bins=nbins)
    centres = 0.5 * (edges[1:] + edges[:-1])
    h = gaussian_filter1d(counts.astype(np.float64), smooth, mode="constant")
    if anomalous == "high":
        h, centres = h[::-1], centres[::-1]
    m = int(np.argmax(h))
    cum = np.cumsum(counts[::-1] if anomalous == "high" else counts)  # raw counts up to bin i
    best = None
    for i in range(m):  # candidate anomalous-side peaks, left of the main mode
        if h[i] <= 0 or (i > 0 and h[i] < h[i - 1]) or h[i] < h[i + 1]:
            continue
        j = i + int(np.argmin(h[i:m + 1]))
        valley, peak = h[j], h[i]
        # Pixels beyond the valley vs what a density never exceeding the valley allows.
        n_beyond = float(cum[j])
        allowed = valley * (j + 1)
        sig = (n_beyond - allowed) / np.sqrt(max(allowed, 1.0))
        if best is None or sig > best[0]:
            best = (sig, valley / peak, i, j, n_beyond)
    if best is not None:
        sig, ratio, i, j, n_beyond = best
        result.update(significance=float(sig), valley_ratio=float(ratio),
                      anomalous_mode=float(centres[i]), valley=float(centres[j]),
                      n_beyond_valley=int(n_beyond),
                      bimodal=bool(ratio <= max_valley_ratio and sig >= min_significance))
    return result


def threshold_anomalies(score, method="otsu", *, unimodality=True, anomalous=None):
    """Classify pixels as anomalous by thresholding a score map.

    First :func:`unimodality_test` decides whether the scores have a separate
    anomalous mode. If they do not, the mask is all False (clean data yields no
    anomalies) and ``metadata.CVAE.threshold.decision`` says so. Otherwise the
    threshold is Otsu's (``skimage.filters.threshold_otsu``) on the scores.

    Parameters
    ----------
    score : hyperspy Signal2D
        A score map from :func:`pcc_map` (or any map with
        ``metadata.CVAE.score``). Lazy maps are computed.
    method : {"otsu"} or float
        ``"otsu"``, or a fixed threshold value.
    unimodality : bool
        Run the unimodality check first (default). ``False`` always thresholds.
    anomalous : {None, "low", "high"}
        Which end is anomalous; read from the score's metadata when None.

    Returns
    -------
    hyperspy Signal2D of bool
        Anomaly mask (True = anomalous) with the score's calibration and
        ``metadata.CVAE.threshold`` holding the threshold, the test statistics
        and the decision.

    Examples
    --------
    >>> import hyperspy.api as hs
    >>> rng = np.random.default_rng(0)
    >>> pcc = hs.signals.Signal2D(np.clip(rng.normal(0.95, 0.01, (64, 64)), -1, 1))
    >>> pcc.data[:4, :4] = 0.5
    >>> mask = threshold_anomalies(pcc)
    >>> int(mask.data.sum()), mask.metadata.CVAE.threshold.decision
    (16, 'bimodal: thresholded')
    """
    direction = score_direction(score, anomalous)
    values = _as_array(score)
    finite = values[np.isfinite(values)]
    test = (unimodality_test(finite, anomalous=direction)
            if unimodality else {"bimodal": True, "test": "none"})
    if isinstance(method, str):
        if method != "otsu":
            raise ValueError(f"`method` must be 'otsu' or a number, got {method!r}.")
        from skimage.filters import threshold_otsu

        thr = float(threshold_otsu(finite)) if np.ptp(finite) > 0 else float(finite.max())
    else:
        thr = float(method)
    if test["bimodal"] or not unimodality:
        mask = values < thr if direction == "low" else values > thr
        decision = "bimodal: thresholded" if unimodality else "thresholded (no unimodality check)"
    else:
        mask = np.zeros(values.shape, bool)
        decision = "unimodal: no anomalies"
        _logger.info("Score distribution is unimodal (%s); no pixel flagged.", test["test"])
    mask &= np.isfinite(values)
    out = _bool_map_like(score, mask)
    if hasattr(score, "metadata"):
        out.metadata.General.title = f"Anomaly mask ({score.metadata.General.title})"
    info = {k: v for k, v in test.items()}
    info.update(method=method if isinstance(method, str) else "fixed", threshold=thr,
                anomalous=direction, decision=decision, n_flagged=int(mask.sum()))
    out.metadata.set_item("CVAE.threshold", info)
    return out


def _bool_map_like(like, data):
    """An eager Signal2D holding ``data`` with the axes and metadata of ``like``."""
    from hyperspy.signals import Signal2D

    if not hasattr(like, "axes_manager"):
        return Signal2D(data)
    return Signal2D(data, axes=like.axes_manager._get_axes_dicts(),
                    metadata=like.metadata.as_dictionary())


def detection_metrics(mask, truth, scores=None, *, anomalous=None):
    """Precision, recall and F1 of a mask, plus ROC-AUC and PR-AUC of scores.

    Parameters
    ----------
    mask, truth : Signal2D or array of bool
        Predicted and true anomaly maps.
    scores : Signal2D or array, optional
        Score map; direction read from its metadata (or ``anomalous``).

    Returns
    -------
    dict
        ``precision``, ``recall``, ``f1``, ``n_flagged``, ``n_true`` and, with
        scores, ``roc_auc`` and ``pr_auc`` (average precision).

    Examples
    --------
    >>> truth = np.array([0, 0, 1, 1], bool)
    >>> m = detection_metrics(np.array([0, 1, 1, 1], bool), truth, np.array([.9, .5, .2, .1]))
    >>> round(m["precision"], 3), m["recall"], m["roc_auc"]
    (0.667, 1.0, 1.0)
    """
    from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score

    y = _as_array(truth).astype(bool).ravel()
    p = _as_array(mask).astype(bool).ravel()
    if y.shape != p.shape:
        raise ValueError(f"mask and truth have different sizes ({p.size} vs {y.size}).")
    prec, rec, f1, _ = precision_recall_fscore_support(y, p, average="binary", zero_division=0)
    out = {"precision": float(prec), "recall": float(rec), "f1": float(f1),
           "n_flagged": int(p.sum()), "n_true": int(y.sum())}
    if scores is not None:
        a = _anomaly_scores(scores, anomalous)
        ok = np.isfinite(a)
        if y.all() or not y.any():
            out.update(roc_auc=float("nan"), pr_auc=float("nan"))
        else:
            out.update(roc_auc=float(roc_auc_score(y[ok], a[ok])),
                       pr_auc=float(average_precision_score(y[ok], a[ok])))
    return out


def _anomaly_scores(scores, anomalous=None):
    direction = score_direction(scores, anomalous)
    a = _as_array(scores).astype(np.float64).ravel()
    return -a if direction == "low" else a


def precision_recall_curve(truth, scores, *, anomalous=None):
    """Precision–recall curve of a score map against a truth mask.

    Returns
    -------
    precision, recall, thresholds : numpy.ndarray
        As :func:`sklearn.metrics.precision_recall_curve`, with thresholds in
        the score's own units (e.g. PCC values).
    """
    from sklearn.metrics import precision_recall_curve as _prc

    y = _as_array(truth).astype(bool).ravel()
    a = _anomaly_scores(scores, anomalous)
    ok = np.isfinite(a)
    prec, rec, thr = _prc(y[ok], a[ok])
    if score_direction(scores, anomalous) == "low":
        thr = -thr
    return prec, rec, thr
