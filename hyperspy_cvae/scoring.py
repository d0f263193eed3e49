"""Anomaly scores, thresholds and detection metrics.

The maths works on numpy or dask arrays; the ``*_map`` functions wire it to
HyperSpy signals and return calibrated ``Signal2D`` maps.

Conventions
-----------
Every score map carries ``metadata.CVAE.score`` with ``kind`` (``"pcc"``,
``"deviance"``, ...), ``anomalous`` (``"low"`` when low values are anomalous,
as for PCC, ``"high"`` otherwise) and the energy ``window`` in eV.
"""

from __future__ import annotations

import logging

import numpy as np

from ._validation import check_counts, energy_axis, window_slice

__all__ = [
    "pearson", "pcc_map", "poisson_deviance", "deviance_map", "estimate_shift", "shift_analysis",
    "shift_map",
    "shift_score_map", "likelihood_ratio", "unimodality_test", "threshold_anomalies",
    "detection_metrics", "precision_recall_curve", "score_direction", "edge_free_mask",
    "leave_out", "SCORES",
]

#: Scores offered by :meth:`CVAEEELSSpectrum.anomaly_map` (``score=``).
SCORES = ("pcc", "deviance", "shift")

_logger = logging.getLogger(__name__)


def pearson(a, b):
    """Pearson correlation of ``a`` and ``b`` along the last axis, in float64.

    Works on numpy and dask arrays (lazy in, lazy out).

    Constant spectra have no defined correlation; the convention here is: if
    both spectra are constant the correlation is 1 (the reconstruction
    reproduces a flat spectrum perfectly), if only one is constant it is 0. No
    warning is emitted and the result never contains NaN for finite input.

    Examples
    --------
    >>> float(pearson(np.array([1., 2., 3.]), np.array([2., 4., 7.])))  # doctest: +ELLIPSIS
    0.99339...
    """
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    ac = a - a.mean(axis=-1, keepdims=True)
    bc = b - b.mean(axis=-1, keepdims=True)
    saa = (ac * ac).sum(axis=-1)
    sbb = (bc * bc).sum(axis=-1)
    sab = (ac * bc).sum(axis=-1)
    # Relative tolerance: spectra whose variance is at rounding level are "constant".
    za = saa <= 1e-24 * ((a * a).sum(axis=-1) + 1e-300)
    zb = sbb <= 1e-24 * ((b * b).sum(axis=-1) + 1e-300)
    denom = (saa * sbb) ** 0.5
    safe = denom + (za | zb)  # avoid 0/0 without warnings
    r = sab / safe
    r = r * ~(za | zb) + (za & zb) * 1.0
    return r.clip(-1.0, 1.0) if hasattr(r, "clip") else np.clip(r, -1.0, 1.0)


def _robust_sd(values, center=None):
    """Robust standard deviation, 1.4826 × the median absolute deviation from ``center``
    (the median when None)."""
    values = np.asarray(values, np.float64)
    center = np.median(values) if center is None else center
    return 1.4826 * float(np.median(np.abs(values - center)))


def _check_same_energy_axis(original, reconstruction):
    a, b = energy_axis(original), energy_axis(reconstruction)
    if a.size != b.size or not np.isclose(a.offset, b.offset) or not np.isclose(a.scale, b.scale):
        raise ValueError(
            "The original and the reconstruction have different energy axes "
            f"({a.offset:g} eV + {a.size} × {a.scale:g} eV vs {b.offset:g} eV + "
            f"{b.size} × {b.scale:g} eV); crop both to the same range first.")
    if original.axes_manager.navigation_shape != reconstruction.axes_manager.navigation_shape:
        raise ValueError(
            "The original and the reconstruction have different navigation shapes "
            f"{original.axes_manager.navigation_shape} vs "
            f"{reconstruction.axes_manager.navigation_shape}.")
    return a


def _score_signal(original, data, *, kind, anomalous, window, title, extra=None):
    """Wrap a navigation-shaped score array as a calibrated Signal2D."""
    if hasattr(data, "dask") and not original._lazy:
        original = original.as_lazy()
    out = original._get_navigation_signal(data=data)
    out.metadata.General.title = title
    info = {"kind": kind, "anomalous": anomalous, "window": [float(window[0]), float(window[1])]}
    info.update(extra or {})
    out.metadata.set_item("CVAE.score", info)
    return out


