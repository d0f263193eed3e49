"""Spatial pooling: evidence of several neighbouring pixels added up, with a controlled
false-discovery rate.

A weak anomaly that covers several pixels (a precipitate, a domain, a reduced region) is below
the per-pixel noise in each of them, but the sum of k per-pixel evidences has ~√k times the
signal-to-noise. :func:`pool_scores` standardises a per-pixel evidence map against its own bulk
(the empirical null: median and robust s.d., which a minority of anomalous pixels barely moves),
sums it over boxes of several sizes, and tests each box sum against its null: under exchangeable,
independent Gaussian per-pixel evidence the sum over k pixels divided by √k is exactly N(0, 1),
so every size is calibrated separately and exactly. The per-pixel p-value is the smallest over
the sizes, Bonferroni-corrected, and the false-discovery rate over the map is controlled with
Benjamini–Hochberg (``scipy.stats.false_discovery_control``; valid for the positively dependent
p-values of overlapping boxes). Pixels significant on their own are then taken out of the
windows around them and the windows tested again, so that a strong single pixel does not drag a
halo of boxes along; regions of one or two pixels must pass a Bonferroni level over the map on
their own evidence. The flagged regions are then redrawn pixel by pixel by a two-class
segmentation with a spatial (Ising) prior, whose level is re-estimated from the redrawn segment,
so that the outline follows the anomaly rather than the box. :func:`fdr_threshold` is the same
test for single pixels only (nothing pooled or redrawn): ``anomaly_map(threshold="fdr")``.

Measured maps break the two assumptions behind the exact N(0, 1) null, and the null adapts to
each, measured on the bulk pixels (the ``null_pixels``; in ``anomaly_map``, the pixels with the
edge that are not outliers):

* **heavy tails**: where the bulk's evidence has heavier tails than a normal distribution (the
  distance of its 95 % quantile from the median over its 75 % quantile's, on the lighter of the
  two sides: :func:`~hyperspy_cvae.scores.null.tail_df`), a Student-t null is fitted to that
  ratio and the evidence is mapped through it to normal scores (a pixel 8 robust s.d. out is
  then as rare as the bulk's own tail says, not as a normal tail says);
* **correlated neighbours** (a probe larger than the pixel, scan drift, layers): each window's
  standardised sum is divided by its own robust spread over the bulk where that exceeds 1 (each
  scale calibrated separately, as in multi-scale scan statistics).

On a map whose bulk evidence is independent and Gaussian neither changes much: the tail ratio
stays within its sampling error (a normal null), and the window spreads exceed 1 only by their
sampling error and the anomalies' own boxes (a few per cent on the synthetic cubes). The benchmark
(``benchmarks/spatial.py`` in the source repository) measures the flagged fraction on
anomaly-free cubes, ``benchmarks/real_data.py`` on untouched measured maps.
"""

from __future__ import annotations

import numpy as np

from .null import as_normal_scores, null_pixels_of, tail_df
from .shift import directional_shift_score

__all__ = ["pool_scores", "SCALES", "region_table", "gaussianise", "evidence_of", "fdr_threshold",
           "pool_score_map", "resolve_scales"]

#: Default windows (pixels, odd): a single pixel, 3 × 3 and 5 × 5 boxes, and bars along y
#: and x (7 pixels) for 1-pixel-wide lines (an interface, a dislocation) that a square box dilutes.
SCALES = (1, 3, 5, (7, 1), (1, 7))
#: Strength of the Ising prior of the outline (per agreeing 8-neighbour, in log-likelihood units).
BETA = 0.7


def _box_sum(z, size):
    """Sums over boxes of ``size`` pixels a side (or ``(rows, columns)``); outside the map counts
    as 0."""
    from scipy.ndimage import uniform_filter

    shape = (size,) * z.ndim if isinstance(size, int) else tuple(size)
    if all(s == 1 for s in shape):
        return z
    return uniform_filter(z, size=shape, mode="constant", cval=0.0) * float(np.prod(shape))


