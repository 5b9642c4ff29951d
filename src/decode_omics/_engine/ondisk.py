"""Matrices that stay on disk: backed AnnData (h5ad opened with ``backed="r"``) and dask arrays.

Everything in decode-omics that reads a whole reference or bulk matrix goes through these three functions, so an
on-disk matrix is read in row blocks (statistics, inference) or as a sorted set of rows (pseudo-tissue cell pools),
never loaded whole.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy import sparse


def is_on_disk(X) -> bool:
    """Whether ``X`` is a backed (h5ad / zarr) or dask matrix rather than an in-memory one."""
    if X is None or isinstance(X, np.ndarray) or sparse.issparse(X):
        return False
    try:
        from anndata.abc import CSCDataset, CSRDataset

        if isinstance(X, CSRDataset | CSCDataset):
            return True
    except ImportError:  # pragma: no cover - anndata < 0.11
        pass
    module = type(X).__module__
    return module.startswith(("h5py", "zarr", "dask"))


def _in_memory(block):
    """A block read from disk as a NumPy array or a CSR matrix."""
    if hasattr(block, "compute"):
        block = block.compute()
    if sparse.issparse(block):
        return sparse.csr_matrix(block)
    return np.asarray(block)


def read_rows(X, rows: np.ndarray):
    """Rows ``rows`` of ``X`` (any order; read in sorted order, returned in the order given)."""
    rows = np.asarray(rows, dtype=np.int64)
    if not is_on_disk(X):
        return X[rows]
    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    unique, inverse = np.unique(sorted_rows, return_inverse=True)
    block = _in_memory(X[unique])
    back = np.empty_like(order)
    back[order] = np.arange(rows.size)
    return block[inverse[back]]


def row_blocks(X, block_rows: int = 10_000) -> Iterator[tuple[int, object]]:
    """``(start, block)`` over consecutive row blocks of ``X``, each block in memory (NumPy or CSR)."""
    n = X.shape[0]
    for start in range(0, n, block_rows):
        yield start, _in_memory(X[start : min(start + block_rows, n)])
