"""Align the features of a reference and a bulk data set, and flag those the bulk holds far more of than any label."""

from __future__ import annotations

import logging
import re
import warnings

import numpy as np
import pandas as pd
from anndata import AnnData

logger = logging.getLogger("decode_omics")

_ENSEMBL = re.compile(r"^ENS[A-Z]*G\d{6,}")
_VERSION = r"\.\d+$"


def _namespace(names: pd.Index) -> str:
    sample = names[: min(len(names), 500)].astype(str)
    if len(sample) == 0:
        return "empty"
    if np.mean([bool(_ENSEMBL.match(n)) for n in sample]) > 0.5:
        return "Ensembl gene IDs"
    return "names"


def _check_unique(names: pd.Index, what: str) -> None:
    if not names.is_unique:
        dup = names[names.duplicated()].unique()[:5].tolist()
        raise ValueError(
            f"The {what} has duplicated feature names (for example {dup}). Make them unique first, e.g. with "
            "adata.var_names_make_unique(), or aggregate duplicated features."
        )


def _unversioned(names: pd.Index) -> pd.Index:
    """Names without a trailing version suffix (``ENSG00000141510.16`` -> ``ENSG00000141510``)."""
    return names.str.replace(_VERSION, "", regex=True)


def _overlap_hint(ref: pd.Index, bulk: pd.Index, n_shared: int) -> str:
    """The likely reason the two name sets overlap less than they could, with the fix; ``""`` when none is found."""
    ns_ref, ns_bulk = _namespace(ref), _namespace(bulk)
    if ns_ref != ns_bulk:
        return (
            f" The reference uses {ns_ref} and the bulk {ns_bulk}: map both to one namespace (for example gene "
            "symbols) before deconvolving."
        )
    unversioned = int(_unversioned(ref).isin(_unversioned(bulk)).sum())
    if unversioned > max(n_shared * 1.05, n_shared + 5):
        return (
            f" {unversioned} features match once version suffixes are removed (for example 'ENSG00000141510.16' vs "
            "'ENSG00000141510'): strip them on both sides, e.g. "
            "adata.var_names = adata.var_names.str.replace(r'\\.\\d+$', '', regex=True)."
        )
    upper = int(ref.str.upper().isin(bulk.str.upper()).sum())
    if upper > max(n_shared * 1.05, n_shared + 5):
        return (
            f" {upper} features match when letter case is ignored (for example mouse 'Cd3e' vs human 'CD3E', or "
            "names lower-cased on one side): harmonise the case or map orthologues."
        )
    return ""


def shared_features(
    reference_names: pd.Index | list,
    bulk_names: pd.Index | list,
    *,
    min_features: int = 20,
    min_share: float = 0.5,
) -> pd.Index:
    """Features present in both data sets, in the reference's order.

    Parameters
    ----------
    reference_names, bulk_names
        Feature names (``var_names``) of the reference and the bulk.
    min_features
        Fewest shared features accepted.
    min_share
        Warn when the shared features are fewer than this share of the smaller of the two name sets, or when
        a simple repair (stripping version suffixes, ignoring letter case) would match noticeably more of them.

    Returns
    -------
    The shared feature names.

    Raises
    ------
    ValueError
        When names are duplicated, or fewer than ``min_features`` are shared; the message names the likely cause
        (different identifier namespaces, version suffixes, letter case) and the fix.
    """
    ref = pd.Index(reference_names).astype(str)
    bulk = pd.Index(bulk_names).astype(str)
    _check_unique(ref, "reference")
    _check_unique(bulk, "bulk")
    shared = ref[ref.isin(bulk)]
    hint = _overlap_hint(ref, bulk, len(shared))
    counts = f"{len(shared)} features ({len(ref)} in the reference, {len(bulk)} in the bulk)"
    if len(shared) < min_features:
        raise ValueError(f"The reference and the bulk share {counts}; at least {min_features} are needed.{hint}")
    small = len(shared) < min_share * min(len(ref), len(bulk))
    if hint or small:
        warnings.warn(
            f"The reference and the bulk share only {counts}, so deconvolution reads {len(shared)} features."
            + (
                hint
                or " Check that both use the same feature identifiers, or that the bulk measures the panel "
                "the reference does."
            ),
            UserWarning,
            stacklevel=2,
        )
    return shared


