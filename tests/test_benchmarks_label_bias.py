"""The per-label bias diagnosis (``python -m benchmarks.label_bias``)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package sits at the repository root
from benchmarks import label_bias as lb
from benchmarks.scenarios import PBMC_LABELS


def test_markers_are_specific_and_ranked_by_expression(monkeypatch):
    monkeypatch.setattr(lb, "N_MARKERS", 2)
    means = np.array(
        [
            [9.0, 1.0, 50.0, 5.0, 30.0],  # gene 0: 90 % in label 0; gene 2: 98 %; gene 4: 97 %; gene 3: 50 %
            [1.0, 9.0, 1.0, 5.0, 1.0],
        ]
    )
    cpm = means / means.sum(axis=1, keepdims=True) * 1e6
    markers = lb.label_markers(means, cpm)
    assert list(markers[0]) == [2, 4]  # the two most expressed of its specific genes (0, 2, 4), not gene 3
    assert list(markers[1]) == [1]


def test_diagnosis_on_the_real_cohorts(shared_data):
    table = lb.diagnose()
    assert len(table) == len(lb.COHORTS) * len(PBMC_LABELS)
    cd4 = table[table["label"] == "CD4T"]
    np.testing.assert_allclose(cd4["umi_per_cell_vs_CD4T"], 1.0)
    assert table["marker_r_with_flow"].between(-1, 1).all() and (table["n_markers"] > 0).all()
    for column in ("nnls_every_gene_mean", "nnls_markers_mean"):  # mean fractions over the labels sum to 1
        np.testing.assert_allclose(table.groupby("cohort")[column].sum(), 1.0, atol=1e-6)
