"""The energy-shift score: maximum-likelihood shift of each spectrum against its reconstruction,
its uncertainty, and the likelihood-ratio evidence for it."""

from __future__ import annotations

import numpy as np

from .._arrays import is_lazy
from .._threads import TORCH_LOCK
from .._validation import energy_window
from ._common import check_same_energy_axis, provenance, reconstruction_label, score_signal

__all__ = ["estimate_shift", "shift_analysis", "shift_map", "shift_score_map", "likelihood_ratio",
           "directional_shift_score", "SHIFT_DIRECTIONS", "SHIFT_FLAGS", "SHIFT_NUISANCES"]

#: ``direction=`` of :func:`directional_shift_score`: the sign of the shifts sought (``None``: both).
SHIFT_DIRECTIONS = {"both": None, "higher": 1.0, "lower": -1.0}


#: Why :func:`estimate_shift` gives no shift for a spectrum (its ``flag``), by code.
SHIFT_FLAGS = {0: "ok", 1: "no counts in the window", 2: "flat reconstruction: no edge to locate",
               3: "maximum at the search limit: shift beyond max_shift",
               4: "no maximum of the likelihood (no curvature)"}


#: Spectra per chunk of :func:`_likelihood_scan` (bounds its memory: ~10 arrays of
#: ``_SCAN_ROWS × (C + 2·margin)`` float64).
_SCAN_ROWS = 1024


#: ``nuisance=`` of :func:`shift_analysis`: what else the spectrum may differ by, besides a shift.
SHIFT_NUISANCES = {"scale": "the intensity (one amplitude per spectrum)",
                   "tilt": "the intensity and a smooth slope across the window (exp(a + b t), t in [-1, 1])"}


#: Largest slope ``|b|`` of ``nuisance="tilt"``: the background may rise or fall by up to a factor
#: ``e^{2·0.5} ≈ 2.7`` more across the window than the reconstruction's.
TILT_LIMIT = 0.5


def _tilt_axis(C):
    """The tilt's coordinate ``t_k`` on the ``C`` channels of the window (−1 … 1) and its step."""
    return np.linspace(-1.0, 1.0, C), (2.0 / (C - 1) if C > 1 else 0.0)


def _tilt_profile(y, rw, b=None, iterations=4):
    """``(b̂, max_b [b Σ y t − ytot log Σ rw e^{b t}])`` per spectrum: the slope of
    ``y ~ Poisson(a · rw · e^{b t})`` with ``a`` profiled out, by Newton's method on the concave
    profile log-likelihood from ``b`` (default 0); torch float64, (n,) each."""
    import torch

    t = torch.from_numpy(_tilt_axis(y.shape[-1])[0])
    ytot, yt = y.sum(-1), (y * t).sum(-1)
    b = torch.zeros_like(ytot) if b is None else b.clone()
    for _ in range(iterations):
        e = rw * torch.exp(b[:, None] * t)
        s0, s1, s2 = e.sum(-1).clamp_min(1e-300), (e * t).sum(-1), (e * t * t).sum(-1)
        mean = s1 / s0
        hess = ytot * (s2 / s0 - mean * mean)                 # −d²ℓ/db² ≥ 0
        step = torch.where(hess > 0, (yt - ytot * mean) / hess.clamp_min(1e-300), torch.zeros_like(b))
        b = (b + step.clamp(-TILT_LIMIT, TILT_LIMIT)).clamp(-TILT_LIMIT, TILT_LIMIT)
    value = b * yt - ytot * (rw * torch.exp(b[:, None] * t)).sum(-1).clamp_min(1e-300).log()
    return b, value


def _tilted_window_sums(r, C, n_offsets, b):
    """``Σ_k r_{o+k} e^{b t_k}`` for every offset ``o < n_offsets`` at one slope ``b`` (a float), from
    one cumulative sum: ``e^{−b} q^{−o} Σ_{i=o}^{o+C−1} r_i q^i`` with ``q = e^{b·dt}``."""
    import torch

    n, L = r.shape
    lq = b * _tilt_axis(C)[1]
    i = torch.arange(L, dtype=torch.float64)
    o = torch.arange(n_offsets, dtype=torch.float64)
    csum = torch.cat([torch.zeros(n, 1, dtype=torch.float64), (r * torch.exp(lq * i)).cumsum(-1)], -1)
    return (csum[:, C:C + n_offsets] - csum[:, :n_offsets]) * torch.exp(-lq * o - b)


