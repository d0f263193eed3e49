"""Latent-space checks of a fitted CVAE."""

from __future__ import annotations

import numpy as np

__all__ = ["latent_pair_similarity", "plot_latent_similarity", "latent_mahalanobis",
           "mahalanobis_distances", "latent_phase_map", "cluster_latents", "decode_latent",
           "shard_to_pixels"]


def latent_pair_similarity(cvae, clean, anomalous, n_pairs=64, truth=None, random_state=0):
    """Cosine similarity of latent means of clean/anomalous shard pairs (paper's Fig. 5).

    ``n_pairs`` shard positions are drawn (each containing at least one
    anomalous pixel when a truth mask is known); both the clean shard and the
    same shard of the anomalous cube are encoded to their latent mean.
    Entry ``[i, j]`` is the cosine similarity of clean shard ``i`` and
    anomalous shard ``j``: a diagonal near 1 means the encoder maps an
    anomalous shard next to its clean twin, so the decoder reproduces the bulk
    and the anomaly stands out in the residual.

    Parameters
    ----------
    cvae : hyperspy_cvae.CVAE
        Fitted model.
    clean, anomalous : CVAEEELSSpectrum
        The same map without and with injected anomalies.
    n_pairs : int
        Number of shard pairs (matrix size).
    truth : array of bool or Signal2D, optional
        Anomalous pixels; default ``anomalous.metadata.CVAE.injection.mask``.
    random_state : int or None
        Seed for the positions.

    Returns
    -------
    similarity : numpy.ndarray (n_pairs, n_pairs)
    positions : numpy.ndarray (n_pairs, 2)
        Top-left (y, x) pixel of each shard.

    Examples
    --------
    >>> from hyperspy_cvae.data import bifeo3_si
    >>> s = bifeo3_si((48, 48), random_state=0)
    >>> cvae = s.fit_cvae(signal_range=(680., 740.), epochs=1, show_progressbar=False)
    >>> bad = s.inject_shift(4.0, n_clusters=2, random_state=1)
    >>> sim, pos = latent_pair_similarity(cvae, s, bad, n_pairs=8)
    >>> sim.shape
    (8, 8)
    """
    from .shards import extract_shards

    a = clean._crop_to_model(cvae).data
    b = anomalous._crop_to_model(cvae).data
    a = np.asarray(a.compute() if hasattr(a, "compute") else a)
    b = np.asarray(b.compute() if hasattr(b, "compute") else b)
    if a.shape != b.shape:
        raise ValueError(f"clean and anomalous cubes differ in shape: {a.shape} vs {b.shape}.")
    s = int(cvae.shard_size)
    ny, nx = a.shape[:2]
    if truth is None:
        truth = anomalous.metadata.get_item("CVAE.injection.mask", None)
    rng = np.random.default_rng(random_state)
    ys, xs = np.mgrid[0:ny - s + 1, 0:nx - s + 1]
    cand = np.c_[ys.ravel(), xs.ravel()]
    if truth is not None:
        t = np.asarray(truth.data if hasattr(truth, "axes_manager") else truth, bool)
        c = np.cumsum(np.cumsum(np.pad(t, ((1, 0), (1, 0))), 0), 1)
        counts = c[s:, s:] - c[:-s, s:] - c[s:, :-s] + c[:-s, :-s]
        has = counts.ravel() > 0
        if has.any():
            cand = cand[has]
    pos = cand[rng.choice(len(cand), size=n_pairs, replace=len(cand) < n_pairs)]
    za = cvae.transform(np.concatenate([extract_shards(a, [y], [x], s) for y, x in pos]))
    zb = cvae.transform(np.concatenate([extract_shards(b, [y], [x], s) for y, x in pos]))
    na = za / np.linalg.norm(za, axis=1, keepdims=True).clip(1e-12)
    nb = zb / np.linalg.norm(zb, axis=1, keepdims=True).clip(1e-12)
    return na @ nb.T, pos


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


# ---------------------------------------------------------------------------
# Latent maps on the shard grid → scores and phases on the pixel grid
# ---------------------------------------------------------------------------

