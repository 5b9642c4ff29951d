"""The one inference path of DECODE and every ``get_*`` method built on it (a mixin of :class:`DECODE`)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from mudata import MuData
from tqdm.auto import tqdm

from .._engine.features import counted_excess, excess_features
from ._bulk import BulkSource, resolve_modality
from ._calibration import log_residual_spread, warn_if_unknown_unreliable
from ._ensemble import member_fractions
from ._excess_check import EXCESS_RATIO
from ._intervals import DEFAULT_LEVEL, interval_frames, intervals
from ._registry import registered
from ._settings import current_seed, shared_docs
from ._stored_fit import N_PSEUDOTISSUES, OUTSIDE_QUANTILE, cone_excess


def absolute_through_gains(module, x: torch.Tensor, divisor: torch.Tensor, denoise: bool) -> torch.Tensor:
    """Every network's absolute-mode fractions (``n_members x n x (K + 1)``), the known labels read through the
    platform gains and the ``unknown`` share from the bulk as measured.

    The gains correct how the bulk's platform measures each feature, and the known labels' split gains from that as
    in relative mode. The unknown share must not be read through them: material the reference lacks, at a similar
    share in every sample, looks to the gains like a platform that over-measures its features, so dividing by them
    removes part of what the share reads (measured on the method page). So the known labels' split comes from
    ``x / divisor`` and is scaled to ``1 - unknown``, with ``unknown`` from ``x``; rows still sum to 1.
    """
    through = member_fractions(module, x / divisor, denoise)
    measured = member_fractions(module, x, denoise)
    known = through[..., :-1]
    known = known / known.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    unknown = measured[..., -1:]
    return torch.cat([known * (1 - unknown), unknown], dim=-1)


class InferenceMixin:
    """Predictions of a trained :class:`~decode_omics.model.DECODE`: every ``get_*`` reads its samples through
    :meth:`_bulk_source` and runs the network through :meth:`_predict`."""

    @property
    def device(self) -> torch.device:
        """The device the network's parameters are on."""
        return next(self.module.parameters()).device

    @property
    def labels(self) -> list:
        """The known labels, in output order, as the reference holds them (integer labels stay integers)."""
        return list(self.label_values_ or self.labels_)

    @property
    def features(self) -> list[str]:
        """The features the model reads, in order."""
        return list(self.features_)

    @property
    def history(self) -> dict[str, pd.DataFrame]:
        """Per-epoch training metrics, a dict mapping each name to a one-column DataFrame indexed by epoch."""
        return self.history_ or {}

    def _reads_as_stored(self) -> bool:
        """Whether the model reads values as stored (``scale="as_is"``) rather than on a linear scale."""
        return self.module_kwargs_.get("input_normalization") == "standardize_rows"

    def _bulk_source(self, adata, layer=None, modality=None, scale="auto", platform_correction=True) -> BulkSource:
        """The model's features of ``adata`` (default: the registered bulk) as the network reads them."""
        if adata is None and self.bulk_manager_ is None and self.bulk_ is not None:
            adata = self.bulk_
        if adata is None:
            if self.bulk_manager_ is None:
                raise ValueError("No bulk data registered with the model; pass adata=.")
            data, args = registered(self.bulk_manager_)
            layer, scale = args.get("layer"), args.get("scale", "auto")
        else:
            data = resolve_modality(adata, modality)
        if scale == "auto" and self._reads_as_stored():
            scale = "as_is"  # a model of stored values reads bulk as stored
        gains = self.platform_gains_ if platform_correction else None
        return BulkSource(data, self.features_, layer, scale, gains=None if gains is None else gains.to_numpy())

    @torch.inference_mode()
    def _predict(self, source: BulkSource, fn, block_rows: int, batch_size: int, progress_bar: bool = False):
        """The one inference path: ``fn`` (a network function of a batch) over ``source``, yielding ``(start,
        float64 array)`` per block of ``block_rows`` samples, forward passes of ``batch_size``."""
        self.module.eval()
        with tqdm(total=source.n_obs, disable=not progress_bar, unit="samples", desc="DECODE") as bar:
            for start, block in source.blocks(block_rows):
                batches = range(0, block.shape[0], batch_size)
                out = [
                    fn(torch.as_tensor(block[s : s + batch_size], device=self.device)).cpu().numpy() for s in batches
                ]
                bar.update(block.shape[0])
                yield start, np.concatenate(out).astype(np.float64)

    def _fractions_source(self, adata, layer, modality, scale, platform_correction):
        """The source, the function of a batch giving every network's fractions (``n_members x n x K``) and the
        column names of :meth:`get_fractions` and :meth:`iter_fractions`; warns in absolute mode when the unknown
        share cannot be trusted.

        In absolute mode with platform gains, the source reads the bulk as measured and the function divides by the
        gains itself: the known labels are read through them, the ``unknown`` share from the bulk as measured
        (:func:`absolute_through_gains`)."""
        self._check_if_trained(warn=True)
        split = self.mode_ == "absolute" and platform_correction and self.platform_gains_ is not None
        source = self._bulk_source(adata, layer, modality, scale, platform_correction and not split)
        columns = self.labels + (["unknown"] if self.mode_ == "absolute" else [])
        if self.mode_ == "absolute":
            warn_if_unknown_unreliable(source, self.module.label_profiles.cpu().numpy())
        if not split:
            return source, lambda x: member_fractions(self.module, x, self.denoise_), columns
        divisor = torch.as_tensor(self.platform_gains_.to_numpy(), dtype=torch.float32, device=self.device)
        return source, lambda x: absolute_through_gains(self.module, x, divisor, self.denoise_), columns

    @shared_docs
    def get_fractions(
        self, adata: AnnData | MuData | None = None, *, layer: str | None = None, modality: str | None = None,
        scale: str = "auto", platform_correction: bool = True, batch_size: int = 1024, progress_bar: bool = False,
        return_interval: bool = False, level: float = DEFAULT_LEVEL,
    ) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:  # fmt: skip
        """Estimated fractions of every bulk sample, and with ``return_interval=True`` an interval for each.

        Parameters
        ----------
        {data}
        {platform_correction}
        {batch_size}
        progress_bar
            Show progress over the samples (useful for a cohort on disk).
        return_interval
            Also return the lower and upper bounds of an interval per sample and label, at ``level``, calibrated in
            :meth:`train` on held-out pseudo-tissues shifted as far from the reference as the registered bulk is,
            and wider where the members of an ensemble (``n_members``) disagree and, when calibrated with
            ``unknown_share`` (:meth:`calibrate_intervals`), where the reference explains less of a sample
            (:meth:`get_unexplained`), as far as the calibration finds it to matter
            (:mod:`~decode_omics.model._intervals`). Samples from another platform than the
            registered bulk are read with the registered bulk's calibration.
        level
            Intended share of true fractions inside their intervals (default 0.9).

        Returns
        -------
        DataFrame, samples x labels (plus ``unknown`` in absolute mode); rows sum to 1. With
        ``return_interval=True``, ``(fractions, lower, upper)``: three DataFrames of that shape, ``lower <= fractions
        <= upper`` within [0, 1].
        """
        source, per_member, columns = self._fractions_source(adata, layer, modality, scale, platform_correction)
        if not return_interval:
            fn = lambda x: per_member(x).mean(dim=0)  # the ensemble's average
            parts = [v for _, v in self._predict(source, fn, max(batch_size, 10_000), batch_size, progress_bar)]
            return pd.DataFrame(np.concatenate(parts), index=source.obs_names, columns=columns)
        if self.interval_calibration_ is None:
            raise ValueError(
                "This model has no interval calibration (it is made for a trained model when intervals are first "
                "asked for; a model saved by an earlier version, or an interrupted training, has none): call "
                "model.calibrate_intervals()."
            )

        def flat_members(x):  # samples x (members * columns), so that blocks concatenate along samples
            return per_member(x).permute(1, 0, 2).reshape(x.shape[0], -1)

        parts = [v for _, v in self._predict(source, flat_members, max(batch_size, 10_000), batch_size, progress_bar)]
        values = np.concatenate(parts).reshape(source.n_obs, self.n_members_, len(columns)).transpose(1, 0, 2)
        keys = self.labels_ + (["unknown"] if self.mode_ == "absolute" else [])
        shares = None
        if self.interval_calibration_.get("unexplained_weight", 0.0):  # intervals widen with each sample's share
            shares = self.get_unexplained(adata, layer=layer, modality=modality, scale=scale, batch_size=batch_size)
            shares = shares.to_numpy()
        bounds = intervals(self.interval_calibration_, values, keys, level, shares)
        return interval_frames(*bounds, source.obs_names, columns)

    @shared_docs
    def iter_fractions(
        self, adata: AnnData | MuData | None = None, *, layer: str | None = None, modality: str | None = None,
        scale: str = "auto", platform_correction: bool = True, block_rows: int = 10_000, batch_size: int = 1024,
    ) -> Iterator[pd.DataFrame]:  # fmt: skip
        """Fractions block by block, for cohorts too large to hold: yields one DataFrame per ``block_rows`` samples
        (read from disk block by block when ``adata`` is backed), so each can be written out as it comes. Memory is
        bounded by one block, whatever the cohort size.

        Parameters
        ----------
        {data}
        {platform_correction}
        block_rows
            Samples per yielded DataFrame.
        {batch_size}

        Examples
        --------
        >>> cohort = anndata.read_h5ad("cohort.h5ad", backed="r")
        >>> for i, block in enumerate(model.iter_fractions(cohort)):
        ...     block.to_csv("fractions.csv", mode="a", header=i == 0)
        """
        source, per_member, columns = self._fractions_source(adata, layer, modality, scale, platform_correction)
        for start, values in self._predict(source, lambda x: per_member(x).mean(dim=0), block_rows, batch_size):
            yield pd.DataFrame(values, index=source.obs_names[start : start + len(values)], columns=columns)

    @shared_docs
    def get_latent_representation(
        self, adata: AnnData | MuData | None = None, *, layer: str | None = None, modality: str | None = None,
        scale: str = "auto", platform_correction: bool = True, batch_size: int = 1024,
    ) -> np.ndarray:  # fmt: skip
        """The encoder's code of every bulk sample (samples x ``n_latent``).

        The space the adversarial stage aligns, and the one :meth:`get_domain_distance` measures distances in.

        Parameters
        ----------
        {data}
        {platform_correction}
        {batch_size}
        """
        source = self._bulk_source(adata, layer, modality, scale, platform_correction)
        parts = [v for _, v in self._predict(source, self.module.encode, max(batch_size, 10_000), batch_size)]
        return np.concatenate(parts).astype(np.float32)

    @shared_docs
    @torch.inference_mode()
    def get_domain_distance(
        self, adata: AnnData | MuData | None = None, *, layer: str | None = None, modality: str | None = None,
        n_neighbors: int = 10,
    ) -> np.ndarray:  # fmt: skip
        """How far each bulk sample's code lies from the codes of fresh pseudo-tissues.

        The mean distance to the ``n_neighbors`` nearest pseudo-tissue codes, divided by the same quantity among the
        pseudo-tissues themselves: about 1 inside the training distribution; values well above 1 flag samples unlike
        anything simulated from the reference (platform shift, missing cell types). Needs the reference.

        Parameters
        ----------
        {data_without_scale}
        n_neighbors
            Nearest pseudo-tissue codes averaged over.
        """
        if getattr(self, "_sampler", None) is None:
            raise ValueError("The domain distance needs the reference: load the model with reference=.")
        bulk = torch.as_tensor(self.get_latent_representation(adata, layer=layer, modality=modality))
        rng = np.random.default_rng(current_seed())
        pseudo = torch.as_tensor(self._sampler.sample(1000, rng, views=False)["x"], device=self.device)
        self.module.eval()
        zp = self.module.encode(pseudo).cpu()
        k = min(n_neighbors, zp.shape[0] - 1)
        own = torch.cdist(zp, zp).topk(k + 1, largest=False).values[:, 1:].mean(dim=1).median()
        dist = torch.cdist(bulk, zp).topk(k, largest=False).values.mean(dim=1)
        return (dist / own.clamp_min(1e-12)).numpy().astype(np.float64)

    @shared_docs
    def get_unexplained(
        self, adata: AnnData | MuData | None = None, *, layer: str | None = None, modality: str | None = None,
        scale: str = "auto", platform_correction: bool = False, batch_size: int = 1024,
    ) -> pd.Series:  # fmt: skip
        """The share of each bulk sample that the reference's labels do not explain, as the unknown head reads it.

        In absolute mode it is the ``unknown`` column of :meth:`get_fractions`; a relative-mode model on a linear
        scale learns it too (``unknown_head``), from the same pseudo-tissues with material of new cell types added,
        so relative fractions come with a check of what they leave out. Read it with the reference fit
        (:meth:`get_reference_fit`): on bulk far from every mix of the labels (median fit above about 2, as
        CellBench's RNA mixtures against single cells) the platform shift reads as unexplained material too, and
        the share is an upper bound; a batch shift can do the same on a smaller scale (kidney replicates). On bulk
        from another platform its reading with nothing missing also moves with the seed (real PBMC against a 10x
        reference: 0.04-0.23), and large absences can read below it. Measured on the benchmark's missing-material
        tasks (``python -m benchmarks.unexplained_check``): see the method page.

        Parameters
        ----------
        {data}
        platform_correction
            Divide the samples by the platform gains first (off: the gains are fitted to the bulk and take up part
            of the material the reference lacks).
        {batch_size}

        Returns
        -------
        Series indexed by sample, in [0, 1].
        """
        self._check_if_trained(warn=True)
        if self.module.head.unknown is None:
            raise ValueError(
                "This model has no unknown head: it reads values as stored (no linear scale), was built with "
                "unknown_head=False, or was saved by a version without one. Use mode='absolute' or train a new model."
            )
        source = self._bulk_source(adata, layer, modality, scale, platform_correction)

        def fn(x):
            return self.module.unexplained(x, denoise=self.denoise_)

        parts = [v for _, v in self._predict(source, fn, max(batch_size, 10_000), batch_size)]
        return pd.Series(np.concatenate(parts), index=source.obs_names, name="unexplained")

    @shared_docs
    def get_reference_fit(
        self, adata: AnnData | MuData | None = None, *, layer: str | None = None, modality: str | None = None,
        scale: str = "auto",
    ) -> pd.Series:  # fmt: skip
        """How well a non-negative mix of the reference's labels explains each bulk sample (no training needed).

        For each sample, the spread (standard deviation) of ``log(composition / composition of its best non-negative
        mix of label profiles)`` over the half of the model's features the labels express most
        (:func:`~decode_omics.model._calibration.log_residual_spread`). Samples from the reference's platform score
        low; above about 0.6 relative fractions can still be good (the network reads marker patterns, not exact
        levels), but the ``unknown`` share of absolute mode cannot separate a platform shift from missing cell types,
        and :meth:`get_fractions` warns. Values measured on the benchmark tasks are on the method page.

        Parameters
        ----------
        {data}

        Returns
        -------
        Series indexed by sample (NaN for samples without signal on the model's features).
        """
        if self._reads_as_stored():
            raise ValueError("The reference fit needs a linear scale; this model reads values as stored (as_is).")
        source = self._bulk_source(adata, layer, modality, scale, platform_correction=False)
        return self._against_profiles(source, log_residual_spread, "reference_fit")

    @shared_docs
    def get_excess_share(
        self, adata: AnnData | MuData | None = None, *, layer: str | None = None, modality: str | None = None,
        scale: str = "auto", max_excess: float = EXCESS_RATIO, by: str = "sample",
    ) -> pd.Series:  # fmt: skip
        """The share of each bulk sample that no mix of the reference's labels can hold (no training needed).

        No mix of the labels holds more of a feature, as a share of the whole, than the label that holds most of it.
        The features the samples hold beyond ``max_excess`` times that share, at the median over the samples
        (:func:`~decode_omics._engine.features.excess_features`, as ``DECODE(max_feature_excess=...)`` judges them),
        carry material the reference lacks or a platform gain beyond ``max_excess``; what each sample holds on them
        beyond that bound, summed (:func:`~decode_omics._engine.features.feature_excess`), is a lower bound on the
        share of the sample the reference does not explain, whatever its composition. Judged at the median, a
        feature that bursts in a few samples (cell-to-cell sampling in mixtures of a few cells) does not count, so
        pass the whole cohort: the features are judged on its first 20,000 samples. Material whose profile lies near
        a mix of the labels reads 0, so a sample at 0 may still lack cell types. With ``by="feature"`` it says which
        features carry it: the marker genes of what is missing. Deterministic (no seed). Features a model built with
        ``max_feature_excess`` left out are not counted. Values measured on the benchmark tasks are on the method
        page (*The excess-share check*).

        Parameters
        ----------
        {data}
        max_excess
            A feature's share counts beyond this many times its largest label's share (at least 1; default
            :data:`~decode_omics.model._excess_check.EXCESS_RATIO`, which :func:`~decode_omics.tl.deconvolve`
            checks).
        by
            ``"sample"``: one value per sample. ``"feature"``: per feature that counts, its mean excess share over
            the samples, largest first.

        Returns
        -------
        Series indexed by sample (``by="sample"``, named ``excess_share``) or by feature (``by="feature"``, named
        ``mean_excess_share``).
        """
        if self._reads_as_stored():
            raise ValueError("The excess share needs a linear scale; this model reads values as stored (as_is).")
        if by not in ("sample", "feature"):
            raise ValueError(f"by must be 'sample' or 'feature', got {by!r}.")
        source = self._bulk_source(adata, layer, modality, scale, platform_correction=False)
        profiles = self.module.label_profiles.cpu().numpy()
        _, first = next(source.blocks(20_000))
        counted = excess_features(first, profiles, max_excess)
        per_sample, summed = [np.zeros(0)], np.zeros(len(self.features))
        for _, block in source.blocks(10_000):
            excess = counted_excess(block, profiles, max_excess, counted)
            per_sample.append(excess.sum(axis=1))
            summed += excess.sum(axis=0)
        if by == "sample":
            return pd.Series(np.concatenate(per_sample), index=source.obs_names, name="excess_share")
        mean = pd.Series(summed / max(source.n_obs, 1), index=pd.Index(self.features), name="mean_excess_share")
        return mean[mean > 0].sort_values(ascending=False, kind="stable")

    @shared_docs
    def get_stored_fit(
        self, adata: AnnData | MuData | None = None, *, layer: str | None = None, modality: str | None = None
    ) -> pd.Series:
        """For values read as stored: how far each bulk sample points outside every non-negative mix of the labels.

        The share of the sample's squared norm that the best non-negative mix of the reference's label profiles
        misses beyond the best unconstrained mix (:func:`~decode_omics.model._stored_fit.cone_excess`): 0 inside
        the cone of mixes, whatever the platform's scale. In values centred per feature (z-scores, log-ratios),
        material the reference lacks reads as less of the labels it has and turns samples outside it;
        :meth:`stored_fit_threshold` gives the pseudo-tissues' bound. Where the labels' profiles cancel (a reference
        centred over its own cells; :func:`~decode_omics.model._stored_fit.mix_cancellation` below 0.2) every
        sample lies inside their mixes and the excess is noise: :func:`~decode_omics.tl.deconvolve` then does not
        check it. Values measured on the benchmark tasks are on the method page. Linear scales have
        :meth:`get_reference_fit` instead.

        Parameters
        ----------
        {data_without_scale}

        Returns
        -------
        Series indexed by sample (NaN for samples without signal on the model's features).
        """
        if not self._reads_as_stored():
            raise ValueError("The stored fit is for values read as stored (as_is); use get_reference_fit().")
        source = self._bulk_source(adata, layer, modality, "as_is", platform_correction=False)
        return self._against_profiles(source, cone_excess, "stored_fit")

    def _against_profiles(self, source: BulkSource, fn, name: str) -> pd.Series:
        """``fn(block, label profiles)`` over the samples of ``source`` in blocks, one value per sample."""
        profiles = self.module.label_profiles.cpu().numpy()
        parts = [fn(block, profiles) for _, block in source.blocks(10_000)]
        return pd.Series(np.concatenate(parts), index=source.obs_names, name=name)

    def stored_fit_threshold(self) -> float:
        """The :data:`~decode_omics.model._stored_fit.OUTSIDE_QUANTILE` quantile of :meth:`get_stored_fit` over
        fresh pseudo-tissues drawn as training draws them (seeded): samples above it point where no mix of the
        reference's labels does. Needs the reference."""
        if getattr(self, "_sampler", None) is None:
            raise ValueError("The stored-fit threshold needs the reference: load the model with reference=.")
        rng = np.random.default_rng(current_seed())
        pseudo = self._sampler.sample(N_PSEUDOTISSUES, rng, views=False)["x"]
        excess = cone_excess(np.asarray(pseudo), self.module.label_profiles.cpu().numpy())
        return float(np.nanquantile(excess, OUTSIDE_QUANTILE))
