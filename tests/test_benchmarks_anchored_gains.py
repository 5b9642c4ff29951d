"""The summaries of ``benchmarks/anchored_gains.py`` (the training runs are the benchmark's, not the tests')."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package sits at the repository root
from benchmarks import anchored_gains as ag


def _rows() -> pd.DataFrame:
    """Two seeds x two draws of one cohort: seed 1 is the worse one, label A's gap the largest."""
    rows = []
    for seed, ccc in ((0, 0.8), (1, 0.7)):
        for draw in range(2):
            row = {"cohort": "c", "seed": seed, "draw": draw, "n_measured": 5, "n_scored": 7}
            for name, shift in (("default", 0.0), ("anchored", 0.05), ("every sample's flow", 0.1)):
                row[f"ccc_{name}"] = ccc + shift
                row[f"gap_{name}_A"] = -0.06 * (seed + 1) + shift
                row[f"gap_{name}_B"] = 0.01
            rows.append(row)
    return pd.DataFrame(rows)


def test_summary_takes_means_over_draws_and_the_worst_seed():
    table = ag.summary(_rows()).set_index("gains from")
    assert list(table.index) == ["default", "anchored", "every sample's flow"]
    assert np.isclose(table.loc["default", "CCC (unmeasured samples)"], 0.75)
    assert np.isclose(table.loc["default", "worst seed"], 0.7)
    assert np.isclose(table.loc["default", "A gap"], -0.09) and np.isclose(table.loc["default", "A worst"], -0.12)
    assert np.isclose(table.loc["anchored", "A worst"], -0.07)
    text = ag.markdown(ag.summary(_rows()))
    assert "| c | default | 0.750 (0.700) | -0.090 (-0.120) | +0.010 (+0.010) |" in text


def test_interval_summary_reports_the_seed_furthest_from_the_band():
    rows = []
    for seed, coverage in ((0, 0.9), (1, 1.0)):
        row = {"cohort": "c", "seed": seed, "draw": 0, "n_measured": 5, "n_members": 4, "content_shift_anchored": 0.2}
        for name in ("default", "anchored"):
            row |= {f"ccc_{name}": 0.8, f"coverage_{name}": coverage, f"width_{name}": 0.2, f"covered_{name}_A": 1.0}
        rows.append(row)
    table = ag.interval_summary(pd.DataFrame(rows)).set_index("gains from")
    assert np.isclose(table.loc["anchored", "coverage"], 0.95) and table.loc["anchored", "furthest seed"] == 1.0
    assert np.isclose(table.loc["anchored", "content shift"], 0.2) and np.isnan(table.loc["default", "content shift"])
