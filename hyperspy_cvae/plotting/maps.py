"""Score maps and their histograms, with flagged, missed and false pixels outlined."""

from __future__ import annotations

import numpy as np

from .._arrays import values_of as _values

__all__ = ["plot_score_map", "plot_score_histogram", "outline_mask"]

_DETECTED, _MISSED, _FALSE, _FLAGGED = "white", "red", "orange", "white"


def _map_geometry(sig):
    """Extent (for imshow) and labels of a Signal2D's calibrated axes (a line scan's profile, a
    Signal1D, is drawn as one row)."""
    label = lambda a: f"{a.name} ({a.units})" if str(a.units) not in ("", "<undefined>") else str(a.name)  # noqa: E731
    if len(sig.axes_manager.signal_axes) == 1:
        (ax_x,) = sig.axes_manager.signal_axes
        xs, sx = ax_x.axis, ax_x.scale
        return [xs[0] - sx / 2, xs[-1] + sx / 2, 0.5, -0.5], label(ax_x), ""
    ax_x, ax_y = sig.axes_manager.signal_axes
    sx, sy = ax_x.scale, ax_y.scale
    xs, ys = ax_x.axis, ax_y.axis
    extent = [xs[0] - sx / 2, xs[-1] + sx / 2, ys[-1] + sy / 2, ys[0] - sy / 2]
    return extent, label(ax_x), label(ax_y)


def outline_mask(ax, mask, extent, color="white", lw=1.0, ls="-"):
    """Draw pixel-exact outlines of the True regions of a 2D boolean array.

    ``extent`` is the imshow extent ``[left, right, bottom, top]`` of the map
    (top > bottom for an image with y downwards is fine). Returns the
    ``LineCollection`` (or None for an empty mask).
    """
    from matplotlib.collections import LineCollection

    m = np.asarray(mask, bool)
    if not m.any():
        return None
    ny, nx = m.shape
    x0, x1, yb, yt = extent
    dx, dy = (x1 - x0) / nx, (yb - yt) / ny  # yt is the first row's edge
    p = np.pad(m, 1)
    segs = []
    # horizontal edges between rows i-1 and i
    hy, hx = np.nonzero(p[1:, 1:-1] != p[:-1, 1:-1])
    segs += [((x0 + j * dx, yt + i * dy), (x0 + (j + 1) * dx, yt + i * dy)) for i, j in zip(hy, hx)]
    vy, vx = np.nonzero(p[1:-1, 1:] != p[1:-1, :-1])
    segs += [((x0 + j * dx, yt + i * dy), (x0 + j * dx, yt + (i + 1) * dy)) for i, j in zip(vy, vx)]
    lc = LineCollection(segs, colors=color, linewidths=lw, linestyles=ls)
    ax.add_collection(lc)
    return lc


def plot_score_map(score, mask=None, truth=None, ax=None, cmap=None, colorbar=True, title=None):
    """Score map with flagged pixels outlined (pixel-exact).

    Without ``truth`` the flagged pixels are outlined in white. With ``truth``:
    detected anomalies (flagged and true) in white, missed ones (true, not
    flagged) in red, false alarms (flagged, not true) in orange.

    Parameters
    ----------
    score : Signal2D
        Score map from ``anomaly_map`` (or any map with ``metadata.CVAE.score``).
    mask, truth : Signal2D or array of bool, optional
        Flagged pixels and true anomalies.
    ax : matplotlib axes, optional
    cmap : str, optional
        Default ``"viridis"`` (low = dark = anomalous for PCC) or
        ``"magma"`` for high-is-anomalous scores.
    colorbar : bool
    title : str, optional
        Default: the score's title.

    Returns
    -------
    matplotlib axes

    Examples
    --------
    >>> import hyperspy.api as hs
    >>> pcc = hs.signals.Signal2D(np.ones((8, 8)))
    >>> ax = plot_score_map(pcc, mask=np.eye(8, dtype=bool))
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 3.6))
    v = _values(score).astype(float)
    line = v.ndim == 1
    v = v[None] if line else v
    if hasattr(score, "axes_manager"):
        extent, xl, yl = _map_geometry(score)
    else:
        extent, xl, yl = [-0.5, v.shape[1] - 0.5, v.shape[0] - 0.5, -0.5], "x", "y"
    high = (score.metadata.get_item("CVAE.score.anomalous", "low") == "high"
            if hasattr(score, "metadata") else False)
    lo, hi = np.nanpercentile(v, [0.5, 99.5])
    im = ax.imshow(v, cmap=cmap or ("magma" if high else "viridis"), vmin=lo, vmax=hi,
                   extent=extent, interpolation="nearest", aspect="auto" if line else None)
    if line:
        ax.set_yticks([])
    handles = []
    m = None if mask is None else _values(mask).astype(bool).reshape(v.shape)
    if truth is not None:
        t = _values(truth).astype(bool).reshape(v.shape)
        m = np.zeros_like(t) if m is None else m
        for sel, col, lab in ((m & t, _DETECTED, "detected"), (t & ~m, _MISSED, "missed"),
                              (m & ~t, _FALSE, "false alarm")):
            if outline_mask(ax, sel, extent, col, lw=1.0) is not None:
                handles.append(Line2D([], [], color=col, label=f"{lab} ({int(sel.sum())})"))
    elif m is not None and outline_mask(ax, m, extent, _FLAGGED, lw=1.0) is not None:
        handles.append(Line2D([], [], color=_FLAGGED, label=f"flagged ({int(m.sum())})"))
    if handles:
        leg = ax.legend(handles=handles, fontsize=7, loc="lower right", framealpha=0.6,
                        facecolor="0.3", labelcolor="white")
        leg.get_frame().set_edgecolor("none")
    ax.set_xlabel(xl)
    ax.set_ylabel(yl)
    ax.set_title(title or (score.metadata.General.title if hasattr(score, "metadata") else "score"),
                 fontsize=9)
    if colorbar:
        kind = score.metadata.get_item("CVAE.score.kind", "score") if hasattr(score, "metadata") else "score"
        cb = plt.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
        cb.set_label(kind.upper() if kind == "pcc" else kind, fontsize=8)
    return ax


def plot_score_histogram(score, mask=None, truth=None, ax=None, bins=200):
    """Histogram of a score map (log counts) with the threshold and verdict.

    With ``truth``, normal and anomalous pixels are shown in two colours.
    Returns the matplotlib axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.2))
    v = _values(score).ravel()
    edges = np.histogram_bin_edges(v[np.isfinite(v)], bins=bins)
    if truth is not None:
        t = _values(truth).ravel().astype(bool)
        ax.hist(v[~t], bins=edges, log=True, color="tab:blue", alpha=0.8, label="normal")
        ax.hist(v[t], bins=edges, log=True, color="tab:red", alpha=0.8, label="anomalous (truth)")
        ax.legend(fontsize=7, loc="upper left")
    else:
        ax.hist(v, bins=edges, log=True, color="tab:blue")
    if mask is not None:
        thr = mask.metadata.get_item("CVAE.threshold.threshold")
        decision = mask.metadata.get_item("CVAE.threshold.decision", "")
        ax.axvline(thr, color="k", ls="--", lw=1)
        ax.set_title(f"Otsu {thr:.3f} — {decision}", fontsize=8)
    kind = score.metadata.get_item("CVAE.score.kind", "score")
    ax.set_xlabel(kind.upper() if kind == "pcc" else kind)
    ax.set_ylabel("pixels")
    return ax
