"""Where the network runs: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ..."""

from __future__ import annotations

import torch

__all__ = ["resolve_device"]


def resolve_device(device="auto") -> torch.device:
    """``"auto"`` → CUDA if available, else CPU; otherwise ``torch.device(device)``.

    Raises
    ------
    ValueError
        If CUDA is requested but not available.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but CUDA is not available; use device='cpu' "
                         "or device='auto'.")
    return dev

