"""Built-in synthetic data: a BiFeO3-like core-loss spectrum image, and injected anomalies with
a known truth (array functions; the signal method is ``inject_shift``)."""

from .data import bifeo3_si, spectrum_components
from .inject import cluster_mask, shift_window, window_taper

__all__ = ["bifeo3_si", "spectrum_components", "cluster_mask", "shift_window", "window_taper"]
