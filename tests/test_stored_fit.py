"""Values read as stored (scale='as_is'): samples that point outside every non-negative mix of the reference's labels
are measured (``get_stored_fit``) and, when many, named in a warning by ``tl.deconvolve``."""

import warnings

import numpy as np
import pytest
from conftest import reference_and_bulk, synthetic_reference

import decode_omics as dco
from decode_omics.model import DECODE
from decode_omics.model._stored_fit import CANCELLING_MIX, OUTSIDE_WARNING_SHARE, cone_excess, mix_cancellation

QUICK = {"max_epochs": 2, "n_pseudotissues": 256, "enable_progress_bar": False}
WARNING = "point outside every non-negative mix"


def _centred_cells(seed: int = 3):
    """Three cell types, log values centred per feature over all cells (as z-scores and log-ratios are), split into
    reference and query halves; 60 mixtures of 15 query cells summed as stored (uniform fractions)."""
    cells = synthetic_reference(n_labels=3, cells_per_label=120, n_features=120, seed=seed)
    logged = np.log1p(np.asarray(cells.X))
    cells.X = (logged - logged.mean(axis=0)).astype(np.float32)
    half = np.random.default_rng(seed).random(cells.n_obs) < 0.5
    ref, query = cells[half].copy(), cells[~half].copy()
    bulk = dco.pp.simulate_pseudobulk(
        query, "cell_type", n_samples=60, cells_per_sample=15, fractions="uniform", scale="as_is", random_state=seed
    )
    return ref, bulk


def _without(ref, label):
    out = ref[ref.obs["cell_type"] != label].copy()
    out.obs["cell_type"] = out.obs["cell_type"].cat.remove_unused_categories()
    return out


def _deconvolve(bulk, ref):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dco.tl.deconvolve(
            bulk, ref, "cell_type", scale="as_is", reference_scale="as_is", train_kwargs=QUICK, random_state=0
        )
    return [str(w.message) for w in caught if WARNING in str(w.message)]


def test_cone_excess_is_zero_inside_the_mixes_and_grows_outside():
    rng = np.random.default_rng(0)
    profiles = rng.normal(size=(2, 40))
    inside = np.array([0.3, 0.7]) @ profiles
    off_span = inside + 0.5 * rng.normal(size=40)  # noise off the labels' span: still no sign constraint hit
    outside = -(profiles[0] + profiles[1])  # "less of both", as missing material reads in centred values
    excess = cone_excess(np.stack([inside, 3.0 * inside, off_span, outside, np.zeros(40)]), profiles)
    assert excess[0] == pytest.approx(0.0, abs=1e-10) and excess[1] == pytest.approx(0.0, abs=1e-10)
    assert excess[2] < 0.05
    assert excess[3] > 0.9  # no non-negative mix points that way: almost all of it is missed
    assert np.isnan(excess[4])


def test_deconvolve_names_samples_when_the_reference_lacks_a_type():
    ref, bulk = _centred_cells()
    truth = bulk.obsm["fractions"]
    messages = _deconvolve(bulk, _without(ref, "type2"))
    assert len(messages) == 1 and "A reference with the missing cell types is the fix" in messages[0]
    assert "trained on the material the reference's centring implies" in messages[0]
    checked = bulk.uns["decode"]["outside_mixtures"]
    assert checked["checked"] and checked["share_outside"] >= OUTSIDE_WARNING_SHARE
    assert checked["centring_complement"]
    fit = bulk.obs["decode_stored_fit"]
    flagged = fit.index.isin(checked["flagged"])
    assert (fit[flagged] > checked["threshold"]).all()
    # the named samples hold more of the missing type than the others
    assert truth.loc[flagged, "type2"].mean() > truth.loc[~flagged, "type2"].mean() + 0.1


def test_reference_centred_over_its_own_cells_is_not_checked():
    ref, bulk = _centred_cells()
    assert _deconvolve(bulk, ref) == []
    checked = bulk.uns["decode"]["outside_mixtures"]
    assert not checked["checked"] and checked["flagged"] == []
    assert checked["mix_cancellation"] < CANCELLING_MIX and "cancel" in checked["why_not"]
    assert not checked["centring_complement"]
    assert "decode_stored_fit" in bulk.obs


def test_mix_cancellation():
    rng = np.random.default_rng(1)
    profiles = rng.normal(size=(3, 50))
    centred = profiles - profiles.mean(axis=0)  # every feature sums to 0 over the labels
    assert mix_cancellation(centred) < 1e-6
    assert mix_cancellation(centred[:2]) > 0.4  # one of them left out: the other two do not cancel
    assert mix_cancellation(np.abs(profiles)) > 0.4  # non-negative profiles never cancel


def test_stored_fit_is_for_values_read_as_stored(no_training):
    ref, bulk = reference_and_bulk(7, n_samples=10)
    DECODE.setup_anndata(ref, labels_key="cell_type")
    DECODE.setup_anndata(bulk)
    model = DECODE(ref, bulk)
    model.is_trained_ = True
    with pytest.raises(ValueError, match="use get_reference_fit"):
        model.get_stored_fit()


