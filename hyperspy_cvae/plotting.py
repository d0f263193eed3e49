"""Matplotlib figures for score maps, histograms and comparisons."""

from __future__ import annotations

import numpy as np

from .scoring import _as_array as _values

__all__ = ["plot_score_histogram", "plot_method_comparison", "plot_score_map", "outline_mask",
           "example_pixels", "plot_example_spectra", "plot_anomaly_results", "plot_comparison",
           "plot_latent_maps", "plot_phase_map"]


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


# ---------------------------------------------------------------------------
# Anomaly results of one method: map, histogram, example spectra
# ---------------------------------------------------------------------------

_DETECTED, _MISSED, _FALSE, _FLAGGED = "white", "red", "orange", "white"


def _map_geometry(sig):
    """Extent (for imshow) and labels of a Signal2D's calibrated axes."""
    ax_x, ax_y = sig.axes_manager.signal_axes
    sx, sy = ax_x.scale, ax_y.scale
    xs, ys = ax_x.axis, ax_y.axis
    extent = [xs[0] - sx / 2, xs[-1] + sx / 2, ys[-1] + sy / 2, ys[0] - sy / 2]
    label = lambda a: f"{a.name} ({a.units})" if str(a.units) not in ("", "<undefined>") else str(a.name)  # noqa: E731
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
    if hasattr(score, "axes_manager"):
        extent, xl, yl = _map_geometry(score)
    else:
        extent, xl, yl = [-0.5, v.shape[1] - 0.5, v.shape[0] - 0.5, -0.5], "x", "y"
    high = (score.metadata.get_item("CVAE.score.anomalous", "low") == "high"
            if hasattr(score, "metadata") else False)
    lo, hi = np.nanpercentile(v, [0.5, 99.5])
    im = ax.imshow(v, cmap=cmap or ("magma" if high else "viridis"), vmin=lo, vmax=hi,
                   extent=extent, interpolation="nearest")
    handles = []
    m = None if mask is None else _values(mask).astype(bool)
    if truth is not None:
        t = _values(truth).astype(bool)
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


def example_pixels(score, mask=None, truth=None):
    """Array indices ``(normal, anomalous)`` of two representative pixels, and the kind
    of the anomalous one.

    The anomalous example is the most anomalous pixel among the true anomalies
    when ``truth`` is given (``"anomalous (truth)"``), else among the flagged
    pixels (``"flagged"``), else overall (``"lowest score"`` or
    ``"highest score"``). The normal example is the pixel, neither flagged nor
    truly anomalous, whose score is the median of those pixels.

    Examples
    --------
    >>> v = np.array([[0.9, 0.95], [0.2, 0.97]])
    >>> example_pixels(v)
    ((0, 1), (1, 0), 'lowest score')
    """
    v = _values(score).astype(float)
    high = (score.metadata.get_item("CVAE.score.anomalous", "low") == "high"
            if hasattr(score, "metadata") else False)
    a = np.where(np.isfinite(v), v if high else -v, -np.inf)
    m = np.zeros(v.shape, bool) if mask is None else _values(mask).astype(bool)
    t = np.zeros(v.shape, bool) if truth is None else _values(truth).astype(bool)
    if t.any():
        pool, kind = t, "anomalous (truth)"
    elif m.any():
        pool, kind = m, "flagged"
    else:
        pool, kind = np.ones(v.shape, bool), "highest score" if high else "lowest score"
    anomalous = np.unravel_index(np.argmax(np.where(pool, a, -np.inf)), v.shape)
    rest = ~m & ~t & np.isfinite(v)
    rest[anomalous] = False
    vals = np.where(rest, v, np.nan)
    med = np.nanmedian(vals)
    normal = np.unravel_index(np.nanargmin(np.abs(vals - med)), v.shape)
    return tuple(int(i) for i in normal), tuple(int(i) for i in anomalous), kind