def _check_scales(scales, ndim):
    """``scales`` as a tuple of odd ints and, on maps, odd ``(rows, columns)`` pairs."""
    out = []
    for s in scales:
        if isinstance(s, (tuple, list)):
            if ndim != 2 or len(s) != 2:
                raise ValueError(f"`scales`: a (rows, columns) window needs a map, got {s!r}.")
            pair = tuple(int(v) for v in s)
            if any(v < 1 or v % 2 == 0 or v != w for v, w in zip(pair, s)):
                raise ValueError(f"`scales` must be odd window sizes >= 1, got {s!r}.")
            out.append(pair)
        else:
            if isinstance(s, bool) or int(s) != s or int(s) < 1 or int(s) % 2 == 0:
                raise ValueError(f"`scales` must be odd window sizes >= 1, got {s!r}.")
            out.append(int(s))
    if not out:
        raise ValueError("`scales` is empty.")
    return tuple(out)


def gaussianise(score):
    """A one-sided score (high = anomalous, any distribution) as normal scores of its ranks.

    For scores without a signed, Gaussian per-pixel evidence (PCC, deviance, RX): ties get their
    mean rank, NaN stays NaN.

    Examples
    --------
    >>> gaussianise(np.array([0.1, 5.0, 0.3, np.nan])).round(2)
    array([-0.97,  0.97,  0.  ,   nan])
    """
    from scipy.stats import norm, rankdata

    s = np.asarray(score, float)
    out = np.full(s.shape, np.nan)
    ok = np.isfinite(s)
    out[ok] = norm.ppf((rankdata(s[ok]) - 0.5) / ok.sum())
    return out



def evidence_of(score, shift=None, *, ranks=True):
    """``(evidence, two_sided, description)`` of a score map (a signal with ``metadata.CVAE.score``):
    with the ``shift`` map the signed ``sign(shift) · score`` (two-sided); else the score oriented
    so that high = anomalous (one-sided), as normal scores of its ranks (``ranks=True``, for box
    sums) or as it is (``ranks=False``: per-pixel p-values, which ranks would make uniform)."""
    if shift is not None:
        signed = directional_shift_score(score, shift, "higher")
        return np.asarray(signed.data, float), True, "sign(shift) · shift score"
    z = np.asarray(score.data, float)
    high = score.metadata.get_item("CVAE.score.anomalous", "high") == "high"
    z = z if high else -z
    if ranks:
        return gaussianise(z), False, "normal scores of the score's ranks"
    return z, False, "the score (high = anomalous)"


def fdr_threshold(score, fdr=0.05, *, shift=None, navigation_mask=None, labels=None):
    """Anomaly mask at false-discovery rate ``fdr``: Benjamini–Hochberg on per-pixel p-values.

    The evidence (:func:`evidence_of`, without ranks) is standardised against the map's own bulk
    (median and robust s.d.: the empirical null, which a minority of anomalous pixels barely
    moves; a score calibrated as N(0, 1) already, ``metadata.CVAE.score.null``, is used as it
    is) and its normal tail gives each pixel's p-value (:func:`pool_scores` with
    ``scales=(1,)``, nothing pooled or redrawn). Unlike Otsu it needs no valley in the histogram,
    so it flags a weak, small or broad anomalous population.

    Parameters
    ----------
    score : hyperspy Signal2D
        A score map (``metadata.CVAE.score`` says which end is anomalous); computed.
    fdr : float
        The false-discovery rate, in (0, 1).
    shift : hyperspy Signal2D, optional
        The shift map of the shift score: the evidence is then signed (two-sided).
    navigation_mask : array of bool, optional
        Pixels left out (True): never flagged, not part of the null.
    labels : Signal2D, optional
        :func:`~hyperspy_cvae.scores.labels.label_pixels`'s labels: the null is then measured on
        the pixels with the edge that are not outliers (all pixels are still tested).

    Returns
    -------
    hyperspy Signal2D of bool
        With ``metadata.CVAE.threshold`` (method ``"fdr"``, the rate, the null, the count).

    Examples
    --------
    >>> import hyperspy.api as hs
    >>> rng = np.random.default_rng(0)
    >>> z = hs.signals.Signal2D(rng.normal(size=(64, 64)))
    >>> z.metadata.set_item("CVAE.score.anomalous", "high")
    >>> z.data[:3, :3] += 5.0
    >>> m = fdr_threshold(z)
    >>> int(m.data[:3, :3].sum()), int(m.data.sum()) <= 10, m.metadata.CVAE.threshold.method
    (9, True, 'fdr')
    """
    from .._maps import navigation_map

    evidence, two_sided, kind = evidence_of(score, shift, ranks=False)
    valid = np.isfinite(evidence)
    if navigation_mask is not None:
        valid &= ~np.asarray(navigation_mask, bool)
    calibrated = score.metadata.get_item("CVAE.score.null") == "N(0, 1)" and shift is None
    null_pixels, null_from = null_pixels_of(labels, evidence.shape)
    out = pool_scores(evidence, (1,), alpha=fdr, two_sided=two_sided, valid=valid, refine=False, specks=False,
                      null=(0.0, 1.0) if calibrated else None, null_pixels=null_pixels)
    mask = navigation_map(score, out["mask"], f"Anomalies at FDR {fdr:g} ({score.metadata.General.title})")
    mask.metadata.set_item("CVAE.threshold", {
        "method": "fdr", "fdr": out["alpha"], "n_flagged": int(out["mask"].sum()), "evidence": kind,
        "two_sided": two_sided, "null": "the bulk's median and robust s.d. (empirical null); heavy tails "
        "mapped through a Student-t null (tail_df; inf: normal)",
        "null_from": null_from,
        "null_median": out["null"]["median"], "null_robust_sd": out["null"]["robust_sd"],
        "tail_df": out["null"]["tail_df"],
        "decision": "Benjamini-Hochberg on per-pixel p-values"})
    return mask


