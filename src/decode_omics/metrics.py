"""Accuracy of estimated fractions: Lin's CCC, RMSE and Pearson r, pooled and per label."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["ccc", "pearson", "rmse", "score"]


def _aligned(estimate: pd.DataFrame, truth: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    if not isinstance(estimate, pd.DataFrame) or not isinstance(truth, pd.DataFrame):
        raise TypeError("estimate and truth must be pandas DataFrames (samples x labels).")
    if not estimate.index.equals(truth.index):
        if set(estimate.index) != set(truth.index) or not estimate.index.is_unique:
            only_e = estimate.index.difference(truth.index)[:3].tolist()
            only_t = truth.index.difference(estimate.index)[:3].tolist()
            raise ValueError(
                f"estimate and truth have different samples (only in estimate: {only_e}, only in truth: {only_t}); "
                "subset both to the same samples."
            )
        truth = truth.loc[estimate.index]
    if set(estimate.columns) != set(truth.columns):
        raise ValueError(
            f"estimate and truth have different labels ({sorted(map(str, estimate.columns))} vs "
            f"{sorted(map(str, truth.columns))}); select the shared labels first."
        )
    cols = estimate.columns
    e = estimate[cols].to_numpy(dtype=np.float64)
    t = truth[cols].to_numpy(dtype=np.float64)
    if np.isnan(e).any() or np.isnan(t).any():
        raise ValueError("estimate or truth contains NaN; drop those samples first.")
    return e, t, cols


def _ccc(x: np.ndarray, y: np.ndarray) -> float:
    mx, my = x.mean(), y.mean()
    vx, vy = x.var(), y.var()
    cov = ((x - mx) * (y - my)).mean()
    denom = vx + vy + (mx - my) ** 2
    return float(2 * cov / denom) if denom > 0 else float("nan")


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def _rmse(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((x - y) ** 2)))


_METRICS = {"ccc": _ccc, "rmse": _rmse, "pearson": _pearson}


def _metric(name: str, estimate: pd.DataFrame, truth: pd.DataFrame, per_label: bool):
    e, t, cols = _aligned(estimate, truth)
    fn = _METRICS[name]
    if per_label:
        return pd.Series([fn(e[:, j], t[:, j]) for j in range(len(cols))], index=cols, name=name)
    return fn(e.ravel(), t.ravel())


def ccc(estimate: pd.DataFrame, truth: pd.DataFrame, *, per_label: bool = False) -> float | pd.Series:
    """Lin's concordance correlation coefficient (population variances).

    Parameters
    ----------
    estimate, truth
        Fractions, samples x labels, with the same index and columns (in any order).
    per_label
        Return one value per label instead of the value pooled over samples x labels.
    """
    return _metric("ccc", estimate, truth, per_label)


def rmse(estimate: pd.DataFrame, truth: pd.DataFrame, *, per_label: bool = False) -> float | pd.Series:
    """Root mean squared error, pooled over samples x labels or per label (see :func:`ccc`)."""
    return _metric("rmse", estimate, truth, per_label)


def pearson(estimate: pd.DataFrame, truth: pd.DataFrame, *, per_label: bool = False) -> float | pd.Series:
    """Pearson correlation, pooled over samples x labels or per label (see :func:`ccc`)."""
    return _metric("pearson", estimate, truth, per_label)


def score(estimate: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """CCC, RMSE and Pearson r pooled (row ``"pooled"``) and per label (one row each).

    Returns
    -------
    DataFrame with columns ``ccc``, ``rmse``, ``pearson``.
    """
    rows = {"pooled": {m: _metric(m, estimate, truth, False) for m in _METRICS}}
    per = pd.DataFrame({m: _metric(m, estimate, truth, True) for m in _METRICS})
    return pd.concat([pd.DataFrame(rows).T, per])
