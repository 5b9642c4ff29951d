"""``dco.tl.deconvolve`` end to end, on AnnData and MuData."""

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from conftest import fingerprint, reference_and_bulk
from mudata import MuData

import decode_omics as dco
from decode_omics.model import DECODE

TINY = {"max_epochs": 3, "n_pseudotissues": 256, "enable_progress_bar": False, "early_stopping": False}
# a small network keeps the plumbing tests fast (and exercises model_kwargs); the accuracy test uses a larger one
SMALL = {"n_hidden": 64, "n_latent": 16}
# the same seed gives the same fractions on CPU (the documented guarantee), so the determinism test pins it
CPU = {"accelerator": "cpu"}
LABELS = ["type0", "type1", "type2", "type3"]


def _problem(seed=0, n_samples=30, n_features=200, prefix="gene"):
    """A reference and pseudo-bulk mixed from the other, disjoint half of the same synthetic cells."""
    return reference_and_bulk(seed, n_features=n_features, prefix=prefix, n_samples=n_samples)


def _assert_not_registered(adata):
    """No scvi-tools registration left behind (deconvolve registers lightweight wrappers, not the user's data)."""
    assert [c for c in adata.obs.columns if str(c).startswith("_scvi")] == []
    assert [k for k in adata.uns if str(k).startswith("_scvi")] == []


