"""Where the per-label bias on real PBMC bulk comes from (issue 20): B cells read 3-5x too low, monocytes too high.

A diagnosis, no training: it compares the bulk with the reference and the flow truth (the truth is used to diagnose,
never to fit anything). Three questions, one table each:

1. **mRNA content.** Pseudo-tissues sum raw UMI counts, so a label's cells weigh by their UMI total. Are the labels'
   totals far enough apart to explain a 3-5x bias?
2. **Signal in the bulk.** For each label, its most specific reference genes (at least 80 % of their reference
   expression in that label; the 25 highest by CPM): does their summed bulk CPM rise with the label's flow fraction
   (Pearson r), and at the slope the reference predicts (observed / expected slope: 1 = the bulk carries the label's
   programme at the 10x level)?
3. **The solve.** NNLS of each bulk sample on the labels' mean profiles (content kept), over every shared gene and
   over the markers of question 2 only: mean estimate per label against the flow mean.

Run: ``python -m benchmarks.label_bias`` (seconds; writes ``benchmarks/results/label_bias.csv``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import nnls

import decode_omics as dco

from ._tables import write_table
from .scenarios import PBMC_LABELS

RESULTS = Path(__file__).parent / "results" / "label_bias.csv"
COHORTS = ("GSE107011", "GSE107572")
#: Share of a gene's reference expression (summed over the label means) that makes it a label's marker.
SPECIFICITY = 0.8
N_MARKERS = 25


def _dense(X) -> np.ndarray:
    return np.asarray(X.toarray() if sparse.issparse(X) else X, dtype=np.float64)


def label_markers(means: np.ndarray, cpm: np.ndarray) -> list[np.ndarray]:
    """Per label: its genes with at least :data:`SPECIFICITY` of the summed label means, the
    :data:`N_MARKERS` highest by the label's CPM."""
    specificity = means / np.maximum(means.sum(axis=0, keepdims=True), 1e-300)
    out = []
    for k in range(len(means)):
        candidates = np.flatnonzero(specificity[k] >= SPECIFICITY)
        out.append(candidates[np.argsort(-cpm[k, candidates])][:N_MARKERS])
    return out


def _nnls_means(profiles: np.ndarray, bulk: np.ndarray) -> np.ndarray:
    est = np.array([nnls(profiles.T, b)[0] for b in bulk])
    return (est / np.maximum(est.sum(axis=1, keepdims=True), 1e-300)).mean(axis=0)


def diagnose() -> pd.DataFrame:
    """One row per cohort and label (see the module docstring)."""
    ref = dco.datasets.pbmc_sorted_10x()
    labels = ref.obs["broad_type"].astype(str).to_numpy()
    rows = []
    for cohort in COHORTS:
        bulk = dco.datasets.pbmc_bulk(cohort)
        truth = bulk.obsm["fractions"][PBMC_LABELS]
        truth = truth.div(truth.sum(axis=1), axis=0).to_numpy()
        genes = ref.var_names.intersection(bulk.var_names)
        X = _dense(ref[:, genes].X)
        B = _dense(bulk[:, genes].X)
        B = B / B.sum(axis=1, keepdims=True) * 1e6
        means = np.stack([X[labels == k].mean(axis=0) for k in PBMC_LABELS])  # content kept
        umi = means.sum(axis=1)
        cpm = means / umi[:, None] * 1e6
        per_cell = means / X.sum(axis=1).mean() * 1e6  # CPM of an average cell: mixes add up in cells
        markers = label_markers(means, cpm)
        every_gene = _nnls_means(per_cell, B)
        on_markers = _nnls_means(per_cell[:, np.concatenate(markers)], B[:, np.concatenate(markers)])
        for k, label in enumerate(PBMC_LABELS):
            m = markers[k]
            signal = B[:, m].sum(axis=1)
            expected = per_cell[k, m].sum()  # bulk CPM of these genes per unit of the label's cell fraction
            rows.append(
                {
                    "cohort": cohort,
                    "label": label,
                    "umi_per_cell_vs_CD4T": umi[k] / umi[PBMC_LABELS.index("CD4T")],
                    "n_markers": len(m),
                    "markers": " ".join(genes[m[:4]]),
                    "marker_r_with_flow": float(np.corrcoef(truth[:, k], signal)[0, 1]),
                    "marker_slope_observed_over_expected": float(np.polyfit(truth[:, k], signal, 1)[0] / expected),
                    "flow_mean": float(truth[:, k].mean()),
                    "nnls_every_gene_mean": float(every_gene[k]),
                    "nnls_markers_mean": float(on_markers[k]),
                }
            )
    return pd.DataFrame(rows)


def main() -> None:
    write_table(diagnose(), RESULTS)


if __name__ == "__main__":
    main()
