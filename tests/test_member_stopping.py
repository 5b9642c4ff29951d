"""An ensemble's members stopping one by one, each on its own validation loss (``member_patience``)."""

import pytest
import scvi
import torch
from conftest import reference_and_bulk

from decode_omics.model import DECODE, DECODEEnsemble, DECODETrainingPlan

FAST = {"max_epochs": 40, "n_pseudotissues": 256, "enable_progress_bar": False}


def _step(plan: DECODETrainingPlan, optimizer, batch) -> None:
    optimizer.zero_grad()
    plan.training_step(batch, 0).backward()
    optimizer.step()
    plan.on_train_batch_end(None, batch, 0)


def test_a_stopped_member_keeps_its_weights_and_their_average_while_the_others_train():
    torch.manual_seed(0)
    plan = DECODETrainingPlan(DECODEEnsemble(2, 20, 3), member_patience=5, adversarial=False, denoise=False)
    plan.log = lambda *args, **kwargs: None  # no trainer to log to
    optimizer = plan.configure_optimizers()
    x = torch.rand(16, 20)
    batch = {"x": x, "y": torch.softmax(torch.randn(16, 3), dim=-1)}
    _step(plan, optimizer, batch)
    plan._training[1] = False  # member 1 stops (as on_validation_epoch_end decides)
    frozen = {k: v.detach().clone() for k, v in plan.module.members[1].named_parameters()}
    average = {k: v.clone() for k, v in plan._average.average.items() if k.startswith("members.1.")}
    moving = {k: v.detach().clone() for k, v in plan.module.members[0].named_parameters()}
    for _ in range(3):
        _step(plan, optimizer, batch)
    for k, v in plan.module.members[1].named_parameters():
        assert torch.equal(v, frozen[k]), k
        assert v.grad is None, k
    assert all(torch.equal(plan._average.average[k], v) for k, v in average.items())
    assert any(not torch.equal(v, moving[k]) for k, v in plan.module.members[0].named_parameters())


def test_members_stop_one_by_one_and_training_ends_with_the_last():
    ref, bulk = reference_and_bulk()
    DECODE.setup_anndata(ref, labels_key="cell_type")
    DECODE.setup_anndata(bulk)
    scvi.settings.seed = 0
    model = DECODE(ref, bulk, n_members=3)
    model.train(**FAST, plan_kwargs={"member_patience": 1})  # the trainer's early stopping is turned off
    counts = model.history_["members_training"].iloc[:, 0].tolist()
    assert counts[-1] == 0 and len(counts) < FAST["max_epochs"]  # stopped before the epoch limit, none left
    assert counts == sorted(counts, reverse=True) and counts[0] > 0
    fractions = model.get_fractions()
    assert fractions.notna().all().all() and ((fractions.sum(axis=1) - 1).abs() < 1e-5).all()


@pytest.mark.parametrize("patience", [0, -3])
def test_a_patience_below_one_is_refused(patience):
    with pytest.raises(ValueError, match="member_patience must be None or at least 1"):
        DECODETrainingPlan(DECODEEnsemble(2, 10, 3), member_patience=patience)
