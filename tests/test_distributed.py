"""Data-parallel training (``strategy="ddp"``) with two CPU processes (gloo), run as a script as Lightning requires."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, {tests!r})
    import scvi
    from conftest import reference_and_bulk
    import decode_omics as dco
    from decode_omics.model import DECODE

    devices, out = int(sys.argv[1]), sys.argv[2]
    ref, bulk = reference_and_bulk(seed=0)
    scvi.settings.seed = 0
    DECODE.setup_anndata(ref, labels_key="cell_type")
    DECODE.setup_anndata(bulk)
    model = DECODE(ref, bulk, n_hidden=64, n_latent=16)
    extra = {{"strategy": "ddp", "devices": devices}} if devices > 1 else {{"devices": 1}}
    model.train(max_epochs=10, n_pseudotissues=1024, accelerator="cpu", enable_progress_bar=False,
                early_stopping=False, **extra)
    f = model.get_fractions()
    rank = int(os.environ.get("LOCAL_RANK", 0))
    result = {{"ccc": dco.metrics.ccc(f, bulk.obsm["fractions"]), "fractions": f.to_numpy().tolist(),
               "steps": int(model.trainer.global_step)}}
    with open(f"{{out}}.{{rank}}.json", "w") as fh:
        json.dump(result, fh)
    """
)


def _run(tmp_path: Path, devices: int, name: str = "") -> list[dict]:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent)))
    out = tmp_path / f"run{devices}{name}"
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, str(script), str(devices), str(out)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(Path(f"{out}.{rank}.json").read_text()) for rank in range(devices)]


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
    import numpy as np

    (one,) = _run(tmp_path, 1)
    rank0, rank1 = _run(tmp_path, 2)
    again, _ = _run(tmp_path, 2, "again")
    # reproducible for a given number of processes
    np.testing.assert_allclose(again["fractions"], rank0["fractions"], atol=1e-6)
    # the replicas hold the same weights, and the global batch and step count equal one process's
    np.testing.assert_allclose(rank0["fractions"], rank1["fractions"], atol=1e-6)
    assert rank0["steps"] == one["steps"]
    assert rank0["ccc"] > 0.9 and abs(rank0["ccc"] - one["ccc"]) < 0.03
    # run logs go to a temporary folder, never the working directory (Lightning's default under DDP)
    assert not (tmp_path / "lightning_logs").exists()
