"""The robustness suite's tasks (missing material, damaged measurements) and its section of the benchmark page."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package sits at the repository root
from benchmarks import robustness as rb
from benchmarks.scenarios import SCENARIOS, Task
from conftest import synthetic_reference


def _labels(task: Task) -> set[str]:
    return set(task.reference.obs[task.labels_key].astype(str).unique())


@pytest.fixture(scope="module")
def tasks(shared_data) -> list[Task]:
    return SCENARIOS["robustness"]()


@pytest.mark.shared_data
def test_every_layer_has_its_base_leave_outs_and_damage(tasks):
    assert len(tasks) <= 42
    assert {t.scenario for t in tasks} == {"robustness"}
    assert len({t.name for t in tasks}) == len(tasks)
    layers = list(dict.fromkeys(rb.split_name(t.name)[0] for t in tasks))
    assert layers == [
        "GSE107011",
        "GSE107572",
        "CellBench CEL-seq2",
        "N2 -> nanoPOTS",
        "nanoPOTS -> N2",
        "bone marrow",
        "kidney rep1",
        "T-SCP",
    ]
    for layer in layers:
        whats = [rb.split_name(t.name)[1] for t in tasks if rb.split_name(t.name)[0] == layer]
        assert whats[0] == rb.BASE and whats[-2:] == list(rb.DAMAGE)
        assert any("left out" in w and "%" in w and "mean" not in w for w in whats) or layer.startswith("GSE")


@pytest.mark.shared_data
def test_truth_sums_to_one_and_references_lack_exactly_the_left_out_labels(tasks):
    bases = {rb.split_name(t.name)[0]: t for t in tasks if rb.split_name(t.name)[1] == rb.BASE}
    for t in tasks:
        np.testing.assert_allclose(t.truth.sum(axis=1), 1.0, atol=1e-6, err_msg=t.name)
        assert list(t.truth.index) == list(t.bulk.obs_names), t.name
        base = bases[rb.split_name(t.name)[0]]
        known = set(t.truth.columns) - {"unknown"}
        assert _labels(t) == known, t.name  # the reference holds exactly the labels scored as known
        if "left out" in t.name:
            assert t.mode == ("relative" if t.scale == "as_is" else "absolute") and "unknown" in t.truth
            left_out = set(rb.split_name(t.name)[1].split(" left out")[0].split(", "))
            assert _labels(base) - _labels(t) == left_out, t.name
            assert (t.truth[list(known)].sum(axis=1) > 0).all(), t.name  # something known to score in every sample
        else:
            assert t.mode == base.mode and _labels(t) == _labels(base), t.name


@pytest.mark.shared_data
def test_majority_absent_tasks_hold_50_to_80_percent_unknown(tasks):
    majority = [t for t in tasks if "left out (" in t.name and "mean" not in t.name]
    assert len(majority) == 6  # CellBench, proteomics x 2, bone marrow, kidney, T-SCP
    lo, hi = rb.MAJORITY_SHARE
    for t in majority:
        assert t.truth["unknown"].between(lo, hi).all(), t.name
        assert t.truth["unknown"].nunique() > 1 or "wells" in t.name  # drawn per sample where simulated


@pytest.mark.shared_data
def test_damaged_bulk_differs_from_the_base(tasks):
    bases = {rb.split_name(t.name)[0]: t for t in tasks if rb.split_name(t.name)[1] == rb.BASE}
    for t in tasks:
        layer, what = rb.split_name(t.name)
        if what not in rb.DAMAGE:
            continue
        base = bases[layer]
        pd.testing.assert_frame_equal(t.truth, base.truth)
        if what.startswith("noise"):
            assert t.bulk.shape == base.bulk.shape
            ratio = np.asarray(t.bulk.X) / np.where(np.asarray(base.bulk.X) == 0, np.nan, np.asarray(base.bulk.X))
            assert np.nanmin(ratio) >= 0.9 - 1e-6 and np.nanmax(ratio) <= 1.1 + 1e-6
            assert not np.allclose(ratio[np.isfinite(ratio)], 1.0)
        else:
            assert t.bulk.n_vars == round(0.9 * base.bulk.n_vars)
            assert set(t.bulk.var_names) < set(base.bulk.var_names)


def test_builders_on_a_synthetic_layer():
    cells = synthetic_reference(n_labels=4, cells_per_label=40, n_features=60)
    half = np.arange(cells.n_obs) % 2 == 0
    ref, pool = cells[half].copy(), cells[~half].copy()
    truth = pd.DataFrame(
        np.random.default_rng(0).dirichlet(np.ones(4), 10) * [[4, 3, 2, 1]],
        columns=[f"type{k}" for k in range(4)],
    )
    truth = truth.div(truth.sum(axis=1), axis=0)
    bulk = pool[:10].copy()
    truth.index = bulk.obs_names
    base = Task("x", "x", ref, "cell_type", bulk, truth)
    layer = rb.Layer(
        "toy",
        base,
        pool=pool,
        simulate={"labels_key": "cell_type", "n_samples": 40, "cells_per_sample": 20, "scale": "linear"},
    )
    assert rb.by_abundance(truth)[0] == "type0"
    made = rb.layer_tasks(layer)
    names = [t.name for t in made]
    assert names[0] == "toy: full reference" and names[-2:] == ["toy: noise U(0.9, 1.1)", "toy: 10% features deleted"]
    loo, majority = made[1], made[2]
    assert _labels(loo) == {"type1", "type2", "type3"}
    np.testing.assert_allclose(loo.truth["unknown"], truth["type0"])
    assert _labels(majority) == set(majority.truth.columns) - {"unknown"} and len(_labels(majority)) == 2
    assert majority.truth["unknown"].between(*rb.MAJORITY_SHARE).all()
    assert len(made) == 5  # simulated layers: no second leave-one-out


def test_layers_env_restricts_the_suite(monkeypatch):
    monkeypatch.setattr(rb, "LAYERS", {"toy": lambda: []})
    monkeypatch.setenv(rb.LAYERS_ENV, "nope")
    with pytest.raises(ValueError, match="unknown layers"):
        rb.robustness()
    monkeypatch.setenv(rb.LAYERS_ENV, "toy")
    assert rb.robustness() == []


def test_tasks_env_restricts_the_suite_by_name(monkeypatch):
    cells = synthetic_reference(n_labels=3, cells_per_label=20, n_features=40)
    truth = pd.DataFrame(np.full((4, 3), 1 / 3), columns=["type0", "type1", "type2"], index=cells.obs_names[:4])
    base = Task("toy", "x", cells, "cell_type", cells[:4].copy(), truth)
    monkeypatch.setattr(rb, "LAYERS", {"toy": lambda: [rb.Layer("toy", base, real=True)]})
    monkeypatch.delenv(rb.LAYERS_ENV, raising=False)
    monkeypatch.setenv(rb.TASKS_ENV, "full reference|noise")
    assert [t.name for t in rb.robustness()] == ["toy: full reference", "toy: noise U(0.9, 1.1)"]


def _scores() -> pd.DataFrame:
    rows = []
    ccc = {
        ("L: full reference", "DECODE"): [0.90, 0.88, 0.86],
        ("L: full reference", "NNLS"): [0.70],
        ("L: full reference", "dtangle"): [0.80],
        ("L: A left out (mean 30%)", "DECODE"): [0.60, 0.62, 0.58],
        ("L: A left out (mean 30%)", "NNLS"): [0.65],
        ("L: A left out (mean 30%)", "dtangle"): [0.50],
        ("L: noise U(0.9, 1.1)", "DECODE"): [0.85, 0.86, 0.84],
        ("L: noise U(0.9, 1.1)", "NNLS"): [0.69],
        ("L: noise U(0.9, 1.1)", "dtangle"): [0.88],
    }
    for (task, method), values in ccc.items():
        for seed, v in enumerate(values):
            unknown = 0.1 + 0.01 * seed if method == "DECODE" and "left out" in task else np.nan
            rows.append(("robustness", task, method, seed, v, unknown, "abc1234def", "this checkout"))
    rows.append(("kidney", "replicate 1 held out", "DECODE", 0, 0.7, np.nan, "x", "y"))
    columns = ["scenario", "task", "method", "seed", "ccc", "unknown_rmse", "commit", "package_source"]
    return pd.DataFrame(rows, columns=columns)


def _row(lines: list[str], start: str) -> list[str]:
    return [c.strip() for c in next(line for line in lines if line.startswith(start)).strip("|").split("|")]


@pytest.fixture
def no_diagnoses(monkeypatch, tmp_path):
    """The tracked diagnosis tables made absent, so the section shows the suite's rows only."""
    from benchmarks import damage_oracle, excess_check, identifiability, unexplained_check, unknown_share

    monkeypatch.setattr(identifiability, "RESULTS", tmp_path / "identifiability.csv")
    monkeypatch.setattr(damage_oracle, "RESULTS", tmp_path / "damage_oracle.csv")
    monkeypatch.setattr(unexplained_check, "RESULTS", tmp_path / "unexplained_check.csv")
    monkeypatch.setattr(excess_check, "RESULTS", tmp_path / "excess_check.csv")
    monkeypatch.setattr(unknown_share, "RESULTS", tmp_path / "unknown_share.csv")
    return tmp_path


