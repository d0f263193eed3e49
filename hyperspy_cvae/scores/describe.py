"""How a pixel differs: per-pixel maps and a table of what the detector flagged.

A score says *that* a spectrum differs from its reconstruction. The next question is *how*:

* its edge moved: the shift in eV and its 1σ uncertainty (:func:`~.shift.shift_analysis`);
* it has more or less of everything: the counts in the window against the bulk's median
  (a thickness change, a nuisance);
* its edge is stronger or weaker for its intensity: the jump ratio
  ``(jump + background) / background`` (:func:`~.labels.edge_jump`) against the bulk's median;
* its fine structure changed: the signed projection on the change that the anomalous pixels
  share (their mean residual beyond the nuisances), and that change as a spectrum
  (:func:`~.change.change_analysis` with ``seed``);
* some other change: the χ² of the residual beyond the nuisances, or a background change far
  outside the bulk's;
* there is no edge (vacuum, a substrate) or the acquisition failed (an outlier):
  :func:`~.labels.label_pixels`.

Each flagged pixel's ``explanation`` is the test with the smallest p-value among the shift, the
shape change, the other change and the background change; the four statistics are normal
z-values against the map's bulk (the shift score is ``|N(0, 1)|`` without a shift; it is left
out where the shift has no estimate, e.g. at the search limit).
"""

from __future__ import annotations

import numpy as np

from .._maps import navigation_map
from .._validation import energy_window
from ._common import window_spectrum

__all__ = ["EXPLANATIONS", "describe_pixels", "explain"]

#: The explanations of an "anomalous" pixel, in the order of :func:`explain`'s codes; the label's
#: name for the other labels.
EXPLANATIONS = ("shift", "shape change", "other change", "background change")


def explain(shift_z, shape_z, change_z, background_z):
    """Index into :data:`EXPLANATIONS` of the strongest evidence, and its two-sided/one-sided
    p-value, per pixel.

    Parameters
    ----------
    shift_z : array
        Shift score (``sqrt(2 Δℓ)``, ``|N(0, 1)|`` without a shift): two-sided.
    shape_z : array
        Signed projection on the learned change (``N(0, 1)`` in the bulk): two-sided.
    change_z, background_z : array
        Residual χ² and nuisance-size statistics (``N(0, 1)`` in the bulk, high = changed):
        one-sided.

    Returns
    -------
    code, p : arrays
        ``code`` is -1 where every statistic is NaN.

    Examples
    --------
    >>> code, p = explain(np.array([8.0, 1.0]), np.array([2.0, -6.0]), np.array([1.0, 2.0]),
    ...                   np.array([0.0, 0.5]))
    >>> [EXPLANATIONS[c] for c in code]
    ['shift', 'shape change']
    """
    from scipy.stats import norm

    logp = np.stack([norm.logsf(np.abs(shift_z)) + np.log(2.0), norm.logsf(np.abs(shape_z)) + np.log(2.0),
                     norm.logsf(change_z), norm.logsf(background_z)], -1)
    logp = np.where(np.isnan(logp), np.inf, logp)
    code = np.argmin(logp, -1)
    best = np.take_along_axis(logp, code[..., None], -1)[..., 0]
    code = np.where(np.isfinite(best), code, -1)
    return code, np.exp(np.where(np.isfinite(best), best, 0.0))


def _relative(values, bulk):
    """``values`` over their median in the ``bulk`` pixels (NaN where that median is not > 0)."""
    ref = values[bulk & np.isfinite(values)]
    med = float(np.median(ref)) if ref.size else np.nan
    return values / med if np.isfinite(med) and med > 0 else np.full_like(values, np.nan)


