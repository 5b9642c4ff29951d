from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from scipy import sparse

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The public data folder (``../shared/data`` or ``$DECODE_OMICS_DATA``); the test is skipped without it."""
    from decode_omics import datasets as ds

    try:
        return ds.data_dir()
    except FileNotFoundError:
        pytest.skip("public data folder not found (set DECODE_OMICS_DATA)")


def synthetic_reference(
    n_labels: int = 4, cells_per_label: int = 60, n_features: int = 200, seed: int = 0, sparse_x: bool = False
) -> AnnData:
    """Cells of ``n_labels`` types with distinct marker programmes, negative-binomial-like counts."""
    rng = np.random.default_rng(seed)
    base = rng.gamma(2.0, 1.0, size=n_features)
    profiles = np.tile(base, (n_labels, 1))
    block = n_features // (2 * n_labels)
    for k in range(n_labels):
        profiles[k, k * block : (k + 1) * block] *= 12.0
    size = rng.uniform(0.7, 1.4, n_labels)  # cell types differ in total mRNA
    rows, labels = [], []
    for k in range(n_labels):
        lam = profiles[k] * size[k] * rng.gamma(20, 1 / 20, size=(cells_per_label, n_features))
        rows.append(rng.poisson(lam))
        labels += [f"type{k}"] * cells_per_label
    X = np.vstack(rows).astype(np.float32)
    adata = AnnData(sparse.csr_matrix(X) if sparse_x else X)
    adata.obs_names = [f"cell{i}" for i in range(adata.n_obs)]
    adata.var_names = [f"gene{j}" for j in range(n_features)]
    adata.obs["cell_type"] = pd.Categorical(labels)
    return adata


def reference_and_bulk(
    seed: int = 0,
    *,
    cells_per_label: int = 120,
    n_features: int = 200,
    prefix: str = "gene",
    n_samples: int = 30,
    cells_per_sample: int = 200,
    **simulate_kwargs,
) -> tuple[AnnData, AnnData]:
    """A synthetic reference and pseudo-bulk mixed from the other, disjoint half of the same cells."""
    import decode_omics as dco

    cells = synthetic_reference(seed=seed, cells_per_label=cells_per_label, n_features=n_features)
    cells.var_names = [f"{prefix}{j}" for j in range(n_features)]
    half = np.random.default_rng(seed).random(cells.n_obs) < 0.5
    ref, query = cells[half].copy(), cells[~half].copy()
    bulk = dco.pp.simulate_pseudobulk(
        query,
        "cell_type",
        n_samples=n_samples,
        cells_per_sample=cells_per_sample,
        fractions="dirichlet",
        random_state=seed,
        **simulate_kwargs,
    )
    return ref, bulk


#: type3's marker block in the synthetic reference (200 features, 4 labels: 25-feature blocks).
TYPE3_MARKERS = [f"gene{j}" for j in range(75, 100)]


def absent_marked_type(seed=3, n_samples=40):
    """A reference without type3, and bulk holding type3 at 0.2-0.6, whose markers are 120x the base level (the
    reference's own labels: 12x on theirs), as a cell type with marker genes of its own would be."""
    import decode_omics as dco

    cells = synthetic_reference(seed=seed, cells_per_label=120)
    markers = cells.var_names.isin(TYPE3_MARKERS)
    rows = (cells.obs["cell_type"] == "type3").to_numpy()
    cells.X[np.ix_(rows, markers)] *= 10.0
    half = np.random.default_rng(seed).random(cells.n_obs) < 0.5
    ref, query = cells[half & ~rows].copy(), cells[~half].copy()
    ref.obs["cell_type"] = ref.obs["cell_type"].cat.remove_unused_categories()
    bulk = dco.pp.simulate_pseudobulk(
        query, "cell_type", n_samples=n_samples, cells_per_sample=200, unknown=["type3"],
        unknown_fraction=(0.2, 0.6), unknown_column=True, random_state=seed,
    )  # fmt: skip
    return ref, bulk


def centred_as_is(adata: AnnData) -> AnnData:
    """A copy with ``log1p`` values centred per feature (as log-ratios or z-scores are), registered to be read as
    stored (``scale="as_is"``; the reference's labels in ``cell_type`` where it has them)."""
    from decode_omics.model import DECODE

    out = adata.copy()
    logged = np.log1p(out.X)
    out.X = logged - logged.mean(axis=0)
    labels = {"labels_key": "cell_type"} if "cell_type" in out.obs else {}
    DECODE.setup_anndata(out, scale="as_is", **labels)
    return out


def fingerprint(adata: AnnData) -> str:
    """A hash of everything in an AnnData that a function might mutate (scvi-tools' own ``_scvi_*`` registration
    columns, which ``DECODE.setup_anndata`` documents, are left out)."""
    h = hashlib.sha256()
    X = adata.X.toarray() if sparse.issparse(adata.X) else np.asarray(adata.X)
    h.update(np.ascontiguousarray(X).tobytes())
    obs = adata.obs[[c for c in adata.obs.columns if not str(c).startswith("_scvi_")]]
    h.update(pd.util.hash_pandas_object(obs, index=True).values.tobytes())
    h.update(",".join(adata.var_names).encode())
    h.update(",".join(sorted(adata.obsm.keys())).encode())
    h.update(",".join(sorted(adata.layers.keys())).encode())
    return h.hexdigest()


@pytest.fixture
def reference() -> AnnData:
    return synthetic_reference()


@pytest.fixture(scope="session")
def pbmc68k():
    import decode_omics as dco

    return dco.datasets.pbmc68k_reference_and_bulk()


class _RefuseTraining:
    """Stands in for ``DECODE.train`` (not a method, so the model never shows up in a failure's traceback)."""

    def __call__(self, *args, **kwargs):
        pytest.fail("DECODE.train was called before the inputs were validated")


@pytest.fixture
def no_training(monkeypatch):
    """Fail if a model starts training: input errors must be reported before any (possibly hours of) training."""
    from decode_omics.model import DECODE

    monkeypatch.setattr(DECODE, "train", _RefuseTraining())
