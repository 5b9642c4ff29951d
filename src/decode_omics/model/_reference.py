"""The reference as DECODE reads it: linear scale, the most dispersed shared features, label codes and per-label
moments, from an in-memory matrix or streamed from one on disk (backed AnnData, dask) without loading it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from .._engine.adata import label_codes
from .._engine.features import counted_excess, excess_features
from .._engine.mixing import LabelIndex, label_moments
from .._engine.ondisk import is_on_disk, read_rows, row_blocks
from .._engine.scale import ScaleReport, detect_scale, get_matrix, linearize, resolve_scale, to_linear


class OnDiskRows:
    """Reads rows of an on-disk reference on the linear scale, restricted to the model's features.

    Parameters
    ----------
    X
        Backed or dask matrix (cells x all features).
    positions
        Column positions of the model's features.
    scale
        Scale of ``X`` (see :func:`~decode_omics.pp.to_linear`).
    """

    def __init__(self, X, positions: np.ndarray, scale: str):
        self.X, self.positions, self.scale = X, np.asarray(positions, dtype=np.int64), scale
        self.shape = (X.shape[0], self.positions.size)

    def read(self, rows: np.ndarray):
        """Linear-scale rows (CSR or dense float32), model features only."""
        return linearize(read_rows(self.X, rows)[:, self.positions], self.scale)


@dataclass
class PreparedReference:
    """What the model needs from the reference.

    Attributes
    ----------
    features
        Selected features, in model order.
    codes, labels
        Label code per cell and the label names.
    scale
        The scale report the data were read by.
    count_like
        Whether the data look like counts (see :func:`count_like`).
    matrix
        In memory: the linear matrix (cells x ``features``); on disk: an :class:`OnDiskRows`.
    moments
        Per-label mean and variance of the features (computed while streaming for on-disk data), or ``None``.
    """

    features: pd.Index
    codes: np.ndarray
    labels: pd.Index
    scale: ScaleReport
    count_like: bool
    matrix: object
    moments: tuple[np.ndarray, np.ndarray] | None = None


def _dense(x) -> np.ndarray:
    return x.toarray() if sparse.issparse(x) else np.asarray(x)


def _log_normalised(X, totals: np.ndarray):
    """``log1p(1e4 * x / total)`` per cell (sparse stays sparse)."""
    scale = 1e4 / np.maximum(totals, 1e-12)
    if sparse.issparse(X):
        L = sparse.csr_matrix(sparse.diags(scale) @ X)
        L.data = np.log1p(L.data)
        return L
    return np.log1p(np.asarray(X) * scale[:, None])


def _top_dispersed(mean: np.ndarray, sq: np.ndarray, candidates: pd.Index, n_features: int) -> pd.Index:
    disp = (sq - mean**2) / np.maximum(mean, 1e-12)
    disp[mean <= 0] = -np.inf
    return candidates[np.sort(np.argsort(-disp, kind="stable")[:n_features])]


def select_features(
    X, var_names: pd.Index, candidates: pd.Index, n_features: int | None, as_is: bool = False
) -> pd.Index:
    """The ``n_features`` most dispersed candidate features of the reference (log1p of per-cell unit-sum x 1e4; for
    values kept as stored, the most variable)."""
    if n_features is None or len(candidates) <= n_features:
        return candidates
    totals = np.asarray(X.sum(axis=1)).ravel()
    Xc = X[:, var_names.get_indexer(candidates)]
    if as_is:
        Xc = Xc.toarray() if sparse.issparse(Xc) else np.asarray(Xc, dtype=np.float64)
        return candidates[np.sort(np.argsort(-Xc.var(axis=0), kind="stable")[:n_features])]
    L = _log_normalised(Xc, totals)
    if sparse.issparse(L):
        mean, sq = np.asarray(L.mean(axis=0)).ravel(), np.asarray(L.multiply(L).mean(axis=0)).ravel()
    else:
        mean, sq = L.mean(axis=0), (L**2).mean(axis=0)
    return _top_dispersed(mean, sq, candidates, n_features)


def _looks_count_like(scale: str, totals: np.ndarray, nonzero: int, n_entries: int) -> bool:
    if scale == "counts":
        return True
    totals = totals[totals > 0]
    if totals.size > 1 and np.std(totals) / np.mean(totals) < 1e-2:
        return True
    return bool(nonzero < 0.5 * n_entries)


def count_like(X, scale_report: ScaleReport) -> bool:
    """Counts or normalised counts: integer values, rows that sum to one total (library-size normalised), or mostly
    zeros (droplet and plate scRNA-seq; proteomics and metabolomics intensities are mostly detected values)."""
    nonzero = X.nnz if sparse.issparse(X) else int(np.count_nonzero(X))
    totals = np.asarray(X.sum(axis=1)).ravel()
    return _looks_count_like(scale_report.scale, totals, nonzero, X.shape[0] * X.shape[1])


def prepare_reference(
    adata: AnnData,
    *,
    labels_key: str,
    layer: str | None,
    candidates: pd.Index,
    n_features: int | None,
    min_cells: int = 3,
    scale: str = "auto",
    block_rows: int = 10_000,
) -> PreparedReference:
    """Read the reference once: scale, label codes, feature selection, count-likeness (and moments on disk)."""
    X = get_matrix(adata, layer)
    codes, labels = label_codes(adata, labels_key, min_cells=min_cells)
    if is_on_disk(X):
        return _prepare_on_disk(X, adata.var_names, codes, labels, candidates, n_features, scale, block_rows)
    X_lin, report = to_linear(X, scale=scale, missing="auto", name="reference")
    as_is = report.scale == "as_is"
    features = select_features(X_lin, adata.var_names, candidates, n_features, as_is=as_is)
    return PreparedReference(
        features=features,
        codes=codes,
        labels=labels,
        scale=report,
        count_like=False if as_is else count_like(X_lin, report),
        matrix=X_lin[:, adata.var_names.get_indexer(features)],
    )


def _prepare_on_disk(X, var_names, codes, labels, candidates, n_features, scale, block_rows) -> PreparedReference:
    """One pass over row blocks: per-feature sums for the dispersion, per-label sums and squares for the moments of
    every candidate feature (labels x candidates, float64), row totals and non-zeros. Memory: one block plus those
    accumulators; the matrix is never held whole."""
    report = resolve_scale(detect_scale(X, name="reference"), scale, "auto", "reference")
    if report.scale == "as_is":
        raise ValueError("scale='as_is' needs the reference in memory; load it (adata.to_memory()) first.")
    pos = var_names.get_indexer(candidates)
    n_labels, n_cand = len(labels), len(candidates)
    sum_l, sum_l2 = np.zeros(n_cand), np.zeros(n_cand)
    s1, s2 = np.zeros((n_labels, n_cand)), np.zeros((n_labels, n_cand))
    totals = np.zeros(X.shape[0])
    nonzero = 0
    for start, block in row_blocks(X, block_rows):
        block = linearize(block, report.scale)
        stop = start + block.shape[0]
        totals[start:stop] = np.asarray(block.sum(axis=1)).ravel()
        nonzero += block.nnz if sparse.issparse(block) else int(np.count_nonzero(block))
        cand = block[:, pos].astype(np.float64)
        L = _log_normalised(cand, totals[start:stop])
        sum_l += np.asarray(L.sum(axis=0)).ravel()
        sum_l2 += np.asarray((L.multiply(L) if sparse.issparse(L) else L**2).sum(axis=0)).ravel()
        block_codes = codes[start:stop]
        keep = np.flatnonzero(block_codes >= 0)
        G = sparse.csr_matrix((np.ones(keep.size), (block_codes[keep], keep)), shape=(n_labels, stop - start))
        s1 += _dense(G @ cand)
        s2 += _dense(G @ (cand.multiply(cand) if sparse.issparse(cand) else cand * cand))
    n = X.shape[0]
    if n_features is None or n_cand <= n_features:
        features = candidates
    else:
        features = _top_dispersed(sum_l / n, sum_l2 / n, candidates, n_features)
    keep = candidates.get_indexer(features)
    sizes = np.maximum(LabelIndex.from_codes(codes, n_labels).sizes, 1)[:, None].astype(np.float64)
    mean = s1[:, keep] / sizes
    var = np.maximum(s2[:, keep] / sizes - mean**2, 0.0)
    return PreparedReference(
        features=features,
        codes=codes,
        labels=labels,
        scale=report,
        count_like=_looks_count_like(report.scale, totals, nonzero, X.shape[0] * X.shape[1]),
        matrix=OnDiskRows(X, var_names.get_indexer(features), report.scale),
        moments=(mean.astype(np.float32), var.astype(np.float32)),
    )


def prepare_registered(adata: AnnData, args: dict, **kwargs) -> PreparedReference:
    """:func:`prepare_reference` with the labels, layer and scale a reference was registered with."""
    return prepare_reference(
        adata, labels_key=args["labels_key"], layer=args.get("layer"), scale=args.get("scale", "auto"), **kwargs
    )


def refuse_silent_labels(labels: list[str], mean: np.ndarray) -> None:
    """Raise for labels whose cells are all zero on the model's features (``mean``: labels x features)."""
    silent = [labels[k] for k in np.flatnonzero(np.abs(mean).sum(axis=1) <= 0)]
    if silent:
        raise ValueError(
            f"Label(s) {silent} have no signal on the {mean.shape[1]} features used (their cells are all zero "
            "there). Check the reference's data for these labels, or drop them."
        )


