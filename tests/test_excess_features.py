"""``DECODE(max_feature_excess=...)``: features the bulk holds far more of than any label are left out."""

import numpy as np
import pytest
import scvi
from conftest import centred_as_is, reference_and_bulk

import decode_omics as dco
from decode_omics._engine.features import excess_features
from decode_omics.model import DECODE

FAST = {"max_epochs": 30, "n_pseudotissues": 1024, "enable_progress_bar": False, "early_stopping": False}
KNOWN = ["type0", "type1", "type2"]
#: The synthetic reference's marker block of type3 (200 features, 4 labels: 25 features per block).
TYPE3_MARKERS = {f"gene{j}" for j in range(75, 100)}


def _planted(seed=4):
    """type3 (its own 12x marker programme) in the bulk at a share of 0.2-0.6, not in the reference."""
    ref, bulk = reference_and_bulk(
        seed, n_samples=60, unknown=["type3"], unknown_fraction=(0.2, 0.6), unknown_column=True
    )
    ref = ref[ref.obs["cell_type"] != "type3"].copy()
    ref.obs["cell_type"] = ref.obs["cell_type"].cat.remove_unused_categories()
    DECODE.setup_anndata(ref, labels_key="cell_type")
    DECODE.setup_anndata(bulk)
    return ref, bulk


def _known_ccc(model, bulk) -> float:
    est = model.get_fractions()[KNOWN]
    truth = bulk.obsm["fractions"][KNOWN]
    return float(dco.metrics.ccc(est.div(est.sum(1), axis=0), truth.div(truth.sum(1), axis=0)))


def test_excess_features_flags_what_no_label_holds():
    means = np.array([[1.0, 1.0, 1.0, 1.0], [1.0, 3.0, 1.0, 1.0]])
    bulk = np.array([[1.0, 1.0, 20.0, 1.0], [1.0, 2.0, 30.0, 1.0], [1.0, 1.0, 25.0, 0.0]])
    assert excess_features(bulk, means, 3.0).tolist() == [False, False, True, False]
    assert not excess_features(bulk, means, 4.0).any()  # its ratio is 3.5 (0.87 of the sample, 0.25 of label 0)


def test_absent_cell_types_markers_are_left_out_and_the_split_improves(tmp_path):
    ref, bulk = _planted()
    scvi.settings.seed = 0
    plain = DECODE(ref, bulk)
    plain.train(**FAST)
    scvi.settings.seed = 0
    # the synthetic markers are 12x the base level, so at shares of 0.2-0.6 the bulk holds 3-8x what any label does
    model = DECODE(ref, bulk, max_feature_excess=3)
    dropped = set(model.excess_features_)
    # the absent type's own markers, and nothing else
    assert len(dropped) >= 15 and dropped <= TYPE3_MARKERS
    assert not dropped & set(model.features_)
    assert len(model.features_) == len(plain.features_) - len(dropped)
    model.train(**FAST)
    # measured 0.945 -> 0.983 (seed 0, 30 epochs): without the mask the absent type's markers go to the known labels
    assert _known_ccc(model, bulk) > _known_ccc(plain, bulk) + 0.02
    model.save(tmp_path / "m")
    loaded = DECODE.load(tmp_path / "m", bulk=bulk)
    assert loaded.excess_features_ == model.excess_features_ and loaded.features_ == model.features_
    assert loaded.excess_share_ is None and loaded.excess_carriers_ is None
    assert np.allclose(loaded.get_fractions().to_numpy(), model.get_fractions().to_numpy(), atol=1e-6)


def test_a_complete_reference_flags_nothing():
    ref, bulk = reference_and_bulk(4, n_samples=30)
    DECODE.setup_anndata(ref, labels_key="cell_type")
    DECODE.setup_anndata(bulk)
    assert DECODE(ref, bulk, max_feature_excess=2).excess_features_ == []
    assert DECODE(ref, bulk).excess_features_ == []


def test_max_feature_excess_refuses_what_it_cannot_do(no_training):
    ref, bulk = _planted()
    with pytest.raises(ValueError, match="pass bulk"):
        DECODE(ref, max_feature_excess=10)
    with pytest.raises(ValueError, match="ratio above 1"):
        DECODE(ref, bulk, max_feature_excess=0.5)
    stored_ref, stored_bulk = centred_as_is(ref), centred_as_is(bulk)
    with pytest.raises(ValueError, match="linear scale"):
        DECODE(stored_ref, stored_bulk, max_feature_excess=10)
    # the default, "auto", leaves values read as stored alone (they have no shares), and so a model without bulk
    assert DECODE(stored_ref, stored_bulk).excess_features_ == []
    ref, bulk = _planted()
    assert DECODE(ref).excess_features_ == [] and DECODE(ref).excess_share_ is None
    with pytest.raises(ValueError, match="'auto', a ratio above 1 or None"):
        DECODE(ref, bulk, max_feature_excess="always")


def test_auto_leaves_out_what_the_check_names_and_only_then():
    """``"auto"`` (the default) leaves features out at 10 where the bulk's median excess share reaches the check's
    threshold: a type with markers of its own at 120x, not the planted type at 12x (its markers reach 3-8x)."""
    from conftest import absent_marked_type

    strong_ref, strong_bulk = absent_marked_type()
    DECODE.setup_anndata(strong_ref, labels_key="cell_type")
    DECODE.setup_anndata(strong_bulk)
    auto = DECODE(strong_ref, strong_bulk)
    assert auto.init_params_["non_kwargs"]["max_feature_excess"] == 10.0  # resolved, as the model was built
    assert auto.excess_features_ == DECODE(strong_ref, strong_bulk, max_feature_excess=10).excess_features_
    assert len(auto.excess_features_) >= 15 and auto.excess_share_.median() >= 0.02
    assert DECODE(strong_ref, strong_bulk, max_feature_excess=None).excess_features_ == []
    weak_ref, weak_bulk = _planted()
    weak = DECODE(weak_ref, weak_bulk)
    assert weak.excess_features_ == [] and weak.excess_share_.median() < 0.02
    assert weak.init_params_["non_kwargs"]["max_feature_excess"] is None


def test_auto_where_nothing_is_counted_builds_the_model_the_defaults_built_before():
    ref, bulk = reference_and_bulk(4, n_samples=20)
    DECODE.setup_anndata(ref, labels_key="cell_type")
    DECODE.setup_anndata(bulk)
    fractions = []
    for setting in ("auto", None):
        scvi.settings.seed = 0
        model = DECODE(ref, bulk, max_feature_excess=setting)
        model.train(**(FAST | {"max_epochs": 3}))
        fractions.append(model.get_fractions().to_numpy())
    assert np.array_equal(fractions[0], fractions[1])
