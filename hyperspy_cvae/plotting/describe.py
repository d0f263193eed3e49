"""How the pixels differ, at a glance: draws a :class:`~hyperspy_cvae.results.PixelDescription`."""

from __future__ import annotations

import textwrap

import numpy as np

from .maps import _map_geometry, outline_mask

__all__ = ["plot_description"]

#: Colours of the explanations (the tests, then "bulk", "outlier", "no edge").
EXPLANATION_COLOURS = ("#d62728", "#9467bd", "#8c564b", "#e377c2", "#d9d9d9", "#ff7f0e", "#1f77b4")


def _draw(ax, sig, values, *, cmap, vmin=None, vmax=None, anomalous=None, title=""):
    """One map (a line scan as one row) with the anomalous pixels outlined, and a colour bar."""
    extent, xlabel, ylabel = _map_geometry(sig)
    v = np.asarray(values, float)
    im = ax.imshow(v if v.ndim == 2 else v[None], extent=extent, cmap=cmap, vmin=vmin, vmax=vmax,
                   interpolation="nearest", aspect="auto" if v.ndim == 1 else "equal")
    if anomalous is not None and np.any(anomalous) and v.ndim == 2:
        outline_mask(ax, np.asarray(anomalous), extent, color="k", lw=0.8)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    if v.ndim == 1:  # a line scan: one row, no y axis
        ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    return im


def _symmetric(values, floor):
    """A colour range symmetric about 0, from the 99th percentile of |values| (at least ``floor``)."""
    v = np.abs(np.asarray(values, float))
    v = v[np.isfinite(v)]
    return max(float(np.percentile(v, 99)) if v.size else floor, floor)


def plot_description(description, path=None):
    """How each pixel differs from its reconstruction, in six panels.

    Top: what each pixel is (the anomalous pixels coloured by their strongest test: shift,
    shape change, other change, background change; "bulk", "outlier", "no edge"), the fitted
    shift in eV (its median uncertainty in the title), the signed shape change (z). Bottom: the jump
    ratio and the intensity against the bulk's median, and the learned change as a spectrum with
    the bulk's mean spectrum for orientation. Anomalous pixels are outlined in black; the shift
    and shape maps are blank where there is no edge or an outlier.

    Parameters
    ----------
    description : PixelDescription
        From ``AnomalyResult.describe()`` or :func:`hyperspy_cvae.scores.describe_pixels`.
    path : str, optional
        Also save the figure (PNG).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> s = bifeo3_si((24, 24), random_state=0).inject_shift(1.5, n_clusters=1, cluster_size=4, random_state=1)
    >>> fig = plot_description(s.anomaly_map("pca", window=(690., 730.)).describe())
    >>> len(fig.axes) >= 6
    True
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    from ..scores.labels import LABELS

    d = description
    m = d.maps
    codes = np.asarray(d.labels.data)
    anomalous = codes == LABELS.index("anomalous")
    fig, axes = plt.subplots(2, 3, figsize=(14, 7.6))
    expl = np.asarray(m["explanation"].data)
    n = len(d.names)
    _draw(axes[0, 0], m["explanation"], np.where(expl < 0, np.nan, expl),
          cmap=ListedColormap(EXPLANATION_COLOURS[:n]), vmin=-0.5, vmax=n - 0.5,
          title="what each pixel is")
    fig.axes[-1].remove()  # the legend says it better than a colour bar
    present = [(i, name) for i, name in enumerate(d.names) if (expl == i).any()]
    axes[0, 0].legend(handles=[Patch(color=EXPLANATION_COLOURS[i], label=f"{name} ({int((expl == i).sum())})")
                               for i, name in present], fontsize=7, loc="upper left",
                      bbox_to_anchor=(1.0, 1.0))
    # no edge, no shift or shape to speak of (vacuum, glitches): left blank
    blank = np.isin(codes, [LABELS.index("no edge"), LABELS.index("outlier")])
    shift, sigma = (np.where(blank, np.nan, np.asarray(m[k].data, float)) for k in ("shift", "shift_sigma"))
    lim = _symmetric(shift, 0.05)
    _draw(axes[0, 1], m["shift"], shift, cmap="RdBu_r", vmin=-lim, vmax=lim, anomalous=anomalous,
          title=f"edge shift (eV); median 1σ {np.nanmedian(sigma):.2g} eV")
    shape = np.where(blank, np.nan, np.asarray(m["shape"].data, float))
    lim = _symmetric(shape, 3.0)
    _draw(axes[0, 2], m["shape"], shape, cmap="PuOr_r", vmin=-lim, vmax=lim, anomalous=anomalous,
          title="shape change (projection on the learned change, z)")
    for ax, key, title in ((axes[1, 0], "jump_ratio", "jump ratio / bulk median"),
                           (axes[1, 1], "intensity", "counts in the window / bulk median")):
        v = np.asarray(m[key].data, float)
        lim = _symmetric(v - 1.0, 0.05)
        _draw(ax, m[key], v, cmap="BrBG", vmin=1 - lim, vmax=1 + lim, anomalous=anomalous, title=title)
    ax = axes[1, 2]
    if d.direction is not None:
        ax_e = d.direction.axes_manager[0]
        ax.plot(ax_e.axis, d.direction.data, color="#9467bd", lw=1.2, label="learned change")
        ax.legend(fontsize=7, loc="upper left")
    else:
        ax_e = d.bulk_spectrum.axes_manager[0]
        note = d.maps["shape"].metadata.get_item("CVAE.description.not_tested", "not tested")
        ax.text(0.5, 0.5, "\n".join(textwrap.wrap(str(note), 40)), ha="center", va="center",
                transform=ax.transAxes, fontsize=8)
    ax.axhline(0, color="0.6", lw=0.6)
    if d.bulk_spectrum is not None:
        twin = ax.twinx()
        twin.plot(ax_e.axis, d.bulk_spectrum.data, color="0.5", lw=0.8, ls="--")
        twin.set_ylabel("bulk mean spectrum (dashed)", fontsize=8, color="0.4")
        twin.tick_params(labelsize=7, colors="0.4")
    ax.set_xlabel(f"energy loss ({ax_e.units})", fontsize=8)
    ax.set_ylabel("Pearson residual (unit norm)", fontsize=8)
    ax.set_title("no learned change" if d.direction is None else
                 "the change the anomalous pixels share" if anomalous.any() else
                 "the change learned from the boxes (no anomalous pixel)", fontsize=9)
    fig.suptitle(f"{d.method}: how the pixels differ ({d.window.label})", fontsize=10)
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=110)
    return fig