def _assert_fractions(frame, index, columns):
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.index) == list(index)
    assert list(frame.columns) == list(columns)
    values = frame.to_numpy()
    assert np.isfinite(values).all() and (values >= 0).all()
    np.testing.assert_allclose(values.sum(axis=1), 1.0, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------- AnnData
class _Fit(dict):
    """The fixture's results; a short repr, as scvi-tools models print themselves when repr'd in a failure report."""

    def __repr__(self):
        return "<easy problem, deconvolved>"


@pytest.fixture(scope="module")
def fitted():
    """The easy problem, deconvolved in place with ~20 epochs."""
    ref, bulk = _problem()
    before = {"ref": fingerprint(ref), "bulk_X": bulk.X.copy(), "bulk_obs": bulk.obs.copy()}
    model = dco.tl.deconvolve(
        bulk,
        ref,
        "cell_type",
        model_kwargs={"n_hidden": 128, "n_latent": 32},
        train_kwargs=TINY | {"max_epochs": 20},
        return_model=True,
    )
    return _Fit(ref=ref, bulk=bulk, model=model, before=before)


def test_anndata_writes_fractions_and_uns(fitted):
    bulk, model = fitted["bulk"], fitted["model"]
    assert isinstance(model, DECODE)  # return_model=True without copy: the model alone
    fractions = bulk.obsm["decode"]
    _assert_fractions(fractions, bulk.obs_names, LABELS)
    pd.testing.assert_frame_equal(model.get_fractions(), fractions)

    uns = bulk.uns["decode"]
    assert {"params", "labels", "n_features", "fit_seconds", "history", "diagnostics"} <= set(uns)
    params = uns["params"]
    assert params["labels_key"] == "cell_type" and params["mode"] == "relative" and params["random_state"] == 0
    assert params["max_epochs"] == 20 and params["n_pseudotissues"] == 256
    assert uns["labels"] == LABELS
    assert uns["n_features"] == 200
    assert uns["fit_seconds"] > 0
    assert set(uns["history"]) >= {"fraction_loss_train", "fraction_loss_validation", "contrastive_loss_train"}
    assert all(len(v) == 20 for v in uns["history"].values())

    diag = uns["diagnostics"]
    assert isinstance(diag, pd.DataFrame)
    assert list(diag.columns) == ["top_label", "entropy", "domain_distance"]
    assert list(diag.index) == list(bulk.obs_names)
    assert (diag["top_label"] == fractions.idxmax(axis=1)).all()
    assert ((diag["entropy"] >= 0) & (diag["entropy"] <= np.log(len(LABELS)) + 1e-9)).all()
    assert np.isfinite(diag["domain_distance"]).all() and (diag["domain_distance"] > 0).all()


def test_anndata_recovers_easy_problem(fitted):
    bulk = fitted["bulk"]
    assert dco.metrics.ccc(bulk.obsm["decode"], bulk.obsm["fractions"]) > 0.85
    loss = bulk.uns["decode"]["history"]["fraction_loss_train"]
    assert loss[-1] < loss[0]


def test_anndata_inputs_not_modified(fitted):
    ref, bulk, before = fitted["ref"], fitted["bulk"], fitted["before"]
    assert fingerprint(ref) == before["ref"]
    assert list(ref.uns) == [] and list(ref.obsm) == []
    _assert_not_registered(ref)
    # the bulk gains obsm/uns["decode"] and three documented obs columns, its original columns untouched
    np.testing.assert_array_equal(bulk.X, before["bulk_X"])
    added = ["decode_reference_fit", "decode_excess_share", "decode_unexplained"]
    assert list(bulk.obs.columns) == [*before["bulk_obs"].columns, *added]
    pd.testing.assert_frame_equal(bulk.obs[before["bulk_obs"].columns], before["bulk_obs"])
    assert np.isfinite(bulk.obs["decode_reference_fit"]).all() and (bulk.obs["decode_reference_fit"] >= 0).all()
    assert bulk.obs["decode_unexplained"].between(0, 1).all()
    assert bulk.obs["decode_excess_share"].between(0, 1).all()
    assert set(bulk.obsm) == {"fractions", "decode"}
    _assert_not_registered(bulk)


def test_anndata_copy_and_same_seed():
    ref, bulk = _problem(seed=1, n_samples=12)
    ref_before, bulk_before = fingerprint(ref), fingerprint(bulk)
    uns_before = set(bulk.uns)

    out = dco.tl.deconvolve(
        bulk, ref, "cell_type", copy=True, model_kwargs=SMALL, train_kwargs=TINY | CPU, random_state=7
    )
    assert isinstance(out, AnnData) and out is not bulk
    assert list(out.obs_names) == list(bulk.obs_names)
    _assert_fractions(out.obsm["decode"], bulk.obs_names, LABELS)
    assert "decode" in out.uns
    # the input is untouched
    assert fingerprint(bulk) == bulk_before and set(bulk.uns) == uns_before
    assert "decode" not in bulk.obsm
    assert fingerprint(ref) == ref_before
    _assert_not_registered(ref)
    _assert_not_registered(bulk)

    # copy + return_model gives (copy, model); the same random_state gives the same fractions
    result = dco.tl.deconvolve(
        bulk,
        ref,
        "cell_type",
        copy=True,
        return_model=True,
        model_kwargs=SMALL,
        train_kwargs=TINY | CPU,
        random_state=7,
    )
    assert isinstance(result, tuple) and len(result) == 2
    again, model = result
    assert isinstance(again, AnnData) and again is not bulk and again is not out
    assert isinstance(model, DECODE)
    pd.testing.assert_frame_equal(again.obsm["decode"], out.obsm["decode"])
    pd.testing.assert_frame_equal(model.get_fractions(), out.obsm["decode"])
    assert fingerprint(bulk) == bulk_before


def test_anndata_other_seed_differs_and_returns_none():
    ref, bulk = _problem(seed=1, n_samples=12)
    a = dco.tl.deconvolve(bulk, ref, "cell_type", copy=True, model_kwargs=SMALL, train_kwargs=TINY, random_state=7)
    assert dco.tl.deconvolve(bulk, ref, "cell_type", model_kwargs=SMALL, train_kwargs=TINY, random_state=8) is None
    assert not np.allclose(a.obsm["decode"].to_numpy(), bulk.obsm["decode"].to_numpy())
    assert bulk.uns["decode"]["params"]["random_state"] == 8


def test_anndata_key_added_and_absolute_mode():
    ref, bulk = _problem(seed=2, n_samples=12)
    model = dco.tl.deconvolve(
        bulk,
        ref,
        "cell_type",
        mode="absolute",
        key_added="decode_abs",
        model_kwargs=SMALL,
        train_kwargs=TINY,
        return_model=True,
    )
    assert isinstance(model, DECODE)
    assert "decode" not in bulk.obsm and "decode" not in bulk.uns
    fractions = bulk.obsm["decode_abs"]
    _assert_fractions(fractions, bulk.obs_names, [*LABELS, "unknown"])
    uns = bulk.uns["decode_abs"]
    assert uns["params"]["mode"] == "absolute"
    assert uns["labels"] == [*LABELS, "unknown"]
    # the top label is a known label, never "unknown"
    assert set(uns["diagnostics"]["top_label"]) <= set(LABELS)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"labels_key": "nope"}, KeyError, "labels_key 'nope' is not a column of reference.obs"),
        ({"reference": "dict"}, TypeError, "reference must be one AnnData"),
        ({"modality": "rna"}, ValueError, "modality= applies to MuData input only"),
        ({"data": "array"}, TypeError, "data must be an AnnData or a MuData, got ndarray"),
    ],
)
def test_anndata_errors(kwargs, error, match, no_training):
    ref, bulk = _problem(seed=3, n_samples=5)
    before = fingerprint(bulk)
    replace = {"dict": {"rna": ref}, "array": bulk.X}
    args = {"data": bulk, "reference": ref, "labels_key": "cell_type"} | {
        k: replace.get(v, v) if isinstance(v, str) and k != "labels_key" else v for k, v in kwargs.items()
    }
    with pytest.raises(error, match=match):
        dco.tl.deconvolve(args.pop("data"), args.pop("reference"), args.pop("labels_key"), train_kwargs=TINY, **args)
    assert fingerprint(bulk) == before and "decode" not in bulk.uns


