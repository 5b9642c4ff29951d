"""dtangle (PyPI ``dtangle``, the Python port of Hunt et al. 2019) in its own venv.

Input as dtangle's documentation asks: log2 expression, here log2(1 + CPM) of every reference cell (the pure
samples, grouped by label) and every bulk sample, CPM over every feature measured, then the shared features;
``data_type="rna-seq"`` for RNA tasks (its published RNA-seq gamma), its defaults otherwise
(``marker_method="ratio"``, default ``n_markers``). The seed is unused (dtangle is deterministic).

    python run_dtangle.py EXCHANGE_FOLDER
"""

import sys

import numpy as np
from _exchange import cpm, load, log, save
from anndata import AnnData

folder = sys.argv[1]
reference, labels, bulk, params = load(folder)
log(f"dtangle: reference {reference.shape}, bulk {bulk.shape}")
opts = params.get("options", {})
ref = AnnData(np.log2(1 + cpm(reference.to_numpy(), params["reference_libsize"])))
ref.obs_names = reference.index
ref.var_names = reference.columns
ref.obs["label"] = labels.to_numpy()
mix = AnnData(np.log2(1 + cpm(bulk.to_numpy(), params["bulk_libsize"])))
mix.obs_names = bulk.index
mix.var_names = bulk.columns

import dtangle  # noqa: E402

# dtangle's data_type picks its gamma: "rna-seq" for RNA-seq data (as its documentation says); other omics have no
# published gamma, so dtangle's fallback gamma = 1 is used.
data_type = opts.get("data_type", "rna-seq" if params.get("is_rna") else None)
log(f"dtangle: data_type={data_type}")
kwargs = {"data_type": data_type} if data_type else {}
dtangle.deconvolut(mix, ref, "label", **kwargs)
save(folder, mix.obsm["dtangle"])
log("dtangle: done")
