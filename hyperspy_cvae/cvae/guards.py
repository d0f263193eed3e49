"""Guards of the training loop: every step's loss and gradients, and every validation loss, must be
finite; the first one that is not stops the fit with an error that names the likely cause, found in
the training data at hand (dead channels, all-zero spectra, negative offsets, huge counts).

The statistics are computed only when a step fails, from what the data preparation already holds
(see :func:`hyperspy_cvae.cvae.sampling.eager_data`), so a healthy fit pays one finiteness test
of the loss and one of the gradients per step.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["NonFiniteTrainingError", "grads_finite", "dead_channels", "describe_channels",
           "nonfinite_error"]

#: Spectrum totals from which counts are called "huge": no detector counts 10¹⁵ electrons in a
#: spectrum, and a shard of such spectra overflows float32 in the Poisson loss.
_HUGE_TOTAL = 1e15


class NonFiniteTrainingError(FloatingPointError, ValueError):
    """A training or validation loss, or a gradient, became NaN/inf during :meth:`CVAE.fit`.

    Both a :class:`FloatingPointError` and a :class:`ValueError` (the data are the usual cause);
    the message names the likely cause found in the training data.
    """


def grads_finite(params) -> bool:
    """True if every gradient of ``params`` is finite (parameters without gradient are skipped).

    Fast path: the L2 norm of each gradient (one fused ``torch._foreach_norm``, 2–4× cheaper than
    ``isfinite`` on the concatenated gradients; < 1 % of a training step) is finite if every
    value is. Only when a norm is not (a NaN/inf, or squares beyond float32) is the exact test run.
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return True
    try:
        if bool(torch.isfinite(torch.stack(torch._foreach_norm(grads, 2))).all()):
            return True
    except (AttributeError, TypeError, RuntimeError, NotImplementedError):  # no fused kernel
        pass
    return bool(torch.isfinite(torch.cat([g.reshape(-1) for g in grads])).all())


def dead_channels(mean_spectrum, floor: float) -> np.ndarray:
    """Indices of the channels of the (unfloored) mean training spectrum at or below ``floor``."""
    return np.flatnonzero(~(np.asarray(mean_spectrum, np.float64) > floor))


def _ranges(idx):
    """Consecutive runs of sorted indices as (first, last) pairs."""
    runs = []
    for i in idx:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = int(i)
        else:
            runs.append([int(i), int(i)])
    return runs


def describe_channels(idx, energy_axis=None, max_runs: int = 4) -> str:
    """``"channel 50 (695 eV)"``, ``"channels 0–87 (680–706.1 eV), 102 (710.6 eV)"``, ...

    Energies are given when ``energy_axis`` (``offset``, ``scale``, ``units``) is a calibrated
    axis (not the default ``offset 0, scale 1`` without units).
    """
    idx = np.asarray(idx, int)
    ax = energy_axis or {}
    calibrated = bool(ax.get("units")) or (ax.get("offset", 0.0), ax.get("scale", 1.0)) != (0.0, 1.0)

    def energy(i):
        e = float(ax.get("offset", 0.0)) + i * float(ax.get("scale", 1.0))
        return f"{e:.6g}"

    runs = _ranges(idx)
    parts = []
    for a, b in runs[:max_runs]:
        ch = f"{a}" if a == b else f"{a}–{b}"
        if calibrated:
            units = f" {ax.get('units')}" if ax.get("units") else ""
            en = energy(a) if a == b else f"{energy(a)}–{energy(b)}"
            ch += f" ({en}{units})"
        parts.append(ch)
    more = f", … ({len(idx)} channels in all)" if len(runs) > max_runs else ""
    word = "channel" if len(idx) == 1 else "channels"
    return f"{word} {', '.join(parts)}{more}"


def diagnose(info, energy_axis=None) -> list:
    """Likely causes of a non-finite loss, found in the statistics ``info`` of the training data.

    ``info`` (from :mod:`.sampling`): ``n_values``, ``n_negative``, ``totals`` (clipped total of
    every spectrum at hand), ``mean_spectrum`` (unfloored mean training spectrum) and ``floor``.
    """
    causes = []
    dead = dead_channels(info["mean_spectrum"], info["floor"])
    if dead.size:
        causes.append(
            f"{describe_channels(dead, energy_axis)} {'is' if dead.size == 1 else 'are'} zero in every "
            "training spectrum (a dead channel, or one emptied by clipping negative values): crop "
            "it (`signal_range`) or check the detector/dark reference")
    totals = np.asarray(info["totals"], np.float64).reshape(-1)
    n_zero = int((totals <= 1e-12).sum()) if totals.size else 0
    if n_zero:
        causes.append(f"{n_zero} of {totals.size} spectra ({100 * n_zero / totals.size:.3g} %) are all "
                      "zero after clipping negative values")
    if info["n_negative"]:
        frac = info["n_negative"] / max(1, info["n_values"])
        causes.append(f"{100 * frac:.3g} % of the values are negative (a dark or background offset?); "
                      "they are clipped to 0 — remove the offset before training")
    finite = totals[np.isfinite(totals)]
    if finite.size < totals.size or (finite.size and finite.max() >= _HUGE_TOTAL):
        top = (f"up to {float(finite.max()):.3g}" if finite.size == totals.size
               else "beyond the float32 range, 3.4e38")
        causes.append(f"the counts are huge (spectrum totals {top}): float32 sums over a shard "
                      "overflow — divide the data by a constant (the Poisson loss needs counts, "
                      "e.g. electrons per channel)")
    return causes


def nonfinite_error(what, value, epoch, step, info, energy_axis, est):
    """The :class:`NonFiniteTrainingError` for a non-finite ``what`` (e.g. "training loss")."""
    val = "NaN" if isinstance(value, float) and math.isnan(value) else (
        "inf" if isinstance(value, float) else "NaN/inf")
    causes = diagnose(info, energy_axis)
    head = (f"CVAE training stopped: the {what} is {val} at epoch {epoch + 1}, step {step + 1} "
            "(no non-finite step was applied to the weights). ")
    if causes:
        body = "Likely cause" + ("s" if len(causes) > 1 else "") + ": " + "; ".join(causes) + "."
    else:
        body = ("The training data show no dead channel, all-zero spectra, negative values or huge "
                f"counts: the optimisation diverged; try a smaller `learning_rate` (now "
                f"{float(est.learning_rate):g}) or `loss='ce'`.")
    return NonFiniteTrainingError(head + body)
