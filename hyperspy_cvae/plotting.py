"""Matplotlib figures for score maps, histograms and comparisons."""

from __future__ import annotations

import numpy as np

from .scoring import _as_array as _values

__all__ = ["plot_score_histogram", "plot_method_comparison"]


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


def plot_method_comparison(results, truth=None, path=None, suptitle=None):
    """PCC maps (top) and histograms (bottom) for several methods.

    Parameters
    ----------
    results : dict
        ``{label: (score_map, mask)}`` as returned by ``anomaly_map``.
    truth : Signal2D, optional
        True anomaly mask: outlined on the maps, split in the histograms.
    path : str, optional
        Save the figure there (PNG).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    n = len(results)
    fig, axes = plt.subplots(2, n, figsize=(3.6 * n, 6.6), squeeze=False)
    for k, (label, (score, mask)) in enumerate(results.items()):
        ax = axes[0, k]
        v = _values(score)
        am = score.axes_manager.signal_axes
        xs, ys = am[0].axis, am[1].axis
        sx, sy = am[0].scale, am[1].scale
        extent = [xs[0] - sx / 2, xs[-1] + sx / 2, ys[-1] + sy / 2, ys[0] - sy / 2]
        lo, hi = np.nanpercentile(v, [0.5, 99.5])
        im = ax.imshow(v, cmap="viridis", vmin=lo, vmax=hi, extent=extent)
        if truth is not None:
            ax.contour(xs, ys, _values(truth).astype(float), levels=[0.5], colors="r",
                       linewidths=0.8)
        if mask is not None and _values(mask).any():
            ax.contour(xs, ys, _values(mask).astype(float), levels=[0.5], colors="w",
                       linewidths=0.6, linestyles="--")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel(f"{am[0].name} ({am[0].units})")
        plt.colorbar(im, ax=ax, fraction=0.046)
        plot_score_histogram(score, mask, truth, ax=axes[1, k])
    if suptitle:
        fig.suptitle(suptitle + "   (red: true anomalies, white dashed: flagged)", fontsize=10)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
