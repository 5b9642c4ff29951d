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
    scale: str = "auto"  # of reference and bulk (see dco.pp.to_linear)


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
    ref, test, _ = _bone_marrow_split()
    bulk = dco.pp.simulate_pseudobulk(
        test, "cell_type", n_samples=1000, cells_per_sample=30, fractions="uniform", scale="linear", random_state=42
    )
    return [Task("bone_marrow", "bone-marrow protocol", ref, "cell_type", bulk, bulk.obsm["fractions"])]


def proteomics() -> list[Task]:
    """Scenario 3: single-cell proteomics across platforms, scpDeconv's own protocol: N2 reference -> 200 nanoPOTS
    mixtures of 15 cells, and nanoPOTS reference -> 200 N2 mixtures. Fractions U(0, 1) per label normalised,
    round(f * 15) cells with replacement, summed in the files' own values (NaN -> 0), shared proteins only; truth =
    realised composition. N2 holds log-ratios and nanoPOTS z-scores: neither has a linear scale, so these mixtures
    are sums of stored values, not physical mixtures, and both sides are read with ``scale="as_is"``."""
    tasks = []
    for ref, query, name in _proteomics_directions():
        bulk = dco.pp.simulate_pseudobulk(
            query, "cell_type", n_samples=200, cells_per_sample=15, fractions="uniform", scale="as_is", random_state=0
        )
        tasks.append(Task("proteomics", name, ref, "cell_type", bulk, bulk.obsm["fractions"], scale="as_is"))
    return tasks


def _proteomics_directions() -> list[tuple[AnnData, AnnData, str]]:
    """(reference cells, query cells, name) of both proteomics directions, over the proteins both platforms share."""
    n2 = dco.datasets.murine_cellline_proteomics("N2")
    nano = dco.datasets.murine_cellline_proteomics("nanoPOTS")
    shared = n2.var_names.intersection(nano.var_names)
    n2, nano = n2[:, shared].copy(), nano[:, shared].copy()
    return [(n2, nano, "N2 -> nanoPOTS"), (nano, n2, "nanoPOTS -> N2")]


def tscp_states() -> list[Task]:
    """Scenario 5: T-SCP cell-cycle stages, cells split in two halves; 200 mixtures of 50 cells from one half
    (summed on the linear scale, expm1 of the stored log1p intensities)."""
    adata = dco.datasets.tscp_cellcycle()
    ref, query = _halves(adata, "stage")
    bulk = dco.pp.simulate_pseudobulk(
        query, "stage", n_samples=200, cells_per_sample=50, fractions="dirichlet", scale="log1p", random_state=0
    )
    return [Task("tscp_states", "T-SCP stages", ref, "stage", bulk, bulk.obsm["fractions"])]


def tscp_narrow() -> list[Task]:
    """Scenario 5b: scenario 5 with tissue-like compositions, to test alignment under label shift: the 200 mixtures'
    fractions vary around one mean (Dirichlet(30 m), m ~ Dirichlet(3, ..., 3), seed 0; per-label sd about 0.07, a
    third of the pseudo-tissues'), as compositions of real tissue do."""
    adata = dco.datasets.tscp_cellcycle()
    ref, query = _halves(adata, "stage")
    labels = sorted(query.obs["stage"].unique())
    rng = np.random.default_rng(0)
    mean = rng.dirichlet(np.full(len(labels), 3.0))
    fractions = pd.DataFrame(rng.dirichlet(30 * mean, 200), columns=labels, index=[f"mixture_{i}" for i in range(200)])
    bulk = dco.pp.simulate_pseudobulk(
        query, "stage", n_samples=200, cells_per_sample=50, fractions=fractions, scale="log1p", random_state=0
    )
    return [Task("tscp_narrow", "T-SCP stages, narrow compositions", ref, "stage", bulk, bulk.obsm["fractions"])]


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


