"""Plots of fractions, accuracy against truth, cross-omics consistency and training curves."""

from ._consistency import consistency
from ._fractions import fractions
from ._training import training
from ._truth import truth

__all__ = ["consistency", "fractions", "training", "truth"]
