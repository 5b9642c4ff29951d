"""DECODE as a scvi-tools model: register a single-cell reference and real bulk, train, predict fractions."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from mudata import MuData
from scvi.model._utils import parse_device_args
from scvi.model.base import BaseModelClass

from .._engine.features import shared_features
from ._bulk import BulkSource
from ._calibration import (
    MIN_GAIN_SAMPLES,
    MIN_TRANSFER_SAMPLES,
    anchored_platform_gains,
    check_mean_fractions,
    check_measured_fractions,
    fit_platform_gains,
    fit_transferable_features,
    mean_anchored_platform_gains,
    n_registered_bulk,
)
from ._ensemble import build_network, ensemble_file_layout, members, set_feature_mask
from ._excess_check import EXCESS_RATIO, EXCESS_WARNING
from ._fit import fit_network
from ._inference import InferenceMixin
from ._intervals import CONTENT_SHIFT, DEFAULT_REACH, fit_interval_calibration
from ._noise import estimate_measurement_noise
from ._pseudotissues import PseudoTissueSampler
from ._reference import (
    excess_before_training,
    label_values,
    prepare_registered,
    refuse_silent_labels,
    without_excess_features,
)
from ._registry import attach_reference, register, registered
from ._save_load import model_attributes, restore_model, write_model_files
from ._settings import TrainSettings, current_seed
from ._stored_fit import trains_on_complement

logger = logging.getLogger("decode_omics")


class DECODE(InferenceMixin, BaseModelClass):
    """DECODE deconvolution of bulk omics from a single-cell reference.

    Zhao T., Liu et al. (2026), "DECODE: deep learning-based common deconvolution framework for various omics data",
    Nature Methods 23:596-608. Four stages, one component each (see the architecture page, ``docs/architecture.md``):

    1. **Pseudo-tissues** drawn fresh every epoch from the reference (:mod:`~decode_omics.model._pseudotissues`).
    2. **Adversarial alignment** of the codes of pseudo-tissues and of the *real, unlabeled bulk* registered with the
       model (:class:`~decode_omics.model.DomainAdversary`; off by default, see :meth:`train`).
    3. **Contrastive denoising** of the codes (:class:`~decode_omics.model.ContrastiveDenoiser`).
    4. **Deconvolution head**: relative fractions over the known labels, or absolute fractions with an explicit
       ``unknown`` share (:class:`~decode_omics.model.DeconvolutionHead`).

    After training, the registered bulk calibrates the model (:mod:`~decode_omics.model._calibration`; see
    ``platform_correction`` in :meth:`train`). Measurements behind each choice are on the method page
    (``docs/method.md``).

    Parameters
    ----------
    reference
        Single-cell reference registered with :meth:`setup_anndata` / :meth:`setup_mudata` with a ``labels_key``.
    bulk
        Real bulk samples registered the same way (no labels), the target domain of the adversarial stage and the
        default data of :meth:`get_fractions`. Optional: without it the adversarial stage is off.
    mode
        ``"relative"`` (fractions over the known labels sum to 1) or ``"absolute"`` (known labels plus ``unknown``).
    n_features
        Keep the ``n_features`` most dispersed features of the reference among those shared with the bulk
        (``None``: all shared features).
    n_hidden, n_latent, dropout
        Network size (see :class:`~decode_omics.model.DECODEModule`).
    cells_per_sample
        Cells per pseudo-tissue.
    pseudotissue
        ``"parametric"`` (each label's contribution drawn from a normal distribution with the label's per-feature
        mean and variance: nothing to memorise), ``"cells"`` (sums of real reference cells) or ``"auto"``: parametric
        for count-like references (integer counts, rows with one total, mostly zeros), real cells otherwise.
    fractions
        Fraction prior of the pseudo-tissues.
    standardize
        Scale every feature of the normalised input by its spread over the pseudo-tissues, or ``"auto"`` (for
        references that are not count-like). The choices made are stored in ``pseudotissue_`` and ``standardize_``.
    min_cells
        Fewest reference cells a label must have.
    n_members
        Networks trained together (:class:`~decode_omics.model.DECODEEnsemble`, in one process), each with its own
        initial weights, input scaling and pseudo-tissues (``batch_size``, ``n_pseudotissues`` and ``n_validation``
        of :meth:`train` are per member). Their average is the estimate; their disagreement is part of the intervals of
        :meth:`get_fractions` (``return_interval=True``). 1: one network.
    unknown_head
        Relative mode: also learn the share of material the reference does not explain, for
        :meth:`get_unexplained` (``None``: on linear scales; values read as stored have no such share). It reads
        the network's codes detached, so the fractions are learnt as without it, and costs about 1.5x the training
        time (one more view of each pseudo-tissue and the head's residual statistics; measured on 20 epochs, one
        thread: 17.7 s -> 27.9 s on real PBMC bulk with 2,000 features, 6.6 s -> 9.7 s on bone marrow). In an
        ensemble (``n_members`` > 1) the first member alone learns it, so the other members do not pay for it.
        Absolute mode always has it, in every member.
    centring_complement
        Values read as stored (``scale="as_is"``): also train the fractions on pseudo-tissues that hold material of
        the cells the reference lacks among those its values were centred over (log-ratios, z-scores), scored against
        the known labels' split, so that such material in the bulk is not read as less of the known labels. Its
        profile is the one the centring implies, minus the reference's cell-weighted mean
        (:meth:`~decode_omics._engine.pseudotissues.PseudoTissueGenerator.centring_complement`; a share up to 0.5
        per sample). ``None``: on where the labels' profiles do not cancel
        (:func:`~decode_omics.model._stored_fit.mix_cancellation` at least 0.2; a reference centred over its own
        cells cancels, and nothing changes there). Stored in ``centring_complement_``; measured on the method page.
    max_feature_excess
        Linear scales, with bulk: leave out of the model's features those that the registered bulk holds more than
        this many times as much of as any label of the reference (per feature, the median over the samples of its
        share of the sample over the largest label's share; :func:`~decode_omics._engine.features.excess_features`).
        No mix of the labels holds more of a feature than its largest label, so such features carry material the
        reference lacks (the markers of a cell type it does not have), which the network would otherwise hand to
        the known labels. ``"auto"`` (default): 10, where the bulk's median excess share (what
        :meth:`get_excess_share` reads, before any feature is left out) reaches 0.02, the level at which
        :func:`~decode_omics.tl.deconvolve` warns; every feature is kept otherwise. ``None``: every feature is kept.
        Left out at 10 on real PBMC bulk with monocytes missing from the reference (the only benchmark tasks where
        ``"auto"`` leaves any out, besides one with synthetic per-gene gains), the known labels' pooled CCC rose from
        0.27 to 0.55, 0.74 to 0.84 and 0.39 to 0.51 (3 seeds); always at 10, it cost 0.01 and 0.04 where the
        reference is complete and 0.08 on one cohort whose missing NK cells share their genes with CD8 T cells,
        which ``"auto"`` leaves alone (method page, *Features the reference cannot explain*). The features left out
        are in ``excess_features_``.
    max_unknown_share
        How much of a sample the unknown head is trained to read as material the reference lacks: its pseudo-tissues
        with a new cell type's material draw that share from ``U(0, max_unknown_share)`` (absolute mode's interval
        calibration cohorts reach 0.8, or this if larger). A head reads little beyond its reach, but where the
        missing material is hard to see it reads near the middle of the reach, so a wider reach reads more
        everywhere. At 0.8 instead of 0.5 (absolute mode, seed 0, the robustness suite's 14 leave-out tasks, the
        ``unknown`` scenario and 6 full references; method page, *How far the unknown share reaches*) the
        ``unknown`` RMSE fell on 8 of 23 tasks, most where the missing material is the majority on the reference's
        platform (kidney 0.345 -> 0.171), and rose on 15, most where nothing or little is missing (kidney's full
        reference 0.276 -> 0.360); the known labels' fractions do not change. Values read as stored have no unknown
        head; their centring complement keeps a reach of 0.5.

    Attributes
    ----------
    platform_gains_
        After :meth:`train`: the fitted platform gain of every model feature (a Series; ``None`` when none were
        fitted). :meth:`get_fractions` divides bulk samples by it unless ``platform_correction=False`` (in absolute
        mode for the known labels' split only: the ``unknown`` share reads the bulk as measured).
    feature_agreement_
        After :meth:`train` on values read as stored (``scale="as_is"``): per model feature, how well the bulk
        follows the network's first estimates (a Series; ``None`` when not judged). Features below 0.5 are masked in
        the network (``module.transform.mask``).
    excess_features_
        The selected features left out because the bulk holds far more of them than any label
        (``max_feature_excess``); empty otherwise.
    excess_share_, excess_carriers_
        With ``max_feature_excess`` set and bulk on a linear scale: the registered bulk's excess shares read before
        any feature was left out (:meth:`get_excess_share`, per sample of its first 20,000 and per feature);
        :func:`~decode_omics.tl.deconvolve` reports these. ``None`` otherwise and on a loaded model.

    Examples
    --------
    >>> import decode_omics as dco
    >>> reference, bulk = dco.datasets.pbmc68k_reference_and_bulk()
    >>> dco.model.DECODE.setup_anndata(reference, labels_key="bulk_labels")
    >>> dco.model.DECODE.setup_anndata(bulk)
    >>> model = dco.model.DECODE(reference, bulk)
    >>> model.train(max_epochs=30)
    >>> fractions = model.get_fractions()
    """

    def __init__(
        self,
        reference: AnnData | MuData,
        bulk: AnnData | MuData | None = None,
        *,
        mode: Literal["relative", "absolute"] = "relative",
        n_features: int | None = 2000,
        n_hidden: int = 256,
        n_latent: int = 128,
        dropout: float = 0.1,
        cells_per_sample: int = 30,
        pseudotissue: Literal["auto", "parametric", "cells"] = "auto",
        fractions: Literal["uniform", "dirichlet", "sparse"] = "dirichlet",
        standardize: bool | Literal["auto"] = "auto",
        min_cells: int = 3,
        n_members: int = 1,
        unknown_head: bool | None = None,
        centring_complement: bool | None = None,
        max_feature_excess: float | str | None = "auto",
        max_unknown_share: float = 0.5,
    ):
        if mode not in ("relative", "absolute"):
            raise ValueError(f"mode must be 'relative' or 'absolute', got {mode!r}.")
        if not (isinstance(max_unknown_share, int | float) and 0 < max_unknown_share < 1):
            raise ValueError(f"max_unknown_share must be a share in (0, 1), got {max_unknown_share!r}.")
        if int(n_members) != n_members or n_members < 1:
            raise ValueError(f"n_members must be a positive integer, got {n_members!r}.")
        if bulk is not None and bulk is reference:
            raise ValueError("reference and bulk are the same object; pass the bulk samples as their own AnnData.")
        super().__init__(reference)
        ref_adata, ref_args = registered(self.adata_manager)
        if ref_args.get("labels_key") is None:
            raise ValueError(
                "The reference was registered without labels_key; call "
                "DECODE.setup_anndata(reference, labels_key=...) first."
            )
        self.bulk_manager_, self.bulk_, bulk_adata = None, bulk, None
        if bulk is not None:
            self.bulk_manager_ = self._get_most_recent_anndata_manager(bulk, required=True)
            self._register_manager_for_instance(self.bulk_manager_)
            bulk_adata, _ = registered(self.bulk_manager_)
            if bulk_adata.n_obs == 0:
                raise ValueError("The bulk data hold 0 samples; pass at least one bulk sample (or bulk=None).")
        self.platform_gains_ = self.feature_agreement_ = self.interval_calibration_ = None  # set by train()
        self.n_members_ = int(n_members)
        self.denoise_, self.train_settings_ = True, {}
        candidates = ref_adata.var_names
        if bulk_adata is not None:
            candidates = shared_features(ref_adata.var_names, bulk_adata.var_names)
        ref = prepare_registered(ref_adata, ref_args, candidates=candidates, n_features=n_features, min_cells=min_cells)
        self.excess_features_: list[str] = []
        self.excess_share_ = self.excess_carriers_ = None
        if isinstance(max_feature_excess, str) and max_feature_excess != "auto":
            raise ValueError(f"max_feature_excess must be 'auto', a ratio above 1 or None, got {max_feature_excess!r}.")
        if max_feature_excess is not None and bulk_adata is None and max_feature_excess != "auto":
            raise ValueError("max_feature_excess compares the registered bulk with the reference: pass bulk.")
        if max_feature_excess == "auto" and (bulk_adata is None or ref.scale.scale == "as_is"):
            max_feature_excess = None  # nothing to compare, or no shares to compare
        if max_feature_excess is not None:
            _, bulk_args = registered(self.bulk_manager_)
            source = BulkSource(bulk_adata, list(ref.features), bulk_args.get("layer"), bulk_args.get("scale", "auto"))
            if ref.scale.scale != "as_is":  # the check of tl.deconvolve, read before any feature is left out
                self.excess_share_, self.excess_carriers_ = excess_before_training(ref, source, EXCESS_RATIO)
            if max_feature_excess == "auto":
                reached = float(np.median(self.excess_share_.to_numpy())) >= EXCESS_WARNING
                max_feature_excess = EXCESS_RATIO if reached else None
            if max_feature_excess is not None:
                ref, self.excess_features_ = without_excess_features(
                    ref, ref_adata, ref_args, source, max_feature_excess, min_cells
                )
        self.features_ = [str(f) for f in ref.features]
        self.labels_ = [str(label) for label in ref.labels]
        self.label_values_ = label_values(ref_adata.obs[ref_args["labels_key"]], self.labels_)
        self.mode_ = mode
        self.reference_scale_ = ref.scale.to_dict()
        if pseudotissue == "auto":  # resolved here, so the resolved choice is what init_params_ records
            pseudotissue = "parametric" if ref.count_like else "cells"
        if standardize == "auto":
            standardize = not ref.count_like
        self.pseudotissue_, self.standardize_ = pseudotissue, standardize
        self._sampler = PseudoTissueSampler.from_reference(
            ref, cells_per_sample=cells_per_sample, method=self.pseudotissue_, fractions=fractions
        )
        refuse_silent_labels(self.labels_, self._sampler.mean)
        as_is = ref.scale.scale == "as_is"
        if as_is and mode == "absolute":
            raise ValueError(
                "Absolute mode needs a linear scale (an unknown share is a share of abundance); the reference was "
                "registered with scale='as_is'. Use mode='relative'."
            )
        self.module_kwargs_ = {
            "n_hidden": n_hidden,
            "n_latent": n_latent,
            "dropout": dropout,
            "input_normalization": "standardize_rows" if as_is else "composition",
        }
        if unknown_head and as_is:
            raise ValueError(
                "unknown_head=True needs a linear scale (an unknown share is a share of abundance); the reference was "
                "registered with scale='as_is'."
            )
        if mode == "relative" and (not as_is if unknown_head is None else unknown_head):
            self.module_kwargs_["unknown_head"] = True
            if self.n_members_ > 1:  # the first member reports the unknown share (see DECODEEnsemble)
                self.module_kwargs_["unknown_head_members"] = 1
        self.centring_complement_ = trains_on_complement(centring_complement, as_is, self._sampler.mean)
        if self.centring_complement_:
            self._sampler.config.unknown_material = "complement"
        else:  # the centring complement keeps its own reach (0.5); a new cell type's material reaches this far
            self._sampler.config.unknown_share = float(max_unknown_share)
        self.bulk_scale_: dict | None = None
        if self.bulk_manager_ is not None:
            source = self._bulk_source(None)
            self.bulk_scale_ = source.scale.to_dict()
            if not source.on_disk:
                source.matrix()  # refuse samples without signal now, not after training
        self._build_module()
        self._model_summary_string = (
            f"DECODE model ({mode}): {len(self.labels_)} labels, {len(self.features_)} features, "
            f"{bulk_adata.n_obs if bulk_adata is not None else 0} bulk samples registered."
        )
        self.init_params_ = self._get_init_params(locals())

    def _build_module(self) -> None:
        """A freshly initialised network (seeded), with the reference's label profiles and input transform."""
        torch.manual_seed(current_seed())
        absolute = self.mode_ == "absolute"
        self.module = build_network(
            len(self.features_), len(self.labels_), absolute=absolute, n_members=self.n_members_, **self.module_kwargs_
        )
        seed = current_seed()
        for i, member in enumerate(members(self.module)):
            member.label_profiles.copy_(torch.as_tensor(self._sampler.mean))
            # every member scales its input from its own pseudo-tissues (the first as a single network of this seed)
            rng = np.random.default_rng(seed if i == 0 else [seed, i])
            x = torch.as_tensor(self._sampler.sample(512, rng, views=False)["x"])
            member.transform.fit(x, standardize=self.standardize_)

    # ------------------------------------------------------------------ setup
    @classmethod
    def setup_anndata(
        cls, adata: AnnData, *, labels_key: str | None = None, layer: str | None = None, scale: str = "auto", **kwargs
    ):
        """Register a single-cell reference (with ``labels_key``) or bulk samples (without) with the model.

        As every scvi-tools ``setup_anndata``, this records the registration in ``adata.uns`` (and, for a reference,
        the label codes in ``adata.obs["_scvi_labels"]``); the data themselves are not changed.

        Parameters
        ----------
        adata
            Cells x features (reference) or samples x features (bulk), on any scale :func:`~decode_omics.pp.to_linear`
            can bring to linear. A backed AnnData (``anndata.read_h5ad(path, backed="r")``) stays on disk: the model
            streams it in row blocks for its statistics and reads a fresh random pool of cells per epoch.
        labels_key
            ``adata.obs`` column with cell types or cell states (reference only).
        layer
            Layer holding the data instead of ``.X``.
        scale
            Scale of the data: ``"auto"`` (detected, see :func:`~decode_omics.pp.detect_scale`) or one of
            ``"counts"``, ``"linear"``, ``"log1p"``, ``"log2"``. Give it when detection guesses wrong, for example
            small linear values (below 15, not integers) that would be read as log1p. ``"as_is"`` uses the values as
            stored (negatives kept) for data with no linear scale (log-ratios, z-scores) whose samples are defined as
            sums of stored values; the model then normalises each sample by its own mean and spread instead of its
            total. Relative mode only.
        **kwargs
            Passed to :meth:`scvi.data.AnnDataManager.register_fields`.
        """
        register(cls, adata, None, labels_key, layer, scale, cls._get_setup_method_args(**locals()), kwargs)

    @classmethod
    def setup_mudata(
        cls,
        mdata: MuData,
        *,
        modality: str,
        labels_key: str | None = None,
        layer: str | None = None,
        scale: str = "auto",
        **kwargs,
    ):
        """Register one modality of a MuData as reference (with ``labels_key``) or bulk (without).

        Parameters
        ----------
        mdata
            The MuData.
        modality
            Name of the modality (``mdata.mod`` key) to use, e.g. ``"rna"``, ``"prot"`` or ``"metab"``.
        labels_key, layer, scale, **kwargs
            As for :meth:`setup_anndata`, for the modality.
        """
        register(cls, mdata, modality, labels_key, layer, scale, cls._get_setup_method_args(**locals()), kwargs)

    # ------------------------------------------------------------------ training
    def train(
        self,
        max_epochs: int | None = None,
        *,
        batch_size: int = 128,
        n_pseudotissues: int = 2048,
        lr: float = 1e-3,
        adversarial: bool = False,
        denoise: bool = True,
        contrastive_weight: float = 0.1,
        adversarial_weight: float = 0.1,
        spread_weight: float = 1.0,
        input_noise: float = 0.2,
        measurement_noise: float | Literal["auto"] = 0.0,
        weight_averaging: float = 0.995,
        align: Literal["bulk", "both"] = "bulk",
        early_stopping: bool = True,
        early_stopping_patience: int = 15,
        n_validation: int = 512,
        platform_correction: bool | None = None,
        accelerator: str = "auto",
        devices: int | list[int] | str = "auto",
        plan_kwargs: dict | None = None,
        **trainer_kwargs,
    ) -> None:
        """Train on fresh pseudo-tissues each epoch, then calibrate to the registered bulk.

        Parameters
        ----------
        max_epochs
            Passes over ``n_pseudotissues`` fresh pseudo-tissues (default 100).
        batch_size
            Pseudo-tissues per step (and as many real bulk samples, drawn with replacement); per member of an
            ensemble.
        n_pseudotissues
            Pseudo-tissues drawn per epoch (per member of an ensemble).
        lr
            Adam learning rate.
        adversarial
            Align pseudo-tissue and real-bulk codes adversarially (needs registered bulk; off by default). It pulls
            the bulk's codes, and with them its estimates, towards the pseudo-tissues' spread of compositions
            (Dirichlet(1) over the labels): it suits cohorts designed to span the labels, not cohorts that vary
            around one composition, as tissue does. See the method page (``docs/method.md``).
        denoise
            Train and use the contrastive denoiser on noisy views of the pseudo-tissues. ``False`` trains faster
            (no noisy views to encode).
        contrastive_weight, adversarial_weight
            Weights of the contrastive loss and of the reversed gradient.
        spread_weight
            Weight of the adversarial stage's spread guard: each latent dimension's spread over the real bulk's codes
            is kept at least at the pseudo-tissues' (a hinge on the standard deviations). Without it (``0``) the
            encoder can evade the discriminator by mapping every bulk sample to nearly one code.
        input_noise
            Standard deviation of Gaussian noise on the normalised input in training.
        measurement_noise
            Standard deviation, on the log scale, of a random factor on every value of every pseudo-tissue in
            training, which teaches the network the noise a measurement adds per sample and feature (default 0:
            none). ``"auto"``: the registered bulk's noise beyond the pseudo-tissues', estimated without truth from
            how each sample departs from its best mix of the label profiles (:mod:`~decode_omics.model._noise`; 0,
            and training unchanged, for bulk averaged over many cells, for values read as stored, for bulk from
            another platform and without registered bulk). The value used is recorded in :attr:`train_settings_`.
            Off by default because it costs accuracy on bulk without added noise; measured on the method page.
        weight_averaging
            The network ends training with an exponential moving average of its weights over the training steps
            (Polyak averaging), with this decay per step (0.995: about the last 200 steps); ``0``: the last step's
            weights. The average depends less on where training happens to stop, so results move less with the
            seed; measured on the method page.
        align
            Which codes the adversarial stage moves: ``"bulk"`` (only the real bulk's, towards the pseudo-tissues)
            or ``"both"`` (classical DANN).
        early_stopping
            Stop when the fraction loss on held-out pseudo-tissues (never the bulk) stops improving.
        early_stopping_patience
            Epochs without improvement before stopping.
        n_validation
            Held-out pseudo-tissues for early stopping.
        platform_correction
            After training, fit the registered bulk's per-feature *platform gains* (:attr:`platform_gains_`) from the
            network's first estimates and divide bulk samples by them before every prediction; for values read as
            stored (``scale="as_is"``), mask the features that do not transfer to the bulk's platform
            (:attr:`feature_agreement_`) and train again instead (an ensemble judges from its average after a
            first training of a third of the epochs, :data:`~decode_omics.model._settings.JUDGING_EPOCHS`). In
            absolute mode the gains apply to the known labels' split only; the ``unknown`` share reads the bulk as
            measured. ``None``: on (the same as ``True``). Needs 5 registered bulk samples (20 for ``as_is``); see
            :mod:`~decode_omics.model._calibration`.
        accelerator, devices
            Lightning device settings (``"cpu"``, ``"gpu"``, ``"auto"``; ``devices=2`` for two processes or GPUs).
        plan_kwargs
            More keyword arguments for :class:`~decode_omics.model.DECODETrainingPlan`.
        **trainer_kwargs
            More keyword arguments for :class:`scvi.train.Trainer` (e.g. ``enable_progress_bar=False``), among them
            ``strategy="ddp"`` for data-parallel training over ``devices`` processes (run from a script: Lightning
            starts the other processes by running it again). Each process draws its own share of the pseudo-tissues
            from a stream seeded by ``(seed, epoch, rank)``, so results repeat for a given number of processes.
            Run logs go to a temporary folder unless ``log_save_dir`` is given.

        Notes
        -----
        Logged per epoch in :attr:`history`: ``train_loss``, ``fraction_loss_train``, ``contrastive_loss_train``,
        ``adversarial_loss_train``, ``discriminator_accuracy_train`` (0.5 = aligned), ``unknown_loss_train``
        (absolute mode), ``validation_loss`` and ``fraction_loss_validation``; for an ensemble whose members stop
        one by one (``plan_kwargs={"member_patience": 15}``, see :class:`~decode_omics.model.DECODETrainingPlan`),
        ``members_training``.
        """
        max_epochs = 100 if max_epochs is None else int(max_epochs)
        if adversarial and self.bulk_manager_ is None:
            logger.info("No bulk registered: the adversarial stage is off.")
            adversarial = False
        settings = TrainSettings.from_call(locals())
        if self.centring_complement_:  # the fractions learn from the view with the complement
            settings.plan_kwargs = {"fractions_with_unknown": True} | (settings.plan_kwargs or {})
        if settings.measurement_noise == "auto":
            settings.measurement_noise = estimate_measurement_noise(self)
        elif not isinstance(measurement_noise, (int, float)) or measurement_noise < 0:
            raise ValueError(f"measurement_noise must be 'auto' or a number >= 0, got {measurement_noise!r}.")
        # trained on, and calibrated to, the bulk as measured
        self.platform_gains_ = self.feature_agreement_ = self.interval_calibration_ = None
        set_feature_mask(self.module, np.ones(len(self.features_)))  # a new training reads every feature first
        if platform_correction is None:
            platform_correction = True
        n_bulk = n_registered_bulk(self) if platform_correction and self._reads_as_stored() else 0
        judges = n_bulk >= MIN_TRANSFER_SAMPLES
        if 0 < n_bulk < MIN_TRANSFER_SAMPLES:
            logger.info(
                f"Judging which features transfer to the bulk's platform needs at least {MIN_TRANSFER_SAMPLES} bulk "
                f"samples (got {n_bulk}): skipped."
            )
        # an ensemble's average judges the features after a shorter first training (see JUDGING_EPOCHS)
        first = settings.judging() if judges and self.n_members_ > 1 else settings
        completed = fit_network(self, first)
        masked = False
        if completed and judges:
            keep = fit_transferable_features(self)
            masked = keep is not None
            if masked:
                logger.info(
                    f"Training again on the {int(keep.sum())} of {keep.size} features that transfer to the bulk's "
                    "platform (see feature_agreement_)."
                )
            if masked or first is not settings:  # on the features kept, or in full after a shorter first training
                self._build_module()
                set_feature_mask(self.module, keep if masked else np.ones(len(self.features_)))
                fit_network(self, settings)
        self.platform_gains_ = fit_platform_gains(self) if platform_correction else None
        if completed:
            self._defer_interval_calibration(seed=current_seed())
        # what was applied, not what was asked for: with too few bulk samples nothing is fitted
        applied = self.platform_gains_ is not None or masked
        self.train_settings_ = settings.recorded() | {
            "platform_correction": applied,
            "platform_correction_requested": bool(platform_correction),
        }

    def calibrate_intervals(
        self, *, content_shift: float = CONTENT_SHIFT, unknown_share: float | Literal["auto"] | None = None
    ) -> None:
        """Calibrate the intervals of :meth:`get_fractions` now, without training (after :meth:`train` they are
        calibrated with the defaults when first asked for; see :mod:`~decode_omics.model._intervals`). Sets
        :attr:`interval_calibration_`.

        Parameters
        ----------
        content_shift
            How much more or less of itself each label may put into a bulk sample per cell than into the reference,
            as the log-sd of a per-label factor (default 0.3, about 1.35x either way). Use 0 for bulk made from the
            reference's own cells (simulations), where the amounts are the same: the intervals are then narrower.
            In absolute mode the unknown material draws a factor of the same size
            (``interval_calibration_["unknown_content_shift"]``).
        unknown_share
            Relative mode: how much of each bulk sample may be material the reference lacks. The held-out cohorts
            then carry material of new cell types, a share drawn from ``U(0, unknown_share)`` per sample, and are
            scored against the known labels' split, so the intervals allow for the fractions that material pulls
            towards the most similar labels. ``"auto"`` matches it to the registered bulk's median
            :meth:`get_unexplained` (on the grid :data:`~decode_omics.model._intervals.UNKNOWN_SHARE_GRID`). Default
            0: the reference holds everything. Not matched (0, with a warning) where the bulk's median reference fit
            exceeds 2, where a platform shift reads as unexplained material. With a share above 0 each sample's
            interval also widens with its own unexplained share, by a weight fitted on the cohorts
            (``interval_calibration_["unexplained_weight"]``, 0 where it does not narrow them). Measured on the
            uncertainty page (*Relative mode when the reference lacks material*; 3 seeds): on real PBMC bulk without
            NK cells in the reference, ``"auto"`` lifts the coverage of the 90 % intervals from 0.75-0.81 to 0.86
            (GSE107572) but not on GSE107011 (0.60-0.69 either way: the unknown head reads its missing NK cells too
            weakly to match more than 0.05), and leaves 7 of 8 full-reference cohorts' as they were; on kidney
            replicate 3 a batch shift reads as missing material and the intervals grow too wide (0.83-0.89 ->
            0.97-0.99).
            HSCs missing from a bone-marrow reference read as little unexplained material, so little changes there.
            Absolute mode: the cohorts always hold unknown material, scored as the ``unknown`` column, a share
            ``U(0, unknown_share)`` per sample (``None``, default: 0.8, or ``max_unknown_share`` if larger);
            ``"auto"`` is relative mode's. The unknown head, trained on shares up to 0.5, reads larger ones too low,
            and cohorts reaching 0.8 put those errors into the intervals (uncertainty page, *Calibrating beyond the
            reach*).
        """
        if self.module is None or not self.is_trained_:
            raise ValueError("Train the model first (model.train()); intervals are calibrated on the trained network.")
        self.interval_calibration_ = fit_interval_calibration(
            self, content_shift=content_shift, unknown_share=unknown_share
        )

    @property
    def interval_calibration_(self) -> dict | None:
        """After :meth:`train`: what the intervals of :meth:`get_fractions` are calibrated on (see
        :mod:`~decode_omics.model._intervals`); ``None`` before.

        The calibration runs when this is first read (intervals asked for, :meth:`save`), not in :meth:`train`: a fit
        without intervals does not pay for it (5-20 s on one CPU thread for the benchmark's models). It draws from
        streams of the seed :meth:`train` ran with, so it is the same whenever it runs.
        """
        pending = getattr(self, "_pending_calibration", None)
        if pending is not None:
            kwargs = {k: v for k, v in pending.items() if k != "record"}
            self._interval_calibration = fit_interval_calibration(self, **kwargs) | pending.get("record", {})
            self._pending_calibration = None
        return getattr(self, "_interval_calibration", None)

    @interval_calibration_.setter
    def interval_calibration_(self, value: dict | None) -> None:
        self._pending_calibration, self._interval_calibration = None, value

    def _defer_interval_calibration(self, **settings) -> None:
        """Calibrate the intervals when :attr:`interval_calibration_` is first read, with ``settings`` (keyword
        arguments of :func:`~decode_omics.model._intervals.fit_interval_calibration`; ``record``: entries to add to
        its result)."""
        self._interval_calibration, self._pending_calibration = None, settings

    def fit_platform_gains(
        self, measured_fractions: pd.DataFrame | None = None, *, mean_fractions: Mapping | pd.Series | None = None
    ) -> pd.Series:
        """Fit the registered bulk's platform gains again, without training; anchored on measured cell fractions.

        :meth:`train` fits the gains from the network's own estimates, and those cannot tell a feature the bulk's
        platform measures differently from a label read too high or too low: on real PBMC bulk against the 10x
        reference, B cells read 2.5-3x below flow cytometry, and gains fitted from the true fractions instead bring
        every label's mean within 0.025 of flow (method page, *Why B cells read low*). Where cell fractions were
        measured on some of the samples (flow cytometry of a subset of the cohort), pass them here: the gains are
        then fitted from those samples' measured fractions and from the other samples' estimates rescaled, label by
        label, as the measured samples show (:func:`~decode_omics.model._calibration.anchored_platform_gains`). Every
        later prediction reads through them. Intervals, if calibrated, are calibrated again, allowing each label only
        the bias the measured samples leave open: the content shift becomes the root mean square over labels of the
        standard error of the measured samples' log ratio of measured over estimated fraction, where that is below
        the one used before.

        The measured samples' own estimates are no longer an independent check: score the others.

        Parameters
        ----------
        measured_fractions
            Samples x labels: cell fractions measured on at least 5 registered bulk samples (index: their
            ``obs_names``; columns: the model's labels, rows renormalised over them; a row of NaN for a sample not
            measured). ``None`` fits the gains from the network's estimates, as :meth:`train` does. In absolute mode
            give the known labels' fractions (renormalised over them, as the gains read only their split); an
            ``unknown`` column, as :meth:`get_fractions` writes it, is allowed and not used. This is how a cohort
            whose reference lacks a cell type the bulk holds keeps the known labels' split: on real PBMC bulk
            (GSE107572) without monocytes in the reference, five measured samples take the other samples' pooled
            CCC from 0.305 to 0.808 (3 seeds; method page, *Gains anchored where the reference lacks material*).
        mean_fractions
            Instead of per-sample measurements: the cohort's average composition, one fraction per label (a mapping
            or Series; renormalised over the labels; in absolute mode the known labels, ``unknown`` allowed and not
            used), from a blood count, flow cytometry of pooled material or a published composition of the tissue.
            Each label's estimates are rescaled to that mean, every sample keeping its deviation from it as the
            network read it, and the gains are fitted from them
            (:func:`~decode_omics.model._calibration.mean_anchored_platform_gains`). What the gains lack is each
            label's level, so a mean close to the cohort's anchors them about as well as every sample's flow
            fractions; a mean further from it than the network's own reading costs accuracy (method page, *Gains
            anchored on the cohort's mean composition*). The intervals keep the content shift they had.

        Returns
        -------
        The gains (also in :attr:`platform_gains_`); :attr:`train_settings_` records ``"platform_gains_from"``.
        """
        if self.module is None or not self.is_trained_:
            raise ValueError("Train the model first (model.train()); the gains are fitted from the trained network.")
        if self._reads_as_stored():
            raise ValueError(
                "Values read as stored (scale='as_is') have no linear scale for a gain to multiply; such models mask "
                "the features that do not transfer instead (feature_agreement_)."
            )
        if self.bulk_manager_ is None and self.bulk_ is None:
            raise ValueError("Platform gains are fitted on the registered bulk: pass bulk to DECODE(...) first.")
        pending = getattr(self, "_pending_calibration", None)
        calibrated = pending is not None or self._interval_calibration is not None
        # what the calibration holds or, not yet run, will hold (without running it)
        if pending is not None:
            calibration = {**pending, **pending.get("record", {})}
        else:
            calibration = self._interval_calibration or {}
        # the content shift chosen before any anchoring (train's default, or calibrate_intervals')
        prior = calibration.get("content_shift_before_anchoring", calibration.get("content_shift", CONTENT_SHIFT))
        content = prior
        ignored = ("unknown",) if self.mode_ == "absolute" else ()
        if measured_fractions is not None and mean_fractions is not None:
            raise ValueError(
                "Give measured_fractions (per sample) or mean_fractions (the cohort's average), not both: samples "
                "measured one by one already give the mean."
            )
        if mean_fractions is not None:
            mean = check_mean_fractions(mean_fractions, list(self.labels_), ignored)
            gains, source = mean_anchored_platform_gains(self, mean), "the cohort's mean fractions"
        elif measured_fractions is None:
            gains, source = fit_platform_gains(self), "estimates"
            if gains is None:
                raise ValueError(f"Platform gains need a registered bulk of at least {MIN_GAIN_SAMPLES} samples.")
        else:
            names = self._bulk_source(None, platform_correction=False).obs_names
            measured = check_measured_fractions(measured_fractions, list(self.labels_), names, ignored)
            gains, left = anchored_platform_gains(self, measured)
            source, content = f"measured fractions of {len(measured)} samples", min(content, left)
        self.platform_gains_ = gains
        self.train_settings_ = dict(self.train_settings_ or {}) | {
            "platform_correction": True,
            "platform_gains_from": source,
        }
        if calibrated:  # again, through the new gains, when next read
            # measured fractions of the known labels say nothing of the unknown material's amount per cell
            unknown = calibration.get("unknown_content_shift", prior) if self.mode_ == "absolute" else None
            record = {"content_shift_before_anchoring": prior} if measured_fractions is not None else {}
            seed = pending["seed"] if pending is not None else current_seed()
            share_from = str(calibration.get("unknown_share_from", ""))
            share = "auto" if share_from.startswith("matched") else calibration.get("unknown_share")
            share = None if share_from == DEFAULT_REACH else share
            self._defer_interval_calibration(
                content_shift=content, unknown_content_shift=unknown, seed=seed, unknown_share=share, record=record
            )
        return gains

    # ------------------------------------------------------------------ save / load
    def save(self, dir_path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Save the model: weights as tensors (``model_weights.pt``) and everything else as JSON.

        Nothing in the files is executable: :meth:`load` reads the weights with ``torch.load(weights_only=True)``.

        Parameters
        ----------
        dir_path
            Folder to write.
        overwrite
            Overwrite an existing folder.
        """
        weights = ensemble_file_layout(self.module.state_dict(), self.n_members_)
        write_model_files(Path(dir_path), weights, model_attributes(self), overwrite)

    @classmethod
    def load(
        cls,
        dir_path: str | os.PathLike,
        *,
        reference: AnnData | MuData | None = None,
        bulk: AnnData | MuData | None = None,
        accelerator: str = "auto",
        device: int | str = "auto",
    ) -> DECODE:
        """Load a model saved with :meth:`save`.

        Parameters
        ----------
        dir_path
            Folder written by :meth:`save`.
        reference
            The reference, registered with :meth:`setup_anndata`; needed only to continue training.
        bulk
            Bulk samples (registered or not) to attach as the default data of :meth:`get_fractions`; their features
            are checked against the model's.
        accelerator, device
            Where to put the network.

        Returns
        -------
        The model, in evaluation mode; it predicts exactly as the saved one did.
        """
        model, attrs = restore_model(
            cls, Path(dir_path), parse_device_args(accelerator, device, return_device="torch")[2]
        )
        if reference is not None:
            attach_reference(model, reference, attrs)
        if bulk is not None:
            model._bulk_source(bulk)  # validates features
            model.bulk_ = bulk
            if "_scvi_uuid" in getattr(bulk, "uns", {}):
                model.bulk_manager_ = cls._get_most_recent_anndata_manager(bulk)
        return model
