"""Measurement-noise augmentation: the training plan's ``measurement_noise`` option."""

import numpy as np
import pytest
import scvi
import torch
from conftest import reference_and_bulk

from decode_omics.model import DECODE, DECODEModule, DECODETrainingPlan
from decode_omics.model._noise import excess_log_noise

FAST = {"max_epochs": 10, "n_pseudotissues": 512, "enable_progress_bar": False, "early_stopping": False}


def _seen_batch(plan, batch, train):
    """The batch the network's losses are computed on."""
    seen = {}

    def spy(module, b, is_train):
        seen.update(b)
        return {"loss": torch.zeros(())}

    plan._network_losses = spy
    plan._losses(batch, train=train)
    return seen


def test_every_pseudotissue_value_gets_its_own_factor_and_the_bulk_none():
    torch.manual_seed(0)
    n, n_features = 64, 200
    x = torch.rand(n, n_features) + 0.5
    batch = {"x": x, "x1": x.clone(), "x2": x.clone(), "xu": x.clone(), "bulk": x.clone(), "y": torch.rand(n, 3)}
    plan = DECODETrainingPlan(DECODEModule(n_features, 3), measurement_noise=0.1)
    seen = _seen_batch(plan, batch, train=True)
    log_ratio = {k: torch.log(seen[k] / x) for k in ("x", "x1", "x2", "xu")}
    for k, r in log_ratio.items():
        assert abs(float(r.std()) - 0.1) < 0.01, k  # log-normal, sd 0.1 on the log scale
        assert abs(float(r.mean())) < 0.01, k
    # independent draws per view (the noisy views are not the clean view times one more factor)
    assert abs(float(torch.corrcoef(torch.stack([log_ratio["x"].ravel(), log_ratio["x1"].ravel()]))[0, 1])) < 0.05
    assert torch.equal(seen["bulk"], x) and torch.equal(seen["y"], batch["y"])
    # validation batches are never perturbed
    assert all(torch.equal(v, batch[k]) for k, v in _seen_batch(plan, batch, train=False).items())


def test_negative_measurement_noise_is_refused():
    with pytest.raises(ValueError, match="measurement_noise must be >= 0"):
        DECODETrainingPlan(DECODEModule(10, 3), measurement_noise=-0.1)


def test_training_with_measurement_noise_is_seeded():
    ref, bulk = reference_and_bulk(11, n_samples=20)
    DECODE.setup_anndata(ref, labels_key="cell_type")
    DECODE.setup_anndata(bulk)
    fractions = []
    for _ in range(2):
        scvi.settings.seed = 3
        model = DECODE(ref, bulk)
        model.train(**FAST, plan_kwargs={"measurement_noise": 0.1})
        fractions.append(model.get_fractions())
    np.testing.assert_array_equal(fractions[0].to_numpy(), fractions[1].to_numpy())


def _mixtures(rng, profiles, n, cells=30):
    """Mixtures of ``cells`` Poisson-sampled cells in Dirichlet(1) proportions."""
    f = rng.dirichlet(np.ones(len(profiles)), n)
    return rng.poisson(cells * (f @ profiles)).astype(float)


def test_excess_noise_recovers_the_noise_a_measurement_adds():
    rng = np.random.default_rng(0)
    profiles = rng.gamma(2.0, 20.0, (4, 300))
    pseudo = _mixtures(rng, profiles, 400)
    bulk = _mixtures(rng, profiles, 200)
    # the same kind of sample: nothing to add
    assert excess_log_noise(bulk, pseudo, profiles) < 0.02
    # a measurement that adds 10 % noise per value
    noisy = bulk * np.exp(0.1 * rng.standard_normal(bulk.shape))
    assert excess_log_noise(noisy, pseudo, profiles) == pytest.approx(0.1, abs=0.02)
    # a platform gain per feature, the same in every sample, is not noise
    gained = bulk * np.exp(0.5 * rng.standard_normal(bulk.shape[1]))
    assert excess_log_noise(gained, pseudo, profiles) < 0.03
    # bulk averaged over many more cells than the pseudo-tissues varies less: nothing to add
    assert excess_log_noise(_mixtures(rng, profiles, 200, cells=3000), pseudo, profiles) == 0.0


def test_auto_estimates_the_noise_from_the_registered_bulk_and_records_it(monkeypatch):
    ref, bulk = reference_and_bulk(12, n_samples=40, cells_per_sample=30)
    noisy = bulk.copy()
    noisy.X = np.asarray(bulk.X) * np.exp(0.15 * np.random.default_rng(0).standard_normal(bulk.shape))
    DECODE.setup_anndata(ref, labels_key="cell_type")
    used = []
    monkeypatch.setattr(
        "decode_omics.model._model.fit_network", lambda model, s: used.append(s.plan()["measurement_noise"]) or True
    )
    for data in (bulk, noisy):
        DECODE.setup_anndata(data)
        model = DECODE(ref, data)
        model.train(platform_correction=False, measurement_noise="auto")
        assert model.train_settings_["measurement_noise"] == used[-1]
    assert used[0] < 0.05 and used[1] == pytest.approx(0.15, abs=0.04)
    with pytest.raises(ValueError, match="measurement_noise must be 'auto' or a number >= 0"):
        model.train(measurement_noise="high")
    # no registered bulk: nothing to estimate from, training unchanged
    model = DECODE(ref)
    model.train(platform_correction=False, measurement_noise="auto")
    assert model.train_settings_["measurement_noise"] == 0.0
    model.train(platform_correction=False)  # off by default
    assert used[-1] == 0.0
