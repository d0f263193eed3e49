"""Small robust statistics shared by the thresholds, the masks and the latent distances."""

from __future__ import annotations

import numpy as np

__all__ = ["robust_sd"]


def robust_sd(values, center=None):
    """Robust standard deviation, 1.4826 × the median absolute deviation from ``center``
    (the median when None).

    Examples
    --------
    >>> round(robust_sd(np.random.default_rng(0).normal(size=100000)), 2)
    1.0
    """
    values = np.asarray(values, np.float64)
    center = np.median(values) if center is None else center
    return 1.4826 * float(np.median(np.abs(values - center)))
