"""Registering data with the model through scvi-tools' ``AnnDataManager``, and reading back what was registered."""

from __future__ import annotations

import pandas as pd
from anndata import AnnData
from mudata import MuData
from scvi import REGISTRY_KEYS
from scvi.data import AnnDataManager
from scvi.data.fields import CategoricalObsField, LayerField, MuDataCategoricalObsField, MuDataLayerField

from .._engine.scale import USER_SCALES, get_matrix
from ._pseudotissues import PseudoTissueSampler
from ._reference import prepare_registered


def registered(manager: AnnDataManager) -> tuple[AnnData, dict]:
    """The AnnData (or MuData modality) a manager registered, and its setup arguments."""
    args = dict(manager.registry["setup_args"])
    data = manager.adata
    modality = args.get("modality")
    if isinstance(data, MuData):
        data = data.mod[modality]
    return data, args


def _check(adata: AnnData, labels_key: str | None, layer: str | None, scale: str, what: str) -> None:
    get_matrix(adata, layer)
    if scale != "auto" and scale not in USER_SCALES:
        raise ValueError(f"scale must be 'auto' or one of {USER_SCALES}, got {scale!r}.")
    if labels_key is not None and labels_key not in adata.obs.columns:
        raise KeyError(
            f"labels_key {labels_key!r} is not a column of {what}.obs (columns: {list(adata.obs.columns)[:20]})."
        )
    n_missing = int(adata.obs[labels_key].isna().sum()) if labels_key is not None else 0
    if n_missing:
        raise ValueError(f"{what}.obs[{labels_key!r}] has {n_missing} missing labels; drop those cells or label them.")


def register(model_class, data, modality, labels_key, layer, scale, setup_method_args: dict, kwargs: dict) -> None:
    """Check and register an AnnData (``modality=None``) or one modality of a MuData with ``model_class``."""
    if modality is None:
        _check(data, labels_key, layer, scale, "adata")
        fields = [LayerField(REGISTRY_KEYS.X_KEY, layer, is_count_data=False)]
        if labels_key is not None:
            fields.append(CategoricalObsField(REGISTRY_KEYS.LABELS_KEY, labels_key))
    else:
        if modality not in data.mod:
            raise KeyError(f"Modality {modality!r} is not in the MuData (modalities: {list(data.mod)}).")
        _check(data.mod[modality], labels_key, layer, scale, f"mdata[{modality!r}]")
        fields = [
            MuDataLayerField(REGISTRY_KEYS.X_KEY, layer, mod_key=modality, is_count_data=False, mod_required=True)
        ]
        if labels_key is not None:
            fields.append(MuDataCategoricalObsField(REGISTRY_KEYS.LABELS_KEY, labels_key, mod_key=modality))
    manager = AnnDataManager(fields=fields, setup_method_args=setup_method_args)
    manager.register_fields(data, **kwargs)
    model_class.register_manager(manager)


def attach_reference(model, reference, attrs: dict) -> None:
    """Register a loaded model's reference, so it can continue training and draw pseudo-tissues."""
    manager = model._get_most_recent_anndata_manager(reference, required=True)
    ref_adata, args = registered(manager)
    missing = pd.Index(model.features_).difference(ref_adata.var_names)
    if len(missing):
        raise ValueError(f"The reference lacks {len(missing)} of the model's features (e.g. {list(missing[:5])}).")
    model._adata, model._adata_manager, model.registry_ = reference, manager, manager.registry
    model._register_manager_for_instance(manager)
    ref = prepare_registered(ref_adata, args, candidates=pd.Index(model.features_), n_features=None, min_cells=1)
    if [str(x) for x in ref.labels] != model.labels_:
        raise ValueError(f"The reference's labels {list(ref.labels)} differ from the model's {model.labels_}.")
    init = attrs.get("init_params", {}).get("non_kwargs", {}) | attrs.get("init_params", {}).get("kwargs", {})
    model._sampler = PseudoTissueSampler.from_reference(
        ref,
        cells_per_sample=int(init.get("cells_per_sample", 30)),
        method=attrs.get("pseudotissue", "parametric"),
        fractions=init.get("fractions", "dirichlet"),
    )
    if getattr(model, "centring_complement_", False):  # a loaded model trains again as it was trained
        model._sampler.config.unknown_material = "complement"
    else:  # models saved before max_unknown_share existed trained on shares up to 0.5
        model._sampler.config.unknown_share = float(init.get("max_unknown_share", 0.5))
