"""Compiled gather-add kernels: sum the drawn cells' rows into dense mixtures.

Single-threaded on purpose: numba's OpenMP workers busy-wait between parallel regions and starve torch's threads during
training; the kernel is memory-bound, so threads gain little.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def gather_sum_csr(indptr, indices, data, n_features, draw_ptr, cells):  # pragma: no cover - compiled
    """``out[i] = sum of X[cells[draw_ptr[i]:draw_ptr[i + 1]]]`` for a CSR matrix X (float64 accumulation)."""
    n_samples = draw_ptr.size - 1
    out = np.empty((n_samples, n_features), dtype=np.float32)
    for i in range(n_samples):
        acc = np.zeros(n_features, dtype=np.float64)
        for d in range(draw_ptr[i], draw_ptr[i + 1]):
            c = cells[d]
            for p in range(indptr[c], indptr[c + 1]):
                acc[indices[p]] += data[p]
        for j in range(n_features):
            out[i, j] = acc[j]
    return out


@numba.njit(cache=True)
def gather_sum_dense(X, draw_ptr, cells):  # pragma: no cover - compiled
    """``out[i] = sum of X[cells[draw_ptr[i]:draw_ptr[i + 1]]]`` for a dense matrix X (float64 accumulation)."""
    n_samples = draw_ptr.size - 1
    n_features = X.shape[1]
    out = np.empty((n_samples, n_features), dtype=np.float32)
    for i in range(n_samples):
        acc = np.zeros(n_features, dtype=np.float64)
        for d in range(draw_ptr[i], draw_ptr[i + 1]):
            c = cells[d]
            for j in range(n_features):
                acc[j] += X[c, j]
        for j in range(n_features):
            out[i, j] = acc[j]
    return out
