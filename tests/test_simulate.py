import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from conftest import fingerprint, synthetic_reference
from scipy import sparse

import decode_omics as dco


@pytest.mark.parametrize("fractions", ["uniform", "dirichlet", "sparse"])
def test_fractions_sum_to_one_and_match_counts(reference, fractions):
    out = dco.pp.simulate_pseudobulk(reference, "cell_type", n_samples=50, cells_per_sample=30, fractions=fractions)
    frac = out.obsm["fractions"]
    assert list(frac.columns) == ["type0", "type1", "type2", "type3"]
    np.testing.assert_allclose(frac.sum(axis=1), 1.0, atol=1e-9)
    assert (out.obs["n_cells"] == 30).all()
    # realised fractions are whole cells out of 30
    np.testing.assert_allclose(frac.to_numpy() * 30, np.round(frac.to_numpy() * 30), atol=1e-9)
    if fractions == "sparse":
        assert (frac.to_numpy() == 0).any()
    else:
        assert out.shape == (50, reference.n_vars)


def test_mixture_is_the_sum_of_drawn_cells():
    # one cell per label: every mixture is exactly counts @ profiles
    X = np.diag([1.0, 10.0, 100.0]).astype(np.float32)
    ref = AnnData(X)
    ref.var_names = ["a", "b", "c"]
    ref.obs["cell_type"] = pd.Categorical(["A", "B", "C"])
    out = dco.pp.simulate_pseudobulk(ref, "cell_type", n_samples=20, cells_per_sample=10, scale="linear")
    counts = out.obsm["fractions"].to_numpy() * 10
    np.testing.assert_allclose(out.X, counts * np.array([1.0, 10.0, 100.0]), rtol=1e-6)


def test_same_seed_same_output_and_sparse_equals_dense():
    dense = synthetic_reference(seed=1)
    sp = synthetic_reference(seed=1, sparse_x=True)
    a = dco.pp.simulate_pseudobulk(dense, "cell_type", n_samples=30, random_state=7, noise_cells=3)
    b = dco.pp.simulate_pseudobulk(dense, "cell_type", n_samples=30, random_state=7, noise_cells=3)
    c = dco.pp.simulate_pseudobulk(sp, "cell_type", n_samples=30, random_state=7, noise_cells=3)
    d = dco.pp.simulate_pseudobulk(dense, "cell_type", n_samples=30, random_state=8, noise_cells=3)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_allclose(a.X, c.X, rtol=1e-5)
    pd.testing.assert_frame_equal(a.obsm["fractions"], c.obsm["fractions"])
    assert not np.allclose(a.X, d.X)


def test_input_not_modified_and_log_input_is_linearised(pbmc68k):
    ref, _ = pbmc68k
    logged = ref.copy()
    logged.X = np.log1p(logged.X)
    before = fingerprint(logged)
    out = dco.pp.simulate_pseudobulk(logged, "bulk_labels", n_samples=10, random_state=0)
    assert fingerprint(logged) == before
    assert out.uns["simulate_pseudobulk"]["scale"]["scale"] == "log1p"
    lin = dco.pp.simulate_pseudobulk(ref, "bulk_labels", n_samples=10, random_state=0)
    np.testing.assert_allclose(out.X, lin.X, rtol=1e-3, atol=1e-3)


