import numpy as np
import pytest
from anndata import AnnData
from scipy import sparse

import decode_omics as dco


def test_detect_counts_linear_log(reference):
    X = reference.X
    assert dco.pp.detect_scale(X).scale == "counts"
    norm = X / X.sum(1, keepdims=True) * 1e4
    assert dco.pp.detect_scale(norm).scale == "linear"
    log1p = np.log1p(norm)
    r = dco.pp.detect_scale(sparse.csr_matrix(log1p))
    assert r.scale == "log1p" and r.confident
    assert dco.pp.detect_scale(np.log2(1 + norm)).scale == "log2"
    tpm = X / X.sum(1, keepdims=True) * 1e6
    assert dco.pp.detect_scale(tpm).scale == "linear"


def test_centered_data_is_refused_with_advice(reference):
    z = np.log1p(reference.X)
    z = (z - z.mean(0)) / (z.std(0) + 1e-6)
    assert dco.pp.detect_scale(z).scale == "centered"
    with pytest.raises(dco.pp.ScaleError, match="no linear abundance scale"):
        dco.pp.to_linear(z)


def test_background_subtracted_intensities_are_clipped():
    rng = np.random.default_rng(0)
    X = rng.normal(2000, 3000, size=(50, 30))
    r = dco.pp.detect_scale(X)
    assert r.scale == "linear" and r.frac_negative > 0
    lin, _ = dco.pp.to_linear(X)
    assert lin.min() == 0 and np.allclose(lin[X > 0], X[X > 0], rtol=1e-6)


def test_to_linear_inverts_logs_and_handles_nan(reference):
    norm = reference.X / reference.X.sum(1, keepdims=True) * 1e4
    lin, rep = dco.pp.to_linear(np.log1p(norm))
    assert rep.scale == "log1p"
    np.testing.assert_allclose(lin, norm, rtol=1e-4, atol=1e-3)
    lin2, _ = dco.pp.to_linear(np.log2(norm + 1), scale="log2")
    np.testing.assert_allclose(lin2, norm, rtol=1e-4, atol=1e-3)  # log2(1 + x) is inverted exactly
    withnan = norm.copy()
    withnan[0, 0] = np.nan
    lin3, rep3 = dco.pp.to_linear(withnan)
    assert rep3.n_nan == 1 and lin3[0, 0] == 0
    with pytest.raises(ValueError, match="1 missing values"):
        dco.pp.to_linear(withnan, missing="error")
    with pytest.raises(dco.pp.ScaleError, match="Unknown scale 'ln'"):
        dco.pp.to_linear(norm, scale="ln")
    assert np.isnan(withnan[0, 0])  # the input is untouched


def test_empty_matrix_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        dco.pp.detect_scale(np.zeros((0, 5)))
    with pytest.raises(ValueError, match="all zeros"):
        dco.pp.detect_scale(np.zeros((3, 5)))


def _ad(names):
    a = AnnData(np.ones((2, len(names)), dtype=np.float32))
    a.var_names = names
    return a


def test_align_features_reports_and_orders():
    ref = _ad([f"g{i}" for i in range(30)])
    bulk = _ad([f"g{i}" for i in range(29, 4, -1)] + ["x1", "x2"])
    r, b = dco.pp.align_features(ref, bulk)
    assert list(r.var_names) == [f"g{i}" for i in range(5, 30)]
    assert list(b.var_names) == list(r.var_names)
    assert r.uns["feature_alignment"]["dropped_reference"] == 5
    assert r.uns["feature_alignment"]["dropped_bulk"] == 2
    assert "feature_alignment" not in ref.uns


def test_align_features_errors_name_the_cause():
    symbols = _ad([f"GENE{i}" for i in range(50)])
    ensembl = _ad([f"ENSG{i:011d}" for i in range(50)])
    with pytest.raises(ValueError, match="Ensembl gene IDs and the bulk names"):
        dco.pp.align_features(ensembl, symbols)
    lower = _ad([f"Gene{i}" for i in range(50)])
    with pytest.raises(ValueError, match="match when letter case is ignored"):
        dco.pp.align_features(symbols, lower)
    dup = _ad(["a", "a", "b"])
    with pytest.raises(ValueError, match="duplicated feature names"):
        dco.pp.align_features(dup, symbols)
    few = _ad([f"GENE{i}" for i in range(5)])
    with pytest.raises(ValueError, match="share 5 features"):
        dco.pp.align_features(symbols, few)