#: Slopes at which ``nuisance="tilt"`` evaluates every whole-channel shift exactly (then a parabola
#: through the best three).
_TILT_GRID = np.linspace(-TILT_LIMIT, TILT_LIMIT, 21)


def _likelihood_scan(y, r, m, us, tilt=False):
    """The profile log-likelihood of :func:`estimate_shift` for one chunk of spectra (torch, CPU).

    Whole-channel shifts ``s ∈ [−m, m]`` by FFT cross-correlation of the counts with ``log r``
    (``ℓ(s) = Σ_k y_k log r_{m+k−s} − ytot · log Σ_k r_{m+k−s}``), then the fine grid ``s0 + u``
    (``u`` in ``us``) around the best one, with ``r`` linearly interpolated between its whole-channel
    neighbours: ``r_u = r_mid · (1 + |u| d)``, ``d = r_nb / r_mid − 1`` (``r_nb`` the neighbour
    towards the shift). ``ℓ(u) = Σ y log r_mid + Σ y log1p(|u| d) − ytot · log((1 − |u|) Σ r_mid +
    |u| Σ r_nb)``: a float64 term shared by the grid, window sums computed once, and a small
    ``log1p`` term whose products are formed in float32 and summed in float64 (a relative rounding
    of ~10⁻⁷ per channel, in random directions: ~10⁻³ of a unit of ℓ at 10⁷ counts per window).

    With ``tilt`` the expectation is ``a · r · e^{b t_k}`` (:func:`_tilt_axis`), ``b`` profiled out
    too (``|b| ≤ TILT_LIMIT``): on whole channels at the slopes of ``_TILT_GRID`` (exact, each
    from one cumulative sum: :func:`_tilted_window_sums`) and a parabola through the best three,
    which picks ``s0`` and the slopes to start from; on the fine grid and at ``s = 0`` exactly, by
    Newton's method (:func:`_tilt_profile`).

    Returns numpy arrays ``s0`` (n,), ``ℓ(0)``, ``max_s ℓ(s)``, the fine grid (n, len(us)), the
    total counts and whether the reconstruction is flat in the window.
    """
    import torch
    from scipy.fft import next_fast_len

    f64 = torch.float64
    y = torch.from_numpy(np.asarray(y, np.float64)).clamp_min(0)
    r = torch.from_numpy(np.asarray(r, np.float64))
    n, C = y.shape
    L = r.shape[-1]
    r = torch.maximum(r, 1e-9 * r.mean(-1, keepdim=True).clamp_min(1e-300))
    ytot = y.sum(-1)
    nfft = next_fast_len(L, real=True)  # ≥ L: the correlation of offsets 0 … 2m does not wrap
    corr = torch.fft.irfft(torch.fft.rfft(r.log(), nfft) * torch.fft.rfft(y, nfft).conj(), nfft)
    if not tilt:
        csum = torch.cat([torch.zeros(n, 1, dtype=f64), r.cumsum(-1)], -1)
        sums = csum[:, C:] - csum[:, :-C]                     # (n, 2m+1), offset o = m − s
        ll = corr[:, :2 * m + 1] - ytot[:, None] * sums.clamp_min(1e-300).log()
    else:  # exact at the slopes of _TILT_GRID, the profile over b from a parabola through the best three
        y_t = (y * torch.from_numpy(_tilt_axis(C)[0])).sum(-1)[:, None]
        grid = torch.stack([b * y_t - ytot[:, None] * _tilted_window_sums(r, C, 2 * m + 1, float(b))
                            .clamp_min(1e-300).log() for b in _TILT_GRID], 1)     # (n, len(grid), 2m+1)
        j = grid.argmax(1, keepdim=True).clamp(1, len(_TILT_GRID) - 2)
        fm, f0, fp = (torch.gather(grid, 1, j + d)[:, 0] for d in (-1, 0, 1))
        c = (fp - 2 * f0 + fm).clamp_max(-1e-300)
        x = (-(fp - fm) / (2 * c)).clamp(-1.0, 1.0)
        ll = corr[:, :2 * m + 1] + f0 + 0.5 * (fp - fm) * x + 0.5 * c * x * x
        slope = (torch.from_numpy(_TILT_GRID)[j[:, 0]] + x * (_TILT_GRID[1] - _TILT_GRID[0])).flip(-1)
    ll = ll.flip(-1)  # j ↔ s = j − m
    s0 = ll.argmax(-1) - m
    base = ((m - s0)[:, None] + torch.arange(C)).clamp(1, L - 2)
    r_lo, r_mid, r_hi = (torch.gather(r, 1, base + d) for d in (-1, 0, 1))
    ll_mid = (y * r_mid.log()).sum(-1)
    window = r[:, m:m + C]
    flat = (window.amax(-1) - window.amin(-1)) <= 1e-9 * window.abs().mean(-1)
    fine = torch.empty((n, len(us)), dtype=f64)
    if tilt:  # exact profiles on the fine grid, from u = 0 outwards (each Newton from its neighbour's slope)
        centre = len(us) // 2                                 # us is symmetric: us[centre] = 0
        b_c, value = _tilt_profile(y, r_mid, torch.gather(slope, 1, (s0 + m)[:, None])[:, 0])
        fine[:, centre] = ll_mid + value
        for side in (range(centre + 1, len(us)), range(centre - 1, -1, -1)):
            b = b_c
            for i in side:
                a = abs(float(us[i]))
                ru = (1.0 - a) * r_mid + a * (r_hi if us[i] < 0 else r_lo)
                b, value = _tilt_profile(y, ru, b, iterations=3)
                fine[:, i] = (y * ru.log()).sum(-1) + value
        _, value0 = _tilt_profile(y, window, slope[:, m])
        ll0 = (y * window.log()).sum(-1) + value0
        return s0.numpy(), ll0.numpy(), fine.amax(-1).numpy(), fine.numpy(), ytot.numpy(), flat.numpy()
    sums = {"mid": r_mid.sum(-1), "lo": r_lo.sum(-1), "hi": r_hi.sum(-1)}
    y32 = y.float()
    d_nb = {"hi": (r_hi / r_mid - 1.0).float(), "lo": (r_lo / r_mid - 1.0).float()}
    buf = torch.empty_like(y32)  # one work array for every grid point: no allocation per point
    for i, u in enumerate(us):
        a = abs(float(u))
        if a == 0:
            fine[:, i] = ll_mid - ytot * sums["mid"].clamp_min(1e-300).log()
            continue
        nb = "hi" if u < 0 else "lo"  # position base − u: towards base + 1 for u < 0
        term = torch.mul(d_nb[nb], a, out=buf).log1p_().mul_(y32).sum(-1, dtype=f64)
        total = (1.0 - a) * sums["mid"] + a * sums[nb]
        fine[:, i] = ll_mid + term - ytot * total.clamp_min(1e-300).log()
    return (s0.numpy(), ll[:, m].numpy(), ll.amax(-1).numpy(), fine.numpy(), ytot.numpy(),
            flat.numpy())


