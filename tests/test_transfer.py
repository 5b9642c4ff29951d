"""Values read as stored (scale='as_is'): the features that do not transfer to the bulk's platform are masked."""

import numpy as np
import scvi
from conftest import fingerprint, reference_and_bulk
from lightning.pytorch.callbacks import Callback

import decode_omics as dco
from decode_omics.model import DECODE
from decode_omics.model._calibration import MIN_TRANSFER_SAMPLES as MIN_SAMPLES
from decode_omics.model._calibration import THRESHOLD, feature_agreement, transferable_features
from decode_omics.model._ensemble import members

FAST = {"max_epochs": 25, "n_pseudotissues": 1024, "enable_progress_bar": False, "early_stopping": False}


def test_agreement_tells_composition_signal_from_noise():
    rng = np.random.default_rng(0)
    means = rng.normal(0, 1, (3, 100))
    fractions = rng.dirichlet(np.ones(3), 80)
    bulk = fractions @ means + rng.normal(0, 0.05, (80, 100))
    bulk[:, :30] = rng.normal(0, 1, (80, 30))  # 30 features unrelated to the composition
    bulk[:, 30] = 2.0  # one constant feature
    r = feature_agreement(bulk, fractions, means)
    assert r[31:].min() > 0.7 and np.abs(r[:30]).max() < 0.4 and r[30] == 0.0
    keep = transferable_features(r)
    assert not keep[:31].any() and keep[31:].all()
    assert transferable_features(np.full(100, 0.9)) is None  # every feature agrees: nothing to mask
    assert transferable_features(np.r_[np.full(5, 0.9), np.zeros(95)]) is None  # too few agree to trust them


def _as_is_problem(seed: int, n_samples: int, scrambled_share: float):
    """Centred log values (no linear scale); the bulk's values of a share of the features are permuted over the
    samples, so they no longer follow the composition there, as proteins that another platform measures unrelatedly."""
    ref = reference_and_bulk(seed, n_samples=2, n_features=300)[0]
    logged = np.log2(np.asarray(ref.X) + 1)
    centred = ref.copy()
    centred.X = (logged - logged.mean(axis=0)).astype(np.float32)
    half = np.random.default_rng(seed).random(centred.n_obs) < 0.5
    ref, query = centred[half].copy(), centred[~half].copy()
    bulk = dco.pp.simulate_pseudobulk(
        query, "cell_type", n_samples=n_samples, cells_per_sample=15, fractions="uniform", scale="as_is", random_state=0
    )
    rng = np.random.default_rng(seed)
    scrambled = rng.random(bulk.n_vars) < scrambled_share
    X = np.asarray(bulk.X).copy()
    for j in np.flatnonzero(scrambled):
        X[:, j] = X[rng.permutation(n_samples), j]
    bulk.X = X
    return ref, bulk, scrambled


def _fit(ref, bulk, **train):
    scvi.settings.seed = 0
    DECODE.setup_anndata(ref, labels_key="cell_type", scale="as_is")
    DECODE.setup_anndata(bulk, scale="as_is")
    model = DECODE(ref, bulk)
    model.train(**(FAST | train))
    return model


def test_features_that_do_not_transfer_are_masked(tmp_path):
    ref, bulk, scrambled = _as_is_problem(11, n_samples=80, scrambled_share=0.6)
    truth = bulk.obsm["fractions"]
    untouched = fingerprint(bulk)
    model = _fit(ref, bulk)
    agreement = model.feature_agreement_
    assert agreement.index.tolist() == model.features and agreement.name == "feature_agreement"
    is_scrambled = scrambled[bulk.var_names.get_indexer(agreement.index)]
    mask = model.module.transform.mask.cpu().numpy().astype(bool)
    np.testing.assert_array_equal(mask, agreement.to_numpy() >= THRESHOLD)
    assert (~mask[is_scrambled]).mean() > 0.9  # scrambled features are masked
    assert is_scrambled[mask].mean() < 0.1  # what is kept is intact (intact features without label signal go too)
    masked = model.get_fractions()
    off = _fit(ref, bulk, platform_correction=False)
    assert off.feature_agreement_ is None and off.module.transform.mask.min() == 1
    assert dco.metrics.ccc(masked, truth) > dco.metrics.ccc(off.get_fractions(), truth) + 0.05  # 0.901 vs 0.782
    assert fingerprint(bulk) == untouched
    model.save(tmp_path / "model")
    loaded = DECODE.load(tmp_path / "model", bulk=bulk)
    np.testing.assert_allclose(loaded.feature_agreement_.to_numpy(), agreement.to_numpy())
    np.testing.assert_allclose(loaded.get_fractions().to_numpy(), masked.to_numpy(), atol=1e-6)


