"""DeconV (PyPI ``deconv`` 0.9.5, Gynter et al., bioRxiv 10.1101/2023.12.07.570524) in its own venv.

As its README ("How to run?"): ``dv.DeconV(adata, bulk=bulk_df, cell_type_key=..., dropout_type="separate",
model_type="gamma", device="cpu", layer=None, top_n_variable_genes=10000)``, then
``fit_reference(num_epochs=2000, lr=0.1, lrd=0.999)`` and ``deconvolute(lr=0.1, lrd=0.999, num_epochs=1000)``, with
``adata`` the raw single-cell counts (cells x genes, ``obs["cell_type"]`` = the reference's labels) and ``bulk_df``
the bulk (samples x genes). Model: ``"gamma"`` (the README's choice and the ``DeconV`` class default: a per cell type
and gene Gamma-distributed rate, zero-inflated Poisson single-cell counts with a dropout gate per gene and cell type,
and a zero-inflated Poisson bulk; its CLI defaults to ``"nb"`` instead). DeconV normalises and log-transforms the
reference itself (``tl.scale_log_center``), picks the ``top_n_variable_genes`` most variable genes (scanpy's
``highly_variable_genes``; asked for more genes than shared, it keeps every gene with a finite dispersion), fits the
model to the raw counts and rounds the bulk to integers. The fractions are the means of the fitted per-sample
Dirichlet distributions (``decon.proportions``), put in the order of the reference's labels and renormalised to sum to
1 (they already do).

Settings reduced for runtime (measured here, pbmc_real, 2,140 cells, 8,281 shared genes, one thread, 2 shared
cores): the reference fit is full-batch (every cell, every gene, every step), ~5 s CPU (~11 s wall on the loaded
machine) per epoch with all genes, so the README's 2000 epochs would take ~3-6 hours per task. Here:
- ``top_n_variable_genes=2000`` instead of the README's 10,000 (which keeps all 8,281 here), the usual HVG count;
  ~1.1 s CPU (1.25-2 s wall) per reference epoch;
- ``fit_reference(num_epochs=400)`` instead of 2000 (the learning rate, 0.1 decaying by 0.999 per step, is unchanged):
  8.3 min on GSE107572; the reference loss per gene at epochs 1 / 50 / 100 / 200 / 300 / 400 was 1.82 / 0.617 / 0.556
  / 0.484 / 0.464 / 0.450, i.e. still falling ~3 % per 100 epochs (not fully converged; the log prints these);
- ``deconvolute(num_epochs=1000)`` as the README (~20 s).
``options`` ``n_genes`` / ``ref_epochs`` / ``dec_epochs`` / ``model`` override these (``{"n_genes": 10000,
"ref_epochs": 2000}`` = the README's settings).

Other deviations and fixes (none changes the model):
- the README's ``deconvolute(model_dropout=True, ...)`` is the API of 0.9.2; in 0.9.5 the bulk dropout is the
  constructor's ``model_bulk_dropout`` (default ``True``, as here) and ``deconvolute`` has no such argument;
- ``fit_reference(seed=seed)`` seeds pyro / torch / numpy / random (``pyro.util.set_rng_seed``); torch and numpy are
  seeded before too; ``deconvolute`` continues from that random state;
- CPU, ``torch.set_num_threads`` = ``OMP_NUM_THREADS`` (1 unless the caller sets more); no plots (DeconV's tqdm bar
  refreshes once per epoch in the log, ~0.1 MB per task);
- DeconV's metadata requires torchvision and torchaudio: torchvision 0.28.0 (built for torch 2.13.0, which it pins)
  and torchaudio 2.11.1 (the newest; requires torch >= 2.11) are installed; PyPI only has their CUDA builds, whose
  compiled extensions do not load next to the CPU torch, but DeconV (and pyro) never import either;
- as written in DeconV 0.9.5 (kept): the gamma deconvolution model passes the mixed dropout *probability* as
  ``gate_logits`` of the bulk's zero-inflated Poisson.

Tasks whose reference is not RNA-seq counts (``params["is_rna"]`` false: proteomics, metabolomics, log-scale or
already-normalised references such as scanpy's pbmc68k_reduced) exit 3 ("does not apply").

    python run_deconv.py EXCHANGE_FOLDER
"""

import os
import sys

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np
import pandas as pd
from _exchange import load, log, require_rna_counts, save, seed_everything

folder = sys.argv[1]
reference, labels, bulk, params = load(folder)
seed = int(params["seed"])
opts = params.get("options", {})
log(f"DeconV: reference {reference.shape}, bulk {bulk.shape}, seed {seed}")
require_rna_counts(params, "DeconV")

import anndata as ad  # noqa: E402
import deconv as dv  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1") or 1)))
seed_everything(seed)
torch.manual_seed(seed)

ref_epochs = int(opts.get("ref_epochs", 400))
dec_epochs = int(opts.get("dec_epochs", 1000))
n_genes = opts.get("n_genes", 2000)
model_type = str(opts.get("model", "gamma"))

adata = ad.AnnData(
    X=reference.to_numpy(dtype=np.float32),
    obs=pd.DataFrame({"cell_type": pd.Categorical(labels.to_numpy())}, index=reference.index),
    var=pd.DataFrame(index=reference.columns),
)
log(f"DeconV: model {model_type}, top_n_variable_genes {n_genes}, epochs {ref_epochs} + {dec_epochs}")

decon = dv.DeconV(
    adata,
    bulk=bulk.astype(np.float64),
    cell_type_key="cell_type",
    dropout_type="separate",
    model_type=model_type,
    device="cpu",
    layer=None,
    top_n_variable_genes=None if n_genes is None else int(n_genes),
    model_bulk_dropout=True,
)
log("DeconV: fitting the reference")
decon.fit_reference(num_epochs=ref_epochs, lr=0.1, lrd=0.999, seed=seed)
history = decon._ref_model.training_history
marks = sorted({min(e, len(history)) for e in (1, 50, 100, 200, 300, 400, 1000, 2000, len(history))})
log("DeconV: reference loss per gene at epoch " + ", ".join(f"{e}: {history[e - 1]:.4f}" for e in marks))
log("DeconV: deconvolving")
proportions = decon.deconvolute(lr=0.1, lrd=0.999, num_epochs=dec_epochs)

order = sorted(pd.unique(labels))
fractions = proportions.reindex(columns=order).fillna(0.0).clip(lower=0.0)
total = fractions.sum(axis=1).replace(0.0, 1.0)
fractions = fractions.div(total, axis=0)
fractions.index = fractions.index.astype(str)
save(folder, fractions.loc[bulk.index])
log("DeconV: done")
