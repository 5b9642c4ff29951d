import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import scvi
import torch
from conftest import fingerprint, reference_and_bulk
from mudata import MuData

import decode_omics as dco
from decode_omics.model import DECODE

FAST = {"max_epochs": 25, "n_pseudotissues": 1024, "enable_progress_bar": False, "early_stopping": False}


def _problem(seed=0, unknown=None, n_samples=40):
    return reference_and_bulk(
        seed, n_samples=n_samples, unknown=unknown, unknown_fraction=(0.0, 0.4), unknown_column=unknown is not None
    )


def _fit(ref, bulk, seed=0, model_kwargs=None, **train):
    scvi.settings.seed = seed
    DECODE.setup_anndata(ref, labels_key="cell_type")
    DECODE.setup_anndata(bulk)
    model = DECODE(ref, bulk, **(model_kwargs or {}))
    model.train(**(FAST | train))
    return model


@pytest.fixture(scope="module")
def fitted():
    ref, bulk = _problem()
    return _fit(ref, bulk, adversarial=True), ref, bulk


def test_recovers_easy_problem(fitted):
    model, _, bulk = fitted
    f = model.get_fractions()
    assert list(f.columns) == ["type0", "type1", "type2", "type3"]
    assert list(f.index) == list(bulk.obs_names)
    np.testing.assert_allclose(f.sum(axis=1), 1.0, atol=1e-5)
    assert dco.metrics.ccc(f, bulk.obsm["fractions"]) > 0.9
    for key in (
        "fraction_loss_train",
        "contrastive_loss_train",
        "discriminator_accuracy_train",
        "spread_loss_train",
        "fraction_loss_validation",
    ):
        assert key in model.history
    # the fraction loss falls during training
    loss = model.history["fraction_loss_train"].iloc[:, 0].to_numpy()
    assert loss[-1] < 0.5 * loss[0]
    z = model.get_latent_representation()
    assert z.shape == (bulk.n_obs, 128)


def test_same_seed_same_fractions_and_inputs_unchanged():
    ref, bulk = _problem(seed=3)
    before_ref, before_bulk = fingerprint(ref), fingerprint(bulk)
    a = _fit(ref, bulk, seed=1, max_epochs=3).get_fractions()
    b = _fit(ref, bulk, seed=1, max_epochs=3).get_fractions()
    c = _fit(ref, bulk, seed=2, max_epochs=3).get_fractions()
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a.to_numpy(), c.to_numpy())
    assert fingerprint(ref) == before_ref and fingerprint(bulk) == before_bulk


def test_save_load_identical(fitted, tmp_path):
    model, ref, bulk = fitted
    model.save(tmp_path / "m")
    with pytest.raises(ValueError, match="overwrite=True"):
        model.save(tmp_path / "m")
    loaded = DECODE.load(tmp_path / "m", bulk=bulk)
    pd.testing.assert_frame_equal(loaded.get_fractions(), model.get_fractions())
    pd.testing.assert_frame_equal(loaded.get_fractions(bulk), model.get_fractions(bulk))
    assert loaded.labels == model.labels and loaded.features == model.features
    assert "fraction_loss_train" in loaded.history
    # continuing needs the reference; with it, the domain distance works
    again = DECODE.load(tmp_path / "m", reference=ref)
    assert again.get_domain_distance(bulk).shape == (bulk.n_obs,)


#: The weight names of model files since the first release (one stage per component inside, these names on disk).
FILE_KEYS = {
    "label_profiles",
    "transform.center",
    "transform.scale",
    "transform.mask",
    "encoder.0.0.weight",
    "denoiser.net.0.weight",
    "head.0.0.weight",
    "head.1.weight",
    "discriminator.0.0.weight",
    "projector.2.weight",
}


def test_model_files_keep_their_weight_names(fitted, tmp_path):
    """Files hold the weights under the names of the first release, so older files load and predict the same."""
    from decode_omics.model._module import from_file_layout, to_file_layout

    model, _, bulk = fitted
    model.save(tmp_path / "m")
    state = torch.load(tmp_path / "m" / "model_weights.pt", weights_only=True)
    assert FILE_KEYS <= set(state) and not any(k.startswith(("adversary.", "head.relative")) for k in state)
    assert set(from_file_layout(state)) == set(model.module.state_dict())
    assert set(to_file_layout(model.module.state_dict())) == set(state)
    # a file from before the feature mask existed (no transform.mask) loads with every feature read
    del state["transform.mask"]
    torch.save(state, tmp_path / "m" / "model_weights.pt")
    loaded = DECODE.load(tmp_path / "m", bulk=bulk)
    assert loaded.module.transform.mask.min() == 1
    pd.testing.assert_frame_equal(loaded.get_fractions(), model.get_fractions())


