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
    assert "on **1 of 2**. An sd" in text  # spread: a's ensemble sd 0.001 vs 0.02; b's ensemble spreads more
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


def test_report_says_which_rows_predate_the_packages_members(tmp_path, monkeypatch):
    current = uncertainty.MEMBER_DATA
    rows = [
        *[_row("a", k, 4, 0.9, 0.88) | {"member_loss": "sum", "member_data": current} for k in range(3)],
        *[_row("b", k, 4, 0.9, 0.99) | {"member_loss": "sum"} for k in range(3)],  # before the column: shared
        *[_row("c", k, 4, 0.9, 0.99) | {"member_loss": "sum", "member_data": "own"} for k in range(3)],
        *[_row(t, k, 1, 0.85 + 0.02 * k, 0.9) for t in "abc" for k in range(3)],
    ]
    table = tmp_path / "uncertainty.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    monkeypatch.setattr(uncertainty, "TABLE", table)
    text = "\n".join(uncertainty.report_lines(pd.DataFrame(), tmp_path))
    assert "*3 of the 9 ensemble rows (members *shared* below) were measured when every member trained" in text
    assert "*3 of the 9 ensemble rows (members *own* below) were measured when each member trained on" in text
    assert f"Of the 1 tasks measured with the package's current members (*{current}*)" in text
    assert "coverage in band on **1**, the ensemble at least as accurate as one network on **1**" in text
    assert f"| 10 | {current} |" in text and "| 10 | shared |" in text and "| 10 | own |" in text


def test_report_is_empty_without_ensemble_rows(tmp_path, monkeypatch):
    table = tmp_path / "uncertainty.csv"
    pd.DataFrame([_row("a", 0, 1, 0.9, 0.9)]).to_csv(table, index=False)
    monkeypatch.setattr(uncertainty, "TABLE", table)
    assert uncertainty.report_lines(pd.DataFrame(), tmp_path) == []


def test_interval_shift_report_names_the_shifts_that_cover_within_the_band(tmp_path):
    from benchmarks import interval_shift

    def rows(task, own, grid):
        key = {"scenario": "s", "task": task, "seed": 0, "width_90": 0.2}
        out = [key | {"shift": own[0], "shift_from": "matched", "coverage_90": own[1]}]
        return out + [key | {"shift": s, "shift_from": "given", "coverage_90": c} for s, c in grid]

    table = tmp_path / "interval_shift.csv"
    pd.DataFrame(
        rows("a", (0.05, 0.3), [(0.0, 0.2), (0.1, 0.7), (0.2, 0.85), (0.3, 0.9), (0.5, 0.97)])
        + rows("b", (0.1, 0.5), [(0.0, 0.4), (0.1, 0.5), (0.2, 0.97)])  # jumps over the band
        + rows("c", (2.0, 1.0), [(0.0, 0.99), (2.0, 1.0)])  # every shift covers too much
    ).to_csv(table, index=False)
    text = "\n".join(interval_shift.report_lines(table, tmp_path / "no_streams.csv"))
    assert "| s | a | 0 | 0.05 | 0.30 | 0.2, 0.3 |" in text
    assert "| s | b | 0 | 0.10 | 0.50 | none: 0.1 -> 0.50, 0.2 -> 0.97 |" in text
    assert "| s | c | 0 | 2.00 | 1.00 | none (at least 0.99) |" in text
    assert interval_shift.report_lines(tmp_path / "missing.csv", tmp_path / "no_streams.csv") == []


def test_interval_streams_table_summarises_each_calibration_size(tmp_path):
    from benchmarks import interval_shift

    rows = [
        {"scenario": "s", "task": "a", "seed": 0, "cohorts": n, "probe_cohorts": p, "stream": k, "shift": 0.5,
         "coverage_90": c, "width_90": 0.2, "seconds": 1.0}
        for n, p, covs in ((12, 4, (0.7, 0.9)), (96, 16, (0.8, 0.82)))
        for k, c in enumerate(covs)
    ]  # fmt: skip
    path = tmp_path / "interval_streams.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    text = "\n".join(interval_shift.streams_lines(path))
    assert "| s | a | 12 (4) | 0.50 ± 0.000 | 0.80 ± 0.141 (0.70-0.90) | 1.0 |" in text
    assert "| s | a | 96 (16) | 0.50 ± 0.000 | 0.81 ± 0.014 (0.80-0.82) | 1.0 |" in text
    assert interval_shift.streams_lines(tmp_path / "missing.csv") == []