def _per_spectrum(func, original, reconstruction, window):
    """``func(a, b)`` → one value per spectrum, on the window of both signals (lazy if either is)."""
    axis = _check_same_energy_axis(original, reconstruction)
    sl = window_slice(axis, window)
    a = original.data[..., sl]
    b = reconstruction.data[..., sl]
    if hasattr(a, "dask") or hasattr(b, "dask"):
        import dask.array as da

        a = da.asarray(a).rechunk({-1: -1})  # whole spectra in one block
        b = da.asarray(b).rechunk(a.chunks)
        return da.map_blocks(func, a, b, drop_axis=a.ndim - 1, dtype=np.float64)
    return func(a, b)


def pcc_map(original, reconstruction, window=(690.0, 730.0)):
    """Per-pixel Pearson correlation between two spectrum images inside an eV window.

    Parameters
    ----------
    original, reconstruction : hyperspy Signal1D
        Spectrum images with identical navigation shape and energy axis (e.g.
        ``s`` and ``s.get_decomposition_model(3)``).
    window : tuple of float
        ``(start, end)`` of the window in the energy-axis units (eV).

    Returns
    -------
    hyperspy Signal2D
        PCC map with the navigation calibration of ``original`` (lazy if either
        input is lazy). Low values are anomalous. See :func:`pearson` for the
        convention on constant spectra.

    Examples
    --------
    >>> from hyperspy_cvae.data import bifeo3_si
    >>> s = bifeo3_si((24, 24), random_state=0)
    >>> s.decomposition(print_info=False)
    >>> pcc = pcc_map(s, s.get_decomposition_model(3), (690., 730.))
    >>> pcc.axes_manager.signal_shape
    (24, 24)
    """
    r = _per_spectrum(pearson, original, reconstruction, window)
    method = reconstruction.metadata.get_item("CVAE.reconstruction.method", "reconstruction")
    return _score_signal(original, r, kind="pcc", anomalous="low", window=window,
                         title=f"PCC {method} {window[0]:g}-{window[1]:g} eV",
                         extra=_provenance(reconstruction))


def _provenance(reconstruction):
    """What produced a reconstruction (for score metadata): method, model, versions."""
    from ._version import __version__

    rmd = reconstruction.metadata.get_item("CVAE.reconstruction", None)
    info = {"method": rmd.get_item("method", "reconstruction") if rmd is not None else "reconstruction",
            "package_version": __version__}
    if rmd is not None:
        for key in ("model_checksum", "checkpoint", "n_components", "signal_range"):
            if rmd.has_item(key) and rmd.get_item(key) is not None:
                info[key] = rmd.get_item(key)
    return info


def _amplitude_matched(y, r, eps=1e-9):
    """Scale the reconstruction ``r`` to the counts of ``y`` (per spectrum, float64)."""
    y = np.asarray(y, np.float64)
    r = np.asarray(r, np.float64)
    ry = y.sum(-1, keepdims=True)
    rr = r.sum(-1, keepdims=True)
    scale = np.where(rr > 0, ry / np.where(rr > 0, rr, 1.0), 0.0)
    floor = eps * np.maximum(np.abs(ry) / y.shape[-1], 1.0)
    return y, np.maximum(r * scale, floor)


def poisson_deviance(y, r):
    """Mean Poisson deviance per channel of counts ``y`` against a reconstruction ``r``.

    The reconstruction is first rescaled to the counts of each spectrum (the
    amplitude is a nuisance: thickness, not chemistry), then

    ``D = (2 / C) · Σ_k [y_k log(y_k / μ_k) − (y_k − μ_k)]``

    over the ``C`` channels of the last axis (``0 log 0 = 0``; negative counts
    are clipped to 0). Under a correct model ``D ≈ 1`` whatever the dose (to
    within ≈ 1/(6 μ) for mean counts μ ≳ 5 per channel), so
    unlike PCC it does not flag pixels where the edge is weak or absent: high
    values are anomalous.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> mu = np.full((2000, 100), 50.0)
    >>> d = poisson_deviance(rng.poisson(mu), mu)
    >>> round(float(d.mean()), 1)
    1.0
    """
    y, mu = _amplitude_matched(np.clip(y, 0, None), r)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0)
    return 2.0 * (t - (y - mu)).sum(-1) / y.shape[-1]


