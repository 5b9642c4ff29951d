"""Stacked bars, or points with intervals, of the estimated fractions of every sample."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from ._utils import (
    check_intervals,
    finish,
    fractions_frame,
    interval_frames,
    label_colors,
    level_text,
    new_figure,
    ordered_labels,
    shared_docs,
)

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes

_GAP = 0.8  # extra x space between groups
_AUTO_POINTS_MAX = 400  # kind="auto" draws points with intervals for at most this many samples x labels


def _obs(data: Any) -> pd.DataFrame | None:
    obs = getattr(data, "obs", None)
    return obs if isinstance(obs, pd.DataFrame) else None


def _groups(data: Any, groupby: str | pd.Series | Sequence | None, index: pd.Index) -> pd.Series | None:
    if groupby is None:
        return None
    if isinstance(groupby, str):
        obs = _obs(data)
        if obs is None:
            raise ValueError(
                f"groupby={groupby!r} names an obs column, but a DataFrame has no .obs; pass a Series of groups "
                "indexed by sample instead."
            )
        if groupby not in obs.columns:
            raise KeyError(f"groupby={groupby!r} is not a column of .obs; available: {list(obs.columns)}.")
        groups = obs[groupby]
    elif isinstance(groupby, pd.Series):
        groups = groupby
    else:
        values = list(groupby)
        if len(values) != len(index):
            raise ValueError(f"groupby has {len(values)} values for {len(index)} samples.")
        groups = pd.Series(values, index=index)
    missing = index.difference(groups.index)
    if len(missing):
        raise ValueError(f"groupby has no group for {len(missing)} samples, e.g. {missing[:3].tolist()}.")
    groups = groups.loc[index]
    if not isinstance(groups.dtype, pd.CategoricalDtype):
        groups = groups.astype("category")
    if groups.isna().any():
        missing_name = "NA" if "NA" not in groups.cat.categories else "NA (missing)"
        groups = groups.cat.add_categories([missing_name]).fillna(missing_name)
    return groups.cat.remove_unused_categories()


def _sort_key(data: Any, frame: pd.DataFrame, sort_by: str | None) -> pd.Series | None:
    if sort_by is None:
        return None
    if sort_by in frame.columns:
        return -frame[sort_by]  # most of that label first
    obs = _obs(data)
    if obs is not None and sort_by in obs.columns:
        return obs.loc[frame.index, sort_by]
    obs_cols = list(obs.columns) if obs is not None else []
    raise KeyError(
        f"sort_by={sort_by!r} is neither a label ({list(map(str, frame.columns))}) nor an obs column ({obs_cols})."
    )


@shared_docs
def fractions(
    adata: AnnData | pd.DataFrame,
    key: str = "decode",
    *,
    kind: Literal["auto", "stacked", "points"] = "auto",
    intervals: bool | Literal["auto"] = "auto",
    groupby: str | pd.Series | None = None,
    sort_by: str | None = None,
    ax: Axes | None = None,
    show: bool | None = None,
    save: bool | str | Path | None = None,
    colors: Mapping | Sequence | str | None = None,
    legend: bool = True,
    figsize: tuple[float, float] | None = None,
) -> Axes | None:
    """The fractions of every sample: stacked bars, or points with their uncertainty intervals.

    Samples run along x in both kinds, in the same order (``groupby``, then ``sort_by``).

    - ``kind="stacked"``: one bar per sample, the labels stacked in their order (``unknown`` on top). Stacked
      bars draw no intervals: an interval of one segment would sit on the cumulative sum of the segments below
      it, whose own uncertainty it does not include, and would read as the uncertainty of that sum.
    - ``kind="points"``: one slot per sample holding one point per label side by side (in the label order,
      coloured by label) at the estimate, each with a vertical line from the lower to the upper bound of its
      interval when intervals are drawn (the legend title gives their level). The y axis spans the values drawn,
      so small fractions stay readable.

    Parameters
    ----------
    adata
        AnnData (or MuData) with fractions in ``.obsm[key]``, or the DataFrame itself (samples x labels). Samples
        with NaN fractions (a modality a sample lacks, in ``mdata.obsm[f"{key}_{mod}"]``) are left out.
    key
        Key in ``.obsm``; for a MuData, ``f"{key}_{mod}"``.
    kind
        ``"stacked"`` bars (no intervals), ``"points"`` (with the intervals if there are any), or ``"auto"``:
        ``"points"`` when the intervals are stored (and ``intervals`` is not ``False``) and there are at most 400
        estimates (samples x labels), or always with ``intervals=True``; else ``"stacked"``. Without intervals
        ``"auto"`` draws the stacked bars, as before intervals existed.
    intervals
        Draw the per-sample, per-label intervals of ``.obsm[f"{key}_lower"]`` and ``.obsm[f"{key}_upper"]``
        (written by ``dco.tl.deconvolve(..., uncertainty=True)``, at the level in
        ``.uns[key]["uncertainty"]["level"]``; for a MuData key ``f"{base}_{mod}"`` also ``.uns[base]``).
        ``"auto"`` draws them when both are stored; ``True`` requires them (and ``kind`` ``"points"`` or
        ``"auto"``); ``False`` ignores them. The bounds must have the same samples and labels as the fractions.
    groupby
        Column of ``.obs`` (or a Series indexed by sample) to group the samples by: groups are drawn in their
        category order, separated by a gap and a line and named above the samples.
    sort_by
        Order of the samples (within groups): a label (most of it first) or an ``.obs`` column (ascending).
    ax
        Axes to draw into; by default a new figure whose width grows with the number of samples (and, for
        points, of labels).
    show, save
        {show_save}
    colors
        Label colours: a dict, a list in the order of the labels, or a matplotlib colormap name. ``unknown`` is grey.
    legend
        Draw the legend (right of the axes; for bars in stacking order, top first).
    figsize
        Size of a new figure.

    Returns
    -------
    The Axes if the figure is not shown, else ``None``.
    """
    if kind not in ("auto", "stacked", "points"):
        raise ValueError(f"kind={kind!r}: pass 'auto', 'stacked' or 'points'.")
    check_intervals(intervals)
    frame = fractions_frame(adata, key)
    if kind == "stacked" and intervals is True:
        raise ValueError(
            "kind='stacked' draws no intervals (an interval on a stacked segment would read as the uncertainty of "
            "the cumulative sum); pass kind='points' (or 'auto') to draw them, or intervals='auto'."
        )
    # stacked bars draw no intervals: not even read, so stored bounds cannot get in their way
    bounds = interval_frames(adata, key, frame, False if kind == "stacked" else intervals)
    groups = _groups(adata, groupby, frame.index)
    complete = frame.notna().all(axis=1).to_numpy()
    frame = frame[complete]
    if frame.shape[0] == 0:
        raise ValueError(f"The fractions at key {key!r} have no sample without NaN.")
    if groups is not None:
        groups = groups[complete].cat.remove_unused_categories()
    labels = ordered_labels(frame.columns)
    sort_key = _sort_key(adata, frame, sort_by)
    if kind == "auto":
        few = intervals is True or frame.size <= _AUTO_POINTS_MAX
        kind = "points" if bounds is not None and few else "stacked"

    order = pd.DataFrame(index=frame.index)
    order["group"] = groups.cat.codes.to_numpy() if groups is not None else 0
    order["key"] = sort_key.to_numpy() if sort_key is not None else 0
    order["pos"] = np.arange(frame.shape[0])
    order = order.sort_values(["group", "key", "pos"], kind="stable")
    frame = frame.loc[order.index]
    codes = order["group"].to_numpy()
    n = frame.shape[0]
    x = np.arange(n) + _GAP * codes if groups is not None else np.arange(n, dtype=float)
    x = x - (x[0] if n else 0)

    if figsize is None:
        per_sample = 0.16 if kind == "stacked" else max(0.16, 0.07 * len(labels))
        figsize = (float(np.clip(per_sample * (x[-1] + 1) + 3.0, 5.0, 18.0)), 4.0)
    fig, ax = new_figure(figsize, ax)
    cmap = label_colors(labels, colors)
    fig_width_in = ax.get_position().width * fig.get_figwidth()
    pt_per_bar = 72 * fig_width_in / max(x[-1] - x[0] + 1.2, 1)
    markerscale = 1.0
    if kind == "stacked":
        _draw_stacked(ax, x, frame, labels, cmap)
    else:
        if bounds is not None:
            bounds = (bounds[0].loc[frame.index], bounds[1].loc[frame.index], bounds[2])
        size = _draw_points(ax, x, frame, labels, cmap, bounds, pt_per_bar)
        markerscale = float(np.sqrt(30.0 / size))  # legend markers as large as the largest points
    ax.set_ylabel("fraction")
    ax.spines[["top", "right"]].set_visible(False)

    # Sample names: readable only while each bar gets about 7 pt; otherwise just count them.
    fontsize = min(9.0, 0.75 * pt_per_bar)
    if fontsize >= 5:
        ax.set_xticks(x, frame.index.astype(str), rotation=90, fontsize=fontsize)
        ax.tick_params(axis="x", length=0)
    else:
        ax.set_xticks([])
        ax.set_xlabel(f"{n} samples")

    if groups is not None:
        from matplotlib.transforms import blended_transform_factory

        trans = blended_transform_factory(ax.transData, ax.transAxes)
        cats = groups.cat.categories
        starts = [x[codes == c].min() for c in range(len(cats))]
        ends = [x[codes == c].max() for c in range(len(cats))]
        for c in range(1, len(cats)):
            ax.axvline((ends[c - 1] + starts[c]) / 2, color="0.2", linewidth=0.8)
        # Horizontal names only if each fits over its group (about 0.6 em per character).
        fits = all(
            0.6 * 9 * len(str(cat)) <= pt_per_bar * (end - start + 1) for cat, start, end in zip(cats, starts, ends)
        )
        for cat, start, end in zip(cats, starts, ends):
            ax.text(
                (start + end) / 2 if fits else start - 0.4,
                1.01,
                str(cat),
                transform=trans,
                ha="center" if fits else "left",
                va="bottom",
                rotation=0 if fits else 30,
                rotation_mode="anchor",
                fontsize=9,
            )

    if legend:
        handles, names = ax.get_legend_handles_labels()
        if kind == "stacked":
            handles, names = handles[::-1], names[::-1]  # top of the stack first
        ax.legend(
            handles,
            names,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            frameon=False,
            fontsize=9,
            ncol=2 if len(labels) > 20 else 1,
            handlelength=1.0,
            markerscale=markerscale,
            title=f"lines: {level_text(bounds[2])}" if kind == "points" and bounds is not None else None,
            title_fontsize=9,
            alignment="left",
        )
    return finish(fig, "fractions", show=show, save=save, returned=ax)


def _draw_stacked(ax: Axes, x: np.ndarray, frame: pd.DataFrame, labels: list, cmap: dict) -> None:
    n = frame.shape[0]
    bottom = np.zeros(n)
    width = 0.9 if n <= 120 else 1.0
    for lab in labels:
        values = frame[lab].to_numpy(dtype=np.float64)
        ax.bar(x, values, bottom=bottom, width=width, color=cmap[lab], label=str(lab), linewidth=0)
        bottom += values
    ax.set_xlim(x[0] - 0.6, x[-1] + 0.6)
    ax.set_ylim(0, max(1.0, float(np.nanmax(bottom))))
    ax.margins(y=0)


def _draw_points(
    ax: Axes,
    x: np.ndarray,
    frame: pd.DataFrame,
    labels: list,
    cmap: dict,
    bounds: tuple[pd.DataFrame, pd.DataFrame, float | None] | None,
    pt_per_bar: float,
) -> float:
    """Per sample slot one point per label, side by side, each with a vertical line over its interval.

    Returns the marker size.
    """
    n_labels = len(labels)
    step = 0.8 / n_labels
    offsets = (np.arange(n_labels) - (n_labels - 1) / 2) * step
    pt_per_point = pt_per_bar * step
    size = float(np.clip((0.6 * pt_per_point) ** 2, 3.0, 30.0))
    linewidth = float(np.clip(0.3 * pt_per_point, 0.6, 1.6))
    if n_labels > 1:  # shade every other sample slot so the points of one sample read together
        for xi in x[1::2]:
            ax.axvspan(xi - 0.5, xi + 0.5, color="0.95", linewidth=0, zorder=0)
    top = float(np.nanmax(frame.to_numpy(dtype=np.float64)))
    for j, lab in enumerate(labels):
        xs = x + offsets[j]
        if bounds is not None:
            lines = ax.vlines(
                xs,
                bounds[0][lab].to_numpy(dtype=np.float64),
                bounds[1][lab].to_numpy(dtype=np.float64),
                color=cmap[lab],
                linewidth=linewidth,
                zorder=2,
                label="_nolegend_",
            )
            lines.set_gid(f"interval {lab}")
        ax.scatter(xs, frame[lab].to_numpy(dtype=np.float64), s=size, color=cmap[lab], label=str(lab), zorder=3)
    if bounds is not None and np.isfinite(bounds[1].to_numpy(dtype=np.float64)).any():
        top = max(top, float(np.nanmax(bounds[1].to_numpy(dtype=np.float64))))
    top = max(top, 0.05) * 1.05
    ax.set_xlim(x[0] - 0.6, x[-1] + 0.6)
    ax.set_ylim(-0.02 * top, top)
    ax.grid(axis="y", color="0.85", linewidth=0.6)
    ax.set_axisbelow(True)
    return size
