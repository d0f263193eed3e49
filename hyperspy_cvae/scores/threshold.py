"""From a score map to an anomaly mask: which end is anomalous, the unimodality (dip) test and
the threshold."""

from __future__ import annotations

import logging

import numpy as np

from .._arrays import values_of
from .._maps import navigation_map
from .._stats import robust_sd

__all__ = ["score_direction", "otsu_threshold", "unimodality_test", "threshold_anomalies"]

_logger = logging.getLogger(__name__)


def score_direction(score, anomalous=None):
    """Return ``"low"`` or ``"high"``: which end of ``score`` is anomalous.

    Read from ``anomalous`` when given, else from the score map's
    ``metadata.CVAE.score.anomalous``. A plain array carries no direction:
    it raises instead of guessing.

    Examples
    --------
    >>> score_direction(np.zeros(3), "high")
    'high'
    """
    if anomalous is None and hasattr(score, "metadata"):
        anomalous = score.metadata.get_item("CVAE.score.anomalous", None)
    if anomalous is None:
        raise ValueError(
            "Cannot tell which end of this score is anomalous: pass anomalous='low' (as for PCC) "
            "or anomalous='high' (shift, deviance, RX), or use a score map from `anomaly_map`, "
            "whose metadata.CVAE.score.anomalous says it.")
    if anomalous not in ("low", "high"):
        raise ValueError(f"`anomalous` must be 'low' or 'high', got {anomalous!r}.")
    return anomalous


def otsu_threshold(values, nbins=256):
    """Otsu's threshold of ``values``: the histogram bin centre that maximises the between-class
    variance ``w₁ w₂ (m₁ − m₂)²`` of the two classes it separates.

    The histogram has ``nbins`` equal bins from the smallest to the largest value (NumPy's edges,
    in the values' own float type); the threshold is the centre of the last bin of the lower
    class, as in ``skimage.filters.threshold_otsu`` for float data (same floats). All values
    equal: that value. Integer values are taken as float64.

    Parameters
    ----------
    values : array_like
        Finite values (any shape).
    nbins : int
        Number of histogram bins.

    Returns
    -------
    float

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(0.0, 1.0, 900), rng.normal(8.0, 1.0, 100)])
    >>> 2.0 < otsu_threshold(x) < 6.0
    True
    >>> otsu_threshold([3.0, 3.0])
    3.0
    """
    x = np.asarray(values).ravel()
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if not x.size:
        raise ValueError("Otsu's threshold needs at least one value.")
    if np.all(x == x[0]):
        return float(x[0])
    counts, edges = np.histogram(x, bins=int(nbins))
    centres = (edges[:-1] + edges[1:]) / 2.0
    w1 = np.cumsum(counts)
    w2 = np.cumsum(counts[::-1])[::-1]
    m1 = np.cumsum(counts * centres) / w1
    m2 = (np.cumsum((counts * centres)[::-1]) / w2[::-1])[::-1]
    between = w1[:-1] * w2[1:] * (m1[:-1] - m2[1:]) ** 2
    return float(centres[np.argmax(between)])


