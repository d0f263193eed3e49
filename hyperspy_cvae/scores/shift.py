"""The energy-shift score: maximum-likelihood shift of each spectrum against its reconstruction,
its uncertainty, and the likelihood-ratio evidence for it."""

from __future__ import annotations

import numpy as np

from .._arrays import is_lazy
from .._validation import energy_window
from ._common import check_same_energy_axis, provenance, reconstruction_label, score_signal

__all__ = ["estimate_shift", "shift_analysis", "shift_map", "shift_score_map", "likelihood_ratio",
           "SHIFT_FLAGS"]


def _profile_loglik(y, logr, sumr):
    """Poisson log-likelihood with the amplitude profiled out (constants dropped)."""
    ytot = y.sum(-1)
    return (y * logr).sum(-1) - ytot * np.log(np.maximum(sumr, 1e-300))


#: Why :func:`estimate_shift` gives no shift for a spectrum (its ``flag``), by code.
SHIFT_FLAGS = {0: "ok", 1: "no counts in the window", 2: "flat reconstruction: no edge to locate",
               3: "maximum at the search limit: shift beyond max_shift",
               4: "no maximum of the likelihood (no curvature)"}


def estimate_shift(y, r_ext, margin, *, fine_steps=10, return_flag=False, limit=None):
    """Maximum-likelihood energy shift of spectra against shifted reconstructions.

    Model: ``y_k ~ Poisson(a · r(k − δ))`` in the window, with the amplitude
    ``a`` profiled out and ``r`` linearly interpolated between channels. The
    shift is searched on whole channels over ``±margin`` (``margin`` extra
    channels of the reconstruction on each side of the window), refined on a
    grid of ``1 / fine_steps`` channel around the best one, then by a parabola
    through the log-likelihood, whose curvature gives the uncertainty.

    Parameters
    ----------
    y : numpy.ndarray (..., C)
        Counts in the window.
    r_ext : numpy.ndarray (..., C + 2·margin)
        Reconstruction over the window extended by ``margin`` channels on both
        sides (edge values repeated where the axis ends).
    margin : int
        Largest shift searched, in channels.
    return_flag : bool
        Also return the reason code of each spectrum (:data:`SHIFT_FLAGS`).
    limit : float, optional
        Largest accepted ``|shift|`` in channels (default ``margin``); a larger
        estimate is flagged (code 3), not returned.

    Returns
    -------
    shift, sigma, glrt : numpy.ndarray (...)
        Shift in channels (positive = towards higher energy), its 1σ
        uncertainty in channels (from the curvature of the log-likelihood) and
        the generalised likelihood-ratio statistic ``2 (ℓ(δ̂) − ℓ(0)) ≥ 0``
        (≈ χ²₁ for an unshifted spectrum). Where a spectrum gives no shift
        (flag ≠ 0) shift and sigma are NaN, never a value outside
        ``±margin``; the statistic is NaN too where the spectrum carries no
        information at all (flags 1 and 2) and kept otherwise (a shift beyond
        the search range is still evidence of a shift).
    flag : numpy.ndarray of uint8 (...), with ``return_flag``

    Examples
    --------
    >>> e = np.arange(140.0)
    >>> r = 10 + 200 * np.exp(-0.5 * ((e - 70) / 3) ** 2)
    >>> y = 10 + 200 * np.exp(-0.5 * ((e[20:120] - 72.5) / 3) ** 2)
    >>> d, s, g = estimate_shift(y[None], r[None], 20)
    >>> round(float(d[0]), 2)
    2.5
    >>> d, s, g, flag = estimate_shift(np.zeros((1, 100)), r[None], 20, return_flag=True)
    >>> d, flag, SHIFT_FLAGS[int(flag[0])]
    (array([nan]), array([1], dtype=uint8), 'no counts in the window')
    """
    y = np.clip(np.asarray(y, np.float64), 0, None)
    r = np.asarray(r_ext, np.float64)
    lead = y.shape[:-1]
    C = y.shape[-1]
    y = y.reshape(-1, C)
    r = r.reshape(-1, r.shape[-1])
    m = int(margin)
    if r.shape[-1] != C + 2 * m:
        raise ValueError(f"r_ext must have C + 2·margin = {C + 2 * m} channels, got {r.shape[-1]}.")
    scale = r.mean(-1, keepdims=True)
    r = np.maximum(r, 1e-9 * np.maximum(scale, 1e-300))
    logr = np.log(r)
    n = len(y)
    ytot = y.sum(-1)
    # Whole-channel shifts δ = s: window channel k reads r_ext[m + k − s].
    from numpy.lib.stride_tricks import sliding_window_view

    win_log = sliding_window_view(logr, C, axis=-1)          # (n, 2m+1, C), offset o = m − s
    csum = np.concatenate([np.zeros((n, 1)), np.cumsum(r, -1)], -1)
    sums = csum[:, C:] - csum[:, :-C]                        # (n, 2m+1)
    ll = np.einsum("nc,noc->no", y, win_log) - ytot[:, None] * np.log(np.maximum(sums, 1e-300))
    ll = ll[:, ::-1]                                         # index j ↔ s = j − m
    j = np.argmax(ll, -1)
    s0 = j - m
    ll0 = ll[:, m]
    # Fine grid: δ = s0 + u, u ∈ [−1, 1]; r(k − δ) linearly interpolated between
    # the three whole-channel neighbours of the best coarse shift.
    us = np.linspace(-1.0, 1.0, 2 * fine_steps + 1)
    base = np.clip(m + np.arange(C)[None, :] - s0[:, None], 1, r.shape[-1] - 2)
    rows = np.arange(n)[:, None]
    r_lo, r_mid, r_hi = r[rows, base - 1], r[rows, base], r[rows, base + 1]
    fine = np.empty((n, len(us)))
    for i, u in enumerate(us):
        # position base − u: between base and base + 1 for u < 0, base − 1 and base for u > 0
        rv = (1 - abs(u)) * r_mid + (abs(u) * (r_hi if u < 0 else r_lo) if u else 0.0)
        fine[:, i] = _profile_loglik(y, np.log(rv), rv.sum(-1))
    b = np.clip(np.argmax(fine, -1), 1, len(us) - 2)
    h = us[1] - us[0]
    fm, f0, fp = (fine[np.arange(n), b + d] for d in (-1, 0, 1))
    curv = (fp - 2 * f0 + fm) / h ** 2                       # d²ℓ/dδ² (negative at a maximum)
    ok = curv < 0
    safe = np.where(ok, curv, -1.0)
    step = np.where(ok, -(fp - fm) / (2 * h) / safe, 0.0)
    step = np.clip(step, -h, h)
    shift = s0 + us[b] + step
    lmax = np.maximum(f0 + np.where(ok, -0.5 * safe * step ** 2, 0.0), fine.max(-1))
    sigma = np.where(ok, 1.0 / np.sqrt(-safe), np.inf)
    glrt = np.maximum(2.0 * (np.maximum(lmax, ll.max(-1)) - ll0), 0.0)
    window = r[:, m:m + C]
    flag = np.zeros(n, np.uint8)
    flag[~ok] = 4
    flag[(np.abs(shift) >= m) | (np.abs(shift) > (m if limit is None else limit))] = 3
    flag[np.ptp(window, -1) <= 1e-9 * np.abs(window).mean(-1)] = 2
    flag[ytot <= 0] = 1
    if flag.any():
        shift = np.where(flag > 0, np.nan, shift)
        sigma = np.where(flag > 0, np.nan, sigma)
        glrt = np.where((flag == 1) | (flag == 2), np.nan, glrt)
    out = shift.reshape(lead), sigma.reshape(lead), glrt.reshape(lead)
    return out + (flag.reshape(lead),) if return_flag else out


