"""Robust training: the pixels a first model flags leave the training of a second one.

An autoencoder trained on the map it searches learns what is common enough there, an anomaly
included, and then reconstructs it into the bulk. ``fit_cvae(robust=True)`` fits once, flags
the suspected anomalies with the scores that have a calibrated null (the shift score and
``"auto"``, Benjamini–Hochberg at FDR 5 %, as ``anomaly_map(threshold="fdr")``) and fits again
from scratch with those pixels out of the training mask: they get no weight in the loss, and
shards with fewer than half of their pixels left are not drawn, so few of them reach the
encoder either. ``benchmarks/robust.py`` measures it against a model trained without the anomaly.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

__all__ = ["ROBUST_SCORES", "MAX_EXCLUDED", "FDR", "suspected_anomalies", "fit_robust"]

_logger = logging.getLogger(__name__)

#: The scores whose flags (at FDR 5 %) leave the training: the default one and the any-change score.
ROBUST_SCORES = ("shift", "auto")
#: A first pass that flags more than this share of the training pixels is not used to refit
#: (the map is then no bulk with anomalies, and the second model would learn from too little).
MAX_EXCLUDED = 0.5
#: The false-discovery rate of the first pass's flags.
FDR = 0.05


def suspected_anomalies(signal, cvae, *, edge=None, noise="auto", fdr=FDR):
    """``(mask, by_score)``: the pixels of ``signal`` that :func:`~hyperspy_cvae.workflow.anomaly_map`
    flags with the fitted ``cvae`` at ``threshold="fdr"`` with any of :data:`ROBUST_SCORES`
    (navigation shape, array order), and how many each score flags.

    The scoring window is that of ``edge`` (or of the elements in ``metadata.Sample.elements``);
    a signal with neither raises a ``ValueError`` that says so. A score that refuses a window the
    shift score took (``"auto"`` on too few channels for its nuisances) is skipped (logged).
    """
    from .workflow import anomaly_map

    mask, by_score = None, {}
    for score in ROBUST_SCORES:
        try:
            res = anomaly_map(signal, "cvae", edge=edge, cvae=cvae, score=score, threshold="fdr", fdr=fdr,
                              noise=noise, show_progressbar=False)
        except ValueError as err:
            if by_score:  # the window served the shift score: what "auto" refuses is its own (too
                # few channels for its nuisances, too few spectra with counts); its flags are skipped
                _logger.info("robust=True: score=%r skipped (%s)", score, err)
                continue
            raise ValueError(f"robust=True flags the suspected anomalies with anomaly_map, which needs "
                             f"a scoring window: {err}") from err
        flagged = np.asarray(res.mask.data, bool)
        by_score[score] = int(flagged.sum())
        mask = flagged if mask is None else mask | flagged
    return mask, by_score


def fit_robust(signal, signal_range, train_mask, *, edge, noise, **kwargs):
    """:func:`~hyperspy_cvae.workflow.fit_cvae` twice: the second fit leaves out the pixels the
    first model flags (:func:`suspected_anomalies`); returns ``(cvae, model_metadata)``, the
    metadata with a ``"robust"`` record (flagged per score, left out, refit or why not) and the
    model with ``robust_excluded_`` (the pixels left out) after a refit."""
    from ._validation import pixel_mask
    from .workflow import fit_cvae

    first, info = fit_cvae(signal, signal_range, train_mask, edge=edge, noise=noise, **kwargs)
    kept = getattr(signal, "cvae_results", None)   # the first model's latent map is not the user's
    try:
        flagged, by_score = suspected_anomalies(signal, first, edge=edge, noise=noise)
    finally:
        signal.cvae_results = kept
    base = (np.ones(flagged.shape, bool) if train_mask is None else
            pixel_mask(signal, train_mask, name="train_mask", meaning="True = learn from the pixel"))
    excluded = int((flagged & base).sum())
    record = {"scores": list(by_score), "flagged": by_score, "fdr": FDR, "excluded": excluded}
    if excluded == 0 or excluded > MAX_EXCLUDED * base.sum():
        why = ("nothing flagged" if excluded == 0 else
               f"{excluded} of {int(base.sum())} training pixels flagged (more than {MAX_EXCLUDED:.0%})")
        if excluded:
            warnings.warn(f"robust=True: {why}; the first model is kept (no second fit).", stacklevel=4)
        info["robust"] = dict(record, refit=False, reason=why)
        return first, info
    cvae, info = fit_cvae(signal, signal_range, base & ~flagged, edge=edge, noise=noise, **kwargs)
    info["robust"] = dict(record, refit=True, first_fit_seconds=float(first.fit_seconds_))
    cvae.robust_excluded_ = flagged & base   # the pixels left out (navigation shape, array order)
    return cvae, info
