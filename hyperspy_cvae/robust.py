"""Robust training: the pixels a first model flags leave the training of a second one.

An autoencoder trained on the map it searches learns what is common enough there, an anomaly
included: a 0.5 eV shift in a quarter of the map is reconstructed into the bulk (the shift
score's ROC-AUC falls from 0.9997 with a model trained on the clean twin to 0.971). Zeroing
those pixels' weight in the loss part-way through training does not undo it (the shards still
carry them into the encoder; ``benchmarks/NOTES.md`` §18); leaving them out from the start does:
``fit_cvae(robust=True)`` fits once, flags the suspected anomalies with the scores that have a
calibrated null (the shift score and ``"auto"``, Benjamini–Hochberg at FDR 5 %, as
``anomaly_map(threshold="fdr")``) and fits again from scratch with those pixels out of the
training mask (shards with fewer than half of their pixels left are not drawn).
"""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["ROBUST_SCORES", "MAX_EXCLUDED", "suspected_anomalies"]

_logger = logging.getLogger(__name__)

#: The scores whose flags (at FDR 5 %) leave the training: the default one and the any-change score.
ROBUST_SCORES = ("shift", "auto")
#: A first pass that flags more than this share of the training pixels is not used to refit
#: (the map is then no bulk with anomalies, and the second model would learn from too little).
MAX_EXCLUDED = 0.5


def suspected_anomalies(signal, cvae, *, edge=None, noise="auto", fdr=0.05):
    """``(mask, by_score)``: the pixels of ``signal`` that :func:`~hyperspy_cvae.workflow.anomaly_map`
    flags with the fitted ``cvae`` at ``threshold="fdr"`` with any of :data:`ROBUST_SCORES`
    (navigation shape, array order), and how many each score flags.

    The scoring window is that of ``edge`` (or of the elements in ``metadata.Sample.elements``);
    a signal with neither raises a ``ValueError`` that says so.
    """
    from .workflow import anomaly_map

    mask, by_score = None, {}
    for score in ROBUST_SCORES:
        try:
            res = anomaly_map(signal, "cvae", edge=edge, cvae=cvae, score=score, threshold="fdr", fdr=fdr,
                              noise=noise, show_progressbar=False)
        except ValueError as err:
            if score == "auto" and "channels" in str(err):  # a window too narrow for its nuisances
                _logger.info("robust=True: score='auto' skipped (%s)", err)
                continue
            raise ValueError(f"robust=True flags the suspected anomalies with anomaly_map, which needs "
                             f"a scoring window: {err}") from err
        flagged = np.asarray(res.mask.data, bool)
        by_score[score] = int(flagged.sum())
        mask = flagged if mask is None else mask | flagged
    return mask, by_score