def test_load_refuses_code_and_bad_folders(fitted, tmp_path):
    model, _, _bulk = fitted
    model.save(tmp_path / "m")

    class Exploit:
        def __reduce__(self):
            return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))

    with open(tmp_path / "m" / "model_weights.pt", "wb") as fh:
        pickle.dump({"x": Exploit()}, fh)
    with pytest.raises(ValueError, match="could not be read as plain tensors"):
        DECODE.load(tmp_path / "m")
    assert not (tmp_path / "PWNED").exists()
    with pytest.raises(FileNotFoundError, match="No saved model folder"):
        DECODE.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="is not a DECODE model folder"):
        DECODE.load(tmp_path / "empty")
    model.save(tmp_path / "m2")
    (tmp_path / "m2" / "model_attributes.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupted"):
        DECODE.load(tmp_path / "m2")


def test_new_bulk_is_validated_against_features(fitted):
    model, _, bulk = fitted
    with pytest.raises(ValueError, match="lack 5 of the 200 features"):
        model.get_fractions(bulk[:, 5:].copy())
    # extra or reordered features are fine
    shuffled = bulk[:, np.random.default_rng(0).permutation(bulk.n_vars)].copy()
    pd.testing.assert_frame_equal(model.get_fractions(shuffled), model.get_fractions(bulk), atol=1e-5)


def test_absolute_mode_reports_planted_unknown():
    ref, bulk = _problem(seed=4, unknown=["type3"], n_samples=60)
    ref = ref[ref.obs["cell_type"] != "type3"].copy()
    ref.obs["cell_type"] = ref.obs["cell_type"].cat.remove_unused_categories()
    model = _fit(ref, bulk, model_kwargs={"mode": "absolute"}, max_epochs=60)
    f = model.get_fractions()
    assert list(f.columns) == ["type0", "type1", "type2", "unknown"]
    np.testing.assert_allclose(f.sum(axis=1), 1.0, atol=1e-5)
    truth = bulk.obsm["fractions"]
    # the unknown share follows the planted one
    assert np.corrcoef(f["unknown"], truth["unknown"])[0, 1] > 0.6
    assert np.sqrt(((f["unknown"] - truth["unknown"]) ** 2).mean()) < 0.15
    assert dco.metrics.ccc(f, truth) > 0.85
    # the known labels' fractions, renormalised over them, are as accurate as in relative mode (0.99 there)
    known = ["type0", "type1", "type2"]
    over_known = [d[known].div(d[known].sum(axis=1), axis=0) for d in (f, truth)]
    assert dco.metrics.ccc(*over_known) > 0.95


def test_unknown_share_beyond_the_training_reach_needs_a_wider_reach(tmp_path):
    """Bulk of which the material the reference lacks makes 50-80 %: a head trained on shares up to 0.5 reads at
    most about 0.5; one trained up to 0.8 follows the truth. The reach is saved with the model."""
    ref, bulk = reference_and_bulk(4, n_samples=60, unknown=["type3"], unknown_fraction=(0.5, 0.8), unknown_column=True)
    ref = ref[ref.obs["cell_type"] != "type3"].copy()
    ref.obs["cell_type"] = ref.obs["cell_type"].cat.remove_unused_categories()
    truth = bulk.obsm["fractions"]["unknown"]
    errors = {}
    for reach in (0.5, 0.8):
        model = _fit(ref, bulk, model_kwargs={"mode": "absolute", "max_unknown_share": reach}, max_epochs=60)
        errors[reach] = float(np.sqrt(((model.get_fractions()["unknown"] - truth) ** 2).mean()))
    assert errors[0.8] < 0.11 and errors[0.5] > 0.14
    model.save(tmp_path / "m")
    loaded = DECODE.load(tmp_path / "m", reference=ref)
    assert loaded._sampler.config.unknown_share == 0.8
    with pytest.raises(ValueError, match="max_unknown_share must be a share in"):
        DECODE(ref, bulk, max_unknown_share=1.0)
    assert DECODE(ref, bulk, mode="absolute")._sampler.config.unknown_share == 0.5  # the default


