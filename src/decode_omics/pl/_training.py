"""Training curves: losses and the discriminator's accuracy per epoch."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._utils import finish, shared_docs

KNOWN = (
    "train_loss",
    "validation_loss",
    "fraction_loss_train",
    "fraction_loss_validation",
    "contrastive_loss_train",
    "adversarial_loss_train",
    "discriminator_accuracy_train",
)
_GROUP = {"train_loss": "total", "validation_loss": "total"}


def _history(source: Any, key: str) -> dict[str, pd.Series]:
    """``{name: Series indexed by epoch}`` from a model, an AnnData / MuData, or a dict of DataFrames / lists."""
    if hasattr(source, "uns") and hasattr(source, "obsm"):
        entry = source.uns.get(key)
        if not isinstance(entry, Mapping) or "history" not in entry:
            raise KeyError(
                f"No training history at .uns[{key!r}]['history']; available uns keys: {list(source.uns.keys())}. "
                "`dco.tl.deconvolve` stores it; pass `key` if you used another `key_added`."
            )
        history = entry["history"]
    elif isinstance(source, Mapping):
        history = source
    elif hasattr(source, "history"):
        history = source.history
        if history is None:
            raise ValueError(f"{type(source).__name__}.history is None: train the model first.")
    else:
        raise TypeError(
            f"Expected a model (with .history), a dict of DataFrames or lists, or an AnnData / MuData with "
            f".uns[key]['history'], got {type(source).__name__}."
        )
    out: dict[str, pd.Series] = {}
    for name, values in dict(history).items():
        if isinstance(values, pd.DataFrame):
            if values.shape[1] == 0:
                continue
            series = values.iloc[:, 0]
        elif isinstance(values, pd.Series):
            series = values
        else:
            arr = np.asarray(values, dtype=np.float64).ravel()
            series = pd.Series(arr, index=np.arange(len(arr)))
        series = pd.to_numeric(series, errors="coerce").dropna()
        if len(series):
            out[str(name)] = series.astype(np.float64)
    return out


def _group_and_split(name: str) -> tuple[str, str]:
    """``(group, "train" | "validation")``: train and validation of the same loss share a colour."""
    split = "validation" if "validation" in name else "train"
    group = _GROUP.get(name) or re.sub(r"_?(train|validation|epoch|step)_?", "", name) or name
    return group, split


def _log_axis(ax, values: np.ndarray) -> None:
    """Log y axis labelled with plain numbers (0.1, 0.5, 1, 2), not powers of ten."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    positive = values[values > 0]
    if positive.size and np.log10(positive.max() / positive.min()) <= 2:

        def minor(v, _):
            mantissa = v / 10 ** np.floor(np.log10(v) + 1e-9)
            return f"{v:g}" if np.isclose(mantissa, 2) or np.isclose(mantissa, 5) else ""

        ax.yaxis.set_minor_formatter(FuncFormatter(minor))
    else:
        ax.yaxis.set_minor_formatter(NullFormatter())


@shared_docs
def training(
    model_or_history: Any,
    *,
    key: str = "decode",
    keys: Sequence[str] | None = None,
    logy: bool | str = "auto",
    figsize: tuple[float, float] | None = None,
    show: bool | None = None,
    save: bool | str | Path | None = None,
) -> np.ndarray | None:
    """Loss curves and the discriminator's accuracy per epoch.

    Losses (total, fraction, contrastive, adversarial; validation curves dashed in the colour of their training
    curve) are drawn on the first panel. Names containing ``accuracy`` (the discriminator's accuracy) go to a second
    panel with a dashed line at chance, 0.5: near 0.5 the discriminator cannot tell the domains apart.

    Parameters
    ----------
    model_or_history
        A trained model (its ``.history``: name -> one-column DataFrame indexed by epoch), such a dict, a dict of
        lists (as in ``adata.uns[key]["history"]``), or an AnnData / MuData holding ``.uns[key]["history"]``.
    key
        Key in ``.uns`` when an AnnData / MuData is passed.
    keys
        Names to plot. By default those present of ``train_loss``, ``validation_loss``,
        ``fraction_loss_train``, ``fraction_loss_validation``, ``contrastive_loss_train``,
        ``adversarial_loss_train`` and ``discriminator_accuracy_train`` (or every name, if none is).
    logy
        Logarithmic loss axis: ``"auto"`` when all losses are positive and span more than a factor of 10.
    figsize
        Size of the figure.
    show, save
        {show_save}

    Returns
    -------
    An array of Axes (losses, then accuracy if plotted) if the figure is not shown, else ``None``.
    """
    import matplotlib.pyplot as plt

    history = _history(model_or_history, key)
    if not history:
        raise ValueError("The training history is empty.")
    if keys is None:
        names = [name for name in KNOWN if name in history] or list(history)
    else:
        names = list(keys)
        missing = [name for name in names if name not in history]
        if missing:
            raise KeyError(f"Not in the training history: {missing}; available: {list(history)}.")
    losses = [name for name in names if "accuracy" not in name]
    accuracies = [name for name in names if "accuracy" in name]

    n_panels = int(bool(losses)) + int(bool(accuracies))
    if figsize is None:
        figsize = (4.4 * n_panels + 2.2, 3.4)
    fig, axs = plt.subplots(1, n_panels, figsize=figsize, squeeze=False, layout="constrained")
    axs = axs.ravel()

    groups = list(dict.fromkeys(_group_and_split(name)[0] for name in names))
    palette = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    color = {g: palette[i % len(palette)] for i, g in enumerate(groups)}

    def draw(ax, name):
        series = history[name]
        group, split = _group_and_split(name)
        ax.plot(
            series.index.to_numpy(),
            series.to_numpy(),
            color=color[group],
            linestyle="--" if split == "validation" else "-",
            marker="o" if len(series) <= 20 else None,
            markersize=3,
            linewidth=1.4,
            label=name,
        )

    panel = 0
    if losses:
        ax = axs[panel]
        for name in losses:
            draw(ax, name)
        values = np.concatenate([history[name].to_numpy() for name in losses])
        if logy == "auto":
            logy = bool((values > 0).all() and values.max() / values.min() > 10)
        if logy:
            _log_axis(ax, values)
        ax.set_title("losses", fontsize=10)
        ax.set_ylabel("loss")
        panel += 1
    if accuracies:
        ax = axs[panel]
        for name in accuracies:
            draw(ax, name)
        ax.axhline(0.5, color="0.4", linestyle="--", linewidth=1.0, label="chance (0.5)")
        ax.set_ylim(0, 1.02)
        ax.set_title("discriminator", fontsize=10)
        ax.set_ylabel("accuracy")
    handles, names = [], []
    for ax in axs:
        ax.set_xlabel("epoch")
        ax.spines[["top", "right"]].set_visible(False)
        for handle, name in zip(*ax.get_legend_handles_labels()):
            handles.append(handle)
            names.append(name)
    fig.legend(handles, names, loc="outside right upper", frameon=False, fontsize=8)
    return finish(fig, "training", show=show, save=save, returned=axs)
