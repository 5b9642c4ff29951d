"""Estimated against true fractions, one panel per label."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import metrics
from ._utils import UNKNOWN, finish, fractions_frame, label_colors, ordered_labels, shared_docs

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
    show: bool | None = None,
    save: bool | str | Path | None = None,
) -> np.ndarray | None:
    """Estimated against true fractions, one scatter panel per label.

    All panels share the axes from 0 to the largest fraction and show the identity line. Each title gives the
    label's CCC and RMSE (:func:`decode_omics.metrics.score`), the figure title the values pooled over samples x
    labels. Only samples with fractions on both sides (no NaN) are shown.

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
    show, save
        {show_save}

    Returns
    -------
    An array of the panels' Axes (one per label; the figure is ``axes[0].figure``) if the figure is not shown,
    else ``None``.
    """
    import matplotlib.pyplot as plt

    if estimate is None or truth is None:
        if adata is None:
            raise TypeError("Pass adata (with .obsm[key] and .obsm[truth_key]) or both estimate= and truth=.")
        estimate = fractions_frame(adata, key, what="estimated fractions") if estimate is None else estimate
        truth = fractions_frame(adata, truth_key, what="true fractions") if truth is None else truth
    estimate = fractions_frame(estimate, key)
    truth = fractions_frame(truth, truth_key)
    est, tru = _align_truth(estimate, truth)
    scores = metrics.score(est, tru)
    labels = list(est.columns)

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
    top = float(max(np.nanmax(est.to_numpy()), np.nanmax(tru.to_numpy()), 1e-3)) * 1.05
    for i, (ax, lab) in enumerate(zip(axs, labels)):
        ax.plot([0, top], [0, top], linestyle="--", color="0.55", linewidth=0.8, zorder=1)
        ax.scatter(tru[lab], est[lab], s=size, color=cmap[lab], alpha=0.8, linewidths=0, zorder=2)
        ax.set_title(
            f"{textwrap.shorten(str(lab), 32, placeholder='…')}\n"
            f"CCC {scores.loc[lab, 'ccc']:.2f} · RMSE {scores.loc[lab, 'rmse']:.3f}",
            fontsize=9,
        )
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
    fig.suptitle(
        f"pooled CCC {scores.loc['pooled', 'ccc']:.3f} · RMSE {scores.loc['pooled', 'rmse']:.3f} "
        f"({est.shape[0]} samples, {n} labels)",
        fontsize=10,
    )
    axs = axs[:n]
    return finish(fig, "truth", show=show, save=save, returned=axs)