def pool_score_map(smap, mask, scales, fdr, shift=None, *, labels=None):
    """A score map's per-pixel evidence pooled over ``scales`` (:func:`pool_scores`), as signals:
    ``(pooled map, mask at FDR ``fdr``, region table)`` (``anomaly_map(spatial=...)``). With the
    ``shift`` map the evidence is signed (``sign(shift) · score``, two-sided); otherwise the
    score's normal scores (:func:`gaussianise`, one-sided). The per-pixel ``mask``'s metadata is
    kept under ``metadata.CVAE.threshold.per_pixel``.

    With ``labels`` (:func:`~hyperspy_cvae.scores.labels.label_pixels`) the null is measured on
    the pixels that have the edge and are not outliers; every pixel is still tested."""
    from .._maps import navigation_map

    z = np.asarray(smap.data, float)
    evidence, two_sided, kind = evidence_of(smap, shift)
    if evidence.ndim == 1 or 1 in evidence.shape:  # a line scan (or its one-row map): square sizes
        scales = tuple(s for s in scales if isinstance(s, int)) or (1,)
    null_pixels, null_from = null_pixels_of(labels, evidence.shape)
    out = pool_scores(evidence, scales, alpha=fdr, two_sided=two_sided, null_pixels=null_pixels)
    title = smap.metadata.General.title
    pooled = navigation_map(smap, out["pooled"], f"Pooled evidence ({title})", metadata={"CVAE.spatial": {
        "scales": [str(s) for s in out["scales"]], "fdr": out["alpha"], "evidence": kind,
        "two_sided": two_sided,
        "null": ("the bulk's median and robust s.d.; heavy tails mapped through a Student-t null "
                 "(tail_df; inf: normal); each scale's standardised sums divided by their spread over "
                 "the bulk where above 1 (window_spread)"),
        "null_from": null_from, "null_median": out["null"]["median"],
        "null_robust_sd": out["null"]["robust_sd"], "tail_df": out["null"]["tail_df"],
        "window_spread": out["null"]["window_spread"],
        "statistic": "largest standardised box sum over the scales"}})
    scales_txt = [str(s) for s in out["scales"]]
    new = navigation_map(smap, out["mask"], f"Anomalies, pooled over {', '.join(scales_txt)} px (FDR {fdr:g})")
    new.metadata.set_item("CVAE.threshold", {
        "method": "spatial", "scales": scales_txt, "fdr": out["alpha"],
        "n_flagged": int(out["mask"].sum()), "per_pixel": mask.metadata.CVAE.threshold.as_dictionary()})
    axes = [a for a in smap.axes_manager.signal_axes][::-1]
    regions = region_table(out["mask"], score=z, q=out["q"], axes=axes,
                           shift=None if shift is None else np.asarray(shift.data, float))
    return pooled, new, regions


