"""Latent-space figures: latent maps, phase maps and the twin-shard similarity matrix."""

from __future__ import annotations

import numpy as np

from .._arrays import values_of as _values
from ..latent.grid import latent_array
from .maps import _map_geometry

__all__ = ["plot_latent_maps", "plot_phase_map", "plot_latent_similarity"]


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
