"""Scaden (PyPI ``scaden`` 1.1.2, Menden et al. 2020) in its own venv, through its own classes.

The steps of its documented CLI workflow, with its CLI defaults:
``scaden simulate --cells 100 --n_samples 1000`` (its ``BulkSimulator``: 1000 normal + 1000 sparse pseudo-bulks of
100 cells from the raw reference counts), ``scaden process --var_cutoff 0.1`` (genes with bulk variance > 0.1 shared
with the reference; log2(x+1) then per-sample min-max), ``scaden train --steps 5000 --batch_size 128
--learning_rate 0.0001 --seed SEED`` for each ensemble member, ``scaden predict`` = the mean of the members'
predictions. Members: option ``members`` (default all three, m256 / m512 / m1024, ~15 / 30 / 60 min each here;
the benchmark's quick setting trains m256 only).

Fix (FINDINGS §5): each member is trained with scaden's own ``Scaden`` class, and predictions are made in memory with
its own ``load_prediction_file`` + ``model.predict``: saving the model to disk fails under newer Keras, and the
ensemble's mean is all ``scaden predict`` does with the reloaded models.

    python run_scaden.py EXCHANGE_FOLDER
"""

import os
import sys

import numpy as np
import pandas as pd
from _exchange import load, log, save, seed_everything

folder = sys.argv[1]
reference, labels, bulk, params = load(folder)
seed = int(params["seed"])
opts = params.get("options", {})
members = opts.get("members", ["m256", "m512", "m1024"])
log(f"Scaden: reference {reference.shape}, bulk {bulk.shape}, seed {seed}, members {members}")

import anndata as ad  # noqa: E402
import tensorflow as tf  # noqa: E402
from scaden.model.architectures import architectures  # noqa: E402
from scaden.model.scaden import Scaden  # noqa: E402
from scaden.process import processing  # noqa: E402
from scaden.simulation import BulkSimulator  # noqa: E402
from scipy import sparse  # noqa: E402

n_threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
tf.config.threading.set_intra_op_parallelism_threads(n_threads)
tf.config.threading.set_inter_op_parallelism_threads(n_threads)

work = os.path.join(folder, "scaden")
data_dir = os.path.join(work, "data")
os.makedirs(data_dir, exist_ok=True)
ref = ad.AnnData(sparse.csr_matrix(reference.to_numpy(dtype=np.float32)))
ref.obs_names = reference.index
ref.var_names = reference.columns
ref.obs["Celltype"] = labels.to_numpy()
ref.write_h5ad(os.path.join(data_dir, "reference_counts.h5ad"))
bulk_file = os.path.join(work, "bulk.txt")
bulk.T.to_csv(bulk_file, sep="\t")  # genes x samples, as scaden expects

# scaden simulate (CLI defaults)
seed_everything(seed)
log("Scaden: simulate")
sim = BulkSimulator(
    sample_size=int(opts.get("cells", 100)),
    num_samples=int(opts.get("n_samples", 1000)),
    data_path=data_dir,
    out_dir=work,
    pattern="*_counts.h5ad",
    unknown_celltypes=["unknown"],
    fmt="h5ad",
)
sim.simulate()
sim.merge_datasets(data_dir=work, files=sim.dataset_files, out_name=os.path.join(work, "data.h5ad"))
# scaden process
log("Scaden: process")
processed = os.path.join(work, "processed.h5ad")
processing(data_path=bulk_file, training_data=os.path.join(work, "data.h5ad"), processed_path=processed, var_cutoff=0.1)

predictions = []
for name in members:
    hidden, dropout = architectures[name]
    log(f"Scaden: train {name}")
    model = Scaden(
        model_dir=os.path.join(work, "model", name),
        model_name=name,
        batch_size=128,
        learning_rate=0.0001,
        num_steps=int(opts.get("steps", 5000)),
        seed=seed,
        hidden_units=hidden,
        do_rates=dropout,
    )
    try:
        model.train(input_path=processed, train_datasets=[])
    except Exception as err:  # saving fails under Keras 3; the trained model is in memory
        log(f"Scaden: {name} not saved ({type(err).__name__}: {str(err)[:200]}); predicting in memory")
    if getattr(model, "model", None) is None or model.labels is None:
        raise RuntimeError(f"Scaden {name} did not train")
    samples = model.load_prediction_file(bulk_file, model.sig_genes, model.labels, scaling=model.scaling)
    pred = model.model.predict(model.data, verbose=0)
    predictions.append(pd.DataFrame(pred, columns=model.labels, index=samples))
    del model
    tf.keras.backend.clear_session()

fractions = sum(p[predictions[0].columns] for p in predictions) / len(predictions)
fractions.index = fractions.index.astype(str)
save(folder, fractions.loc[bulk.index])
log("Scaden: done")
