"""One training run of the network: data loaders, training plan and Lightning trainer (device and data-parallel
set-up, run logs outside the working directory, Ctrl+C)."""

from __future__ import annotations

import logging
import signal
import tempfile
import threading

import torch
from scvi.model._utils import parse_device_args
from scvi.train import Trainer

from ._ensemble import members, unknown_view_members
from ._lightning import quiet_lightning, with_progress_bar
from ._pseudotissues import TrainingBatches, ValidationBatches
from ._settings import TrainSettings, current_seed
from ._training_plan import DECODETrainingPlan

logger = logging.getLogger("decode_omics")


def fit_network(model, settings: TrainSettings) -> bool:
    """Train ``model.module`` once on fresh pseudo-tissues; ``False`` if the run was interrupted (Ctrl+C).

    Sets ``model.trainer``, ``model.denoise_``, ``model.history_`` and ``model.is_trained_``. Lightning's run logs go to
    a temporary folder (removed afterwards) unless ``log_save_dir`` or ``logger`` is among the trainer arguments.
    """
    s, trainer_kwargs = settings, dict(settings.trainer_kwargs)
    # scvi-tools' Trainer appends its own callbacks (early stopping) to the list it is given: give it a copy, so the
    # caller's list stays as it was and a second training (the transferable-feature mask) gets no duplicates
    trainer_kwargs["callbacks"] = list(trainer_kwargs.get("callbacks") or [])
    accelerator, devices, device = parse_device_args(s.accelerator, s.devices, return_device="torch")
    seed = current_seed()
    torch.manual_seed(seed)
    plan = DECODETrainingPlan(model.module, **s.plan())
    bulk = model._bulk_source(None).matrix() if s.adversarial else None
    # the view with unknown material, for the networks that learn from it (an ensemble's first member alone, where
    # it only feeds the unknown head that reports the unexplained share)
    drawn = draws_unknown_view(model, plan)
    with_view = unknown_view_members(model.module, plan.fractions_with_unknown) if drawn else []
    # an ensemble's members each train on pseudo-tissues of their own: the loaders draw n_members times as many, and
    # the plan hands member i every n-th sample of each batch
    k = len(members(model.module))
    # pseudo-tissues as deep as bulk for the unknown head (a new type's material, on linear scales)
    depth_view = drawn and model._sampler.config.unknown_material == "new_type"
    depth_view = depth_view and any(m.head.unknown is not None for m in members(model.module))
    train_dl = TrainingBatches(
        model._sampler, k * s.n_pseudotissues, k * s.batch_size, seed, bulk, with_view, k, depth_view=depth_view
    )
    val_dl = ValidationBatches(model._sampler, k * s.n_validation, k * s.batch_size, seed, with_view, k)
    if trainer_kwargs.get("strategy") == "ddp":
        # stages that are switched off (discriminator, unknown head) hold parameters no loss uses
        trainer_kwargs["strategy"] = "ddp_find_unused_parameters_true"
    trainer_kwargs.setdefault("early_stopping_monitor", "fraction_loss_validation")
    trainer_kwargs.setdefault("check_val_every_n_epoch", 1)
    with tempfile.TemporaryDirectory(prefix="decode_omics_logs_") as logs:
        if "logger" not in trainer_kwargs:
            trainer_kwargs.setdefault("log_save_dir", logs)
        with quiet_lightning():
            model.trainer = Trainer(
                max_epochs=s.max_epochs,
                accelerator=accelerator,
                devices=devices,
                # members that stop one by one (member_patience) replace the trainer's early stopping
                early_stopping=s.early_stopping and plan.member_patience is None,
                early_stopping_patience=s.early_stopping_patience,
                **with_progress_bar(trainer_kwargs),
            )
        model.denoise_ = s.denoise
        model.module.train()  # Lightning keeps the mode it finds: after a first training or load() that is eval
        completed = _fit_keeping_ctrl_c(model.trainer, plan, train_dl, val_dl)
    try:
        model.history_ = {k: v for k, v in model.trainer.logger.history.items()}
    except AttributeError:
        model.history_ = None
    model.module.eval()
    model.module.to(device)
    model.is_trained_ = True
    return completed


def draws_unknown_view(model, plan: DECODETrainingPlan) -> bool:
    """Whether training batches carry the view with unknown material: wherever a network has an unknown head (which
    learns from it) or the relative fractions learn to ignore such material (``fractions_with_unknown``) on a linear
    scale. Values read as stored (``scale="as_is"``) have no scale on which a new type's material adds up; there the
    view holds the centring complement instead, where the model trains on it (``DECODE(centring_complement=...)``)."""
    linear = model.module.transform.normalization == "composition"
    complement = model._sampler.config.unknown_material == "complement"
    return model.module.head.unknown is not None or (plan.fractions_with_unknown and (linear or complement))


def _fit_keeping_ctrl_c(trainer, plan, train_dl, val_dl) -> bool:
    """``trainer.fit``; on Ctrl+C, keep the session and the weights learned so far and give Ctrl+C back."""
    with quiet_lightning():
        sigint = signal.getsignal(signal.SIGINT)
        try:
            trainer.fit(plan, train_dl, val_dl)
        except (KeyboardInterrupt, SystemExit) as err:
            # Lightning answers Ctrl+C with a graceful shutdown, then sys.exit(1) with SIGINT ignored.
            interrupted = isinstance(err, KeyboardInterrupt) or isinstance(err.__context__, KeyboardInterrupt)
            if not interrupted:
                raise
            logger.warning("Training interrupted: keeping the weights learned so far.")
            return False
        finally:
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, sigint)
    return True
