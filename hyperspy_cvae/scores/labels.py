"""What the detector saw: every pixel labelled "bulk", "anomalous", "outlier" or "no edge".

A score map says *that* a pixel differs from its reconstruction; on a measured map the first
question is whether it differs because the edge is not there at all (vacuum, a substrate), because
the acquisition failed there (a glitch: far fewer or more counts than its neighbours), or because
the edge itself changed. The labels answer it, in that order of precedence.
"""

from __future__ import annotations

import numpy as np

from .._arrays import compute_all
from ..background import onset_from_data, power_law_background
from .._maps import navigation_map
from .._stats import robust_sd

__all__ = ["with_mask", "LABELS", "label_pixels", "edge_jump", "intensity_outliers"]

#: Label codes of :func:`label_pixels` (the map's values) and their names.
LABELS = ("bulk", "anomalous", "outlier", "no edge")
#: An edge is "absent" where its jump is below this many standard errors ...
JUMP_SIGMAS = 3.0
#: ... and below this fraction of the median jump of the pixels that have one, ...
ABSENT_FRACTION = 0.3
#: ... or below this fraction of it whatever the noise.
JUMP_FRACTION = 0.1
#: A pixel with less than this fraction of the median counts in the window is empty (vacuum, a hole).
EMPTY_FRACTION = 0.2
#: A pixel is an "outlier" where log(its counts / its 3 × 3 neighbours' median) is this many
#: robust standard deviations (of that log-ratio over the map) from 0 ...
OUTLIER_SIGMAS = 5.0
#: ... and at least this far in absolute terms (a 25 % step), so that a very smooth map does not
#: call ordinary noise an outlier.
OUTLIER_MIN_LOG = np.log(1.25)


def edge_jump(energy, spectra, onset, *, return_background=False):
    """Per-spectrum edge jump above the extrapolated background, and its standard error.

    The background is a power law fitted (least squares in log–log) to the 8 eV before
    ``onset - 2`` eV, or a straight line where that window holds values ≤ 0 (dark-subtracted
    data); the jump is the mean of the spectrum minus that background over the 10 eV after
    ``onset + 1`` eV (on a coarse axis: 4 channels each, a channel's gap). Its standard error comes from the channel-to-channel scatter of both
    windows, so it holds for counts and for detector units alike.

    Parameters
    ----------
    energy : array (E,)
    spectra : array (..., E)
    onset : float
        Edge onset in eV.
    return_background : bool
        Also return the extrapolated background, averaged over the post-edge window (the jump
        ratio is ``(jump + background) / background``).

    Returns
    -------
    jump, stderr : arrays (...)
        (and ``background`` with ``return_background``)

    Examples
    --------
    >>> e = np.arange(80.0, 120.0, 0.1)
    >>> rng = np.random.default_rng(0)
    >>> bg = 1e4 * (e / 80.0) ** -4                      # a steep background
    >>> with_edge = rng.poisson(bg + 300 * (e > 100), (3, e.size))
    >>> vacuum = rng.poisson(bg, (3, e.size))
    >>> jump, se = edge_jump(e, np.stack([with_edge, vacuum]), 100.0)
    >>> bool((jump[0] > 3 * se[0]).all()), bool((jump[1] > 3 * se[1]).any())
    (True, False)
    """
    energy = np.asarray(energy, float)
    step = float(np.median(np.diff(energy))) if energy.size > 1 else 1.0
    gap, width = max(2.0, step), max(8.0, 4 * step)          # whole channels on a coarse axis
    pre = (energy >= onset - gap - width) & (energy < onset - gap)
    post = (energy >= onset + gap / 2) & (energy < onset + gap / 2 + width + 2.0)
    if pre.sum() < 3 or post.sum() < 3:
        raise ValueError(f"The edge at {onset:g} eV needs {gap + width:g} eV before and "
                         f"{gap / 2 + width + 2:g} eV after it on the axis.")
    x = np.asarray(spectra, float)
    shape = x.shape[:-1]
    x = x.reshape((-1, x.shape[-1]))
    y_pre, y_post = x[:, pre], x[:, post]
    bg = power_law_background(energy, x, pre, post)
    jump = (y_post - bg).mean(1)
    background = bg.mean(1)

    def var_of_mean(w):
        sd = np.std(np.diff(w, axis=-1), axis=-1) / np.sqrt(2.0)  # insensitive to a slope
        return sd ** 2 / w.shape[-1]

    # the extrapolated background carries the pre-edge mean's error, amplified by the lever arm
    lever = 1.0 + (np.mean(energy[post]) - np.mean(energy[pre])) / np.ptp(energy[pre]) * np.sqrt(3.0)
    se = np.sqrt(var_of_mean(y_post) + lever ** 2 * var_of_mean(y_pre))
    if return_background:
        return jump.reshape(shape), se.reshape(shape), background.reshape(shape)
    return jump.reshape(shape), se.reshape(shape)


