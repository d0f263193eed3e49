"""Latent similarity of clean and anomalous twins of the same shards (the paper's Fig. 5)."""

from __future__ import annotations

import numpy as np

from .._arrays import to_numpy
from .._validation import crop_to_model
from ..cvae.shards import extract_shards

__all__ = ["latent_pair_similarity"]


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
    >>> from hyperspy_cvae.synthetic import bifeo3_si
    >>> s = bifeo3_si((48, 48), random_state=0)
    >>> cvae = s.fit_cvae(signal_range=(680., 740.), epochs=1, show_progressbar=False)
    >>> bad = s.inject_shift(4.0, n_clusters=2, random_state=1)
    >>> sim, pos = latent_pair_similarity(cvae, s, bad, n_pairs=8)
    >>> sim.shape
    (8, 8)
    """
    a = to_numpy(crop_to_model(clean, cvae).data)
    b = to_numpy(crop_to_model(anomalous, cvae).data)
    if a.shape != b.shape:
        raise ValueError(f"clean and anomalous cubes differ in shape: {a.shape} vs {b.shape}.")
    s = int(cvae.shard_size_)
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
