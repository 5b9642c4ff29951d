"""The bad-input matrix: every case gives a correct result or an early error naming the problem and the fix, and the
user's objects are never changed.

Cases tested elsewhere: centred / log scales and NaN in ``to_linear`` (test_scale_features), feature namespaces
(test_scale_features), MuData modalities and ``key_added`` collisions (test_deconvolve), model folders that are
missing, corrupted, malicious or trained on other features (test_model), integer overflow (test_simulate), backed
AnnData (test_on_disk).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import fingerprint, reference_and_bulk
from scipy import sparse

import decode_omics as dco

TINY = {"max_epochs": 2, "n_pseudotissues": 128, "n_validation": 64, "enable_progress_bar": False}
SMALL = {"n_hidden": 32, "n_latent": 8}


def _problem():
    return reference_and_bulk(seed=11, cells_per_label=40, n_features=120, n_samples=6, cells_per_sample=50)


def _ensembl(ref, bulk):
    bulk.var_names = [f"ENSG{i:011d}" for i in range(bulk.n_vars)]


def _few_shared(ref, bulk):
    bulk.var_names = [f"other{i}" if i >= 8 else name for i, name in enumerate(bulk.var_names)]


def _nan_in_counts(ref, bulk):
    ref.X = np.asarray(ref.X, dtype=np.float32)
    ref.X[3, 5] = np.nan


def _z_scores(ref, bulk):
    X = np.log1p(np.asarray(bulk.X, dtype=np.float64))
    bulk.X = (X - X.mean(axis=0)) / np.maximum(X.std(axis=0), 1e-9)


def _zero_sample(ref, bulk):
    bulk.X = np.asarray(bulk.X).copy()
    bulk.X[2] = 0


def _zero_reference(ref, bulk):
    ref.X = np.zeros(ref.shape, dtype=np.float32)


def _silent_label(ref, bulk):
    ref.X = np.asarray(ref.X).copy()
    ref.X[(ref.obs["cell_type"] == "type1").to_numpy()] = 0


def _tiny_label(ref, bulk):
    keep = (ref.obs["cell_type"] != "type2").to_numpy()
    keep[np.flatnonzero(~keep)[:2]] = True
    ref._inplace_subset_obs(keep)


def _single_label(ref, bulk):
    ref.obs["cell_type"] = "type0"


def _empty_bulk(ref, bulk):
    bulk._inplace_subset_obs(np.zeros(bulk.n_obs, dtype=bool))


def _duplicated_features(ref, bulk):
    ref.var_names = [ref.var_names[0], *ref.var_names[:-1]]


def _missing_labels(ref, bulk):
    ref.obs["cell_type"] = ref.obs["cell_type"].astype(object)
    ref.obs.iloc[:3, 0] = np.nan


ERRORS = {
    "Ensembl IDs vs symbols": (_ensembl, ValueError, "Ensembl gene IDs: map both to one namespace"),
    "too few shared features": (_few_shared, ValueError, "share 8 features .* at least 20 are needed"),
    "NaN in RNA counts": (_nan_in_counts, ValueError, "counts with 1 missing values .* re-create it"),
    "z-scores where linear is needed": (_z_scores, ValueError, "centred scale: .* Supply un-centred abundances"),
    "an all-zero bulk sample": (_zero_sample, ValueError, r"1 bulk sample\(s\) have no signal .* Drop them"),
    "an all-zero reference": (_zero_reference, ValueError, "The reference is all zeros"),
    "a label with no signal": (_silent_label, ValueError, r"Label\(s\) \['type1'\] have no signal"),
    "a label with too few cells": (_tiny_label, ValueError, r"fewer than 3 cells: type2 \(2\)\. Merge them"),
    "a single label": (_single_label, ValueError, r"1 label\(s\) \(\['type0'\]\); deconvolution needs at least 2"),
    "an empty bulk": (_empty_bulk, ValueError, r"The bulk is empty \(0 observations x 120 features\)"),
    "duplicated feature names": (_duplicated_features, ValueError, "duplicated feature names .* unique"),
    "missing labels": (_missing_labels, ValueError, "3 missing labels; drop those cells or label them"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_bad_input_is_refused_before_training(case, no_training):
    ref, bulk = _problem()
    change, error, match = ERRORS[case]
    change(ref, bulk)
    before = fingerprint(ref), fingerprint(bulk)
    with pytest.raises(error, match=match):
        dco.tl.deconvolve(bulk, ref, "cell_type", model_kwargs=SMALL, train_kwargs=TINY)
    assert (fingerprint(ref), fingerprint(bulk)) == before
    assert "decode" not in bulk.obsm


def test_unknown_keys_are_named(no_training):
    ref, bulk = _problem()
    with pytest.raises(KeyError, match="labels_key 'celltype' is not a column of reference.obs"):
        dco.tl.deconvolve(bulk, ref, "celltype")
    with pytest.raises(KeyError, match=r"Layer 'counts' is not in adata.layers \(available: \[\]\)"):
        dco.tl.deconvolve(bulk, ref, "cell_type", layer="counts")
    with pytest.raises(KeyError, match="Layer 'raw' is not in adata.layers"):
        dco.tl.deconvolve(bulk, ref, "cell_type", reference_layer="raw")


def _fractions(ref, bulk, **kwargs):
    out = dco.tl.deconvolve(bulk, ref, "cell_type", model_kwargs=SMALL, train_kwargs=TINY, copy=True, **kwargs)
    return out.obsm["decode"]


def test_missing_values_in_intensities_are_read_as_zero_with_a_report(caplog):
    """Proteomics / metabolomics: NaN are below detection; the result is complete and the log says how many."""
    ref, bulk = _problem()
    for adata, n in ((ref, 7), (bulk, 3)):
        X = np.asarray(adata.X, dtype=np.float64) * 1.37 + 0.5  # intensities, not counts
        X.flat[np.random.default_rng(0).choice(X.size, n, replace=False)] = np.nan
        adata.X = X
    before = fingerprint(ref), fingerprint(bulk)
    with caplog.at_level("WARNING", logger="decode_omics"):
        fractions = _fractions(ref, bulk)
    assert np.isfinite(fractions.to_numpy()).all()
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "The reference has 7 missing values (NaN); they are read as zero" in messages
    assert "The bulk has 3 missing values (NaN)" in messages
    assert (fingerprint(ref), fingerprint(bulk)) == before


def test_single_sample_and_duplicated_sample_names_are_handled():
    ref, bulk = _problem()
    one = _fractions(ref, bulk[:1].copy())
    assert one.shape == (1, 4) and list(one.index) == [bulk.obs_names[0]]
    twice = bulk.copy()
    twice.obs_names = ["sample"] * twice.n_obs
    got = _fractions(ref, twice)
    assert list(got.index) == ["sample"] * bulk.n_obs and got.shape == (bulk.n_obs, 4)


def test_sparse_and_dense_give_the_same_fractions():
    ref, bulk = _problem()
    dense = _fractions(ref, bulk, random_state=3)
    ref_sparse, bulk_sparse = ref.copy(), bulk.copy()
    ref_sparse.X, bulk_sparse.X = sparse.csr_matrix(ref.X), sparse.csr_matrix(bulk.X)
    np.testing.assert_allclose(
        _fractions(ref_sparse, bulk_sparse, random_state=3).to_numpy(), dense.to_numpy(), atol=1e-5
    )