def unimodality_test(scores, *, anomalous="low", nbins=256, smooth=2.0, max_valley_ratio=0.8,
                     min_significance=4.5, min_pixels=10, min_separation=3.0, min_kernel_count=10.0):
    """Decide whether the scores have a separate mode on the anomalous side.

    A local dip test on the histogram. The scores are binned (``nbins``
    equal bins over their range, as for Otsu) and smoothed with a Gaussian of
    ``smooth`` bins, widened (×2, ×4, ×8) wherever the histogram is too sparse
    for that width — fewer than ``min_kernel_count`` pixels under the kernel —
    so that chance gaps in a sparse tail are not taken for valleys. Let ``M``
    be the main mode (highest bin). For every local maximum ``P`` on the
    anomalous side of ``M``, the valley ``V`` is the lowest smoothed count
    between ``P`` and ``M``. The distribution is called bimodal if, for some
    ``P``, all of these hold:

    * there is a dip: ``V <= max_valley_ratio · P`` (0.8: a broad anomalous
      population — a spread of shifts — has a low, wide peak, so the dip is
      shallow in ratio; whether it is real is decided by the next test);
    * the mode is not a counting fluctuation: over the ``k`` bins beyond the
      valley where the smoothed histogram is above ``(V + P) / 2`` (the upper
      half of the mode), a density never exceeding ``V`` — what a unimodal
      distribution allows there — would give at most ``V·k`` pixels on
      average; the ``N`` pixels observed there must be a
      ``min_significance``-sigma excess (exact Poisson tail probability of
      ``N`` given mean ``V·k``, as a Gaussian sigma);
    * at least ``min_pixels`` pixels lie beyond the valley (a handful of
      isolated extreme pixels in a long tail is not a population);
    * the mode is an outlying population, not structure inside the bulk: it
      lies at least ``min_separation`` robust standard deviations (1.4826 ×
      the median absolute deviation of all scores) from the median.

    Of the modes that pass, the one whose valley is nearest the main mode is
    reported (its valley separates the most pixels).

    The false-positive rate of this test on unimodal skewed and heavy-tailed
    samples is measured by ``benchmarks/unimodality_null.py`` in the source repository.

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
    nbins, smooth : int, float
        Histogram bins and the narrowest Gaussian smoothing (in bins).
    max_valley_ratio, min_significance, min_pixels, min_separation, min_kernel_count : float
        The thresholds of the conditions above.

    Returns
    -------
    dict
        ``bimodal`` (bool), ``valley_ratio`` (V/P of the reported dip, 1 if
        none), ``significance`` (sigma), ``anomalous_mode`` and ``valley``
        (score values), ``n_beyond_valley``, ``test`` (a description).

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
    from scipy.stats import norm, poisson

    z = np.asarray(scores, dtype=np.float64).ravel()
    z = z[np.isfinite(z)]
    desc = (f"histogram dip test ({nbins} bins, adaptive smoothing >= {smooth:g} bins): bimodal iff "
            f"a mode on the {anomalous} side, >= {min_separation:g} robust s.d. from the median, has "
            f"a valley <= {max_valley_ratio:g}x its height and is >= {min_significance:g} sigma above it")
    result = {"bimodal": False, "valley_ratio": 1.0, "significance": 0.0, "anomalous_mode": None,
              "valley": None, "n_beyond_valley": 0, "test": desc}
    if z.size < 10 or np.ptp(z) <= 1e-12 * max(1.0, np.abs(z).max()):
        return result
    counts, edges = np.histogram(z, bins=nbins)
    centres = 0.5 * (edges[1:] + edges[:-1])
    # Adaptive smoothing: the narrowest of smooth·(1, 2, 4, 8) bins with at least
    # min_kernel_count pixels under the kernel (the widest where none has).
    h = None
    for width in smooth * 2.0 ** np.arange(3, -1, -1):
        hw = gaussian_filter1d(counts.astype(np.float64), width, mode="constant")
        h = hw if h is None else np.where(hw * np.sqrt(2 * np.pi) * width >= min_kernel_count, hw, h)
    raw = counts.astype(np.float64)
    if anomalous == "high":  # work from the anomalous end towards the main mode
        h, centres, raw = h[::-1], centres[::-1], raw[::-1]
    m = int(np.argmax(h))
    cum = np.cumsum(raw)  # raw counts up to bin i
    median = float(np.median(z))
    spread = robust_sd(z, median)
    peaks = [i for i in range(m)  # candidate anomalous-side peaks, left of the main mode
             if h[i] > 0 and (i == 0 or h[i] >= h[i - 1]) and h[i] >= h[i + 1]
             and abs(centres[i] - median) >= min_separation * spread]  # else: inside the bulk
    best = None
    for i in peaks:
        j = i + int(np.argmin(h[i:m + 1]))
        valley, peak = h[j], h[i]
        n_beyond = float(cum[j])
        # Pixels in the upper half of the mode vs what a density never exceeding
        # the valley allows there: exact Poisson tail.
        in_mode = h[:j + 1] > 0.5 * (valley + peak)
        allowed = valley * int(in_mode.sum())
        n_mode = float(raw[:j + 1][in_mode].sum())
        p = poisson.sf(n_mode - 1, max(allowed, 1e-12)) if n_mode > allowed else 0.5
        sig = float(norm.isf(min(max(p, 1e-300), 0.5)))
        ratio = valley / peak
        passes = ratio <= max_valley_ratio and sig >= min_significance and n_beyond >= min_pixels
        key = (passes, n_beyond if passes else sig)
        if best is None or key > best[0]:
            best = (key, passes, sig, ratio, i, j, n_beyond)
    if best is not None:
        _, passes, sig, ratio, i, j, n_beyond = best
        result.update(significance=sig, valley_ratio=float(ratio),
                      anomalous_mode=float(centres[i]), valley=float(centres[j]),
                      n_beyond_valley=int(n_beyond), bimodal=bool(passes))
    return result


def threshold_anomalies(score, method="otsu", *, unimodality=True, anomalous=None):
    """Classify pixels as anomalous by thresholding a score map.

    First :func:`unimodality_test` decides whether the scores have a separate
    anomalous mode. If they do not, the mask is all False (clean data yields no
    anomalies) and ``metadata.CVAE.threshold.decision`` says so. Otherwise the
    threshold is Otsu's (:func:`otsu_threshold`) on the scores.

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
    >>> mask = threshold_anomalies(pcc, anomalous="low")
    >>> int(mask.data.sum()), mask.metadata.CVAE.threshold.decision
    (16, 'bimodal: thresholded')
    """
    direction = score_direction(score, anomalous)
    if isinstance(method, str):
        if method != "otsu":
            raise ValueError(f"`method` must be 'otsu' or a number, got {method!r}.")
    elif isinstance(method, (bool, np.bool_)) or not isinstance(method, (int, float, np.number)) \
            or not np.isfinite(method):
        raise ValueError(f"`method` must be 'otsu' or a finite number, got {method!r}.")
    values = values_of(score)
    finite = values[np.isfinite(values)]
    test = (unimodality_test(finite, anomalous=direction)
            if unimodality else {"bimodal": bool(finite.size), "test": "none"})
    if not finite.size:
        thr = float("nan")
    elif isinstance(method, str):
        thr = otsu_threshold(finite)
    else:
        thr = float(method)
    rule = "otsu" if isinstance(method, str) else "fixed"
    if unimodality and test["bimodal"] and isinstance(method, str) and test["valley"] is not None:
        # Otsu on a tiny anomalous population can split the bulk instead; the
        # threshold never goes into the main mode past the valley of the dip.
        bulk_side = thr > test["valley"] if direction == "low" else thr < test["valley"]
        if bulk_side:
            thr, rule = float(test["valley"]), "valley (Otsu fell inside the main mode)"
    if not finite.size:
        mask = np.zeros(values.shape, bool)
        decision = "no finite score: no anomalies"
    elif test["bimodal"] or not unimodality:
        mask = values < thr if direction == "low" else values > thr
        decision = "bimodal: thresholded" if unimodality else "thresholded (no unimodality check)"
    else:
        mask = np.zeros(values.shape, bool)
        decision = "unimodal: no anomalies"
        _logger.info("Score distribution is unimodal (%s); no pixel flagged.", test["test"])
    mask &= np.isfinite(values)
    if hasattr(score, "axes_manager"):
        out = navigation_map(score, mask, f"Anomaly mask ({score.metadata.General.title})")
    else:
        from hyperspy.signals import Signal2D

        out = Signal2D(mask)
    info = {k: v for k, v in test.items()}
    info.update(method=method if isinstance(method, str) else "fixed", threshold=thr, rule=rule,
                anomalous=direction, decision=decision, n_flagged=int(mask.sum()))
    out.metadata.set_item("CVAE.threshold", info)
    return out


