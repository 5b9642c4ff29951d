"""The identifiability diagnosis of missing material (``python -m benchmarks.identifiability``)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package sits at the repository root
from benchmarks import identifiability as ident


def _cells(profiles: np.ndarray, labels: list[str], per_label: int = 20) -> AnnData:
    X = np.repeat(profiles, per_label, axis=0)
    obs = pd.DataFrame({"label": np.repeat(labels, per_label)}, index=[f"c{i}" for i in range(len(X))])
    return AnnData(X, obs=obs, var=pd.DataFrame(index=[f"f{j}" for j in range(profiles.shape[1])]))


def _task(missing: np.ndarray):
    rng = np.random.default_rng(0)
    known = rng.gamma(2.0, 50.0, (3, 40)) + 1.0
    reference = _cells(known, ["a", "b", "c"])
    fractions = rng.dirichlet(np.ones(4), 60)  # the last column is the missing material
    bulk = AnnData(fractions @ np.vstack([known, missing]), var=reference.var.copy())
    truth = pd.DataFrame(fractions[:, :3], columns=["a", "b", "c"]).assign(unknown=fractions[:, 3])
    return reference, _cells(missing[None], ["new"]), bulk, truth, known


def test_a_new_profile_is_seen_and_a_mix_of_known_ones_is_not():
    rng = np.random.default_rng(1)
    reference, cells, bulk, truth, _ = _task(rng.gamma(2.0, 50.0, 40) * (rng.random(40) < 0.3) + 1.0)
    row = ident.diagnose_task("new type", reference, "label", cells, bulk, truth, scale="linear")
    assert row["missing_profile_residual"] > 0.3
    assert row["residual_r"] > 0.8 and row["residual_oracle_rmse"] < row["unknown_sd"] / 2
    assert row["rmse_missing_profile_given"] < 1e-6  # noiseless mixtures of the given profiles
    np.testing.assert_allclose(row["rmse_reporting_zero"], np.sqrt(np.mean(truth["unknown"] ** 2)))

    _, _, _, _, known = _task(np.ones(40))
    reference, cells, bulk, truth, _ = _task(0.5 * known[0] + 0.5 * known[2])
    row = ident.diagnose_task("mix of known", reference, "label", cells, bulk, truth, scale="linear")
    assert row["missing_profile_residual"] < 1e-6 and row["residual_oracle_rmse"] > 0.9 * row["unknown_sd"]


def test_diagnosis_on_the_same_platform_tasks(shared_data):
    table = ident.diagnose()
    assert len(table) == 9 and table["task"].eq("bone marrow + HSC").any()
    linear = table[table["unknown_mean"].notna()]
    assert len(linear) == 7 and linear.filter(like="_r").abs().le(1).all().all()
    assert (linear["rmse_reporting_zero"] >= linear["unknown_sd"]).all()
    # values read as stored are centred over every cell: a left-out line is a negative mix of the others
    stored = table[table["unknown_mean"].isna()]
    assert (stored["missing_profile_span_residual"] < 0.01).all() and (stored["missing_profile_residual"] > 0.99).all()
