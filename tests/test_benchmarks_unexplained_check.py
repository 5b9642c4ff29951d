"""What ``tl.deconvolve``'s default check names on the robustness suite (``python -m benchmarks.unexplained_check``)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
from conftest import reference_and_bulk

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package sits at the repository root
from benchmarks import robustness
from benchmarks import unexplained_check as check

FAST = {"max_epochs": 20, "n_pseudotissues": 512, "early_stopping": False}


def _task(name="toy: type3 left out (mean 30%)", share=(0.0, 0.6)):
    ref, bulk = reference_and_bulk(4, n_samples=40, unknown=["type3"], unknown_fraction=share, unknown_column=True)
    ref = ref[ref.obs["cell_type"] != "type3"].copy()
    ref.obs["cell_type"] = ref.obs["cell_type"].cat.remove_unused_categories()
    truth = bulk.obsm["fractions"].copy()
    return SimpleNamespace(name=name, reference=ref, bulk=bulk, labels_key="cell_type", scale="auto", truth=truth)


def test_a_row_summarises_the_share_against_the_truth():
    task = _task()
    row = check._row(task, 0, **FAST)
    assert row["task"] == task.name and row["seed"] == 0 and row["n_samples"] == task.bulk.n_obs
    assert 0 <= row["q10"] <= row["median"] <= row["q90"] <= 1 and 0 <= row["named"] <= 1
    assert abs(row["truth_median"] - task.truth["unknown"].median()) < 1e-12
    assert row["pearson"] > 0.3  # the planted share is read, roughly, on the reference's own platform
    assert 0 < row["rmse"] < 0.5 and row["ccc_known"] > 0.8


def test_run_resumes_and_the_table_lists_every_seed(tmp_path, monkeypatch):
    tasks = [_task("toy: full reference", share=(0.0, 0.0)), _task(), _task("toy: 10% features deleted")]
    tasks[0].truth = tasks[0].truth.drop(columns="unknown")
    calls = []
    monkeypatch.setattr(robustness, "robustness", lambda: tasks)

    def fake_row(task, seed, **_):
        calls.append((task.name, seed))
        return {"task": task.name, "seed": seed, "truth_median": 0.3, "median": 0.1 * (seed + 1), "named": 0.5,
                "rmse": 0.2, "pearson": 0.4, "median_reference_fit": 1.5}  # fmt: skip

    monkeypatch.setattr(check, "_row", fake_row)
    out = tmp_path / "check.csv"
    check.run([0], out)
    assert calls == [("toy: full reference", 0), ("toy: type3 left out (mean 30%)", 0)]  # damaged bulks not read
    calls.clear()
    check.run([0, 1], out, resume=True)
    assert calls == [("toy: full reference", 1), ("toy: type3 left out (mean 30%)", 1)]
    table = check.table(out).set_index("task")
    assert list(table.index) == ["toy: full reference", "toy: type3 left out (mean 30%)"]
    assert table.loc["toy: full reference", "unexplained, median per seed"] == "0.10, 0.20"
    assert table.loc["toy: full reference", "seeds"] == 2 and len(pd.read_csv(out)) == 4


def test_the_benchmark_page_shows_the_stored_table(tmp_path, monkeypatch):
    rows = [
        {"task": "toy: full reference", "seed": 0, "truth_median": 0.0, "median": 0.08, "named": 0.0, "rmse": 0.08,
         "pearson": float("nan"), "median_reference_fit": 1.5},
        {"task": "toy: B left out (mean 30%)", "seed": 0, "truth_median": 0.3, "median": 0.31, "named": 0.6,
         "rmse": 0.1, "pearson": 0.5, "median_reference_fit": 3.5},
    ]  # fmt: skip
    path = tmp_path / "check.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    monkeypatch.setattr(check, "RESULTS", path)
    lines = robustness._default_check_lines()
    assert "| toy: full reference | 0.00 | 0.08 | 0% | 0.080 (0.080) |" in lines
    assert "| toy: B left out (mean 30%) | 0.30 | 0.31 | not checked (fit 3.5) | 0.100 (0.100) |" in lines
    monkeypatch.setattr(check, "RESULTS", tmp_path / "absent.csv")
    assert robustness._default_check_lines() == []
