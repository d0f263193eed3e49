"""The latent anomaly score: Mahalanobis distance of each shard's latent mean from the bulk."""

from __future__ import annotations

import numpy as np

from .._stats import robust_sd
from .._version import __version__
from .grid import bulk_on_grid, latent_array, pixel_grid, pixel_signal, shard_signal, shard_to_pixels

__all__ = ["mahalanobis_distances", "latent_mahalanobis"]


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
            mad = robust_sd(r, med)
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
        :func:`hyperspy_cvae.scores.threshold_anomalies`.

    Examples
    --------
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> s = bifeo3_si((48, 48), random_state=0).inject_shift(4.0, n_clusters=2, random_state=1)
    >>> _ = s.fit_cvae(signal_range=(680., 740.), shard_size=16, epochs=1, show_progressbar=False)
    >>> _ = s.cvae_decomposition(show_progressbar=False)
    >>> score = latent_mahalanobis(s.cvae_results["latent_map"])
    >>> score.data.shape, score.metadata.CVAE.score.anomalous
    ((48, 48), 'high')
    """
    if on not in ("pixels", "shards"):
        raise ValueError(f"`on` must be 'pixels' or 'shards', got {on!r}.")
    lat = latent_array(latent_map)
    grid = pixel_grid(latent_map, navigation)
    L, gy, gx = lat.shape
    ref = None if bulk_mask is None else bulk_on_grid(bulk_mask, grid, (gy, gx)).ravel()
    d = mahalanobis_distances(lat.reshape(L, -1).T, ref, robust=robust).reshape(gy, gx)
    md = latent_map.metadata.get_item("CVAE.latent")
    window = md.get_item("signal_range", None) or [float("nan"), float("nan")]
    title = "Latent Mahalanobis distance"
    if on == "pixels":
        out = pixel_signal(shard_to_pixels(d, grid["shard_size"], grid["stride"],
                                            (grid["y"]["size"], grid["x"]["size"])), grid, title)
    else:
        out = shard_signal(latent_map, d, title)
    out.metadata.set_item("CVAE.score", {
        "kind": "latent_mahalanobis", "anomalous": "high",
        "window": [float(window[0]), float(window[1])], "method": "CVAE latent",
        "robust": bool(robust), "on": on, "bulk_mask": bulk_mask is not None,
        "model_checksum": md.get_item("model_checksum", ""), "package_version": __version__})
    out.metadata.set_item("CVAE.method", "CVAE latent Mahalanobis")
    return out
