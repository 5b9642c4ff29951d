"""Estimated against true fractions, one panel per label."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from .. import metrics
from ._utils import (
    UNKNOWN,
    check_intervals,
    finish,
    fractions_frame,
    interval_frames,
    label_colors,
    level_text,
    ordered_labels,
    shared_docs,
)

if TYPE_CHECKING:
    from anndata import AnnData


def _align_truth(estimate: pd.DataFrame, truth: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Shared complete samples; labels must match, except ``unknown`` which is 0 where one side lacks it."""
    only_e = [c for c in estimate.columns if c not in set(truth.columns) and c != UNKNOWN]
    only_t = [c for c in truth.columns if c not in set(estimate.columns) and c != UNKNOWN]
    if only_e or only_t:
        raise ValueError(
            f"Estimate and truth have different labels (only in the estimate: {only_e}; only in the truth: "
            f"{only_t}); rename or select them first."
        )
    labels = ordered_labels(list(estimate.columns) + [c for c in truth.columns if c not in set(estimate.columns)])
    estimate = estimate.reindex(columns=labels)
    truth = truth.reindex(columns=labels)
    if UNKNOWN in labels:  # absolute mode against a truth without unknown cells (or the reverse): that is 0
        estimate[UNKNOWN] = estimate[UNKNOWN].fillna(0.0)
        truth[UNKNOWN] = truth[UNKNOWN].fillna(0.0)
    complete_e = estimate.index[estimate.notna().all(axis=1).to_numpy()]
    complete_t = truth.index[truth.notna().all(axis=1).to_numpy()]
    samples = complete_e[complete_e.isin(complete_t)]
    if len(samples) == 0:
        raise ValueError(
            f"Estimate and truth share no samples without NaN (e.g. {complete_e[:3].tolist()} vs "
            f"{complete_t[:3].tolist()})."
        )
    return estimate.loc[samples].astype(np.float64), truth.loc[samples].astype(np.float64)


def _coverage(lower: pd.DataFrame, upper: pd.DataFrame, truth: pd.DataFrame) -> tuple[pd.Series, float]:
    """Percentage of true values with ``lower <= truth <= upper``, per label and pooled, over the defined intervals.

    NaN where a label has no interval.
    """
    lo, up, tru = lower.to_numpy(), upper.to_numpy(), truth.to_numpy()
    defined = ~(np.isnan(lo) | np.isnan(up))
    inside = (lo <= tru) & (tru <= up) & defined
    with np.errstate(invalid="ignore", divide="ignore"):
        per_label = 100 * inside.sum(axis=0) / defined.sum(axis=0)  # in this order: 57.5, not 57.49999
    pooled = 100 * inside.sum() / defined.sum() if defined.any() else np.nan
    return pd.Series(per_label, index=truth.columns), float(pooled)


def _percent(value: float) -> str:
    """A percentage rounded half up: ``57.5`` -> ``"58 %"``, ``56.5`` -> ``"57 %"``."""
    return f"{np.floor(value + 0.5):.0f} %"


