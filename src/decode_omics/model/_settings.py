"""Settings shared by the model's parts: the seed, the training settings, and parameter text shared by docstrings."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from scvi import settings

from .._engine.docs import fill_docs

#: Share of the epochs an ensemble trains first on values read as stored, before its average judges which features
#: transfer to the bulk's platform and it trains again on those (one network trains fully both times).
JUDGING_EPOCHS = 1 / 3


def current_seed() -> int:
    """``scvi.settings.seed``, or 0 when unset: the seed of every draw the model makes."""
    return settings.seed if settings.seed is not None else 0


@dataclass
class TrainSettings:
    """The arguments of :meth:`~decode_omics.model.DECODE.train` (documented there), in one place."""

    max_epochs: int = 100
    batch_size: int = 128
    n_pseudotissues: int = 2048
    lr: float = 1e-3
    adversarial: bool = False
    denoise: bool = True
    contrastive_weight: float = 0.1
    adversarial_weight: float = 0.1
    spread_weight: float = 1.0
    input_noise: float = 0.2
    measurement_noise: float | str = 0.0
    weight_averaging: float = 0.995
    align: str = "bulk"
    early_stopping: bool = True
    early_stopping_patience: int = 15
    n_validation: int = 512
    accelerator: str = "auto"
    devices: int | list[int] | str = "auto"
    plan_kwargs: dict | None = None
    trainer_kwargs: dict = field(default_factory=dict)

    #: What a trained model records in ``train_settings_`` (and its saved attributes), in this order.
    RECORDED = (
        "max_epochs",
        "batch_size",
        "n_pseudotissues",
        "lr",
        "adversarial",
        "denoise",
        "contrastive_weight",
        "adversarial_weight",
        "spread_weight",
        "input_noise",
        "measurement_noise",
        "weight_averaging",
        "align",
    )

    @classmethod
    def from_call(cls, arguments: dict) -> TrainSettings:
        """The settings among a call's ``locals()`` (``trainer_kwargs`` taken from its ``**trainer_kwargs``)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in arguments.items() if k in names})

    def judging(self) -> TrainSettings:
        """The settings of an ensemble's first training on values read as stored, whose average only judges which
        features transfer to the bulk's platform: :data:`JUDGING_EPOCHS` of the epochs."""
        return dataclasses.replace(self, max_epochs=max(1, math.ceil(self.max_epochs * JUDGING_EPOCHS)))

    def plan(self) -> dict:
        """Keyword arguments of :class:`~decode_omics.model.DECODETrainingPlan`."""
        keys = ("lr", "denoise", "adversarial", "contrastive_weight", "adversarial_weight", "spread_weight")
        keys += ("input_noise", "measurement_noise", "weight_averaging", "align", "max_epochs")
        return {k: getattr(self, k) for k in keys} | (self.plan_kwargs or {})

    def recorded(self) -> dict:
        """The settings a trained model records, with the seed."""
        return {k: getattr(self, k) for k in self.RECORDED} | {"seed": current_seed()}


#: Parameter text shared by the docstrings of the model's methods (filled in by :func:`shared_docs`).
_DATA = """Bulk samples (AnnData, or MuData with ``modality``; default: the registered bulk) and the layer to read
    instead of ``.X``. ``adata`` must hold every feature the model reads (matched by name); a backed or dask-backed
    AnnData is read in blocks of 10,000 samples, never whole."""
PARAMS = {
    "data": f"""adata, layer, modality, scale
    {_DATA} ``scale`` is the scale of ``adata`` (``"auto"`` detects it, see
    :func:`~decode_omics.pp.to_linear`); the registered bulk is read with the layer and scale it was registered
    with.""",
    "data_without_scale": f"""adata, layer, modality
    {_DATA}""",
    "platform_correction": """platform_correction
    Divide the samples by the platform gains fitted to the registered bulk in training (:attr:`platform_gains_`;
    nothing to divide by if none were fitted; in absolute mode the fractions read only the known labels' split
    through them and the ``unknown`` share as measured). Set ``False`` for samples from another platform or batch
    than the registered bulk. The feature mask of a model of values read as stored (:attr:`feature_agreement_`) is
    part of the trained network and applies to every sample.""",
    "batch_size": """batch_size
    Samples per forward pass.""",
}


#: Fills the shared parameter text into a docstring.
shared_docs = fill_docs(PARAMS)