def _latent_array(latent_map):
    """(L, gy, gx) float64 array of a latent-map Signal2D stack (or array)."""
    d = latent_map.data if hasattr(latent_map, "axes_manager") else latent_map
    d = d.compute() if hasattr(d, "compute") else d
    d = np.asarray(d, dtype=np.float64)
    if d.ndim != 3:
        raise ValueError(f"A latent map has shape (latent_dim, gy, gx), got {d.shape}; pass "
                         "`s.cvae_results['latent_map']` after `s.cvae_decomposition()`.")
    if not np.isfinite(d).all():
        raise ValueError("The latent map contains NaN or inf values.")
    return d


def _pixel_grid(latent_map, navigation=None):
    """Pixel-grid description: ``{"y": {...}, "x": {...}}`` with size/scale/offset/units/name,
    plus the shard size and stride, from ``navigation`` (a signal) or the latent metadata."""
    md = latent_map.metadata.get_item("CVAE.latent", None) if hasattr(latent_map, "metadata") else None
    if md is None or "shard_size" not in md:
        raise ValueError("The latent map has no `metadata.CVAE.latent` (shard size, stride, pixel grid); "
                         "use `s.cvae_results['latent_map']` from `s.cvae_decomposition()`.")
    grid = {"shard_size": int(md["shard_size"]), "stride": int(md["stride"])}
    if navigation is not None:
        ax_x, ax_y = navigation.axes_manager.navigation_axes[:2]
        for key, ax in (("y", ax_y), ("x", ax_x)):
            grid[key] = {"size": int(ax.size), "scale": float(ax.scale), "offset": float(ax.offset),
                         "units": str(ax.units), "name": str(ax.name)}
    else:
        pg = md["pixel_grid"]
        pg = pg.as_dictionary() if hasattr(pg, "as_dictionary") else pg
        for key in ("y", "x"):
            grid[key] = dict(pg[key])
    return grid


def shard_to_pixels(values, shard_size, stride, shape, order=1):
    """Interpolate values on the shard grid onto the pixel grid.

    Shard ``(i, j)`` covers pixels ``i·stride … i·stride + shard_size - 1``
    (rows; likewise columns); its value is placed at the shard centre
    ``i·stride + (shard_size - 1)/2`` and interpolated between centres
    (``order=1``: bilinear; ``order=0``: nearest, for labels). Pixels outside
    the outermost centres take the nearest centre's value.

    Parameters
    ----------
    values : array (..., gy, gx)
        Values on the shard grid (leading axes are kept).
    shard_size, stride : int
        As in :meth:`CVAEEELSSpectrum.cvae_decomposition`.
    shape : tuple of int
        ``(ny, nx)`` of the pixel grid.
    order : {0, 1}
        Interpolation order.

    Returns
    -------
    numpy.ndarray (..., ny, nx)

    Examples
    --------
    >>> v = np.array([[0., 1.], [2., 3.]])
    >>> shard_to_pixels(v, 4, 2, (6, 6))[:, 2]
    array([0.25, 0.25, 0.75, 1.75, 2.25, 2.25])
    """
    from scipy.ndimage import map_coordinates

    values = np.asarray(values)
    ny, nx = int(shape[0]), int(shape[1])
    gy, gx = values.shape[-2:]
    c = (shard_size - 1) / 2.0
    yy = np.clip((np.arange(ny) - c) / stride, 0, gy - 1)
    xx = np.clip((np.arange(nx) - c) / stride, 0, gx - 1)
    if order == 0:
        iy, ix = np.rint(yy).astype(int), np.rint(xx).astype(int)
        return values[..., iy[:, None], ix[None, :]]
    coords = np.stack(np.meshgrid(yy, xx, indexing="ij"))
    flat = values.reshape((-1, gy, gx)).astype(np.float64)
    out = np.stack([map_coordinates(v, coords, order=1, mode="nearest") for v in flat])
    return out.reshape(values.shape[:-2] + (ny, nx))


