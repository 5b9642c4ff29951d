"""References and bulk cohorts that stay on disk (backed AnnData): same answers as in memory, nothing loaded whole."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
from conftest import fingerprint, reference_and_bulk
from scipy import sparse

import decode_omics as dco
from decode_omics._engine.ondisk import is_on_disk, read_rows, row_blocks


@pytest.fixture
def on_disk(tmp_path):
    ref, bulk = reference_and_bulk(seed=3)
    ref.X = sparse.csr_matrix(ref.X)
    ref_path, bulk_path = tmp_path / "reference.h5ad", tmp_path / "bulk.h5ad"
    ref.write_h5ad(ref_path)
    bulk.write_h5ad(bulk_path)
    return ref, bulk, ref_path, bulk_path


def test_read_rows_and_blocks_match_memory(on_disk):
    ref, _, ref_path, _ = on_disk
    backed = ad.read_h5ad(ref_path, backed="r")
    assert is_on_disk(backed.X) and not is_on_disk(ref.X)
    rows = np.array([7, 3, 3, 100, 0])
    np.testing.assert_array_equal(read_rows(backed.X, rows).toarray(), ref.X[rows].toarray())
    stacked = sparse.vstack([b for _, b in row_blocks(backed.X, 50)])
    np.testing.assert_array_equal(stacked.toarray(), ref.X.toarray())
    assert dco.pp.check_scale(backed).scale == "counts"


def _fit(ref, bulk, **train):
    import scvi

    from decode_omics.model import DECODE

    scvi.settings.seed = 0
    DECODE.setup_anndata(ref, labels_key="cell_type")
    DECODE.setup_anndata(bulk)
    model = DECODE(ref, bulk, n_hidden=64, n_latent=32)
    model.train(max_epochs=15, n_pseudotissues=512, enable_progress_bar=False, **train)
    return model


def test_backed_reference_streams_and_matches_in_memory(on_disk):
    ref, bulk, ref_path, _ = on_disk
    backed = ad.read_h5ad(ref_path, backed="r")
    in_memory = _fit(ref.copy(), bulk.copy())
    streamed = _fit(backed, bulk.copy())
    assert streamed._sampler.on_disk and not in_memory._sampler.on_disk
    assert streamed.features == in_memory.features
    assert streamed.pseudotissue_ == in_memory.pseudotissue_ == "parametric"
    np.testing.assert_allclose(streamed._sampler.mean, in_memory._sampler.mean, rtol=1e-5)
    np.testing.assert_allclose(streamed._sampler.var, in_memory._sampler.var, rtol=1e-4, atol=1e-5)
    a, b = in_memory.get_fractions(), streamed.get_fractions()
    truth = bulk.obsm["fractions"]
    # Same statistics; only the random noise cells of the training views differ (drawn from a pool read from disk).
    assert dco.metrics.ccc(a, truth) > 0.85 and dco.metrics.ccc(b, truth) > 0.85
    assert dco.metrics.ccc(a, b) > 0.95


def test_backed_reference_with_cell_sums_reads_pools(on_disk):
    """Sums of real cells from disk: every epoch mixes a fresh pool of at most pool_per_label cells per label."""
    import scvi

    from decode_omics.model import DECODE

    _, bulk, ref_path, _ = on_disk
    backed = ad.read_h5ad(ref_path, backed="r")
    scvi.settings.seed = 0
    DECODE.setup_anndata(backed, labels_key="cell_type")
    DECODE.setup_anndata(bulk)
    model = DECODE(backed, bulk, pseudotissue="cells", n_hidden=64, n_latent=32)
    model._sampler.config.pool_per_label = 20
    pool, index = model._sampler.pool(np.random.default_rng(0))
    assert pool.shape[0] == 20 * len(model.labels) and np.all(index.sizes == 20)
    model.train(max_epochs=15, n_pseudotissues=512, enable_progress_bar=False)
    assert dco.metrics.ccc(model.get_fractions(), bulk.obsm["fractions"]) > 0.8


def test_backed_bulk_predicted_in_blocks(on_disk, monkeypatch):
    ref, bulk, _, bulk_path = on_disk
    model = _fit(ref.copy(), bulk.copy())
    expected = model.get_fractions(bulk)
    backed = ad.read_h5ad(bulk_path, backed="r")
    before = fingerprint(bulk)
    from decode_omics.model import _bulk

    seen = []
    original = _bulk.row_blocks
    monkeypatch.setattr(_bulk, "row_blocks", lambda X, n: (seen.append(n), *original(X, 7))[1:])
    got = model.get_fractions(backed, progress_bar=True)
    assert len(seen) == 1  # streamed
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), atol=1e-5)
    assert list(got.index) == list(bulk.obs_names)
    assert fingerprint(bulk) == before


def test_scale_override_for_small_linear_values():
    """Small non-integer linear values (here scaled to < 15) are read as log1p unless scale= says otherwise."""
    import scvi

    from decode_omics.model import DECODE

    ref, bulk = reference_and_bulk(seed=4)
    ref.X = ref.X / 100.0
    bulk.X = bulk.X / bulk.X.max() * 10.0
    assert dco.pp.check_scale(ref).scale == "log1p"
    with pytest.raises(ValueError, match="scale must be"):
        DECODE.setup_anndata(ref, labels_key="cell_type", scale="logarithmic")
    scvi.settings.seed = 0
    DECODE.setup_anndata(ref, labels_key="cell_type", scale="linear")
    DECODE.setup_anndata(bulk, scale="linear")
    model = DECODE(ref, bulk, n_hidden=64, n_latent=32)
    assert model.reference_scale_["scale"] == "linear"
    model.train(max_epochs=15, n_pseudotissues=512, enable_progress_bar=False)
    good = dco.metrics.ccc(model.get_fractions(), bulk.obsm["fractions"])
    misread = dco.metrics.ccc(model.get_fractions(bulk, scale="log1p"), bulk.obsm["fractions"])
    assert good > 0.85
    assert good > misread + 0.1


def test_dask_backed_reference_and_bulk(on_disk):
    """anndata's lazy reader (dask arrays over the h5ad): the same streaming path as backed AnnData."""
    pytest.importorskip("dask")
    import h5py
    from anndata.experimental import read_elem_lazy

    ref, bulk, ref_path, bulk_path = on_disk
    with h5py.File(ref_path, "r") as f, h5py.File(bulk_path, "r") as g:
        lazy_ref = ad.AnnData(X=read_elem_lazy(f["X"], chunks=(50, -1)), obs=ref.obs[["cell_type"]], var=ref.var)
        lazy_bulk = ad.AnnData(X=read_elem_lazy(g["X"], chunks=(7, -1)), obs=bulk.obs[[]], var=bulk.var)
        assert is_on_disk(lazy_ref.X) and is_on_disk(lazy_bulk.X)
        model = _fit(lazy_ref, lazy_bulk)
        assert model._sampler.on_disk
        assert dco.metrics.ccc(model.get_fractions(), bulk.obsm["fractions"]) > 0.85