def _jump_map(energy, data, onset):
    """:func:`edge_jump` of every spectrum of ``data`` (numpy, or dask block by block, so that a
    lazy map is reduced to two navigation-sized arrays without being loaded)."""
    if not hasattr(data, "dask"):
        return edge_jump(energy, np.asarray(data, float), onset)
    edge_jump(energy, np.ones((1, len(energy))), onset)  # raises now, not inside dask, if too short
    import dask.array as da

    data = data.rechunk({-1: -1})
    both = da.map_blocks(lambda b: np.stack(edge_jump(energy, b, onset), -1), data, dtype=np.float64,
                         chunks=data.chunks[:-1] + ((2,),))
    both = np.asarray(compute_all(both)[0])
    return both[..., 0], both[..., 1]


def intensity_outliers(counts):
    """Pixels whose total counts differ sharply from their 3 × 3 neighbours' median (glitches,
    saturation, a missed dwell), in a map ``counts`` (ny, nx); smooth thickness changes and
    extended regions are not outliers.

    Examples
    --------
    >>> c = np.full((9, 9), 1000.0) * np.linspace(1, 2, 9)   # a thickness ramp: not outliers
    >>> c[4, 4] /= 8                                         # a glitch
    >>> np.argwhere(intensity_outliers(c)).tolist()
    [[4, 4]]
    """
    from scipy.ndimage import median_filter

    c = np.asarray(counts, float)
    ok = c > 0
    logc = np.log(np.where(ok, c, np.nan))
    med = median_filter(np.where(ok, logc, np.nanmedian(logc) if ok.any() else 0.0), size=3, mode="nearest")
    dev = logc - med
    sd = robust_sd(dev[ok]) if ok.sum() > 3 else 0.0
    limit = max(OUTLIER_SIGMAS * sd, OUTLIER_MIN_LOG)
    return ok & (np.abs(np.nan_to_num(dev)) > limit)


def _counts(codes):
    """The number of pixels of each label, by name."""
    return {name: int((codes == i).sum()) for i, name in enumerate(LABELS)}


