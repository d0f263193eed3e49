"""Latent-space figures: latent maps, phase maps, the twin-shard similarity matrix and the latent
view (a 2D embedding of the shards' latent means, click a point for its spectra)."""

from __future__ import annotations

import numpy as np

from .._arrays import to_numpy, values_of as _values
from ..latent.grid import latent_array
from .maps import _map_geometry

__all__ = ["plot_latent_maps", "plot_phase_map", "plot_latent_similarity", "plot_latent_embedding"]


def plot_latent_maps(latent_map, n=8, axes=None, path=None):
    """The first ``n`` latent-mean images on the shard grid in one figure.

    For browsing all of them interactively use ``latent_map.plot()`` (a
    HyperSpy Signal2D stack with a navigator over the latent dimension).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    lat = latent_array(latent_map)
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


def plot_phase_map(labels, centres=None, means=None, axes=None, path=None):
    """Latent phase map and the decoded cluster-centre spectra, in matching colours.

    Parameters
    ----------
    labels : Signal2D of int
        From :func:`hyperspy_cvae.latent.latent_phase_map`.
    centres : Signal1D, optional
        Decoded centres (:func:`hyperspy_cvae.latent.decode_latent`), one
        spectrum per cluster.
    means : Signal1D, optional
        The measured mean spectrum of each phase
        (:func:`hyperspy_cvae.latent.phase_means`), drawn dashed next to its
        decoded centre: a check of what the decoder learnt.

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
            if means is not None and np.isfinite(_values(means)[i]).all():
                em = means.axes_manager.signal_axes[0]
                axes[1].plot(em.axis, _values(means)[i], color=colours[i], lw=0.8, ls="--",
                             label=f"cluster {i}, measured mean")
        axes[1].set_xlabel(f"{e.name} ({e.units})")
        axes[1].set_ylabel(str(centres.metadata.get_item("Signal.quantity", "Intensity")))
        axes[1].set_title("Decoded cluster centres" + (" (solid) and measured means (dashed)" if means is not None else ""), fontsize=9)
        axes[1].legend(fontsize=7, frameon=False)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def plot_latent_similarity(similarity, ax=None, title="Latent cosine similarity", vmin="auto"):
    """Heatmap of a :func:`latent_pair_similarity` matrix; returns the axes.

    ``vmin="auto"`` uses -1 unless every entry is positive, in which case the
    colour scale starts at the smallest entry: when all latent means point the
    same way (e.g. a common offset) the contrast between pairs stays visible.
    The title gives the mean of the diagonal (twins) and off the diagonal.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4))
    sim = np.asarray(similarity)
    if vmin == "auto":
        vmin = -1.0 if sim.min() <= 0 else float(sim.min())
    im = ax.imshow(sim, vmin=vmin, vmax=1, cmap="RdBu_r" if vmin < 0 else "viridis")
    ax.set_xlabel("anomalous shard")
    ax.set_ylabel("clean shard")
    diag = float(np.mean(np.diag(sim)))
    off = float(sim[~np.eye(len(sim), dtype=bool)].mean()) if len(sim) > 1 else float("nan")
    ax.set_title(f"{title}\nmean diagonal {diag:.4f}, off-diagonal {off:.4f}", fontsize=9)
    plt.colorbar(im, ax=ax, fraction=0.046)
    return ax


def _on_shards(values, embedding, name):
    """Values on the shard grid of ``embedding``, flattened in its point order."""
    v = _values(values)
    if v.size != len(embedding.coords):
        raise ValueError(f"`{name}` has shape {v.shape}; expected the shard grid {tuple(embedding.grid_shape)} "
                         "(phase labels with on='shards'; a pixel mask through "
                         "hyperspy_cvae.latent.shard_flags).")
    return v.reshape(-1)


def _plot_shard_spectra(signal, row, col, shard_size, stride):
    """The spectra of shard ``(row, col)`` (thin grey) and their mean (black), in one reused figure."""
    import matplotlib.pyplot as plt

    y0, x0 = int(row) * int(stride), int(col) * int(stride)
    e = signal.axes_manager.signal_axes[0]
    spec = to_numpy(signal.data[y0:y0 + shard_size, x0:x0 + shard_size], np.float64).reshape(-1, e.size)
    fig = plt.figure(num="CVAE shard spectra", figsize=(5.5, 3.6))
    fig.clf()
    ax = fig.add_subplot()
    ax.plot(e.axis, spec.T, color="0.65", lw=0.4, alpha=0.5)
    ax.plot(e.axis, spec.mean(0), color="k", lw=1.5, label=f"mean of the {len(spec)} spectra")
    ax.set_xlabel(f"{e.name} ({e.units})")
    ax.set_ylabel(str(signal.metadata.get_item("Signal.quantity", "Intensity")))
    ax.set_title(f"Shard ({int(row)}, {int(col)}): pixels y {y0}–{y0 + shard_size - 1}, "
                 f"x {x0}–{x0 + shard_size - 1}", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    fig.canvas.draw_idle()
    fig.show(warn=False)
    return fig


def plot_latent_embedding(embedding, colour_by=None, labels=None, signal=None, shard_size=None,
                          stride=None, path=None):
    """The latent view: one point per shard at its 2D embedded latent mean.

    Coloured by phase label (``labels``, left panel) and/or by a per-shard
    flag or value (``colour_by``, right panel); one panel per colouring given.
    With ``signal``, clicking a point (interactive backends) opens or updates
    the figure "CVAE shard spectra": the shard's spectra
    ``signal.data[y0:y0 + shard_size, x0:x0 + shard_size]`` (``y0 = row·stride``,
    ``x0 = col·stride``) and their mean; the point is circled.

    Parameters
    ----------
    embedding : LatentEmbedding
        From :func:`hyperspy_cvae.latent.latent_embedding`.
    colour_by : array or Signal2D on the shard grid, optional
        Bool flags (e.g. :func:`hyperspy_cvae.latent.shard_flags` of an anomaly
        mask: flagged shards in red) or numbers (colour scale).
    labels : array or Signal2D of int on the shard grid, optional
        Phase labels, e.g. ``latent_phase_map(latent_map, on="shards")[0]``
        (colours as in :func:`plot_phase_map`).
    signal : hyperspy Signal1D, optional
        The spectrum image the latent map was computed from (enables clicking).
    shard_size, stride : int, optional
        Shard grid; default the embedding's (from the latent map's metadata).
    path : str or pathlib.Path, optional
        Write the figure there.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import hyperspy.api as hs
    >>> from hyperspy_cvae.latent import latent_embedding
    >>> emb = latent_embedding(hs.signals.Signal2D(np.random.default_rng(0).normal(size=(8, 5, 6))))
    >>> fig = plot_latent_embedding(emb, colour_by=np.eye(5, 6, dtype=bool), labels=np.zeros((5, 6), int))
    >>> len(fig.axes)
    2
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    xy = np.asarray(embedding.coords)
    panels = [("phase", _on_shards(labels, embedding, "labels").astype(int))] if labels is not None else []
    if colour_by is not None:
        panels.append(("flag", _on_shards(colour_by, embedding, "colour_by")))
    shard_size = shard_size if shard_size is not None else embedding.shard_size
    stride = stride if stride is not None else embedding.stride
    if signal is not None and (shard_size is None or stride is None):
        raise ValueError("Showing a shard's spectra needs `shard_size` and `stride` (the latent map "
                         "had no `metadata.CVAE.latent`).")
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(4.6 * max(1, len(panels)), 4.0), squeeze=False)
    axes = axes[0]
    evr = embedding.explained_variance_ratio
    names = ([f"latent PC {i + 1} ({100 * evr[i]:.1f} %)" for i in range(2)] if evr is not None
             else [f"{embedding.method.upper()} {i + 1}" for i in range(2)])
    for ax, (kind, v) in zip(axes, panels or [(None, None)]):
        kw = dict(s=14, picker=True, pickradius=4, linewidths=0)
        if kind == "phase":
            colours = plt.get_cmap("tab10")(np.arange(v.max() + 1) % 10)
            ax.scatter(xy[:, 0], xy[:, 1], c=colours[v], **kw)
            handles = [Line2D([], [], ls="", marker="o", color=colours[k],
                              label=f"phase {k} ({(v == k).sum()})") for k in np.unique(v)]
            ax.legend(handles=handles, fontsize=7, frameon=False, title="shards", title_fontsize=7)
        elif kind == "flag" and v.dtype == bool:
            ax.scatter(xy[:, 0], xy[:, 1], c=np.where(v, "tab:red", "0.6"), **dict(kw, s=np.where(v, 24, 10)))
            handles = [Line2D([], [], ls="", marker="o", color=c, label=f"{name} ({n})") for c, name, n in
                       (("tab:red", "flagged", v.sum()), ("0.6", "not flagged", (~v).sum()))]
            ax.legend(handles=handles, fontsize=7, frameon=False, title="shards", title_fontsize=7)
        elif kind == "flag":
            plt.colorbar(ax.scatter(xy[:, 0], xy[:, 1], c=v.astype(float), cmap="viridis", **kw), ax=ax,
                         fraction=0.046)
        else:
            ax.scatter(xy[:, 0], xy[:, 1], color="tab:blue", **kw)
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
        ax.set_title({"phase": "coloured by phase", "flag": "coloured by flag"}.get(kind, "latent means"),
                     fontsize=9)
    click = ", click a point for its spectra" if signal is not None else ""
    fig.suptitle(f"Latent view ({embedding.method.upper()}) of {len(xy)} shards{click}", fontsize=10)
    marks = [ax.plot([], [], ls="", marker="o", ms=11, mfc="none", mec="k")[0] for ax in axes]

    def on_pick(event):
        if not len(event.ind):
            return
        i = int(event.ind[0])
        for m in marks:
            m.set_data([xy[i, 0]], [xy[i, 1]])
        fig.canvas.draw_idle()
        row, col = embedding.positions[i]
        _plot_shard_spectra(signal, row, col, shard_size, stride)

    if signal is not None:
        fig.canvas.mpl_connect("pick_event", on_pick)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
