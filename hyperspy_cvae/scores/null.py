"""The empirical null of per-pixel evidence on a measured map: which pixels it is measured on, and
how heavy its tails are.

The spatial pooling and the FDR threshold (:mod:`.spatial`) standardise a map's per-pixel evidence
against its own bulk (median and robust s.d.). On measured maps two more facts of that bulk
matter: part of the map has no edge (vacuum, a substrate) and carries almost no evidence, which
would make the bulk look tighter than it is (:func:`null_pixels_of`), and the evidence of the
rest can have heavier tails than a normal distribution, which a normal null would call
anomalies (:func:`tail_df`, :func:`as_normal_scores`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["tail_df", "as_normal_scores", "null_pixels_of", "MAX_TAIL_DF"]


#: Student-t degrees of freedom the tail fit chooses from (∞: the normal null).
_T_DF = np.array([1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 50.0, 100.0])
#: The largest degrees of freedom of a Student-t null (its tail ratio is 6 % above the normal one);
#: a bulk closer to normal keeps the normal null.
MAX_TAIL_DF = 10.0


def tail_df(u):
    """Degrees of freedom of a Student-t null for evidence ``u`` (the bulk's values, standardised
    by median and robust s.d.), or ``inf`` (normal).

    The tail ratio ``(q95 − q50) / (q75 − q50)`` (and its mirror below the median; the lighter of
    the two, since anomalies of one sign weigh one side) is 2.44 for a normal distribution and
    grows with heavier tails; the t whose ratio matches it is chosen where that t has at most
    :data:`MAX_TAIL_DF` degrees of freedom and the ratio exceeds the normal one by more than two
    sampling errors; otherwise ``inf``. Tails closer to normal than that are left to the normal
    null: a ratio measured at the 95 % quantile says too little about the 10⁻⁴ tail an FDR
    threshold reads to correct a near-normal bulk.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> tail_df(rng.normal(size=5000))
    inf
    >>> 1.5 <= tail_df(rng.standard_t(2, size=5000)) <= 3
    True
    """
    from scipy.stats import norm, t

    u = np.asarray(u, np.float64)
    u = u[np.isfinite(u)]
    if u.size < 20:
        return np.inf
    q05, q25, q50, q75, q95 = np.quantile(u, [0.05, 0.25, 0.5, 0.75, 0.95])
    ratio = min((q95 - q50) / max(q75 - q50, 1e-300), (q50 - q05) / max(q50 - q25, 1e-300))
    normal = norm.ppf(0.95) / norm.ppf(0.75)
    # sampling error of the ratio under a normal null: the 5 % quantile's, over the quartile's distance
    error = np.sqrt(0.05 * 0.95 / u.size) / norm.pdf(norm.ppf(0.95)) / norm.ppf(0.75)
    if not ratio > normal + 2.0 * error:
        return np.inf
    ratios = t.ppf(0.95, _T_DF) / t.ppf(0.75, _T_DF)              # decreasing in the df
    df = float(np.interp(-ratio, -ratios, _T_DF))
    return df if df <= MAX_TAIL_DF else np.inf


def as_normal_scores(u, df):
    """Evidence ``u`` (robust s.d. 1) with a Student-t null of ``df`` as normal scores (same tail
    probability, same sign)."""
    from scipy.stats import norm, t

    if not np.isfinite(df):
        return u
    scale = norm.ppf(0.75) / t.ppf(0.75, df)          # the t with the same quartiles as N(0, 1)
    return np.sign(u) * norm.isf(t.sf(np.abs(u) / scale, df))


def null_pixels_of(labels, shape):
    """``(pixels, description)``: the pixels the null is measured on, from
    :func:`~hyperspy_cvae.scores.labels.label_pixels`'s labels: "bulk" or "anomalous" (the edge is
    there, no glitch). Vacuum rows carry almost no shift evidence and would make the bulk look
    tighter than it is. None (every pixel) without labels or with fewer than 9 such pixels."""
    if labels is None:
        return None, "every pixel with evidence"
    pixels = np.asarray(labels.data).reshape(shape) <= 1
    if pixels.sum() < 9:
        return None, f"every pixel with evidence (only {int(pixels.sum())} with the edge that are not outliers)"
    return pixels, "the pixels with the edge that are not outliers"