def pool_scores(evidence, scales=SCALES, *, alpha=0.05, two_sided=True, valid=None, refine=True,
                specks=True, null=None, null_pixels=None):
    """Pool a per-pixel evidence map over several box sizes and flag regions at FDR ``alpha``.

    Parameters
    ----------
    evidence : array (ny, nx) or (n,)
        Per-pixel evidence, about Gaussian in the bulk: a signed statistic such as
        ``sign(shift) · √GLRT`` (``two_sided=True``), or a one-sided one, high = anomalous
        (``two_sided=False``; :func:`gaussianise` makes one from any score). NaN pixels (no
        information, left out) count as the bulk's median and are never flagged.
    scales : sequence of odd int or (int, int)
        Box sizes in pixels, or ``(rows, columns)`` windows on a map; 1 keeps the per-pixel test
        (single pixels), bars such as ``(7, 1)`` find 1-pixel-wide lines. Default :data:`SCALES`
        (the square sizes only on a line scan).
    alpha : float
        False-discovery rate of the flagged pixels.
    two_sided : bool
        Flag large box sums of either sign (a region shifted up or down).
    valid : array of bool, optional
        Pixels that count (default: the finite ones).
    refine : bool
        Redraw each flagged region's outline pixel by pixel (see the module's description).
    specks : bool
        Drop flagged regions of one or two pixels that do not pass a Bonferroni level over the
        map (False with ``scales=(1,)``: the plain per-pixel Benjamini–Hochberg test).
    null : (float, float), optional
        The evidence's null median and s.d. when it is already calibrated (default: the bulk's
        median and robust s.d.). The heavy-tail check of the module's description runs either
        way; the window spreads are measured only without ``null``.
    null_pixels : array of bool, optional
        The pixels the null is measured on (default: the valid ones); the others are still
        pooled and tested against it.

    Returns
    -------
    dict
        ``"p"`` (per-pixel p-value: the smallest over scales × the number of scales), ``"q"``
        (Benjamini–Hochberg adjusted), ``"pooled"`` (the largest standardised box sum over the
        scales, in s.d. of its null), ``"mask"`` (flagged pixels), ``"scale"`` (the window of the
        smallest p per pixel, as text), ``"null"`` (the bulk's median and robust s.d., the tail's
        degrees of freedom ``tail_df``, ``inf`` for a normal null, and ``window_spread``, the
        divisor of each scale's sums), ``"scales"``, ``"alpha"``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(40, 40))
    >>> z[10:15, 10:15] += 1.5                     # a weak 5 × 5 patch: 1.5 s.d. per pixel
    >>> out = pool_scores(z)
    >>> int(out["mask"][10:15, 10:15].sum()) >= 18, int(out["mask"].sum()) <= 27
    (True, True)
    >>> int(pool_scores(rng.normal(size=(40, 40)))["mask"].sum())   # no anomaly
    0
    """
    from scipy.stats import false_discovery_control, norm

    from .._stats import robust_sd

    z = np.asarray(evidence, dtype=np.float64)
    if z.ndim not in (1, 2):
        raise ValueError(f"`evidence` must be a map (ny, nx) or a line (n,), got shape {z.shape}.")
    if z.ndim == 1 and scales is SCALES:
        scales = tuple(s for s in SCALES if isinstance(s, int))
    scales = _check_scales(scales, z.ndim)
    if not 0 < float(alpha) < 1:
        raise ValueError(f"`alpha` must be in (0, 1), got {alpha!r}.")
    valid = np.isfinite(z) if valid is None else (np.asarray(valid, bool) & np.isfinite(z))
    if valid.sum() < 9:
        raise ValueError("Fewer than 9 valid pixels: nothing to pool.")
    base = valid if null_pixels is None else valid & np.asarray(null_pixels, bool)
    if base.sum() < 9:
        raise ValueError("Fewer than 9 pixels to measure the null on: nothing to pool.")
    centre, spread = (float(np.median(z[base])), float(robust_sd(z[base]))) if null is None else \
        (float(null[0]), float(null[1]))
    if not spread > 0:
        raise ValueError("The evidence is constant over the map: nothing to pool.")
    u = np.where(valid, (z - centre) / spread, 0.0)
    df = tail_df(u[base])      # a calibrated score's null is still checked for heavy tails
    u = as_normal_scores(u, df)
    weight = valid.astype(np.float64)

    def sums(v):
        # sum over the valid pixels of each box / √(their number): N(0, 1) per scale for independent
        # evidence, at the borders too
        return np.stack([_box_sum(v, s) / np.sqrt(np.maximum(_box_sum(weight, s), 1.0)) for s in scales])

    first = sums(u)
    # correlated neighbours widen the sums: each scale is divided by its own robust spread over the
    # bulk where that exceeds 1 (a single pixel's is 1 by construction)
    divisor = np.ones(len(scales)) if null is not None else \
        np.array([1.0 if s == 1 else max(1.0, robust_sd(st[base], 0.0)) for s, st in zip(scales, first)])

    def tail_p(x):
        # the normal tail of N(0, 1) statistics, both sides or the upper one
        return norm.sf(np.abs(x) if two_sided else x) * (2.0 if two_sided else 1.0)

    def test(summed):
        stat = summed / divisor.reshape((-1,) + (1,) * z.ndim)
        tail = np.abs(stat) if two_sided else stat
        p_scale = tail_p(stat)
        p = np.minimum(p_scale.min(0) * len(scales), 1.0)
        q = np.ones_like(p)
        q[valid] = false_discovery_control(p[valid], method="bh")
        return stat, tail, np.argmin(p_scale, axis=0), p, q

    stat, tail, best, p, q = test(first)
    mask = (q <= alpha) & valid
    one = [i for i, s in enumerate(scales) if s == 1]
    singles = mask & np.isin(best, one)
    if singles.any() and len(scales) > len(one):
        # Explain away: pixels significant on their own no longer lend their evidence to the
        # windows around them (else a strong single pixel drags a halo of boxes and bars along).
        _, _, best2, _, q2 = test(sums(np.where(singles, 0.0, u)))
        mask = singles | ((q2 <= alpha) & valid & ~singles)
        best = np.where(singles, best, best2)
    if refine and mask.any() and z.ndim == 2:
        thin_idx = [i for i, s in enumerate(scales) if s == 1 or (isinstance(s, tuple) and min(s) == 1)]
        mask = _segment(u, mask, valid, np.isin(best, thin_idx))
    if specks and mask.any():
        # a speck claims one or two pixels: their own evidence must carry it (a bar or box whose
        # segmentation kept one pixel of it is no evidence for that pixel)
        own = np.minimum(tail_p(u) * len(scales), 1.0)
        mask = _drop_weak_specks(mask, own, alpha / valid.sum())
    pooled = np.take_along_axis(stat, np.argmax(tail, 0)[None], 0)[0]
    return {"p": np.where(valid, p, np.nan), "q": np.where(valid, q, np.nan),
            "pooled": np.where(valid, pooled, np.nan), "mask": mask,
            "scale": np.asarray([str(s) for s in scales], dtype=object)[best],
            "null": {"median": centre, "robust_sd": spread, "tail_df": df,
                     "window_spread": {str(sc): float(d) for sc, d in zip(scales, divisor)}},
            "scales": scales, "alpha": float(alpha)}


