"""Model files: tensors in ``model_weights.pt`` (read with ``weights_only=True``), everything else in JSON.

Loading never runs code from a file: no unrestricted pickle anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

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
