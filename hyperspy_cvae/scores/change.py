"""The "any change" score: what a spectrum's residual holds beyond the nuisances, and the shared
direction of change learned from the residuals (``score="auto"``).

In a window, each spectrum's Pearson residual ``r = (y − μ) / √μ`` against its reconstruction
``μ`` (Poisson-equivalent counts) is projected off the nuisances every map has, per pixel by
least squares: an intensity scale (``√μ``), a small energy drift (``μ' / √μ``) and a smooth
background change (Legendre polynomials up to ``background_degree``, over ``√μ``). What is left,
``r⊥``, is

* tested as a whole: ``χ² = Σ r⊥²`` with ``E − p`` degrees of freedom, as a normal z-value (the
  generic test, for a change of any shape);
* projected on the direction that anomalous pixels share: the residual vectors averaged over
  boxes of ``box`` × ``box`` pixels add up where neighbours share a change (a patch, a layer)
  and average the noise down, so the boxes with the largest χ² seed the direction, the mean
  ``r⊥`` of their pixels; each pixel's projection on it is a matched filter for that change.
  The direction is refined once: the boxes whose mean projection is largest in size pick the
  pixels again, each residual aligned with its box's sign (a weak change, spread over every
  channel, barely lifts a box's χ² but lifts its matched filter; changes of opposite signs, a
  ratio up here and down there, add up). Each side of the projection is a test of its own.
  A direction learned from fewer than ``MIN_REFINE_SEEDS`` pixels (a small map) is kept as
  seeded, and its projection tested two-sided.

and the nuisance coefficients themselves are compared with the map's: a "background change"
that replaces the edge (a missing edge, a composition change) lies far outside the bulk's range.
A shift of the edge is tested by the drift coefficient itself: its t-statistic, signed like
the shift (positive = to higher energy loss), against the bulk's spread (which holds the map's
own jitter); a large shift leaves a residual the χ² test sees as well. The statistics (χ²s
as normal z-values, Wilson–Hilferty; the projection's two sides as two tests) are standardised
against the map's own bulk (median and robust s.d.) and combined by a weighted Šidák rule
(p-value weighting as in Genovese, Roeder & Wasserman 2006): ``p = min_k 1 − (1 − p_k)^(1/w_k)``,
uniform without a change when the tests are independent and the weights sum to 1;
``≈ min_k p_k / w_k`` for small p. Each
test weighs ``TAIL_RATE`` plus the share of its ``box`` × ``box`` means, standardised against
their bulk, beyond the normal ``TAIL_RATE`` quantile, less what a test without a change reaches
(:func:`weigh_tests`): what the map itself says about which test carries a change shared by
neighbours (equal weights, plain Šidák, where none does; single-pixel changes are still tested,
with the weights of the rest of the map). The score is that p-value as a normal z-value:
~N(0, 1) tail without anomalies, high = anomalous. The learned direction is returned as a
spectrum, the answer to "how does it differ".
"""

from __future__ import annotations

import numpy as np

from .._arrays import compute_all, is_lazy
from .._stats import robust_sd
from .._validation import energy_window
from ._common import check_same_energy_axis, provenance, reconstruction_label, score_signal, window_spectrum

__all__ = ["change_analysis", "change_score_map", "combine_tests", "weigh_tests"]

#: The tests the score combines, in the order of its weights.
TESTS = ("chi2", "projection", "opposite_projection", "nuisance", "shift")
#: The nominal tail rate of the weights: each test weighs this plus the share of its box means beyond
#: the normal quantile of this rate, less this rate (a test that carries a change shared by
#: neighbours weighs more).
TAIL_RATE = 1e-3


