"""How far absolute mode's unknown share reaches (``python -m benchmarks.unknown_share``)."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
from conftest import reference_and_bulk

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package sits at the repository root
from benchmarks import robustness, scenarios
from benchmarks import unknown_share as reach

FAST = {"max_epochs": 20, "n_pseudotissues": 512, "early_stopping": False}


def _task(name="toy: type3 left out (50-80 %)", share=(0.5, 0.8), scale="auto"):
    ref, bulk = reference_and_bulk(4, n_samples=40, unknown=["type3"], unknown_fraction=share, unknown_column=True)
    ref = ref[ref.obs["cell_type"] != "type3"].copy()
    ref.obs["cell_type"] = ref.obs["cell_type"].cat.remove_unused_categories()
    truth = bulk.obsm["fractions"].copy()
    return scenarios.Task("toy", name, ref, "cell_type", bulk, truth, mode="absolute", scale=scale)


def test_the_tasks_are_the_linear_leave_outs_and_the_full_references_in_absolute_mode(monkeypatch):
    full = _task("toy: full reference", share=(0.0, 0.0))
    full = replace(full, truth=full.truth.drop(columns="unknown"), mode="relative")
    damaged = _task("toy: 10% features deleted")
    damaged = replace(damaged, truth=damaged.truth.drop(columns="unknown"))
    as_stored = _task("proteins: RAW left out (mean 35%)", scale="as_is")
    suite = [full, _task(), damaged, as_stored]
    monkeypatch.setattr(robustness, "robustness", lambda: suite)
    monkeypatch.setitem(scenarios.SCENARIOS, "unknown", lambda: [_task("toy + HSC", share=(0.0, 0.5))])
    tasks = reach.tasks()
    assert [t.name for t in tasks] == ["toy: full reference", "toy: type3 left out (50-80 %)", "toy + HSC"]
    assert tasks[0].mode == "absolute" and (tasks[0].truth["unknown"] == 0).all()
    assert "unknown" not in full.truth  # the suite's own task is left as it was
    assert [t.name for t in reach.tasks("HSC")] == ["toy + HSC"]


def test_a_row_scores_the_unknown_share_and_a_wider_reach_reads_more_of_it():
    task = _task()
    rows = {a: reach._row(task, 0, a, **FAST) for a in (0.5, 0.8)}
    assert rows[0.8]["kind"] == "majority" and rows[0.8]["max_unknown_share"] == 0.8
    assert abs(rows[0.8]["truth_median"] - task.truth["unknown"].median()) < 1e-12
    # the truth is 0.5-0.8: a head trained on up to 0.5 reads low; the known labels do not depend on the reach
    assert rows[0.5]["unknown_bias"] < rows[0.8]["unknown_bias"] and rows[0.5]["unknown_bias"] < -0.05
    assert abs(rows[0.5]["ccc_known"] - rows[0.8]["ccc_known"]) < 1e-4 and rows[0.8]["ccc_known"] > 0.8


def _rows():
    out = []
    for seed in (0, 1):
        for task, kind, truth in (("toy: full reference", "full reference", 0.0), ("toy: B left out", "majority", 0.6)):
            for a in (0.5, 0.8):
                rmse = (0.05 if a == 0.5 else 0.07) if truth == 0 else (0.4 if a == 0.5 else 0.1 + 0.1 * seed)
                row = {"task": task, "kind": kind, "seed": seed, "max_unknown_share": a, "truth_median": truth}
                out.append(row | {"ccc_known": 0.8, "unknown_rmse": rmse, "unknown_bias": -rmse})
    return pd.DataFrame(out)


def test_table_merges_cached_rows_and_the_page_shows_mean_worst_and_wins(tmp_path, monkeypatch):
    monkeypatch.setattr(reach, "CACHE", tmp_path / "jobs")
    reach.CACHE.mkdir()
    rows = _rows()
    out = tmp_path / "reach.csv"
    rows[rows["seed"] == 0].to_csv(out, index=False)
    newer = rows[rows["seed"] == 1].to_dict("records")
    newer[0] |= {"unknown_rmse": 0.06}
    for i, row in enumerate(newer):
        (reach.CACHE / f"{i}.json").write_text(json.dumps(row))
    (reach.CACHE / "again.json").write_text(json.dumps(rows.iloc[0].to_dict() | {"unknown_rmse": 0.01}))
    table = reach.table(out)
    assert len(table) == 8 and len(pd.read_csv(out)) == 8
    stored = table.set_index(["task", "seed", "max_unknown_share"])["unknown_rmse"]
    assert stored[("toy: full reference", 0, 0.5)] == 0.01
    lines = reach.report_lines(pd.read_csv(out))
    text = "\n".join(lines)
    assert "| toy: B left out | 0.60 | 0.400 (0.400; 2) | -0.400 | 0.150 (0.200; 2) | -0.150 | 0.800 |" in text
    assert lines.index(next(x for x in lines if x.startswith("| toy: full reference"))) < lines.index(
        next(x for x in lines if x.startswith("| toy: B left out"))
    )
    assert text.endswith("Lowest mean RMSE: at 0.5 on 1 tasks, at 0.8 on 1 tasks.")
    assert reach.report_lines(pd.DataFrame()) == []