def test_report_lines_show_the_excess_check_of_the_suite_tasks(no_diagnoses):
    pd.DataFrame(
        {
            "scenario": ["robustness", "robustness", "cellmix"],
            "task": ["L: full reference", "L: A left out (mean 30%)", "cellmix1"],
            "truth_median": [0.0, 0.3, 0.0],
            "median": [0.002, 0.05, 0.0],
            "q10": [0.001, 0.02, 0.0],
            "q90": [0.003, 0.09, 0.0],
            "named": [0.0, 0.75, 0.0],
            "left_out_by_auto": [0, 21, 0],
            "median_after_auto": [float("nan"), 0.002, float("nan")],
            "pearson": [float("nan"), 0.69, float("nan")],
            "carriers": [float("nan"), "LYZ FGL2 MPEG1 TGFBI KIAA0930", float("nan")],
        }
    ).to_csv(no_diagnoses / "excess_check.csv", index=False)
    lines = rb.report_lines(_scores())
    assert "### What `tl.deconvolve`'s excess-share check names" in lines
    assert _row(lines, "| L: full reference | 0.00 | 0.002") == [
        "L: full reference", "0.00", "0.002 [0.001, 0.003]", "0%", "0", "-", "-", "-"
    ]  # fmt: skip
    assert _row(lines, "| L: A left out (mean 30%) | 0.30") == [
        "L: A left out (mean 30%)", "0.30", "0.050 [0.020, 0.090]", "75%", "21", "0.002", "+0.69",
        "LYZ, FGL2, MPEG1, TGFBI",
    ]  # fmt: skip
    assert not [line for line in lines if line.startswith("| cellmix1")]  # other scenarios: the method page