def test_noise_cells_and_unknown_labels(reference):
    out = dco.pp.simulate_pseudobulk(
        reference,
        "cell_type",
        n_samples=200,
        cells_per_sample=40,
        unknown=["type3"],
        unknown_fraction=(0.1, 0.4),
        noise_cells=(2, 4),
        unknown_column=True,
    )
    frac = out.obsm["fractions"]
    assert list(frac.columns) == ["type0", "type1", "type2", "unknown"]
    np.testing.assert_allclose(frac.sum(axis=1), 1.0, atol=1e-9)
    assert out.obs["n_noise_cells"].between(2, 4).all()
    share = out.obs["n_unknown_cells"] / 40
    assert share.between(0.1 - 1e-9, 0.4 + 1e-9).all()
    expected = (out.obs["n_unknown_cells"] + out.obs["n_noise_cells"]) / (
        out.obs["n_cells"] + out.obs["n_unknown_cells"] + out.obs["n_noise_cells"]
    )
    np.testing.assert_allclose(frac["unknown"], expected)
    # the unknown material is really type3: its marker block rises with the unknown share
    markers = out.X[:, 75:100].sum(axis=1) / out.X.sum(axis=1)
    assert np.corrcoef(markers, share)[0, 1] > 0.8
    # relative fractions (default) exclude unknown material
    rel = dco.pp.simulate_pseudobulk(reference, "cell_type", n_samples=20, unknown=["type3"], noise_cells=2)
    np.testing.assert_allclose(rel.obsm["fractions"].sum(axis=1), 1.0)
    assert "unknown" not in rel.obsm["fractions"]


def test_unknown_cells_from_another_anndata(reference):
    other = synthetic_reference(seed=5)
    out = dco.pp.simulate_pseudobulk(
        reference, "cell_type", n_samples=10, unknown=other, unknown_fraction=0.5, unknown_column=True
    )
    np.testing.assert_allclose(out.obsm["fractions"]["unknown"], 0.5, atol=0.02)


def test_parametric_matches_moments_of_cell_sums(reference):
    fixed = np.tile([0.25, 0.25, 0.25, 0.25], (400, 1))
    cells = dco.pp.simulate_pseudobulk(reference, "cell_type", n_samples=400, fractions=fixed, random_state=0)
    para = dco.pp.simulate_pseudobulk(
        reference, "cell_type", n_samples=400, fractions=fixed, method="parametric", random_state=0
    )
    np.testing.assert_allclose(para.X.mean(0), cells.X.mean(0), rtol=0.15, atol=1.0)
    ratio = para.X.std(0).sum() / cells.X.std(0).sum()
    assert 0.85 < ratio < 1.15


def test_given_fractions_and_errors(reference):
    f = pd.DataFrame([[1, 0, 0, 0], [0, 0.5, 0.5, 0]], columns=["type0", "type1", "type2", "type3"])
    out = dco.pp.simulate_pseudobulk(reference, "cell_type", n_samples=2, cells_per_sample=10, fractions=f)
    np.testing.assert_allclose(out.obsm["fractions"].to_numpy(), f.to_numpy())
    with pytest.raises(KeyError, match="labels_key 'nope' is not a column"):
        dco.pp.simulate_pseudobulk(reference, "nope")
    with pytest.raises(ValueError, match="Unknown fractions 'flat'"):
        dco.pp.simulate_pseudobulk(reference, "cell_type", fractions="flat")
    with pytest.raises(ValueError, match=r"fewer than 100 cells: type0 \(60\)"):
        dco.pp.simulate_pseudobulk(reference, "cell_type", min_cells=100)
    with pytest.raises(KeyError, match="Layer 'counts' is not in adata.layers"):
        dco.pp.simulate_pseudobulk(reference, "cell_type", layer="counts")
    one = reference[reference.obs["cell_type"] == "type0"].copy()
    with pytest.raises(ValueError, match="needs at least 2"):
        dco.pp.simulate_pseudobulk(one, "cell_type")


def test_large_counts_do_not_overflow():
    X = sparse.csr_matrix(np.full((4, 3), 2**30, dtype=np.int32))
    ref = AnnData(X)
    ref.obs["cell_type"] = pd.Categorical(["a", "a", "b", "b"])
    out = dco.pp.simulate_pseudobulk(ref, "cell_type", n_samples=3, cells_per_sample=8)
    np.testing.assert_allclose(out.X.sum(axis=1), 8 * 3 * 2.0**30, rtol=1e-6)
