"""RNA-Sieve (PyPI ``rnasieve`` 0.1.4, Erdmann-Pham et al. 2021) in its own venv.

As its example notebook: ``model_from_raw_counts({label: genes x cells raw counts}, bulks genes x samples)`` (its own
trimming, CPM normalisation of the reference and low-information gene filter), then ``model.predict(psis)`` on all
bulk samples jointly. Deterministic (the seed is set but unused).

    python run_rnasieve.py EXCHANGE_FOLDER
"""

import sys

import numpy as np
import pandas as pd
from _exchange import load, log, save, seed_everything

folder = sys.argv[1]
reference, labels, bulk, params = load(folder)
seed_everything(params["seed"])
log(f"RNA-Sieve: reference {reference.shape}, bulk {bulk.shape}")

from rnasieve.preprocessing import model_from_raw_counts  # noqa: E402

X = reference.to_numpy(dtype=np.float64)
raw_counts = {label: X[(labels == label).to_numpy()].T for label in sorted(labels.unique())}
bulks = bulk.to_numpy(dtype=np.float64).T
model, psis = model_from_raw_counts(raw_counts, bulks)
log(f"RNA-Sieve: {psis.shape[0]} genes kept")
alpha = model.predict(psis)  # rows 'Bulk i' in the order of the bulk columns
fractions = pd.DataFrame(alpha.to_numpy(), index=bulk.index, columns=alpha.columns)
save(folder, fractions)
log("RNA-Sieve: done")
