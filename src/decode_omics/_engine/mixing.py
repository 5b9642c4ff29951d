"""Vectorised building blocks of pseudo-tissue simulation (shared by :func:`simulate_pseudobulk` and the model).

Everything here works on plain arrays and a :class:`numpy.random.Generator`: no AnnData, no Python loop per sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from .kernels import gather_sum_csr, gather_sum_dense

FRACTION_KINDS = ("uniform", "dirichlet", "sparse")


def draw_fractions(rng: np.random.Generator, n_samples: int, n_labels: int, kind: str = "uniform") -> np.ndarray:
    """Draw target fractions (``n_samples x n_labels``, rows sum to 1).

    ``uniform``: DECODE's scheme, ``u_k ~ U(0, 1)`` normalised (every label in every sample).
    ``dirichlet``: flat Dirichlet(1), uniform on the simplex.
    ``sparse``: each label present with probability 1/2 (at least one), Dirichlet(1) over those present.
    """
    if kind == "uniform":
        f = rng.random((n_samples, n_labels))
    elif kind == "dirichlet":
        f = rng.gamma(1.0, size=(n_samples, n_labels))
    elif kind == "sparse":
        f = rng.gamma(1.0, size=(n_samples, n_labels))
        present = rng.random((n_samples, n_labels)) < 0.5
        none = ~present.any(axis=1)
        present[none, rng.integers(0, n_labels, none.sum())] = True
        f = f * present
    else:
        raise ValueError(
            f"Unknown fractions {kind!r}; use one of {FRACTION_KINDS} or an array of shape (n_samples, n_labels)."
        )
    f = f + 1e-12 * (f.sum(axis=1, keepdims=True) == 0)
    return f / f.sum(axis=1, keepdims=True)


def round_counts(fractions: np.ndarray, totals: np.ndarray | int) -> np.ndarray:
    """Cells per label: ``fractions * totals`` rounded so each row sums exactly to its total (largest remainder)."""
    totals = np.broadcast_to(np.asarray(totals, dtype=np.int64), (fractions.shape[0],))
    exact = fractions * totals[:, None]
    counts = np.floor(exact).astype(np.int64)
    short = totals - counts.sum(axis=1)
    order = np.argsort(-(exact - counts), axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(fractions.shape[1])[None, :].repeat(len(counts), 0), axis=1)
    counts += ranks < short[:, None]
    return counts


@dataclass(frozen=True)
class LabelIndex:
    """Cells grouped by label: ``order[starts[k]:starts[k] + sizes[k]]`` are the rows of label ``k``."""

    order: np.ndarray
    starts: np.ndarray
    sizes: np.ndarray

    @classmethod
    def from_codes(cls, codes: np.ndarray, n_labels: int) -> LabelIndex:
        """Group cells by integer label codes (``-1`` = no label, left out)."""
        codes = np.asarray(codes)
        keep = np.flatnonzero(codes >= 0)
        order = keep[np.argsort(codes[keep], kind="stable")]
        sizes = np.bincount(codes[keep], minlength=n_labels).astype(np.int64)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        return cls(order, starts, sizes)

    def sample_cells(self, rng: np.random.Generator, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``counts[i, k]`` random cells of label ``k`` for every sample ``i`` (with replacement).

        Returns the sample index and the cell row of every draw.
        """
        n_samples, n_labels = counts.shape
        flat = counts.ravel()
        sample_of_draw = np.repeat(np.repeat(np.arange(n_samples), n_labels), flat)
        label_of_draw = np.repeat(np.tile(np.arange(n_labels), n_samples), flat)
        sizes = self.sizes[label_of_draw]
        if np.any(sizes == 0):
            raise ValueError("A label with no cells was asked for.")
        within = np.floor(rng.random(label_of_draw.size) * sizes).astype(np.int64)
        cells = self.order[self.starts[label_of_draw] + within]
        return sample_of_draw, cells