def plot_example_spectra(original, reconstruction, score, mask=None, window=None, ax=None,
                         margin=10.0, pixels=None, truth=None):
    """A normal and an anomalous spectrum with their reconstructions in the window.

    Parameters
    ----------
    original, reconstruction : hyperspy Signal1D
        Spectrum image and its reconstruction (the reconstruction may cover
        only part of the energy axis, e.g. a CVAE's ``signal_range``).
    score : Signal2D
        Score map used to pick the examples (see :func:`example_pixels`).
    mask : Signal2D of bool, optional
    window : tuple of float, optional
        Scoring window in eV (shaded); default ``score.metadata.CVAE.score.window``.
    ax : matplotlib axes, optional
    margin : float
        eV shown on each side of the window.
    pixels : tuple, optional
        ``((iy, ix) normal, (iy, ix) anomalous)`` to show instead.
    truth : Signal2D or array of bool, optional
        True anomalies: the anomalous example is then a true anomaly.

    Returns
    -------
    matplotlib axes
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.4))
    if window is None:
        window = score.metadata.get_item("CVAE.score.window", None)
    if pixels is not None:
        (normal, anomalous), kind = pixels, "anomalous"
    else:
        normal, anomalous, kind = example_pixels(score, mask, truth)
    v = _values(score)
    eo, er = original.axes_manager.signal_axes[0], reconstruction.axes_manager.signal_axes[0]
    lo = max(float(window[0]) - margin, float(er.axis[0])) if window is not None else float(er.axis[0])
    hi = min(float(window[1]) + margin, float(er.axis[-1])) if window is not None else float(er.axis[-1])
    so = (eo.axis >= lo) & (eo.axis <= hi)
    sr = (er.axis >= lo) & (er.axis <= hi)
    peak = 0.0
    skind = score.metadata.get_item("CVAE.score.kind", "score") if hasattr(score, "metadata") else "score"
    skind = "PCC" if skind == "pcc" else skind
    for (iy, ix), col, lab in ((normal, "tab:blue", "normal"), (anomalous, "tab:red", kind)):
        spec = _values(original.inav[ix, iy])
        rec = _values(reconstruction.inav[ix, iy])
        ax.plot(eo.axis[so], spec[so], color=col, lw=0.7, alpha=0.55,
                label=f"{lab} [{iy},{ix}] {skind} {v[iy, ix]:.3f}")
        ax.plot(er.axis[sr], rec[sr], color=col, lw=1.6, label="its reconstruction")
        peak = max(peak, float(np.nanmax(spec[so])))
    if window is not None:
        ax.axvspan(float(window[0]), float(window[1]), color="0.85", zorder=0, lw=0)
    ax.set_xlim(lo, hi)
    ax.set_ylim(0, peak * 1.35)
    ax.set_xlabel(f"{eo.name} ({eo.units})")
    ax.set_ylabel(str(original.metadata.get_item("Signal.quantity", "Intensity")))
    ax.legend(fontsize=6.5, loc="upper left", ncol=2, frameon=False)
    method = reconstruction.metadata.get_item("CVAE.reconstruction.method", "reconstruction")
    ax.set_title(f"Example spectra, {method}", fontsize=9)
    return ax


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


def _parse_method(m, n_components):
    if isinstance(m, (tuple, list)):
        name, k = m[0], int(m[1])
    else:
        name = str(m).lower().replace(" ", "")
        k = int(n_components)
        if name.startswith("pca") and name[3:].strip("()"):
            k = int(name[3:].strip("()"))
            name = "pca"
    if name not in ("cvae", "pca"):
        raise ValueError(f"methods must be 'cvae', 'pca', 'pca(k)' or ('pca', k); got {m!r}.")
    return name, k


def plot_comparison(s, methods=("cvae", "pca"), window=(690.0, 730.0), truth=None, n_components=3,
                    cvae=None, threshold="otsu", path=None, suptitle=None, return_results=False,
                    **decomposition_kwargs):
    """CVAE and PCA side by side (the paper's Fig. 1/3): one row per method.

    Each row holds the PCC map with flagged (and, with ``truth``, missed)
    pixels outlined, the PCC histogram with the Otsu threshold and the
    unimodality verdict, and a normal and an anomalous spectrum with the
    method's reconstruction. The scores are exactly those of
    ``s.anomaly_map(method, window, score="pcc")``: the reconstruction
    (``s.cvae_decomposition()`` or HyperSpy ``decomposition()`` +
    ``get_decomposition_model(k)``), :func:`~hyperspy_cvae.scoring.pcc_map`
    and :func:`~hyperspy_cvae.scoring.threshold_anomalies`.

    Parameters
    ----------
    s : CVAEEELSSpectrum
        The spectrum image. ``"cvae"`` needs a fitted model (``s.fit_cvae``,
        ``s.load_cvae`` or ``cvae=``).
    methods : sequence
        ``"cvae"``, ``"pca"`` (``n_components``), ``"pca(k)"`` or ``("pca", k)``.
    window : tuple of float
        Scoring window in eV.
    truth : Signal2D or array of bool, optional
        True anomalies; default ``s.metadata.CVAE.injection.mask`` if present.
        Pass ``False`` to ignore it.
    n_components : int
        PCA components for ``"pca"``.
    cvae : hyperspy_cvae.CVAE, optional
        Model for ``"cvae"`` (default ``s.cvae``).
    threshold : "otsu", float or None
        As in ``anomaly_map``.
    path : str, optional
        Save the figure (PNG).
    suptitle : str, optional
    return_results : bool
        Also return ``{label: (pcc, mask, reconstruction)}``.
    **decomposition_kwargs
        Passed to HyperSpy's ``decomposition()`` for PCA rows.

    Returns
    -------
    matplotlib.figure.Figure, or (Figure, dict) with ``return_results``

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from hyperspy_cvae.data import bifeo3_si
    >>> s = bifeo3_si((48, 48), random_state=0).inject_shift(4.0, n_clusters=2, random_state=1)
    >>> fig = plot_comparison(s, methods=("pca(3)", "pca(5)"))
    >>> len(fig.axes) >= 6
    True
    """
    import matplotlib.pyplot as plt

    from .baselines import pca_reconstruction
    from .scoring import pcc_map, threshold_anomalies

    if truth is None:
        truth = s.metadata.get_item("CVAE.injection.mask", None)
    elif truth is False:
        truth = None
    parsed = [_parse_method(m, n_components) for m in methods]
    fig, axes = plt.subplots(len(parsed), 3, figsize=(13.5, 3.9 * len(parsed)), squeeze=False,
                             gridspec_kw={"width_ratios": [1.05, 1, 1.15]})
    results = {}
    for row, (name, k) in enumerate(parsed):
        if name == "cvae":
            model = cvae if cvae is not None else getattr(s, "cvae", None)
            if model is None:
                raise RuntimeError("No fitted CVAE: call `s.fit_cvae(...)` or `s.load_cvae(path)` "
                                   "first, or pass `cvae=`.")
            rec = s.cvae_decomposition(cvae=model)
            original = s._crop_to_model(model)
        else:
            rec = pca_reconstruction(s, k, **decomposition_kwargs)
            original = s
        pcc = pcc_map(original, rec, window)
        if pcc._lazy:
            pcc.compute(show_progressbar=False)
        mask = threshold_anomalies(pcc, threshold) if threshold is not None else None
        label = rec.metadata.CVAE.reconstruction.method
        for sig in (pcc, mask):
            if sig is not None:
                sig.metadata.set_item("CVAE.method", label)
                sig.metadata.set_item("CVAE.source", s.metadata.General.title)
        plot_anomaly_results(s, rec, pcc, mask, truth, axes=axes[row], label=label)
        results[label] = (pcc, mask, rec)
    legend = "white: detected, red: missed, orange: false alarm" if truth is not None else "white: flagged"
    fig.suptitle((suptitle + "   " if suptitle else "") + f"({legend})", fontsize=10)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return (fig, results) if return_results else fig


# ---------------------------------------------------------------------------
# Latent space figures
# ---------------------------------------------------------------------------

def plot_latent_maps(latent_map, n=8, axes=None, path=None):
    """The first ``n`` latent-mean images on the shard grid in one figure.

    For browsing all of them interactively use ``latent_map.plot()`` (a
    HyperSpy Signal2D stack with a navigator over the latent dimension).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from .latent import _latent_array

    lat = _latent_array(latent_map)
    # show the most varying dimensions first: the informative ones
    order = np.argsort(-lat.reshape(len(lat), -1).std(1))[:n]
    ncol = min(4, len(order))
    nrow = int(np.ceil(len(order) / ncol))
    fig, axs = plt.subplots(nrow, ncol, figsize=(2.6 * ncol, 2.4 * nrow), squeeze=False)
    ax_x, ax_y = latent_map.axes_manager.signal_axes
    ext = [ax_x.axis[0] - ax_x.scale / 2, ax_x.axis[-1] + ax_x.scale / 2,
           ax_y.axis[-1] + ax_y.scale / 2, ax_y.axis[0] - ax_y.scale / 2]
    for a, i in zip(axs.ravel(), order):
        im = a.imshow(lat[i], cmap="viridis", extent=ext, interpolation="nearest")
        a.set_title(f"latent {i} (std {lat[i].std():.2g})", fontsize=8)
        a.tick_params(labelsize=6)
        plt.colorbar(im, ax=a, fraction=0.046)
    for a in axs.ravel()[len(order):]:
        a.axis("off")
    fig.suptitle("CVAE latent means on the shard grid (most varying first)", fontsize=10)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def plot_phase_map(labels, centres=None, signal=None, axes=None, path=None):
    """Latent phase map and the decoded cluster-centre spectra, in matching colours.

    Parameters
    ----------
    labels : Signal2D of int
        From :func:`hyperspy_cvae.latent.latent_phase_map`.
    centres : Signal1D, optional
        Decoded centres (:func:`hyperspy_cvae.latent.decode_latent`), one
        spectrum per cluster.
    signal : hyperspy Signal1D, optional
        The spectrum image: the measured mean spectrum of each phase is drawn
        (dashed) next to its decoded centre, a check of what the decoder
        learnt.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    lab = _values(labels).astype(int)
    k = int(lab.max()) + 1
    colours = plt.get_cmap("tab10")(np.arange(max(k, 1)) % 10)
    if axes is None:
        ncols = 2 if centres is not None else 1
        fig, axes = plt.subplots(1, ncols, figsize=(4.6 * ncols, 3.8), squeeze=False)
        axes = axes[0]
    fig = axes[0].figure
    extent, xl, yl = _map_geometry(labels)
    axes[0].imshow(lab, cmap=ListedColormap(colours), vmin=-0.5, vmax=k - 0.5, extent=extent,
                   interpolation="nearest")
    info = labels.metadata.get_item("CVAE.phase_map", None)
    sil = ""
    if info is not None and len(info.get_item("silhouette_k", [])):
        best = dict(zip(info.silhouette_k, info.silhouette)).get(k)
        sil = f", silhouette {best:.2f}" if best is not None else " (no K with silhouette > 0.25)"
    axes[0].set_title(f"Latent phase map: K = {k}{sil}", fontsize=9)
    axes[0].set_xlabel(xl)
    axes[0].set_ylabel(yl)
    if centres is not None:
        e = centres.axes_manager.signal_axes[0]
        data = _values(centres).reshape(-1, e.size)
        for i, spec in enumerate(data):
            frac = float((lab == i).mean())
            axes[1].plot(e.axis, spec, color=colours[i], lw=1.4, label=f"cluster {i} ({frac:.0%} of pixels)")
            if signal is not None and (lab == i).any():
                sub = signal.isig[float(e.axis[0]):float(e.axis[-1] + e.scale)]
                d = sub.data[lab == i]
                d = np.asarray(d.compute() if hasattr(d, "compute") else d).mean(0)
                axes[1].plot(sub.axes_manager.signal_axes[0].axis, d, color=colours[i], lw=0.8, ls="--",
                             label=f"cluster {i}, measured mean")
        axes[1].set_xlabel(f"{e.name} ({e.units})")
        axes[1].set_ylabel(str(centres.metadata.get_item("Signal.quantity", "Intensity")))
        axes[1].set_title("Decoded cluster centres" + (" (solid) and measured means (dashed)" if signal is not None else ""), fontsize=9)
        axes[1].legend(fontsize=7, frameon=False)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