def estimate_shift(y, r_ext, margin, *, fine_steps=10, return_flag=False, limit=None, nuisance="scale"):
    """Maximum-likelihood energy shift of spectra against shifted reconstructions.

    Model: ``y_k ~ Poisson(a · r(k − δ))`` in the window, with the amplitude
    ``a`` profiled out and ``r`` linearly interpolated between channels (with
    ``nuisance="tilt"``: ``a · r(k − δ) · exp(b t_k)``, ``t`` running from −1 to 1
    across the window, ``a`` and ``b`` profiled out under both hypotheses). The
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
    nuisance : {"scale", "tilt"}
        What the spectrum may differ by besides the shift (:data:`SHIFT_NUISANCES`):
        its intensity, or its intensity and a smooth slope across the window (a
        background that falls more or less steeply than the reconstruction's). The
        slope is fitted again at every point of the fine grid, so the uncertainty is
        the curvature of the profile likelihood.

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
    y = np.asarray(y)
    r = np.asarray(r_ext)
    lead = y.shape[:-1]
    C = y.shape[-1]
    y = y.reshape(-1, C)
    r = r.reshape(-1, r.shape[-1])
    m = int(margin)
    if r.shape[-1] != C + 2 * m:
        raise ValueError(f"r_ext must have C + 2·margin = {C + 2 * m} channels, got {r.shape[-1]}.")
    check_nuisance(nuisance)
    us = np.linspace(-1.0, 1.0, 2 * fine_steps + 1)
    n = len(y)
    with TORCH_LOCK:
        parts = [_likelihood_scan(y[i:i + _SCAN_ROWS], r[i:i + _SCAN_ROWS], m, us, nuisance == "tilt")
                 for i in range(0, n, _SCAN_ROWS)]
    s0, ll0, ll_max, fine, ytot, flat = (np.concatenate([p[k] for p in parts]) if parts
                                         else np.empty((0,) + ((len(us),) if k == 3 else ()))
                                         for k in range(6))
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
    glrt = np.maximum(2.0 * (np.maximum(lmax, ll_max) - ll0), 0.0)
    flag = np.zeros(n, np.uint8)
    flag[~ok] = 4
    flag[(np.abs(shift) >= m) | (np.abs(shift) > (m if limit is None else limit))] = 3
    flag[flat] = 2
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


def _shift_kernel(a, b, m, limit, nuisance="scale"):
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("The signal or its reconstruction contains NaN or inf values in the scoring "
                         "window; replace them (e.g. `s.map(np.nan_to_num)` on a copy) or crop them.")
    shift, sigma, glrt, flag = estimate_shift(a, b, m, return_flag=True, limit=limit, nuisance=nuisance)
    return np.stack([shift, sigma, glrt, flag.astype(np.float64)], -1)


def _shift_arrays(original, reconstruction, window, max_shift, nuisance="scale"):
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
        out = da.map_blocks(_shift_kernel, a, b, m, limit, nuisance, dtype=np.float64,
                            chunks=a.chunks[:-1] + ((4,),))
    else:
        out = _shift_kernel(a, b, m, limit, nuisance)
    return axis, out


def shift_analysis(original, reconstruction, window=None, max_shift=10.0, nuisance="scale"):
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
    nuisance : {"scale", "tilt"}
        What a spectrum may differ by besides the shift, under both hypotheses
        (:data:`SHIFT_NUISANCES`): ``"scale"``, its intensity; ``"tilt"``, also a
        smooth slope across the window, for maps whose background steepness varies
        more than the reconstruction follows (a weak edge on a steep background at
        high counts). Recorded in ``metadata.CVAE.score.nuisance``.

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
    axis, out = _shift_arrays(original, reconstruction, window, max_shift, check_nuisance(nuisance))
    method = reconstruction_label(reconstruction)
    units = axis.units or "eV"
    extra = dict(provenance(reconstruction), method=method, units=units, max_shift=float(max_shift),
                 nuisance=nuisance)
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


def _check_shift_option(name, value, choices, default, meaning, score, method):
    """``value`` if it is a key of ``choices`` and, unless it is ``default``, ``score`` is the shift
    score of a reconstruction; else a ``ValueError`` naming ``name`` and what it does (``meaning``)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"`{name}` must be one of {tuple(choices)}, got {value!r}.")
    if value != default and (score != "shift" or method == "rx"):
        raise ValueError(f"`{name}={value!r}` {meaning}: it applies to score='shift' with method 'cvae' or "
                         f"'pca', not to method={method!r}, score={score!r}.")
    return value


