"""Detect the numeric scale of an omics matrix and bring it to the linear abundance scale mixing needs."""

from __future__ import annotations

import dataclasses
import logging
import warnings
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from anndata import AnnData
from scipy import sparse

from .ondisk import is_on_disk, read_rows, row_blocks

Scale = Literal["counts", "linear", "log1p", "log2", "centered"]
SCALES: tuple[str, ...] = ("counts", "linear", "log1p", "log2", "centered")
#: Scales a user can give: the linearisable ones, and ``"as_is"`` (values summed as stored, for data with no linear
#: scale such as log-ratios or z-scores, where mixtures are defined as sums in the stored space).
USER_SCALES: tuple[str, ...] = ("counts", "linear", "log1p", "log2", "as_is")

logger = logging.getLogger("decode_omics")

# A log-transformed omics matrix never exceeds this (log2 of 1e12 is 40); linear abundances almost always do.
_LOG_MAX = 40.0
# Background-subtracted intensities have a small share of negatives (9 % in the bone-marrow metabolomics of
# ../shared/data; a quarter for very noisy ones); linear data centred per feature have about half or more (54-69 %
# for the shared metabolomics centred: intensities are right-skewed, so most values lie below the mean).
_MAX_BACKGROUND_NEGATIVE = 0.4


class ScaleError(ValueError):
    """Raised when a matrix is on a scale that cannot be brought to linear abundance."""


@dataclass(frozen=True)
class ScaleReport:
    """What :func:`detect_scale` found.

    Attributes
    ----------
    scale
        ``"counts"`` (non-negative integers), ``"linear"`` (non-negative abundances: TPM, CPM, intensities),
        ``"log1p"`` (natural ``log(1 + x)``), ``"log2"`` (``log2(1 + x)``, or ``log2(x)`` of intensities large
        enough that the 1 does not matter) or ``"centered"`` (log-ratios, z-scores or centred logs: negatives around
        zero, no linear scale exists).
    n_nan
        Number of missing values (NaN).
    frac_negative
        Fraction of finite entries below zero.
    min, max
        Range of the finite entries.
    is_integer
        Whether all finite entries are whole numbers.
    confident
        Whether the call rests on clear evidence (for example constant ``expm1`` row sums of log1p-normalised data)
        rather than on the value range alone.
    note
        A sentence for the user.
    """

    scale: str
    n_nan: int
    frac_negative: float
    min: float
    max: float
    is_integer: bool
    confident: bool
    note: str

    @property
    def linearizable(self) -> bool:
        """Whether :func:`to_linear` can bring the data to a linear, non-negative scale."""
        return self.scale != "centered"

    def to_dict(self) -> dict:
        """The report as a plain dict (for ``.uns``)."""
        return asdict(self)


def _values(X) -> np.ndarray:
    """The stored values of a dense or sparse matrix (zeros of a sparse matrix are implicit)."""
    if sparse.issparse(X):
        return np.asarray(X.data)
    return np.asarray(X).ravel()


def _sample_rows(X, max_rows: int = 2000, seed: int = 0):
    n = X.shape[0]
    if n <= max_rows and not is_on_disk(X):
        return X
    rows = np.sort(np.random.default_rng(seed).choice(n, min(n, max_rows), replace=False))
    return read_rows(X, rows)


def _row_sum_cv(X, transform) -> float:
    """Coefficient of variation of row sums after an element-wise transform mapping 0 to 0."""
    if sparse.issparse(X):
        Y = X.copy()
        Y.data = transform(Y.data)
        sums = np.asarray(Y.sum(axis=1)).ravel()
    else:
        sums = np.nansum(transform(np.asarray(X, dtype=np.float64)), axis=1)
    sums = sums[sums > 0]
    if sums.size < 2:
        return np.inf
    return float(np.std(sums) / np.mean(sums))