def _fitted(ref, bulk, centring_complement=None, epochs: int = 10):
    import scvi

    scvi.settings.seed = 0
    DECODE.setup_anndata(ref, labels_key="cell_type", scale="as_is")
    DECODE.setup_anndata(bulk, scale="as_is")
    model = DECODE(ref, bulk, centring_complement=centring_complement)
    model.train(max_epochs=epochs, n_pseudotissues=512, enable_progress_bar=False)
    return model


def _known_split_ccc(model, bulk, known) -> float:
    truth = bulk.obsm["fractions"][known]
    truth = truth.div(truth.sum(axis=1), axis=0)
    return dco.metrics.ccc(model.get_fractions().loc[truth.index, known], truth)


def test_centring_complement_points_against_the_references_cell_weighted_mean():
    ref, _ = _centred_cells()
    ref = _without(ref, "type2")
    DECODE.setup_anndata(ref, labels_key="cell_type", scale="as_is")
    model = DECODE(ref)
    assert model.centring_complement_
    generator = model._sampler.generator
    cells = generator.centring_complement(np.random.default_rng(0), np.full(400, 15))
    sizes = generator.index.sizes
    centre = (sizes / sizes.sum()) @ generator.mean
    direction = cells.mean(axis=0)
    cosine = direction @ centre / (np.linalg.norm(direction) * np.linalg.norm(centre))
    assert cosine < -0.95  # the cells the centring implies: minus the reference's cell-weighted mean
    assert (cells < 0).any() and (cells > 0).any()  # signed values, nothing clipped


def test_centring_complement_amount_varies_per_sample():
    ref, _ = _centred_cells()
    ref = _without(ref, "type2")
    DECODE.setup_anndata(ref, labels_key="cell_type", scale="as_is")
    generator = DECODE(ref)._sampler.generator
    cells = generator.centring_complement(np.random.default_rng(0), np.full(2000, 15))
    centre = (generator.index.sizes / generator.index.sizes.sum()) @ generator.mean
    amount = cells @ (-centre / np.linalg.norm(centre))  # how far along the implied direction each sample lies
    assert (amount > 0).all()
    # a factor log-uniform on [1/3, 3] per sample: its 1st and 99th percentiles lie 8.6x apart (measured 8.8 here;
    # 1.2 with one amount for every sample, the spread of the cells drawn alone)
    spread = np.quantile(amount, 0.99) / np.quantile(amount, 0.01)
    assert 7.0 < spread < 11.0


def test_training_on_the_centring_complement_reads_the_known_split_better():
    ref, bulk = _centred_cells(seed=4)
    lacking = _without(ref, "type2")
    with_complement = _fitted(lacking, bulk)
    without = _fitted(lacking, bulk, centring_complement=False)
    assert with_complement.centring_complement_ and not without.centring_complement_
    known = ["type0", "type1"]
    # measured 0.841 / 0.863 / 0.862 against 0.788 / 0.817 / 0.820 (model seeds 0-2, 10 epochs; 0.854 / 0.874 / 0.890
    # before the complement's magnitude varied per sample)
    assert _known_split_ccc(with_complement, bulk, known) > _known_split_ccc(without, bulk, known) + 0.03
    # a reference centred over its own cells lacks nothing of it: off, and nothing else changes
    assert not _fitted(ref, bulk, epochs=1).centring_complement_


def test_centring_complement_survives_save_and_load(tmp_path):
    ref, bulk = _centred_cells()
    lacking = _without(ref, "type2")
    model = _fitted(lacking, bulk, epochs=2)
    model.save(tmp_path / "m")
    loaded = DECODE.load(tmp_path / "m", reference=lacking, bulk=bulk)
    assert loaded.centring_complement_ and loaded._sampler.config.unknown_material == "complement"
    np.testing.assert_allclose(loaded.get_fractions().to_numpy(), model.get_fractions().to_numpy(), atol=1e-6)


def test_centring_complement_refused_where_it_cannot_apply():
    ref, _ = _centred_cells()
    DECODE.setup_anndata(ref, labels_key="cell_type", scale="as_is")
    with pytest.raises(ValueError, match="do not cancel; these do"):
        DECODE(ref, centring_complement=True)
    linear, _ = reference_and_bulk()
    DECODE.setup_anndata(linear, labels_key="cell_type")
    with pytest.raises(ValueError, match="for values read as stored"):
        DECODE(linear, centring_complement=True)


def test_intervals_of_a_model_trained_on_the_centring_complement_are_calibrated_with_it():
    ref, bulk = _centred_cells()
    lacking = _without(ref, "type2")
    model = _fitted(lacking, bulk, epochs=2)
    calibration = model.interval_calibration_
    assert calibration["unknown_share"] == 0.5 and calibration["unknown_share_from"] == "centring complement"
    full = _fitted(ref, bulk, epochs=2)
    assert full.interval_calibration_["unknown_share"] == 0.0