def label_values(labels: pd.Series, names: list[str]) -> list | None:
    """The reference's own label values in model order (integers stay integers), for the columns of the results;
    ``None`` when they are the strings ``names`` already."""
    categories = labels.astype("category").cat.remove_unused_categories().cat.categories
    values = [v.item() if isinstance(v, np.generic) else v for v in categories]
    if all(isinstance(v, str) for v in values) or [str(v) for v in values] != list(names):
        return None
    return values


#: Fewest features a model keeps after the excess features are dropped.
MIN_KEPT_FEATURES = 20


def _label_means(ref: PreparedReference) -> np.ndarray:
    """Labels x features: each label's mean profile on the reference's features (linear scale)."""
    if ref.moments is not None:
        return ref.moments[0]
    return label_moments(ref.matrix, LabelIndex.from_codes(ref.codes, len(ref.labels)))[0]


def excess_before_training(ref: PreparedReference, bulk, max_excess: float) -> tuple[pd.Series, pd.Series]:
    """The registered ``bulk``'s excess shares on ``ref.features``, as
    :meth:`~decode_omics.model.DECODE.get_excess_share` reads them (on its first 20,000 samples): per sample, and per
    feature that counts its mean over the samples (largest first)."""
    _, block = next(bulk.blocks(20_000))
    excess = counted_excess(block, _label_means(ref), max_excess)
    share = pd.Series(excess.sum(axis=1), index=pd.Index(bulk.obs_names[: block.shape[0]]), name="excess_share")
    mean = pd.Series(excess.mean(axis=0), index=pd.Index(ref.features), name="mean_excess_share")
    return share, mean[mean > 0].sort_values(ascending=False, kind="stable")


