"""The DECODE model (scvi-tools), its network (one component per stage) and its training plan. Needs torch and
scvi-tools."""

from ._model import DECODE
from ._module import ContrastiveDenoiser, DECODEModule, DeconvolutionHead, DomainAdversary, Encoder
from ._training_plan import DECODETrainingPlan

__all__ = [
    "DECODE",
    "ContrastiveDenoiser",
    "DECODEModule",
    "DECODETrainingPlan",
    "DeconvolutionHead",
    "DomainAdversary",
    "Encoder",
]
