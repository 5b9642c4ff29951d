"""What the reference leaves unexplained: a relative-mode model's unknown head, ``get_unexplained`` and the warning of
``tl.deconvolve``; and the training option that fits the fractions on pseudo-tissues with unknown material."""

import warnings

import numpy as np
import pandas as pd
import pytest
import scvi
import torch
from conftest import reference_and_bulk

import decode_omics as dco
from decode_omics.model import DECODE, DECODEModule, DECODETrainingPlan
from decode_omics.model._calibration import UNEXPLAINED_MAX_FIT, UNEXPLAINED_WARNING, check_unexplained

FAST = {"max_epochs": 30, "n_pseudotissues": 1024, "enable_progress_bar": False, "early_stopping": False}
KNOWN = ["type0", "type1", "type2"]


def _planted(seed=4, share=(0.0, 0.6)):
    """type3 in the bulk (a share drawn from ``share``), not in the reference."""
    ref, bulk = reference_and_bulk(seed, n_samples=60, unknown=["type3"], unknown_fraction=share, unknown_column=True)
    ref = ref[ref.obs["cell_type"] != "type3"].copy()
    ref.obs["cell_type"] = ref.obs["cell_type"].cat.remove_unused_categories()
    return ref, bulk


@pytest.fixture(scope="module")
def relative():
    ref, bulk = _planted()
    scvi.settings.seed = 0
    DECODE.setup_anndata(ref, labels_key="cell_type")
    DECODE.setup_anndata(bulk)
    model = DECODE(ref, bulk)
    model.train(**FAST)
    return model, ref, bulk


def test_relative_model_reports_the_unexplained_share(relative, tmp_path):
    model, _, bulk = relative
    truth = bulk.obsm["fractions"]
    unexplained = model.get_unexplained()
    assert list(unexplained.index) == list(bulk.obs_names) and unexplained.between(0, 1).all()
    assert np.corrcoef(unexplained, truth["unknown"])[0, 1] > 0.6
    assert np.sqrt(((unexplained - truth["unknown"]) ** 2).mean()) < 0.25
    # the relative fractions stay fractions over the known labels, and accurate over them
    f = model.get_fractions()
    assert list(f.columns) == KNOWN
    assert dco.metrics.ccc(f, truth[KNOWN].div(truth[KNOWN].sum(axis=1), axis=0)) > 0.9
    model.save(tmp_path / "m")
    loaded = DECODE.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.get_unexplained(bulk), unexplained, atol=1e-6)


def _batch(n=16, n_features=20, n_labels=3):
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.gamma(2.0, 1.0, (n, n_features)), dtype=torch.float32)
    y = torch.as_tensor(rng.dirichlet(np.ones(n_labels), n), dtype=torch.float32)
    return {"x": x, "x1": 1.1 * x, "x2": 0.9 * x, "y": y, "xu": x + 3.0, "u": torch.full((n,), 0.3)}


@pytest.mark.parametrize("mode", ["relative", "absolute"])
def test_the_unknown_head_does_not_shape_the_fractions(mode):
    """The unknown loss sends no gradient into the encoder, the denoiser or the fraction head (in either mode): it
    reports the share, it does not change how the fractions are learnt."""
    torch.manual_seed(0)
    module = DECODEModule(20, 3, absolute=mode == "absolute", unknown_head=True)
    module.eval()
    plan = DECODETrainingPlan(module, input_noise=0.0, adversarial=False)
    plan._network_losses(module, _batch(), train=True)["unknown_loss"].backward()
    for name, p in module.named_parameters():
        reached = p.grad is not None and bool(p.grad.abs().sum() > 0)
        assert reached == name.startswith("head.unknown."), name


