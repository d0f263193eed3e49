"""Training curves of a fitted CVAE."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_history"]


def plot_history(cvae, ax=None):
    """Training and validation loss of a fitted CVAE against optimiser steps (per epoch for a
    history without steps); returns the matplotlib axes.

    Parameters
    ----------
    cvae : hyperspy_cvae.CVAE or dict
        A fitted model, or a ``history_`` dict (``train_loss`` and ``val_loss``
        lists, optionally ``loss``: the name of the reconstruction loss).
    ax : matplotlib axes, optional

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = plot_history({"train_loss": [3.0, 2.0], "val_loss": [3.5, 2.5]})
    >>> len(ax.lines)
    2
    """
    import matplotlib.pyplot as plt

    if isinstance(cvae, dict):
        history, loss = cvae, cvae.get("loss", "poisson")
    else:
        if not hasattr(cvae, "history_"):
            raise ValueError("This CVAE is not fitted yet: it has no training history to plot.")
        history, loss = cvae.history_, cvae.loss
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    steps = history.get("steps")
    ep = np.asarray(steps) if steps else np.arange(1, len(history["train_loss"]) + 1)
    ax.plot(ep, history["train_loss"], label="train")
    if np.isfinite(history["val_loss"]).any():
        ax.plot(ep, history["val_loss"], label="validation")
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.set_xlabel("optimiser step" if steps else "epoch")
    ax.set_ylabel(f"loss ({loss} + β·KL) per shard")
    ax.legend()
    return ax
