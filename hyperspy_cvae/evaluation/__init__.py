"""Judging a detector against a known truth: detection metrics and denoising error."""

from .denoising import denoising_mse
from .metrics import detection_metrics, precision_recall_curve

__all__ = ["detection_metrics", "precision_recall_curve", "denoising_mse"]