# ----------------------------------------------------------------------------------------------------------- MuData
N_SAMPLES, N_PROT = 12, 8


def _multiomics():
    """RNA for all 12 samples, protein (another feature set) for the first 8 only; one reference each."""
    rna_ref, rna_bulk = _problem(seed=0, n_samples=N_SAMPLES)
    prot_ref, prot_bulk = _problem(seed=1, n_samples=N_SAMPLES, n_features=60, prefix="prot")
    mdata = MuData({"rna": rna_bulk, "prot": prot_bulk[:N_PROT].copy()})
    return mdata, {"rna": rna_ref, "prot": prot_ref}


def test_mudata_modalities_with_different_samples():
    mdata, refs = _multiomics()
    ref_before = {m: fingerprint(r) for m, r in refs.items()}
    models = dco.tl.deconvolve(mdata, refs, "cell_type", model_kwargs=SMALL, train_kwargs=TINY, return_model=True)
    assert isinstance(models, dict) and set(models) == {"rna", "prot"}
    assert all(isinstance(m, DECODE) for m in models.values())
    assert mdata.n_obs == N_SAMPLES

    # per modality: obsm / uns on the modality, as for an AnnData
    for m, n_features in (("rna", 200), ("prot", 60)):
        own = mdata[m].obsm["decode"]
        _assert_fractions(own, mdata[m].obs_names, LABELS)
        assert mdata[m].uns["decode"]["n_features"] == n_features
        assert list(mdata[m].uns["decode"]["diagnostics"].index) == list(mdata[m].obs_names)
        pd.testing.assert_frame_equal(models[m].get_fractions(), own)

    # global: indexed by mdata.obs_names, NaN rows exactly where the modality lacks the sample
    rna = mdata.obsm["decode_rna"]
    assert list(rna.index) == list(mdata.obs_names) and not rna.isna().any().any()
    prot = mdata.obsm["decode_prot"]
    assert list(prot.index) == list(mdata.obs_names) and list(prot.columns) == LABELS
    missing = ~mdata.obs_names.isin(mdata["prot"].obs_names)
    assert missing.sum() == N_SAMPLES - N_PROT
    assert prot[missing].isna().all(axis=1).all()
    assert prot[~missing].notna().all(axis=1).all()
    pd.testing.assert_frame_equal(prot.loc[mdata["prot"].obs_names], mdata["prot"].obsm["decode"])

    for m, ref in refs.items():
        assert fingerprint(ref) == ref_before[m]
        _assert_not_registered(ref)
        _assert_not_registered(mdata[m])


def test_mudata_copy_and_mod():
    mdata, refs = _multiomics()
    before = {m: fingerprint(mdata[m]) for m in mdata.mod}
    obsm_before = set(mdata.obsm)
    out = dco.tl.deconvolve(mdata, refs, "cell_type", modality="rna", copy=True, model_kwargs=SMALL, train_kwargs=TINY)
    assert isinstance(out, MuData) and out is not mdata
    assert "decode_rna" in out.obsm and "decode_prot" not in out.obsm
    assert "decode" in out["rna"].obsm and "decode" not in out["prot"].obsm
    # the input MuData is untouched
    assert set(mdata.obsm) == obsm_before
    assert {m: fingerprint(mdata[m]) for m in mdata.mod} == before
    assert "decode" not in mdata["rna"].uns


