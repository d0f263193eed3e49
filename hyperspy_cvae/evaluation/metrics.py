"""Detection metrics of a mask and a score map against a truth mask."""

from __future__ import annotations

import numpy as np

from .._arrays import values_of
from ..scores.threshold import score_direction

__all__ = ["detection_metrics", "precision_recall_curve"]


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
        scores, ``roc_auc``, ``pr_auc`` (average precision) and ``f1_best``:
        the highest F1 that any threshold on the scores reaches (it needs the
        truth to choose, so it is a ceiling for ``f1``, not a method). All are
        over the whole map: NaN scores (pixels left out with
        ``anomaly_map(navigation_mask=...)``) rank below every scored pixel.

    Examples
    --------
    >>> truth = np.array([0, 0, 1, 1], bool)
    >>> m = detection_metrics(np.array([0, 1, 1, 1], bool), truth, np.array([.9, .5, .2, .1]),
    ...                       anomalous="low")
    >>> round(m["precision"], 3), m["recall"], m["roc_auc"], m["f1_best"]
    (0.667, 1.0, 1.0, 1.0)
    """
    from sklearn.metrics import (average_precision_score, precision_recall_curve as _prc,
                                 precision_recall_fscore_support, roc_auc_score)

    y = values_of(truth).astype(bool).ravel()
    p = values_of(mask).astype(bool).ravel()
    if y.shape != p.shape:
        raise ValueError(f"mask and truth have different sizes ({p.size} vs {y.size}).")
    prec, rec, f1, _ = precision_recall_fscore_support(y, p, average="binary", zero_division=0)
    out = {"precision": float(prec), "recall": float(rec), "f1": float(f1),
           "n_flagged": int(p.sum()), "n_true": int(y.sum())}
    if scores is not None:
        a = _anomaly_scores(scores, anomalous)
        ok = np.isfinite(a)
        if y.shape != a.shape:
            raise ValueError(f"scores and truth have different sizes ({a.size} vs {y.size}).")
        if y.all() or not y.any() or not ok.any():
            out.update(roc_auc=float("nan"), pr_auc=float("nan"), f1_best=float("nan"))
        else:
            # NaN pixels (left out by navigation_mask) stay in, ranked below every
            # scored pixel: the metrics are over the whole map, as is the mask's F1.
            a = np.where(ok, a, a[ok].min() - 1.0)
            pc, rc, _ = _prc(y, a)
            f1s = 2 * pc * rc / np.maximum(pc + rc, 1e-300)
            out.update(roc_auc=float(roc_auc_score(y, a)),
                       pr_auc=float(average_precision_score(y, a)),
                       f1_best=float(f1s.max()))
    return out


def _anomaly_scores(scores, anomalous=None):
    direction = score_direction(scores, anomalous)
    a = values_of(scores).astype(np.float64).ravel()
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

    y = values_of(truth).astype(bool).ravel()
    a = _anomaly_scores(scores, anomalous)
    ok = np.isfinite(a)
    prec, rec, thr = _prc(y[ok], a[ok])
    if score_direction(scores, anomalous) == "low":
        thr = -thr
    return prec, rec, thr


