"""Weight averaging: the network ends training with a moving average of its weights (``weight_averaging``)."""

import numpy as np
import pytest
import scvi
import torch
from conftest import reference_and_bulk

from decode_omics.model import DECODE, DECODEModule, DECODETrainingPlan

FAST = {"max_epochs": 6, "n_pseudotissues": 256, "enable_progress_bar": False, "early_stopping": False}


def test_the_network_ends_with_the_moving_average_of_its_weights():
    torch.manual_seed(0)
    plan = DECODETrainingPlan(DECODEModule(20, 3), weight_averaging=0.9)
    params = dict(plan.module.named_parameters())
    expected = {name: p.detach().clone() for name, p in params.items()}  # the first step starts the average
    plan.on_train_batch_end(None, None, 0)
    for t in range(1, 40):
        with torch.no_grad():
            for p in params.values():
                p.add_(torch.randn_like(p))
        plan.on_train_batch_end(None, None, t)
        step = t + 1  # the plan counts the steps it has averaged, this one included
        decay = min(0.9, (1 + step) / (10 + step))  # smaller decays first, so the start does not dominate
        expected = {name: decay * e + (1 - decay) * params[name].detach() for name, e in expected.items()}
    last = {name: p.detach().clone() for name, p in params.items()}
    plan.on_train_end()
    for name, p in plan.module.named_parameters():
        assert torch.allclose(p, expected[name], atol=1e-5), name
        assert not torch.allclose(p, last[name]), name


def test_off_keeps_the_last_weights():
    plan = DECODETrainingPlan(DECODEModule(20, 3), weight_averaging=0.0)
    before = [p.detach().clone() for p in plan.module.parameters()]
    plan.on_train_batch_end(None, None, 0)
    with torch.no_grad():
        for p in plan.module.parameters():
            p.add_(1.0)
    plan.on_train_end()
    assert all(torch.equal(p, b + 1.0) for p, b in zip(plan.module.parameters(), before, strict=True))


@pytest.mark.parametrize("decay", [-0.1, 1.0, 1.5])
def test_a_decay_outside_0_1_is_refused(decay):
    with pytest.raises(ValueError, match=r"weight_averaging must be in \[0, 1\)"):
        DECODETrainingPlan(DECODEModule(10, 3), weight_averaging=decay)


def test_training_records_it_is_seeded_and_changes_the_result():
    ref, bulk = reference_and_bulk()
    DECODE.setup_anndata(ref, labels_key="cell_type")
    DECODE.setup_anndata(bulk)
    fractions = {}
    for decay in (0.995, 0.995, 0.0):
        scvi.settings.seed = 0
        model = DECODE(ref, bulk)
        model.train(**FAST, weight_averaging=decay)
        assert model.train_settings_["weight_averaging"] == decay
        fractions.setdefault(decay, []).append(model.get_fractions().to_numpy())
    np.testing.assert_array_equal(*fractions[0.995])  # same seed, same fractions
    assert not np.allclose(fractions[0.995][0], fractions[0.0][0])
    with pytest.raises(ValueError, match="weight_averaging"):
        DECODE(ref, bulk).train(**FAST, weight_averaging=1.0)


def test_the_average_is_the_per_parameter_arithmetic_bit_for_bit():
    """The average folds all parameters in with multi-tensor kernels: the same numbers as one parameter at a time."""
    from decode_omics.model._averaging import WeightAverage

    torch.manual_seed(1)
    module = DECODEModule(30, 4)
    average = WeightAverage(0.99)
    by_hand = None
    for t in range(25):
        with torch.no_grad():
            for p in module.parameters():
                p.add_(torch.randn_like(p))
        average.update(module)
        params = dict(module.named_parameters())
        if by_hand is None:
            by_hand = {name: p.detach().clone() for name, p in params.items()}
        decay = min(0.99, (2 + t) / (11 + t))
        for name, p in params.items():
            by_hand[name].mul_(decay).add_(p.detach(), alpha=1 - decay)
    assert all(torch.equal(average.average[name], by_hand[name]) for name in by_hand)


def test_the_multi_tensor_optimiser_trains_the_same_weights_as_the_per_parameter_loop(monkeypatch):
    """Adam's multi-tensor implementation (faster for an ensemble's many parameters) gives the fractions the
    per-parameter loop gives, bit for bit, on CPU."""
    ref, bulk = reference_and_bulk(n_samples=12)
    DECODE.setup_anndata(ref, labels_key="cell_type")
    DECODE.setup_anndata(bulk)
    optimiser = DECODETrainingPlan.configure_optimizers(DECODETrainingPlan(DECODEModule(10, 3)))
    assert optimiser.defaults["foreach"] is True
    fractions = []
    for per_parameter in (False, True):  # the package's optimiser first, then the per-parameter loop
        if per_parameter:
            monkeypatch.setattr(
                DECODETrainingPlan,
                "configure_optimizers",
                lambda self: torch.optim.Adam(
                    self.module.parameters(), lr=self.lr, weight_decay=self.weight_decay, foreach=False
                ),
            )
        scvi.settings.seed = 0
        model = DECODE(ref, bulk, n_members=2, n_hidden=32, n_latent=8)
        model.train(max_epochs=3, n_pseudotissues=256, n_validation=64, enable_progress_bar=False)
        fractions.append(model.get_fractions().to_numpy())
    np.testing.assert_array_equal(fractions[0], fractions[1])