@pytest.mark.parametrize(
    ("reference", "kwargs", "error", "match"),
    [
        ("anndata", {}, TypeError, r"For a MuData, reference must be a dict \{modality: reference AnnData\}"),
        ({"rna"}, {"modality": "prot"}, KeyError, "No reference for modality 'prot'"),
        ({"rna", "prot"}, {"modality": "metab"}, KeyError, r"Modality 'metab' is not in the MuData \(modalities: \["),
        ({"rna", "prot"}, {"key_added": "rna"}, ValueError, "key_added 'rna' is the name of a modality"),
        ({"rna", "prot"}, {"labels_key": "nope"}, KeyError, r"labels_key 'nope' is not a column of reference\['rna'\]"),
        ({"metab"}, {}, ValueError, r"No modality of the MuData \(\['rna', 'prot'\]\) has a reference"),
    ],
)
def test_mudata_errors(reference, kwargs, error, match, no_training):
    mdata, refs = _multiomics()
    before = {m: fingerprint(mdata[m]) for m in mdata.mod}
    reference = refs["rna"] if reference == "anndata" else {m: refs.get(m, refs["rna"]) for m in reference}
    kwargs = {"labels_key": "cell_type"} | kwargs
    with pytest.raises(error, match=match):
        dco.tl.deconvolve(mdata, reference, kwargs.pop("labels_key"), train_kwargs=TINY, **kwargs)
    assert [k for k in mdata.obsm if k.startswith("decode")] == []
    assert {m: fingerprint(mdata[m]) for m in mdata.mod} == before


def test_mod_is_the_deprecated_name_of_modality(no_training):
    mdata, refs = _multiomics()
    with pytest.warns(DeprecationWarning, match="use modality="), pytest.raises(KeyError, match="modality 'prot'"):
        dco.tl.deconvolve(mdata, {"rna": refs["rna"]}, "cell_type", mod="prot", train_kwargs=TINY)
    with pytest.warns(DeprecationWarning), pytest.raises(TypeError, match="modality= only"):
        dco.tl.deconvolve(mdata, refs, "cell_type", mod="rna", modality="rna", train_kwargs=TINY)


def test_mudata_validates_every_reference_before_training(no_training):
    mdata, refs = _multiomics()
    refs["prot"].obs = refs["prot"].obs.rename(columns={"cell_type": "celltype"})
    with pytest.raises(KeyError, match=r"labels_key 'cell_type' is not a column of reference\['prot'\]\.obs"):
        dco.tl.deconvolve(mdata, refs, "cell_type", train_kwargs=TINY)
    assert "decode_rna" not in mdata.obsm and "decode" not in mdata["rna"].obsm


def test_anndata_params_record_model_kwargs(fitted):
    params = fitted["bulk"].uns["decode"]["params"]
    assert params.get("n_hidden", params.get("model_kwargs", {}).get("n_hidden")) == 128


def test_mudata_measured_fractions_from_the_mudata_obsm():
    """measured_key found in the MuData's .obsm (indexed by all samples) is read for each modality's own samples."""
    mdata, refs = _multiomics()
    flow = mdata["prot"].obsm["fractions"].reindex(mdata.obs_names)  # NaN where the modality lacks the sample
    flow.iloc[6:] = np.nan  # and where flow cytometry was not run: 6 samples measured
    mdata.obsm["flow"] = flow
    out = dco.tl.deconvolve(
        mdata, refs, "cell_type", modality="prot", measured_key="flow", copy=True, model_kwargs=SMALL, train_kwargs=TINY
    )
    assert out["prot"].uns["decode"]["params"]["platform_gains_from"] == "measured fractions of 6 samples"
    with pytest.raises(KeyError, match="measured_key 'facs' is not in the bulk's .obsm"):
        dco.tl.deconvolve(mdata, refs, "cell_type", modality="prot", measured_key="facs", train_kwargs=TINY)
