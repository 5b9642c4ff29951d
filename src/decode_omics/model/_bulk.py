"""Bulk samples as the model reads them: the model's features, linear scale, in row blocks (so a cohort on disk is
never loaded whole)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from anndata import AnnData
from mudata import MuData
from scipy import sparse

from .._engine.ondisk import is_on_disk, row_blocks
from .._engine.scale import ScaleReport, detect_scale, get_matrix, linearize, resolve_scale


def resolve_modality(adata: AnnData | MuData, modality: str | None) -> AnnData:
    """``adata`` itself, or the named modality of a MuData (with clear errors)."""
    if not isinstance(adata, MuData):
        return adata
    if modality is None:
        raise ValueError(f"adata is a MuData: pass modality= (one of {list(adata.mod)}).")
    if modality not in adata.mod:
        raise KeyError(f"Modality {modality!r} is not in the MuData (modalities: {list(adata.mod)}).")
    return adata.mod[modality]


class BulkSource:
    """The model's features of some bulk samples, read block by block on the linear scale.

    Parameters
    ----------
    data
        Bulk samples (in memory, backed or dask-backed AnnData).
    features
        The model's features, in model order; every one must be in ``data``.
    layer
        Layer instead of ``.X``.
    scale
        Scale of the data (``"auto"``: detected on all features of ``data``, as :func:`~decode_omics.pp.check_scale`
        does; for data on disk, on 2,000 random rows).
    gains
        Per-feature gains of the data's platform (``exp`` of
        :func:`~decode_omics.model._calibration.feature_log_gains`): every block is divided by them after it is
        brought to the linear scale.
    """

    def __init__(
        self,
        data: AnnData,
        features: list[str],
        layer: str | None = None,
        scale: str = "auto",
        gains: np.ndarray | None = None,
    ):
        if data.n_obs == 0:
            raise ValueError("The bulk data hold 0 samples.")
        names = pd.Index(data.var_names.astype(str))
        if not names.is_unique:
            raise ValueError("The bulk data have duplicated feature names; make them unique first.")
        missing = pd.Index(features).difference(names)
        if len(missing):
            raise ValueError(
                f"The data lack {len(missing)} of the {len(features)} features the model was trained on "
                f"(e.g. {list(missing[:5])}). Deconvolve data with the same features, or train a model on the shared "
                "features."
            )
        self.X = get_matrix(data, layer)
        self.positions = names.get_indexer(features)
        self.obs_names = data.obs_names
        self.n_obs = data.n_obs
        self.on_disk = is_on_disk(self.X)
        # The scale is judged on every feature of the data, as check_scale does: the model's features alone (the
        # reference's most dispersed) can hide the range that tells log2 from log1p.
        self.scale: ScaleReport = resolve_scale(detect_scale(self.X, name="bulk"), scale, "auto", "bulk")
        self.divisor = None if gains is None else np.asarray(gains, dtype=np.float32)

    def _dense(self, block, start: int) -> np.ndarray:
        block = linearize(block[:, self.positions], self.scale.scale)
        block = np.asarray(block.toarray() if sparse.issparse(block) else block, dtype=np.float32)
        empty = np.flatnonzero(np.abs(block).sum(axis=1) <= 0)
        if empty.size:
            names = list(self.obs_names[start + empty[:5]])
            raise ValueError(
                f"{empty.size} bulk sample(s) have no signal on the model's {block.shape[1]} features (all zero), "
                f"e.g. {names}. Drop them, or check that the features are measured in these samples."
            )
        return block if self.divisor is None else block / self.divisor

    def blocks(self, block_rows: int = 10_000) -> Iterator[tuple[int, np.ndarray]]:
        """``(start, samples x features)`` float32 blocks, in order."""
        if not self.on_disk and self.n_obs <= block_rows:
            yield 0, self._dense(self.X, 0)
            return
        for start, block in row_blocks(self.X, block_rows):
            yield start, self._dense(block, start)

    def matrix(self) -> np.ndarray:
        """All samples at once (float32, samples x features)."""
        return np.concatenate([b for _, b in self.blocks()])
