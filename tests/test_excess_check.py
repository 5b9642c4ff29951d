"""The excess-share check: ``DECODE.get_excess_share`` and the warning of ``tl.deconvolve`` that names samples holding
material no mix of the reference's labels holds, and the features that carry it."""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import TYPE3_MARKERS, absent_marked_type, centred_as_is, reference_and_bulk

import decode_omics as dco
from decode_omics._engine.features import counted_excess, feature_excess
from decode_omics.model import DECODE
from decode_omics.model._excess_check import EXCESS_RATIO, EXCESS_WARNING, N_CARRIERS, check_excess

FAST = {"max_epochs": 5, "n_pseudotissues": 512, "enable_progress_bar": False, "early_stopping": False}


def test_feature_excess_is_a_lower_bound_on_the_material_no_label_holds():
    rng = np.random.default_rng(0)
    labels = rng.gamma(2.0, 1.0, size=(4, 50))
    mixes = rng.dirichlet(np.ones(4), size=30) @ (labels / labels.sum(axis=1, keepdims=True))
    # any mix of the labels holds no feature beyond its largest label's share
    assert np.allclose(feature_excess(mixes, labels, 1.0), 0.0)
    # with other material at share u, the excess is at most u, and it grows with u
    other = np.zeros(50)
    other[:5] = 1.0 / 5
    shares = np.linspace(0.0, 0.8, 30)
    samples = (1 - shares)[:, None] * mixes + shares[:, None] * other
    total = feature_excess(samples, labels, 1.0).sum(axis=1)
    assert np.all(total <= shares + 1e-12) and total[-1] > 0.5 * shares[-1]
    assert np.all(np.diff(total) >= -1e-12)
    # a larger factor counts less
    assert np.all(feature_excess(samples, labels, 3.0).sum(axis=1) <= total + 1e-12)
    with pytest.raises(ValueError, match="at least 1"):
        feature_excess(samples, labels, 0.5)
    # only features beyond the bound in most samples count: one bursting in a single sample does not
    burst = mixes.copy()
    burst[0, 40] *= 1000.0
    assert feature_excess(burst, labels, 1.0)[0, 40] > 0 and counted_excess(burst, labels, 1.0)[0, 40] == 0
    assert np.allclose(counted_excess(samples, labels, 1.0), feature_excess(samples, labels, 1.0))  # all counted


