"""The uncertainty section of the benchmark page: what counts as met, and where one network's figures come from."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package sits at the repository root
from benchmarks import uncertainty


def _row(task, seed, members, ccc, coverage):
    levels = {f"coverage_{round(level * 100)}": min(coverage + level - 0.9, 1.0) for level in uncertainty.LEVELS}
    return {
        "scenario": "s", "task": task, "seed": seed, "n_members": members, "seconds": 10.0, "ccc": ccc,
        "width_90": 0.2, "constant_width_90": 0.18, "per_label_coverage_90": json.dumps({"A": coverage}),
        **levels,
    }  # fmt: skip


def test_report_counts_targets_on_the_worst_seed_and_prefers_same_code_single_rows(tmp_path, monkeypatch):
    rows = [
        # task a: every seed covered within 80-95 %, ensemble better than one network on mean and worst seed
        *[_row("a", k, 4, 0.90 + 0.001 * k, 0.88) for k in range(3)],
        *[_row("a", k, 1, 0.85 + 0.02 * k, 0.70) for k in range(3)],
        # task b: one seed over-covers, the ensemble's worst seed is below one network's
        *[_row("b", k, 4, [0.80, 0.90, 0.90][k], [0.90, 0.99, 0.85][k]) for k in range(3)],
        *[_row("b", k, 1, 0.85, 0.9) for k in range(3)],
    ]
    table = tmp_path / "uncertainty.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    monkeypatch.setattr(uncertainty, "TABLE", table)
    # the main benchmark's rows would say otherwise; the table's own one-network rows win
    scores = pd.DataFrame({"scenario": ["s"], "task": ["a"], "method": ["DECODE"], "seed": [0], "ccc": [0.99]})
    text = "\n".join(uncertainty.report_lines(scores, tmp_path))

    assert "on **1 of 2** tasks" in text  # coverage: only a
    assert "one network (mean and worst seed) on **1 of 2**" in text  # accuracy: only a
    assert "on **1 of 2** (an sd" in text  # spread: a's ensemble sd 0.001 vs 0.02; b's ensemble spreads more
    assert "0.870 ± 0.020 (worst 0.850, 3 seeds)" in text  # one network of task a, from the table's own rows
    assert "0.990" not in text
    assert "6 of the 6 ensemble rows were measured when the members were trained on their mean loss" in text
    assert (tmp_path / "reliability.png").exists()


def test_report_prefers_main_benchmark_rows_when_own_single_rows_miss_seeds(tmp_path, monkeypatch):
    rows = [_row("a", k, 4, 0.9, 0.88) | {"member_loss": "sum"} for k in range(3)] + [_row("a", 0, 1, 0.5, 0.8)]
    table = tmp_path / "uncertainty.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    monkeypatch.setattr(uncertainty, "TABLE", table)
    scores = pd.DataFrame(
        {"scenario": ["s"] * 3, "task": ["a"] * 3, "method": ["DECODE"] * 3, "seed": [0, 1, 2], "ccc": [0.8] * 3}
    )
    text = "\n".join(uncertainty.report_lines(scores, tmp_path))
    assert "the main benchmark's rows" in text and "0.800 ± 0.000 (worst 0.800, 3 seeds)" in text
    assert "mean loss" not in text


def test_report_is_empty_without_ensemble_rows(tmp_path, monkeypatch):
    table = tmp_path / "uncertainty.csv"
    pd.DataFrame([_row("a", 0, 1, 0.9, 0.9)]).to_csv(table, index=False)
    monkeypatch.setattr(uncertainty, "TABLE", table)
    assert uncertainty.report_lines(pd.DataFrame(), tmp_path) == []
