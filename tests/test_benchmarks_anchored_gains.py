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


def test_cohorts_with_other_labels_share_the_table():
    """A leave-out cohort (label B missing from its reference) beside a full one: its B cells are empty."""
    other = _rows().drop(columns=[c for c in _rows().columns if c.endswith("_B")]).assign(cohort="without B")
    table = ag.summary(pd.concat([_rows(), other], ignore_index=True))
    assert table.loc[table.cohort == "without B", "B gap"].isna().all()
    assert table.loc[table.cohort == "c", "B gap"].notna().all()
    assert "| without B | default | 0.750 (0.700) | -0.090 (-0.120) |  |" in ag.markdown(table)


def test_known_renormalises_over_the_known_labels():
    f = pd.DataFrame({"A": [0.2, 0.0], "B": [0.6, 0.5], "unknown": [0.2, 0.5]})
    out = ag.known(f, ["A", "B"])
    assert list(out.columns) == ["A", "B"] and np.allclose(out.to_numpy(), [[0.25, 0.75], [0.0, 1.0]])


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


def test_draws_are_reproducible_and_shared_by_every_method():
    first, again = ag.draws(12, 1, 5, 3), ag.draws(12, 1, 5, 3)
    assert len(first) == 3 and all(len(d) == 5 and list(d) == sorted(set(d)) for d in first)
    assert all((a == b).all() for a, b in zip(first, again, strict=True))
    assert any((a != b).any() for a, b in zip(first, ag.draws(12, 2, 5, 3), strict=True))  # another seed, other draws


def test_summary_shows_the_peers_scored_on_the_same_draws():
    rows = _rows()
    peers = rows[["cohort", "seed", "draw", "n_measured"]].assign(ccc_dtangle=[0.5, 0.6, 0.7, 0.8])
    peers["gap_dtangle_A"], peers["gap_dtangle_B"] = 0.02, -0.02
    table = ag.summary(ag.with_peers(rows, peers)).set_index("gains from")
    assert "dtangle (same samples)" in table.index and "NNLS (same samples)" not in table.index
    assert np.isclose(table.loc["dtangle (same samples)", "CCC (unmeasured samples)"], 0.65)
    assert np.isclose(table.loc["dtangle (same samples)", "worst seed"], 0.55)
    assert ag.with_peers(rows, None) is rows


def test_sources_that_ran_are_shown_and_the_others_left_out():
    """A source of the gains that ran on every row (the cohort's mean) gets a row; one that did not is left out."""
    rows = _rows()
    rows["ccc_cohort's mean"], rows["gap_cohort's mean_A"], rows["gap_cohort's mean_B"] = 0.9, 0.0, 0.0
    table = ag.summary(rows).set_index("gains from")
    assert list(table.index) == ["default", "anchored", "every sample's flow", "cohort's mean"]
    assert np.isclose(table.loc["cohort's mean", "CCC (unmeasured samples)"], 0.9)


def test_the_other_cohorts_mean_is_its_flow_mean_over_the_known_labels(monkeypatch):
    from types import SimpleNamespace

    from benchmarks import scenarios

    truth = pd.DataFrame({"B": [0.1, 0.3], "CD4T": [0.5, 0.3], "Mono": [0.4, 0.4]})
    tasks = [SimpleNamespace(name="GSE107011", truth=truth * 0), SimpleNamespace(name="GSE107572", truth=truth)]
    monkeypatch.setattr(scenarios, "pbmc_real", lambda: tasks)
    mean = ag.other_cohort_mean("GSE107011", ["B", "CD4T", "Mono"])
    assert np.allclose(mean.to_numpy(), [0.2, 0.4, 0.4])
    # a leave-out cohort of GSE107011 takes GSE107572's mean over its known labels, renormalised over them
    mean = ag.other_cohort_mean("GSE107011 without CD4T, Mono", ["B"])
    assert mean.index.tolist() == ["B"] and np.isclose(mean["B"], 1.0)