def test_deconvolve_writes_the_share_and_names_the_samples_above_the_threshold(tmp_path):
    ref, bulk = _planted(seed=5, share=(0.0, 0.8))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dco.tl.deconvolve(bulk, ref, "cell_type", train_kwargs=FAST)
    unexplained = bulk.obs["decode_unexplained"]
    above = list(bulk.obs_names[unexplained > UNEXPLAINED_WARNING])
    checked = bulk.uns["decode"]["unexplained"]
    assert checked["checked"] and checked["median_reference_fit"] <= UNEXPLAINED_MAX_FIT
    assert checked["flagged"] == above and checked["threshold"] == UNEXPLAINED_WARNING
    bulk.write_h5ad(tmp_path / "bulk.h5ad")  # the record survives h5ad
    assert 0 < len(above) < bulk.n_obs  # the planted shares span the threshold
    # the flagged samples hold more of the planted type than the others
    truth = bulk.obsm["fractions"]["unknown"]
    assert truth[above].mean() > truth.drop(above).mean() + 0.2
    message = next(str(w.message) for w in caught if "unexplained" in str(w.message))
    assert f"{len(above)} of {bulk.n_obs} samples" in message and "mode='absolute'" in message
    assert all(name in message for name in above[:10])


def test_no_warning_when_the_reference_explains_the_bulk():
    ref, bulk = reference_and_bulk(6, n_samples=30)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dco.tl.deconvolve(bulk, ref, "cell_type", train_kwargs=FAST)
    assert bulk.obs["decode_unexplained"].max() < UNEXPLAINED_WARNING
    assert not [w for w in caught if "unexplained" in str(w.message)]


def test_the_check_is_not_made_across_platforms():
    """On bulk from another platform the share is an upper bound: nothing is named, and uns says why."""
    names = [f"s{i}" for i in range(5)]
    unexplained = pd.Series([0.1, 0.5, 0.6, 0.2, 0.9], index=names)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        across = check_unexplained(unexplained, pd.Series(3.0, index=names), "relative")
    assert not caught and not across["checked"] and across["flagged"] == []
    assert "another platform" in across["why_not"]
    with pytest.warns(UserWarning, match=r"3 of 5 samples unexplained \(s1, s2, s4\)"):
        same = check_unexplained(unexplained, pd.Series(0.2, index=names), "relative")
    assert same["checked"] and same["flagged"] == ["s1", "s2", "s4"]
    # it says what to do: a fuller reference, absolute mode, or fractions measured on a few samples
    what_to_do = r"mode='absolute' reports.*missing cell types.*measured on at least 5 of the samples.*mean_fractions"
    with pytest.warns(UserWarning, match=what_to_do):
        check_unexplained(unexplained, pd.Series(0.2, index=names), "relative")


def test_unknown_head_can_be_switched_off_and_needs_a_linear_scale(no_training):
    ref, bulk = reference_and_bulk(7, n_samples=10)
    DECODE.setup_anndata(ref, labels_key="cell_type")
    DECODE.setup_anndata(bulk)
    model = DECODE(ref, bulk, unknown_head=False)
    assert model.module.head.unknown is None
    model.is_trained_ = True
    with pytest.raises(ValueError, match="no unknown head"):
        model.get_unexplained()
    centred = ref.copy()
    centred.X = np.log1p(np.asarray(ref.X)) - np.log1p(np.asarray(ref.X)).mean(axis=0)
    DECODE.setup_anndata(centred, labels_key="cell_type", scale="as_is")
    with pytest.raises(ValueError, match="unknown_head=True needs a linear scale"):
        DECODE(centred, unknown_head=True)
    assert DECODE(centred).module.head.unknown is None  # values as stored: no unknown head by default


def test_fractions_with_unknown_adds_the_unknown_view_to_the_fraction_loss():
    torch.manual_seed(0)
    module = DECODEModule(20, 3)
    module.eval()
    batch = _batch()
    without = DECODETrainingPlan(module, adversarial=False)._network_losses(module, batch, train=False)
    with_view = DECODETrainingPlan(module, adversarial=False, fractions_with_unknown=True)
    loss = with_view._network_losses(module, batch, train=False)["fraction_loss"]
    on_view = module.head.fraction_loss(module(batch["xu"]), batch["y"])
    torch.testing.assert_close(loss, (3 * without["fraction_loss"] + on_view) / 4)


