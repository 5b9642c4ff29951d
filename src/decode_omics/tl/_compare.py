"""Group comparisons of deconvolved fractions, weighting samples by their per-sample uncertainty when it is known."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import stats

if TYPE_CHECKING:
    from collections.abc import Hashable

DEFAULT_INTERVAL_LEVEL = 0.9
# Variances of per-sample estimates are floored here: an interval of zero width would otherwise weigh infinitely.
_S2_FLOOR = 1e-12

COLUMNS = [
    "mean_group",
    "mean_reference",
    "difference",
    "lower",
    "upper",
    "statistic",
    "df",
    "pvalue",
    "pvalue_adj",
    "n_group",
    "n_reference",
    "method",
]


def _group_stats(y: np.ndarray, s2: np.ndarray | None, mask: np.ndarray) -> dict[str, np.ndarray]:
    """Weighted mean, its robust variance and effective sample size of the masked samples (last axis).

    Vectorised over the leading axes (labels, and cohorts in the simulation). Without ``s2`` the weights are equal and
    the mean and variance are those of Welch's test: the sample mean and ``var(y, ddof=1) / n``.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return _group_stats_unchecked(y, s2, mask)


def _group_stats_unchecked(y: np.ndarray, s2: np.ndarray | None, mask: np.ndarray) -> dict[str, np.ndarray]:
    n = mask.sum(-1)
    y0 = np.where(mask, y, 0.0)
    if s2 is None:
        w = mask.astype(np.float64)
        tau2 = np.full(n.shape, np.nan)
    else:
        s2 = np.where(mask, np.maximum(s2, _S2_FLOOR), 1.0)
        # DerSimonian-Laird between-sample variance: Q = sum v (y - ybar_fe)^2, tau^2 = max(0, (Q - (k - 1)) / C).
        v = np.where(mask, 1.0 / s2, 0.0)
        sv = v.sum(-1)
        ybar_fe = (v * y0).sum(-1) / sv
        q = (v * (y0 - ybar_fe[..., None]) ** 2).sum(-1)
        c = sv - (v**2).sum(-1) / sv
        tau2 = np.where(c > 0, np.maximum(0.0, (q - (n - 1)) / c), 0.0)
        w = np.where(mask, 1.0 / (s2 + tau2[..., None]), 0.0)
    sw = w.sum(-1)
    mean = (w * y0).sum(-1) / sw
    resid = np.where(mask, y0 - mean[..., None], 0.0)
    # Robust (sandwich) variance of the weighted mean, with the small-sample factor n / (n - 1); it does not trust the
    # weights' scale (1 / sum w), which would count a bias common to all samples as noise.
    var = (w**2 * resid**2).sum(-1) / sw**2 * n / (n - 1)
    n_eff = sw**2 / (w**2).sum(-1)
    # A label constant within the group: exact mean, zero variance (no rounding residue).
    big = np.where(mask, y0, -np.inf).max(-1)
    small = np.where(mask, y0, np.inf).min(-1)
    constant = big == small
    mean = np.where(constant, big, mean)
    var = np.where(constant, 0.0, var)
    return {"mean": mean, "var": var, "n": n, "n_eff": n_eff, "tau2": tau2}


