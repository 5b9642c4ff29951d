"""AnnData helpers shared by the public functions and the model: label codes and light views of the data."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from .scale import get_matrix


def label_codes(adata: AnnData, labels_key: str, *, min_cells: int = 1) -> tuple[np.ndarray, pd.Index]:
    """Integer codes of ``adata.obs[labels_key]`` and the label names (categories with at least one cell).

    Raises a clear error for a missing key, missing labels, or a label with fewer than ``min_cells`` cells.
    """
    if labels_key not in adata.obs.columns:
        cols = list(adata.obs.columns)
        raise KeyError(f"labels_key {labels_key!r} is not a column of adata.obs (columns: {cols[:20]}).")
    labels = adata.obs[labels_key]
    if labels.isna().any():
        raise ValueError(
            f"adata.obs[{labels_key!r}] has {int(labels.isna().sum())} missing labels; drop those cells or label them."
        )
    cat = labels.astype("category")
    cat = cat.cat.remove_unused_categories()
    names = pd.Index(cat.cat.categories.astype(str))
    blank = int(labels.astype(str).str.strip().eq("").sum())
    if blank:
        raise ValueError(
            f"adata.obs[{labels_key!r}] has {blank} empty label(s) (''): they would become a fraction column named "
            "''. Give those cells a label (for example 'unassigned') or drop them."
        )
    if names.duplicated().any():
        dup = names[names.duplicated()].unique().tolist()
        raise ValueError(
            f"adata.obs[{labels_key!r}] has labels that differ in type but read the same ({dup}, e.g. 1 and '1'); "
            "make them one type."
        )
    if len(names) < 2:
        raise ValueError(
            f"adata.obs[{labels_key!r}] has {len(names)} label(s) ({list(names)}); deconvolution needs at least 2."
        )
    codes = cat.cat.codes.to_numpy().astype(np.int64)
    sizes = np.bincount(codes, minlength=len(names))
    small = [f"{n} ({s})" for n, s in zip(names, sizes) if s < min_cells]
    if small:
        raise ValueError(
            f"Label(s) with fewer than {min_cells} cells: {', '.join(small)}. Merge them with a related label, drop "
            "them, or lower min_cells."
        )
    return codes, names


def lightweight(adata: AnnData, layer: str | None, labels_key: str | None = None) -> AnnData:
    """An AnnData sharing the data matrix of ``adata`` (no copy, and a backed matrix stays on disk), so registering it
    leaves the user's object as is."""
    X = get_matrix(adata, layer, name="reference" if labels_key is not None else "bulk")
    obs = adata.obs[[labels_key]].copy() if labels_key is not None else pd.DataFrame(index=adata.obs_names.copy())
    return AnnData(X=X, obs=obs, var=pd.DataFrame(index=adata.var_names.copy()))
