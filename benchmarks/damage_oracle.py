"""What a damaged measurement costs a reader that knows the truth (issue 20: the noise and missing-feature targets).

Issue 20 asks that multiplicative noise U(0.9, 1.1) per value cost at most 0.03 of pooled CCC, and 10 % of the
features deleted at most 0.05, on every layer. This asks how much of that cost the damage forces on any reader: an
*oracle* linear reader, a ridge regression from each sample's profile to its true fractions, fitted on the truth of
the very bulk it reads (5-fold cross-validated predictions, the penalty chosen within each fold), on the bulk as
stored and damaged exactly as the robustness suite damages it (``scenarios._perturb``, seed 0). It sees the damage in
its training data, which no deconvolution method does, so its cost is close to what the damage destroys for a linear
reader. Read from the composition and from the log composition (the better of the two counts); values read as stored
(proteomics) enter as stored.

Layers: those of the robustness suite with 100 samples or more (bone marrow, kidney replicate 1, T-SCP, the two
proteomics directions); the real PBMC cohorts (12 and 29 samples) and CellBench are too small to fit a reader on.
The truth is used to diagnose, never to fit anything in the package.

Run: ``python -m benchmarks.damage_oracle`` (a minute; writes ``benchmarks/results/damage_oracle.csv``).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold, cross_val_predict

from decode_omics.metrics import ccc

from ._tables import write_table
from .identifiability import _composition, _linear

RESULTS = Path(__file__).parent / "results" / "damage_oracle.csv"
#: Robustness-suite layers with enough samples to fit the reader on.
LAYER_KEYS = ("bone_marrow", "kidney", "tscp_states", "proteomics")
ALPHAS = np.logspace(-6, 3, 19)


def oracle_ccc(X: np.ndarray, truth: pd.DataFrame, seed: int = 0) -> float:
    """Pooled CCC of cross-validated ridge predictions of ``truth`` from ``X`` (samples x features)."""
    folds = KFold(5, shuffle=True, random_state=seed)
    predicted = cross_val_predict(RidgeCV(alphas=ALPHAS), X, truth.to_numpy(dtype=np.float64), cv=folds)
    return float(ccc(pd.DataFrame(predicted, index=truth.index, columns=truth.columns), truth))


def readings(bulk, scale: str) -> dict[str, np.ndarray]:
    """The views the reader is fitted on: composition and log composition, or the values as stored."""
    X = _linear(bulk, scale)
    if scale == "as_is":
        return {"as stored": X}
    comp = _composition(X)
    return {"composition": comp, "log composition": np.log(comp + 1e-6)}


def damage_costs() -> pd.DataFrame:
    """One row per layer and damage: the oracle's CCC on the bulk as stored and damaged, and the cost."""
    from . import robustness
    from .scenarios import _perturb

    rows = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The data's scale was guessed")
        for key in LAYER_KEYS:
            for layer in robustness.LAYERS[key]():
                base = layer.base
                whole = {k: oracle_ccc(v, base.truth) for k, v in readings(base.bulk, base.scale).items()}
                view = max(whole, key=whole.get)
                for how in robustness.DAMAGE:
                    damaged = readings(_perturb(base.bulk, how), base.scale)
                    hurt = {k: oracle_ccc(v, base.truth) for k, v in damaged.items()}
                    best = max(hurt, key=hurt.get)
                    rows.append(
                        {
                            "layer": layer.name,
                            "damage": how,
                            "n_samples": base.bulk.n_obs,
                            "n_features": base.bulk.n_vars,
                            "oracle_ccc_as_stored": whole[view],
                            "oracle_ccc_damaged": hurt[best],
                            "cost": hurt[best] - whole[view],
                            "reading": view if view == best else f"{view} / {best}",
                        }
                    )
    return pd.DataFrame(rows)


def main() -> None:
    write_table(damage_costs(), RESULTS)


if __name__ == "__main__":
    main()
