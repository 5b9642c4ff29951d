"""scpDeconv (Wang et al. 2023, TencentAILabHealthcare/scpDeconv @ 0523353) in its own venv.

Runs its four stages as its ``main.py`` does, with the options its README gives as defaults
(``ref_sample_num=4000, sample_size=15, HVP_num=500, target_type="real", batch_size=50, epochs=30,
learning_rate=1e-4``): the single-cell reference as an h5ad (labels in ``obs``), the bulk as the "real" target csv.
scpDeconv min-max scales every pseudo-bulk and target sample itself. Source: $PEER_SOURCE_DIR (setup.sh copies
and patches it: no ``.cuda()``, no loss plots). Seeds: numpy and torch are seeded with the benchmark's seed after
each stage's constructor (which hard-codes 2021); PYTHONHASHSEED=0 is set by the caller (features pass through a set).

    python run_scpdeconv.py EXCHANGE_FOLDER
"""

import os
import sys

import numpy as np
from _exchange import load, log, save, seed_everything

folder = sys.argv[1]
reference, labels, bulk, params = load(folder)
seed = int(params["seed"])
opts = params.get("options", {})
src = os.environ["PEER_SOURCE_DIR"]
log(f"scpDeconv: reference {reference.shape}, bulk {bulk.shape}, seed {seed}, source {src}")
if os.environ.get("PYTHONHASHSEED") != "0":
    log("scpDeconv: warning: PYTHONHASHSEED is not 0; its feature order (a set) is not reproducible")

import anndata as ad  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, src)
from model.AEimpute_model import AEimpute  # noqa: E402
from model.DANN_model import DANN  # noqa: E402
from model.refer_mixup import ReferMixup  # noqa: E402

data_dir = os.path.join(folder, "scpdeconv_data")
os.makedirs(data_dir, exist_ok=True)
ref = ad.AnnData(reference.to_numpy(dtype=np.float32))
ref.obs_names = reference.index
ref.var_names = reference.columns
ref.obs["CellType"] = labels.to_numpy()
ref.write_h5ad(os.path.join(data_dir, "reference.h5ad"))
bulk.to_csv(os.path.join(data_dir, "target.csv"))

opt = {
    "data_dir": data_dir,
    "ref_dataset_name": "reference.h5ad",
    "ref_metadata_name": None,
    "target_dataset_name": "target.csv",
    "target_metadata_name": None,
    "random_type": "CellType",
    "type_list": sorted(labels.unique()),
    "ref_sample_num": int(opts.get("ref_sample_num", 4000)),
    "sample_size": int(opts.get("sample_size", 15)),
    "HVP_num": int(opts.get("HVP_num", 500)),
    "target_type": "real",
    "target_sample_num": 1000,
    "batch_size": 50,
    "epochs": int(opts.get("epochs", 30)),
    "learning_rate": 0.0001,
    "SaveResultsDir": os.path.join(folder, "scpdeconv_results"),
}


def reseed():
    seed_everything(seed)
    torch.manual_seed(seed)


reseed()
log("scpDeconv: stage 1 (mixup)")
source_data, target_data = ReferMixup(opt).mixup()
log(f"scpDeconv: source {source_data.shape}, target {target_data.shape}")
model_im = AEimpute(opt)
reseed()
log("scpDeconv: stage 2 (AE impute)")
source_recon_data = model_im.train(source_data, target_data)
model_da = DANN(opt)
reseed()
log("scpDeconv: stage 3 (DANN)")
model_da.train(source_recon_data, target_data)
log("scpDeconv: stage 4 (inference)")
preds, _ = model_da.prediction()
preds.index = bulk.index  # the target loader keeps the csv's row order
save(folder, preds)
log("scpDeconv: done")