def _pixel_signal(data, grid, title):
    """Signal2D on the pixel grid described by ``grid`` (see :func:`_pixel_grid`)."""
    from hyperspy.signals import Signal2D

    axes = [dict(grid[k], navigate=False) for k in ("y", "x")]
    out = Signal2D(np.asarray(data), axes=axes)
    out.metadata.General.title = title
    return out


def _bulk_on_grid(bulk_mask, grid, shape_grid):
    """Boolean (gy, gx) reference mask from a pixel- or shard-grid mask (True = bulk)."""
    m = np.asarray(bulk_mask.data if hasattr(bulk_mask, "axes_manager") else bulk_mask)
    m = np.asarray(m.compute() if hasattr(m, "compute") else m).astype(bool)
    if m.shape == tuple(shape_grid):
        return m
    ny, nx = grid["y"]["size"], grid["x"]["size"]
    if m.shape != (ny, nx):
        raise ValueError(f"`bulk_mask` has shape {m.shape}; expected the pixel grid {(ny, nx)} or "
                         f"the shard grid {tuple(shape_grid)} (array order).")
    s, st = grid["shard_size"], grid["stride"]
    cy = np.minimum(np.arange(shape_grid[0]) * st + s // 2, ny - 1)
    cx = np.minimum(np.arange(shape_grid[1]) * st + s // 2, nx - 1)
    return m[np.ix_(cy, cx)]


def mahalanobis_distances(Z, reference=None, *, robust=True, n_iter=3):
    """Mahalanobis distance of latent vectors from the bulk latent distribution.

    The bulk mean and covariance are estimated from ``Z[reference]`` with
    Ledoit–Wolf shrinkage (well conditioned even with fewer shards than latent
    dimensions). With ``robust=True`` the estimate is refitted ``n_iter`` times
    without the outlying shards (distance above median + 3 · 1.4826 · MAD), so
    that a minority of anomalous shards does not inflate the covariance.

    Parameters
    ----------
    Z : array (N, L)
        Latent means.
    reference : array of bool (N,), optional
        Shards that define the bulk (default: all).
    robust : bool
        Trim outliers from the reference set.
    n_iter : int
        Refits when ``robust``.

    Returns
    -------
    d : numpy.ndarray (N,)
        Distances (in standard deviations of the bulk).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.normal(size=(200, 4))
    >>> Z[:5] += 6.0
    >>> d = mahalanobis_distances(Z)
    >>> bool(d[:5].min() > d[5:].max())
    True
    """
    from sklearn.covariance import LedoitWolf

    from .scoring import _robust_sd

    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or len(Z) < 3:
        raise ValueError(f"Need at least 3 latent vectors of shape (N, L), got {Z.shape}.")
    ref = np.ones(len(Z), bool) if reference is None else np.asarray(reference, bool).ravel()
    if ref.shape != (len(Z),):
        raise ValueError(f"`reference` has {ref.size} entries for {len(Z)} latent vectors.")
    if ref.sum() < 3:
        raise ValueError(f"The bulk reference holds {int(ref.sum())} shards; at least 3 are needed.")

    def _fit(sel):
        lw = LedoitWolf().fit(Z[sel])
        diff = Z - lw.location_
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", diff, lw.precision_, diff), 0.0))

    d = _fit(ref)
    if robust:
        for _ in range(int(n_iter)):
            r = d[ref]
            med = np.median(r)
            mad = _robust_sd(r, med)
            keep = ref & (d <= med + 3.0 * mad) if mad > 0 else ref
            if keep.sum() < 3 or keep.sum() == ref.sum():
                break
            ref_fit = keep
            d = _fit(ref_fit)
            ref = ref_fit
    return d


def latent_mahalanobis(latent_map, bulk_mask=None, *, robust=True, on="pixels", navigation=None):
    """Anomaly map: Mahalanobis distance of each shard's latent mean from the bulk.

    A second, reconstruction-free score. The PCC score only sees what the
    decoder fails to reproduce; a subtle change that the decoder reconstructs
    well (a small edge shift, a slightly different fine structure, a new but
    spatially extended phase) moves the shard's latent mean away from the bulk
    cloud even when its PCC stays high. Use it next to the PCC map when the
    PCC histogram is unimodal but you still suspect a change, or to find
    regions (shards of ``shard_size`` pixels) rather than single pixels: the
    latent map's resolution is the shard stride, so isolated pixels are
    diluted and the PCC map remains the better detector for them.

    Parameters
    ----------
    latent_map : Signal2D
        Latent means on the shard grid, ``s.cvae_results["latent_map"]``
        (one image per latent dimension), with ``metadata.CVAE.latent``.
    bulk_mask : Signal2D or array of bool, optional
        Known bulk (True = reference), on the pixel grid ``(ny, nx)`` (a shard
        is a reference if the pixel at its centre is) or on the shard grid
        ``(gy, gx)``. Default: all shards, robustly trimmed.
    robust : bool
        Re-estimate the bulk without outlying shards (see
        :func:`mahalanobis_distances`).
    on : {"pixels", "shards"}
        ``"pixels"`` (default): interpolated bilinearly from the shard centres
        onto the pixel grid, calibrated like the navigation axes of the source
        signal. ``"shards"``: the raw values on the shard grid (calibrated like
        the latent map).
    navigation : hyperspy signal, optional
        Signal whose navigation axes define the pixel grid (default: read from
        the latent map's metadata).

    Returns
    -------
    Signal2D
        Score map (high = anomalous) with ``metadata.CVAE.score`` (``kind``
        ``"latent_mahalanobis"``, ``anomalous`` ``"high"``, ``window`` = the
        model's energy range); threshold it with
        :func:`hyperspy_cvae.scoring.threshold_anomalies`.

    Examples
    --------
    >>> from hyperspy_cvae.data import bifeo3_si
    >>> s = bifeo3_si((48, 48), random_state=0).inject_shift(4.0, n_clusters=2, random_state=1)
    >>> _ = s.fit_cvae(signal_range=(680., 740.), shard_size=16, epochs=1, show_progressbar=False)
    >>> _ = s.cvae_decomposition(show_progressbar=False)
    >>> score = latent_mahalanobis(s.cvae_results["latent_map"])
    >>> score.data.shape, score.metadata.CVAE.score.anomalous
    ((48, 48), 'high')
    """
    if on not in ("pixels", "shards"):
        raise ValueError(f"`on` must be 'pixels' or 'shards', got {on!r}.")
    lat = _latent_array(latent_map)
    grid = _pixel_grid(latent_map, navigation)
    L, gy, gx = lat.shape
    ref = None if bulk_mask is None else _bulk_on_grid(bulk_mask, grid, (gy, gx)).ravel()
    d = mahalanobis_distances(lat.reshape(L, -1).T, ref, robust=robust).reshape(gy, gx)
    md = latent_map.metadata.get_item("CVAE.latent")
    window = md.get_item("signal_range", None) or [float("nan"), float("nan")]
    title = "Latent Mahalanobis distance"
    if on == "pixels":
        out = _pixel_signal(shard_to_pixels(d, grid["shard_size"], grid["stride"],
                                            (grid["y"]["size"], grid["x"]["size"])), grid, title)
    else:
        out = _shard_signal(latent_map, d, title)
    from ._version import __version__

    out.metadata.set_item("CVAE.score", {
        "kind": "latent_mahalanobis", "anomalous": "high",
        "window": [float(window[0]), float(window[1])], "method": "CVAE latent",
        "robust": bool(robust), "on": on, "bulk_mask": bulk_mask is not None,
        "model_checksum": md.get_item("model_checksum", ""), "package_version": __version__})
    out.metadata.set_item("CVAE.method", "CVAE latent Mahalanobis")
    return out


def _shard_signal(latent_map, data, title):
    """Signal2D on the latent map's shard grid (its signal axes)."""
    from hyperspy.signals import Signal2D

    axes = [latent_map.axes_manager.signal_axes[i].get_axis_dictionary() for i in (1, 0)]
    for a in axes:
        a["navigate"] = False
    out = Signal2D(np.asarray(data), axes=axes)
    out.metadata.General.title = title
    return out


def cluster_latents(Z, n_clusters=None, *, method="kmeans", k_range=(2, 8), random_state=0):
    """Cluster latent vectors, choosing the number of clusters by silhouette.

    Parameters
    ----------
    Z : array (N, L)
        Latent means.
    n_clusters : int, optional
        Number of clusters; None picks the K in ``k_range`` with the highest
        silhouette score (``sklearn.metrics.silhouette_score``). If no K
        reaches a silhouette of 0.25 (no clear structure), K = 1 is returned.
    method : {"kmeans", "gmm"}
        ``sklearn.cluster.KMeans`` or ``sklearn.mixture.GaussianMixture``
        (diagonal covariances).
    k_range : tuple of int
        Inclusive range of K tried when ``n_clusters`` is None.
    random_state : int or None
        Seed.

    Returns
    -------
    labels : numpy.ndarray (N,) of int
    centres : numpy.ndarray (K, L)
    silhouettes : dict
        ``{K: silhouette score}`` for every K tried.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Z = np.r_[rng.normal(0, 0.1, (50, 3)), rng.normal(3, 0.1, (30, 3))]
    >>> labels, centres, sil = cluster_latents(Z)
    >>> len(centres), np.bincount(labels).tolist()
    (2, [50, 30])
    """
    from sklearn.metrics import silhouette_score

    Z = np.asarray(Z, dtype=np.float64)
    if method not in ("kmeans", "gmm"):
        raise ValueError(f"`method` must be 'kmeans' or 'gmm', got {method!r}.")

    def _fit(k):
        if k == 1:
            return np.zeros(len(Z), int), Z.mean(0, keepdims=True)
        if method == "kmeans":
            from sklearn.cluster import KMeans

            km = KMeans(n_clusters=k, n_init=10, random_state=random_state).fit(Z)
            return km.labels_, km.cluster_centers_
        from sklearn.mixture import GaussianMixture

        gm = GaussianMixture(k, covariance_type="diag", random_state=random_state, n_init=3).fit(Z)
        return gm.predict(Z), gm.means_

    sil = {}
    if n_clusters is None:
        lo, hi = int(k_range[0]), min(int(k_range[1]), len(Z) - 1)
        if lo < 2 or hi < lo:
            raise ValueError(f"`k_range` {tuple(k_range)} must start at >= 2 and fit {len(Z)} samples.")
        best = (0.25, 1)
        for k in range(lo, hi + 1):
            labels, _ = _fit(k)
            if len(np.unique(labels)) < 2:
                continue
            sil[k] = float(silhouette_score(Z, labels))
            if sil[k] > best[0]:
                best = (sil[k], k)
        n_clusters = best[1]
    labels, centres = _fit(int(n_clusters))
    # Order clusters by size (largest = 0, the bulk) for stable colours.
    order = np.argsort(-np.bincount(labels, minlength=len(centres)), kind="stable")
    remap = np.empty_like(order)
    remap[order] = np.arange(len(order))
    return remap[labels], np.asarray(centres)[order], sil


def latent_phase_map(latent_map, n_clusters=None, *, method="kmeans", k_range=(2, 8),
                     random_state=0, on="pixels", navigation=None):
    """Phase map: cluster the latent means of the shards (k-means or GMM).

    Parameters
    ----------
    latent_map : Signal2D
        ``s.cvae_results["latent_map"]``.
    n_clusters, method, k_range, random_state
        See :func:`cluster_latents` (None: K chosen by silhouette).
    on : {"pixels", "shards"}
        Labels on the pixel grid (nearest shard centre) or on the shard grid.
    navigation : hyperspy signal, optional
        Signal whose navigation axes define the pixel grid.

    Returns
    -------
    labels : Signal2D of int
        Cluster label of each pixel (0 = largest cluster), with
        ``metadata.CVAE.phase_map`` (method, K, silhouettes, centres).
    centres : numpy.ndarray (K, latent_dim)
        Cluster centres in latent space; decode them with
        :func:`decode_latent`.

    Examples
    --------
    >>> from hyperspy_cvae.data import bifeo3_si
    >>> s = bifeo3_si((48, 48), random_state=0)
    >>> _ = s.fit_cvae(signal_range=(680., 740.), shard_size=16, epochs=1, show_progressbar=False)
    >>> _ = s.cvae_decomposition(show_progressbar=False)
    >>> labels, centres = latent_phase_map(s.cvae_results["latent_map"], n_clusters=2)
    >>> labels.data.shape, centres.shape
    ((48, 48), (2, 48))
    """
    if on not in ("pixels", "shards"):
        raise ValueError(f"`on` must be 'pixels' or 'shards', got {on!r}.")
    lat = _latent_array(latent_map)
    grid = _pixel_grid(latent_map, navigation)
    L, gy, gx = lat.shape
    labels, centres, sil = cluster_latents(lat.reshape(L, -1).T, n_clusters, method=method,
                                           k_range=k_range, random_state=random_state)
    labels = labels.reshape(gy, gx)
    title = f"CVAE latent phase map (K = {len(centres)})"
    if on == "pixels":
        out = _pixel_signal(shard_to_pixels(labels, grid["shard_size"], grid["stride"],
                                            (grid["y"]["size"], grid["x"]["size"]), order=0), grid, title)
    else:
        out = _shard_signal(latent_map, labels, title)
    out.metadata.set_item("CVAE.phase_map", {
        "method": method, "n_clusters": int(len(centres)),
        "silhouette_k": [int(k) for k in sil], "silhouette": [float(v) for v in sil.values()],
        "centres": np.asarray(centres), "on": on,
        "model_checksum": latent_map.metadata.get_item("CVAE.latent.model_checksum", "")})
    return out, centres


def decode_latent(cvae, z, *, counts=None):
    """Decode latent vectors to spectra: the mean spectrum of the decoded shard.

    Parameters
    ----------
    cvae : hyperspy_cvae.CVAE
        Fitted model.
    z : array (K, latent_dim)
        Latent vectors (e.g. cluster centres from :func:`latent_phase_map`).
    counts : float, optional
        Scale each spectrum to this total (e.g. the mean counts per spectrum
        in the model's range); default: normalised to sum 1.

    Returns
    -------
    Signal1D
        ``K`` spectra on the model's energy axis.

    Examples
    --------
    >>> from hyperspy_cvae.data import bifeo3_si
    >>> s = bifeo3_si((48, 48), random_state=0)
    >>> cvae = s.fit_cvae(signal_range=(680., 740.), shard_size=16, epochs=1, show_progressbar=False)
    >>> spec = decode_latent(cvae, np.zeros((2, cvae.latent_dim)))
    >>> spec.data.shape
    (2, 200)
    """
    import torch
    from hyperspy.signals import Signal1D

    cvae._check_is_fitted()
    z = np.atleast_2d(np.asarray(z, dtype=np.float32))
    if z.shape[1] != int(cvae.latent_dim):
        raise ValueError(f"`z` has {z.shape[1]} dimensions, the model's latent space has {cvae.latent_dim}.")
    model = cvae.model_
    dev = next(model.parameters()).device
    with torch.no_grad():
        probs = torch.softmax(model.decode(torch.from_numpy(z).to(dev)).float(), dim=-1)
    spec = probs.mean(dim=(1, 2)).cpu().numpy().astype(np.float64)
    spec /= spec.sum(-1, keepdims=True)
    if counts is not None:
        spec *= float(counts)
    tr = cvae.energy_axis_
    out = Signal1D(spec)
    ax = out.axes_manager.signal_axes[0]
    ax.name, ax.units = "Energy loss", tr.get("units", "eV")
    ax.offset, ax.scale = float(tr["offset"]), float(tr["scale"])
    out.axes_manager.navigation_axes[0].name = "cluster"
    out.metadata.General.title = "Decoded latent vectors"
    out.metadata.set_item("Signal.quantity", "Counts" if counts is not None else "Normalised intensity")
    return out