def _profile_loglik(y, logr, sumr):
    """Poisson log-likelihood with the amplitude profiled out (constants dropped)."""
    ytot = y.sum(-1)
    return (y * logr).sum(-1) - ytot * np.log(np.maximum(sumr, 1e-300))


def estimate_shift(y, r_ext, margin, *, fine_steps=10):
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

    Returns
    -------
    shift, sigma, glrt : numpy.ndarray (...)
        Shift in channels (positive = towards higher energy), its 1σ
        uncertainty in channels (from the curvature of the log-likelihood) and
        the generalised likelihood-ratio statistic ``2 (ℓ(δ̂) − ℓ(0)) ≥ 0``
        (≈ χ²₁ for an unshifted spectrum).

    Examples
    --------
    >>> e = np.arange(140.0)
    >>> r = 10 + 200 * np.exp(-0.5 * ((e - 70) / 3) ** 2)
    >>> y = 10 + 200 * np.exp(-0.5 * ((e[20:120] - 72.5) / 3) ** 2)
    >>> d, s, g = estimate_shift(y[None], r[None], 20)
    >>> round(float(d[0]), 2)
    2.5
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
    return shift.reshape(lead), sigma.reshape(lead), glrt.reshape(lead)


def _window_with_margin(axis, window, max_shift):
    sl = window_slice(axis, window)
    m = int(np.ceil(float(max_shift) / axis.scale))
    if m < 1:
        raise ValueError(f"`max_shift` must be at least one channel ({axis.scale:g} {axis.units}).")
    return sl, m


def _extended(data, sl, m):
    """Channels ``sl`` of ``data`` extended by ``m`` on each side (edge-repeated where the axis ends)."""
    n = data.shape[-1]
    lo, hi = sl.start - m, sl.stop + m
    idx = np.clip(np.arange(lo, hi), 0, n - 1)
    if lo >= 0 and hi <= n:
        return data[..., lo:hi]
    return data[..., idx]


def _shift_kernel(a, b, m):
    shift, sigma, glrt = estimate_shift(a, b, m)
    return np.stack([shift, sigma, glrt], -1)


def _shift_arrays(original, reconstruction, window, max_shift):
    axis = _check_same_energy_axis(original, reconstruction)
    sl, m = _window_with_margin(axis, window, max_shift)
    a = original.data[..., sl]
    b = _extended(reconstruction.data, sl, m)
    if hasattr(a, "dask") or hasattr(b, "dask"):
        import dask.array as da

        a = da.asarray(a)
        a = a.rechunk({a.ndim - 1: -1})
        b = da.asarray(b).rechunk(a.chunks[:-1] + ((b.shape[-1],),))
        out = da.map_blocks(_shift_kernel, a, b, m, dtype=np.float64,
                            chunks=a.chunks[:-1] + ((3,),))
    else:
        out = _shift_kernel(a, b, m)
    return axis, out


def deviance_map(original, reconstruction, window=(690.0, 730.0)):
    """Per-pixel Poisson deviance per channel between data and reconstruction in a window.

    A noise-aware alternative to :func:`pcc_map` (see :func:`poisson_deviance`):
    ≈ 1 where the reconstruction explains the counts, high where it does not.
    It stays ≈ 1 where the edge is weak or absent (substrate, holes), where PCC
    measures noise and drops.

    Parameters
    ----------
    original, reconstruction : hyperspy Signal1D
        Counts and their reconstruction, same navigation shape and energy axis.
    window : tuple of float
        Energy window in eV.

    Returns
    -------
    hyperspy Signal2D
        Deviance map (``metadata.CVAE.score.anomalous == "high"``).

    Examples
    --------
    >>> from hyperspy_cvae.data import bifeo3_si
    >>> s = bifeo3_si((24, 24), random_state=0)
    >>> s.decomposition(print_info=False)
    >>> dev = deviance_map(s, s.get_decomposition_model(3), (690., 730.))
    >>> 0.8 < float(dev.data.mean()) < 1.3
    True
    """
    d = _per_spectrum(poisson_deviance, original, reconstruction, window)
    method = reconstruction.metadata.get_item("CVAE.reconstruction.method", "reconstruction")
    return _score_signal(original, d, kind="deviance", anomalous="high", window=window,
                         title=f"Poisson deviance {method} {window[0]:g}-{window[1]:g} eV",
                         extra=_provenance(reconstruction))


