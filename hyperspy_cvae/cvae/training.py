"""The training loop of :class:`~hyperspy_cvae.cvae.estimator.CVAE`: batches until the budget is
spent (``max_steps`` optimiser steps, or ``epochs`` random tilings), the validation loss at each
measure, the learning-rate schedule, early stopping with the best weights kept.

It reads the estimator's parameters and its loss; the data come from :mod:`.sampling`, the
network from :mod:`.model`. Nothing here builds data or a model.
"""

from __future__ import annotations

import copy
import logging
import math
import time

import numpy as np
import torch

from .guards import grads_finite
from .sampling import make_batch

__all__ = ["DEFAULT_STEPS", "DEFAULT_EVERY", "auto_steps", "batch_stream", "train"]

_logger = logging.getLogger(__name__)

#: Training budget of ``max_steps="auto"`` on shards of 24 × 24 pixels, in optimiser steps.
DEFAULT_STEPS = 400
#: Steps between two measures of the validation loss with ``validation_every="auto"``, shards of 24.
DEFAULT_EVERY = 25


def auto_steps(value, shard_size, base=None):
    """A number of steps for shards of ``shard_size`` pixels a side: an int as it is; ``"auto"``:
    ``base · (24 / S)²`` (at least ``base``; default ``DEFAULT_STEPS``), i.e. as many spectra seen
    as ``base`` batches of 24 × 24 shards. With both the budget (``base=DEFAULT_STEPS``) and the
    interval between measures (``base=DEFAULT_EVERY``) scaled, a small map's fit follows the
    schedule of a large map's (16 measures, the same learning rates and patience), counted in
    spectra seen.

    A shard of 8 × 8 pixels holds a ninth of the spectra of one of 24 × 24; with the same number of
    steps, a small measured map's model stayed far from its data (a 20 × 20 Si L map: χ² per
    channel 16.8 after 400 steps, 2.6 after 3600; ``benchmarks/NOTES.md`` §19).

    Examples
    --------
    >>> [auto_steps("auto", s) for s in (24, 20, 16, 8)], auto_steps(50, 8)
    ([400, 576, 900, 3600], 50)
    >>> auto_steps("auto", 8, base=DEFAULT_EVERY)
    225
    """
    if isinstance(value, str) and value == "auto":
        base = DEFAULT_STEPS if base is None else int(base)
        return max(base, math.ceil(base * (24 / int(shard_size)) ** 2))
    return int(value)


def batch_stream(next_positions, rng, batch_size):
    """Batches of shard positions without end: one random tiling (``next_positions(rng)``) after
    another, each cut into batches of ``batch_size``."""
    while True:
        pos = next_positions(rng)
        for i in range(0, len(pos), batch_size):
            yield pos[i:i + batch_size]


def train(est, model, arrays, next_positions, val_pos, val_arrays, rng, failure, show):
    """Train ``model`` in place with the budget and optimiser of ``est``; returns
    ``(history, n_steps)`` (the best weights, with early stopping, are loaded into ``model``).

    ``failure(what, value, epoch, step)`` builds the error raised on a non-finite loss or
    gradient; ``show``: the progress bar (steps, loss, validation loss, time left).
    """
    from tqdm.auto import tqdm

    bs = int(est.batch_size)
    by_epoch = est.epochs is not None
    if by_epoch:  # one interval = one random tiling
        n_intervals, total, unit = int(est.epochs), int(est.epochs), "epoch"
    else:
        every = int(est.validation_every_)
        budget = int(est.max_steps_)
        n_intervals, total, unit = math.ceil(budget / every), budget, "step"
        stream = batch_stream(next_positions, rng, bs)

    def interval_batches(k):
        if by_epoch:
            pos = next_positions(rng)
            return (pos[i:i + bs] for i in range(0, len(pos), bs))
        return (next(stream) for _ in range(min(every, budget - k * every)))

    def validation_loss(model, epoch):
        model.eval()
        vt, vn = 0.0, 0
        with torch.no_grad():
            for step, i in enumerate(range(0, len(val_pos), bs)):
                pb, cb, wb = make_batch(est, val_arrays, val_pos[i:i + bs])
                loss_value = float(est._loss(model, pb, cb, wb, sample=False)[0])
                if not math.isfinite(loss_value):
                    raise failure("validation loss", loss_value, epoch, step)
                vt += loss_value * len(pb)
                vn += len(pb)
        return vt / vn

    opt = torch.optim.Adam(model.parameters(), lr=float(est.learning_rate))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=n_intervals,
                                                       eta_min=float(est.learning_rate) / 20)
    history = {"train_loss": [], "val_loss": [], "kl": [], "seconds": [], "steps": []}
    best, best_state, bad = np.inf, None, 0
    # Early stopping needs held-out tiles: the training loss of a few batches is too noisy to tell
    # convergence (it stopped a 20 × 20 map's fits at half the budget, far from its data).
    stop_early = bool(est.early_stopping) and val_pos is not None
    if est.early_stopping and val_pos is None:
        _logger.info("No validation tiles (validation_fraction=0 or a small map): the whole budget "
                     "is trained, without early stopping.")
    use_amp = est.device_.type == "cuda"
    bar = tqdm(total=total, disable=not show, desc="Training CVAE", unit=unit)
    t_start = time.perf_counter()
    n_steps = 0
    try:
        for epoch in range(n_intervals):
            model.train()
            tot, tot_kl, nb = 0.0, 0.0, 0
            for step, batch in enumerate(interval_batches(epoch)):
                pb, cb, wb = make_batch(est, arrays, batch, rng)
                with torch.autocast(est.device_.type, dtype=torch.bfloat16, enabled=use_amp):
                    loss, rec, kl = est._loss(model, pb, cb, wb)
                loss_value = loss.item()
                if not math.isfinite(loss_value):
                    raise failure("training loss", loss_value, epoch, step)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if not grads_finite(model.parameters()):
                    raise failure("gradient of the training loss", None, epoch, step)
                opt.step()
                n_steps += 1
                tot += loss_value * len(pb)
                tot_kl += kl.item() * len(pb)
                nb += len(pb)
                if not by_epoch:
                    bar.update(1)
            sched.step()
            train_loss = tot / max(nb, 1)
            history["train_loss"].append(train_loss)
            history["kl"].append(tot_kl / max(nb, 1))
            val_loss = float("nan") if val_pos is None else validation_loss(model, epoch)
            history["val_loss"].append(val_loss)
            history["seconds"].append(time.perf_counter() - t_start)
            history["steps"].append(n_steps)
            if by_epoch:
                bar.update(1)
            bar.set_postfix(loss=f"{train_loss:.2f}", val=f"{val_loss:.2f}")
            monitor = val_loss if val_pos is not None else train_loss
            if monitor < best - 1e-3:  # the loss includes the spectra's entropy: absolute tolerance
                best, bad = monitor, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                bad += 1
                if stop_early and bad >= int(est.patience):
                    _logger.info("Early stopping after %d %ss (no improvement in %d measures "
                                 "of the validation loss).", n_steps if not by_epoch else epoch + 1,
                                 unit, bad)
                    break
    finally:
        bar.close()
    if stop_early and best_state is not None:
        model.load_state_dict(best_state)
    return history, n_steps