def test_report_lines_render_the_tables(no_diagnoses):
    lines = rb.report_lines(_scores())
    text = "\n".join(lines)
    assert "## Robustness" in text and "transductive" in text
    assert "DECODE seed 0 (3 tasks), seed 1 (3 tasks), seed 2 (3 tasks); NNLS seed 0 (3 tasks)" in text
    assert "Only seed 0" not in text
    base = _row(lines, "| L: full reference |")
    assert base[1] == "0.880 ± 0.020 (worst 0.860; 3)" and base[2] == "0.700 (1)" and base[4] == "best"
    left = _row(lines, "| L: A left out")
    assert left[4] == "**below NNLS**"
    assert left[5] == "0.110 ± 0.010 (worst 0.120; 3)"  # unknown RMSE: the worst seed is the largest
    assert left[6] == "-0.280"  # paired by seed against the full reference
    noise = _row(lines, "| L | noise U(0.9, 1.1) |")
    assert noise[2] == "0.850 (-0.030)" and noise[3] == "0.690 (-0.010)" and noise[4] == "0.880 (+0.080)"
    assert noise[5] == "**below dtangle**"
    assert "kidney" not in text


def test_report_lines_show_the_diagnoses_beside_decode(no_diagnoses):
    pd.DataFrame(
        {
            "task": ["L: A left out (mean 30%)"],
            "unknown_mean": [0.3],
            "unknown_sd": [0.2],
            "residual_oracle_rmse": [0.18],
            "ratio_q05_oracle_rmse": [0.15],
        }
    ).to_csv(no_diagnoses / "identifiability.csv", index=False)
    pd.DataFrame({"layer": ["L"], "damage": ["noise U(0.9, 1.1)"], "cost": [-0.05]}).to_csv(
        no_diagnoses / "damage_oracle.csv", index=False
    )
    lines = rb.report_lines(_scores())
    assert _row(lines, "| L: A left out (mean 30%) | 0.150") == [
        "L: A left out (mean 30%)",
        "0.150",  # the best of the readings
        "0.200",
        "0.110 ± 0.010 (worst 0.120; 3)",
    ]
    assert _row(lines, "| L | noise U(0.9, 1.1) | -0.050") == ["L", "noise U(0.9, 1.1)", "-0.050", "-0.030"]
    (no_diagnoses / "identifiability.csv").unlink()  # one table alone still comes under the section's heading
    text = "\n".join(rb.report_lines(_scores()))
    assert "### What the data allow" in text and "oracle's cost" in text and "oracle line RMSE" not in text