def _deconvolved(ref, bulk, **model_kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = dco.tl.deconvolve(
            bulk, ref, "cell_type", model_kwargs=model_kwargs, train_kwargs=FAST, return_model=True
        )
    return model, next((str(w.message) for w in caught if "no mix of the reference" in str(w.message)), None)


def test_deconvolve_names_the_samples_and_the_absent_types_markers_and_leaves_them_out(tmp_path):
    ref, bulk = absent_marked_type()
    model, message = _deconvolved(ref, bulk)
    share = bulk.obs["decode_excess_share"]
    truth = bulk.obsm["fractions"]["unknown"]
    # a lower bound on the absent type's share, and it follows it
    assert (share <= truth + 1e-6).all() and share.median() >= EXCESS_WARNING
    assert np.corrcoef(share, truth)[0, 1] > 0.8
    checked = bulk.uns["decode"]["excess"]
    assert checked["flagged"] == list(bulk.obs_names[share >= EXCESS_WARNING])
    assert checked["ratio"] == EXCESS_RATIO and checked["threshold"] == EXCESS_WARNING
    # the features that carry it are the absent type's markers ...
    assert len(checked["carriers"]) == N_CARRIERS and set(checked["carriers"]) <= set(TYPE3_MARKERS)
    # ... which max_feature_excess="auto" (the default) left out before training, as the warning says
    assert set(checked["carriers"]) <= set(model.excess_features_) <= set(TYPE3_MARKERS)
    assert checked["left_out"] == model.excess_features_
    assert f"{len(checked['flagged'])} of {bulk.n_obs} samples" in message
    assert next(iter(checked["carriers"])) in message and "obs['decode_excess_share']" in message
    assert f"The model left these {len(model.excess_features_)} features out" in message
    # the shares reported are those read before any feature was left out
    assert np.allclose(model.excess_share_.to_numpy(), share.to_numpy())
    assert not set(model.excess_features_) & set(model.features_)
    bulk.write_h5ad(tmp_path / "bulk.h5ad")  # the record survives h5ad


def test_with_every_feature_kept_the_model_reads_the_same_shares_and_the_warning_names_the_option():
    ref, bulk = absent_marked_type()
    model, message = _deconvolved(ref, bulk, max_feature_excess=None)
    share = bulk.obs["decode_excess_share"]
    assert model.excess_features_ == [] and model.excess_share_ is None
    assert "max_feature_excess=10" in message and "left out" not in message
    # the model's method reads the same, and by feature the carriers, largest first
    assert np.allclose(model.get_excess_share().to_numpy(), share.to_numpy())
    by_feature = model.get_excess_share(by="feature")
    assert by_feature.is_monotonic_decreasing and (by_feature > 0).all()
    assert list(by_feature.index[:N_CARRIERS]) == list(bulk.uns["decode"]["excess"]["carriers"])
    # a smaller factor counts more
    assert (model.get_excess_share(max_excess=2.0).to_numpy() >= share.to_numpy() - 1e-12).all()


def test_a_complete_reference_reads_no_excess_and_warns_nothing():
    ref, bulk = reference_and_bulk(4, n_samples=20)  # every label in the reference
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dco.tl.deconvolve(bulk, ref, "cell_type", train_kwargs=FAST)
    assert bulk.obs["decode_excess_share"].max() == 0.0
    assert bulk.uns["decode"]["excess"]["flagged"] == [] and bulk.uns["decode"]["excess"]["carriers"] == {}
    assert not [w for w in caught if "no mix of the reference" in str(w.message)]


def test_check_excess_gates_on_the_median_and_drops_the_opt_in_advice_once_taken():
    names = [f"s{i}" for i in range(5)]
    carriers = pd.Series([0.03, 0.01], index=["LYZ", "FGL2"])
    low = pd.Series([0.0, 0.01, 0.05, 0.0, 0.01], index=names)  # one sample high, the median low: silent
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = check_excess(low, carriers)
    assert not caught and out["flagged"] == [] and out["median"] == 0.01
    high = pd.Series([0.03, 0.01, 0.05, 0.02, 0.04], index=names)
    named = r"4 of 5 samples \(s0, s2, s3, s4; .*It sits on 2 features .*\(LYZ, FGL2\).*max_feature_excess"
    with pytest.warns(UserWarning, match=named):
        out = check_excess(high, carriers)
    assert out["flagged"] == ["s0", "s2", "s3", "s4"] and out["carriers"] == {"LYZ": 0.03, "FGL2": 0.01}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_excess(high, carriers, left_out=["LYZ", "FGL2"])
    assert len(caught) == 1 and "max_feature_excess=10" not in str(caught[0].message)
    assert "The model left these 2 features out" in str(caught[0].message)


def test_only_features_beyond_the_bound_in_most_samples_count(no_training):
    """A feature that bursts in a few samples (cell-to-cell sampling in mixtures of a few cells) does not count; one
    the whole cohort holds beyond the bound does."""
    ref, bulk = reference_and_bulk(4, n_samples=20)
    DECODE.setup_anndata(ref, labels_key="cell_type")
    DECODE.setup_anndata(bulk)
    model = DECODE(ref, bulk)
    assert (model.get_excess_share() == 0).all() and model.get_excess_share(by="feature").empty
    burst = bulk.copy()
    burst.X[:3, 10] *= 1000.0  # three samples of twenty
    assert (model.get_excess_share(burst) == 0).all()
    held = bulk.copy()
    held.X[:, 10] *= 1000.0  # every sample
    share = model.get_excess_share(held)
    assert (share > 0.2).all()
    assert list(model.get_excess_share(held, by="feature").index) == ["gene10"]


def test_get_excess_share_refuses_what_it_cannot_read(no_training):
    ref, bulk = absent_marked_type(n_samples=10)
    DECODE.setup_anndata(ref, labels_key="cell_type")
    DECODE.setup_anndata(bulk)
    model = DECODE(ref, bulk)
    with pytest.raises(ValueError, match="by must be 'sample' or 'feature'"):
        model.get_excess_share(by="label")
    with pytest.raises(ValueError, match="at least 1"):
        model.get_excess_share(max_excess=0.5)
    stored_ref, stored_bulk = centred_as_is(ref), centred_as_is(bulk)
    with pytest.raises(ValueError, match="needs a linear scale"):
        DECODE(stored_ref, stored_bulk).get_excess_share()