def weigh_tests(evidence, nav, box, valid=None):
    """Weights (summing to 1) of K tests from their per-pixel evidence ``evidence`` (K, n) on the
    navigation grid ``nav``: ``TAIL_RATE`` plus the share of ``box``-pixel box means (standardised
    against their bulk) beyond the normal ``1 − TAIL_RATE`` quantile, less what a test without a
    change reaches (``TAIL_RATE`` and twice its scatter over correlated boxes).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ev = rng.normal(size=(3, 64 * 64))
    >>> ev[1].reshape(64, 64)[10:16, 20:26] += 2.0        # a patch the second test sees
    >>> w = weigh_tests(ev, (64, 64), 5)
    >>> bool(w[1] > 0.5), bool(abs(w.sum() - 1) < 1e-12)
    (True, True)
    >>> np.round(weigh_tests(rng.normal(size=(3, 64 * 64)), (64, 64), 5), 2)   # no change: equal
    array([0.33, 0.33, 0.33])
    """
    from scipy.ndimage import uniform_filter
    from scipy.stats import norm

    ev = np.asarray(evidence, np.float64)
    ok = np.ones(ev.shape[1], bool) if valid is None else np.asarray(valid, bool)
    # box means come in correlated groups of box^d pixels: the share of a test without a change
    # scatters by about sqrt(TAIL_RATE · box^d / n); twice that is taken as no excess
    floor = TAIL_RATE + 2.0 * np.sqrt(TAIL_RATE * box ** len(nav) / max(int(ok.sum()), 1))
    w = np.empty(len(ev))
    for k, e in enumerate(ev):
        boxed = uniform_filter(np.where(ok, np.nan_to_num(e), 0.0).reshape(nav), size=box, mode="reflect").ravel()
        z = _standardise(boxed, ok)
        w[k] = TAIL_RATE + max(float((z[ok] > norm.isf(TAIL_RATE)).mean()) - floor, 0.0)
    return w / w.sum()


def combine_tests(p, weights):
    """Weighted Šidák combination of the per-pixel p-values ``p`` (K, n) of K tests:
    ``min_k 1 − (1 − p_k)^(1/w_k)``, uniform under independent uniform p_k when the ``weights``
    sum to 1, ``≈ min_k p_k / w_k`` for small p.

    Examples
    --------
    >>> p = np.array([[0.5, 1e-6], [0.5, 0.9]])
    >>> pc = combine_tests(p, np.array([0.9, 0.1]))
    >>> bool(abs(pc[1] - 1e-6 / 0.9) < 1e-9), bool(0 < pc[0] < 1)
    (True, True)
    """
    p = np.asarray(p, np.float64)
    w = np.asarray(weights, np.float64)
    return (-np.expm1(np.log1p(-np.clip(p, 0.0, 1.0 - 1e-16)) / w[:, None])).min(0)


def _nuisance_residuals(y, mu, degree):
    """``(r⊥, dof, β, t)``: Pearson residuals of ``y`` (n, E) against ``mu`` with the nuisance
    columns (scale, drift, a smooth background of ``degree``) projected out per spectrum, their
    coefficients and the drift coefficient's t-statistic."""
    n, e = y.shape
    mu = np.maximum(mu, 1e-6)
    sq = np.sqrt(mu)
    r = (y - mu) / sq
    x = np.linspace(-1.0, 1.0, e)
    legendre = np.polynomial.legendre.legvander(x, degree)            # (E, degree + 1)
    cols = [sq, np.gradient(mu, axis=1) / sq] + [legendre[None, :, k] / sq for k in range(degree + 1)]
    xm = np.stack(cols, -1)                                            # (n, E, p)
    xtx = np.einsum("nep,neq->npq", xm, xm)
    xtr = np.einsum("nep,ne->np", xm, r)
    ridge = 1e-9 * np.trace(xtx, axis1=1, axis2=2)[:, None, None] * np.eye(xm.shape[-1])
    inv = np.linalg.inv(xtx + ridge)
    beta = np.einsum("npq,nq->np", inv, xtr)
    drift_t = beta[:, 1] / np.sqrt(np.maximum(inv[:, 1, 1], 1e-300))   # the drift's t-statistic
    return r - np.einsum("nep,np->ne", xm, beta), e - xm.shape[-1], beta, drift_t


