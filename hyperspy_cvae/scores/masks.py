"""Pixels to leave out of scoring: regions without the edge, and applying such a mask."""

from __future__ import annotations

import numpy as np

from .._arrays import compute_all
from .._stats import robust_sd
from .._maps import navigation_map
from .._validation import check_counts, energy_window
from .threshold import otsu_threshold

__all__ = ["edge_free_mask", "leave_out"]


def edge_free_mask(signal, edge=None, pre_edge=None, *, min_separation=2.0):
    """Pixels without an edge (a substrate, vacuum, a hole), for ``navigation_mask``.

    The edge-jump ratio — mean counts in ``edge`` over mean counts in
    ``pre_edge`` — is computed per pixel and split in two by Otsu's threshold
    (:func:`~hyperspy_cvae.scores.threshold.otsu_threshold`). The two classes count as separate populations only if their
    medians differ by at least ``min_separation`` times the sum of their robust
    standard deviations (1.4826 × MAD); then each pixel goes to the class whose
    median is fewer of that class's robust s.d. away, and the low class is
    returned as True (edge absent). A map with the edge everywhere is one
    population that Otsu merely splits in two, so it gets an all-False mask. On
    noisy data, narrow windows put some pixels with the edge in the low class:
    widen them.

    Parameters
    ----------
    signal : CVAEEELSSpectrum or LazyCVAEEELSSpectrum
        Spectrum image with a calibrated energy axis. A lazy signal is reduced
        to the two window means (a navigation-sized array) and computed.
    edge : str or (float, float), optional
        An edge name (``"Fe_L3"``, ``"Ti_L2,3"``): the windows are then 2 eV
        before to 3 eV after its first onset and 13 to 8 eV before it
        (:func:`hyperspy_cvae.edges.white_line_windows`). Or a window in eV on
        the edge, with ``pre_edge``. Default: the first edge of the elements in
        ``metadata.Sample.elements``.
    pre_edge : (float, float), optional
        Window in eV just before the edge (needed with an eV ``edge``).
    min_separation : float
        Smallest separation of the two classes (see above) to call them two.

    Returns
    -------
    hyperspy Signal2D of bool
        True where the edge is absent, with the navigation calibration of
        ``signal`` and ``metadata.CVAE.edge_mask`` (windows, Otsu's threshold and
        the one used, separation, decision). Pass it as ``anomaly_map(navigation_mask=...)``.

    Examples
    --------
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> f = bifeo3_si((48, 48), substrate_fraction=0.3, random_state=0)   # bottom 14 rows: no Fe
    >>> no_fe = edge_free_mask(f, "Fe_L3")
    >>> int(no_fe.data.sum()), int(no_fe.data[:34].sum()), no_fe.metadata.CVAE.edge_mask.decision
    (672, 0, 'two populations')
    >>> int(edge_free_mask(bifeo3_si((48, 48), random_state=0)).data.sum())   # Fe everywhere
    0
    """
    from ..edges import resolve_window, white_line_windows

    if edge is None or isinstance(edge, str):
        name = edge if edge is not None else resolve_window(signal)[1].split("+")[0]
        edge, default_pre = white_line_windows(name)
        pre_edge = default_pre if pre_edge is None else pre_edge
    elif pre_edge is None:
        raise ValueError("`edge` in eV needs `pre_edge` too, e.g. edge=(706., 711.), pre_edge=(695., 700.); "
                         "or name the edge: edge='Fe_L3'.")
    edge = energy_window(signal, edge, name="edge")
    pre_edge = energy_window(signal, pre_edge, name="pre_edge")
    num, den = compute_all(signal.data[..., edge.slice].mean(-1), signal.data[..., pre_edge.slice].mean(-1))
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    check_counts(num, name="The edge window")
    check_counts(den, name="The pre-edge window")
    # No pre-edge counts: no edge unless the edge window has counts (then: the largest ratio).
    ratio = np.divide(num, den, out=np.where(num > 0, np.inf, 0.0), where=den > 0)
    finite = np.isfinite(ratio)
    if not finite.any():
        raise ValueError("No pixel has counts in the pre-edge window; check `pre_edge`.")
    ratio[~finite] = ratio[finite].max()
    info = {"edge": edge.as_list(), "pre_edge": pre_edge.as_list(),
            "min_separation": float(min_separation)}
    mask, two = np.zeros(ratio.shape, bool), False
    if np.ptp(ratio) > 0:
        t = otsu_threshold(ratio)
        lo, hi = ratio[ratio < t], ratio[ratio >= t]
        spread = max(robust_sd(lo) + robust_sd(hi), 1e-12 * abs(t))
        sep = (float(np.median(hi)) - float(np.median(lo))) / spread
        two = bool(lo.size and hi.size and sep >= min_separation)
        info.update(threshold_otsu=t, threshold=t, separation=sep)
        if two:
            # Otsu's histogram threshold sits on the low class's upper tail; each pixel goes to
            # the class whose median is fewer of that class's robust s.d. away
            slo, shi = max(robust_sd(lo), 1e-12), max(robust_sd(hi), 1e-12)
            t = (float(np.median(lo)) * shi + float(np.median(hi)) * slo) / (slo + shi)
            info["threshold"] = t
            mask = ratio < t
    info["decision"] = "two populations" if two else "one population: edge everywhere"
    info["n_edge_free"] = int(mask.sum())
    return navigation_map(signal, mask, f"No edge ({edge.label} vs {pre_edge.label})",
                          metadata={"CVAE.edge_mask": info})


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


