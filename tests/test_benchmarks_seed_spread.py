"""The seed-spread benchmark: its readings are the package's, and its spread statistics mean what they say."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from conftest import reference_and_bulk

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package sits at the repository root
from benchmarks.scenarios import Task
from benchmarks.seed_spread import fraction_sd, markdown, merge_summaries, run_task, shared_part, summarise, table

FAST = {"max_epochs": 4, "n_pseudotissues": 256, "early_stopping": False}


def test_the_members_read_through_the_shared_gains_average_to_the_ensembles_estimate():
    ref, bulk = reference_and_bulk()
    truth = bulk.obsm["fractions"]
    task = Task("synthetic", "halves", ref, "cell_type", bulk, truth)
    runs = [run_task(task, seed, n_members=2, **FAST) for seed in (0, 1)]
    for r in runs:
        assert r["own_gains"].shape == (2, *truth.shape) and r["one"].shape == truth.shape
        np.testing.assert_allclose(r["shared_gains"].mean(axis=0), r["ensemble"], atol=1e-5)
        assert not np.allclose(r["own_gains"], r["shared_gains"])  # own gains differ from the shared ones
    assert not np.allclose(runs[0]["one"], runs[1]["one"])  # the seed moves one network
    row = summarise({("synthetic", "halves", 2, "own"): runs}).iloc[0]
    assert row["seeds"] == 2 and row["members"] == 2 and row["member_data"] == "own"
    assert 0 < row["fraction_sd_ensemble"] and 0 < row["fraction_sd_one"]
    shown = table(pd.DataFrame([row]))
    assert "±" in shown.iloc[0]["CCC ensemble"] and shown.iloc[0]["task"] == "synthetic: halves"
    one, ensemble = row["seconds_one"], row["seconds_ensemble"]
    assert shown.iloc[0]["seconds, one network / ensemble (ratio)"].endswith(f"({ensemble / one:.1f}x)")
    lines = markdown(shown).splitlines()
    assert len(lines) == 3 and lines[1].count("---") == shown.shape[1]


def test_shared_part_is_zero_for_independent_members_and_one_for_identical_ones():
    rng = np.random.default_rng(0)
    common = rng.normal(size=(40, 1, 30, 4))  # seeds x 1 x samples x labels
    independent = common * 0 + rng.normal(size=(40, 4, 30, 4))
    assert abs(shared_part(independent)) < 0.1
    assert np.isclose(shared_part(np.repeat(common, 4, axis=1)), 1.0)
    half = common + rng.normal(size=(40, 4, 30, 4))  # as much shared as each member's own
    assert abs(shared_part(half) - 0.5) < 0.1
    # averaging 4 independent members halves the sd of each value over seeds
    assert abs(fraction_sd(independent.mean(axis=1)) / fraction_sd(independent[:, 0]) - 0.5) < 0.06


def test_an_ensemble_saved_by_the_uncertainty_benchmark_is_read_as_trained_and_not_trained_again(tmp_path, monkeypatch):
    import json

    from benchmarks import seed_spread, uncertainty

    ref, bulk = reference_and_bulk()
    task = Task("synthetic", "halves", ref, "cell_type", bulk, bulk.obsm["fractions"])
    monkeypatch.setattr(uncertainty, "CACHE", tmp_path)
    monkeypatch.setattr(uncertainty, "MODELS", tmp_path / "models")
    assert seed_spread.saved_ensemble(task, 0, 2) is None  # nothing saved

    trained = seed_spread._train(task, 0, 2, **FAST)
    trained.save(uncertainty.model_dir("synthetic", 0, 2, "halves"))
    rows = tmp_path / "synthetic__0__m2.json"
    rows.write_text(json.dumps([{"task": "halves", "seconds": 12.5, "member_data": "shared"}]))
    assert seed_spread.saved_ensemble(task, 0, 2) is None  # a row of the members from before is not the package's
    rows.write_text(json.dumps([{"task": "halves", "seconds": 12.5, "member_data": seed_spread.MEMBER_DATA}]))
    saved = seed_spread.saved_ensemble(task, 0, 2)
    assert saved is not None and saved[1] == 12.5

    one = (np.zeros(task.truth.shape), 3.0)
    arrays = run_task(task, 0, 2, one=one, ensemble=saved)
    assert arrays["seconds"].tolist() == [3.0, 12.5]  # neither was trained: both times are the ones given
    expected = trained.get_fractions()[list(task.truth.columns)].to_numpy()
    np.testing.assert_allclose(arrays["ensemble"], expected, atol=1e-6)
    np.testing.assert_allclose(arrays["shared_gains"].mean(axis=0), arrays["ensemble"], atol=1e-5)


def test_report_replaces_the_rows_it_has_jobs_for_and_keeps_the_others():
    """A cache holding some tasks' jobs must not drop the stored rows of the others (the page reads them all)."""
    stored = pd.DataFrame(
        {
            "scenario": ["a", "a", "b"],
            "task": ["t1", "t1", "t2"],
            "members": [4, 4, 4],
            "member_data": ["own", "own-draws", "own-draws"],
            "ccc_one_mean": [0.1, 0.2, 0.3],
        }
    )
    new = pd.DataFrame(
        {
            "scenario": ["a", "c"],
            "task": ["t1", "t3"],
            "members": [4, 4],
            "member_data": ["own-draws", "own-draws"],
            "ccc_one_mean": [0.9, 0.5],
        }
    )
    merged = merge_summaries(new, stored)
    assert merged["ccc_one_mean"].tolist() == [0.1, 0.9, 0.3, 0.5]  # replaced in place, others kept, new appended
    assert merged["member_data"].tolist() == ["own", "own-draws", "own-draws", "own-draws"]
    assert merge_summaries(new.iloc[:0], stored).equals(stored)
