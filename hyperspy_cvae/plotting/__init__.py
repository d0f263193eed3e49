"""Figures: they draw what the detectors returned and never compute it again."""

from .describe import plot_description
from .latent import plot_latent_embedding, plot_latent_maps, plot_latent_similarity, plot_phase_map
from .maps import outline_mask, plot_score_histogram, plot_score_map
from .results import plot_anomaly_results, plot_comparison, plot_labels, plot_method_comparison
from .spectra import example_pixels, plot_example_spectra
from .training import plot_history

__all__ = ["plot_score_map", "plot_score_histogram", "outline_mask", "example_pixels",
           "plot_example_spectra", "plot_anomaly_results", "plot_comparison",
           "plot_method_comparison", "plot_latent_maps", "plot_phase_map", "plot_latent_similarity",
           "plot_latent_embedding", "plot_history", "plot_labels", "plot_description"]