@shared_docs
def truth(
    adata: AnnData | None = None,
    key: str = "decode",
    truth_key: str = "fractions",
    *,
    estimate: pd.DataFrame | None = None,
    truth: pd.DataFrame | None = None,
    ncols: int = 4,
    panel_size: float = 2.4,
    colors: Mapping | Sequence | str | None = None,
    size: float = 14,
    intervals: bool | Literal["auto"] = "auto",
    show: bool | None = None,
    save: bool | str | Path | None = None,
) -> np.ndarray | None:
    """Estimated against true fractions, one scatter panel per label.

    All panels share the axes from 0 to the largest fraction and show the identity line. Each title gives the
    label's CCC and RMSE (:func:`decode_omics.metrics.score`), the figure title the values pooled over samples x
    labels. Only samples with fractions on both sides (no NaN) are shown.

    With intervals (``.obsm[f"{key}_lower"]`` and ``.obsm[f"{key}_upper"]``, written by
    ``dco.tl.deconvolve(..., uncertainty=True)``), each point gets a vertical line from the lower to the upper bound
    of its estimate's interval, and each title a third line with the coverage: the share of the label's samples whose
    true fraction lies inside the interval (``lower <= truth <= upper``), e.g. "coverage 87 % of 90 % intervals"
    (level from ``.uns[key]["uncertainty"]["level"]``, for a MuData key ``f"{base}_{mod}"`` also ``.uns[base]``); the
    figure title gives the coverage pooled over samples x
    labels. Coverage near the level means calibrated intervals; well below it, intervals too narrow.

    Parameters
    ----------
    adata
        AnnData (or MuData) with the estimate in ``.obsm[key]`` and the truth in ``.obsm[truth_key]``; may be left
        out when ``estimate`` and ``truth`` are given.
    key
        Key of the estimate in ``.obsm``.
    truth_key
        Key of the true fractions in ``.obsm``.
    estimate, truth
        DataFrames (samples x labels) to use instead of ``adata``'s. The labels must match; an ``unknown`` column
        (absolute mode) that one side lacks counts as 0 there.
    ncols
        Panels per row.
    panel_size
        Width and height of a panel in inches.
    colors
        Label colours: a dict, a list in the order of the labels, or a matplotlib colormap name.
    size
        Marker size.
    intervals
        Draw the intervals and their coverage: ``"auto"`` when both bounds are stored for ``key`` (and the estimate
        is read from ``adata``, not given as ``estimate=``), ``True`` requires them, ``False`` ignores them. The
        bounds must have the same samples and labels as the estimate.
    show, save
        {show_save}

    Returns
    -------
    An array of the panels' Axes (one per label; the figure is ``axes[0].figure``) if the figure is not shown,
    else ``None``.
    """
    import matplotlib.pyplot as plt

    bounds = None
    check_intervals(intervals)
    if estimate is not None and intervals is True:
        raise ValueError(
            "intervals=True reads the bounds stored with the estimate in adata (.obsm[f'{key}_lower'] and "
            ".obsm[f'{key}_upper']); leave out estimate= to use them."
        )
    if estimate is None or truth is None:
        if adata is None:
            raise TypeError("Pass adata (with .obsm[key] and .obsm[truth_key]) or both estimate= and truth=.")
        if estimate is None:
            estimate = fractions_frame(adata, key, what="estimated fractions")
            bounds = interval_frames(adata, key, estimate, intervals)
        truth = fractions_frame(adata, truth_key, what="true fractions") if truth is None else truth
    estimate = fractions_frame(estimate, key)
    truth = fractions_frame(truth, truth_key)
    est, tru = _align_truth(estimate, truth)
    scores = metrics.score(est, tru)
    labels = list(est.columns)
    if bounds is not None:
        level = bounds[2]
        lower, upper = (b.reindex(index=est.index, columns=est.columns) for b in bounds[:2])
        covered, pooled_coverage = _coverage(lower, upper, tru)

    n = len(labels)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axs = plt.subplots(
        nrows,
        ncols,
        figsize=(panel_size * ncols + 0.3, panel_size * nrows + 0.5),
        sharex=True,
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    axs = axs.ravel()
    cmap = label_colors(labels, colors)
    top = float(max(np.nanmax(est.to_numpy()), np.nanmax(tru.to_numpy()), 1e-3))
    if bounds is not None and np.isfinite(upper.to_numpy()).any():
        top = max(top, float(np.nanmax(upper.to_numpy())))
    top *= 1.05
    for i, (ax, lab) in enumerate(zip(axs, labels)):
        ax.plot([0, top], [0, top], linestyle="--", color="0.55", linewidth=0.8, zorder=1)
        title = (
            f"{textwrap.shorten(str(lab), 32, placeholder='…')}\n"
            f"CCC {scores.loc[lab, 'ccc']:.2f} · RMSE {scores.loc[lab, 'rmse']:.3f}"
        )
        ax.scatter(tru[lab], est[lab], s=size, color=cmap[lab], alpha=0.8, linewidths=0, zorder=2)
        if bounds is not None:  # drawn under the points
            lines = ax.vlines(tru[lab], lower[lab], upper[lab], color=cmap[lab], alpha=0.45, linewidth=0.9, zorder=1.5)
            lines.set_gid(f"interval {lab}")
            if not np.isnan(covered[lab]):
                title += f"\ncoverage {_percent(covered[lab])} of {level_text(level)}"
        ax.set_title(title, fontsize=9)
        ax.set_xlim(-0.02 * top, top)  # room for the markers at 0
        ax.set_ylim(-0.02 * top, top)
        ax.set_aspect("equal", adjustable="box")
        ax.tick_params(labelsize=8)
        if i % ncols == 0:
            ax.set_ylabel("estimate", fontsize=9)
        if i >= n - ncols:
            ax.set_xlabel("truth", fontsize=9)
            ax.xaxis.set_tick_params(labelbottom=True)
    for ax in axs[n:]:
        fig.delaxes(ax)
    pooled = f"pooled CCC {scores.loc['pooled', 'ccc']:.3f} · RMSE {scores.loc['pooled', 'rmse']:.3f}"
    if bounds is not None and not np.isnan(pooled_coverage):
        pooled += f" · coverage {_percent(pooled_coverage)} of {level_text(level)}"
    fig.suptitle(f"{pooled} ({est.shape[0]} samples, {n} labels)", fontsize=10)
    axs = axs[:n]
    return finish(fig, "truth", show=show, save=save, returned=axs)
