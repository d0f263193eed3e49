"""One torch computation at a time per process, whatever the number of dask threads.

Torch already spreads each operation over every core (``torch.get_num_threads()``). Dask's
threaded scheduler runs several blocks at once; two torch computations in two of its threads
would then ask for twice the cores, and torch's OpenMP threads, which spin while they wait,
slow everything down several times over. The per-block torch work (the network's forward pass,
the shift score's likelihood scan) holds :data:`TORCH_LOCK`; what the other dask threads do
meanwhile (reading chunks, normalising, stitching) is numpy, which runs alongside.
"""

from __future__ import annotations

import threading

__all__ = ["TORCH_LOCK"]

#: Held around every per-block torch computation (a re-entrant lock: nested holds are harmless).
TORCH_LOCK = threading.RLock()