def test_deep_pseudotissues_come_from_a_stream_of_their_own(relative):
    """The unknown head's pseudo-tissues as deep as bulk (``xd``, ``ud``) leave every other draw of a training batch as
    it was: the fractions learn from the same pseudo-tissues with or without them."""
    from decode_omics.model._pseudotissues import TrainingBatches

    sampler = relative[0]._sampler
    plain = list(TrainingBatches(sampler, 96, 32, seed=3, unknown_view=[0]))
    deep = list(TrainingBatches(sampler, 96, 32, seed=3, unknown_view=[0], depth_view=True))
    assert len(plain) == len(deep) == 3
    for a, b in zip(plain, deep, strict=True):
        assert set(b) - set(a) == {"xd", "ud"}
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
        assert b["xd"].shape == a["xu"].shape and b["ud"].shape == a["u"].shape
    share = torch.cat([b["ud"] for b in deep])
    assert 0.3 < float((share == 0).float().mean()) < 0.7 and float(share.max()) <= 0.5
    # nothing without the view with unknown material to go with
    assert "xd" not in next(iter(TrainingBatches(sampler, 32, 32, seed=3, depth_view=True)))


def test_deep_pseudotissues_are_as_noisy_as_their_depth():
    """The same pseudo-tissues as deep as bulk: each part's deviation from its expected profile shrinks to the sampling
    noise of its depth, about ``sqrt(cells_per_sample / D)`` of what ``cells_per_sample`` cells show; half keep the
    view's new material, with its share."""
    from decode_omics.model._pseudotissues import PseudoTissueConfig, PseudoTissueSampler

    X = np.random.default_rng(0).gamma(0.5, 4.0, (300, 50))  # one label: every pseudo-tissue has one composition
    sampler = PseudoTissueSampler(X, np.zeros(300, dtype=np.int64), 1, PseudoTissueConfig(cells_per_sample=30))
    out = sampler.sample(4000, np.random.default_rng(1), absolute=True, depth_rng=np.random.default_rng(2))
    clean = out["ud"] == 0
    assert 0.4 < clean.mean() < 0.6
    np.testing.assert_array_equal(out["ud"][~clean], out["u"][~clean])

    def spread(x):  # median relative deviation of a feature from its mean over samples: sampling noise alone
        return float(np.median(np.abs(x / x.mean(axis=0) - 1)))

    # depths of 60 to 9,000 cells (median about 735): about sqrt(30 / 735) = 0.2 of 30 cells' noise
    assert 0.1 < spread(out["xd"][clean]) / spread(out["x"][clean]) < 0.4
    assert (out["xd"] >= 0).all() and np.isfinite(out["xd"]).all()
    # without depth_rng nothing else changes
    plain = sampler.sample(4000, np.random.default_rng(1), absolute=True)
    assert set(out) - set(plain) == {"xd", "ud"}
    for key in plain:
        np.testing.assert_array_equal(plain[key], out[key])


@pytest.mark.shared_data
def test_the_unexplained_share_does_not_read_depth(shared_data):
    """Profiles summed from 10x PBMC cells with nothing missing read as explained however many cells they hold. Before
    the unknown head also learnt from pseudo-tissues as deep as bulk, the same training read 0.36 on 1,000-cell sums
    of the other half of the cells and 0.56 on 1,000-cell sums of the reference's own (0.06 on 30-cell sums): depth
    read as unknown material."""
    cells = dco.datasets.pbmc_sorted_10x()
    half = np.random.default_rng(0).random(cells.n_obs) < 0.5
    ref, other = cells[half].copy(), cells[~half].copy()
    bulk = dco.pp.simulate_pseudobulk(other, "broad_type", n_samples=20, cells_per_sample=1000, random_state=3)
    scvi.settings.seed = 0
    DECODE.setup_anndata(ref, labels_key="broad_type")
    DECODE.setup_anndata(bulk)
    model = DECODE(ref, bulk, n_features=500)
    model.train(max_epochs=15, n_pseudotissues=2048, enable_progress_bar=False, early_stopping=False)
    assert float(model.get_unexplained().median()) < 0.15
    for n in (30, 1000):
        own = dco.pp.simulate_pseudobulk(ref, "broad_type", n_samples=40, cells_per_sample=n, random_state=7)
        assert float(model.get_unexplained(own).median()) < 0.15, n


