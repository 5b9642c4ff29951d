"""Pseudo-tissues: bulk samples mixed in silico from single-cell profiles in known proportions."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from .._engine.adata import label_codes
from .._engine.mixing import FRACTION_KINDS, draw_fractions, round_counts
from .._engine.pseudotissues import METHODS, PseudoTissueGenerator
from .._engine.scale import get_matrix, to_linear

logger = logging.getLogger("decode_omics")


def _noise_counts(rng: np.random.Generator, noise_cells, n_samples: int) -> np.ndarray:
    if noise_cells is None or noise_cells is False:
        return np.zeros(n_samples, dtype=np.int64)
    if isinstance(noise_cells, (int, np.integer)):
        if noise_cells < 0:
            raise ValueError(f"noise_cells must be >= 0, got {noise_cells}.")
        lo, hi = (1, int(noise_cells)) if noise_cells > 0 else (0, 0)
    else:
        lo, hi = (int(v) for v in noise_cells)
        if not 0 <= lo <= hi:
            raise ValueError(f"noise_cells=(low, high) needs 0 <= low <= high, got {noise_cells}.")
    return rng.integers(lo, hi + 1, size=n_samples)


def _fractions(rng, fractions, n_samples: int, names: pd.Index) -> np.ndarray:
    if isinstance(fractions, str):
        return draw_fractions(rng, n_samples, len(names), fractions)
    if isinstance(fractions, pd.DataFrame):
        missing = set(names) - set(fractions.columns.astype(str))
        if missing:
            raise ValueError(f"fractions lacks columns for labels {sorted(missing)}.")
        fractions = fractions[list(names)].to_numpy()
    f = np.asarray(fractions, dtype=np.float64)
    if f.shape != (n_samples, len(names)):
        raise ValueError(
            f"fractions has shape {f.shape}; expected (n_samples, n_labels) = ({n_samples}, {len(names)})."
        )
    if np.any(~np.isfinite(f)) or np.any(f < 0) or np.any(f.sum(axis=1) <= 0):
        raise ValueError("fractions must be finite, non-negative, with a positive sum in every row.")
    return f / f.sum(axis=1, keepdims=True)


def simulate_pseudobulk(
    adata: AnnData,
    labels_key: str,
    *,
    n_samples: int = 1000,
    cells_per_sample: int = 30,
    layer: str | None = None,
    fractions: str | np.ndarray | pd.DataFrame = "uniform",
    method: str = "cells",
    noise_cells: int | tuple[int, int] | None = None,
    unknown: AnnData | Sequence[str] | None = None,
    unknown_fraction: float | tuple[float, float] = (0.0, 0.3),
    unknown_column: bool = False,
    min_cells: int = 1,
    scale: str = "auto",
    random_state: int = 0,
) -> AnnData:
    """Mix single-cell profiles into pseudo-bulk samples of known composition.

    Fractions are drawn per sample, cells are drawn per label with replacement, and their profiles are summed on a
    linear scale as one sparse mixing matrix times the cell matrix.

    Parameters
    ----------
    adata
        Single-cell reference (cells x features): counts, TPM, protein or metabolite intensities, dense or sparse.
        Log-scaled data are brought to linear first (see :func:`~decode_omics.pp.to_linear`). Not modified.
    labels_key
        Categorical ``adata.obs`` column with cell types or cell states.
    n_samples
        Number of pseudo-bulk samples.
    cells_per_sample
        Cells per sample (known plus unknown cells; artificial noise cells come on top).
    layer
        Layer holding the data instead of ``.X``.
    fractions
        ``"uniform"`` (DECODE: ``U(0, 1)`` per label, normalised), ``"dirichlet"`` (flat on the simplex),
        ``"sparse"`` (a random subset of labels per sample), or an array / DataFrame (samples x labels).
    method
        ``"cells"`` sums real cells; ``"parametric"`` draws each label's contribution from a normal distribution with
        the label's per-feature mean and variance (the same first two moments, no single cell to memorise).
    noise_cells
        DECODE's artificial noise cells (per-feature convex mixes of random cells of different labels) added on top of
        each sample: ``m`` for 1 to ``m`` per sample (DECODE uses ``floor(0.1 * cells_per_sample)``), ``(low, high)``
        for a range, ``None`` for none.
    unknown
        Material of types absent from the labels: an AnnData of such cells (same features), or label names of
        ``adata`` whose cells are set aside as unknown (they get no column of their own).
    unknown_fraction
        Share of the ``cells_per_sample`` cells that are unknown cells: a number or a ``(low, high)`` range drawn
        uniformly per sample.
    unknown_column
        If ``True``, fractions are over all material and an ``unknown`` column holds the share of unknown and noise
        cells (absolute fractions); if ``False``, fractions are over the known cells only (relative fractions).
    min_cells
        Fewest cells a label must have.
    scale
        Scale of the data (``"auto"`` to detect; see :func:`~decode_omics.pp.detect_scale`).
    random_state
        Seed; the same seed gives the same samples.

    Returns
    -------
    AnnData of ``n_samples`` x the reference's features (dense float32, linear scale) with

    - ``.obsm["fractions"]``: true fractions, a DataFrame with one column per label (plus ``unknown`` if asked);
    - ``.obs``: ``n_cells`` (known cells), ``n_unknown_cells``, ``n_noise_cells``, ``unknown_fraction`` (share of
      unknown and noise cells in all cells);
    - ``.uns["simulate_pseudobulk"]``: the parameters and the scale report.
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}.")
    if cells_per_sample < 1:
        raise ValueError(f"cells_per_sample must be >= 1, got {cells_per_sample}.")
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; use 'cells' or 'parametric'.")
    if isinstance(fractions, str) and fractions not in FRACTION_KINDS:
        raise ValueError(f"Unknown fractions {fractions!r}; use one of {FRACTION_KINDS} or an array.")
    rng = np.random.default_rng(random_state)

    X, report = to_linear(get_matrix(adata, layer), scale=scale, name="reference")
    codes, names = label_codes(adata, labels_key, min_cells=min_cells)

    # Unknown material: cells of labels set aside, or a separate AnnData.
    unknown_X = None
    unknown_labels: list[str] = []
    if unknown is not None:
        if isinstance(unknown, AnnData):
            missing = adata.var_names.difference(unknown.var_names)
            if len(missing):
                raise ValueError(
                    f"The unknown cells lack {len(missing)} of the reference's features "
                    f"(e.g. {list(missing[:3])}); give them the same features."
                )
            unknown_X, _ = to_linear(get_matrix(unknown[:, adata.var_names]), scale=scale, name="unknown cells")
        else:
            unknown_labels = [str(u) for u in ([unknown] if isinstance(unknown, str) else unknown)]
            absent = [u for u in unknown_labels if u not in names]
            if absent:
                raise ValueError(f"Unknown label(s) {absent} are not in adata.obs[{labels_key!r}] ({list(names)}).")
            is_unknown = np.isin(names[codes], unknown_labels)
            unknown_X = X[np.flatnonzero(is_unknown)]
            keep_names = names[~names.isin(unknown_labels)]
            remap = np.array([keep_names.get_loc(n) if n in keep_names else -1 for n in names])
            codes = remap[codes]
            names = keep_names
            if len(names) < 2:
                raise ValueError("Fewer than 2 known labels remain after setting unknown labels aside.")

    generator = PseudoTissueGenerator(X, codes, len(names))
    f = _fractions(rng, fractions, n_samples, names)

    lo, hi = (unknown_fraction, unknown_fraction) if np.isscalar(unknown_fraction) else unknown_fraction
    if not 0 <= lo <= hi < 1:
        raise ValueError(f"unknown_fraction must lie in [0, 1), got {unknown_fraction}.")
    n_unknown = np.zeros(n_samples, dtype=np.int64)
    if unknown_X is not None:
        share = rng.uniform(lo, hi, n_samples)
        n_unknown = np.minimum(np.rint(share * cells_per_sample).astype(np.int64), cells_per_sample - 1)
    n_known = cells_per_sample - n_unknown
    counts = round_counts(f, n_known)
    Y = generator.known(rng, counts, method)
    if unknown_X is not None and n_unknown.any():
        Y += generator.add_rows(rng, n_unknown, unknown_X)
    n_noise = _noise_counts(rng, noise_cells, n_samples)
    if n_noise.any():
        pool = generator.noise_cells(rng, int(min(max(30, n_noise.max()), n_noise.sum(), 256)))
        Y += generator.add_rows(rng, n_noise, pool)

    total = n_known + n_unknown + n_noise
    obs_names = pd.Index([f"pseudobulk_{i}" for i in range(n_samples)])
    if unknown_column:
        frac = pd.DataFrame(counts / total[:, None], index=obs_names, columns=names)
        frac["unknown"] = (n_unknown + n_noise) / total
    else:
        frac = pd.DataFrame(counts / n_known[:, None], index=obs_names, columns=names)
    obs = pd.DataFrame(
        {
            "n_cells": n_known,
            "n_unknown_cells": n_unknown,
            "n_noise_cells": n_noise,
            "unknown_fraction": (n_unknown + n_noise) / total,
        },
        index=obs_names,
    )
    out = AnnData(Y, obs=obs, var=pd.DataFrame(index=adata.var_names.copy()))
    out.obsm["fractions"] = frac
    out.uns["simulate_pseudobulk"] = {
        "labels_key": labels_key,
        "labels": list(map(str, names)),
        "n_samples": n_samples,
        "cells_per_sample": cells_per_sample,
        "fractions": fractions if isinstance(fractions, str) else "given",
        "method": method,
        "noise_cells": "none" if noise_cells is None else str(noise_cells),
        "unknown": "none" if unknown is None else ("cells" if isinstance(unknown, AnnData) else unknown_labels),
        "unknown_fraction": [float(lo), float(hi)],
        "unknown_column": unknown_column,
        "random_state": random_state,
        "scale": report.to_dict(),
    }
    logger.info("Simulated %d pseudo-bulk samples of %d cells from %d labels.", n_samples, cells_per_sample, len(names))
    return out
