"""The embedded demo: scanpy's bundled ``pbmc68k_reduced`` split into a reference half and a pseudo-bulk half."""

from __future__ import annotations

import numpy as np
from anndata import AnnData

from ..pp import simulate_pseudobulk


def pbmc68k_reference_and_bulk(
    *,
    labels_key: str = "bulk_labels",
    min_cells: int = 30,
    n_samples: int = 60,
    cells_per_sample: int = 40,
    random_state: int = 0,
) -> tuple[AnnData, AnnData]:
    """A reference and a pseudo-bulk cohort of known composition from disjoint halves of ``pbmc68k_reduced``.

    The 700 cells of scanpy's bundled ``pbmc68k_reduced`` (no download) are brought to the linear scale
    (``expm1`` of the log1p-normalised ``.raw.X``), labels with fewer than ``min_cells`` cells are dropped, and the
    cells are split in two halves (``default_rng(random_state).random(n) < 0.5``). The first half is the reference;
    the second is mixed into ``n_samples`` pseudo-bulk samples of ``cells_per_sample`` cells with Dirichlet(1)
    fractions. No cell is in both.

    Parameters
    ----------
    labels_key
        Label column (``"bulk_labels"``: 10 FACS-based populations, of which 7 have at least the default
        ``min_cells=30`` cells and are kept; ``"louvain"``: clusters).
    min_cells
        Labels with fewer cells are dropped.
    n_samples, cells_per_sample
        Size of the pseudo-bulk cohort.
    random_state
        Seed of the split and the mixing.

    Returns
    -------
    ``(reference, bulk)``. ``reference.obs[labels_key]`` holds the labels; ``bulk.obsm["fractions"]`` the true
    fractions (samples x labels).
    """
    import scanpy as sc

    full = sc.datasets.pbmc68k_reduced()
    X = full.raw.X
    X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
    adata = AnnData(np.expm1(X).astype(np.float32), obs=full.obs[[labels_key]].copy())
    adata.var_names = full.raw.var_names.copy()
    counts = adata.obs[labels_key].value_counts()
    keep = counts.index[counts >= min_cells]
    adata = adata[adata.obs[labels_key].isin(keep)].copy()
    adata.obs[labels_key] = adata.obs[labels_key].astype(str).astype("category")
    in_reference = np.random.default_rng(random_state).random(adata.n_obs) < 0.5
    reference = adata[in_reference].copy()
    query = adata[~in_reference].copy()
    bulk = simulate_pseudobulk(
        query,
        labels_key,
        n_samples=n_samples,
        cells_per_sample=cells_per_sample,
        fractions="dirichlet",
        random_state=random_state,
    )
    bulk.obs_names = [f"sample_{i}" for i in range(bulk.n_obs)]
    bulk.obsm["fractions"].index = bulk.obs_names
    return reference, bulk
