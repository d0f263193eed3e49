"""One method's anomaly results at a glance, and several methods side by side. Draws what
``anomaly_map`` returned; computes nothing."""

from __future__ import annotations

import numpy as np

from .._arrays import values_of as _values
from .maps import plot_score_histogram, plot_score_map
from .spectra import plot_example_spectra

__all__ = ["plot_anomaly_results", "plot_comparison", "plot_method_comparison", "plot_labels"]


def _check_maps(score, mask, truth):
    """Clear errors for a mask or truth that cannot be drawn on the score map."""
    shape = _values(score).shape
    if mask is not None and not hasattr(mask, "metadata"):
        raise TypeError(f"`mask` must be the anomaly mask returned by anomaly_map (a Signal2D with "
                        f"metadata.CVAE.threshold), got {type(mask).__name__}.")
    for name, m in (("mask", mask), ("truth", truth)):
        if m is not None and _values(m).shape != shape:
            raise ValueError(f"`{name}` has shape {_values(m).shape}, the score map {shape} "
                             "(array order y, x).")


def plot_anomaly_results(original, reconstruction, score, mask=None, truth=None, axes=None, path=None,
                         label=None):
    """One method's results at a glance: map, histogram, example spectra.

    Left: the score map with flagged pixels outlined (with ``truth``: detected
    in white, missed in red, false alarms in orange). Middle: the score
    histogram on a log scale with the Otsu threshold and the unimodality
    verdict. Right: a normal and the most anomalous spectrum with their
    reconstructions around the scoring window.

    Parameters
    ----------
    original, reconstruction : hyperspy Signal1D
        The scored spectrum image and its reconstruction.
    score, mask : Signal2D
        As returned by ``s.anomaly_map(...)``.
    truth : Signal2D or array of bool, optional
        True anomalies (e.g. from ``inject_shift(..., return_mask=True)``).
    axes : sequence of 3 matplotlib axes, optional
        Draw there (for composite figures) instead of a new figure.
    path : str, optional
        Save the figure (PNG).
    label : str, optional
        Method label for the map title (default: from the metadata).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    _check_maps(score, mask, truth)
    if axes is None:
        fig, axes = plt.subplots(1, 3, figsize=(13.5, 3.9), gridspec_kw={"width_ratios": [1.05, 1, 1.15]})
    else:
        fig = axes[0].figure
    label = label or reconstruction.metadata.get_item("CVAE.reconstruction.method", "")
    window = score.metadata.get_item("CVAE.score.window", None)
    kind = score.metadata.get_item("CVAE.score.kind", "score")
    wtxt = f" {window[0]:g}–{window[1]:g} eV" if window is not None else ""
    plot_score_map(score, mask, truth, ax=axes[0],
                   title=f"{label}: {kind.upper() if kind == 'pcc' else kind}{wtxt}")
    plot_score_histogram(score, mask, truth, ax=axes[1])
    plot_example_spectra(original, reconstruction, score, mask, window, ax=axes[2], truth=truth)
    if path is not None:
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    return fig


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


def plot_comparison(results, truth=None, path=None, suptitle=None):
    """Several methods side by side (the paper's Fig. 1/3): one row per method.

    Each row is :func:`plot_anomaly_results` of one
    :class:`~hyperspy_cvae.results.AnomalyResult`: the score map with flagged
    (and, with ``truth``, missed) pixels outlined, the histogram with the
    threshold and the unimodality verdict, and a normal and an anomalous
    spectrum with the method's reconstruction.

    Parameters
    ----------
    results : dict or sequence of AnomalyResult
        E.g. from :meth:`~hyperspy_cvae.CVAEEELSSpectrum.compare_methods`
        (``{label: result}``).
    truth : Signal2D or array of bool, optional
        True anomalies.
    path : str, optional
        Save the figure (PNG).
    suptitle : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> s = bifeo3_si((48, 48), random_state=0).inject_shift(4.0, n_clusters=2, random_state=1)
    >>> results = s.compare_methods(("pca(3)", "pca(5)"))
    >>> fig = plot_comparison(results, truth=s.metadata.CVAE.injection.mask)
    >>> len(fig.axes) >= 6
    True
    """
    import matplotlib.pyplot as plt

    rows = list(results.values()) if isinstance(results, dict) else list(results)
    if not rows:
        raise ValueError("`results` is empty: nothing to compare.")
    fig, axes = plt.subplots(len(rows), 3, figsize=(13.5, 3.9 * len(rows)), squeeze=False,
                             gridspec_kw={"width_ratios": [1.05, 1, 1.15]})
    for row, res in enumerate(rows):
        res.plot(truth=truth, axes=axes[row])
    legend = "white: detected, red: missed, orange: false alarm" if truth is not None else "white: flagged"
    fig.suptitle((suptitle + "   " if suptitle else "") + f"({legend})", fontsize=10)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


#: Colours of the labels "bulk", "anomalous", "outlier", "no edge".
LABEL_COLOURS = ("#d9d9d9", "#d62728", "#ff7f0e", "#1f77b4")


def plot_labels(labels, original, reconstruction=None, window=None, path=None, title=None):
    """What the detector saw: the label map and, for each label present, the mean spectrum of its
    pixels (with the mean reconstruction, dashed) in the scoring window.

    Parameters
    ----------
    labels : Signal2D (or Signal1D for a line scan) of int
        From :func:`hyperspy_cvae.scores.label_pixels` (``result.labels``).
    original, reconstruction : hyperspy Signal1D
        The scored spectra and their reconstruction (optional).
    window : EnergyWindow or (float, float), optional
        Energy range of the spectra panel (default: the one in the labels' metadata).
    path : str, optional
        Also save the figure (PNG).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    from .._arrays import to_numpy
    from ..scores.labels import LABELS

    codes = np.asarray(labels.data)
    win = list(window) if window is not None else list(labels.metadata.CVAE.labels.window)
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"width_ratios": [1, 1.4]})
    cmap = ListedColormap(LABEL_COLOURS)
    if codes.ndim == 1:
        a0.imshow(codes[None], cmap=cmap, vmin=-0.5, vmax=3.5, aspect="auto", interpolation="nearest")
        a0.set_yticks([])
        a0.set_xlabel("pixel along the line")
    else:
        a0.imshow(codes, cmap=cmap, vmin=-0.5, vmax=3.5, interpolation="nearest")
        a0.set_xlabel("x (px)")
        a0.set_ylabel("y (px)")
    counts = {name: int((codes == i).sum()) for i, name in enumerate(LABELS)}
    a0.legend(handles=[Patch(color=c, label=f"{n} ({counts[n]})") for n, c in zip(LABELS, LABEL_COLOURS)],
              fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    a0.set_title("label map", fontsize=9)
    ax_e = original.axes_manager.signal_axes[0]
    sel = (ax_e.axis >= win[0]) & (ax_e.axis < win[1])
    data = to_numpy(original.data).reshape((-1, ax_e.size))
    rec = None if reconstruction is None else to_numpy(reconstruction.data).reshape((-1, reconstruction.data.shape[-1]))
    flat = codes.ravel()
    for i, name in enumerate(LABELS):
        if counts[name]:
            a1.plot(ax_e.axis[sel], data[flat == i][:, sel].mean(0), color=LABEL_COLOURS[i] if i else "k",
                    lw=1.2, label=f"{name} (mean of {counts[name]})")
            if rec is not None and rec.shape[-1] == ax_e.size:
                a1.plot(ax_e.axis[sel], rec[flat == i][:, sel].mean(0), ls="--", lw=0.9,
                        color=LABEL_COLOURS[i] if i else "k")
    a1.set_xlabel(f"energy loss ({ax_e.units})")
    a1.set_ylabel("mean intensity")
    a1.set_title("mean spectra per label (dashed: reconstruction)", fontsize=9)
    a1.legend(fontsize=7)
    fig.suptitle(title or "What the detector saw", fontsize=10)
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=110)
    return fig
