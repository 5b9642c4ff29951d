"""Model files: tensors in ``model_weights.pt`` (read with ``weights_only=True``), everything else in JSON.

Loading never runs code from a file: no unrestricted pickle anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from uuid import uuid4

import pandas as pd
import torch

from ._ensemble import build_network, ensemble_from_file_layout

WEIGHTS_FILE = "model_weights.pt"
ATTRS_FILE = "model_attributes.json"
FORMAT_VERSION = 1


def write_model_files(path: Path, state_dict: dict, attrs: dict, overwrite: bool) -> None:
    """Write the weights and the attributes into the folder ``path``."""
    if path.exists() and not path.is_dir():
        raise ValueError(
            f"{path} is a file, not a folder: a model is saved as a folder of files. Pass a new folder path (or an "
            "existing model folder with overwrite=True)."
        )
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise ValueError(f"{path} exists and is not empty; pass overwrite=True to replace it.")
    path.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in state_dict.items()}, path / WEIGHTS_FILE)
    attrs = {"format_version": FORMAT_VERSION} | attrs
    (path / ATTRS_FILE).write_text(json.dumps(attrs, indent=1, default=str))


def read_model_files(path: Path) -> tuple[dict, dict]:
    """Read ``(attributes, state_dict)`` from a model folder, with clear errors for anything that is not one."""
    if not path.is_dir():
        raise FileNotFoundError(f"No saved model folder at {path}.")
    attrs_path, weights_path = path / ATTRS_FILE, path / WEIGHTS_FILE
    if not attrs_path.is_file() or not weights_path.is_file():
        raise FileNotFoundError(f"{path} is not a DECODE model folder: it needs {ATTRS_FILE} and {WEIGHTS_FILE}.")
    try:
        attrs = json.loads(attrs_path.read_text())
        for key in ("features", "labels", "mode", "module_kwargs"):
            attrs[key]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise ValueError(f"{attrs_path} is corrupted or not a DECODE model file ({err!r}).") from err
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling refused (code in the file) or the file is damaged
        raise ValueError(
            f"{weights_path} could not be read as plain tensors ({type(err).__name__}: {str(err)[:200]}). "
            "DECODE model files hold tensors only; this file is corrupted or not from decode-omics."
        ) from err
    return attrs, state


def _series(values, index, name: str):
    return None if values is None else pd.Series(values, index=pd.Index(index), name=name)


#: The model's saved attributes: ``(key in the attributes file, attribute, default when a file lacks it, to JSON,
#: from JSON)``, in file order (a list for ``history``, ``platform_gains`` and ``feature_agreement``).
ATTRIBUTES = (
    ("features", "features_", None, list, list),
    ("labels", "labels_", None, list, list),
    ("label_values", "label_values_", None, lambda v: v, None),  # the reference's own values, when not strings
    ("mode", "mode_", None, str, str),
    ("bulk_scale", "bulk_scale_", None, lambda v: v, None),
    ("module_kwargs", "module_kwargs_", None, dict, dict),
    ("n_members", "n_members_", 1, int, int),
    ("denoise", "denoise_", True, bool, bool),
    ("pseudotissue", "pseudotissue_", "parametric", str, str),
    ("standardize", "standardize_", False, bool, bool),
    ("centring_complement", "centring_complement_", False, bool, bool),
    ("excess_features", "excess_features_", [], list, list),
    ("train_settings", "train_settings_", {}, dict, dict),
    ("is_trained", "is_trained_", True, bool, bool),
    (
        "history",
        "history_",
        {},
        lambda h: {k: v.iloc[:, 0].astype(float).tolist() for k, v in (h or {}).items()},
        lambda h: {k: pd.DataFrame({k: v}) for k, v in h.items()},
    ),
    ("platform_gains", "platform_gains_", None, lambda s: None if s is None else s.tolist(), None),
    ("feature_agreement", "feature_agreement_", None, lambda s: None if s is None else s.tolist(), None),
    ("interval_calibration", "interval_calibration_", None, lambda c: c, None),
    ("init_params", "init_params_", {}, lambda p: json.loads(json.dumps(p, default=str)), dict),
)


def model_attributes(model) -> dict:
    """Everything of a model but its weights, as JSON-ready values."""
    return {"class": type(model).__name__} | {key: put(getattr(model, attr)) for key, attr, _, put, _ in ATTRIBUTES}


def restore_attributes(model, attrs: dict) -> None:
    """Set a model's attributes from a file's (the inverse of :func:`model_attributes`)."""
    for key, attr, default, _, get in ATTRIBUTES:
        value = attrs.get(key, default)
        if get is not None and value is not None:
            value = get(value)
        setattr(model, attr, value)
    model.platform_gains_ = _series(attrs.get("platform_gains"), model.features_, "platform_gain")
    model.feature_agreement_ = _series(attrs.get("feature_agreement"), model.features_, "feature_agreement")
    model.excess_share_ = model.excess_carriers_ = None  # the registered bulk's reading: not saved with the model


def restore_model(cls, path: Path, device) -> tuple:
    """A model of class ``cls`` from the folder ``path`` (without data attached), on ``device`` in evaluation mode,
    and the attributes read."""
    attrs, state = read_model_files(path)
    model = cls.__new__(cls)
    restore_attributes(model, attrs)
    n_features, n_labels = len(model.features_), len(model.labels_)
    absolute = model.mode_ == "absolute"
    model.module = build_network(
        n_features, n_labels, absolute=absolute, n_members=model.n_members_, **model.module_kwargs_
    )
    if model.n_members_ == 1:
        state.setdefault("transform.mask", torch.ones(n_features))  # files written before the mask existed
    try:
        model.module.load_state_dict(ensemble_from_file_layout(state, model.n_members_))
    except (RuntimeError, KeyError) as err:
        raise ValueError(f"The weights in {path} do not match its attributes file: {err}") from err
    # what scvi-tools' BaseModelClass.__init__ would have set, for a model without registered data
    model.id, model.summary_stats, model.run_name_, model.run_id_ = str(uuid4()), {}, "loaded", ""
    model._adata, model._adata_manager, model.registry_ = None, None, None
    model.bulk_manager_, model.bulk_, model._module_init_on_train = None, None, False
    model.train_indices_ = model.test_indices_ = model.validation_indices_ = None
    model.get_normalized_function_name_ = "get_fractions"
    model._model_summary_string = f"DECODE model ({model.mode_}): {n_labels} labels, {n_features} features (loaded)."
    model.module.to(device).eval()
    return model, attrs