def cellbench() -> list[Task]:
    """Scenario 2: CellBench pure-RNA mixtures (CEL-seq2 and SORT-seq wells) against the Drop-seq single cells of the
    three lung lines (singlets only, ERCC spike-ins dropped). Truth: the RNAmix design with the H2228 and HCC827
    columns exchanged, as the data folder's MANIFEST establishes (``dco.datasets.cellbench_mixtures`` applies it)."""
    ref = dco.datasets.cellbench_reference("dropseq", singlets_only=True, drop_ercc=True)
    tasks = []
    for mixture in ("RNAmix_celseq2", "RNAmix_sortseq"):
        bulk = dco.datasets.cellbench_mixtures(mixture, drop_ercc=True)
        tasks.append(Task("cellbench", mixture, ref, "cell_line", bulk, bulk.obsm["fractions"]))
    return tasks


def cellmix() -> list[Task]:
    """Scenario 8: CellBench *cell* mixtures, which no default of DECODE was chosen on (scored once, defaults frozen).

    Wells of 9 sorted cells (a few of 3) of the three lung lines in varying numbers (plates ``cellmix1``-``cellmix4``,
    CEL-seq2, 266-288 wells each) and wells of 90 cells (``cellmix5``, 21 wells), against the Drop-seq single cells
    of scenario 2 (singlets only, ERCC spike-ins dropped). One task per plate. Wells the published QC flags
    (``poor_quality``) are left out. Truth: each well's cells per line / cells in the well, as published (the
    loader checked these columns against the references; unlike RNAmix they are not exchanged).
    """
    ref = dco.datasets.cellbench_reference("dropseq", singlets_only=True, drop_ercc=True)
    tasks = []
    for mixture in ("cellmix1", "cellmix2", "cellmix3", "cellmix4", "cellmix5"):
        bulk = dco.datasets.cellbench_mixtures(mixture, drop_ercc=True)
        keep = ~bulk.obs["poor_quality"].fillna(False).to_numpy(dtype=bool)
        bulk = bulk[keep].copy()
        tasks.append(Task("cellmix", mixture, ref, "cell_line", bulk, bulk.obsm["fractions"]))
    return tasks


def _bone_marrow_split():
    from sklearn.model_selection import train_test_split

    adata = dco.datasets.bone_marrow_metabolomics()
    types = list(dco.datasets.BONE_MARROW_PROTOCOL_TYPES)
    known = adata[adata.obs["cell_type"].isin(types)].copy()
    known.obs["cell_type"] = known.obs["cell_type"].astype(str).astype("category")
    train_idx, test_idx = [], []
    for t in types:
        cells = np.flatnonzero(known.obs["cell_type"].to_numpy() == t)
        a, b = train_test_split(cells, test_size=0.5, random_state=42)
        train_idx += list(a)
        test_idx += list(b)
    ref = known[np.sort(train_idx)].copy()
    test = known[np.sort(test_idx)].copy()
    test.X = np.clip(np.nan_to_num(np.asarray(test.X)), 0, None)
    hsc = adata[adata.obs["cell_type"].astype(str) == "HSC"].copy()
    hsc.X = np.clip(np.nan_to_num(np.asarray(hsc.X)), 0, None)
    return ref, test, hsc


def bone_marrow_hsc() -> Task:
    """The ``unknown`` scenario's bone-marrow task: 500 mixtures of 30 cells of the five known types' test half plus
    HSC cells (share U(0, 0.5)), against the reference half without HSC, in absolute mode."""
    import anndata as ad

    ref, test, hsc = _bone_marrow_split()
    pool = ad.concat([test, hsc], index_unique="-")
    pool.obs["cell_type"] = pool.obs["cell_type"].astype(str).astype("category")
    bulk = dco.pp.simulate_pseudobulk(
        pool,
        "cell_type",
        n_samples=500,
        cells_per_sample=30,
        fractions="uniform",
        scale="linear",
        unknown=["HSC"],
        unknown_fraction=(0.0, 0.5),
        unknown_column=True,
        random_state=42,
    )
    return Task("unknown", "bone marrow + HSC", ref, "cell_type", bulk, bulk.obsm["fractions"], mode="absolute")


