"""Lightning training plan for DECODE: fraction, contrastive, unknown and adversarial losses in one step."""

from __future__ import annotations

import math
from typing import Literal

import lightning.pytorch as pl
import torch

from ._averaging import WeightAverage
from ._ensemble import DECODEEnsemble, unknown_view_members
from ._module import DECODEModule
from ._pseudotissues import DEPTH_VIEW_KEYS, UNKNOWN_VIEW_KEYS


class DECODETrainingPlan(pl.LightningModule):
    """Trains a :class:`DECODEModule` on pseudo-tissues, aligned to the real bulk.

    One step calls one loss method per stage of the network (:meth:`DeconvolutionHead.fraction_loss` and
    :meth:`~DeconvolutionHead.unknown_loss`, :meth:`ContrastiveDenoiser.loss`, :meth:`DomainAdversary.loss`):

    - fraction loss (squared error summed over labels, averaged over samples) on the clean pseudo-tissue and, with
      the denoiser, on its two noisy views read through the denoiser's signal part;
    - unknown loss (every network with an unknown head): squared error of the unknown share on the clean
      pseudo-tissue (0) and on a third view with material of a new cell type added (its share). The unknown head
      reads detached codes: it reports how much of a sample the reference explains and does not change how the
      fractions are learnt;
    - with ``fractions_with_unknown`` (off by default: measured on the robustness suite, see the method page), the
      fraction loss also covers that third view, against the known labels' fractions renormalised over themselves;
    - contrastive loss (InfoNCE, :meth:`ContrastiveDenoiser.loss`) between each clean code and the signal / noise
      parts of its noisy views, weighted by ``contrastive_weight``;
    - adversarial loss: a domain discriminator tells pseudo-tissue codes from real-bulk codes through a gradient
      reversal layer whose weight ramps up from 0 to ``adversarial_weight`` (DANN schedule), so the encoder learns
      codes the discriminator cannot separate;
    - spread guard (with the adversarial loss): a hinge on each latent dimension's standard deviation over the batch's
      real-bulk codes, which must stay at least at the pseudo-tissue codes' (VICReg's variance term; Bardes et al.,
      2022), weighted by ``spread_weight``. Without it the encoder evades the discriminator by mapping every bulk
      sample to nearly one code, and the bulk's estimates lose their spread.

    With ``weight_averaging`` (on by default), the plan keeps an exponential moving average of the network's weights
    over the training steps (Polyak averaging) and hands the network the averaged weights when training ends. Early
    stopping watches the current weights; the average is what predicts.

    An ensemble (:class:`~decode_omics.model.DECODEEnsemble`) trains every member on its own part of the batch (member
    ``i`` takes samples ``i, i + n, ...``; the loaders draw ``n_members`` times a single network's batch, so each member
    sees a batch of a single network's size, of pseudo-tissues no other member sees, drawn apart with noise cells of its
    own), each with its own input noise, dropout, feature gains and discriminator; the view with unknown material
    holds the rows of the members that learn from it alone (in relative mode the first member, the one with an
    unknown head). Every logged loss is the average over the members that have it, and so is the validation loss
    that early stopping watches. The loss optimised is the members' sum, so
    that each member's gradient is the one it would get if trained alone (with a mean, Adam's coupled weight decay
    would act ``n_members`` times as strongly).

    Parameters
    ----------
    module
        The network, or an ensemble of networks.
    lr, weight_decay
        Adam settings.
    denoise, adversarial
        Switch the denoising and the adversarial stage on or off (for ablations).
    align
        ``"bulk"`` (default): the reversed gradient reaches the encoder only through the real-bulk codes, which are
        moved into the region the pseudo-tissues occupy while the pseudo-tissue codes, and so the fraction regression,
        stay put (the bulk is a few samples in a corner of composition space; pulling the whole pseudo-tissue
        distribution towards it distorts the head). ``"both"``: classical DANN, both domains move.
    contrastive_weight, adversarial_weight, spread_weight
        Loss weights.
    input_noise
        Standard deviation of Gaussian noise added to the normalised input in training.
    temperature
        InfoNCE temperature.
    max_epochs
        Used by the adversarial ramp.
    fractions_with_unknown
        Train the relative fractions also on pseudo-tissues with unknown material added (share ``U(0,
        unknown_share)``, see :class:`~decode_omics.model._pseudotissues.PseudoTissueConfig`), against the known
        labels' renormalised fractions. Needs the third view in every batch (``xu``); without it the term is skipped.
    measurement_noise
        Standard deviation, on the log scale, of a random factor ``exp(N(0, sd^2))`` drawn for every value of every
        pseudo-tissue view in training (0: off; never on the real bulk). It mimics the noise a measurement adds per
        sample and feature; :meth:`~decode_omics.model.DECODE.train` sets it from the registered bulk
        (``measurement_noise="auto"``, see :mod:`~decode_omics.model._noise`).
    feature_gain
        Standard deviation of a random log-scale gain per feature, drawn once per training batch and applied to all
        its pseudo-tissues (0: off). It mimics a platform or batch that measures every feature with its own
        efficiency, so the network cannot rely on the reference's exact per-feature calibration.
    weight_averaging
        Decay per training step of the exponential moving average of the weights that the network ends training
        with (0: off, the last step's weights). 0.995 averages over about 200 steps (12 epochs of 2,048
        pseudo-tissues in batches of 128). The first steps use a smaller decay, ``(1 + t) / (10 + t)`` at step
        ``t``, so the average does not start from the random initial weights (TensorFlow's ``num_updates``).
    member_patience
        An ensemble's members stop one by one, each as one network stops: when its own fraction loss on its own
        held-out pseudo-tissues has not improved for this many epochs, a member stops training (its weights, and
        their moving average, stay as they are; it costs no more training steps), and training ends when the last
        member has stopped (:meth:`~decode_omics.model.DECODE.train` then turns the trainer's own early stopping
        off; pass ``early_stopping=False`` to a trainer of your own). ``None`` (default): the members
        train together until the trainer's early stopping, which watches their mean validation loss, stops them
        all. Ignored for one network. How many members still train is logged per epoch (``members_training`` in
        the model's ``history_``).
    """

    #: The pseudo-tissue views of a batch (the real bulk is never among them): what ``feature_gain`` and
    #: ``measurement_noise`` perturb (the deep view ``xd`` too, drawing nothing from torch's stream: `_perturbed`).
    PSEUDOTISSUE_VIEWS = ("x", "x1", "x2", "xu")

    def __init__(
        self,
        module: DECODEModule | DECODEEnsemble,
        *,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        denoise: bool = True,
        adversarial: bool = True,
        align: Literal["bulk", "both"] = "bulk",
        contrastive_weight: float = 0.1,
        adversarial_weight: float = 0.1,
        spread_weight: float = 1.0,
        input_noise: float = 0.2,
        temperature: float = 0.1,
        max_epochs: int = 100,
        feature_gain: float = 0.0,
        fractions_with_unknown: bool = False,
        measurement_noise: float = 0.0,
        weight_averaging: float = 0.995,
        member_patience: int | None = None,
    ):
        super().__init__()
        if member_patience is not None and member_patience < 1:
            raise ValueError(f"member_patience must be None or at least 1, got {member_patience}.")
        n = len(module.members) if isinstance(module, DECODEEnsemble) else 1
        self.member_patience = member_patience if n > 1 else None
        # per member: whether it still trains, its best validation fraction loss, and epochs since it improved
        self._training = [True] * n
        self._best = [math.inf] * n
        self._wait = [0] * n
        self._validation_sums = torch.zeros(n, dtype=torch.float64)
        self._validation_counts = torch.zeros(n, dtype=torch.float64)
        if not 0 <= weight_averaging < 1:
            raise ValueError(f"weight_averaging must be in [0, 1), got {weight_averaging}.")
        self.weight_averaging = float(weight_averaging)
        self._average = WeightAverage(weight_averaging) if weight_averaging > 0 else None
        if not measurement_noise >= 0 or not math.isfinite(measurement_noise):
            raise ValueError(f"measurement_noise must be >= 0, got {measurement_noise}.")
        self.measurement_noise = float(measurement_noise)
        # the deep view's measurement noise comes from a generator of its own (see _perturbed)
        self._deep_noise = torch.Generator().manual_seed((torch.initial_seed() + 1) % 2**63)
        self.fractions_with_unknown = fractions_with_unknown
        self.spread_weight = spread_weight
        self.feature_gain = feature_gain
        self.module = module
        self.lr = lr
        self.weight_decay = weight_decay
        self.denoise = denoise
        self.adversarial = adversarial
        self.contrastive_weight = contrastive_weight
        self.adversarial_weight = adversarial_weight
        self.input_noise = input_noise
        self.temperature = temperature
        if align not in ("bulk", "both"):
            raise ValueError(f"align must be 'bulk' or 'both', got {align!r}.")
        self.align = align
        self.max_epochs = max(1, max_epochs)

    def _ramp(self) -> float:
        p = min(1.0, self.current_epoch / self.max_epochs)
        return 2.0 / (1.0 + math.exp(-10 * p)) - 1.0

    def _losses(self, batch: dict[str, torch.Tensor], train: bool) -> dict[str, torch.Tensor]:
        if not isinstance(self.module, DECODEEnsemble):
            return self._network_losses(self.module, self._perturbed(batch, train), train)
        # member i takes every n-th sample of the batch (pseudo-tissues and bulk): a batch of its own, as large as a
        # single network's, since the loaders draw n_members times as many (see fit_network)
        n = len(self.module.members)
        # the view with unknown material holds the rows of the members that learn from it alone (see TrainingBatches)
        with_view = unknown_view_members(self.module, self.fractions_with_unknown)
        per_member = []
        for i, m in enumerate(self.module.members):
            if train and not self._training[i]:  # a member that has stopped (member_patience) trains no more
                continue
            part = {k: v[i::n] for k, v in batch.items() if k not in UNKNOWN_VIEW_KEYS + DEPTH_VIEW_KEYS}
            if i in with_view:
                p = with_view.index(i)
                part |= {k: batch[k][p :: len(with_view)] for k in UNKNOWN_VIEW_KEYS + DEPTH_VIEW_KEYS if k in batch}
            per_member.append(self._network_losses(m, self._perturbed(part, train), train))
        if not train and self.member_patience is not None:
            for i, losses in enumerate(per_member):
                self._validation_sums[i] += float(losses["fraction_loss"]) * batch["x"].shape[0] / n
                self._validation_counts[i] += batch["x"].shape[0] / n
        # a loss only some members have (the unknown head's) is averaged over those
        names = dict.fromkeys(k for losses in per_member for k in losses)
        return {k: torch.stack([losses[k] for losses in per_member if k in losses]).mean() for k in names}

    def _at_depth(self, m: DECODEModule, x: torch.Tensor, noise_sd: float) -> torch.Tensor:
        """The unknown head's share on pseudo-tissues as deep as bulk (``xd``). The codes are computed without a
        graph and the random numbers they draw (input noise, dropout) come from a fork of torch's generator, so the
        rest of training draws, and learns, exactly what it would without this view."""
        devices = [x.device] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            with torch.no_grad():
                z = m.encode(x, noise_sd)
            return m.fractions_from_latent(z, denoise=self.denoise, x=x)["unknown"]

    def _perturbed(self, batch: dict[str, torch.Tensor], train: bool) -> dict[str, torch.Tensor]:
        """The batch with the training-time feature gains and measurement noise applied to its pseudo-tissue views,
        and to the pseudo-tissues as deep as bulk (``xd``), which the real bulk they stand for carries too. The deep
        view takes the batch's one gain and its own noise from a generator of its own, so every other random draw,
        and so every fraction, is what it would be without the deep view."""
        if train and self.feature_gain > 0:
            x = batch["x"]
            gain = torch.exp(self.feature_gain * torch.randn(x.shape[1], device=x.device, dtype=x.dtype))
            views = (*self.PSEUDOTISSUE_VIEWS, "xd")
            batch = {k: v * gain if k in views else v for k, v in batch.items()}
        if train and self.measurement_noise > 0:
            # every value of every pseudo-tissue view gets its own log-normal factor (never the real bulk)
            sd = self.measurement_noise
            views = self.PSEUDOTISSUE_VIEWS
            batch = {k: v * torch.exp(sd * torch.randn_like(v)) if k in views else v for k, v in batch.items()}
            if "xd" in batch:
                xd = batch["xd"]
                eps = torch.randn(xd.shape, generator=self._deep_noise, dtype=xd.dtype).to(xd.device)
                batch = batch | {"xd": xd * torch.exp(sd * eps)}
        return batch

    def _network_losses(self, m: DECODEModule, batch: dict[str, torch.Tensor], train: bool) -> dict[str, torch.Tensor]:
        """Every loss term of one network on one batch."""
        noise_sd = self.input_noise if train else 0.0
        # The order of the operations below is part of the result: a seed gives bit-identical weights only if every
        # code is computed, and every loss term added, in the same order.
        z = m.encode(batch["x"], noise_sd)
        clean = m.fractions_from_latent(z, denoise=self.denoise, x=batch["x"])
        frac = m.head.fraction_loss(clean["relative"], batch["y"])
        n_terms = 1
        losses: dict[str, torch.Tensor] = {}
        contrastive = z.new_zeros(())
        if self.denoise:
            for v in ("1", "2"):
                zv = m.encode(batch["x" + v], noise_sd)
                view = m.fractions_from_latent(zv, denoise=True)  # no unknown share needed on the noisy views
                frac = frac + m.head.fraction_loss(view["relative"], batch["y"])
                n_terms += 1
                contrastive = contrastive + m.denoiser.loss(z, view["signal"], view["noise"], self.temperature)
            contrastive = contrastive / 2
        with_unknown = None
        if "xu" in batch and (m.head.unknown is not None or self.fractions_with_unknown):
            # A view with material of a new cell type added (share u): the unknown head learns its share and, with
            # fractions_with_unknown, the known labels' renormalised fractions stay the clean pseudo-tissue's. The
            # unknown head reads detached codes, so without that option no gradient flows back through this view:
            # it is encoded without building the graph (a forward pass, no backward).
            with torch.set_grad_enabled(self.fractions_with_unknown and torch.is_grad_enabled()):
                zu = m.encode(batch["xu"], noise_sd)
            with_unknown = m.fractions_from_latent(zu, denoise=self.denoise, x=batch["xu"])
            if self.fractions_with_unknown:
                frac = frac + m.head.fraction_loss(with_unknown["relative"], batch["y"])
                n_terms += 1
        losses["fraction_loss"] = frac / n_terms
        total = losses["fraction_loss"]
        if m.head.unknown is not None and with_unknown is not None:
            # The unknown head learns from the clean pseudo-tissue (share 0) and the view with unknown material, from
            # detached codes: it reports, it does not shape the fractions.
            losses["unknown_loss"] = m.head.unknown_loss(clean["unknown"], with_unknown["unknown"], batch["u"])
            if "xd" in batch:
                # and from pseudo-tissues as deep as bulk, whose depth says nothing of their share
                deep = self._at_depth(m, batch["xd"], noise_sd)
                losses["unknown_loss"] = (losses["unknown_loss"] + ((deep - batch["ud"]) ** 2).mean()) / 2
            total = total + losses["unknown_loss"]
        if self.denoise:
            losses["contrastive_loss"] = contrastive
            total = total + self.contrastive_weight * contrastive
        if self.adversarial and train and "bulk" in batch:
            zb = m.encode(batch["bulk"], noise_sd)
            weight = self.adversarial_weight * self._ramp()
            adversarial = m.adversary.loss(z, zb, weight, align=self.align, spread=self.spread_weight > 0)
            if "spread_loss" in adversarial:
                total = total + self.spread_weight * adversarial["spread_loss"]
            losses |= adversarial
            # The discriminator itself learns at full strength; the reversed gradient reaching the encoder is scaled
            # by the ramped weight inside the gradient reversal layer.
            total = total + adversarial["adversarial_loss"]
        losses["loss"] = total
        return losses

    def training_step(self, batch, batch_idx):
        """One optimisation step; logs every loss term per epoch."""
        losses = self._losses(batch, train=True)
        n = batch["x"].shape[0]
        for name, value in losses.items():
            key = "train_loss" if name == "loss" else f"{name}_train"
            self.log(
                key, value.detach(), on_step=False, on_epoch=True, batch_size=n, prog_bar=name == "loss", sync_dist=True
            )
        return losses["loss"] * sum(self._training)

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        """Fold the weights after this step into their moving average (``weight_averaging``); a member that has
        stopped keeps its average."""
        if self._average is not None:
            frozen = tuple(f"members.{i}." for i, training in enumerate(self._training) if not training)
            self._average.update(self.module, frozen)

    def on_validation_epoch_end(self) -> None:
        """With ``member_patience``: stop each member whose own validation fraction loss has not improved for that
        many epochs (as Lightning's early stopping stops one network), and the training once none is left."""
        if self.member_patience is None:
            return
        sums, counts = self._validation_sums, self._validation_counts
        self._validation_sums, self._validation_counts = torch.zeros_like(sums), torch.zeros_like(counts)
        if self.trainer.sanity_checking or not counts.sum() > 0:
            return
        # under data-parallel training every process decides alike, on the losses of all of them
        sums = self.trainer.strategy.reduce(sums, reduce_op="sum")
        counts = self.trainer.strategy.reduce(counts, reduce_op="sum")
        for i in range(len(self._training)):
            if not self._training[i]:
                continue
            loss = float(sums[i] / counts[i])
            if loss < self._best[i]:
                self._best[i], self._wait[i] = loss, 0
            else:
                self._wait[i] += 1
            if self._wait[i] >= self.member_patience:
                self._training[i] = False
        self.log("members_training", float(sum(self._training)), on_epoch=True, sync_dist=True)
        if not any(self._training):
            self.trainer.should_stop = True

    def on_train_end(self) -> None:
        """Give the network the averaged weights (not called when training is interrupted: then the network keeps the
        weights it has)."""
        if self._average is not None:
            self._average.copy_to(self.module)

    def validation_step(self, batch, batch_idx):
        """Fraction loss on held-out pseudo-tissues (used for early stopping)."""
        losses = self._losses(batch, train=False)
        n = batch["x"].shape[0]
        self.log("validation_loss", losses["loss"], on_epoch=True, batch_size=n, sync_dist=True)
        self.log("fraction_loss_validation", losses["fraction_loss"], on_epoch=True, batch_size=n, sync_dist=True)

    def configure_optimizers(self):
        """Adam over all parameters (encoder, denoiser, heads, discriminator, projector), with its multi-tensor
        implementation: on CPU it gives the same weights as the per-parameter loop, bit for bit, in less time where
        there are many parameters (an ensemble's members)."""
        return torch.optim.Adam(self.module.parameters(), lr=self.lr, weight_decay=self.weight_decay, foreach=True)