def _segment(u, mask, valid, thin, *, beta=BETA, iterations=5, rounds=10):
    """Redraw the flagged regions pixel by pixel: two Gaussian classes of unit variance (the bulk
    at 0, each region at its level) and an Ising prior of strength ``beta`` per agreeing
    8-neighbour, optimised by iterated conditional modes within two pixels of the region, starting
    from the pixel-wise decision. The level starts at the region's mean standardised evidence and
    is re-estimated from the redrawn segment until the segment stops changing (at most ``rounds``
    times): a box-pooled region holds a ring of bulk pixels, whose zeros would pull the level down
    and let the prior keep bulk neighbours. A region found mostly by single-pixel or bar windows
    (``thin``: a line) keeps its first level, which its strongest pixels would otherwise raise
    above its weaker ones, and a ``thin`` pixel whose own evidence agrees with the level is never
    removed (a 1-pixel-wide line has few agreeing neighbours). Single pixels and specks (≤ 2
    pixels) are kept as they are."""
    from scipy.ndimage import binary_dilation, convolve, find_objects, label

    lab, n = label(mask)
    out = np.zeros_like(mask)
    kernel = np.ones((3, 3))
    kernel[1, 1] = 0
    pad = 3                                          # the 2-pixel band and the prior's neighbours
    for i, box in enumerate(find_objects(lab), start=1):
        crop = tuple(slice(max(b.start - pad, 0), b.stop + pad) for b in box)
        region = lab[crop] == i
        if region.sum() <= 2:
            out[crop] |= region
            continue
        u_c, valid_c, thin_c = u[crop], valid[crop], thin[crop]
        near = binary_dilation(region, iterations=2) & valid_c
        seg = region
        line = thin_c[region].mean() > 0.5                          # mostly found by 1-px windows
        for _ in range(1 if line else rounds):
            level = float(np.mean(u_c[seg]))
            gain = (u_c ** 2 - (u_c - level) ** 2) / 2.0            # log-likelihood ratio
            cur = near & (gain > 0)                                 # the data alone, then the prior
            for _ in range(iterations):
                agree = convolve(cur.astype(float), kernel, mode="constant")
                new = near & (gain + beta * (2 * agree - 8) > 0)
                if np.array_equal(new, cur):
                    break
                cur = new
            if not cur.any() or np.array_equal(cur, seg):
                break
            seg = cur
        # a flagged pixel whose own evidence agrees stays (thin lines: few neighbours agree)
        out[crop] |= cur | (region & thin_c & (gain > 0))
    return out & valid