def check_nuisance(nuisance, score="shift", method="cvae"):
    """``nuisance`` if it is a key of :data:`SHIFT_NUISANCES` that applies to ``score`` and
    ``method`` (the shift score of a reconstruction), else a ``ValueError``."""
    return _check_shift_option("nuisance", nuisance, SHIFT_NUISANCES, "scale",
                               "is a nuisance of the shift likelihood", score, method)


def check_direction(direction, score="shift", method="cvae"):
    """``direction`` if it is a key of :data:`SHIFT_DIRECTIONS` that applies to ``score`` and
    ``method`` (a sign applies to the shift score of a reconstruction), else a ``ValueError``."""
    return _check_shift_option("direction", direction, SHIFT_DIRECTIONS, "both", "selects shifts of one sign",
                               score, method)


def directional_shift_score(score, shift, direction):
    """The shift score for shifts in one direction only: ``d · sign(shift) · score``.

    A one-sided test. The two-sided score ``z = sqrt(2 (ℓ(δ̂) − ℓ(0)))`` counts a shift either way
    as evidence, so the bulk's own energy jitter of either sign competes with an anomaly. When the
    chemistry says which way the edge moves (a reduction lowers the onset of a transition-metal
    L edge, an oxidation raises it), the signed root ``sign(δ̂) · z`` (≈ N(0, 1) for unshifted
    spectra) ranks the pixels shifted that way first and puts those shifted the other way at the
    bottom, which is the likelihood-ratio test for a shift of known sign.

    Parameters
    ----------
    score, shift : hyperspy Signal2D
        ``"score"`` and ``"shift"`` of :func:`shift_analysis` (the same scan), numpy or lazy.
    direction : {"both", "higher", "lower"}
        ``"higher"``: shifts to higher energy loss (``δ̂ > 0``) are anomalous; ``"lower"``: to
        lower energy loss; ``"both"``: ``score`` is returned as it is.

    Returns
    -------
    hyperspy Signal2D
        High = anomalous, calibrated and lazy like ``score``; ``metadata.CVAE.score.direction``
        records ``direction``. Pixels whose shift is not located (flags 3 and 4 of
        :data:`SHIFT_FLAGS`: beyond ``max_shift``, or no maximum) keep their two-sided score, since
        their direction is not known; pixels without information (NaN score) stay NaN. With
        ``"higher"`` this is the signed evidence that spatial pooling and ``threshold="fdr"`` use
        for the two-sided score.

    Examples
    --------
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> s, truth = bifeo3_si((24, 24), random_state=0, return_expected=True)
    >>> bad, m = s.inject_shift(1.0, n_clusters=1, random_state=0, return_mask=True)
    >>> res = shift_analysis(bad, truth, (690., 730.))
    >>> up = directional_shift_score(res["score"], res["shift"], "higher")
    >>> down = directional_shift_score(res["score"], res["shift"], "lower")
    >>> bool(up.data[m.data].min() > up.data[~m.data].max()), bool(down.data[m.data].max() < 0)
    (True, True)
    >>> up.metadata.CVAE.score.direction
    'higher'
    """
    sign = SHIFT_DIRECTIONS[check_direction(direction)]
    if sign is None:
        return score
    d = shift.data  # NaN where the scan found no shift: no sign known, the score kept (as at 0)
    out = score._deepcopy_with_new_data(np.where(d > 0, sign, np.where(d < 0, -sign, 1.0)) * score.data)
    statistic = score.metadata.get_item("CVAE.score.statistic", "shift score")
    out.metadata.set_item("CVAE.score.statistic", f"{'+' if sign > 0 else '-'}sign(shift) * {statistic}")
    out.metadata.set_item("CVAE.score.direction", direction)
    word = "higher" if sign > 0 else "lower"
    out.metadata.General.title = f"{score.metadata.General.title} (shifts to {word} energy loss)"
    return out


def shift_map(original, reconstruction, window=None, max_shift=10.0, nuisance="scale"):
    """``(shift, sigma)`` maps in eV; see :func:`shift_analysis`."""
    res = shift_analysis(original, reconstruction, window, max_shift, nuisance)
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