def test_deep_pseudotissues_train_the_unknown_head_alone_and_draw_nothing_from_training():
    """With ``xd`` in the batch: the unknown loss changes, only the unknown head's weights get its gradient, the
    fraction loss is the same, and torch's random stream after the step is where it would be without the deep view."""
    torch.manual_seed(0)
    module = DECODEModule(20, 3, unknown_head=True)
    module.train()  # dropout and input noise on: they draw random numbers
    plan = DECODETrainingPlan(module, input_noise=0.2, adversarial=False)
    batch = _batch()
    deep = batch | {"xd": batch["x"] * 50.0, "ud": torch.full((16,), 0.2)}
    torch.manual_seed(1)
    without = plan._network_losses(module, batch, train=True)
    after_without = torch.get_rng_state()
    torch.manual_seed(1)
    with_deep = plan._network_losses(module, deep, train=True)
    torch.testing.assert_close(torch.get_rng_state(), after_without, rtol=0, atol=0)
    torch.testing.assert_close(with_deep["fraction_loss"], without["fraction_loss"], rtol=0, atol=0)
    assert float(with_deep["unknown_loss"]) != float(without["unknown_loss"])
    module.zero_grad()
    (with_deep["unknown_loss"] - without["unknown_loss"]).backward()
    for name, p in module.named_parameters():
        reached = p.grad is not None and bool(p.grad.abs().sum() > 0)
        assert reached == name.startswith("head.unknown."), name


def test_deep_pseudotissues_carry_the_measurement_perturbations_and_draw_nothing_from_torchs_stream():
    """With ``feature_gain`` and ``measurement_noise`` on, the deep view gets the batch's one gain and noise of its own,
    while every other view, and torch's random stream after the step, are what they are without the deep view."""
    torch.manual_seed(0)
    module = DECODEModule(20, 3, unknown_head=True)
    gain_only = DECODETrainingPlan(module, feature_gain=0.5, adversarial=False)
    both = DECODETrainingPlan(module, feature_gain=0.5, measurement_noise=0.2, adversarial=False)
    batch = _batch()
    deep = batch | {"xd": batch["x"] * 50.0, "ud": torch.full((16,), 0.2)}
    # the feature gain: the deep view's features scale exactly as the clean pseudo-tissue's (no draw of its own)
    torch.manual_seed(1)
    out = gain_only._perturbed(deep, train=True)
    torch.testing.assert_close(out["xd"] / deep["xd"], out["x"] / batch["x"])
    assert not torch.allclose(out["x"], batch["x"])
    for plan in (gain_only, both):
        torch.manual_seed(1)
        without = plan._perturbed(batch, train=True)
        state = torch.get_rng_state()
        torch.manual_seed(1)
        with_deep = plan._perturbed(deep, train=True)
        torch.testing.assert_close(torch.get_rng_state(), state, rtol=0, atol=0)
        for key, value in without.items():
            torch.testing.assert_close(with_deep[key], value, rtol=0, atol=0)
    # the measurement noise: a factor of its own per value of the deep view
    noise = torch.log(with_deep["xd"] / deep["xd"]) - torch.log(out["xd"] / deep["xd"])  # the same gain, seed 1
    assert 0.15 < float(noise.std()) < 0.25
    # nothing is perturbed outside training
    assert both._perturbed(deep, train=False) is deep