def _drop_weak_specks(mask, p, level):
    """Regions of one or two pixels stay only if one of their pixels' own p-value ``p`` passes
    ``level`` (Bonferroni over the map): a speck has no neighbours to vouch for it, and a
    reconstruction that leaks a strong anomaly into its neighbours leaves specks at the FDR level."""
    from scipy.ndimage import label

    lab, n = label(mask, structure=np.ones((3,) * mask.ndim))
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    best = np.full(n + 1, np.inf)
    np.minimum.at(best, lab.ravel(), np.nan_to_num(p, nan=1.0).ravel())
    weak = (sizes <= 2) & (best > level)
    weak[0] = False
    return mask & ~weak[lab]


def region_table(mask, *, score=None, shift=None, q=None, axes=None):
    """One row per connected flagged region: label, area (pixels), centroid (pixel and, with
    ``axes``, calibrated), mean score, mean shift and the smallest adjusted p-value.

    Examples
    --------
    >>> m = np.zeros((8, 8), bool); m[1:3, 1:4] = True; m[6, 6] = True
    >>> [(r["label"], r["area"]) for r in region_table(m)]
    [(1, 6), (2, 1)]
    """
    from scipy.ndimage import label

    lab, n = label(np.asarray(mask, bool))
    rows = []
    for i in range(1, n + 1):
        sel = lab == i
        idx = np.argwhere(sel)
        c = idx.mean(0)
        row = {"label": i, "area": int(sel.sum()), "centroid_px": tuple(float(v) for v in c)}
        if axes is not None:
            row["centroid"] = tuple(float(ax.offset + ax.scale * v) for ax, v in zip(axes, c))
        if score is not None:
            row["mean_score"] = float(np.nanmean(np.asarray(score)[sel]))
        if shift is not None:
            row["mean_shift_eV"] = float(np.nanmean(np.asarray(shift)[sel]))
        if q is not None:
            row["min_q"] = float(np.nanmin(np.asarray(q)[sel]))
        rows.append(row)
    return rows


def resolve_scales(spatial):
    """``spatial`` of ``anomaly_map`` (None, ``"auto"`` or box sizes) as a tuple of odd box sizes
    (``"auto"``: :data:`SCALES`), or None (per pixel); the sizes themselves are checked by
    :func:`pool_scores`.

    Examples
    --------
    >>> resolve_scales("auto") == SCALES, resolve_scales(None), resolve_scales([3, 5])
    (True, None, (3, 5))
    """
    if spatial is None or spatial is False:
        return None
    if isinstance(spatial, str) and spatial == "auto":
        return SCALES
    if not isinstance(spatial, (tuple, list)):
        raise ValueError(f"`spatial` must be None, 'auto' or a sequence of odd box sizes, got {spatial!r}.")
    return tuple(spatial)  # checked by pool_scores
