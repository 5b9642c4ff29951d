"""Shared plotting helpers: fetching fractions, label colours, and scanpy-style ``show`` / ``save``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._engine.docs import fill_docs

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Parameter text shared by the plotting functions' docstrings.
shared_docs = fill_docs(
    {
        "show_save": """Show the figure (``show=None`` shows it only if matplotlib is interactive, e.g. in Jupyter);
save it to a filename (format from its extension, else ``rcParams["savefig.format"]``), or with ``save=True`` to
``scanpy.settings.figdir / "<function name>.<file_format_figs>"``."""
    }
)

UNKNOWN = "unknown"
UNKNOWN_COLOR = "#c7c7c7"


def fractions_frame(data: Any, key: str, *, what: str = "fractions") -> pd.DataFrame:
    """Fractions (samples x labels) from a DataFrame, or from ``data.obsm[key]`` of an AnnData / MuData."""
    if isinstance(data, pd.DataFrame):
        return data
    obsm = getattr(data, "obsm", None)
    if obsm is None:
        raise TypeError(f"Expected an AnnData, a MuData or a DataFrame of {what}, got {type(data).__name__}.")
    if key not in obsm:
        available = list(obsm.keys())
        hint = ""
        if hasattr(data, "mod"):
            per_mod = [k for k in available if k.startswith(f"{key}_")]
            if per_mod:
                hint = f" For a MuData, name the modality: key={per_mod[0]!r}."
        raise KeyError(
            f"No {what} at .obsm[{key!r}]; available obsm keys: {available}.{hint} "
            "`dco.tl.deconvolve` writes the fractions; pass `key` if you used another `key_added`."
        )
    frame = obsm[key]
    if not isinstance(frame, pd.DataFrame):
        frame = np.asarray(frame)
        frame = pd.DataFrame(frame, index=data.obs_names, columns=[str(i) for i in range(frame.shape[1])])
    return frame


def ordered_labels(columns: Sequence) -> list:
    """Labels in their order, with ``unknown`` last."""
    return [c for c in columns if c != UNKNOWN] + [c for c in columns if c == UNKNOWN]


def _default_palette(n: int) -> list:
    """tab10 / tab20 / tab20+tab20b+tab20c without their greys, which are kept for ``unknown``."""
    from matplotlib import colormaps

    tab10 = [c for i, c in enumerate(colormaps["tab10"].colors) if i != 7]
    tab20 = [c for i, c in enumerate(colormaps["tab20"].colors) if i not in (14, 15)]
    if n <= len(tab10):
        return tab10[:n]
    if n <= len(tab20):
        return tab20[:n]
    base = [*tab20, *colormaps["tab20b"].colors, *colormaps["tab20c"].colors[:16]]
    return [base[i % len(base)] for i in range(n)]


def label_colors(labels: Sequence, colors: Mapping | Sequence | str | None = None) -> dict:
    """Map every label to a colour.

    ``colors`` may be a dict (label -> colour), a list (in the order of ``labels``) or the name of a matplotlib
    colormap. By default ``tab10`` / ``tab20`` / a 54-colour cycle without greys; ``unknown`` is light grey.
    """
    labels = list(labels)
    known = [lab for lab in labels if lab != UNKNOWN]
    if colors is None:
        out = dict(zip(known, _default_palette(len(known))))
    elif isinstance(colors, str):
        from matplotlib import colormaps

        if colors not in colormaps:
            raise ValueError(f"colors={colors!r} is not a matplotlib colormap; pass a dict, a list or a colormap name.")
        cmap = colormaps[colors]
        n = getattr(cmap, "N", 256)
        if n <= 32:  # qualitative colormap: take its colours in order
            out = {lab: cmap(i % n) for i, lab in enumerate(known)}
        else:
            out = {lab: cmap(x) for lab, x in zip(known, np.linspace(0, 1, max(len(known), 1)))}
    elif isinstance(colors, Mapping):
        missing = [lab for lab in known if lab not in colors]
        if missing:
            raise ValueError(f"colors has no colour for the labels {missing}.")
        out = {lab: colors[lab] for lab in labels if lab in colors}
    else:
        colors = list(colors)
        if len(colors) < len(labels):
            raise ValueError(f"colors has {len(colors)} colours for {len(labels)} labels.")
        out = dict(zip(labels, colors))
    out.setdefault(UNKNOWN, UNKNOWN_COLOR)
    return out


def save_path(name: str, save: bool | str | Path) -> Path:
    """Where ``save`` writes: ``True`` -> ``scanpy.settings.figdir / f"{name}.{file_format_figs}"``, else the path."""
    if save is True:
        import scanpy as sc

        path = Path(sc.settings.figdir) / f"{name}.{sc.settings.file_format_figs}"
    else:
        from matplotlib.backend_bases import FigureCanvasBase

        path = Path(save)
        if path.suffix.lstrip(".").lower() not in FigureCanvasBase.get_supported_filetypes():
            import matplotlib as mpl

            path = path.with_name(f"{path.name}.{mpl.rcParams['savefig.format']}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def finish(fig: Figure, name: str, *, show: bool | None, save: bool | str | Path | None, returned: Any) -> Any:
    """Save (``save``: a filename or ``True``) and show; return ``returned`` unless the figure was shown.

    ``show=None`` shows only if matplotlib is in interactive mode (e.g. in Jupyter).
    """
    import matplotlib.pyplot as plt

    if save:
        fig.savefig(save_path(name, save), bbox_inches="tight")
    if plt.isinteractive() if show is None else show:
        plt.show()
        return None
    return returned


def new_figure(figsize: tuple[float, float], ax: Any = None):
    """``(figure, axes)``: a new constrained-layout figure, or the figure of ``ax``."""
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


_DECONVOLVE_HINT = "Run `dco.tl.deconvolve(..., uncertainty=True)` to compute them"


def _interval_frame(frame: Any, name: str, estimate: pd.DataFrame, key: str) -> pd.DataFrame:
    """``frame`` (``.obsm[name]``) as a float DataFrame with the samples and labels of ``estimate``, in its order."""
    if not isinstance(frame, pd.DataFrame):
        values = np.asarray(frame, dtype=np.float64)
        if values.shape != estimate.shape:
            raise ValueError(
                f".obsm[{name!r}] has shape {values.shape}, but the fractions at .obsm[{key!r}] have {estimate.shape}."
            )
        return pd.DataFrame(values, index=estimate.index, columns=estimate.columns)
    problems = []
    for axis, mine, theirs in (("samples", frame.index, estimate.index), ("labels", frame.columns, estimate.columns)):
        if mine.equals(theirs):
            continue
        extra, missing = mine.difference(theirs), theirs.difference(mine)
        if len(extra) or len(missing) or mine.has_duplicates or theirs.has_duplicates:
            problems.append(
                f"its {axis} differ (not in the fractions: {extra[:3].tolist()}; missing: {missing[:3].tolist()})"
            )
    if problems:
        raise ValueError(
            f"The interval bounds at .obsm[{name!r}] do not match the fractions at .obsm[{key!r}]: "
            f"{'; '.join(problems)}. The bounds need the same samples and labels as the fractions."
        )
    return frame.reindex(index=estimate.index, columns=estimate.columns).astype(np.float64)


def interval_level(data: Any, key: str) -> float | None:
    """The level of the intervals of ``key``: ``.uns[key]["uncertainty"]["level"]``, or ``None`` if not recorded.

    For a MuData key ``f"{base}_{mod}"`` the level is also looked up under ``.uns[base]`` of the MuData and of the
    modality.
    """
    places = [(getattr(data, "uns", None), key)]
    for mod, adata in (getattr(data, "mod", None) or {}).items():
        suffix = f"_{mod}"
        if key.endswith(suffix) and len(key) > len(suffix):
            base = key[: -len(suffix)]
            places += [(getattr(data, "uns", None), base), (getattr(adata, "uns", None), base)]
    for uns, name in places:
        try:
            level = float(uns[name]["uncertainty"]["level"])
        except (KeyError, TypeError, ValueError, IndexError):
            continue
        if 0 < level < 1:
            return level
    return None


def check_intervals(intervals: Any) -> None:
    """Raise unless ``intervals`` is ``True``, ``False`` or ``"auto"``."""
    if intervals is not True and intervals is not False and not (isinstance(intervals, str) and intervals == "auto"):
        raise ValueError(f"intervals={intervals!r}: pass True, False or 'auto'.")


def interval_frames(
    data: Any, key: str, estimate: pd.DataFrame, intervals: bool | str
) -> tuple[pd.DataFrame, pd.DataFrame, float | None] | None:
    """``(lower, upper, level)`` from ``.obsm[f"{key}_lower"]`` / ``.obsm[f"{key}_upper"]``, or ``None``.

    ``intervals="auto"`` gives ``None`` when neither bound is stored, ``False`` always ``None``; ``True`` raises
    when the bounds are missing. Both modes raise when only one bound is stored or the bounds do not match
    ``estimate`` (same samples and labels, any order; returned in ``estimate``'s order) or lower > upper.
    """
    check_intervals(intervals)
    if intervals is False:
        return None
    lower_key, upper_key = f"{key}_lower", f"{key}_upper"
    obsm = getattr(data, "obsm", None)
    if obsm is None:
        if intervals is True:
            raise ValueError(
                "intervals=True, but a DataFrame of fractions carries no intervals: pass the AnnData (or MuData) "
                f"with .obsm[{key!r}], .obsm[{lower_key!r}] and .obsm[{upper_key!r}]."
            )
        return None
    present = [k for k in (lower_key, upper_key) if k in obsm]
    if not present:
        if intervals is True:
            raise KeyError(
                f"intervals=True, but there are no intervals for the fractions at .obsm[{key!r}]: "
                f".obsm[{lower_key!r}] and .obsm[{upper_key!r}] are missing. {_DECONVOLVE_HINT}, "
                "or pass intervals=False."
            )
        return None
    if len(present) == 1:
        (absent,) = {lower_key, upper_key} - set(present)
        raise KeyError(
            f"Found .obsm[{present[0]!r}] but not .obsm[{absent!r}]; the intervals need both bounds. "
            f"{_DECONVOLVE_HINT}, or pass intervals=False."
        )
    lower = _interval_frame(obsm[lower_key], lower_key, estimate, key)
    upper = _interval_frame(obsm[upper_key], upper_key, estimate, key)
    swapped = (lower.to_numpy() > upper.to_numpy() + 1e-9).sum()  # NaN compares False
    if swapped:
        raise ValueError(
            f".obsm[{lower_key!r}] is above .obsm[{upper_key!r}] for {swapped} sample x label pairs; "
            "the lower bounds must not exceed the upper ones."
        )
    return lower, upper, interval_level(data, key)


def level_text(level: float | None) -> str:
    """``"90 % intervals"`` for ``level=0.9`` (``0.975`` -> ``"97.5 % intervals"``), ``"intervals"`` if unknown."""
    return "intervals" if level is None else f"{100 * level:.3g} % intervals"