def shift_analysis(original, reconstruction, window=(690.0, 730.0), max_shift=10.0):
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
        for unshifted spectra at any dose; high = anomalous). Calibrated like
        the navigation axes; lazy if an input is lazy.

    Examples
    --------
    >>> from hyperspy_cvae.data import bifeo3_si
    >>> s, truth = bifeo3_si((24, 24), random_state=0, return_expected=True)
    >>> bad, m = s.inject_shift(2.0, n_clusters=1, random_state=0, return_mask=True)
    >>> res = shift_analysis(bad, truth, (690., 730.))
    >>> abs(float(res["shift"].data[m.data].mean()) - 2.0) < 0.1
    True
    >>> bool(res["score"].data[m.data].min() > res["score"].data[~m.data].max())
    True
    """
    axis, out = _shift_arrays(original, reconstruction, window, max_shift)
    method = reconstruction.metadata.get_item("CVAE.reconstruction.method", "reconstruction")
    units = axis.units or "eV"
    extra = dict(_provenance(reconstruction), method=method, units=units, max_shift=float(max_shift))
    w = f"{window[0]:g}-{window[1]:g} {units}"
    shift = _score_signal(original, out[..., 0] * axis.scale, kind="shift_estimate",
                          anomalous="both", window=window, extra=extra,
                          title=f"Energy shift vs {method} {w}")
    sigma = _score_signal(original, out[..., 1] * axis.scale, kind="shift_uncertainty",
                          anomalous="high", window=window, extra=extra,
                          title=f"Shift uncertainty (1 sigma) vs {method} {w}")
    for sig in (shift, sigma):
        sig.metadata.set_item("Signal.quantity", f"Energy shift ({units})")
    score = _score_signal(original, out[..., 2] ** 0.5, kind="shift", anomalous="high",
                          window=window, title=f"Shift score {method} {w}",
                          extra=dict(extra, statistic="sqrt(2 (l(shift_ML) - l(0)))"))
    return {"shift": shift, "sigma": sigma, "score": score}


def shift_map(original, reconstruction, window=(690.0, 730.0), max_shift=10.0):
    """``(shift, sigma)`` maps in eV; see :func:`shift_analysis`."""
    res = shift_analysis(original, reconstruction, window, max_shift)
    return res["shift"], res["sigma"]


def shift_score_map(original, reconstruction, window=(690.0, 730.0), max_shift=10.0):
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


def score_direction(score, anomalous=None):
    """Return ``"low"`` or ``"high"``: which end of ``score`` is anomalous."""
    if anomalous is None and hasattr(score, "metadata"):
        anomalous = score.metadata.get_item("CVAE.score.anomalous", None)
    anomalous = anomalous or "low"
    if anomalous not in ("low", "high"):
        raise ValueError(f"`anomalous` must be 'low' or 'high', got {anomalous!r}.")
    return anomalous


def _as_array(x):
    if hasattr(x, "data") and hasattr(x, "axes_manager"):
        x = x.data
    if hasattr(x, "compute"):
        x = x.compute()
    return np.asarray(x)


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

    Counting only the mode itself (not every bin beyond the valley) matters for
    a broad anomalous population — a spread of shifts — followed by an empty
    far tail, whose empty bins would otherwise dilute the excess: a 0.5 eV shift
    in 24 patches (ROC-AUC 0.9995) failed that way. The adaptive smoothing
    keeps chance gaps of a sparse tail from passing for deep valleys, and the
    separation condition keeps a shoulder of the bulk (seen on a null PCA shift
    map, from score quantisation near zero) from counting as anomalies. On
    5,040 samples of unimodal skewed and heavy-tailed distributions
    (half-normal, χ²₁, χ²₃, log-normal, Student t₃, beta, exponential;
    2,304–36,864 values, each side tested) it calls 1 bimodal
    (``benchmarks/unimodality_null.py``, output in
    ``benchmarks/results/unimodality_null.md``); the previous version (every
    bin beyond the valley counted, fixed smoothing, 5σ) called 94 of 1,680
    such samples bimodal (``benchmarks/NOTES.md`` §4).

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
    spread = _robust_sd(z, median)
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
    threshold is Otsu's (``skimage.filters.threshold_otsu``) on the scores.

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
    >>> mask = threshold_anomalies(pcc)
    >>> int(mask.data.sum()), mask.metadata.CVAE.threshold.decision
    (16, 'bimodal: thresholded')
    """
    direction = score_direction(score, anomalous)
    values = _as_array(score)
    finite = values[np.isfinite(values)]
    test = (unimodality_test(finite, anomalous=direction)
            if unimodality else {"bimodal": True, "test": "none"})
    if isinstance(method, str):
        if method != "otsu":
            raise ValueError(f"`method` must be 'otsu' or a number, got {method!r}.")
        from skimage.filters import threshold_otsu

        thr = float(threshold_otsu(finite)) if np.ptp(finite) > 0 else float(finite.max())
    else:
        thr = float(method)
    rule = "otsu" if isinstance(method, str) else "fixed"
    if unimodality and test["bimodal"] and isinstance(method, str) and test["valley"] is not None:
        # Otsu on a tiny anomalous population can split the bulk instead; the
        # threshold never goes into the main mode past the valley of the dip.
        bulk_side = thr > test["valley"] if direction == "low" else thr < test["valley"]
        if bulk_side:
            thr, rule = float(test["valley"]), "valley (Otsu fell inside the main mode)"
    if test["bimodal"] or not unimodality:
        mask = values < thr if direction == "low" else values > thr
        decision = "bimodal: thresholded" if unimodality else "thresholded (no unimodality check)"
    else:
        mask = np.zeros(values.shape, bool)
        decision = "unimodal: no anomalies"
        _logger.info("Score distribution is unimodal (%s); no pixel flagged.", test["test"])
    mask &= np.isfinite(values)
    out = _bool_map_like(score, mask)
    if hasattr(score, "metadata"):
        out.metadata.General.title = f"Anomaly mask ({score.metadata.General.title})"
    info = {k: v for k, v in test.items()}
    info.update(method=method if isinstance(method, str) else "fixed", threshold=thr, rule=rule,
                anomalous=direction, decision=decision, n_flagged=int(mask.sum()))
    out.metadata.set_item("CVAE.threshold", info)
    return out