def detect_scale(X, *, name: str = "matrix") -> ScaleReport:
    """Detect the numeric scale of an omics matrix.

    Parameters
    ----------
    X
        A dense or sparse matrix (observations x features), an on-disk one (backed AnnData, dask), or an
        :class:`~anndata.AnnData` (its ``.X``). An on-disk matrix is judged, NaN count included, on 2,000 random rows.
    name
        What the matrix is called in messages (``"reference"``, ``"bulk"``).

    Returns
    -------
    A :class:`ScaleReport` with the scale (``counts``, ``linear``, ``log1p``, ``log2`` or ``centered``), the number
    of missing values and a short note.

    Notes
    -----
    - Negative values with a maximum above 40 are background-subtracted linear intensities (for example metabolite
      peaks) when they are a small share (at most 40 %) of the values: linear, negatives are clipped at 0 for
      mixing. A larger share means values centred per feature (``x - mean``): ``centered``.
    - Negative values with a small maximum are log-ratios, z-scores or centred logs: ``centered``.
    - Non-negative non-integer values up to 40 are logarithms; ``log1p`` when ``expm1`` gives constant row sums
      (log1p-normalised single cells) or the maximum is below 15, otherwise ``log2``.
    """
    if isinstance(X, AnnData):
        X = X.X
    if X is None or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"The {name} is empty (0 observations or 0 features); nothing to detect.")
    Xs = _sample_rows(X)
    values = _values(Xs).astype(np.float64, copy=False)
    nan_mask = np.isnan(values)
    # count NaN on the full matrix (cheap: one pass)
    full = X is not Xs and not is_on_disk(X)
    n_nan = int(np.isnan(_values(X)).sum()) if full else int(nan_mask.sum())
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise ValueError(f"The {name} holds no finite values (all missing, or sparse storage with no stored values).")
    vmin, vmax = float(finite.min()), float(finite.max())
    if sparse.issparse(Xs) and Xs.nnz < Xs.shape[0] * Xs.shape[1]:
        vmin = min(vmin, 0.0)
    frac_negative = float((finite < 0).sum() / max(finite.size, 1))
    is_integer = bool(np.all(np.mod(finite, 1) == 0))

    def report(scale: str, confident: bool, note: str, integer: bool = False) -> ScaleReport:
        return ScaleReport(scale, n_nan, frac_negative, vmin, vmax, integer, confident, note)

    if frac_negative > 0:
        if vmax > _LOG_MAX and frac_negative > _MAX_BACKGROUND_NEGATIVE:
            return report(
                "centered",
                True,
                f"{frac_negative:.0%} of the values are negative: large values centred per feature (x - mean, "
                "z-scores of intensities). Background-subtracted intensities have a small share of small negatives; "
                "centred data have about half. Centred values have no linear abundance scale, so samples cannot be "
                "mixed or unmixed physically. Supply the un-centred abundances (or, if these really are intensities "
                "with that much background subtracted, pass scale='linear').",
                is_integer,
            )
        if vmax > _LOG_MAX:
            return report(
                "linear",
                False,
                "Linear intensities with negative (background-subtracted) values; negatives are set to 0 for mixing.",
                is_integer,
            )
        return report(
            "centered",
            True,
            "Negative values with a small range: log-ratios, z-scores or centred logs. They have no linear abundance "
            "scale, so samples cannot be mixed or unmixed physically. Supply un-centred abundances (raw intensities, "
            "counts, or log values before centring).",
            is_integer,
        )
    if is_integer and vmax > 1:
        return report("counts", True, "Non-negative integer counts.", True)
    if vmax > _LOG_MAX:
        return report("linear", True, "Non-negative linear abundances.", is_integer)
    if vmax == 0:
        raise ValueError(f"The {name} is all zeros; there is nothing to deconvolve.")
    # A log scale, or a linear scale with tiny values (fractions, already-scaled data).
    cv_ln = _row_sum_cv(Xs, np.expm1)
    cv_l2 = _row_sum_cv(Xs, lambda v: np.exp2(v) - 1)
    cv_lin = _row_sum_cv(Xs, lambda v: v)
    if cv_ln < 1e-3 or (cv_ln < cv_l2 and cv_ln < 0.05 and cv_ln < cv_lin):
        return report("log1p", True, "log1p of normalised data (expm1 rows sum to a constant).")
    if cv_l2 < 1e-3:
        return report("log2", True, "log2(1 + x) of normalised data.")
    if cv_lin < 1e-3:
        return report("linear", True, "Linear, normalised to constant row sums.")
    if vmax <= 1.0:
        note = "Small non-negative values: taken as linear (relative abundances)."
        return report("linear", False, f"{note} Pass scale= to override.")
    if vmax < 15:
        return report("log1p", False, "Non-integer values below 15: taken as natural log1p. Pass scale= to override.")
    return report(
        "log2", False, "Non-integer values between 15 and 40: taken as log2 intensities. Pass scale= to override."
    )