def _margin(axis, max_shift):
    """``max_shift`` (eV) in whole channels of ``axis``."""
    m = int(np.ceil(float(max_shift) / axis.scale - 1e-4))  # 10 / 0.1 is 100.000…01 in floats
    if m < 1:
        raise ValueError(f"`max_shift` must be at least one channel ({axis.scale:g} {axis.units}).")
    return m


def _extended(data, sl, m):
    """Channels ``sl`` of ``data`` extended by ``m`` on each side (edge-repeated where the axis ends)."""
    n = data.shape[-1]
    lo, hi = sl.start - m, sl.stop + m
    idx = np.clip(np.arange(lo, hi), 0, n - 1)
    if lo >= 0 and hi <= n:
        return data[..., lo:hi]
    return data[..., idx]


def _shift_kernel(a, b, m, limit):
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("The signal or its reconstruction contains NaN or inf values in the scoring "
                         "window; replace them (e.g. `s.map(np.nan_to_num)` on a copy) or crop them.")
    shift, sigma, glrt, flag = estimate_shift(a, b, m, return_flag=True, limit=limit)
    return np.stack([shift, sigma, glrt, flag.astype(np.float64)], -1)


def _shift_arrays(original, reconstruction, window, max_shift):
    axis = check_same_energy_axis(original, reconstruction)
    sl = energy_window(original, window).slice
    m = _margin(axis, max_shift)
    limit = float(max_shift) / axis.scale  # the stated bound, in channels
    a = original.data[..., sl]
    b = _extended(reconstruction.data, sl, m)
    if is_lazy(a) or is_lazy(b):
        import dask.array as da

        a = da.asarray(a)
        a = a.rechunk({a.ndim - 1: -1})
        b = da.asarray(b).rechunk(a.chunks[:-1] + ((b.shape[-1],),))
        out = da.map_blocks(_shift_kernel, a, b, m, limit, dtype=np.float64,
                            chunks=a.chunks[:-1] + ((4,),))
    else:
        out = _shift_kernel(a, b, m, limit)
    return axis, out


