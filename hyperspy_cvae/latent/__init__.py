"""The CVAE's latent space: similarity of twin shards, the Mahalanobis anomaly score, phase maps,
a 2D embedding of the latent means and decoding latent vectors to spectra (computation only;
figures are in :mod:`..plotting`)."""

from .embedding import LatentEmbedding, latent_embedding, shard_flags
from .grid import shard_to_pixels
from .mahalanobis import latent_mahalanobis, mahalanobis_distances
from .phases import cluster_latents, decode_latent, latent_phase_map, phase_means
from .similarity import latent_pair_similarity

__all__ = ["latent_pair_similarity", "latent_mahalanobis", "mahalanobis_distances",
           "latent_phase_map", "cluster_latents", "decode_latent", "phase_means", "shard_to_pixels",
           "latent_embedding", "LatentEmbedding", "shard_flags"]