def describe_pixels(original, reconstruction, window=None, *, mask=None, labels=None, pedestal=0.0,
                    shift=None, change=None, max_shift=10.0, edge=None):
    """Per-pixel description of how each spectrum differs from its reconstruction.

    Parameters
    ----------
    original, reconstruction : hyperspy Signal1D
        The scored spectra in Poisson-equivalent counts and their reconstruction (same navigation
        shape and energy axis; a lazy one is computed in the window and ``max_shift`` around it).
    window : tuple of float or EnergyWindow
        Energy window in eV.
    mask : array of bool or Signal2D, optional
        The detector's flags (the "anomalous" label).
    labels : Signal2D of int, optional
        :func:`~.labels.label_pixels`'s map, if it was made already (its onset is reused);
        otherwise it is made here, with ``edge``.
    pedestal : float
        The constant the noise model added to every channel to make counts
        (:attr:`~hyperspy_cvae.noise.NoiseModel.shift`): taken off again for the intensity and the
        jump ratio, so that both are ratios of the data, not of the pedestal.
    shift, change : dict, optional
        :func:`~.shift.shift_analysis` and :func:`~.change.change_analysis` of these spectra, if
        they were computed already (``change`` is used only where no pixel is anomalous: the
        learned change is otherwise the mean residual of the anomalous pixels).
    max_shift : float
        Largest shift searched, in eV.
    edge : str, optional
        Edge name for the labels' onset (``"Fe_L2,3"``).

    Returns
    -------
    PixelDescription
        Maps (``shift``, ``shift_sigma``, ``intensity``, ``jump_ratio``, ``shape``, ``change``,
        ``background``, ``score``: the evidence of the strongest test, ``explanation``), the
        labels, the learned change as a spectrum, and :meth:`~PixelDescription.table` of the
        pixels that are not bulk. Where the window is too narrow for the nuisances (a coarse
        axis), the shape, χ² and background maps are NaN, the learned change is None and
        ``metadata.CVAE.description.not_tested`` says why.

    Examples
    --------
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> s, bulk = bifeo3_si((32, 32), random_state=0, return_expected=True)
    >>> bad, truth = s.inject_shift(1.0, n_clusters=2, cluster_size=5, random_state=1, return_mask=True)
    >>> d = describe_pixels(bad, bulk, (690., 730.), mask=truth)
    >>> float(np.nanmedian(d.maps["shift"].data[truth.data])).__round__(1)
    1.0
    >>> row = d.table()[0]
    >>> row["label"], row["explanation"]
    ('anomalous', 'shift')
    """
    from ..results import PixelDescription
    from .change import change_analysis
    from ..background import onset_from_data
    from .labels import LABELS, edge_jump, label_pixels
    from .shift import shift_analysis

    window = energy_window(original, window)
    if getattr(original, "_lazy", False) or getattr(reconstruction, "_lazy", False):
        original, reconstruction, window = _in_memory(original, reconstruction, window, max_shift)
    if shift is None:
        shift = shift_analysis(original, reconstruction, window, max_shift)
    shift = {k: _computed(v) for k, v in shift.items()}
    flagged = None if mask is None else np.asarray(getattr(mask, "data", mask), bool)
    if labels is None:
        labels = label_pixels(original, window, flagged, edge=edge)
    codes = np.asarray(labels.data)
    bulk = codes == LABELS.index("bulk")
    if not bulk.any():
        bulk = np.ones(codes.shape, bool)
    anomalous = codes == LABELS.index("anomalous")
    shape_note = None
    try:
        if anomalous.any():  # the change the anomalous pixels share, not that of vacuum or glitches
            change = change_analysis(original, reconstruction, window, seed=anomalous)
        elif change is None:
            change = change_analysis(original, reconstruction, window)
    except ValueError as err:  # too few channels or spectra for the nuisances: no shape tests
        change, shape_note = None, f"no shape, χ² or background test: {err}"

    energy = original.axes_manager.signal_axes[0].axis
    data = original.data  # read in place: the sums below are in float64
    sl = window.slice
    n_channels = sl.stop - sl.start
    intensity = _relative(data[..., sl].sum(-1, dtype=np.float64) - pedestal * n_channels, bulk)
    onset = labels.metadata.get_item("CVAE.labels.onset_eV")
    if onset is None:
        onset = onset_from_data(energy[sl], data[..., sl].reshape((-1, n_channels)).mean(0, dtype=np.float64))
    try:
        jump, _, background = edge_jump(energy, data, float(onset), return_background=True)
        background = background - pedestal
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(background > 0, (jump + background) / background, np.nan)
        jump_ratio = _relative(ratio, bulk)
    except ValueError:  # the axis is too short around the onset
        jump_ratio = np.full(codes.shape, np.nan)

    z = {k: (np.full(codes.shape, np.nan) if change is None else np.asarray(change[k].data, np.float64))
         for k in ("projection", "chi2", "nuisance")}
    # no shift estimate (at the search limit, no information): the shift test explains nothing
    shift_z = np.where(np.isnan(np.asarray(shift["shift"].data, np.float64)), np.nan,
                       np.asarray(shift["score"].data, np.float64))
    code, p = explain(shift_z, z["projection"], z["chi2"], z["nuisance"])
    from scipy.stats import norm

    evidence = norm.isf(np.clip(p, 1e-300, 1.0))
    evidence[code < 0] = np.nan
    # the explanation map: EXPLANATIONS for anomalous pixels, then the labels' names
    explanation = np.full(codes.shape, -1, np.int8)
    explanation[anomalous] = code[anomalous]
    names = list(EXPLANATIONS) + [n for n in LABELS if n != "anomalous"]
    for name in LABELS:
        if name != "anomalous":
            explanation[codes == LABELS.index(name)] = names.index(name)
    win = window.as_list()
    meta = {"window": win, "onset_eV": float(onset), "pedestal": float(pedestal)}
    if shape_note:
        meta["not_tested"] = shape_note

    def as_map(values, title, quantity, what):
        out = navigation_map(original, values, title)
        out.metadata.set_item("Signal.quantity", quantity)
        out.metadata.set_item("CVAE.description", dict(meta, quantity=what))
        return out

    maps = {
        "shift": shift["shift"], "shift_sigma": shift["sigma"],
        "intensity": as_map(intensity, "Intensity against the bulk", "counts / bulk median",
                            f"counts in {window.label} over the bulk pixels' median"),
        "jump_ratio": as_map(jump_ratio, "Jump ratio against the bulk", "jump ratio / bulk median",
                             f"(jump + background) / background after the onset at {float(onset):.1f} eV, "
                             "over the bulk pixels' median"),
        **({"shape": change["projection"], "change": change["chi2"], "background": change["nuisance"]}
           if change is not None else
           {k: as_map(z[v], f"{k} (not tested)", "z", shape_note)
            for k, v in (("shape", "projection"), ("change", "chi2"), ("background", "nuisance"))}),
        "score": as_map(evidence, "Evidence of the strongest test", "z",
                        "the smallest p-value of the shift, shape, other-change and background tests, "
                        "as a one-sided normal z-value"),
        "explanation": as_map(explanation, "How the pixel differs", "code",
                              "index into CVAE.description.names"),
    }
    maps["explanation"].metadata.set_item("CVAE.description.names", names)
    bulk_spectrum = window_spectrum(original, data[bulk][:, sl].mean(0, dtype=np.float64) - pedestal, window,
                                    "Mean spectrum of the bulk pixels")
    direction = None if change is None else change["direction"]
    return PixelDescription(maps, labels, direction, names=names, window=window,
                            method=maps["shift"].metadata.get_item("CVAE.score.method", ""),
                            bulk_spectrum=bulk_spectrum)


def _computed(sig):
    """A lazy map computed (the maps of a lazy input's analysis), an eager one as it is."""
    if getattr(sig, "_lazy", False):
        sig = sig.deepcopy()
        sig.compute(show_progressbar=False)
    return sig


def _in_memory(original, reconstruction, window, max_shift):
    """Both signals computed over ``window`` and ``max_shift`` around it (what the scores read)."""
    ax = original.axes_manager.signal_axes[0]
    lo = max(float(ax.axis[0]), window[0] - max_shift)
    hi = min(float(ax.axis[-1]) + 0.5 * float(ax.scale), window[1] + max_shift)
    out = []
    for sig in (original, reconstruction):
        sig = sig.isig[lo:hi]
        if sig._lazy:
            sig.compute(show_progressbar=False)
        out.append(sig)
    return out[0], out[1], energy_window(out[0], window)