def shift_analysis(original, reconstruction, window=None, max_shift=10.0):
    """Shift map, its uncertainty and the shift score from one likelihood scan.

    See :func:`estimate_shift` (Poisson likelihood of the counts against the
    shifted reconstruction, amplitude profiled out, sub-channel).

    Parameters
    ----------
    original, reconstruction : hyperspy Signal1D
        Counts and their reconstruction, same navigation shape and energy axis
        (where the reconstruction does not extend ``max_shift`` beyond the
        window, its edge values are repeated).
    window : tuple of float
        Energy window in eV.
    max_shift : float
        Largest shift searched, in eV.

    Returns
    -------
    dict of hyperspy Signal2D
        ``"shift"``: shift in eV (positive = edge moved to higher energy loss);
        ``"sigma"``: its 1σ uncertainty in eV; ``"score"``: the anomaly score
        ``z = sqrt(2 (ℓ(δ̂) − ℓ(0)))``, the evidence that the spectrum is the
        reconstruction shifted rather than the reconstruction itself (≈ |N(0, 1)|
        for unshifted spectra at any dose; high = anomalous); ``"flag"``: why a
        pixel has no shift (uint8 codes of :data:`SHIFT_FLAGS`, 0 = ok). Shift
        and sigma are NaN where the flag is not 0, never outside ``±max_shift``;
        the score is NaN where the spectrum carries no information (no counts,
        or a flat reconstruction: flags 1 and 2). Calibrated like the
        navigation axes; lazy if an input is lazy.

    Examples
    --------
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> s, truth = bifeo3_si((24, 24), random_state=0, return_expected=True)
    >>> bad, m = s.inject_shift(2.0, n_clusters=1, random_state=0, return_mask=True)
    >>> res = shift_analysis(bad, truth, (690., 730.))
    >>> abs(float(res["shift"].data[m.data].mean()) - 2.0) < 0.1
    True
    >>> bool(res["score"].data[m.data].min() > res["score"].data[~m.data].max())
    True
    """
    window = energy_window(original, window)
    axis, out = _shift_arrays(original, reconstruction, window, max_shift)
    method = reconstruction_label(reconstruction)
    units = axis.units or "eV"
    extra = dict(provenance(reconstruction), method=method, units=units, max_shift=float(max_shift))
    w = f"{window[0]:g}-{window[1]:g} {units}"
    shift = score_signal(original, out[..., 0] * axis.scale, kind="shift_estimate",
                         anomalous="both", window=window, extra=extra,
                         title=f"Energy shift vs {method} {w}")
    sigma = score_signal(original, out[..., 1] * axis.scale, kind="shift_uncertainty",
                         anomalous="high", window=window, extra=extra,
                         title=f"Shift uncertainty (1 sigma) vs {method} {w}")
    for sig in (shift, sigma):
        sig.metadata.set_item("Signal.quantity", f"Energy shift ({units})")
    codes = {str(k): v for k, v in SHIFT_FLAGS.items()}
    score = score_signal(original, out[..., 2] ** 0.5, kind="shift", anomalous="high",
                         window=window, title=f"Shift score {method} {w}",
                         extra=dict(extra, statistic="sqrt(2 (l(shift_ML) - l(0)))",
                                    nan_means="no information in the spectrum (see the flag map)"))
    flag = score_signal(original, out[..., 3].astype(np.uint8), kind="shift_flag", anomalous="high",
                        window=window, title=f"Shift flags vs {method} {w}",
                        extra=dict(extra, codes=codes))
    return {"shift": shift, "sigma": sigma, "score": score, "flag": flag}


def shift_map(original, reconstruction, window=None, max_shift=10.0):
    """``(shift, sigma)`` maps in eV; see :func:`shift_analysis`."""
    res = shift_analysis(original, reconstruction, window, max_shift)
    return res["shift"], res["sigma"]


def shift_score_map(original, reconstruction, window=None, max_shift=10.0):
    """Shift-aware anomaly score map (high = anomalous); see :func:`shift_analysis`."""
    return shift_analysis(original, reconstruction, window, max_shift)["score"]


def likelihood_ratio(y, mu0, mu1):
    """Poisson log-likelihood ratio ``Σ y log(μ1/μ0) − (μ1 − μ0)`` along the last axis.

    The Neyman–Pearson optimal statistic for "counts ``y`` come from ``μ1``
    rather than ``μ0``": with the true clean expectation ``μ0`` and the true
    shifted one ``μ1`` it is the oracle no detector can beat.

    Examples
    --------
    >>> float(likelihood_ratio(np.array([2.0]), np.array([1.0]), np.array([2.0])))  # doctest: +ELLIPSIS
    0.386...
    """
    y = np.clip(np.asarray(y, np.float64), 0, None)
    mu0 = np.maximum(np.asarray(mu0, np.float64), 1e-12)
    mu1 = np.maximum(np.asarray(mu1, np.float64), 1e-12)
    return (y * np.log(mu1 / mu0) - (mu1 - mu0)).sum(-1)


