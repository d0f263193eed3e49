"""Per-pixel anomaly scores of a spectrum image against its reconstruction, the thresholds that
turn them into masks, and the masks of pixels to leave out."""

from ._common import score_signal
from .change import change_analysis, change_score_map
from .describe import EXPLANATIONS, describe_pixels, explain
from .labels import LABELS, label_pixels
from .masks import edge_free_mask, leave_out
from .spatial import fdr_threshold, pool_scores, region_table
from .residual import deviance_map, pcc_map, pearson, poisson_deviance
from .shift import (SHIFT_DIRECTIONS, SHIFT_FLAGS, SHIFT_NUISANCES, directional_shift_score, estimate_shift,
                    likelihood_ratio, shift_analysis, shift_map, shift_score_map)
from .threshold import otsu_threshold, score_direction, threshold_anomalies, unimodality_test

__all__ = ["SCORES", "SHIFT_FLAGS", "score_map", "score_signal", "pearson", "pcc_map", "poisson_deviance",
           "deviance_map", "estimate_shift", "shift_analysis", "directional_shift_score", "SHIFT_DIRECTIONS",
           "SHIFT_NUISANCES", "shift_map", "shift_score_map",
           "likelihood_ratio", "score_direction", "otsu_threshold", "unimodality_test", "threshold_anomalies",
           "edge_free_mask", "leave_out", "LABELS", "label_pixels", "pool_scores", "region_table",
           "fdr_threshold", "change_analysis", "change_score_map", "EXPLANATIONS", "describe_pixels",
           "explain"]

#: Scores offered by ``anomaly_map(score=...)``, each a function
#: ``(original, reconstruction, window, max_shift) -> score map``.
SCORES = {
    "pcc": lambda original, rec, window, max_shift: pcc_map(original, rec, window),
    "deviance": lambda original, rec, window, max_shift: deviance_map(original, rec, window),
    "shift": lambda original, rec, window, max_shift: shift_score_map(original, rec, window, max_shift),
    "auto": lambda original, rec, window, max_shift: change_score_map(original, rec, window),
}


def score_map(original, reconstruction, window, score="shift", *, max_shift=10.0):
    """The score map named ``score`` (a key of :data:`SCORES`) of ``original`` against its
    reconstruction in ``window``.

    Examples
    --------
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> s, bulk = bifeo3_si((16, 16), random_state=0, return_expected=True)
    >>> score_map(s, bulk, (690., 730.), "pcc").metadata.CVAE.score.anomalous
    'low'
    """
    if score not in SCORES:
        raise ValueError(f"`score` must be one of {tuple(SCORES)}, got {score!r}.")
    return SCORES[score](original, reconstruction, window, max_shift)