def _compare_arrays(
    y: np.ndarray,
    s2: np.ndarray | None,
    in_group: np.ndarray,
    in_reference: np.ndarray,
    level: float = 0.9,
) -> dict[str, np.ndarray]:
    """Group minus reference for every leading index of ``y`` (samples on the last axis); see :func:`compare_groups`.

    ``in_group`` and ``in_reference`` are boolean masks broadcastable to ``y``; entries to leave out (NaN) must be
    False in both. Each group needs at least 2 samples (not checked here).
    """
    valid = np.isfinite(y) if s2 is None else np.isfinite(y) & np.isfinite(s2)
    mg, mr = in_group & valid, in_reference & valid
    g = _group_stats(y, s2, mg)
    r = _group_stats(y, s2, mr)
    diff = g["mean"] - r["mean"]
    var = g["var"] + r["var"]
    se = np.sqrt(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        # Welch-Satterthwaite degrees of freedom from the effective sample sizes (n for equal weights).
        denom = g["var"] ** 2 / (g["n_eff"] - 1) + r["var"] ** 2 / (r["n_eff"] - 1)
        df = np.where(var > 0, var**2 / denom, g["n_eff"] + r["n_eff"] - 2)
        df = np.maximum(df, 1.0)
        statistic = np.where(var > 0, diff / se, np.where(diff == 0, 0.0, np.sign(diff) * np.inf))
    pvalue = np.where(np.isfinite(statistic), 2 * stats.t.sf(np.abs(statistic), df), 0.0)
    pvalue = np.where(statistic == 0, 1.0, pvalue)
    half = stats.t.ppf(0.5 + level / 2, df) * se
    half = np.where(var > 0, half, 0.0)
    enough = (g["n"] >= 2) & (r["n"] >= 2)
    out = {
        "mean_group": g["mean"],
        "mean_reference": r["mean"],
        "difference": diff,
        "lower": diff - half,
        "upper": diff + half,
        "statistic": statistic,
        "df": df,
        "pvalue": pvalue,
    }
    out = {k: np.where(enough, v, np.nan) for k, v in out.items()}
    out["n_group"], out["n_reference"] = g["n"], r["n"]
    out["tau2_group"], out["tau2_reference"] = g["tau2"], r["tau2"]
    return out


def _interval_variance(estimate: np.ndarray, lower: np.ndarray, upper: np.ndarray, interval_level: float) -> np.ndarray:
    """Per-sample variances read from intervals: ``((upper - lower) / (2 z))^2``, z the normal quantile of the level.

    Where a bound sits on 0 or 1 the interval was (most likely) clipped, which would make the intervals of estimates
    near a boundary narrow and give them weight because they are small; there the larger of the two half-widths,
    ``max(estimate - lower, upper - estimate) / z``, is used instead.
    """
    z = stats.norm.ppf(0.5 + interval_level / 2)
    s = (upper - lower) / (2 * z)
    clipped = (lower <= 0) | (upper >= 1)
    s = np.where(clipped, np.maximum(estimate - lower, upper - estimate) / z, s)
    return s**2


def _benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values of the finite entries (NaN stay NaN)."""
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return out
    pv = p[ok]
    order = np.argsort(pv)
    ranked = pv[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    adj = np.empty(m)
    adj[order] = np.minimum(ranked, 1.0)
    out[ok] = adj
    return out


def _frame(adata: AnnData, obsm_key: str, what: str) -> pd.DataFrame:
    frame = adata.obsm[obsm_key]
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(
            f"adata.obsm[{obsm_key!r}] ({what}) is a {type(frame).__name__}, not a DataFrame of samples x labels; "
            "the labels are needed to name the results."
        )
    try:
        return frame.astype(np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"adata.obsm[{obsm_key!r}] ({what}) is not numeric: {err}") from err


def _resolve_groups(
    values: pd.Series, groupby: str, groups: tuple[Hashable, Hashable] | None
) -> tuple[Hashable, Hashable]:
    present = values.dropna()
    if isinstance(values.dtype, pd.CategoricalDtype):
        observed = [c for c in values.cat.categories if (present == c).any()]
    else:
        observed = sorted(present.unique().tolist(), key=lambda v: (str(type(v)), v))
    if groups is None:
        if len(observed) != 2:
            raise ValueError(
                f"adata.obs[{groupby!r}] has {len(observed)} groups ({_preview(observed)}); without `groups=` exactly "
                "2 are needed. Pass `groups=(group, reference)` to choose the two to compare."
            )
        reference, group = observed
        return group, reference
    if isinstance(groups, str) or len(groups) != 2:
        raise ValueError(f"`groups` must be a pair (group, reference), got {groups!r}.")
    group, reference = groups
    if group == reference:
        raise ValueError(f"`groups` names the same group twice ({group!r}); give two different groups.")
    for name in (group, reference):
        if not (present == name).any():
            raise ValueError(
                f"Group {name!r} is absent from adata.obs[{groupby!r}]; its groups are {_preview(observed)}."
            )
    return group, reference


def _preview(values: list, n: int = 10) -> str:
    shown = ", ".join(repr(v) for v in values[:n])
    return shown + (f", ... ({len(values)} in all)" if len(values) > n else "")


def _intervals(
    adata: AnnData, key: str, estimate: pd.DataFrame, use_uncertainty: bool | str
) -> tuple[pd.DataFrame, pd.DataFrame, float] | None:
    """Lower and upper bounds aligned with the estimates, and their level; None when not used."""
    if use_uncertainty not in (True, False, "auto"):
        raise ValueError(f"`use_uncertainty` must be True, False or 'auto', got {use_uncertainty!r}.")
    lo_key, up_key = f"{key}_lower", f"{key}_upper"
    have = [k in adata.obsm for k in (lo_key, up_key)]
    if use_uncertainty is False:
        return None
    if not all(have):
        if use_uncertainty is True or any(have):
            missing = [k for k, h in zip((lo_key, up_key), have) if not h]
            raise ValueError(
                f"`use_uncertainty=True` needs the interval bounds adata.obsm[{lo_key!r}] and adata.obsm[{up_key!r}]; "
                f"missing: {missing}. Run `dco.tl.deconvolve(..., uncertainty=True)`, or pass use_uncertainty=False."
                if use_uncertainty is True
                else f"Only one interval bound is present (missing adata.obsm[{missing[0]!r}]); both "
                f"adata.obsm[{lo_key!r}] and adata.obsm[{up_key!r}] are needed. Pass use_uncertainty=False to "
                "compare the estimates alone."
            )
        return None
    lower = _frame(adata, lo_key, "lower bounds")
    upper = _frame(adata, up_key, "upper bounds")
    for name, frame in ((lo_key, lower), (up_key, upper)):
        if not frame.columns.equals(estimate.columns) or not frame.index.equals(estimate.index):
            raise ValueError(
                f"adata.obsm[{name!r}] is not aligned with adata.obsm[{key!r}]: the bounds need the same samples and "
                f"labels in the same order (labels {list(frame.columns)} vs {list(estimate.columns)})."
            )
    width = upper.to_numpy() - lower.to_numpy()
    if (width < -1e-12).any():
        bad = np.argwhere(width < -1e-12)[0]
        raise ValueError(
            f"adata.obsm[{up_key!r}] is below adata.obsm[{lo_key!r}] (e.g. sample {estimate.index[bad[0]]!r}, label "
            f"{estimate.columns[bad[1]]!r}); the bounds are swapped or misaligned."
        )
    info = adata.uns.get(key, {})
    info = info.get("uncertainty", {}) if isinstance(info, dict) else {}
    level = info.get("level") if isinstance(info, dict) else None
    if level is None:
        from scanpy import logging as logg

        logg.warning(
            f"adata.uns[{key!r}]['uncertainty']['level'] not found; reading the intervals as "
            f"{DEFAULT_INTERVAL_LEVEL:.0%} intervals."
        )
        level = DEFAULT_INTERVAL_LEVEL
    level = float(level)
    if not 0 < level < 1:
        raise ValueError(f"adata.uns[{key!r}]['uncertainty']['level'] is {level}; an interval level is in (0, 1).")
    return lower, upper, level


def compare_groups(
    adata: AnnData,
    groupby: str,
    *,
    key: str = "decode",
    groups: tuple[str, str] | None = None,
    level: float = 0.9,
    use_uncertainty: bool | Literal["auto"] = "auto",
    key_added: str | None = None,
    copy: bool = False,
) -> AnnData | None:
    """Compare the fractions of two groups of samples, label by label, using per-sample intervals when present.

    For every label (each column of ``adata.obsm[key]``, ``"unknown"`` included) the mean fraction of ``group`` is
    compared with that of ``reference``: the difference (group minus reference), its ``level`` confidence interval, a
    t statistic, a two-sided p-value and Benjamini-Hochberg adjusted p-values across labels.

    **With per-sample intervals** (``adata.obsm[f"{key}_lower"]`` and ``adata.obsm[f"{key}_upper"]``, written by
    ``dco.tl.deconvolve(..., uncertainty=True)``), each sample's standard error is read from its interval,
    ``s_i = (upper - lower) / (2 z)`` with ``z`` the normal quantile of the intervals' level
    (``adata.uns[key]["uncertainty"]["level"]``, 0.9 if absent); where a bound sits on 0 or 1 (a clipped interval)
    the larger half-width is used, ``s_i = max(estimate - lower, upper - estimate) / z``, so that estimates near a
    boundary do not gain weight from the clipping. Within each group the mean is precision-weighted with
    random-effects weights ``w_i = 1 / (s_i^2 + tau^2)``, ``tau^2`` being the between-sample variance estimated by
    DerSimonian-Laird in that group: a sample whose estimate is less certain counts less, and when the biological
    spread dominates the weights become equal. The variance of each weighted mean is the robust (sandwich) variance
    ``sum w_i^2 (y_i - ybar)^2 / (sum w_i)^2 * n / (n - 1)``, not ``1 / sum w_i``: interval widths can include a bias
    common to all samples (e.g. a platform effect) that cancels in a difference of groups, and the weights' scale
    would count it as noise. The reference distribution is Student's t with Welch-Satterthwaite degrees of freedom,
    computed from the groups' effective sample sizes ``(sum w)^2 / sum w^2`` (at least 1).

    **Without intervals** (or ``use_uncertainty=False``), the same machinery with equal weights is Welch's t-test on
    the estimates.

    Samples whose group is NaN are left out, and so are, label by label, samples whose estimate (or bound) is NaN. A
    label constant within both groups gets statistic 0 and p-value 1 when the two values agree (statistic ±inf and
    p-value 0 when they differ).

    Parameters
    ----------
    adata
        AnnData of bulk samples with fractions in ``adata.obsm[key]``, as written by ``dco.tl.deconvolve``.
    groupby
        Column of ``adata.obs`` holding the groups.
    key
        Key of the fractions in ``adata.obsm`` (the ``key_added`` of ``dco.tl.deconvolve``); the intervals are read
        from ``adata.obsm[f"{key}_lower"]`` and ``adata.obsm[f"{key}_upper"]``.
    groups
        ``(group, reference)``: the two groups to compare; the difference is ``group - reference``. By default the
        column must hold exactly two groups, and the reference is the first (first category of a categorical column,
        otherwise the first in sorted order).
    level
        Level of the confidence interval of each difference, in (0, 1).
    use_uncertainty
        ``"auto"``: weight by the per-sample intervals when both bounds are present. ``True``: require them.
        ``False``: ignore them (Welch's t-test).
    key_added
        Key in ``adata.uns`` for the result; default ``f"{key}_compare_{groupby}"``.
    copy
        Return a copy of ``adata`` with the result instead of writing to ``adata``.

    Returns
    -------
    ``None`` (or the copy if ``copy=True``); sets ``adata.uns[key_added]``, a dict:

    ``"params"``
        ``groupby``, ``groups`` (``[group, reference]``), ``key``, ``level``, ``use_uncertainty`` (whether intervals
        were used), ``method`` (``"weighted"`` or ``"welch"``) and, when intervals were used, ``interval_level``.
    ``"results"``
        DataFrame indexed by label (the columns of ``adata.obsm[key]``), with columns ``mean_group`` and
        ``mean_reference`` (the group means the difference is made of: precision-weighted with intervals, plain
        otherwise), ``difference`` (``mean_group - mean_reference``), ``lower`` and ``upper`` (its ``level``
        confidence interval), ``statistic`` (t), ``df``, ``pvalue`` (two-sided), ``pvalue_adj`` (Benjamini-Hochberg
        across labels), ``n_group`` and ``n_reference`` (samples used) and ``method``.

    The table is ``adata.uns[key_added]["results"]``, e.g.
    ``adata.uns["decode_compare_condition"]["results"]`` for ``groupby="condition"``.
    """
    if not isinstance(adata, AnnData):
        raise TypeError(
            f"compare_groups takes an AnnData of bulk samples, got {type(adata).__name__}. For a MuData, pass the "
            "modality whose fractions to compare (e.g. mdata['rna'] with its obsm['decode'])."
        )
    if not 0 < level < 1:
        raise ValueError(f"`level` is the confidence level of the intervals, in (0, 1); got {level!r}.")
    if groupby not in adata.obs.columns:
        raise KeyError(
            f"{groupby!r} is not a column of adata.obs; its columns are {_preview(list(adata.obs.columns), 20)}."
        )
    if key not in adata.obsm:
        raise KeyError(
            f"No fractions in adata.obsm[{key!r}]; run `dco.tl.deconvolve` first (or pass the `key` it wrote). "
            f"adata.obsm has {list(adata.obsm.keys())}."
        )
    from scanpy import logging as logg

    estimate = _frame(adata, key, "fractions")
    values = adata.obs[groupby]
    group, reference = _resolve_groups(values, groupby, groups)
    in_group = (values == group).to_numpy(dtype=bool) & values.notna().to_numpy()
    in_reference = (values == reference).to_numpy(dtype=bool) & values.notna().to_numpy()
    for name, mask in ((group, in_group), (reference, in_reference)):
        if mask.sum() < 2:
            raise ValueError(
                f"Group {name!r} of adata.obs[{groupby!r}] has {int(mask.sum())} sample(s); a comparison needs at "
                "least 2 per group."
            )
    intervals = _intervals(adata, key, estimate, use_uncertainty)

    start = logg.info(f"comparing {key!r} between {group!r} and {reference!r} ({groupby!r})")
    y = estimate.to_numpy().T  # labels x samples
    if intervals is None:
        s2, method = None, "welch"
    else:
        lower, upper, interval_level = intervals
        s2 = _interval_variance(y, lower.to_numpy().T, upper.to_numpy().T, interval_level)
        method = "weighted"
    res = _compare_arrays(y, s2, in_group[None, :], in_reference[None, :], level=level)
    short = (res["n_group"] < 2) | (res["n_reference"] < 2)
    if short.any():
        logg.warning(
            f"labels {estimate.columns[short].tolist()} have fewer than 2 samples with values in a group; their "
            "results are NaN."
        )
    table = pd.DataFrame({c: res[c] for c in COLUMNS if c in res}, index=estimate.columns.copy())
    table["pvalue_adj"] = _benjamini_hochberg(table["pvalue"].to_numpy())
    table["n_group"] = table["n_group"].astype(np.int64)
    table["n_reference"] = table["n_reference"].astype(np.int64)
    table["method"] = method
    table = table[COLUMNS]
    table.index.name = "label"

    params: dict[str, Any] = {
        "groupby": groupby,
        "groups": [str(group), str(reference)],
        "key": key,
        "level": float(level),
        "use_uncertainty": intervals is not None,
        "method": method,
    }
    if intervals is not None:
        params["interval_level"] = interval_level

    adata = adata.copy() if copy else adata
    key_added = key_added or f"{key}_compare_{groupby}"
    adata.uns[key_added] = {"params": params, "results": table}
    logg.info("    finished", time=start, deep=f"added\n    {key_added!r}, group comparison (adata.uns)")
    return adata if copy else None