def mix(sample_of_draw: np.ndarray, cells: np.ndarray, n_samples: int, X) -> np.ndarray:
    """Sum the drawn cells' profiles into ``n_samples`` dense float32 mixtures (float64 accumulation, no overflow).

    ``sample_of_draw`` must be sorted (as :meth:`LabelIndex.sample_cells` returns it). A compiled gather-add over the
    CSR rows (or dense rows) of ``X``, one sample at a time: the same work as ``M @ X`` with a sparse mixing matrix
    ``M``, without building a sparse product.
    """
    draw_ptr = np.zeros(n_samples + 1, dtype=np.int64)
    np.cumsum(np.bincount(sample_of_draw, minlength=n_samples), out=draw_ptr[1:])
    cells = np.ascontiguousarray(cells, dtype=np.int64)
    if sparse.issparse(X):
        X = sparse.csr_matrix(X)
        return gather_sum_csr(
            X.indptr.astype(np.int64), X.indices.astype(np.int64), X.data, X.shape[1], draw_ptr, cells
        )
    return gather_sum_dense(np.ascontiguousarray(X), draw_ptr, cells)


def label_moments(X, index: LabelIndex) -> tuple[np.ndarray, np.ndarray]:
    """Per-label mean and variance of every feature (``n_labels x n_features`` each)."""
    n_labels = index.sizes.size
    n_cells = X.shape[0]
    codes = np.full(n_cells, -1)
    for k in range(n_labels):
        codes[index.order[index.starts[k] : index.starts[k] + index.sizes[k]]] = k
    keep = codes >= 0
    G = sparse.csr_matrix((np.ones(keep.sum()), (codes[keep], np.flatnonzero(keep))), shape=(n_labels, n_cells))
    sizes = np.maximum(index.sizes, 1)[:, None].astype(np.float64)
    if sparse.issparse(X):
        X64 = sparse.csr_matrix(X, dtype=np.float64)
        s1 = np.asarray((G @ X64).todense())
        s2 = np.asarray((G @ X64.multiply(X64)).todense())
    else:
        X64 = np.asarray(X, dtype=np.float64)
        s1 = G @ X64
        s2 = G @ (X64 * X64)
    mean = s1 / sizes
    var = np.maximum(s2 / sizes - mean**2, 0.0)
    return mean.astype(np.float32), var.astype(np.float32)


def parametric_mix(rng: np.random.Generator, counts: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Pseudo-tissues that cannot be memorised: ``sum_k n_k mu_k + sqrt(sum_k n_k var_k) * eps``, clipped at 0.

    The same mean and variance per feature as summing ``n_k`` random cells of each label (central limit), without
    any single reference cell in the result.
    """
    c = counts.astype(np.float64)
    mu = c @ mean.astype(np.float64)
    sd = np.sqrt(c @ var.astype(np.float64))
    x = mu + sd * rng.standard_normal(mu.shape)
    return np.clip(x, 0, None).astype(np.float32)


def artificial_cells(rng: np.random.Generator, X, index: LabelIndex, n: int, candidates: int = 8) -> np.ndarray:
    """DECODE's artificial noise cells: per feature, a Dirichlet(1) convex mix of random cells of every label.

    For each artificial cell and label, ``candidates`` random cells of that label are read; each feature then takes a
    random one of them (the research code reads a fresh random cell per feature, which needs the whole dense
    reference; with a handful of candidates the result has the same per-feature distribution and needs only
    ``n * n_labels * candidates`` rows).

    Returns
    -------
    ``n x n_features`` float32 array.
    """
    n_labels = index.sizes.size
    n_features = X.shape[1]
    out = np.zeros((n, n_features), dtype=np.float64)
    if n == 0:
        return out.astype(np.float32)
    weights = rng.gamma(1.0, size=(n, n_features, n_labels))
    weights /= weights.sum(axis=2, keepdims=True)
    counts = np.full((n, n_labels), candidates, dtype=np.int64)
    _, rows = index.sample_cells(rng, counts)
    R = X[rows]
    R = R.toarray() if sparse.issparse(R) else np.asarray(R)
    R = R.reshape(n, n_labels, candidates, n_features).astype(np.float64)
    pick = rng.integers(0, candidates, size=(n, n_labels, n_features))
    chosen = np.take_along_axis(R, pick[:, :, None, :], axis=2)[:, :, 0, :]  # n x K x F
    out = np.einsum("nkf,nfk->nf", chosen, weights)
    return out.astype(np.float32)
