"""Preprocessing: scale checks, feature alignment and pseudo-tissue simulation."""

from .._engine.features import align_features, shared_features
from .._engine.scale import ScaleError, ScaleReport, check_scale, detect_scale, to_linear
from ._simulate import simulate_pseudobulk

__all__ = [
    "ScaleError",
    "ScaleReport",
    "align_features",
    "check_scale",
    "detect_scale",
    "shared_features",
    "simulate_pseudobulk",
    "to_linear",
]
