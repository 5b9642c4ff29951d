"""The DECODE authors' research code (forceworker/DECODE @ a88c9d1) in its own venv.

Drives the steps of its ``train_lung_rna.ipynb`` (the RNA notebook: stages 1-4 with the stage-2 DANN), with the
notebook's settings: ``data_process(sample_size=30, train_sample_num=6000, num_artificial_cells=30)``, the first
1,000 training mixtures held out as ``valid``, ``DANN(200 epochs, batch 50, lr 1e-4, patience 3)``,
``MBdeconv(w=256, h=10, 200 epochs, Alpha=Beta=1, batch 64, patience 10)`` with the stage-2 encoder loaded, and
``predict(..., if_pure=True)``. Source: $PEER_SOURCE_DIR (``.cuda()`` removed by patches/decode_research.sh).

Where the research code has no path for a real bulk (DECODE-REFERENCE.md §6), the runner does what its code implies:
- the bulk samples get the code's own per-sample divide-by-max (``data_process.normalize``) after NaN/negatives -> 0,
  and are the DANN's target domain (the notebook used the simulated test mixtures, which have no real counterpart);
- stage 3's early stopping uses the ``valid`` mixtures (the notebook used the test set's labels, which a real bulk
  does not have; its bone-marrow notebook does the same);
- ``data_process.fit`` is not called (it caches to ``data/<tissue>/*.pkl`` and simulates test mixtures this task has no
  cells for); its steps for the training side are called in the same order instead;
- checkpoints are loaded with ``map_location="cpu"``; numpy, torch and ``random`` are seeded with the benchmark's seed
  (the notebook used 2021; ``DANN()`` re-seeds torch with 2021 itself, as in the notebook).

    python run_decode_research.py EXCHANGE_FOLDER
"""

import copy
import os
import random
import sys

import numpy as np
import pandas as pd
from _exchange import load, log, save, seed_everything

folder = sys.argv[1]
reference, labels, bulk, params = load(folder)
seed = int(params["seed"])
opts = params.get("options", {})
src = os.environ["PEER_SOURCE_DIR"]
log(f"DECODE research: reference {reference.shape}, bulk {bulk.shape}, seed {seed}, source {src}")

import anndata as ad  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

sys.path.insert(0, src)
from data.data_process import data_process  # noqa: E402
from model.deconv_model_with_stage_2 import MBdeconv  # noqa: E402
from model.stage2 import DANN  # noqa: E402
from model.utils import TestCustomDataset, TrainCustomDataset, data2h5ad, predict  # noqa: E402

os.chdir(folder)  # MBdeconv saves its checkpoints to ./save_models/<F>/
seed_everything(seed)
random.seed(seed)
torch.manual_seed(seed)

type_list = sorted(labels.unique())
K = len(type_list)
train_data = ad.AnnData(reference.to_numpy(dtype=np.float32))
train_data.var_names = reference.columns
train_data.obs["CellType"] = labels.to_numpy()
train_data.obs.reset_index(drop=True, inplace=True)

n_train = int(opts.get("train_sample_num", 6000))
valid_size = int(opts.get("valid_size", 1000))
dp = data_process(
    type_list,
    tissue_name="benchmark",
    train_sample_num=n_train,
    test_sample_num=1000,
    sample_size=30,
    num_artificial_cells=30,
)
log("DECODE research: stage 1 (pseudo-tissues)")
artificial_cells = dp.build_artificial_cell(train_data, dp.num_artificial_cells)
train_x_sim, train_y = dp.build_pseudo_bulk_no_noise(train_data, "train")
train_with_noise_1 = dp.build_train_pseudo_bulk_with_noise(train_x_sim, noise=artificial_cells, noise_limit=0.1)
train_with_noise_2 = dp.build_train_pseudo_bulk_with_noise(train_x_sim, noise=artificial_cells, noise_limit=0.1)
train_x_sim = dp.normalize(train_x_sim)
train_with_noise_1 = dp.normalize(train_with_noise_1)
train_with_noise_2 = dp.normalize(train_with_noise_2)

bulk_x = np.nan_to_num(bulk.to_numpy(dtype=np.float64))
bulk_x[bulk_x < 0] = 0
bulk_sim = dp.normalize([pd.Series(row) for row in bulk_x])
bulk_y = [[1.0 / K] * K for _ in range(len(bulk_sim))]  # dummy labels: predict() requires some

valid_x_sim, valid_y = train_x_sim[:valid_size], train_y[:valid_size]
train_x_sim, train_y = train_x_sim[valid_size:], train_y[valid_size:]
train_with_noise_1, train_with_noise_2 = train_with_noise_1[valid_size:], train_with_noise_2[valid_size:]

bulk_dataloader = DataLoader(TestCustomDataset(bulk_sim, bulk_y), batch_size=64, shuffle=False)
valid_dataloader = DataLoader(TestCustomDataset(valid_x_sim, valid_y), batch_size=64, shuffle=False)
train_dataloader = DataLoader(
    TrainCustomDataset(train_x_sim, train_with_noise_1, train_with_noise_2, train_y), batch_size=64, shuffle=True
)
source_data = data2h5ad(train_x_sim, train_y, type_list)
target_data = data2h5ad(bulk_sim, bulk_y, type_list)
valid_data = data2h5ad(valid_x_sim, valid_y, type_list)

num_feat = reference.shape[1]
feat_map_w, feat_map_h = 256, 10
epoches = int(opts.get("epochs", 200))
patience = 10
Alpha = Beta = 1

log("DECODE research: stage 2 (DANN)")
model_da = DANN(epoches, 50, 0.0001)
_, _, _, best_model_weights = model_da.train(source_data, target_data, valid_data, patience=3)

log("DECODE research: stage 3 (MBdeconv)")
model = MBdeconv(num_feat, feat_map_w, feat_map_h, K, epoches, Alpha, Beta, train_dataloader, valid_dataloader)
model_da.encoder_da.load_state_dict(best_model_weights["encoder"])
model.encoder.load_state_dict(copy.deepcopy(model_da.encoder_da.state_dict()))
model.train_model("benchmark", True, patience)

log("DECODE research: stage 4 (inference, pure branch)")
model_test = MBdeconv(num_feat, feat_map_w, feat_map_h, K, epoches, Alpha, Beta, train_dataloader, valid_dataloader)
model_test.load_state_dict(torch.load(f"save_models/{num_feat}/benchmark.pt", map_location="cpu"))
model_test.eval()
_, _, _, pred, _ = predict(bulk_dataloader, type_list, model_test, True)
pred.index = bulk.index
save(folder, pred)
log("DECODE research: done")
