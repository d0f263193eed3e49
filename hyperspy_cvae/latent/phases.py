"""Phases from the latent space: clusters of shard latent means, and decoding latent vectors back
to spectra."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._arrays import to_numpy
from .grid import latent_array, pixel_grid, pixel_signal, shard_signal, shard_to_pixels

__all__ = ["cluster_latents", "latent_phase_map", "decode_latent", "phase_means"]


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
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> s = bifeo3_si((48, 48), random_state=0)
    >>> _ = s.fit_cvae(signal_range=(680., 740.), shard_size=16, epochs=1, show_progressbar=False)
    >>> _ = s.cvae_decomposition(show_progressbar=False)
    >>> labels, centres = latent_phase_map(s.cvae_results["latent_map"], n_clusters=2)
    >>> labels.data.shape, centres.shape
    ((48, 48), (2, 48))
    """
    if on not in ("pixels", "shards"):
        raise ValueError(f"`on` must be 'pixels' or 'shards', got {on!r}.")
    lat = latent_array(latent_map)
    grid = pixel_grid(latent_map, navigation)
    L, gy, gx = lat.shape
    labels, centres, sil = cluster_latents(lat.reshape(L, -1).T, n_clusters, method=method,
                                           k_range=k_range, random_state=random_state)
    labels = labels.reshape(gy, gx)
    title = f"CVAE latent phase map (K = {len(centres)})"
    if on == "pixels":
        out = pixel_signal(shard_to_pixels(labels, grid["shard_size"], grid["stride"],
                                            (grid["y"]["size"], grid["x"]["size"]), order=0), grid, title)
    else:
        out = shard_signal(latent_map, labels, title)
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
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> s = bifeo3_si((48, 48), random_state=0)
    >>> cvae = s.fit_cvae(signal_range=(680., 740.), shard_size=16, epochs=1, show_progressbar=False)
    >>> spec = decode_latent(cvae, np.zeros((2, cvae.latent_dim)))
    >>> spec.data.shape
    (2, 200)
    """
    import torch
    from hyperspy.signals import Signal1D

    check_is_fitted(cvae)
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


def phase_means(signal, labels, like=None):
    """The measured mean spectrum of every phase of a phase map.

    Parameters
    ----------
    signal : hyperspy Signal1D
        The spectrum image (eager or lazy: only the labelled means are computed).
    labels : Signal2D of int
        From :func:`latent_phase_map` (or ``s.cvae_phase_map()``), on the pixel grid.
    like : Signal1D, optional
        Decoded centres (:func:`decode_latent`): the means are cropped to their
        energy range, for drawing next to them.

    Returns
    -------
    Signal1D
        One spectrum per label ``0 … K-1`` (NaN for a label without pixels).

    Examples
    --------
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> import hyperspy.api as hs
    >>> s = bifeo3_si((8, 8), random_state=0)
    >>> lab = hs.signals.Signal2D((np.arange(64).reshape(8, 8) >= 32).astype(int))
    >>> phase_means(s, lab).data.shape
    (2, 1200)
    """
    from hyperspy.signals import Signal1D

    lab = to_numpy(labels.data if hasattr(labels, "axes_manager") else labels).astype(int)
    if lab.shape != tuple(signal.axes_manager.navigation_shape[::-1]):
        raise ValueError(f"`labels` has shape {lab.shape}, the signal's navigation shape is "
                         f"{tuple(signal.axes_manager.navigation_shape[::-1])} (array order y, x).")
    sub = signal
    if like is not None:
        e = like.axes_manager.signal_axes[0]
        sub = signal.isig[float(e.axis[0]):float(e.axis[-1] + e.scale)]
    k = int(lab.max()) + 1
    data = np.stack([to_numpy(sub.data[lab == i]).mean(0) if (lab == i).any()
                     else np.full(sub.axes_manager.signal_shape[0], np.nan) for i in range(k)])
    out = Signal1D(data)
    ax, src = out.axes_manager.signal_axes[0], sub.axes_manager.signal_axes[0]
    ax.name, ax.units, ax.offset, ax.scale = src.name, src.units, src.offset, src.scale
    out.axes_manager.navigation_axes[0].name = "phase"
    out.metadata.General.title = f"Measured mean spectrum per phase ({signal.metadata.General.title})"
    out.metadata.set_item("Signal.quantity", signal.metadata.get_item("Signal.quantity", "Intensity"))
    return out