def align_features(
    reference: AnnData,
    bulk: AnnData,
    *,
    min_features: int = 20,
    copy: bool = True,
) -> tuple[AnnData, AnnData]:
    """Subset a reference and a bulk data set to their shared features, in the same order.

    Parameters
    ----------
    reference
        Single-cell reference (cells x features).
    bulk
        Bulk samples (samples x features).
    min_features
        Fewest shared features accepted.
    copy
        Return copies (default) rather than views.

    Returns
    -------
    ``(reference_aligned, bulk_aligned)``, both with the shared features in the reference's order. How many features
    each side lost is logged and stored in ``.uns["feature_alignment"]`` of both returned objects.
    """
    shared = shared_features(reference.var_names, bulk.var_names, min_features=min_features)
    ref = reference[:, shared]
    blk = bulk[:, shared]
    if copy:
        ref, blk = ref.copy(), blk.copy()
    report = {
        "n_shared": len(shared),
        "n_reference": reference.n_vars,
        "n_bulk": bulk.n_vars,
        "dropped_reference": reference.n_vars - len(shared),
        "dropped_bulk": bulk.n_vars - len(shared),
    }
    logger.info(
        "Aligned features: %d shared; dropped %d of %d reference and %d of %d bulk features.",
        len(shared),
        report["dropped_reference"],
        reference.n_vars,
        report["dropped_bulk"],
        bulk.n_vars,
    )
    if copy:
        ref.uns["feature_alignment"] = report
        blk.uns["feature_alignment"] = report
    return ref, blk


def _shares(bulk: np.ndarray, label_means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's composition (its share of every feature) and, per feature, the largest label's share."""
    B = np.asarray(bulk, dtype=np.float64)
    M = np.asarray(label_means, dtype=np.float64)
    composition = B / np.maximum(B.sum(axis=1, keepdims=True), 1e-300)
    largest = (M / np.maximum(M.sum(axis=1, keepdims=True), 1e-300)).max(axis=0)
    return composition, largest


def excess_features(bulk: np.ndarray, label_means: np.ndarray, max_excess: float) -> np.ndarray:
    """Mask of the features the bulk holds far more of than any label of the reference could give it.

    Per feature: the median over the samples of its share of the sample's total, over the largest of the labels'
    shares (each label's mean profile as a composition). No mix of the labels holds more of a feature than its
    largest label does, so a ratio far above 1 in most samples is material the reference lacks (the marker genes of a
    cell type it does not have) or a platform that measures the feature far more efficiently.

    Parameters
    ----------
    bulk
        Samples x features, linear scale.
    label_means
        Labels x features: the reference's mean per-cell profile of every label, linear scale.
    max_excess
        Ratio above which a feature is flagged.

    Returns
    -------
    Boolean mask over the features (``True``: flagged).
    """
    composition, largest = _shares(bulk, label_means)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.median(composition / largest, axis=0)  # inf where no label expresses the feature at all
    return np.nan_to_num(ratio, nan=0.0) > max_excess


def feature_excess(bulk: np.ndarray, label_means: np.ndarray, max_excess: float) -> np.ndarray:
    """Per sample and feature, the share of the sample's total beyond ``max_excess`` times the largest label's share.

    A sample that is a mix of the labels holds no feature beyond its largest label's share, so the row sums are a lower
    bound on the share of the sample that no mix of the labels explains: with material the reference lacks at share
    ``u`` (any composition ``x``), a feature's excess is at most ``u * x_f``, and the excesses sum to at most ``u``.
    The factor ``max_excess`` keeps platform gains up to that size (a feature measured that many times more
    efficiently) out of the bound, and cell-to-cell sampling too, which stays far below it on bulk samples.

    Parameters
    ----------
    bulk, label_means
        As for :func:`excess_features`.
    max_excess
        The factor of the largest label's share above which a feature's share counts (at least 1).

    Returns
    -------
    Samples x features, non-negative (rows of zeros for all-zero samples).
    """
    if max_excess < 1:
        raise ValueError(f"max_excess must be at least 1 (a mix holds up to its largest label's share): {max_excess}.")
    composition, largest = _shares(bulk, label_means)
    return np.maximum(composition - max_excess * largest, 0.0)


def counted_excess(
    bulk: np.ndarray, label_means: np.ndarray, max_excess: float, counted: np.ndarray | None = None
) -> np.ndarray:
    """:func:`feature_excess` on the features that count, 0 elsewhere: those :func:`excess_features` flags, judged on
    ``bulk`` itself unless ``counted`` (a mask judged on the cohort, for a block of its samples) is given. Judged at the
    median over the samples, a feature that bursts in a few samples (cell-to-cell sampling in mixtures of a few cells)
    does not count. Its row sums are the excess shares of :meth:`~decode_omics.model.DECODE.get_excess_share`."""
    if counted is None:
        counted = excess_features(bulk, label_means, max_excess)
    return feature_excess(bulk, label_means, max_excess) * np.asarray(counted, dtype=bool)
