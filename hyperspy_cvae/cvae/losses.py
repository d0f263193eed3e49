"""Training losses of the CVAE: the reconstruction terms (the paper's cross-entropy, the Poisson
likelihood of the counts) and the KL term."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["cross_entropy_loss", "poisson_nll_loss", "kl_divergence"]


def cross_entropy_loss(logits: torch.Tensor, p: torch.Tensor, weight: torch.Tensor | None = None):
    """Cross-entropy between spectra normalised to sum 1 and ``softmax(logits)``.

    Summed over the spectra of each shard (optionally weighted per spectrum,
    e.g. 0 outside the training mask) and averaged over the batch.
    """
    ce = -(p * F.log_softmax(logits, dim=-1)).sum(-1)
    if weight is not None:
        ce = ce * weight
    return ce.flatten(1).sum(1).mean()


def poisson_nll_loss(logits: torch.Tensor, counts: torch.Tensor, weight: torch.Tensor | None = None):
    """Poisson negative log-likelihood ratio of ``counts`` for rates ``N·softmax(logits)``.

    ``N`` is the spectrum's total counts, so this is ``N`` times the
    Kullback–Leibler divergence between the spectrum's normalised shape and
    the predicted one (half the Poisson deviance; the saturated model's
    log-likelihood is subtracted, so a perfect model scores ~E/2 per spectrum
    from noise alone, not a large constant). Unlike :func:`cross_entropy_loss`,
    which weighs every spectrum as a single draw whatever its counts, it is the
    likelihood of the counts actually measured: a shard carries
    ``N ≈ 10⁴–10⁵`` times more evidence, and the KL term of the VAE no longer
    drowns it. Summed over the
    spectra of each shard (optionally weighted) and averaged over the batch.
    """
    n = counts.sum(-1, keepdim=True).clamp_min(1e-12)
    log_p = torch.log(counts.clamp_min(1e-30) / n)
    nll = (counts * (log_p - F.log_softmax(logits, dim=-1))).sum(-1)
    if weight is not None:
        nll = nll * weight
    return nll.flatten(1).sum(1).mean()


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) ‖ N(0, I)), summed over latent dims, averaged over the batch."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()
