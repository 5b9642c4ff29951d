"""Non-negative least squares on mean label profiles: the classical baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse
from scipy.optimize import nnls as _scipy_nnls

from .._engine.adata import label_codes
from .._engine.features import shared_features
from .._engine.mixing import LabelIndex, label_moments
from .._engine.scale import get_matrix, to_linear


def label_profiles(
    reference: AnnData, labels_key: str, *, layer: str | None = None, scale: str = "auto"
) -> pd.DataFrame:
    """Mean linear-scale profile of every label (labels x features)."""
    X, _ = to_linear(get_matrix(reference, layer), scale=scale, name="reference")
    codes, names = label_codes(reference, labels_key)
    mean, _ = label_moments(X, LabelIndex.from_codes(codes, len(names)))
    return pd.DataFrame(mean, index=names, columns=reference.var_names)


def nnls(
    adata: AnnData,
    reference: AnnData,
    labels_key: str,
    *,
    layer: str | None = None,
    reference_layer: str | None = None,
    key_added: str = "nnls",
    scale: str = "auto",
    reference_scale: str = "auto",
    copy: bool = False,
) -> AnnData | None:
    """Deconvolve bulk samples by non-negative least squares on the reference's mean label profiles.

    Both sides are brought to the linear scale. Each bulk sample is solved against the mean per-cell profiles
    (not unit-sum profiles, so that the coefficients count cells, not mRNA) and the solution is normalised to cell
    fractions that sum to 1.

    Parameters
    ----------
    adata
        Bulk samples x features.
    reference
        Single-cell reference with labels in ``reference.obs[labels_key]``.
    labels_key
        Label column of the reference.
    layer, reference_layer
        Layers to use instead of ``.X``.
    key_added
        Key in ``adata.obsm`` for the result.
    scale, reference_scale
        Scales of the bulk and the reference (see :func:`~decode_omics.pp.to_linear`). With ``"as_is"`` (values
        summed as stored), samples are solved without normalising them by their totals.
    copy
        Return a copy instead of writing to ``adata``.

    Returns
    -------
    ``None`` (or the copy if ``copy=True``); sets ``adata.obsm[key_added]``, a DataFrame of fractions
    (samples x labels).
    """
    adata = adata.copy() if copy else adata
    features = shared_features(reference.var_names, adata.var_names)
    profiles = label_profiles(reference[:, features], labels_key, layer=reference_layer, scale=reference_scale)
    B, report = to_linear(get_matrix(adata[:, features], layer), scale=scale, name="bulk")
    B = B.toarray() if sparse.issparse(B) else B
    S = profiles.to_numpy(dtype=np.float64)
    B = B.astype(np.float64)
    if report.scale != "as_is":  # compositions: coefficients count cells per unit of total
        S = S / max(S.sum(axis=1).mean(), 1e-12)
        B = B / np.maximum(B.sum(axis=1, keepdims=True), 1e-12)
    coef = np.vstack([_scipy_nnls(S.T, b)[0] for b in B])
    sums = coef.sum(axis=1, keepdims=True)
    frac = np.divide(coef, sums, out=np.full_like(coef, 1.0 / coef.shape[1]), where=sums > 0)
    adata.obsm[key_added] = pd.DataFrame(frac, index=adata.obs_names, columns=profiles.index)
    return adata if copy else None