def _residuals(y, mu, degree):
    """``(r⊥, β, t, has counts)`` of spectra ``y``, ``mu`` (..., E), flattened to (n, E): the
    residuals, coefficients and drift t-statistic of :func:`_nuisance_residuals`, ``r⊥`` set to 0
    where a spectrum has no counts."""
    e = y.shape[-1]
    y = np.asarray(y, np.float64).reshape(-1, e)
    valid = y.sum(1) > 0
    rp, _, beta, drift_t = _nuisance_residuals(y, np.asarray(mu, np.float64).reshape(-1, e), degree)
    rp[~valid] = 0.0
    return rp, beta, drift_t, valid


def _residual_stats(y, mu, degree, box, nav):
    """``(r⊥, stats)`` of spectra ``y``, ``mu`` on the navigation grid ``nav``: the residuals of
    :func:`_residuals` and per pixel ``[has counts, χ², drift t, background coefficients
    (degree + 1), χ² of the box mean]`` (n, degree + 5). The box means run over ``box`` pixels a
    side, zero outside ``nav``."""
    from scipy.ndimage import uniform_filter

    rp, beta, drift_t, valid = _residuals(y, mu, degree)
    e = rp.shape[-1]
    size = (box,) * len(nav) + (1,)
    boxed = uniform_filter(rp.reshape(tuple(nav) + (e,)), size=size, mode="constant").reshape(-1, e)
    count = uniform_filter(valid.reshape(nav).astype(float), size=box, mode="constant").ravel()
    boxed_chi = (boxed**2).sum(1) / np.maximum(count, 1e-12) * np.prod(size)
    stats = np.column_stack([valid, (rp**2).sum(1), drift_t, beta[:, 2:], boxed_chi])
    return rp, stats


#: The direction is refined (and each side of its projection weighed apart) when it is learned
#: from at least this many pixels (a 5 × 5 box's worth; with the default ``seed_fraction``, maps of
#: 2500 pixels or more). From fewer, the seeds are one spot's pixels: on the measured maps of
#: ``benchmarks/results/real`` (16² to 40 × 50 pixels) refining them cost up to 0.28 ROC-AUC.
MIN_REFINE_SEEDS = 25
#: A lazy window pair up to this size is computed once and kept in memory for the passes (three,
#: or five with a refined direction); a larger one is read (and its reconstruction computed) once
#: per pass.
_PERSIST_BYTES = 64 << 20


def _aligned_blocks(y, mu):
    """Two lazy (or eager) windows as dask arrays with the same navigation chunks and the energy
    axis in one chunk, kept in memory when they are small (:data:`_PERSIST_BYTES`)."""
    import dask
    import dask.array as da

    y = da.asarray(y)
    y = y.rechunk({y.ndim - 1: -1})
    mu = da.asarray(mu).rechunk(y.chunks)
    if y.nbytes + mu.nbytes <= _PERSIST_BYTES:
        y, mu = dask.persist(y, mu)
    return y, mu


