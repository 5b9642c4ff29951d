"""Cross-omics consistency: agreement of the fractions estimated from different modalities of the same samples."""

from __future__ import annotations

from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import metrics

if TYPE_CHECKING:
    from mudata import MuData

UNKNOWN = "unknown"


def _modality_fractions(mdata: MuData, key: str) -> dict[str, pd.DataFrame]:
    """Fractions of every modality that has them: ``mdata.obsm[f"{key}_{mod}"]``, else ``mdata[mod].obsm[key]``."""
    if not hasattr(mdata, "mod"):
        raise TypeError(
            f"Expected a MuData with one modality per omics layer, got {type(mdata).__name__}; cross-omics "
            "consistency compares the fractions of at least two modalities."
        )
    out: dict[str, pd.DataFrame] = {}
    for mod in mdata.mod:
        global_key = f"{key}_{mod}"
        if global_key in mdata.obsm:
            frame, where = mdata.obsm[global_key], f"mdata.obsm[{global_key!r}]"
        elif key in mdata[mod].obsm:
            frame, where = mdata[mod].obsm[key], f"mdata[{mod!r}].obsm[{key!r}]"
        else:
            continue
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(
                f"{where} is a {type(frame).__name__}, not a DataFrame of fractions (samples x labels); the labels "
                "are needed to match the modalities."
            )
        out[mod] = frame
    return out


def _require_two(mdata: MuData, fractions: dict[str, pd.DataFrame], key: str) -> None:
    if len(fractions) >= 2:
        return
    missing = [mod for mod in mdata.mod if mod not in fractions]
    where = ", ".join(f"mdata.obsm[{f'{key}_{mod}'!r}] (or mdata[{mod!r}].obsm[{key!r}])" for mod in missing)
    raise ValueError(
        f"Cross-omics consistency needs fractions for at least 2 modalities under key {key!r}; found "
        f"{len(fractions)} ({list(fractions)}). Missing: {where or 'no other modality in mdata'}. "
        "`dco.tl.deconvolve` writes them; check `key` if you used another `key_added`."
    )


