import numpy as np
import pytest
import torch

from hyperspy_cvae.cvae.model import CVAE3D, count_macs
from hyperspy_cvae.cvae.losses import cross_entropy_loss, kl_divergence, poisson_nll_loss


def _p(b=2, s=8, e=100, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, s, s, e, generator=g) + 0.1
    return x / x.sum(-1, keepdim=True)


def test_shapes_and_gradients():
    m = CVAE3D(n_channels=100, shard_size=8, latent_dim=6)
    p = _p()
    logits, mu, logvar = m(p)
    assert logits.shape == p.shape and mu.shape == (2, 6) and logvar.shape == (2, 6)
    (cross_entropy_loss(logits, p) + kl_divergence(mu, logvar)).backward()
    grads = [q.grad for q in m.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_eval_uses_latent_mean():
    m = CVAE3D(n_channels=100, shard_size=8, latent_dim=6).eval()
    p = _p()
    a, b = m(p)[0], m(p)[0]
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, m.decode(m.encode(p)[0]))
    m.train()
    assert not torch.allclose(m(p)[0], m(p)[0])


def test_cross_entropy_by_hand():
    logits = torch.tensor([[[[0.0, 1.0, 2.0]]]])
    p = torch.tensor([[[[0.2, 0.3, 0.5]]]])
    q = np.exp([0.0, 1.0, 2.0]) / np.exp([0.0, 1.0, 2.0]).sum()
    ref = -(np.array([0.2, 0.3, 0.5]) * np.log(q)).sum()
    assert float(cross_entropy_loss(logits, p)) == pytest.approx(ref, rel=1e-6)
    counts = p * 1000  # N · KL(p ‖ q) = N · (CE − H(p))
    entropy = -(np.array([0.2, 0.3, 0.5]) * np.log([0.2, 0.3, 0.5])).sum()
    assert float(poisson_nll_loss(logits, counts)) == pytest.approx(1000 * (ref - entropy), rel=1e-4)
    assert float(poisson_nll_loss(torch.log(p), counts)) == pytest.approx(0.0, abs=1e-3)
    w = torch.zeros(1, 1, 1)
    assert float(cross_entropy_loss(logits, p, w)) == 0.0


def test_kl_closed_form():
    mu = torch.tensor([[0.5, -1.0]])
    logvar = torch.tensor([[0.2, -0.3]])
    var = np.exp([0.2, -0.3])
    ref = 0.5 * np.sum(var + np.array([0.5, -1.0]) ** 2 - 1 - np.array([0.2, -0.3]))
    assert float(kl_divergence(mu, logvar)) == pytest.approx(ref, rel=1e-6)
    assert float(kl_divergence(torch.zeros(1, 3), torch.zeros(1, 3))) == 0.0


def test_budget_for_fe_l_range():
    info = count_macs(CVAE3D(n_channels=334, shard_size=24, latent_dim=48))
    assert info["parameters"] <= 2_000_000
    assert info["macs_per_spectrum"] <= 1_000_000


@pytest.mark.parametrize("kw", [{"shard_size": 10}, {"n_channels": 8}, {"widths": (1, 2, 3)}])
def test_bad_config(kw):
    args = {"n_channels": 100, "shard_size": 8}
    args.update(kw)
    with pytest.raises(ValueError):
        CVAE3D(**args)