def test_report_lines_say_when_only_seed_0_ran_and_are_empty_without_rows(no_diagnoses):
    scores = _scores()
    assert "**Only seed 0 ran**" in "\n".join(rb.report_lines(scores[scores["seed"] == 0]))
    assert rb.report_lines(scores[scores["scenario"] != "robustness"]) == []


def test_the_anchored_leave_out_table_sits_beside_the_peers(tmp_path, monkeypatch):
    """The robustness section shows ``benchmarks.anchored_gains``'s leave-out cohorts (not its full-reference ones),
    DECODE's sources beside NNLS and dtangle scored on the same draws; nothing where that benchmark did not run."""
    from benchmarks import anchored_gains as ag

    cohort = next(iter(ag.LEAVE_OUT))
    rows = []
    for name, seed in ((cohort, 0), (cohort, 1), ("GSE107011", 0)):
        row = {"cohort": name, "seed": seed, "draw": 0, "n_measured": 5, "n_scored": 4}
        row |= {f"ccc_{s}": 0.3 + 0.1 * k + 0.01 * seed for k, s in enumerate(ag.SOURCES)}
        row |= {f"gap_{s}_A": 0.0 for s in ag.SOURCES}
        rows.append(row)
    results, peers = tmp_path / "r.csv", tmp_path / "p.csv"
    monkeypatch.setattr(ag, "RESULTS", results)
    monkeypatch.setattr(ag, "PEER_RESULTS", peers)
    assert rb._anchored_lines() == []
    pd.DataFrame(rows).to_csv(results, index=False)
    keys = pd.DataFrame(rows)[["cohort", "seed", "draw", "n_measured"]]
    keys.assign(ccc_NNLS=0.1, ccc_dtangle=0.6, gap_NNLS_A=0.0, gap_dtangle_A=0.0).to_csv(peers, index=False)
    lines = rb._anchored_lines()
    heads = ["DECODE, defaults", "DECODE, anchored on 5", "DECODE, gains from every sample's flow"]
    heads += ["DECODE, anchored on the cohort's mean", "DECODE, anchored on the other cohort's mean", "NNLS", "dtangle"]
    assert "| cohort | " + " | ".join(heads) + " |" in lines
    decode = "0.305 (0.300) | 0.405 (0.400) | 0.505 (0.500) | 0.605 (0.600) | 0.705 (0.700)"
    assert f"| {cohort} | {decode} | 0.100 (0.100) | 0.600 (0.600) |" in lines
    assert not any(line.startswith("| GSE107011 |") for line in lines)
