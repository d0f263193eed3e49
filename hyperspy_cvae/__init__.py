"""hyperspy-cvae: 3D convolutional VAE anomaly detection for EELS spectrum images.

A HyperSpy extension: ``s.set_signal_type("CVAE_EELS")`` gives a
:class:`CVAEEELSSpectrum` with ``fit_cvae``, ``cvae_decomposition``,
``inject_shift`` and ``anomaly_map``.
"""

from ._version import __version__
from .signals import CVAEEELSSpectrum, LazyCVAEEELSSpectrum, to_cvae
from .training import CVAE
from .latent import latent_mahalanobis, latent_pair_similarity, latent_phase_map
from .denoising import denoising_mse
from .plotting import plot_comparison

__all__ = ["__version__", "CVAEEELSSpectrum", "LazyCVAEEELSSpectrum", "to_cvae", "CVAE",
           "latent_pair_similarity", "latent_mahalanobis", "latent_phase_map", "denoising_mse",
           "plot_comparison"]
