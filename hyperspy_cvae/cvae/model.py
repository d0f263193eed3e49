"""The 3D convolutional variational autoencoder (PyTorch modules only).

No loss, optimiser, training loop or data handling lives here (see
:mod:`.losses` and :mod:`.estimator`).

Architecture (defaults, for a shard of 24 × 24 pixels × E channels)
--------------------------------------------------------------------
The input spectra are normalised to sum 1 and divided by the mean training
spectrum (so the network sees relative deviations, centred on 0). Energy is
compressed early, where the data are largest, by two per-spectrum strided
convolutions (Conv3d with kernel 1 × 1 × 8, stride 4 in energy), then two
strided 4 × 4 × 4 Conv3d layers mix space and energy (stride 2 in x, y and E),
a linear layer gives the mean and log-variance of the latent Gaussian. The
decoder mirrors this with ConvTranspose3d layers and outputs, per spectrum,
logits over energy around the log of the mean training spectrum; the
reconstruction is ``softmax(logits) × counts``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["Encoder", "Decoder", "CVAE3D", "EnergyConvTranspose3d", "count_macs", "floor_mean_spectrum", "MEAN_SPECTRUM_FLOOR"]

#: Smallest value of the mean training spectrum, relative to a flat spectrum (``1/E``): a channel
#: that carries no counts in any training spectrum (a dead detector channel, or one cleared by
#: clipping a dark offset) would otherwise give ``p / 0`` at the input and ``log(0) = -inf`` in the
#: decoder. Far below any channel that ever receives counts (a share of 10⁻⁶ of a flat channel),
#: so ordinary mean spectra are left unchanged, bit for bit.
MEAN_SPECTRUM_FLOOR = 1e-6


def floor_mean_spectrum(mean_spectrum, n_channels: int) -> torch.Tensor:
    """``mean_spectrum`` (float32) with values below ``MEAN_SPECTRUM_FLOOR / n_channels`` raised to it.

    Values at or above the floor are returned unchanged (bit for bit). A channel at the floor is
    reconstructed as ~0 (its logits start ~14 nats below a flat channel's); :class:`CVAE3D` gives
    it the input ``-1`` (no counts) whatever the spectrum holds there, since the training data
    said nothing about it (``p / floor`` would be ~10⁶ times too large).
    """
    ms = torch.as_tensor(mean_spectrum, dtype=torch.float32).clone()
    floor = torch.tensor(MEAN_SPECTRUM_FLOOR / n_channels, dtype=torch.float32)
    return torch.where(ms < floor, floor.to(ms.device), ms)


def _energy_conv(cin: int, cout: int) -> nn.Conv3d:
    return nn.Conv3d(cin, cout, kernel_size=(1, 1, 8), stride=(1, 1, 4), padding=(0, 0, 2))


class EnergyConvTranspose3d(nn.ConvTranspose3d):
    """A ConvTranspose3d along energy only, computed as a sub-pixel convolution.

    For kernel ``(1, 1, 2s)``, stride ``(1, 1, s)`` and padding ``(0, 0, s/2)`` (``s`` even), output
    channel ``s·j + q`` receives input channels ``j − 1``, ``j`` and ``j + 1`` through three taps of
    the kernel, so the layer equals a kernel-3 :func:`torch.nn.functional.conv3d` with ``s·C_out``
    output channels whose phases are interleaved along energy. Same parameters (and checkpoint
    keys) and the same function as :class:`torch.nn.ConvTranspose3d` (to float rounding); about
    twice as fast on CPUs, where strided transposed convolutions are slow.

    Examples
    --------
    >>> layer = EnergyConvTranspose3d(4, 2, kernel_size=(1, 1, 8), stride=(1, 1, 4), padding=(0, 0, 2))
    >>> x = torch.randn(1, 4, 2, 2, 6)
    >>> ref = nn.functional.conv_transpose3d(x, layer.weight, layer.bias, (1, 1, 4), (0, 0, 2))
    >>> bool(torch.allclose(layer(x), ref, atol=1e-6)), tuple(layer(x).shape)
    (True, (1, 2, 2, 2, 24))
    """

    def _subpixel(self, x) -> bool:
        s = self.stride[2]
        return (x.dim() == 5 and self.kernel_size == (1, 1, 2 * s) and self.stride[:2] == (1, 1) and s % 2 == 0
                and self.padding == (0, 0, s // 2) and self.output_padding == (0, 0, 0)
                and self.dilation == (1, 1, 1) and self.groups == 1)

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        if output_size is not None or not self._subpixel(x):
            return super().forward(x, output_size)
        s, h = self.stride[2], self.stride[2] // 2
        w = self.weight[:, :, 0, 0, :]                      # (C_in, C_out, 2s)
        zero = w.new_zeros(w.shape[:2] + (h,))
        taps = torch.stack([torch.cat([w[..., s + h:], zero], -1),  # from x[j − 1], phases q < s/2
                            w[..., h:h + s],                           # from x[j]
                            torch.cat([zero, w[..., :h]], -1)], -1)    # from x[j + 1], phases q ≥ s/2
        c_in, c_out = w.shape[:2]
        kernel = taps.permute(1, 2, 0, 3).reshape(c_out * s, c_in, 1, 1, 3)
        bias = None if self.bias is None else self.bias.repeat_interleave(s)
        y = F.conv3d(x, kernel, bias, padding=(0, 0, 1))     # (B, C_out·s, Y, X, E)
        b, _, ny, nx, e = y.shape
        return y.view(b, c_out, s, ny, nx, e).permute(0, 1, 3, 4, 5, 2).reshape(b, c_out, ny, nx, e * s)


def _energy_deconv(cin: int, cout: int) -> nn.ConvTranspose3d:
    return EnergyConvTranspose3d(cin, cout, kernel_size=(1, 1, 8), stride=(1, 1, 4), padding=(0, 0, 2))


def _joint_conv(cin: int, cout: int) -> nn.Conv3d:
    return nn.Conv3d(cin, cout, kernel_size=4, stride=2, padding=1)


def _joint_deconv(cin: int, cout: int) -> nn.ConvTranspose3d:
    return nn.ConvTranspose3d(cin, cout, kernel_size=4, stride=2, padding=1)


class Encoder(nn.Module):
    """Shard (B, 1, S, S, E_pad) → latent mean and log-variance (B, latent_dim)."""

    def __init__(self, widths: tuple, feature_shape: tuple, latent_dim: int):
        super().__init__()
        w0, w1, w2, w3 = widths
        self.features = nn.Sequential(
            _energy_conv(1, w0), nn.SiLU(),
            _energy_conv(w0, w1), nn.SiLU(),
            _joint_conv(w1, w2), nn.SiLU(),
            _joint_conv(w2, w3), nn.SiLU(),
        )
        self.to_latent = nn.Linear(w3 * math.prod(feature_shape), 2 * latent_dim)

    def forward(self, x: torch.Tensor):
        h = self.features(x).flatten(1)
        mu, logvar = self.to_latent(h).chunk(2, dim=1)
        return mu, logvar


class Decoder(nn.Module):
    """Latent (B, latent_dim) → logits (B, 1, S, S, E_pad)."""

    def __init__(self, widths: tuple, feature_shape: tuple, latent_dim: int):
        super().__init__()
        w0, w1, w2, w3 = widths
        self.feature_shape = (w3,) + tuple(feature_shape)
        self.from_latent = nn.Linear(latent_dim, w3 * math.prod(feature_shape))
        self.features = nn.Sequential(
            nn.SiLU(),
            _joint_deconv(w3, w2), nn.SiLU(),
            _joint_deconv(w2, w1), nn.SiLU(),
            _energy_deconv(w1, w0), nn.SiLU(),
            _energy_deconv(w0, 1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.from_latent(z).view(z.shape[0], *self.feature_shape)
        return self.features(h)


class CVAE3D(nn.Module):
    """3D convolutional VAE over shards of normalised spectra.

    Parameters
    ----------
    n_channels : int
        Number of energy channels ``E`` of the spectra (after cropping to the
        signal range). Internally padded to a multiple of 64.
    shard_size : int
        Side of the square shard in pixels; a multiple of 4.
    latent_dim : int
        Size of the latent Gaussian.
    widths : tuple of 4 int
        Channel widths of the four encoder stages (mirrored in the decoder).
    mean_spectrum : torch.Tensor, optional
        Mean normalised training spectrum (length ``E``); inputs are expressed
        relative to it and the decoder predicts logits around its log. Set by
        the training code; defaults to flat. Values below
        ``MEAN_SPECTRUM_FLOOR / E`` (e.g. 0 at a dead channel) are raised to it
        (see :func:`floor_mean_spectrum`).

    Examples
    --------
    >>> m = CVAE3D(n_channels=200, shard_size=24, latent_dim=48)
    >>> p = torch.full((2, 24, 24, 200), 1 / 200)
    >>> logits, mu, logvar = m(p)
    >>> tuple(logits.shape), tuple(mu.shape)
    ((2, 24, 24, 200), (2, 48))
    """

    def __init__(self, n_channels: int, shard_size: int = 24, latent_dim: int = 48,
                 widths: tuple = (8, 16, 32, 32), mean_spectrum: torch.Tensor | None = None):
        super().__init__()
        if shard_size % 4 or shard_size < 8:
            raise ValueError(f"`shard_size` must be a multiple of 4 and >= 8, got {shard_size}.")
        if n_channels < 16:
            raise ValueError(f"`n_channels` must be >= 16, got {n_channels}.")
        if len(widths) != 4 or min(widths) < 1:
            raise ValueError(f"`widths` must be 4 positive ints, got {widths!r}.")
        self.n_channels = int(n_channels)
        self.shard_size = int(shard_size)
        self.latent_dim = int(latent_dim)
        self.widths = tuple(int(w) for w in widths)
        self.padded_channels = 64 * math.ceil(n_channels / 64)
        feature_shape = (shard_size // 4, shard_size // 4, self.padded_channels // 64)
        self.encoder = Encoder(self.widths, feature_shape, self.latent_dim)
        self.decoder = Decoder(self.widths, feature_shape, self.latent_dim)
        if mean_spectrum is None:
            mean_spectrum = torch.full((n_channels,), 1.0 / n_channels)
        self.register_buffer("mean_spectrum", floor_mean_spectrum(mean_spectrum, self.n_channels))
        self._floor = MEAN_SPECTRUM_FLOOR / self.n_channels  # not state: channels at it are dead

    def _prepare(self, p: torch.Tensor) -> torch.Tensor:
        ms = self.mean_spectrum
        # channels at the floor carried no training counts: input -1 (no counts); a no-op otherwise
        x = torch.where(ms > self._floor, p / ms - 1.0, -1.0)
        x = F.pad(x, (0, self.padded_channels - self.n_channels))
        return x.unsqueeze(1)

    def encode(self, p: torch.Tensor):
        """Latent mean and log-variance of normalised shards ``p`` (B, S, S, E)."""
        return self.encoder(self._prepare(p))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Logits over energy (B, S, S, E) for latent vectors ``z``."""
        out = self.decoder(z)[:, 0, ..., : self.n_channels]
        return out + torch.log(self.mean_spectrum)

    def forward(self, p: torch.Tensor, sample: bool | None = None):
        """Return ``(logits, mu, logvar)``.

        The latent is sampled with the reparameterisation trick when
        ``sample`` is True (default: in training mode) and is the mean otherwise.
        """
        mu, logvar = self.encode(p)
        if sample is None:
            sample = self.training
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if sample else mu
        return self.decode(z), mu, logvar


def count_macs(model: CVAE3D) -> dict:
    """Parameters and multiply-accumulates of one forward pass (latent mean).

    Returns
    -------
    dict
        ``parameters``, ``macs_per_shard`` and ``macs_per_spectrum``.
    """
    macs = 0

    def hook(mod, inp, out):
        nonlocal macs
        if isinstance(mod, nn.Conv3d):
            k = math.prod(mod.kernel_size) * mod.in_channels // mod.groups
            macs += out.numel() * k
        elif isinstance(mod, nn.ConvTranspose3d):
            k = math.prod(mod.kernel_size) * mod.out_channels // mod.groups
            macs += inp[0].numel() * k
        elif isinstance(mod, nn.Linear):
            macs += out.numel() * mod.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d, nn.Linear))]
    try:
        was = model.training
        model.eval()
        with torch.no_grad():
            model(torch.full((1, model.shard_size, model.shard_size, model.n_channels),
                             1.0 / model.n_channels, device=model.mean_spectrum.device))
        model.train(was)
    finally:
        for h in handles:
            h.remove()
    n_params = sum(p.numel() for p in model.parameters())
    return {"parameters": n_params, "macs_per_shard": macs,
            "macs_per_spectrum": macs / model.shard_size**2}
