"""The DECODE model (scvi-tools), its network (one component per stage) and its training plan. Needs torch and
scvi-tools."""

import warnings

with warnings.catch_warnings():
    # scvi-tools imports tqdm.auto, which warns in a Jupyter kernel without ipywidgets; its bars work without them
    warnings.filterwarnings("ignore", message=".*IProgress not found.*")
    from ._ensemble import DECODEEnsemble
    from ._model import DECODE
    from ._module import ContrastiveDenoiser, DECODEModule, DeconvolutionHead, DomainAdversary, Encoder
    from ._training_plan import DECODETrainingPlan

__all__ = [
    "DECODE",
    "ContrastiveDenoiser",
    "DECODEEnsemble",
    "DECODEModule",
    "DECODETrainingPlan",
    "DeconvolutionHead",
    "DomainAdversary",
    "Encoder",
]