def test_spread_guard_keeps_aligned_bulk_estimates_apart():
    """Across a platform shift (log-normal per-feature gains, sd 1.0), the adversarial stage without its spread guard
    maps the bulk's codes close together, so their estimates lose their spread; the guard keeps them apart and
    accurate."""
    ref, bulk = _problem(n_samples=200)
    truth = bulk.obsm["fractions"]
    bulk.X = np.asarray(bulk.X) * np.exp(np.random.default_rng(5).standard_normal(bulk.n_vars))
    # the platform gains are off: they would undo part of the shift and hide what the guard does
    guarded = _fit(ref, bulk, adversarial=True, platform_correction=False).get_fractions()
    unguarded = _fit(ref, bulk, adversarial=True, spread_weight=0.0, platform_correction=False).get_fractions()
    assert dco.metrics.ccc(guarded, truth) > 0.9
    assert guarded.std().mean() > 0.8 * truth.std().mean()
    assert unguarded.std().mean() < 0.6 * guarded.std().mean()


def test_spread_guard_survives_a_batch_of_one():
    """129 pseudo-tissues in batches of 128 leave a last batch of one sample, which has no spread: training goes on
    and the fractions stay finite."""
    ref, bulk = _problem()
    model = _fit(ref, bulk, adversarial=True, n_pseudotissues=129, batch_size=128, max_epochs=3)
    assert np.isfinite(model.history["train_loss"].to_numpy(dtype=float)).all()
    assert np.isfinite(model.get_fractions().to_numpy()).all()


def test_reference_fit_flags_a_platform_shift_and_absolute_mode_warns():
    from decode_omics.model._calibration import PLATFORM_SHIFT_WARNING

    ref, bulk = _problem(seed=6)
    shifted = bulk.copy()  # another platform: every feature measured with its own efficiency (log-normal, sd 1.2)
    shifted.X = np.asarray(bulk.X) * np.exp(np.random.default_rng(0).normal(0, 1.2, bulk.n_vars))
    untouched = fingerprint(shifted)
    model = _fit(ref, bulk, model_kwargs={"mode": "absolute"}, max_epochs=2)
    same = model.get_reference_fit()
    assert same.index.equals(bulk.obs_names) and same.name == "reference_fit"
    assert same.max() < PLATFORM_SHIFT_WARNING
    assert model.get_reference_fit(shifted).min() > 2 * PLATFORM_SHIFT_WARNING
    assert fingerprint(shifted) == untouched
    with pytest.warns(UserWarning, match="read it as an upper bound"):
        model.get_fractions(shifted)
    with pytest.warns(UserWarning, match="read it as an upper bound"):
        next(model.iter_fractions(shifted))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.get_fractions()
    assert not [w for w in caught if "upper bound" in str(w.message)]


def test_values_as_stored_for_data_without_a_linear_scale():
    """Centred single-cell proteomics (log-ratios): mixtures are sums of stored values, read with scale='as_is'."""
    ref = reference_and_bulk(7, n_samples=2)[0]
    logged = np.log2(np.asarray(ref.X) + 1)
    centred = ref.copy()
    centred.X = (logged - logged.mean(axis=0)).astype(np.float32)  # negative values, no linear scale
    half = np.random.default_rng(7).random(centred.n_obs) < 0.5
    ref, query = centred[half].copy(), centred[~half].copy()
    bulk = dco.pp.simulate_pseudobulk(
        query, "cell_type", n_samples=40, cells_per_sample=15, fractions="uniform", scale="as_is", random_state=0
    )
    untouched = fingerprint(bulk)
    scvi.settings.seed = 0
    DECODE.setup_anndata(ref, labels_key="cell_type", scale="as_is")
    DECODE.setup_anndata(bulk, scale="as_is")
    with pytest.raises(ValueError, match="Use mode='relative'"):
        DECODE(ref, bulk, mode="absolute")
    model = DECODE(ref, bulk)
    model.train(**FAST)
    assert dco.metrics.ccc(model.get_fractions(), bulk.obsm["fractions"]) > 0.8  # 0.89 measured
    with pytest.raises(ValueError, match="needs a linear scale"):
        model.get_reference_fit()
    assert fingerprint(bulk) == untouched


