"""hyperspy-cvae: 3D convolutional VAE anomaly detection for EELS spectrum images.

A HyperSpy extension: ``s.set_signal_type("CVAE_EELS")`` gives a
:class:`CVAEEELSSpectrum` with ``fit_cvae``, ``cvae_decomposition``,
``inject_shift`` and ``anomaly_map``.

Subpackages: :mod:`.cvae` (network, estimator, streaming), :mod:`.scores`
(scores, thresholds, masks), :mod:`.latent`, :mod:`.synthetic` (built-in data,
injected anomalies), :mod:`.evaluation` (metrics), :mod:`.plotting`.
"""

from ._validation import EnergyWindow, crop_to_model, energy_window
from ._version import __version__
from .cvae import CVAE, NonFiniteTrainingError
from .evaluation import denoising_mse, detection_metrics
from .latent import latent_embedding, latent_mahalanobis, latent_pair_similarity, latent_phase_map
from .plotting import plot_comparison, plot_latent_embedding
from .refine import refine_reconstruction
from .results import AnomalyResult
from .signals import CVAEEELSSpectrum, LazyCVAEEELSSpectrum, to_cvae

__all__ = ["__version__", "CVAEEELSSpectrum", "LazyCVAEEELSSpectrum", "to_cvae", "CVAE",
           "AnomalyResult", "latent_pair_similarity", "latent_mahalanobis", "latent_phase_map",
           "latent_embedding", "denoising_mse", "detection_metrics", "plot_comparison",
           "plot_latent_embedding", "EnergyWindow", "energy_window", "crop_to_model",
           "NonFiniteTrainingError", "refine_reconstruction"]
