"""Per-cohort coverage of held-out cohorts: calibrated on one half as the package does, scored on the other."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import scvi
from conftest import reference_and_bulk

from decode_omics.model import DECODE
from decode_omics.model._intervals import scale, summarise

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package sits at the repository root
from benchmarks import interval_cohorts


def test_held_out_cohorts_are_covered_at_the_level_on_average_and_scored_one_by_one():
    ref, bulk = reference_and_bulk(n_samples=30)
    scvi.settings.seed = 0
    DECODE.setup_anndata(ref, labels_key="cell_type")
    DECODE.setup_anndata(bulk)
    model = DECODE(ref, bulk, n_members=2)
    model.train(max_epochs=3, n_pseudotissues=256, early_stopping=False)
    # the cell fractions the halves are scored against are those the calibration drew: its scores, recomputed
    h = interval_cohorts.held_out_halves(model)
    cal, half = h["calibration"], h["half"]
    estimate, spread = summarise(h["members"][:, :half])
    scores = np.abs(estimate - h["cells"][:half]) / scale(estimate, spread, cal["floor"])
    for k, column in enumerate(cal["columns"]):
        np.testing.assert_allclose(np.sort(scores[:, k]).round(5), cal["scores"][column])
    full, small = interval_cohorts.per_cohort_coverage(model, n_samples=9)
    assert full.shape == small.shape == (48,)  # the second half of the 96 held-out cohorts
    assert ((0 <= small) & (small <= 1)).all()
    assert 0.84 <= full.mean() <= 0.96, full.mean()  # calibrated on the first half: about 90 % on the second
    assert full.std() > 0  # cohorts differ: each shares one platform shift and one set of content factors
    assert small.std() >= full.std() * 0.9  # 9 samples of a cohort stray at least as far as 64


def test_report_sums_the_expected_tasks_in_band_beside_the_observed(tmp_path):
    rows = [
        {"scenario": "s", "task": t, "seed": 0, "n_bulk": n, "cohorts": 48, "mean_coverage": 0.9, "in_band_64": b,
         "in_band_bulk_size": b, "p10_bulk_size": 0.7, "p90_bulk_size": 1.0}
        for t, n, b in (("a", 200, 0.25), ("b", 9, 0.5))
    ]  # fmt: skip
    path = tmp_path / "interval_cohorts.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    observed = pd.DataFrame(
        {"scenario": ["s"] * 4, "task": ["a", "a", "b", "b"], "coverage_90": [0.85, 0.9, 0.97, 0.9]}
    )
    text = "\n".join(interval_cohorts.report_lines(path, observed))
    assert "| s | a | 64 | 0.90 | 0.25 | 0.25 | 0.70-1.00 | 0.85-0.90 | yes |" in text
    assert "| s | b | 9 | 0.90 | 0.50 | 0.50 | 0.70-1.00 | 0.90-0.97 | **no** |" in text
    assert "about **0.8** of them in the band" in text and "on the real truth **1** are" in text
    assert "Averaged over the 2 tasks, the 90 % intervals hold 0.905 of the truth values" in text
    assert interval_cohorts.report_lines(tmp_path / "missing.csv") == []
    assert np.isclose(interval_cohorts.in_band(np.array([0.79, 0.8, 0.95, 0.96])).sum(), 2)
