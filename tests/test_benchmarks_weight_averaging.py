"""The weight-averaging benchmark: its averaged arm is what the package's default training gives."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import scvi
from conftest import reference_and_bulk

from decode_omics.metrics import ccc
from decode_omics.model import DECODE

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package sits at the repository root
from benchmarks.scenarios import Task
from benchmarks.weight_averaging import default_decay, run_task, table

FAST = {"max_epochs": 6, "n_pseudotissues": 256, "early_stopping": False}


def test_the_averaged_arm_scores_the_default_training():
    ref, bulk = reference_and_bulk()
    truth = bulk.obsm["fractions"]
    task = Task("synthetic", "halves", ref, "cell_type", bulk, truth)
    row = run_task(task, 0, default_decay(), **FAST)
    scvi.settings.seed = 0
    DECODE.setup_anndata(ref, labels_key="cell_type")
    DECODE.setup_anndata(bulk)
    model = DECODE(ref, bulk)
    model.train(**FAST, enable_progress_bar=False)  # the package's defaults, weight averaging on
    assert np.isclose(row["ccc_averaged"], ccc(model.get_fractions()[truth.columns], truth), atol=1e-6)
    assert row["ccc_last"] != row["ccc_averaged"]
    assert 0.5 < row["ccc_averaged"] <= 1 and row["epochs"] == FAST["max_epochs"]


def test_table_reports_mean_spread_worst_and_the_seeds_that_lost():
    results = pd.DataFrame(
        {
            "scenario": ["s"] * 3,
            "task": ["t"] * 3,
            "seed": [0, 1, 2],
            "ccc_last": [0.80, 0.70, 0.90],
            "ccc_averaged": [0.85, 0.80, 0.88],
        }
    )
    row = table(results).iloc[0]
    assert row["last weights"] == "0.800 ± 0.100 (worst 0.700)"
    assert row["averaged weights"] == "0.843 ± 0.040 (worst 0.800)"
    assert row["change"] == "+0.043" and row["seeds worse by > 0.01"] == 1
