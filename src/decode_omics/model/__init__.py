"""The DECODE model (scvi-tools), its network and its training plan. Needs torch and scvi-tools."""

from ._model import DECODE
from ._module import DECODEModule
from ._training_plan import DECODETrainingPlan

__all__ = ["DECODE", "DECODEModule", "DECODETrainingPlan"]