def edge_free_mask(signal, edge=(706.0, 711.0), pre_edge=(695.0, 700.0), *, min_separation=2.0):
    """Pixels without an edge (a substrate, vacuum, a hole), for ``navigation_mask``.

    The edge-jump ratio — mean counts in ``edge`` over mean counts in
    ``pre_edge`` — is computed per pixel and split in two by Otsu's threshold
    (scikit-image). The low class is returned as True (edge absent) only if
    the two classes are separate populations: their medians must differ by at
    least ``min_separation`` times the sum of their robust standard deviations
    (1.4826 × MAD). A single population split by Otsu (a map with the edge
    everywhere) reaches 1.1–1.3, so such a map gets an all-False mask; film and
    substrate of the synthetic cube reach 5.3 at the default dose and 2.4 at a
    tenth of it (where the noise of the narrow windows also puts 2–3 % of the
    film pixels in the low class: widen the windows on noisy data).

    Parameters
    ----------
    signal : CVAEEELSSpectrum or LazyCVAEEELSSpectrum
        Spectrum image with a calibrated energy axis. A lazy signal is reduced
        to the two window means (a navigation-sized array) and computed.
    edge, pre_edge : (float, float)
        Energy windows in eV, on and just before the edge (defaults: the Fe L3
        white line and the pre-edge background).
    min_separation : float
        Smallest separation of the two classes (see above) to call them two.

    Returns
    -------
    hyperspy Signal2D of bool
        True where the edge is absent, with the navigation calibration of
        ``signal`` and ``metadata.CVAE.edge_mask`` (windows, threshold,
        separation, decision). Pass it as ``anomaly_map(navigation_mask=...)``.

    Examples
    --------
    >>> from hyperspy_cvae.data import bifeo3_si
    >>> f = bifeo3_si((48, 48), substrate_fraction=0.3, random_state=0)   # bottom 14 rows: no Fe
    >>> no_fe = edge_free_mask(f)
    >>> int(no_fe.data.sum()), int(no_fe.data[:34].sum()), no_fe.metadata.CVAE.edge_mask.decision
    (670, 0, 'two populations')
    >>> int(edge_free_mask(bifeo3_si((48, 48), random_state=0)).data.sum())   # Fe everywhere
    0
    """
    from skimage.filters import threshold_otsu

    ax = energy_axis(signal)
    e, p = window_slice(ax, edge), window_slice(ax, pre_edge)
    num, den = signal.data[..., e].mean(-1), signal.data[..., p].mean(-1)
    if hasattr(num, "compute"):
        import dask

        num, den = dask.compute(num, den)
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    check_counts(num, name="The edge window")
    check_counts(den, name="The pre-edge window")
    # No pre-edge counts: no edge unless the edge window has counts (then: the largest ratio).
    ratio = np.divide(num, den, out=np.where(num > 0, np.inf, 0.0), where=den > 0)
    finite = np.isfinite(ratio)
    if not finite.any():
        raise ValueError("No pixel has counts in the pre-edge window; check `pre_edge`.")
    ratio[~finite] = ratio[finite].max()
    info = {"edge": [float(edge[0]), float(edge[1])], "pre_edge": [float(pre_edge[0]), float(pre_edge[1])],
            "min_separation": float(min_separation)}
    mask, two = np.zeros(ratio.shape, bool), False
    if np.ptp(ratio) > 0:
        t = float(threshold_otsu(ratio))
        lo, hi = ratio[ratio < t], ratio[ratio >= t]
        spread = max(_robust_sd(lo) + _robust_sd(hi), 1e-12 * abs(t))
        sep = (float(np.median(hi)) - float(np.median(lo))) / spread
        two = bool(lo.size and hi.size and sep >= min_separation)
        info.update(threshold=t, separation=sep)
        if two:
            mask = ratio < t
    info["decision"] = "two populations" if two else "one population: edge everywhere"
    info["n_edge_free"] = int(mask.sum())
    out = signal._get_navigation_signal(data=mask)
    out.metadata.General.title = f"No edge ({edge[0]:g}–{edge[1]:g} eV vs {pre_edge[0]:g}–{pre_edge[1]:g} eV)"
    out.metadata.set_item("CVAE.edge_mask", info)
    return out


