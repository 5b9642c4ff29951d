"""The Dask recipe of docs/scaling.md, run exactly as written there (two local worker processes)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import reference_and_bulk

DOC = Path(__file__).resolve().parents[1] / "docs" / "scaling.md"


def _recipe() -> str:
    text = DOC.read_text()
    match = re.search(r"<!-- dask-recipe -->\s*```python\n(.*?)```", text, re.S)
    assert match, "docs/scaling.md lost its <!-- dask-recipe --> code block"
    return match.group(1)


@pytest.mark.slow
def test_dask_recipe_fans_a_saved_model_over_files(tmp_path):
    pytest.importorskip("distributed")
    import scvi

    from decode_omics.model import DECODE

    ref, bulk = reference_and_bulk(seed=2, n_samples=12)
    scvi.settings.seed = 0
    DECODE.setup_anndata(ref, labels_key="cell_type")
    model = DECODE(ref, n_hidden=32, n_latent=8)
    model.train(max_epochs=2, n_pseudotissues=128, enable_progress_bar=False)
    model.save(tmp_path / "model")
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    for i, part in enumerate((bulk[:5], bulk[5:])):
        part.copy().write_h5ad(cohort / f"part{i}.h5ad")
    namespace = {"__name__": "__main__", "COHORT_DIR": str(cohort), "MODEL_DIR": str(tmp_path / "model")}
    exec(compile(_recipe(), str(DOC), "exec"), namespace)
    assert namespace["counts"] == [5, 7]
    got = pd.concat(pd.read_csv(cohort / f"part{i}.fractions.csv", index_col=0) for i in range(2))
    expected = model.get_fractions(bulk)
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), atol=1e-5)
    assert list(got.index) == list(bulk.obs_names)