def test_mudata_path():
    ref, bulk = _problem(seed=5)
    mdata = MuData({"rna": bulk})
    scvi.settings.seed = 0
    DECODE.setup_anndata(ref, labels_key="cell_type")
    DECODE.setup_mudata(mdata, modality="rna")
    model = DECODE(ref, mdata)
    model.train(**FAST)
    f = model.get_fractions()
    assert dco.metrics.ccc(f, bulk.obsm["fractions"]) > 0.9
    pd.testing.assert_frame_equal(model.get_fractions(mdata, modality="rna"), f)
    with pytest.raises(KeyError, match="Modality 'prot' is not in the MuData"):
        DECODE.setup_mudata(mdata, modality="prot")


def test_setup_errors():
    ref, _bulk = _problem()
    with pytest.raises(KeyError, match="labels_key 'celltype' is not a column"):
        DECODE.setup_anndata(ref, labels_key="celltype")
    with pytest.raises(KeyError, match="Layer 'counts' is not in adata.layers"):
        DECODE.setup_anndata(ref, labels_key="cell_type", layer="counts")
    DECODE.setup_anndata(ref)
    with pytest.raises(ValueError, match="registered without labels_key"):
        DECODE(ref)
    DECODE.setup_anndata(ref, labels_key="cell_type")
    with pytest.raises(ValueError, match="mode must be"):
        DECODE(ref, mode="both")


def test_stages_switch_off():
    ref, bulk = _problem(seed=6)
    model = _fit(ref, bulk, adversarial=False, denoise=False, max_epochs=3)
    assert "adversarial_loss_train" not in model.history
    assert "contrastive_loss_train" not in model.history
    assert model.train_settings_["denoise"] is False


def test_contrastive_gradient_reaches_denoiser():
    module = dco.model.DECODEModule(20, 3)
    z = torch.randn(8, 128)
    signal, noise = module.denoiser(z + 0.1 * torch.randn_like(z))
    module.denoiser.loss(z, signal, noise).backward()
    grads = [p.grad for p in module.denoiser.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)


class _CtrlCAt:
    """A Lightning callback that presses Ctrl+C (raises KeyboardInterrupt) at the end of an epoch."""

    def __init__(self, epoch: int):
        from lightning.pytorch.callbacks import Callback

        self.epoch = epoch
        outer = self

        class Press(Callback):
            def on_train_epoch_end(self, trainer, pl_module):
                if trainer.current_epoch == outer.epoch:
                    raise KeyboardInterrupt

        self.callback = Press()


def test_keyboard_interrupt_keeps_what_was_learned():
    """Ctrl+C in training: no exit, the weights learned so far are kept and usable, Ctrl+C works again after."""
    import signal

    ref, bulk = _problem(seed=5)
    handler = signal.getsignal(signal.SIGINT)
    scvi.settings.seed = 0
    DECODE.setup_anndata(ref, labels_key="cell_type")
    DECODE.setup_anndata(bulk)
    model = DECODE(ref, bulk)
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    model.train(**(FAST | {"max_epochs": 50, "callbacks": [_CtrlCAt(epoch=4).callback]}))
    assert model.is_trained_
    assert len(model.history["fraction_loss_train"]) == 4  # epochs 0-3 logged; Ctrl+C at the end of epoch 4
    changed = [k for k, v in model.module.state_dict().items() if not torch.equal(v, before[k])]
    assert changed
    assert dco.metrics.ccc(model.get_fractions(), bulk.obsm["fractions"]) > 0.7
    assert signal.getsignal(signal.SIGINT) == handler


def test_inference_methods_share_their_parameter_text():
    for name in ("get_fractions", "iter_fractions", "get_latent_representation", "get_reference_fit"):
        doc = getattr(DECODE, name).__doc__
        assert "adata, layer, modality, scale\n" in doc and "{data}" not in doc, name
    assert "platform_correction\n    Divide the samples" in DECODE.get_fractions.__doc__
    assert "{show_save}" not in dco.pl.truth.__doc__ and "show, save\n" in dco.pl.truth.__doc__
