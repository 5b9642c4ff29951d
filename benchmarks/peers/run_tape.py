"""TAPE (PyPI ``sctape`` 1.1.2, Chen et al. 2022) in its own venv.

As its README: ``Deconvolution(sc_ref, bulk, scaler="mms", datatype="counts", mode="overall", adaptive=True,
variance_threshold=0.98, batch_size=128, epochs=128, seed=seed)`` with ``sc_ref`` the raw single-cell matrix
(cells x genes, index = cell type) from which TAPE simulates its own 5,000 pseudo-bulks of 500 cells.

Fixes (FINDINGS §5), none of which changes what TAPE computes:
- its training loop logs ``F.l1_loss(...).cpu().detach().numpy()`` per batch; it is replaced by an identical loop that
  logs ``float(loss)`` (the original holds ~0.35 GB per epoch);
- ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` (set by the caller): TAPE pickles the whole model and reloads it, which
  torch >= 2.6 refuses by default;
- ``datatype="counts"``: the TPM/FPKM modes need a gene-length file;
- matplotlib runs headless (MPLBACKEND=Agg); TAPE writes ``model.pth`` into the working directory (the exchange folder).

    python run_tape.py EXCHANGE_FOLDER
"""

import os
import sys

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np
import pandas as pd
from _exchange import load, log, save, seed_everything

folder = sys.argv[1]
reference, labels, bulk, params = load(folder)
seed = int(params["seed"])
opts = params.get("options", {})
log(f"TAPE: reference {reference.shape}, bulk {bulk.shape}, seed {seed}")

import TAPE.train  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from TAPE import Deconvolution  # noqa: E402
from tqdm import tqdm  # noqa: E402


def training_stage(model, train_loader, optimizer, epochs=128):
    """TAPE.train.training_stage with the per-batch losses logged as floats."""
    model.train()
    model.state = "train"
    loss = []
    recon_loss = []
    for _epoch in tqdm(range(epochs), mininterval=30):
        for data, label in train_loader:
            optimizer.zero_grad()
            x_recon, cell_prop, _sigm = model(data)
            prop_loss = F.l1_loss(cell_prop, label)
            rec_loss = F.l1_loss(x_recon, data)
            batch_loss = prop_loss + rec_loss
            batch_loss.backward()
            optimizer.step()
            loss.append(float(prop_loss))
            recon_loss.append(float(rec_loss))
    return model, loss, recon_loss


TAPE.train.training_stage = training_stage
TAPE.train.showloss = lambda loss: None  # a matplotlib plot only

sc_ref = pd.DataFrame(reference.to_numpy(dtype=np.float32), index=labels.to_numpy(), columns=reference.columns)
seed_everything(seed)  # TAPE's simulation draws from the global numpy generator
torch.manual_seed(seed)
kwargs = dict(
    sep="\t",
    scaler="mms",
    datatype="counts",
    genelenfile=None,
    mode="overall",
    adaptive=True,
    variance_threshold=0.98,
    save_model_name=None,
    batch_size=128,
    epochs=int(opts.get("epochs", 128)),
    seed=seed,
)
sigm, pred = Deconvolution(sc_ref, bulk.astype(np.float64), **kwargs)
save(folder, pred.loc[bulk.index])
log("TAPE: done")
