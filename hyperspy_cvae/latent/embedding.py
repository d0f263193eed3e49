"""The latent view: a 2D embedding (PCA or UMAP) of the shards' latent means, and per-shard flags
from a pixel mask (to colour it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._arrays import values_of
from .grid import latent_array

__all__ = ["LatentEmbedding", "latent_embedding", "shard_flags"]

_METHODS = ("pca", "umap", "auto")


@dataclass(frozen=True)
class LatentEmbedding:
    """Result of :func:`latent_embedding`: one 2D point per shard, in the latent map's grid order."""

    coords: np.ndarray  #: (n_shards, 2) embedded coordinates
    positions: np.ndarray  #: (n_shards, 2) shard indices (row, col) on the shard grid
    method: str  #: "pca" or "umap"
    explained_variance_ratio: np.ndarray | None  #: (2,) for PCA, None for UMAP
    grid_shape: tuple  #: (gy, gx) of the shard grid
    shard_size: int | None = None  #: from ``metadata.CVAE.latent`` when present
    stride: int | None = None


def _import_umap():
    try:
        import umap
    except ImportError as err:
        raise ImportError("method='umap' needs the umap-learn package: `pip install umap-learn` "
                          "(or use method='pca').") from err
    return umap


def latent_embedding(latent_map, method="pca", random_state=0, n_neighbors=15):
    """Embed the latent mean of every shard in 2D, to look at the latent space.

    The latent means (one ``latent_dim`` vector per shard) are standardised
    per dimension (zero mean, unit variance; constant dimensions are only
    centred), then projected on their first two principal components (SVD;
    signs fixed so that each component's largest loading is positive) or
    embedded by UMAP (``umap.UMAP(n_components=2)``).

    Parameters
    ----------
    latent_map : Signal2D or array (latent_dim, gy, gx)
        ``s.cvae_results["latent_map"]`` (one image per latent dimension on the
        shard grid).
    method : {"pca", "umap", "auto"}
        PCA (deterministic), UMAP (needs ``umap-learn``), or UMAP when it is
        installed and PCA otherwise.
    random_state : int or None
        Seed of UMAP (PCA needs none).
    n_neighbors : int
        UMAP's neighbourhood size (at most ``n_shards - 1`` is used).

    Returns
    -------
    LatentEmbedding
        ``coords`` (n_shards, 2), ``positions`` (n_shards, 2) = (row, col) of
        each shard, ``method``, ``explained_variance_ratio`` (PCA: the fraction
        of the standardised variance on each axis), ``grid_shape`` and the
        shard grid's ``shard_size`` / ``stride`` when the metadata has them.

    Examples
    --------
    >>> import hyperspy.api as hs
    >>> lm = hs.signals.Signal2D(np.random.default_rng(0).normal(size=(8, 5, 6)))
    >>> emb = latent_embedding(lm)
    >>> emb.coords.shape, emb.positions[7].tolist(), emb.method
    ((30, 2), [1, 1], 'pca')
    >>> bool(emb.explained_variance_ratio.sum() <= 1)
    True
    """
    if method not in _METHODS:
        raise ValueError(f"`method` must be one of {_METHODS}, got {method!r}.")
    raw = values_of(latent_map, np.float64)
    if raw.ndim == 3 and not np.isfinite(raw).all():
        bad = int((~np.isfinite(raw)).any(0).sum())
        raise ValueError(f"{bad} of {raw[0].size} shards have NaN or inf latent means; the model "
                         "is not usable (refit it, e.g. with a smaller learning rate).")
    lat = latent_array(raw)
    L, gy, gx = lat.shape
    if gy * gx < 3:
        raise ValueError(f"A latent embedding needs at least 3 shards, the latent map has {gy * gx} "
                         f"({gy} × {gx}); use a smaller stride or a larger map.")
    if method == "auto":
        try:
            _import_umap()
            method = "umap"
        except ImportError:
            method = "pca"
    Z = lat.reshape(L, -1).T
    Z = Z - Z.mean(0)
    sd = Z.std(0)
    Z = Z / np.where(sd > 0, sd, 1.0)
    evr = None
    if method == "pca":
        U, S, Vt = np.linalg.svd(Z, full_matrices=False)
        signs = np.sign(Vt[np.arange(len(Vt)), np.abs(Vt).argmax(1)])
        coords = U * S * signs
        total = float((S ** 2).sum())
        evr = (S ** 2 / total if total > 0 else np.zeros_like(S))[:2]
        coords = np.pad(coords[:, :2], ((0, 0), (0, max(0, 2 - coords.shape[1]))))
        evr = np.pad(evr, (0, 2 - len(evr)))
    else:
        umap = _import_umap()
        reducer = umap.UMAP(n_components=2, n_neighbors=max(2, min(int(n_neighbors), len(Z) - 1)),
                            random_state=random_state)
        coords = np.asarray(reducer.fit_transform(Z), dtype=np.float64)
    md = latent_map.metadata.get_item("CVAE.latent", None) if hasattr(latent_map, "metadata") else None
    has_grid = md is not None and "stride" in md
    size, stride = (int(md["shard_size"]), int(md["stride"])) if has_grid else (None, None)
    positions = np.indices((gy, gx)).reshape(2, -1).T
    return LatentEmbedding(coords, positions, method, evr, (gy, gx), size, stride)


def shard_flags(mask, shard_size, stride, grid_shape):
    """Per-shard flag: does the shard's footprint contain any True pixel of ``mask``?

    Shard ``(i, j)`` covers pixels ``i·stride … i·stride + shard_size - 1``
    (rows; likewise columns).

    Parameters
    ----------
    mask : Signal2D or array of bool (ny, nx)
        Pixel mask (e.g. the anomaly mask of ``s.anomaly_map()``); a mask
        already of shape ``grid_shape`` is returned as it is.
    shard_size, stride : int
    grid_shape : tuple of int
        ``(gy, gx)`` of the shard grid.

    Returns
    -------
    numpy.ndarray of bool (gy, gx)

    Examples
    --------
    >>> m = np.zeros((8, 8), bool); m[7, 0] = True
    >>> shard_flags(m, 4, 2, (3, 3)).astype(int).tolist()
    [[0, 0, 0], [0, 0, 0], [1, 0, 0]]
    """
    m = values_of(mask).astype(bool)
    gy, gx = (int(n) for n in grid_shape)
    if m.shape == (gy, gx):
        return m
    need = ((gy - 1) * stride + shard_size, (gx - 1) * stride + shard_size)
    if m.ndim != 2 or m.shape[0] < need[0] or m.shape[1] < need[1]:
        raise ValueError(f"`mask` has shape {m.shape}; expected the pixel grid (at least {need}) or "
                         f"the shard grid {(gy, gx)} (array order y, x).")
    return np.array([[m[i * stride:i * stride + shard_size, j * stride:j * stride + shard_size].any()
                      for j in range(gx)] for i in range(gy)], dtype=bool)
