"""Rectangle (PyPI ``rectanglepy`` 1.7.0, Hirsch et al. 2024) in its own venv (optional peer).

As its README: ``rectangle(adata, bulks, cell_type_col)`` with the raw single-cell counts and the bulk in TPM (here
CPM over every feature measured: no gene lengths are available), its defaults otherwise (cut-off optimisation, mRNA
bias and unknown-content correction; one CPU). Its ``Unknown`` column is returned as ``unknown``.

    python run_rectanglepy.py EXCHANGE_FOLDER
"""

import sys

import numpy as np
import pandas as pd
from _exchange import cpm, load, log, save, seed_everything

folder = sys.argv[1]
reference, labels, bulk, params = load(folder)
seed_everything(int(params["seed"]))
log(f"rectanglepy: reference {reference.shape}, bulk {bulk.shape}")

from anndata import AnnData  # noqa: E402
from rectanglepy import rectangle  # noqa: E402

adata = AnnData(reference.to_numpy(dtype=np.float32))
adata.obs_names = reference.index
adata.var_names = reference.columns
adata.obs["cell_type"] = pd.Categorical(labels.to_numpy())
bulks = pd.DataFrame(cpm(bulk.to_numpy(), params["bulk_libsize"]), index=bulk.index, columns=bulk.columns)
estimations, _ = rectangle(adata, bulks, "cell_type", n_cpus=1)
save(folder, estimations.rename(columns={"Unknown": "unknown"}).loc[bulk.index])
log("rectanglepy: done")
