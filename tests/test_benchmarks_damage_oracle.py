"""The oracle reader of damaged measurements (``python -m benchmarks.damage_oracle``)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package sits at the repository root
from benchmarks import damage_oracle as oracle


def test_the_oracle_reads_clean_mixtures_and_loses_to_noise():
    rng = np.random.default_rng(0)
    profiles = rng.gamma(2.0, 1.0, (3, 30))
    truth = pd.DataFrame(rng.dirichlet(np.ones(3), 200), columns=["a", "b", "c"])
    clean = truth.to_numpy() @ profiles
    assert oracle.oracle_ccc(clean, truth) > 0.99
    noisy = clean * np.exp(rng.normal(0, 1.0, clean.shape))
    assert oracle.oracle_ccc(noisy, truth) < 0.9


def test_damage_costs_on_the_suite_layers(shared_data):
    table = oracle.damage_costs()
    assert len(table) == 5 * 2 and table["cost"].le(0.02).all()  # damage never helps the oracle beyond fold noise
    noise = table.set_index(["layer", "damage"])["cost"]
    assert noise[("bone marrow", "noise U(0.9, 1.1)")] < -0.05  # where the target (cost <= 0.03) is out of reach
