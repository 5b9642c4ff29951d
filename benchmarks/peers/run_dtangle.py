"""dtangle (PyPI ``dtangle``, the Python port of Hunt et al. 2019) in its own venv.

Input as dtangle's documentation asks: log2 expression, here log2(1 + CPM) of every reference cell (the pure
samples, grouped by label) and every bulk sample, CPM over every feature measured, then the shared features;
``data_type="rna-seq"`` for RNA tasks (its published RNA-seq gamma), its defaults otherwise
(``marker_method="ratio"``, default ``n_markers``). The seed is unused (dtangle is deterministic).

dtangle models log-scale expression of non-negative abundances. Data with negative values (the proteomics
scenario's log-ratios / z-scores, read as stored) have no such scale: log2(1 + CPM) of them is undefined or
meaningless (dtangle returned all-zero fractions on them), so the runner exits 3, which the benchmark reports as
"does not apply", like the other peers that refuse such input.

    python run_dtangle.py EXCHANGE_FOLDER
"""

import sys

import numpy as np
from _exchange import DOES_NOT_APPLY, cpm, load, log, save
from anndata import AnnData

folder = sys.argv[1]
reference, labels, bulk, params = load(folder)
log(f"dtangle: reference {reference.shape}, bulk {bulk.shape}")
opts = params.get("options", {})
if (reference.to_numpy() < 0).any() or (bulk.to_numpy() < 0).any():
    log("dtangle: the data hold negative values (not linear abundances); dtangle does not apply")
    print("dtangle needs non-negative linear data to take log2(1 + CPM) of (negative values found)", flush=True)
    sys.exit(DOES_NOT_APPLY)
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
