"""The 3D-CVAE: its network, the scikit-learn estimator that trains it, training data, checkpoints
and streaming inference over (lazy) spectrum images."""

from .estimator import CVAE
from .guards import NonFiniteTrainingError
from .model import CVAE3D
from .sampling import normalise_spectra
from .streaming import ModelHandle, forward_block, map_shards

__all__ = ["CVAE", "CVAE3D", "ModelHandle", "NonFiniteTrainingError", "forward_block", "map_shards",
           "normalise_spectra"]