def without_excess_features(
    ref: PreparedReference, adata: AnnData, args: dict, bulk, max_excess: float, min_cells: int
) -> tuple[PreparedReference, list[str]]:
    """The reference prepared again without the features the registered ``bulk`` (a
    :class:`~decode_omics.model._bulk.BulkSource` on ``ref.features``) holds more than ``max_excess`` times as much of
    as any label (:func:`~decode_omics._engine.features.excess_features`, judged on its first 20,000 samples), and
    their names (none dropped: ``ref`` as it was). The reference is prepared again on the features kept, so its
    moments and scale are those of the features the model reads."""
    if ref.scale.scale == "as_is":
        raise ValueError(
            "max_feature_excess needs a linear scale (a feature's share of a sample); the reference was registered "
            "with scale='as_is'. Leave max_feature_excess=None."
        )
    if not max_excess > 1:
        raise ValueError(f"max_feature_excess must be a ratio above 1, got {max_excess!r}.")
    _, block = next(bulk.blocks(20_000))
    flagged = excess_features(block, _label_means(ref), max_excess)
    if not flagged.any():
        return ref, []
    kept = ref.features[~flagged]
    if kept.size < MIN_KEPT_FEATURES:
        raise ValueError(
            f"max_feature_excess={max_excess} would leave {kept.size} of {ref.features.size} features (fewer than "
            f"{MIN_KEPT_FEATURES}): the bulk is far from every label on most features. Check that reference and bulk "
            "are on the same scale, or raise max_feature_excess."
        )
    again = prepare_registered(adata, args, candidates=kept, n_features=kept.size, min_cells=min_cells)
    return again, [str(f) for f in ref.features[flagged]]