def _align_pair(a: pd.DataFrame, b: pd.DataFrame, names: tuple[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Shared, complete samples and shared labels (without ``unknown``) of two fraction tables, rows renormalised."""
    name_a, name_b = names
    cols_b = set(b.columns)
    labels = [c for c in a.columns if c in cols_b and c != UNKNOWN]
    if len(labels) < 2:
        raise ValueError(
            f"{name_a!r} and {name_b!r} share {'no labels' if not labels else f'only the label {labels[0]!r}'} "
            f"(besides {UNKNOWN!r}); at least 2 are needed. Labels of {name_a!r}: {list(map(str, a.columns))}; "
            f"of {name_b!r}: {list(map(str, b.columns))}."
        )
    complete_a = a.index[a[labels].notna().all(axis=1).to_numpy()]
    complete_b = b.index[b[labels].notna().all(axis=1).to_numpy()]
    samples = complete_a[complete_a.isin(complete_b)]
    if len(samples) == 0:
        raise ValueError(
            f"{name_a!r} and {name_b!r} share no samples with fractions ({len(complete_a)} vs {len(complete_b)} "
            f"samples without NaN, e.g. {complete_a[:3].tolist()} vs {complete_b[:3].tolist()})."
        )
    fa = a.loc[samples, labels].astype(np.float64)
    fb = b.loc[samples, labels].astype(np.float64)
    sums_a, sums_b = fa.sum(axis=1), fb.sum(axis=1)
    ok = ((sums_a > 0) & (sums_b > 0)).to_numpy()
    if not ok.all():
        from scanpy import logging as logg

        logg.warning(
            f"{name_a} vs {name_b}: dropping {int((~ok).sum())} samples whose shared labels sum to 0 "
            f"(all of it {UNKNOWN!r}), e.g. {samples[~ok][:3].tolist()}."
        )
        if ok.sum() == 0:
            raise ValueError(f"{name_a!r} and {name_b!r} share no samples with a non-zero fraction of shared labels.")
        fa, fb, sums_a, sums_b = fa[ok], fb[ok], sums_a[ok], sums_b[ok]
    return fa.div(sums_a, axis=0), fb.div(sums_b, axis=0)


def _jensen_shannon(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Row-wise Jensen-Shannon distance (base 2, in [0, 1]) of compositions."""
    from scipy.spatial.distance import jensenshannon

    with np.errstate(invalid="ignore"):
        dist = jensenshannon(p, q, axis=1, base=2)
    # scipy takes the square root of a divergence that rounding can make slightly negative for (nearly) equal rows.
    valid = np.isfinite(p).all(axis=1) & np.isfinite(q).all(axis=1) & (p >= 0).all(axis=1) & (q >= 0).all(axis=1)
    return np.where(np.isnan(dist) & valid, 0.0, dist)


def _pair_metrics(fa: pd.DataFrame, fb: pd.DataFrame, pair: str) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    # Per sample: across labels. Transposing makes the samples the "labels" of the metrics module.
    # Spearman is Pearson on (average) ranks, as in scipy.stats.spearmanr.
    per_sample = pd.DataFrame(
        {
            "pair": pair,
            "sample": fa.index.astype(str),
            "pearson": metrics.pearson(fa.T, fb.T, per_label=True).to_numpy(),
            "spearman": metrics.pearson(fa.rank(axis=1).T, fb.rank(axis=1).T, per_label=True).to_numpy(),
            "ccc": metrics.ccc(fa.T, fb.T, per_label=True).to_numpy(),
            "jensen_shannon": _jensen_shannon(fa.to_numpy(), fb.to_numpy()),
        }
    )
    per_label = pd.DataFrame(
        {
            "pair": pair,
            "label": fa.columns.astype(str),
            "pearson": metrics.pearson(fa, fb, per_label=True).to_numpy(),
            "spearman": metrics.pearson(fa.rank(axis=0), fb.rank(axis=0), per_label=True).to_numpy(),
            "ccc": metrics.ccc(fa, fb, per_label=True).to_numpy(),
        }
    )
    jsd = per_sample["jensen_shannon"].to_numpy()
    summary = {
        "pair": pair,
        "n_samples": fa.shape[0],
        "n_labels": fa.shape[1],
        "ccc": metrics.ccc(fa, fb),
        "pearson": metrics.pearson(fa, fb),
        "median_jensen_shannon": float(np.nanmedian(jsd)) if np.isfinite(jsd).any() else float("nan"),
    }
    return per_sample, per_label, summary


def consistency(
    mdata: MuData,
    key: str = "decode",
    *,
    key_added: str | None = None,
    copy: bool = False,
) -> MuData | None:
    """Agreement of the fractions estimated from each pair of modalities of the same samples.

    For every pair of modalities with fractions (``mdata.obsm[f"{key}_{mod}"]``, or else
    ``mdata[mod].obsm[key]``), the samples both have (rows without NaN) and the labels both have are compared. The
    ``"unknown"`` column of absolute mode is dropped and each sample is renormalised to sum to 1 over the shared
    labels; samples whose shared labels sum to 0 are dropped with a warning.

    Parameters
    ----------
    mdata
        MuData with fractions for at least 2 modalities, as written by ``dco.tl.deconvolve``.
    key
        Key of the fractions: ``mdata.obsm[f"{key}_{mod}"]`` or ``mdata[mod].obsm[key]``.
    key_added
        Key in ``mdata.uns`` for the result; default ``f"{key}_consistency"``.
    copy
        Return a copy instead of writing to ``mdata``.

    Returns
    -------
    ``None`` (or the copy if ``copy=True``); sets ``mdata.uns[key_added]``, a dict of DataFrames with all pairs
    stacked (``pair`` is ``"{mod1} vs {mod2}"``, pairs in the order of ``mdata.mod``):

    ``"per_sample"``
        Columns ``pair``, ``sample``, ``pearson``, ``spearman``, ``ccc`` (Lin's CCC across labels) and
        ``jensen_shannon`` (Jensen-Shannon distance in base 2, between 0 for identical and 1 for disjoint
        compositions).
    ``"per_label"``
        Columns ``pair``, ``label``, ``pearson``, ``spearman``, ``ccc``, each across samples.
    ``"summary"``
        One row per pair. Columns ``pair``, ``n_samples``, ``n_labels``, ``ccc`` and ``pearson`` (pooled over
        samples x labels) and ``median_jensen_shannon`` (median over samples).

    Correlations are NaN where a sample or label is constant in either modality.
    """
    from scanpy import logging as logg

    start = logg.info(f"computing cross-omics consistency of {key!r}")
    mdata = mdata.copy() if copy else mdata
    fractions = _modality_fractions(mdata, key)
    _require_two(mdata, fractions, key)

    per_sample, per_label, summary = [], [], []
    for mod_a, mod_b in combinations(fractions, 2):
        pair = f"{mod_a} vs {mod_b}"
        fa, fb = _align_pair(fractions[mod_a], fractions[mod_b], (mod_a, mod_b))
        ps, pl, sm = _pair_metrics(fa, fb, pair)
        per_sample.append(ps)
        per_label.append(pl)
        summary.append(sm)
        logg.debug(f"    {pair}: {sm['n_samples']} samples, {sm['n_labels']} labels, CCC {sm['ccc']:.3f}")

    key_added = key_added or f"{key}_consistency"
    mdata.uns[key_added] = {
        "per_sample": pd.concat(per_sample, ignore_index=True),
        "per_label": pd.concat(per_label, ignore_index=True),
        "summary": pd.DataFrame(summary),
    }
    logg.info("    finished", time=start, deep=f"added\n    {key_added!r}, cross-omics consistency (mdata.uns)")
    return mdata if copy else None