def test_nothing_masked_with_too_few_samples():
    ref, bulk, _ = _as_is_problem(12, n_samples=MIN_SAMPLES - 1, scrambled_share=0.6)
    model = _fit(ref, bulk, max_epochs=2)
    assert model.feature_agreement_ is None and model.module.transform.mask.min() == 1


def test_a_callers_callbacks_serve_both_trainings_and_stay_as_given():
    from lightning.pytorch.callbacks import Callback

    class CountStarts(Callback):
        starts = 0

        def on_train_start(self, trainer, pl_module):
            self.starts += 1

    ref, bulk, _ = _as_is_problem(11, n_samples=40, scrambled_share=0.6)
    count = CountStarts()
    callbacks = [count]
    model = _fit(ref, bulk, max_epochs=3, early_stopping=True, callbacks=callbacks)  # masks, then trains again
    assert model.feature_agreement_ is not None and model.module.transform.mask.min() == 0
    assert count.starts == 2 and callbacks == [count]


class _RecordTrainings(Callback):
    """Records each training run: how many networks, and for how many epochs."""

    def __init__(self):
        self.runs = []

    def on_train_start(self, trainer, pl_module):
        self.runs.append([len(members(pl_module.module)), trainer.max_epochs])


def test_an_ensembles_first_training_only_judges_the_features_and_is_shorter(tmp_path, monkeypatch):
    import decode_omics.model._model as model_module

    ref, bulk, _ = _as_is_problem(11, n_samples=40, scrambled_share=0.6)
    DECODE.setup_anndata(ref, labels_key="cell_type", scale="as_is")
    DECODE.setup_anndata(bulk, scale="as_is")
    record = _RecordTrainings()
    scvi.settings.seed = 0
    ensemble = DECODE(ref, bulk, n_members=2)
    ensemble.train(**(FAST | {"max_epochs": 6, "callbacks": [record]}))
    assert record.runs == [[2, 2], [2, 6]]  # a third of the epochs to judge, then in full on the features kept
    assert len(ensemble.history["train_loss"]) == 6
    keep = ensemble.feature_agreement_.to_numpy() >= THRESHOLD
    for member in members(ensemble.module):
        np.testing.assert_array_equal(member.transform.mask.cpu().numpy().astype(bool), keep)
    fractions = ensemble.get_fractions()
    ensemble.save(tmp_path / "ensemble")
    loaded = DECODE.load(tmp_path / "ensemble", bulk=bulk)
    np.testing.assert_allclose(loaded.get_fractions().to_numpy(), fractions.to_numpy(), atol=1e-6)
    # nothing to judge with fewer bulk samples: one training, in full, on every feature
    small = bulk[: MIN_SAMPLES - 1].copy()
    DECODE.setup_anndata(small, scale="as_is")
    record = _RecordTrainings()
    unjudged = DECODE(ref, small, n_members=2)
    unjudged.train(**(FAST | {"max_epochs": 6, "callbacks": [record]}))
    assert record.runs == [[2, 6]] and unjudged.feature_agreement_ is None
    # judged, and nothing to mask: trained again in full on every feature (never left with the shorter training)
    monkeypatch.setattr(model_module, "fit_transferable_features", lambda model: None)
    DECODE.setup_anndata(bulk, scale="as_is")  # registered again: the subset's registration took its place
    record = _RecordTrainings()
    with_all = DECODE(ref, bulk, n_members=2)
    with_all.train(**(FAST | {"max_epochs": 6, "callbacks": [record]}))
    assert record.runs == [[2, 2], [2, 6]] and with_all.module.transform.mask.min() == 1