def _inverse(scale: str):
    if scale == "log1p":
        return np.expm1
    if scale == "log2":
        # log2(1 + x): exact for log2(TPM + 1) and the like, where a zero is stored as 0; for log2 intensities
        # (values of 10 and more) the 1 is negligible
        return lambda v: np.exp2(v) - 1
    return None


def linearize(X, scale: str):
    """``X`` (in memory) on the linear scale, given its scale: a new float32 matrix (CSR if ``X`` is sparse), NaN and
    negatives set to 0 (``"as_is"``: NaN set to 0, values otherwise kept). No detection; :func:`to_linear` decides the
    scale and checks it."""
    inverse = _inverse(scale)
    low = None if scale == "as_is" else 0
    if sparse.issparse(X):
        out = sparse.csr_matrix(X, dtype=np.float32, copy=True)
        data = out.data.astype(np.float64)
        if inverse is not None:
            data = inverse(data)
        data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
        out.data = np.clip(data, low, None).astype(np.float32)
        out.eliminate_zeros()
        return out
    data = np.array(X, dtype=np.float64, copy=True)
    if inverse is not None:
        data = inverse(data)
    data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(data, low, None).astype(np.float32)


def resolve_scale(report: ScaleReport, scale: str, missing: str, name: str) -> ScaleReport:
    """The report to act on: the detected scale, or the user's ``scale``; refuses centred data and, with
    ``missing="error"``, NaN. A detected scale that rests on the value range alone (``report.confident`` false)
    is used with a warning that names the guess and how to override it.

    ``missing="auto"`` (what models use): NaN in counts are an error (sequencing counts have no missing values, so
    the matrix is damaged); NaN in intensities (proteomics, metabolomics: below detection) are read as zero, with a
    warning that says how many.
    """
    if missing == "auto":
        chosen = report.scale if scale == "auto" else scale
        if report.n_nan and chosen == "counts":
            raise ValueError(
                f"The {name} holds counts with {report.n_nan} missing values (NaN). Counts have no missing values, so "
                "the matrix is damaged: re-create it, or replace the NaN yourself if they mean zero."
            )
        if report.n_nan:
            logger.warning(
                f"The {name} has {report.n_nan} missing values (NaN); they are read as zero abundance (below "
                "detection). Impute them first if they mean something else."
            )
        missing = "zero"
    chosen = report.scale if scale == "auto" else scale
    if chosen not in SCALES and chosen not in USER_SCALES:
        raise ScaleError(f"Unknown scale {scale!r} for the {name}; use 'auto' or one of {USER_SCALES}.")
    if chosen == "centered":
        raise ScaleError(
            f"The {name} is on a centred scale: {report.note} If the samples you deconvolve were defined as sums "
            "of these values (for example in-silico mixtures summed as stored), pass scale='as_is'."
        )
    if report.n_nan and missing == "error":
        raise ValueError(
            f"The {name} has {report.n_nan} missing values (NaN). Impute them, or pass missing='zero' to read a "
            "missing value as zero abundance."
        )
    if scale == "auto":
        if not report.confident:
            warnings.warn(
                f"The {name}'s scale was guessed as {report.scale!r} from its value range alone (maximum "
                f"{report.max:.3g}): {report.note} If that is wrong, pass its scale explicitly (scale= or "
                "reference_scale=: 'counts', 'linear', 'log1p', 'log2', or 'as_is').",
                UserWarning,
                stacklevel=3,
            )
        return report
    note = f"Scale {chosen!r} given by the user."
    if chosen == "as_is":
        note = (
            "Values used as stored (scale='as_is'): summed as they are, NaN read as 0, negatives kept. Right only "
            "for samples that are sums in this space; a physical bulk on a log or centred scale is not."
        )
    return dataclasses.replace(report, scale=chosen, confident=True, note=note)


