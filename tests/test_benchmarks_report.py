"""The benchmark page's counting rules: per-seed scores, the worst seed for *met*, no-op perturbations out of counts."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package sits at the repository root
from benchmarks import report


def _scores(rows):
    return pd.DataFrame(rows, columns=["scenario", "task", "method", "seed", "ccc"])


def test_per_seed_averages_tasks_within_a_seed_and_drops_incomplete_seeds():
    scores = _scores(
        [
            ("kidney", "a", "DECODE", 0, 0.8),
            ("kidney", "b", "DECODE", 0, 0.6),
            ("kidney", "a", "DECODE", 1, 0.9),  # seed 1 lacks task b
            ("kidney", "b", "NNLS", 0, 0.5),
        ]
    )
    v = report._per_seed(scores, "kidney", None, "DECODE")
    assert list(v.index) == [0]
    assert v.iloc[0] == pytest.approx(0.7)
    assert report._per_seed(scores, "kidney", "a", "DECODE").to_dict() == {0: 0.8, 1: 0.9}


def test_target_is_met_only_when_the_worst_seed_reaches_it(monkeypatch):
    monkeypatch.setattr(report, "TARGETS", {("s", "t"): (0.80, "peer 0.7", "findings-4")})
    scores = _scores(
        [
            ("s", "t", "DECODE", 0, 0.90),
            ("s", "t", "DECODE", 1, 0.85),
            ("s", "t", "DECODE", 2, 0.79),  # mean 0.847 >= 0.80, worst seed below
            ("s", "t", "NNLS", 0, 0.5),
        ]
    )
    stats = pd.DataFrame(
        columns=["job", "scenario", "task", "method", "seed", "estimate_sd", "truth_sd", "seeds", "ccc"]
    )
    lines = report._targets_lines(scores, stats)
    row = next(line for line in lines if line.startswith("| s | t |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3] == "0.847 ± 0.055 (3)"
    assert cells[4] == "0.790"
    assert cells[5] == "**no**"
    assert cells[7] == "NNLS 0.500 (1)"
    assert cells[8] == "ahead (every seed)"


def test_global_scaling_rows_are_not_counted_as_leads():
    rows = []
    for method, base in (("DECODE", 0.8), ("NNLS", 0.5)):
        rows.append(("pbmc_real", "GSE1", method, 0, base))
        for how, delta in (("noise U(0.9, 1.1)", -0.01), ("global x0.8", 0.0), ("global x1.2", 0.0)):
            rows.append(("noise", f"GSE1: {how}", method, 0, base + delta))
    rows += [
        ("batch", "GSE1: feature gains sd 0.5", "DECODE", 0, 0.3),
        ("batch", "GSE1: feature gains sd 0.5", "NNLS", 0, 0.4),
    ]
    lines = report._noise_table(_scores(rows))
    text = "\n".join(lines)
    assert "DECODE is best on 1 of the 2 perturbed bulks" in text
    assert "behind on GSE1 / feature gains sd 0.5 (NNLS 0.400, DECODE 0.300)" in text
    assert "global x0.8 (cannot change a result)" in text
    assert "largest difference from *none* here: 0.000" in text


def test_display_names_and_seed_average():
    assert report._name("Scaden m256") == "Scaden (m256 only)"
    assert report._name("Scaden") == "Scaden"
    assert "2000" in report._name("AutoGeneS")
    stats = pd.DataFrame(
        [("s__DECODE__seeds_averaged", "s", "t", "DECODE", -1, np.nan, np.nan, 3, 0.9)],
        columns=["job", "scenario", "task", "method", "seed", "estimate_sd", "truth_sd", "seeds", "ccc"],
    )
    assert report._seed_average_ccc(stats, "s", "t") == (0.9, 3)
    assert np.isnan(report._seed_average_ccc(stats, "s", "other")[0])


def test_decode_rows_from_a_changed_package_are_flagged():
    scores = pd.DataFrame(
        {
            "scenario": ["a", "a", "b", "b"],
            "task": ["t", "t", "t", "t"],
            "method": ["DECODE", "NNLS", "DECODE", "DECODE no denoiser"],
            "seed": [0, 0, 0, 0],
            "ccc": [0.9, 0.5, 0.8, 0.7],
            "commit": ["old", "old", "new", None],
        }
    )
    lines = report._stale_lines(scores, changed=lambda commit: commit == "old")
    assert lines and lines[0].startswith("- **1 of the 3 DECODE jobs ran on a package that has changed since**")
    assert lines[1].endswith("), and 1")  # the job without a recorded commit is counted apart
    assert report._stale_lines(scores, changed=lambda commit: False) == []
