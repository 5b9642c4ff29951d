"""Fractions of one modality against another's for the same samples."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import metrics
from ..tl._consistency import _align_pair, _modality_fractions, _require_two
from ._utils import finish, label_colors, shared_docs

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from mudata import MuData


@shared_docs
def consistency(
    mdata: MuData,
    key: str = "decode",
    *,
    mods: Sequence[str] | None = None,
    colors: Mapping | Sequence | str | None = None,
    legend: bool = True,
    size: float = 14,
    ax: Axes | None = None,
    show: bool | None = None,
    save: bool | str | Path | None = None,
) -> Axes | np.ndarray | None:
    """Fractions estimated from one modality against another's, coloured by label.

    The fractions are read from ``mdata.obsm[f"{key}_{mod}"]`` (else ``mdata[mod].obsm[key]``) and compared as in
    :func:`decode_omics.tl.consistency`: samples both modalities have, shared labels without ``unknown``, each sample
    renormalised over them. The pooled CCC and Pearson r and the number of samples are written in the panel; with
    one pair, the legend gives each label's CCC across samples.

    Parameters
    ----------
    mdata
        MuData with fractions for at least 2 modalities.
    key
        Key of the fractions (see above).
    mods
        The two modalities to compare (x axis, y axis). By default every pair of modalities with fractions, one
        panel each.
    colors
        Label colours: a dict, a list in the order of the labels, or a matplotlib colormap name.
    legend
        Draw the legend (right of the panels).
    size
        Marker size.
    ax
        Axes to draw into (one pair only).
    show, save
        {show_save}

    Returns
    -------
    If the figure is not shown: the Axes for one pair, else an array of Axes (one per pair); otherwise ``None``.
    """
    import matplotlib.pyplot as plt

    fractions = _modality_fractions(mdata, key)
    if mods is not None:
        mods = list(mods)
        if len(mods) != 2:
            raise ValueError(f"mods must name 2 modalities, got {mods}.")
        for mod in mods:
            if mod not in mdata.mod:
                raise KeyError(f"{mod!r} is not a modality of mdata; modalities: {list(mdata.mod)}.")
            if mod not in fractions:
                raise KeyError(
                    f"No fractions for modality {mod!r}: neither mdata.obsm[{f'{key}_{mod}'!r}] nor "
                    f"mdata[{mod!r}].obsm[{key!r}]; `dco.tl.deconvolve` writes them. Modalities with fractions: "
                    f"{list(fractions)}."
                )
        pairs = [tuple(mods)]
    else:
        _require_two(mdata, fractions, key)
        pairs = list(combinations(fractions, 2))
    if ax is not None and len(pairs) > 1:
        raise ValueError(f"ax draws one pair, but there are {len(pairs)}: {pairs}; pass mods=.")

    aligned = [_align_pair(fractions[a], fractions[b], (a, b)) for a, b in pairs]
    all_labels = list(dict.fromkeys(lab for fa, _ in aligned for lab in fa.columns))
    cmap = label_colors(all_labels, colors)

    if ax is None:
        n = len(pairs)
        fig, axs = plt.subplots(
            1, n, figsize=(3.6 * n + (1.8 if legend else 0), 3.8), squeeze=False, layout="constrained"
        )
        axs = axs.ravel()
    else:
        fig, axs = ax.figure, np.array([ax])

    for ax_, (mod_a, mod_b), (fa, fb) in zip(axs, pairs, aligned):
        top = float(max(fa.to_numpy().max(), fb.to_numpy().max(), 1e-3)) * 1.05
        ax_.plot([0, top], [0, top], linestyle="--", color="0.55", linewidth=0.8, zorder=1)
        per_label = metrics.ccc(fa, fb, per_label=True)
        for lab in fa.columns:
            name = f"{lab} ({per_label[lab]:.2f})" if len(pairs) == 1 else str(lab)
            ax_.scatter(fa[lab], fb[lab], s=size, color=cmap[lab], alpha=0.8, linewidths=0, label=name, zorder=2)
        ax_.text(
            0.04,
            0.96,
            f"CCC {metrics.ccc(fa, fb):.3f}\nr {metrics.pearson(fa, fb):.3f}\n{fa.shape[0]} samples",
            transform=ax_.transAxes,
            ha="left",
            va="top",
            fontsize=9,
            bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "0.8", "alpha": 0.9},
        )
        ax_.set_xlim(-0.02 * top, top)  # room for the markers at 0
        ax_.set_ylim(-0.02 * top, top)
        ax_.set_aspect("equal", adjustable="box")
        ax_.set_xlabel(f"{mod_a} fraction")
        ax_.set_ylabel(f"{mod_b} fraction")
        ax_.set_title(f"{mod_a} vs {mod_b}", fontsize=10)
        ax_.spines[["top", "right"]].set_visible(False)

    if legend:
        title = "label (CCC)" if len(pairs) == 1 else "label"
        if len(pairs) == 1:
            axs[0].legend(
                loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize=8, title=title, markerscale=1.5
            )
        else:
            handles, names = axs[0].get_legend_handles_labels()
            seen = set(names)
            for ax_ in axs[1:]:
                for h, nm in zip(*ax_.get_legend_handles_labels()):
                    if nm not in seen:
                        handles.append(h)
                        names.append(nm)
                        seen.add(nm)
            fig.legend(
                handles, names, loc="outside right upper", frameon=False, fontsize=8, title=title, markerscale=1.5
            )
    returned = axs[0] if len(pairs) == 1 else axs
    return finish(fig, "consistency", show=show, save=save, returned=returned)