def to_linear(
    X,
    *,
    scale: str = "auto",
    missing: Literal["zero", "error", "auto"] = "zero",
    name: str = "data",
) -> tuple[np.ndarray | sparse.csr_matrix, ScaleReport]:
    """Bring a matrix to the linear, non-negative scale on which samples physically mix.

    The input is never modified: a new matrix is returned.

    Parameters
    ----------
    X
        Dense or sparse matrix (observations x features).
    scale
        ``"auto"`` (use :func:`detect_scale`) or one of ``counts``, ``linear``, ``log1p``, ``log2``, or ``"as_is"``
        (values kept as stored, negatives included: for data without a linear scale, such as log-ratios or z-scores,
        whose mixtures are defined as sums of the stored values).
    missing
        How to treat NaN: ``"zero"`` reads a missing value as zero abundance (right on a linear scale, where missing
        values in proteomics and metabolomics are mostly below detection); ``"error"`` refuses; ``"auto"`` refuses
        NaN in counts (a damaged matrix) and reads NaN in intensities as zero with a warning.
    name
        What the matrix is called in messages (``"reference"``, ``"bulk"``).

    Returns
    -------
    The linear matrix (float32; CSR if the input was sparse) and the :class:`ScaleReport` it was judged by.

    Raises
    ------
    ScaleError
        For centred data (log-ratios, z-scores) that have no linear scale, and for an unknown ``scale``.
    """
    report = resolve_scale(detect_scale(X, name=name), scale, missing, name)
    if is_on_disk(X):
        blocks = [linearize(block, report.scale) for _, block in row_blocks(X)]
        out = sparse.vstack(blocks, format="csr") if sparse.issparse(blocks[0]) else np.concatenate(blocks)
    else:
        out = linearize(X, report.scale)
    return out, report


def check_scale(adata: AnnData, *, layer: str | None = None) -> ScaleReport:
    """Report the scale of ``adata.X`` (or a layer) without changing anything.

    Parameters
    ----------
    adata
        Annotated data matrix.
    layer
        Layer to check instead of ``.X``.

    Returns
    -------
    The :class:`ScaleReport`; its ``note`` says what :func:`to_linear` would do.
    """
    return detect_scale(get_matrix(adata, layer))


def get_matrix(adata: AnnData, layer: str | None = None, name: str = "AnnData"):
    """``adata.X`` or ``adata.layers[layer]``, with a clear error for a missing layer or an empty object (``name``
    says which object in messages)."""
    if layer is None:
        X = adata.X
    else:
        if layer not in adata.layers:
            available = list(adata.layers.keys())
            raise KeyError(
                f"Layer {layer!r} is not in adata.layers (available: {available}); pass layer=None "
                "for .X or one of these."
            )
        X = adata.layers[layer]
    if X is None:
        raise ValueError("adata.X is None; pass layer= naming the layer that holds the data.")
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise ValueError(f"The {name} is empty ({adata.n_obs} observations x {adata.n_vars} features).")
    return X