def test_rescore_keeps_the_row_of_a_task_without_a_saved_model(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import torch
    from benchmarks import scenarios

    monkeypatch.setitem(scenarios.SCENARIOS, "fake", lambda: [SimpleNamespace(name="task a")])
    monkeypatch.setattr(uncertainty, "MODELS", tmp_path / "models")
    out = tmp_path / "fake__0__m4.json"
    out.write_text(json.dumps([{"task": "task a", "ccc": 0.5}, {"task": "gone", "ccc": 0.1}]))
    threads = torch.get_num_threads()
    try:
        uncertainty.job("fake", 0, 4, out, refit=False)
    finally:
        torch.set_num_threads(threads)
    assert json.loads(out.read_text()) == [{"task": "task a", "ccc": 0.5}]  # kept; a task no longer built is not


def test_content_shift_is_chosen_leaving_each_scenario_out(tmp_path):
    """The content shift is chosen on the other scenarios' models (most within 80-95 %, then nearest 90 %), and the
    left-out scenario is scored at that choice."""
    from benchmarks import interval_content

    coverage = {  # scenario -> coverage at content shifts 0, 0.2, 0.4
        "x": (0.70, 0.88, 0.97),
        "y": (0.75, 0.90, 0.99),
        "z": (0.60, 0.70, 0.85),  # needs more than the others
    }
    rows = [
        {"scenario": s, "task": "t", "seed": 0, "shift": 0.1, "content_shift": c, "coverage_90": v, "width_90": 0.2}
        for s, covs in coverage.items()
        for c, v in zip((0.0, 0.2, 0.4), covs, strict=True)
    ]
    table = pd.DataFrame(rows)
    loso = interval_content.leave_one_scenario_out(table).set_index("scenario")
    assert loso.loc["z", "chosen"] == 0.2 and loso.loc["z", "in_band"] == 0  # x and y choose 0.2; z misses at it
    # y and z: one model within 80-95 % at 0.2 and at 0.4; at 0.4 they sit nearer 90 % on average (0.07 vs 0.10)
    assert loso.loc["x", "chosen"] == 0.4 and loso.loc["x", "in_band"] == 0
    path = tmp_path / "interval_content.csv"
    table.to_csv(path, index=False)
    text = "\n".join(interval_content.report_lines(path))
    assert "| x | t | 0 | 0.70 | 0.88 | 0.97 |" in text
    assert "| **within 80-95 %** | | | 0 of 3 | 2 of 3 | 1 of 3 |" in text
    assert "| z | 0.2 | 0 of 1 | 0.70 |" in text
    assert interval_content.report_lines(tmp_path / "missing.csv") == []


def test_merge_rows_keeps_the_rows_of_models_not_rerun(tmp_path):
    from benchmarks._tables import merge_rows

    path = tmp_path / "t.csv"
    pd.DataFrame({"scenario": ["s", "s"], "task": ["a", "b"], "seed": [0, 0], "v": [1, 2]}).to_csv(path, index=False)
    new = pd.DataFrame({"scenario": ["s"], "task": ["a"], "seed": [0], "v": [3]})
    merged = merge_rows(new, path).set_index("task")["v"]
    assert merged.to_dict() == {"b": 2, "a": 3}
    assert merge_rows(new, tmp_path / "missing.csv") is new


def test_report_shows_the_fraction_spread_of_the_current_ensemble_beside_the_ccc_spread(tmp_path, monkeypatch):
    current = {"member_loss": "sum", "member_data": uncertainty.MEMBER_DATA}
    rows = [
        *[_row(t, k, 4, 0.9 + 0.001 * k, 0.88) | current for t in "ab" for k in range(3)],
        *[_row(t, k, 1, 0.85 + 0.02 * k, 0.9) for t in "ab" for k in range(3)],
    ]
    table = tmp_path / "uncertainty.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    spread = tmp_path / "seed_spread.csv"

    def sd(task, seeds, ensemble, alone, member_data=uncertainty.MEMBER_DATA, members=4):
        key = {"scenario": "s", "task": task, "seeds": seeds, "members": members, "member_data": member_data}
        return key | {"fraction_sd_one": 0.02, "fraction_sd_ensemble": ensemble, "fraction_sd_member_alone": alone}

    pd.DataFrame(
        [
            sd("a", 3, 0.009, 0.02),
            sd("b", 6, 0.012, 0.03),
            sd("a", 6, 0.001, 0.02, member_data="shared"),  # other ensembles than the package's: never shown
            sd("b", 3, 0.001, 0.02, member_data="own"),
            sd("b", 6, 0.001, 0.02, members=8),
        ]
    ).to_csv(spread, index=False)
    monkeypatch.setattr(uncertainty, "TABLE", table)
    monkeypatch.setattr(uncertainty, "SEED_SPREAD", spread)
    text = "\n".join(uncertainty.report_lines(pd.DataFrame(), tmp_path))
    assert "| s | a | 0.0200 | 0.0010 | 0.05 | 0.45 / 0.45 (3) |" in text
    assert "| s | b | 0.0200 | 0.0010 | 0.05 | 0.60 / 0.40 (6) |" in text
    assert "3 or 6 seeds" in text
    assert "at most half of one network's on **1 of 2** tasks (ratios 0.45-0.60, median 0.52)" in text
    assert "at most half of its members' read alone on 2 (median 0.42)" in text

    monkeypatch.setattr(uncertainty, "SEED_SPREAD", tmp_path / "none.csv")
    text = "\n".join(uncertainty.report_lines(pd.DataFrame(), tmp_path))
    assert "fraction sd is at most half" not in text and "| 0.05 |  |" in text


def test_table_replaces_cached_jobs_rows_and_writes_kept_rows_back_unchanged(tmp_path, monkeypatch):
    cache, table = tmp_path / "jobs", tmp_path / "uncertainty.csv"
    cache.mkdir()
    kept, replaced = _row("a", 0, 4, 0.5, 0.9) | {"scenario": "other"}, _row("b", 0, 4, 0.5, 0.9)
    kept["width_90"] = 0.06327911710457589  # 17 significant digits: pandas' default float parser loses the last
    pd.DataFrame([kept, replaced]).to_csv(table, index=False)
    before = table.read_text().splitlines()
    (cache / "s__0__m4.json").write_text(json.dumps([{**replaced, "task": "b", "ccc": 0.7}]))
    monkeypatch.setattr(uncertainty, "CACHE", cache)
    monkeypatch.setattr(uncertainty, "TABLE", table)
    out = uncertainty.table()
    after = table.read_text().splitlines()
    assert out.set_index("task").loc["b", "ccc"] == 0.7  # the cached job's (scenario, seed) rows replace the stored
    assert after[1] == before[1]  # the row of a scenario no job ran is written back byte for byte


def test_a_cached_row_replaces_the_tables_row_of_its_task_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(uncertainty, "CACHE", tmp_path / "jobs")
    monkeypatch.setattr(uncertainty, "TABLE", tmp_path / "uncertainty.csv")
    old = [_row("L: A left out", 0, 4, 0.5, 0.7), _row("M: noise U(0.9, 1.1)", 0, 4, 0.6, 0.8)]
    pd.DataFrame(old).to_csv(uncertainty.TABLE, index=False)
    # one layer's job ran again: the other layer's row of the same scenario and seed stays
    path = uncertainty.job_path("s", 0, 4, "L")
    path.parent.mkdir()
    path.write_text(json.dumps([_row("L: A left out", 0, 4, 0.9, 0.88)]))
    table = uncertainty.table().set_index("task")
    assert path.name == "s__0__m4__L.json"
    assert table["ccc"].to_dict() == {"L: A left out": 0.9, "M: noise U(0.9, 1.1)": 0.6}


def test_run_spreads_the_robustness_suite_over_its_layers(tmp_path, monkeypatch):
    from benchmarks.robustness import LAYERS, LAYERS_ENV

    started = []

    class Finished:
        def __init__(self, argv, cwd, env):
            started.append((argv[-1], env.get(LAYERS_ENV)))

        def poll(self):
            return 0

    monkeypatch.setattr(uncertainty, "CACHE", tmp_path)
    monkeypatch.setattr(uncertainty.subprocess, "Popen", Finished)
    monkeypatch.setattr(uncertainty.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(uncertainty, "table", lambda: None)
    monkeypatch.delenv(LAYERS_ENV, raising=False)
    uncertainty.run(["robustness", "kidney"], [0], 4, n_jobs=2, rerun=False)
    assert started == [
        *[(str(tmp_path / f"robustness__0__m4__{layer}.json"), layer) for layer in LAYERS],
        (str(tmp_path / "kidney__0__m4.json"), None),
    ]


def test_report_draws_the_robustness_suite_in_a_panel_of_its_own(tmp_path, monkeypatch):
    import matplotlib.image

    rows = [_row("a", 0, 4, 0.9, 0.88)]
    suite = ["L: A left out (mean 20%)", "L: noise U(0.9, 1.1)", "L: 10% features deleted"]
    rows += [_row(task, 0, 4, 0.8, 0.6) | {"scenario": "robustness"} for task in suite]
    table = tmp_path / "uncertainty.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    monkeypatch.setattr(uncertainty, "TABLE", table)
    scores = pd.DataFrame(columns=["scenario", "task", "method", "seed", "ccc"])
    text = "\n".join(uncertainty.report_lines(scores, tmp_path))
    assert "| robustness | L: A left out (mean 20%) | 1 |" in text
    assert "on **1 of 4** tasks" in text  # the suite's tasks count, and miss the band here
    height, width = matplotlib.image.imread(tmp_path / "reliability.png").shape[:2]
    assert width > 1.8 * height  # two panels side by side


def test_relative_intervals_are_scored_against_the_known_labels_split():
    """Where the reference lacks material (relative mode), the truth is the known labels' split: a truth of 0.3 and
    0.3 with 0.4 missing is 0.5 and 0.5 of what the estimate describes."""
    from types import SimpleNamespace

    index = ["s0", "s1"]
    estimate = pd.DataFrame({"A": [0.5, 0.5], "B": [0.5, 0.5]}, index=index)

    class Model:
        def __init__(self):
            self.interval_calibration_ = {"shift": 0.1, "shift_from": "given"}

        def get_fractions(self, return_interval, level):
            return estimate, estimate - 0.05, estimate + 0.05

    truth = pd.DataFrame({"A": [0.3, 0.3], "B": [0.3, 0.3], "unknown": [0.4, 0.4]}, index=index)
    row = uncertainty.score_intervals(Model(), SimpleNamespace(truth=truth))
    assert row["coverage_90"] == 1.0 and row["n_values"] == 4
    assert json.loads(row["per_label_coverage_90"]) == {"A": 1.0, "B": 1.0}
