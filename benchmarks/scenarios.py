"""Benchmark scenarios: a reference, bulk samples and their true fractions, built from the data in ../shared/data.

Every scenario returns one or more :class:`Task` objects. Reference and targets never share cells, donors, replicates
or platforms, as each scenario's docstring states.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData

import decode_omics as dco


@dataclass
class Task:
    """One deconvolution problem."""

    scenario: str
    name: str
    reference: AnnData
    labels_key: str
    bulk: AnnData
    truth: pd.DataFrame
    mode: str = "relative"
    note: str = ""


def _halves(adata: AnnData, labels_key: str, seed: int = 0) -> tuple[AnnData, AnnData]:
    """Split cells 50/50 within every label (seeded)."""
    rng = np.random.default_rng(seed)
    in_ref = np.zeros(adata.n_obs, dtype=bool)
    for label in adata.obs[labels_key].unique():
        idx = np.flatnonzero(adata.obs[labels_key].to_numpy() == label)
        rng.shuffle(idx)
        in_ref[idx[: len(idx) // 2]] = True
    return adata[in_ref].copy(), adata[~in_ref].copy()


def pbmc68k() -> list[Task]:
    """P1: scanpy's bundled pbmc68k_reduced, cells split 50/50; 60 mixtures of 40 cells from the other half."""
    ref, bulk = dco.datasets.pbmc68k_reference_and_bulk()
    return [Task("pbmc68k", "pbmc68k halves", ref, "bulk_labels", bulk, bulk.obsm["fractions"])]


PBMC_LABELS = ["B", "CD4T", "CD8T", "NK", "Mono"]


def pbmc_real() -> list[Task]:
    """Scenario 1: real PBMC bulk RNA-seq vs flow cytometry, 10x sorted-PBMC reference, five broad labels.

    Label mapping (reference -> broad): nk -> NK, bcells -> B, monocytes -> Mono, thelper / memoryt / naivet /
    regulatoryt -> CD4T, cytotoxict / naivecytotoxic -> CD8T. Truth: flow fractions of the five labels renormalised
    to sum to 1 (the flow 'Unknown' class is dropped).
    """
    ref = dco.datasets.pbmc_sorted_10x()
    tasks = []
    for cohort in ("GSE107011", "GSE107572"):
        bulk = dco.datasets.pbmc_bulk(cohort)
        truth = bulk.obsm["fractions"][PBMC_LABELS]
        truth = truth.div(truth.sum(axis=1), axis=0)
        tasks.append(Task("pbmc_real", cohort, ref, "broad_type", bulk, truth))
    return tasks


def bone_marrow() -> list[Task]:
    """Scenario 4a: DECODE's own bone-marrow metabolomics protocol, exactly as its MANIFEST states.

    Five types (Erythroid, T, B, GMP, Myeloid), cells split 50/50 per type with
    ``train_test_split(test_size=0.5, random_state=42)``; 1,000 test mixtures of round(30 * f_k) cells per type drawn
    with replacement from the test half, f_k ~ U(0, 1) normalised, negatives and NaN set to 0, truth = realised
    cell fractions.
    """
    from sklearn.model_selection import train_test_split

    adata = dco.datasets.bone_marrow_metabolomics()
    types = list(dco.datasets.BONE_MARROW_PROTOCOL_TYPES)
    adata = adata[adata.obs["cell_type"].isin(types)].copy()
    adata.obs["cell_type"] = adata.obs["cell_type"].astype(str).astype("category")
    train_idx, test_idx = [], []
    for t in types:
        cells = np.flatnonzero(adata.obs["cell_type"].to_numpy() == t)
        a, b = train_test_split(cells, test_size=0.5, random_state=42)
        train_idx += list(a)
        test_idx += list(b)
    ref = adata[np.sort(train_idx)].copy()
    test = adata[np.sort(test_idx)].copy()
    test.X = np.clip(np.nan_to_num(np.asarray(test.X)), 0, None)
    bulk = dco.pp.simulate_pseudobulk(
        test, "cell_type", n_samples=1000, cells_per_sample=30, fractions="uniform", scale="linear", random_state=42
    )
    return [Task("bone_marrow", "bone-marrow protocol", ref, "cell_type", bulk, bulk.obsm["fractions"])]


def tscp_states() -> list[Task]:
    """Scenario 5: T-SCP cell-cycle stages, cells split in two halves; 200 mixtures of 50 cells from one half
    (summed on the linear scale, expm1 of the stored log1p intensities)."""
    adata = dco.datasets.tscp_cellcycle()
    ref, query = _halves(adata, "stage")
    bulk = dco.pp.simulate_pseudobulk(
        query, "stage", n_samples=200, cells_per_sample=50, fractions="dirichlet", scale="log1p", random_state=0
    )
    return [Task("tscp_states", "T-SCP stages", ref, "stage", bulk, bulk.obsm["fractions"])]


def kidney() -> list[Task]:
    """Scenario 4b: kidney cell-line metabolomics, linear peak areas; one biological replicate held out per fold
    (3 folds): reference = the other replicates' samples, 200 mixtures of 15 samples from the held-out replicate."""
    adata = dco.datasets.kidney_metabolomics(include_qc=False)
    tasks = []
    for rep in sorted(adata.obs["biological_replicate"].dropna().unique()):
        held = (adata.obs["biological_replicate"] == rep).to_numpy()
        ref, query = adata[~held].copy(), adata[held].copy()
        bulk = dco.pp.simulate_pseudobulk(
            query,
            "cell_line",
            n_samples=200,
            cells_per_sample=15,
            fractions="dirichlet",
            scale="linear",
            random_state=int(rep),
        )
        tasks.append(Task("kidney", f"replicate {int(rep)} held out", ref, "cell_line", bulk, bulk.obsm["fractions"]))
    return tasks


SCENARIOS: dict[str, Callable[[], list[Task]]] = {
    "pbmc68k": pbmc68k,
    "pbmc_real": pbmc_real,
    "bone_marrow": bone_marrow,
    "kidney": kidney,
    "tscp_states": tscp_states,
}