def unknown_material() -> list[Task]:
    """Scenario 6: material the reference lacks, deconvolved in absolute mode; the ``unknown`` share is scored.

    - Bone-marrow protocol with HSC (the paper's held-out type, never in the reference) in the test mixtures:
      30-cell mixtures of the five known types' test half plus HSC cells, HSC share U(0, 0.5).
    - Real PBMC bulk (both cohorts) with NK removed from the reference: truth = flow fractions of the five labels,
      NK reported as ``unknown``.
    """
    tasks = [bone_marrow_hsc()]
    full = dco.datasets.pbmc_sorted_10x()
    no_nk = full[full.obs["broad_type"].astype(str) != "NK"].copy()
    no_nk.obs["broad_type"] = no_nk.obs["broad_type"].astype(str).astype("category")
    for cohort in ("GSE107011", "GSE107572"):
        real = dco.datasets.pbmc_bulk(cohort)
        truth = real.obsm["fractions"][PBMC_LABELS]
        truth = truth.div(truth.sum(axis=1), axis=0).rename(columns={"NK": "unknown"})
        tasks.append(Task("unknown", f"{cohort}, NK removed", no_nk, "broad_type", real, truth, mode="absolute"))
    return tasks


PERTURBATIONS = ("noise U(0.9, 1.1)", "global x0.8", "global x1.2", "10% features deleted", "30% features deleted")


def _perturb(bulk: AnnData, how: str, seed: int = 0) -> AnnData:
    rng = np.random.default_rng(seed)
    out = bulk.copy()
    X = np.asarray(out.X.toarray() if hasattr(out.X, "toarray") else out.X, dtype=np.float64)
    if how.startswith("noise"):
        out.X = X * rng.uniform(0.9, 1.1, X.shape)
    elif how.startswith("global"):
        out.X = X * float(how.split("x")[1])
    else:
        share = int(how.split("%")[0]) / 100
        keep = np.sort(rng.choice(out.n_vars, round(out.n_vars * (1 - share)), replace=False))
        out = out[:, keep].copy()
    return out


def noise() -> list[Task]:
    """Scenario 7: the bulk of scenarios 1, 3 and 4 (both PBMC cohorts, proteomics N2 -> nanoPOTS, the bone-marrow
    protocol) perturbed: multiplicative noise U(0.9, 1.1) per value, global x0.8 and x1.2, 10 % and 30 % of features
    deleted (seeded). Each perturbed bulk is deconvolved from scratch, as a user would."""
    base = pbmc_real() + proteomics()[:1] + bone_marrow()
    tasks = []
    for t in base:
        for how in PERTURBATIONS:
            bulk = _perturb(t.bulk, how)
            name = f"{t.name}: {how}"
            tasks.append(Task("noise", name, t.reference, t.labels_key, bulk, t.truth, t.mode, scale=t.scale))
    return tasks


def batch() -> list[Task]:
    """Scenario 9: a batch effect that per-sample normalisation cannot remove, unlike the noise scenario's global
    factors: the linear bulk of scenarios 1 and 4a (both PBMC cohorts, the bone-marrow protocol) with every feature
    multiplied by its own gain exp(N(0, 0.5)), one draw per feature shared by all samples (seed 0). Each perturbed
    bulk is deconvolved from scratch."""
    tasks = []
    for t in pbmc_real() + bone_marrow():
        rng = np.random.default_rng(0)
        out = t.bulk.copy()
        X = np.asarray(out.X.toarray() if hasattr(out.X, "toarray") else out.X, dtype=np.float64)
        out.X = X * np.exp(rng.normal(0.0, 0.5, out.n_vars))
        name = f"{t.name}: feature gains sd 0.5"
        tasks.append(Task("batch", name, t.reference, t.labels_key, out, t.truth, t.mode, scale=t.scale))
    return tasks


def robustness() -> list[Task]:
    """Scenario 10: missing material and damaged measurements on every omics layer (see
    :mod:`benchmarks.robustness`)."""
    from .robustness import robustness as suite

    return suite()


SCENARIOS: dict[str, Callable[[], list[Task]]] = {
    "pbmc68k": pbmc68k,
    "pbmc_real": pbmc_real,
    "bone_marrow": bone_marrow,
    "kidney": kidney,
    "tscp_states": tscp_states,
    "tscp_narrow": tscp_narrow,
    "cellbench": cellbench,
    "cellmix": cellmix,
    "proteomics": proteomics,
    "unknown": unknown_material,
    "noise": noise,
    "batch": batch,
    "robustness": robustness,
}