def _lazy_stats(y, mu, degree, box):
    """The per-pixel statistics of :func:`_residual_stats` block by block, each block with a halo
    of ``box // 2`` pixels (none beyond the map's edge, as in the eager case), as a dask array
    ``nav + (degree + 5,)``."""
    import dask.array as da
    from dask.array.overlap import overlap, trim_internal

    nd = y.ndim - 1
    depth = {i: box // 2 for i in range(nd)}
    depth[nd] = 0
    yo = overlap(y, depth=depth, boundary="none")
    mo = overlap(mu, depth=depth, boundary="none")
    k = degree + 5

    def kernel(a, b):
        shape = a.shape[:-1]
        stats = _residual_stats(a, b, degree, box, shape)[1]
        return stats.reshape(shape + (k,))

    out = da.map_blocks(kernel, yo, mo, dtype=np.float64, chunks=yo.chunks[:-1] + ((k,),))
    return trim_internal(out, depth, boundary="none")


def _lazy_direction_sum(y, mu, signs, degree):
    """``Σ signs · r⊥`` over the pixels: the residuals weighted by ``signs`` (a navigation map, 0
    where a pixel is not chosen), block by block."""
    import dask.array as da

    nd = y.ndim - 1
    e = y.shape[-1]
    signs = da.from_array(np.asarray(signs, np.float64), chunks=y.chunks[:-1])

    def kernel(a, b, c):
        c = np.asarray(c, np.float64).ravel()
        total = c[c != 0] @ _residuals(a, b, degree)[0][c != 0] if c.any() else np.zeros(e)
        return total.reshape((1,) * nd + (e,))

    parts = da.map_blocks(kernel, y, mu, signs[..., None], dtype=np.float64,
                          chunks=tuple((1,) * len(c) for c in y.chunks[:-1]) + ((e,),))
    return np.asarray(compute_all(parts.sum(axis=tuple(range(nd))))[0])


def _lazy_projection(y, mu, unit, degree):
    """Each pixel's residual projected on ``unit``, block by block (a lazy navigation map)."""
    import dask.array as da

    def kernel(a, b):
        return (_residuals(a, b, degree)[0] @ unit).reshape(a.shape[:-1])

    return da.map_blocks(kernel, y, mu, dtype=np.float64, drop_axis=y.ndim - 1)


def _standardise(v, valid):
    """``v`` against its bulk: (v − median) / robust s.d. over the ``valid`` entries."""
    med = float(np.median(v[valid]))
    sd = float(robust_sd(v[valid]))
    return (v - med) / (sd if sd > 0 else 1.0)


def _chi2_to_z(chi2, dof):
    """A χ² value with ``dof`` degrees of freedom as a normal z-value (Wilson–Hilferty)."""
    c = 2.0 / (9.0 * dof)
    return (np.cbrt(np.maximum(chi2, 0.0) / dof) - (1.0 - c)) / np.sqrt(c)


def change_analysis(original, reconstruction, window=None, *, background_degree=2, box=5,
                    seed_fraction=0.01, seed=None):
    """The "any change" score of a spectrum image against its reconstruction, and its parts.

    Parameters
    ----------
    original, reconstruction : hyperspy Signal1D
        Counts (Poisson-equivalent) and their reconstruction, same navigation shape and energy
        axis; both are read into memory in the window.
    window : tuple of float
        Energy window in eV.
    background_degree : int
        Degree of the smooth background change treated as a nuisance.
    box : int
        Side in pixels of the boxes whose mean residual seeds the learned direction (odd; 1 on a
        line scan, where boxes are segments of that many pixels).
    seed_fraction : float
        Share of the pixels, those of the boxes with the largest χ², whose mean residual is the
        learned direction.
    seed : array of bool, optional
        The pixels whose mean residual is the learned direction (for example the flagged
        ones, to describe what they share), instead of the boxes with the largest χ².

    Returns
    -------
    dict
        ``"score"`` (the map, high = anomalous, a z-value), ``"chi2"`` (the generic test,
        standardised), ``"projection"`` (the signed matched-filter value on the learned direction,
        standardised), ``"nuisance"`` (the size of the nuisance coefficients against the map's,
        standardised), ``"shift"`` (the drift coefficient's t-statistic, signed like the shift,
        standardised), ``"direction"`` (the learned direction as a spectrum on the window's
        axis, in Pearson-residual units: positive = more counts than the reconstruction) and
        ``"dof"``.

    Examples
    --------
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> s = bifeo3_si((48, 48), random_state=0)
    >>> bad, truth = s.inject_anomaly("new_peak", n_clusters=2, cluster_size=5, random_state=1,
    ...                               return_mask=True)
    >>> bad.decomposition(print_info=False)
    >>> res = change_analysis(bad, bad.get_decomposition_model(3), (693., 741.))
    >>> z = res["score"].data
    >>> bool(z[truth.data].mean() > 3 * np.abs(np.median(z[~truth.data])) + 2)
    True
    >>> e = res["direction"].axes_manager[0].axis
    >>> 712 < float(e[np.argmax(res["direction"].data)]) < 717      # the new peak, at 714.5 eV
    True
    """
    from scipy.ndimage import uniform_filter
    from scipy.stats import norm as normal

    check_same_energy_axis(original, reconstruction)
    window = energy_window(original, window)
    if int(background_degree) < 0 or int(box) < 1 or int(box) % 2 == 0:
        raise ValueError(f"`background_degree` must be >= 0 and `box` a positive odd number; got "
                         f"{background_degree!r}, {box!r}.")
    if not 0 < float(seed_fraction) < 0.5:
        raise ValueError(f"`seed_fraction` must be in (0, 0.5), got {seed_fraction!r}.")
    sl = window.slice
    degree = int(background_degree)
    y, mu = original.data[..., sl], reconstruction.data[..., sl]
    nav = tuple(y.shape[:-1])
    e = y.shape[-1]
    if e < 2 * (degree + 3) + 2:
        raise ValueError(f"The window has {e} channels; score='auto' needs at least "
                         f"{2 * (degree + 3) + 2} (widen it).")
    lazy = is_lazy(y) or is_lazy(mu)
    if lazy:  # passes over the blocks: statistics (with a halo for the boxes), then the direction
        # and the projection on it (twice where the direction is refined); a small window is
        # computed once and kept: a lazy reconstruction is not recomputed per pass
        y, mu = _aligned_blocks(y, mu)
        stats = compute_all(_lazy_stats(y, mu, degree, int(box)))[0].reshape(-1, 5 + degree)
    else:
        rp, stats = _residual_stats(y, mu, degree, int(box), nav)
    valid, chi2, drift_t, beta, boxed_chi = (stats[:, 0] > 0, stats[:, 1], stats[:, 2], stats[:, 3:-1],
                                             stats[:, -1])
    if valid.sum() < 9:
        raise ValueError("Fewer than 9 spectra with counts in the window: nothing to compare.")
    dof = e - (degree + 3)
    chi = _standardise(_chi2_to_z(chi2, dof), valid)
    # the nuisances' own size against the map's: a "background" that replaces the edge (a
    # missing edge, a composition change) is far outside the bulk's range of background changes
    zb = np.stack([_standardise(beta[:, k], valid) for k in range(beta.shape[1])], 1)
    nuisance = _standardise(_chi2_to_z((zb**2).sum(1), zb.shape[1]), valid)

    n_seed = max(9, int(seed_fraction * valid.sum()))
    if seed is not None:
        seed = np.asarray(getattr(seed, "data", seed), bool)
        if seed.shape != nav:
            raise ValueError(f"`seed` has shape {seed.shape}, the navigation grid {nav} (array order).")
        top = np.flatnonzero(seed.ravel() & valid)
        if top.size == 0:
            raise ValueError("`seed` selects no pixel with counts in the window.")
    else:
        top = np.argsort(-np.where(valid, boxed_chi, -np.inf))[:n_seed]
    signs = np.zeros(valid.size)
    signs[top] = 1.0

    def project(signs):
        """The unit mean of the sign-aligned residuals of the pixels with a sign, and each
        pixel's projection on it, standardised."""
        if lazy:
            direction = _lazy_direction_sum(y, mu, signs.reshape(nav), degree)
        else:
            direction = signs[signs != 0] @ rp[signs != 0]
        norm = float(np.linalg.norm(direction))
        unit = direction / (norm if norm > 0 else 1.0)
        proj = compute_all(_lazy_projection(y, mu, unit, degree))[0].ravel() if lazy else rp @ unit
        return unit, _standardise(proj, valid)

    unit, proj = project(signs)
    refined = seed is None and top.size >= MIN_REFINE_SEEDS
    if refined:
        # once refined: the boxes whose mean projection is largest in size pick the pixels (each
        # aligned with its box's sign); a box mean of the matched filter finds a weak shared change
        # that the boxes' χ², spread over every channel, barely sees
        boxed = uniform_filter(np.where(valid, proj, 0.0).reshape(nav), size=int(box),
                               mode="constant").ravel()
        top = np.argsort(-np.where(valid, np.abs(boxed), -np.inf))[:n_seed]
        signs = np.zeros(valid.size)
        signs[top] = np.sign(boxed[top])
        unit, proj = project(signs)
    # a shift: y ≈ μ + b μ' is μ moved by −b, so −t(b) has the shift's sign
    moved = _standardise(-drift_t, valid)
    # five tests (the projection's two sides apart), each standardised against the bulk, combined
    # (weighted Šidák) as a normal z-value (so that a threshold or an FDR reads it as N(0, 1)
    # without anomalies); an unrefined direction's projection is tested two-sided: each side
    # weighs half of what its size's box tails give
    if refined:
        weights = weigh_tests([chi, proj, -proj, nuisance, np.abs(moved)], nav, box, valid)
    else:
        w = weigh_tests([chi, np.abs(proj), nuisance, np.abs(moved)], nav, box, valid)
        weights = np.array([w[0], w[1] / 2, w[1] / 2, w[2], w[3]])
    p = combine_tests([normal.sf(chi), normal.sf(proj), normal.sf(-proj), normal.sf(nuisance),
                       2.0 * normal.sf(np.abs(moved))], weights)
    score = normal.isf(np.clip(p, 1e-300, 1.0 - 1e-16))
    score[~valid] = np.nan
    chi[~valid], proj[~valid], nuisance[~valid], moved[~valid] = np.nan, np.nan, np.nan, np.nan

    method = reconstruction_label(reconstruction)
    extra = dict(provenance(reconstruction), nan_means="no counts in the window", null="N(0, 1)",
                 nuisances=f"scale, energy drift, background of degree {int(background_degree)}",
                 tests="residual χ², projection on the learned change, nuisance size, drift t-statistic "
                       "(each standardised against the bulk; weighted Šidák)",
                 weights={k: float(v) for k, v in zip(TESTS, weights)},
                 box=int(box), dof=int(dof),
                 direction_from=(f"mean residual of {top.size} given pixels" if seed is not None else
                                 f"mean sign-aligned residual of the {top.size} pixels of the {int(box)}-pixel "
                                 "boxes with the largest mean projection on the mean residual of those "
                                 "with the largest χ²" if refined else
                                 f"mean residual of the {top.size} pixels of the {int(box)}-pixel boxes "
                                 "with the largest χ²"))
    title = f"Any-change score {method} {window[0]:g}-{window[1]:g} eV"
    out = {"score": score_signal(original, score.reshape(nav), kind="auto", anomalous="high",
                                 window=window, title=title, extra=extra),
           "chi2": score_signal(original, chi.reshape(nav), kind="auto_chi2", anomalous="high",
                                window=window, title=f"Residual χ² beyond nuisances {method}", extra=extra),
           "nuisance": score_signal(original, nuisance.reshape(nav), kind="auto_nuisance", anomalous="high",
                                    window=window, title=f"Nuisance coefficients against the map's {method}",
                                    extra=extra),
           "projection": score_signal(original, proj.reshape(nav), kind="auto_projection",
                                      anomalous="both", window=window,
                                      title=f"Projection on the learned change {method}", extra=extra),
           "shift": score_signal(original, moved.reshape(nav), kind="auto_shift", anomalous="both",
                                 window=window, title=f"Drift t-statistic against the map's {method}",
                                 extra=extra),
           "dof": int(dof)}
    d = window_spectrum(original, unit, window, f"Learned change ({method}, Pearson residual)")
    d.metadata.set_item("CVAE.score", dict(extra, kind="auto_direction"))
    out["direction"] = d
    return out


def change_score_map(original, reconstruction, window=None, **kwargs):
    """The map of :func:`change_analysis` (``score="auto"`` of ``anomaly_map``)."""
    return change_analysis(original, reconstruction, window, **kwargs)["score"]