def label_pixels(original, window, anomalous=None, *, edge=None):
    """Label every pixel "bulk", "anomalous", "outlier" or "no edge" (see :data:`LABELS`).

    * "outlier": its counts in ``window`` differ sharply from its neighbours'
      (:func:`intensity_outliers`): a glitch or saturation;
    * "no edge": not an outlier, and the edge jump (:func:`edge_jump`, averaged over 3 × 3 pixels)
      is below ``JUMP_SIGMAS`` standard errors and ``ABSENT_FRACTION`` of the median jump, or below
      ``JUMP_FRACTION`` of the median jump (a substrate), or the pixel
      holds less than ``EMPTY_FRACTION`` of the median counts (vacuum, a hole); a neighbour of
      such a region joins it where its own jump passes the first test;
    * "anomalous": neither, and flagged in ``anomalous`` (the detector's mask);
    * "bulk": the rest.

    Parameters
    ----------
    original : CVAEEELSSpectrum
        The scored spectrum image (a map; a lazy one is reduced to navigation-sized arrays).
    window : EnergyWindow or (float, float)
        The scoring window in eV.
    anomalous : array of bool (ny, nx) or Signal2D, optional
        The detector's mask.
    edge : str, optional
        Edge name (``"Si_L2,3"``): the jump is measured at the steepest rise of the mean spectrum
        within 8 eV below to 3 eV above its first onset in exspy's database (real energy axes are
        often offset by a few eV), less 1 eV. Without it, at the steepest rise inside ``window``.

    Returns
    -------
    Signal2D of int
        The label codes (indices into :data:`LABELS`) with ``metadata.CVAE.labels``: the names,
        the number of pixels of each, the onset and the rules.

    Examples
    --------
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> f = bifeo3_si((24, 24), substrate_fraction=0.3, random_state=0)   # bottom rows: no Fe
    >>> lab = label_pixels(f, (693.0, 741.0), edge="Fe_L2,3")
    >>> no_edge = lab.data == 3
    >>> lab.metadata.CVAE.labels.counts["no edge"] == int(no_edge.sum())
    True
    >>> bool(no_edge[18:].mean() > 0.8), bool(no_edge[:14].mean() < 0.1)   # substrate, film (dose 150)
    (True, True)
    """
    from .._validation import energy_axis, energy_window
    from ..edges import edge_onsets

    win = energy_window(original, window)
    ax = energy_axis(original)
    energy = ax.axis
    data = original.data
    total = data[..., win.slice].sum(-1)
    if hasattr(data, "dask"):  # reduced chunk by chunk (a reshape would merge the chunks first)
        mean_spectrum = data.mean(axis=tuple(range(data.ndim - 1)))
    else:
        mean_spectrum = data.reshape((-1, data.shape[-1])).mean(0)
    total, mean_spectrum = (np.asarray(a, float) for a in compute_all(total, mean_spectrum))
    if edge:
        listed = min(edge_onsets(str(edge).split("+")[0]).values())
        onset = onset_from_data(energy, mean_spectrum, near=listed)
        onset_source = f"steepest rise of the mean spectrum near the {edge} onset ({listed:g} eV)"
    else:
        onset = onset_from_data(energy[win.slice], mean_spectrum[win.slice])
        onset_source = "steepest rise of the mean spectrum in the window"
    reach = 12.0 + 6 * abs(float(ax.scale))                       # what edge_jump reads, and a margin
    sel = (energy >= onset - reach) & (energy < onset + reach)
    try:
        jump, se = _jump_map(energy[sel], data[..., sel], onset)
    except ValueError as err:  # the axis is too short around the onset: no "no edge" label
        jump, se, onset_source = None, None, f"{onset_source}; not labelled: {err}"
    if jump is None:
        no_edge = np.zeros(total.shape, bool)
    else:  # pooled over 3 × 3 pixels: regions without the edge are extended, single pixels are outliers
        from scipy.ndimage import uniform_filter

        from scipy.ndimage import binary_dilation

        own, own_se = jump, se
        jump = uniform_filter(jump, size=3, mode="nearest")
        se = np.sqrt(uniform_filter(se ** 2, size=3, mode="nearest") / 9.0)
        has = jump > JUMP_SIGMAS * se
        typical = float(np.median(jump[has])) if has.any() else 0.0
        no_edge = (~has & (jump < ABSENT_FRACTION * typical)) | (jump < JUMP_FRACTION * typical)
        # the pooling blurs a region's border: a neighbour of the region joins it where its own
        # jump is not significant and below ABSENT_FRACTION of the typical one
        no_edge |= binary_dilation(no_edge) & ~(own > JUMP_SIGMAS * own_se) & (own < ABSENT_FRACTION * typical)
    empty = total < EMPTY_FRACTION * np.median(total)  # vacuum, a hole: no edge whatever the jump test says
    outlier = intensity_outliers(total)  # an empty pixel among full ones is a glitch, not vacuum
    no_edge = (no_edge | empty) & ~outlier
    flagged = np.zeros(total.shape, bool) if anomalous is None else \
        np.asarray(getattr(anomalous, "data", anomalous), bool)
    codes = np.zeros(total.shape, np.int8)
    codes[flagged] = 1
    codes[no_edge] = 3
    codes[outlier] = 2
    counts = _counts(codes)
    return navigation_map(original, codes, "What the detector saw", metadata={"CVAE.labels": {
        "names": list(LABELS), "counts": counts, "onset_eV": float(onset), "onset_from": onset_source,
        "window": win.as_list(),
        "rules": (f"no edge: 3×3-mean jump < {JUMP_SIGMAS:g} s.e. and < {ABSENT_FRACTION:g} × median jump, or < "
                  f"{JUMP_FRACTION:g} × median jump (and neighbours whose own jump passes the first test), or "
                  f"counts < {EMPTY_FRACTION:g} × median; outlier (first): |log(counts / 3×3 median)| > max({OUTLIER_SIGMAS:g} robust s.d., "
                  f"log 1.25); anomalous: flagged by the detector")}})


def with_mask(labels, anomalous):
    """``labels`` (from :func:`label_pixels`) with "anomalous" taken from the mask ``anomalous``:
    outliers and pixels without an edge keep their labels, the others become "anomalous" where
    flagged and "bulk" elsewhere. The counts in the metadata follow.

    Examples
    --------
    >>> import hyperspy.api as hs
    >>> lab = hs.signals.Signal2D(np.array([[0, 1], [2, 3]], np.int8))
    >>> with_mask(lab, np.array([[True, False], [True, True]])).data.tolist()
    [[1, 0], [2, 3]]
    """
    codes = np.array(labels.data, np.int8)
    free = codes <= 1
    codes[free] = np.asarray(getattr(anomalous, "data", anomalous), bool)[free]
    out = labels._deepcopy_with_new_data(codes)
    if out.metadata.has_item("CVAE.labels"):
        out.metadata.set_item("CVAE.labels.counts", _counts(codes))
    return out
