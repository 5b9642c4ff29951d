"""Can a bulk sample show the material its reference lacks? (issue 20: the ``unknown`` share's target)

A diagnosis, no training, on the missing-material tasks whose bulk comes from the reference's own platform (the
robustness suite's bone-marrow, kidney and T-SCP leave-out tasks and the ``unknown`` scenario's bone marrow + HSC),
where issue 20 asks for an ``unknown`` RMSE of at most 0.10. Everything is on the linear scale, each profile and each
sample as its composition (divided by its total). The truth is used to diagnose, never to fit anything in the package.

1. **Is the missing profile new?** The left-out cells' mean profile against its best non-negative mix of the known
   labels' mean profiles (NNLS): the relative residual ``|m - M c| / |m|``; and against their best mix of any sign
   (least squares, the span). Beside it, the same for each known label against the other known labels: how far apart
   the reference's own labels are. Also for the proteomics leave-out tasks, whose values are read as stored (no
   linear scale, no composition, no ``unknown`` share): there only this question, in the stored units.
2. **Does a sample's misfit track the missing share?** Each bulk sample against its best non-negative mix of the known
   labels, read three ways: the relative residual; the residual weighted as counts are (each feature's squared
   residual over its fitted value, so rare features count); and the 5 % quantile, over the half of the features the
   labels express most, of the sample's composition over the fit's (a share ``a`` of known material bounds it from
   below by ``a``: what DECODE's unknown head reads). For each: Pearson r with the truth's ``unknown`` share, and the
   RMSE of the best straight line from it to the share, fitted on the truth: an oracle, which no estimator reading
   that misfit alone can beat.
3. **With the missing profile given**, NNLS of each sample on the known labels' mean profiles *and* the left-out
   cells' mean profile (per cell, so the coefficients count cells): the RMSE of its share. Not a floor: NNLS is a
   weak reader of these few-cell mixtures (see the benchmark page), but it shows how much the cells drawn blur even
   a known profile.

Beside these, reporting no unknown material at all (RMSE = root mean square of the truth's share) and reporting every
sample at the cohort's true mean share (RMSE = the truth's sd).

Run: ``python -m benchmarks.identifiability`` (a minute; writes ``benchmarks/results/identifiability.csv``).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import nnls

from decode_omics._engine.scale import to_linear

from ._tables import write_table

RESULTS = Path(__file__).parent / "results" / "identifiability.csv"
#: Robustness-suite layers whose bulk is mixed from cells of the reference's own platform.
SAME_PLATFORM = ("bone_marrow", "kidney", "tscp_states")
#: Layers of values read as stored (no linear scale): the missing profile's geometry only.
AS_STORED = ("proteomics",)


def _linear(adata, scale: str) -> np.ndarray:
    X, _ = to_linear(adata.X, scale=scale)
    return np.asarray(X.toarray() if sparse.issparse(X) else X, dtype=np.float64)


def _composition(X: np.ndarray) -> np.ndarray:
    return X / np.maximum(X.sum(axis=1, keepdims=True), 1e-300)


def _relative_residual(target: np.ndarray, profiles: np.ndarray) -> float:
    """``|t - P c| / |t|`` at the NNLS ``c`` (``profiles``: one per row)."""
    coef, _ = nnls(profiles.T, target)
    return float(np.linalg.norm(target - coef @ profiles) / np.linalg.norm(target))


def misfit(sample: np.ndarray, profiles: np.ndarray, expressed: np.ndarray) -> dict[str, float]:
    """Question 2's three readings of how badly the best non-negative mix of ``profiles`` fits ``sample``
    (compositions)."""
    coef, _ = nnls(profiles.T, sample)
    fit = coef @ profiles
    ratio = sample[expressed] / np.maximum(fit[expressed] * sample[expressed].sum() / fit[expressed].sum(), 1e-300)
    return {
        "residual": float(np.linalg.norm(sample - fit) / np.linalg.norm(sample)),
        "weighted": float(np.sqrt(np.mean((sample - fit) ** 2 / np.maximum(fit, 1e-12)))),
        "ratio_q05": float(np.quantile(ratio, 0.05)),
    }


def _line_rmse(x: np.ndarray, y: np.ndarray) -> float:
    """RMSE of the least-squares line from ``x`` to ``y``, clipped to [0, 1] (fitted on ``y``: an oracle)."""
    slope, intercept = np.polyfit(x, y, 1)
    return float(np.sqrt(np.mean((np.clip(slope * x + intercept, 0, 1) - y) ** 2)))


def diagnose_task(name, reference, labels_key, missing_cells, bulk, truth, scale="auto") -> dict:
    """One row: the three questions of the module docstring for one task. ``missing_cells``: the left-out cells
    (an AnnData on the reference's features); ``truth``: every known label and ``unknown``, per sample."""
    features = reference.var_names.intersection(bulk.var_names).intersection(missing_cells.var_names)
    X = _linear(reference[:, features], scale)
    labels = reference.obs[labels_key].astype(str).to_numpy()
    known = sorted(set(labels))
    per_cell = np.stack([X[labels == k].mean(axis=0) for k in known])  # content kept: coefficients count cells
    missing = _linear(missing_cells[:, features], scale).mean(axis=0)
    if scale == "as_is":  # no linear scale, no composition, no unknown share: the profiles' geometry only
        comp_known, comp_missing = per_cell, missing
    else:
        comp_known, comp_missing = _composition(per_cell), _composition(missing[None])[0]
    own = [_relative_residual(comp_known[k], np.delete(comp_known, k, axis=0)) for k in range(len(known))]
    coef, *_ = np.linalg.lstsq(comp_known.T, comp_missing, rcond=None)
    profile = {
        "task": name,
        "n_samples": bulk.n_obs,
        "n_features": len(features),
        "missing_profile_residual": _relative_residual(comp_missing, comp_known),
        "missing_profile_span_residual": float(
            np.linalg.norm(comp_missing - coef @ comp_known) / np.linalg.norm(comp_missing)
        ),
        "known_label_residual_min": float(min(own)),
        "known_label_residual_median": float(np.median(own)),
    }
    if scale == "as_is":
        return profile
    B = _composition(_linear(bulk[:, features], scale))
    expressed = comp_known.mean(axis=0) >= np.median(comp_known.mean(axis=0))
    readings = pd.DataFrame([misfit(b, comp_known, expressed) for b in B])
    u = truth["unknown"].to_numpy(dtype=np.float64)
    with_missing = np.vstack([per_cell, missing[None]])
    shares = np.array([(c := nnls(with_missing.T, b)[0])[-1] / max(c.sum(), 1e-300) for b in B])
    return profile | {
        "unknown_mean": float(u.mean()),
        **{f"{k}_r": float(np.corrcoef(v, u)[0, 1]) for k, v in readings.items()},
        **{f"{k}_oracle_rmse": _line_rmse(v.to_numpy(), u) for k, v in readings.items()},
        "rmse_reporting_zero": float(np.sqrt(np.mean(u**2))),
        "unknown_sd": float(u.std()),
        "rmse_missing_profile_given": float(np.sqrt(np.mean((shares - u) ** 2))),
    }


def tasks() -> list[tuple]:
    """(name, reference, labels_key, missing cells, bulk, truth, scale) for every task diagnosed."""
    from . import robustness
    from .scenarios import _bone_marrow_split, bone_marrow_hsc

    out = []
    for key in SAME_PLATFORM + AS_STORED:
        for layer in robustness.LAYERS[key]():
            base = layer.base
            for task in robustness.layer_tasks(layer):
                if "left out" not in task.name or (key in AS_STORED and "mean" not in task.name):
                    continue
                left = [c for c in base.truth.columns if c not in task.truth.columns]
                cells = base.reference[base.reference.obs[base.labels_key].astype(str).isin(left).to_numpy()]
                out.append((task.name, task.reference, task.labels_key, cells, task.bulk, task.truth, base.scale))
    hsc_task = bone_marrow_hsc()
    _, _, hsc = _bone_marrow_split()
    out.append((hsc_task.name, hsc_task.reference, hsc_task.labels_key, hsc, hsc_task.bulk, hsc_task.truth, "auto"))
    return out


def diagnose() -> pd.DataFrame:
    """One row per task of :func:`tasks` (scales as the package guesses them, without its warnings)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The data's scale was guessed")
        return pd.DataFrame([diagnose_task(*t) for t in tasks()])


def main() -> None:
    write_table(diagnose(), RESULTS)


if __name__ == "__main__":
    main()