def leave_out(score, navigation_mask):
    """A copy of a score map with the pixels of ``navigation_mask`` set to NaN.

    NaN pixels are never flagged by :func:`threshold_anomalies`, stay out of
    its histogram, and rank below every scored pixel in
    :func:`detection_metrics`. ``anomaly_map(navigation_mask=...)`` calls this;
    lazy maps stay lazy.

    Parameters
    ----------
    score : hyperspy Signal2D
        Score map.
    navigation_mask : numpy.ndarray of bool, shape (ny, nx)
        True = leave the pixel out.
    """
    navigation_mask = np.asarray(navigation_mask, bool)
    out = score.deepcopy() if not score._lazy else score._deepcopy_with_new_data(score.data)
    if score._lazy:
        import dask.array as da

        out.data = da.where(da.from_array(navigation_mask, chunks=score.data.chunks), np.nan, score.data)
    else:
        out.data = np.where(navigation_mask, np.nan, score.data)
    out.metadata.set_item("CVAE.score.n_left_out", int(navigation_mask.sum()))
    return out


def _bool_map_like(like, data):
    """An eager Signal2D holding ``data`` with the axes and metadata of ``like``."""
    from hyperspy.signals import Signal2D

    if not hasattr(like, "axes_manager"):
        return Signal2D(data)
    return Signal2D(data, axes=like.axes_manager._get_axes_dicts(),
                    metadata=like.metadata.as_dictionary())


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
    >>> m = detection_metrics(np.array([0, 1, 1, 1], bool), truth, np.array([.9, .5, .2, .1]))
    >>> round(m["precision"], 3), m["recall"], m["roc_auc"], m["f1_best"]
    (0.667, 1.0, 1.0, 1.0)
    """
    from sklearn.metrics import (average_precision_score, precision_recall_curve as _prc,
                                 precision_recall_fscore_support, roc_auc_score)

    y = _as_array(truth).astype(bool).ravel()
    p = _as_array(mask).astype(bool).ravel()
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
    a = _as_array(scores).astype(np.float64).ravel()
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

    y = _as_array(truth).astype(bool).ravel()
    a = _anomaly_scores(scores, anomalous)
    ok = np.isfinite(a)
    prec, rec, thr = _prc(y[ok], a[ok])
    if score_direction(scores, anomalous) == "low":
        thr = -thr
    return prec, rec, thr
