"""``dco.tl.deconvolve``: fit DECODE on a reference and write the fractions of bulk samples into AnnData / MuData."""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd
from anndata import AnnData

from .._engine.adata import lightweight

#: Networks of the ensemble ``deconvolve(uncertainty=True)`` trains (their average is the estimate).
UNCERTAINTY_MEMBERS = 4


def _check_reference(reference, labels_key: str, what: str) -> None:
    if not isinstance(reference, AnnData):
        raise TypeError(f"{what} must be an AnnData (cells x features), got {type(reference).__name__}.")
    if labels_key not in reference.obs.columns:
        raise KeyError(
            f"labels_key {labels_key!r} is not a column of {what}.obs (columns: {list(reference.obs.columns)[:20]})."
        )


def _share_given(fit: Mapping[str, Any]) -> bool:
    """Whether :func:`deconvolve` was given an ``unknown_share`` that changes the calibration (relative mode: any
    share above 0; absolute mode: any share)."""
    share = fit["unknown_share"]
    return share is not None and (fit["mode"] == "absolute" or share != 0)


def _fit_one(bulk: AnnData, reference: AnnData, labels_key: str, fit: Mapping[str, Any], mdata=None):
    """Fit DECODE on ``reference`` and ``bulk`` with the settings ``fit`` (the arguments of :func:`deconvolve`);
    ``mdata``: the MuData ``bulk`` is a modality of (its ``.obsm`` may hold the measured fractions)."""
    from ..model import DECODE
    from ..model._intervals import check_unknown_share
    from ..model._lightning import seeded
    from ..model._settings import current_seed

    _check_reference(reference, labels_key, "reference")
    measured = _measured_frame(bulk, fit["measured_key"], mdata)
    ref = lightweight(reference, fit["reference_layer"], labels_key)
    blk = lightweight(bulk, fit["layer"])
    model_kwargs = dict(fit["model_kwargs"] or {})
    if fit["uncertainty"]:
        model_kwargs.setdefault("n_members", UNCERTAINTY_MEMBERS)
    with seeded(fit["random_state"]):
        DECODE.setup_anndata(ref, labels_key=labels_key, scale=fit["reference_scale"])
        DECODE.setup_anndata(blk, scale=fit["scale"])
        model = DECODE(ref, blk, mode=fit["mode"], **model_kwargs)
        if _share_given(fit):
            check_unknown_share(model, fit["unknown_share"])  # before training, not after
        measured = _measured_fractions(measured, model, blk.obs_names)
        mean = _mean_fractions(fit["mean_fractions"], model)
        kwargs = {"enable_progress_bar": True} | dict(fit["train_kwargs"] or {})
        start = time.perf_counter()
        model.train(**kwargs)
        if _share_given(fit):  # calibrated when the intervals are read; the gains below keep the share
            model._defer_interval_calibration(seed=current_seed(), unknown_share=fit["unknown_share"])
        if measured is not None:
            model.fit_platform_gains(measured)
        elif mean is not None:
            model.fit_platform_gains(mean_fractions=mean)
        fit_seconds = time.perf_counter() - start
        if fit["uncertainty"]:
            frames = model.get_fractions(return_interval=True, level=fit["level"])
        else:
            frames = (model.get_fractions(),)
    for frame in frames:
        frame.index = bulk.obs_names.copy()
    if model.label_values_ is not None:
        warnings.warn(
            f"The labels in reference.obs[{labels_key!r}] are not strings ({model.label_values_[:5]}); AnnData "
            "stores column names as strings, so the fraction columns are their string forms "
            f"({[str(v) for v in model.label_values_[:5]]}). model.get_fractions() keeps the original values.",
            UserWarning,
            stacklevel=3,
        )
        for frame in frames:
            frame.columns = frame.columns.map(str)
    return model, frames, fit_seconds


def _measured_frame(adata: AnnData, key: str | None, mdata=None) -> pd.DataFrame | None:
    """``adata.obsm[key]`` (for a MuData's modality, else ``mdata.obsm[key]`` reindexed to the modality's samples),
    the fractions measured on some samples; ``None`` without a key."""
    if key is None:
        return None
    if key in adata.obsm:
        frame, where = adata.obsm[key], ".obsm"
    elif mdata is not None and key in mdata.obsm:
        frame, where = mdata.obsm[key], "MuData's .obsm"
        if isinstance(frame, pd.DataFrame):
            frame = frame.reindex(adata.obs_names)
    else:
        where = f"the bulk's .obsm (keys: {', '.join(map(str, adata.obsm.keys())) or 'none'})"
        if mdata is not None:
            where += f" nor the MuData's (keys: {', '.join(map(str, mdata.obsm.keys())) or 'none'})"
        raise KeyError(f"measured_key {key!r} is not in {where}.")
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(
            f"The {where}[{key!r}] must be a DataFrame with one column per label (a row of NaN for a sample not "
            f"measured), got {type(frame).__name__}."
        )
    return frame


def _measured_fractions(frame: pd.DataFrame | None, model, names: pd.Index) -> pd.DataFrame | None:
    """The measured fractions indexed like the registered bulk and checked before training (see
    :func:`~decode_omics.model._calibration.check_measured_fractions`)."""
    from ..model._calibration import check_measured_fractions

    if frame is None:
        return None
    if model._reads_as_stored():
        raise ValueError("measured_key anchors platform gains, which values read as stored (scale='as_is') lack.")
    ignored = ("unknown",) if model.mode_ == "absolute" else ()
    labels = [str(v) for v in model.labels_]
    return check_measured_fractions(frame.set_axis(names, axis=0), labels, names, ignored)


def _mean_fractions(mean: Mapping[str, float] | None, model) -> pd.Series | None:
    """The cohort's mean composition over the model's labels, checked before training (see
    :func:`~decode_omics.model._calibration.check_mean_fractions`)."""
    from ..model._calibration import check_mean_fractions

    if mean is None:
        return None
    if model._reads_as_stored():
        raise ValueError("mean_fractions anchors platform gains, which values read as stored (scale='as_is') lack.")
    ignored = ("unknown",) if model.mode_ == "absolute" else ()
    checked = check_mean_fractions(pd.Series(mean), [str(v) for v in model.labels_], ignored)
    return checked.set_axis(list(model.labels_))


def _diagnostics(model, fractions: pd.DataFrame) -> pd.DataFrame:
    """Per-sample diagnostics: the largest label, the entropy of the fractions, and the domain distance (how far the
    sample's code lies from the pseudo-tissues' codes; about 1 inside the training distribution)."""
    f = fractions.drop(columns="unknown", errors="ignore")
    p = f.to_numpy()
    entropy = -(np.where(p > 0, p * np.log(np.clip(p, 1e-12, None)), 0)).sum(axis=1)
    distance = model.get_domain_distance()
    return pd.DataFrame(
        {"top_label": f.idxmax(axis=1).astype(str), "entropy": entropy, "domain_distance": distance},
        index=fractions.index,
    )


def deconvolve(
    data,
    reference: AnnData | Mapping[str, AnnData],
    labels_key: str,
    *,
    modality: str | list[str] | None = None,
    mode: Literal["relative", "absolute"] = "relative",
    key_added: str = "decode",
    layer: str | None = None,
    reference_layer: str | None = None,
    scale: str = "auto",
    reference_scale: str = "auto",
    model_kwargs: Mapping[str, Any] | None = None,
    train_kwargs: Mapping[str, Any] | None = None,
    uncertainty: bool = False,
    level: float = 0.9,
    unknown_share: float | Literal["auto"] | None = None,
    measured_key: str | None = None,
    mean_fractions: Mapping[str, float] | None = None,
    copy: bool = False,
    return_model: bool = False,
    random_state: int = 0,
    mod: str | list[str] | None = None,
):
    """Deconvolve bulk samples into cell-type or cell-state fractions with DECODE.

    Parameters
    ----------
    data
        Bulk AnnData (samples x features) or MuData (one omics layer per modality).
    reference
        Single-cell reference AnnData (cells x features) for an AnnData; for a MuData, a dict mapping each modality
        to its own reference (scRNA for ``rna``, single-cell proteomics for ``prot``, metabolite profiles for
        ``metab``).
    labels_key
        Label column of the reference(s): cell types or cell states.
    modality
        Modalities of a MuData to deconvolve (default: every modality that has a reference).
    mode
        ``"relative"`` (fractions over known labels) or ``"absolute"`` (plus an ``unknown`` share).
    key_added
        Where results go (see Returns).
    layer
        Layer of the bulk to use instead of ``.X``.
    reference_layer
        Layer of the reference(s) to use instead of ``.X``.
    scale, reference_scale
        Scale of the bulk and of the reference(s): ``"auto"`` (detected, see :func:`~decode_omics.pp.check_scale`)
        or one of ``"counts"``, ``"linear"``, ``"log1p"``, ``"log2"``. Give them when detection guesses wrong.
        ``"as_is"`` (both sides) sums and reads values as stored, for data with no linear scale (z-scores,
        log-ratios) whose samples were defined as sums of such values; relative mode only.
    model_kwargs
        Keyword arguments for :class:`~decode_omics.model.DECODE` (``n_members``: networks averaged).
    train_kwargs
        Keyword arguments for :meth:`~decode_omics.model.DECODE.train` (e.g. ``max_epochs``).
    uncertainty
        Train an ensemble of ``n_members`` networks (4 unless ``model_kwargs`` says otherwise; on one CPU thread about
        3x the time of one network in relative mode, up to 4x in absolute mode) in one process, take their
        average as the estimate and add an interval per sample and label at ``level``, calibrated on held-out
        pseudo-tissues shifted as far from the reference as the bulk is (see
        :meth:`~decode_omics.model.DECODE.get_fractions`). The model sees the bulk it scores (transductive), and
        the intervals' coverage measured on real cohorts is on the benchmark page.
    level
        Intended share of true fractions inside their intervals.
    unknown_share
        With ``uncertainty=True`` in relative mode: how much of each sample may be material the reference lacks,
        which the intervals then allow for, each sample's the more the less of it the reference explains (``"auto"``:
        matched to the bulk's median unexplained share; see :meth:`~decode_omics.model.DECODE.calibrate_intervals`).
        Default ``None``: the reference holds everything. In absolute mode: the largest share of unknown material the
        intervals are calibrated on (default ``None``: 0.8, or ``max_unknown_share`` of ``model_kwargs`` if larger;
        0.5 gives the intervals of before 2026-12-08, narrower where little is missing).
    measured_key
        Key of ``adata.obsm`` (for a MuData, of each deconvolved modality's, else of the MuData's) holding cell
        fractions measured on some of the samples, such as flow cytometry of part of a cohort: a DataFrame with one
        column per label and a row of NaN for every sample not measured (at least 5 measured). The platform gains
        are then anchored on them (:meth:`~decode_omics.model.DECODE.fit_platform_gains`), which corrects labels the
        bulk's platform measures differently from the reference (B cells on real PBMC bulk; measured on the method
        page), and keeps the known labels' split where the reference lacks cell types the bulk holds (absolute
        mode: give the known labels; an ``unknown`` column is not used). The measured samples' fractions are then
        no independent check of the result: score the others.
    mean_fractions
        Instead of ``measured_key``: the cohort's average composition, label -> average cell fraction over the
        samples (a dict or Series; absolute mode: the known labels), from a blood count, flow cytometry of pooled
        material or a published composition of the tissue. Each label's estimates are rescaled to that mean, every
        sample keeping its deviation from it as the network read it, and the platform gains are fitted from them
        (:meth:`~decode_omics.model.DECODE.fit_platform_gains`). On real PBMC bulk, the cohort's own mean anchors
        the gains as well as every sample's flow fractions; another cohort's mean, which misses this cohort's by up
        to 0.08 per label, helps where the reference lacks cell types the bulk holds (+0.11 to +0.34) and costs 0.08
        of pooled CCC where it does not (method page, *Gains anchored on the cohort's mean composition*).
    copy
        Return a copy instead of writing to ``data``.
    return_model
        Also return the fitted :class:`~decode_omics.model.DECODE` (a dict ``{modality: model}`` for a MuData), to
        save it, inspect its training or deconvolve more samples with it.
    random_state
        Seed of the fit (``scvi.settings.seed`` is set to it while fitting and given back its previous value after).
        On CPU the same seed gives the same fractions at the same number of threads (``torch.get_num_threads()``);
        another thread count sums in another order and can move fractions by a few hundredths.
    mod
        Deprecated name of ``modality``.

    Returns
    -------
    ``None``, or the copy if ``copy=True``; with ``return_model=True``, the model(s) as well (``model`` or
    ``(copy, model)``). For an AnnData, sets

    - ``adata.obsm[key_added]``: fractions, a DataFrame of samples x labels (plus ``unknown`` in absolute mode);
    - with ``uncertainty=True``: ``adata.obsm[f"{key_added}_lower"]`` and ``adata.obsm[f"{key_added}_upper"]``, the
      bounds of the intervals (same shape), and ``adata.obs[f"{key_added}_interval_width"]``, each sample's mean
      interval width over the labels;
    - ``adata.obs[f"{key_added}_reference_fit"]`` (linear scales): how far each sample is from every non-negative mix
      of the reference's labels (see :meth:`~decode_omics.model.DECODE.get_reference_fit`);
    - ``adata.obs[f"{key_added}_excess_share"]`` (linear scales): a lower bound on the share of each sample that no
      mix of the reference's labels holds, from the features most samples hold beyond 10 times any label's share
      (see :meth:`~decode_omics.model.DECODE.get_excess_share`; no training, no seed). Where the bulk's median
      reaches 0.02 (``decode_omics.model._excess_check.EXCESS_WARNING``) a warning names the samples at or above it
      and the features that carry the excess (the marker genes of what the reference lacks); the model's default,
      ``max_feature_excess="auto"``, has then left those features out before training, and the shares written are
      the ones read before (``DECODE.excess_share_``). On the benchmark it names 78-100 % of the samples where
      monocytes are missing from a PBMC reference and none where a reference is complete, except under synthetic
      per-gene gains (half of one cohort); it reads 0 where the missing cells' profiles lie near mixes of the known
      labels (B, CD4 T or NK cells in PBMC; every absence on bone marrow, kidney and T-SCP; method page, *The
      excess-share check*);
    - ``adata.obs[f"{key_added}_unexplained"]`` (linear scales): the share of each sample the reference's labels do
      not explain (see :meth:`~decode_omics.model.DECODE.get_unexplained`). A warning names the samples above 0.3
      (``decode_omics.model._calibration.UNEXPLAINED_WARNING``) and says what to do, unless the bulk's median
      reference fit exceeds 2.0 (``UNEXPLAINED_MAX_FIT``): that far from the reference the share is an upper bound
      and no sample is named. A sample not named is no evidence that the reference explains it: on real PBMC bulk
      the check named none of the samples lacking 55 % of their cells, on three seeds (``benchmarks.unexplained_check``,
      the method page);
    - ``adata.obs[f"{key_added}_stored_fit"]`` (values read as stored): how far each sample points outside every
      non-negative mix of the reference's labels (see :meth:`~decode_omics.model.DECODE.get_stored_fit`). A warning
      names the samples beyond 99 % of pseudo-tissues when they are at least a quarter of the bulk
      (``decode_omics.model._stored_fit.OUTSIDE_WARNING_SHARE``): material the reference lacks reads as less of
      what it has in centred values. Not checked where the labels' profiles cancel, as those of a reference
      centred over its own cells do;
    - ``adata.uns[key_added]``: ``params`` (the settings, among them the detected ``reference_scale`` and
      ``bulk_scale``, and ``platform_correction``: whether a correction was applied), ``labels``, ``n_features`` (how
      many features the model read), ``fit_seconds``, ``history`` (per-epoch losses; the discriminator's accuracy too
      when the adversarial stage is on) and ``diagnostics`` (per-sample ``top_label``, ``entropy`` and
      ``domain_distance``), ``excess`` (linear scales: the ``ratio`` and ``threshold``, the bulk's ``median`` excess
      share, the ``carriers``, the features carrying most of it with their mean share, the ``flagged`` samples, and the
      features the model ``left_out`` before training), ``unexplained`` (linear scales: ``threshold``,
      ``median_reference_fit``, ``checked``, the ``flagged`` samples, and ``why_not`` when unchecked),
      ``outside_mixtures`` (values read as stored: ``threshold``, ``quantile``, ``warning_share``, ``mix_cancellation``,
      ``centring_complement`` (whether the network trained on the material the centring implies), ``checked``,
      ``share_outside`` and the ``flagged`` samples when checked, ``why_not`` when not), and with ``uncertainty=True``
      ``uncertainty`` (``level``, ``n_members``, the platform ``shift`` the intervals were calibrated for and how it was
      measured, the ``content_shift`` they allow between a label's share of the material and of the cells, and in
      absolute mode the ``unknown_content_shift`` the unknown material's share is allowed; the ``unknown_share`` of
      material the reference lacks they allow for and how it was set (``unknown_share_from``), and in relative mode
      with a share above 0 the ``unexplained_weight`` by which each sample's unexplained share widens its intervals).

    For a MuData, per deconvolved modality ``m``: ``mdata[m].obsm[key_added]`` and ``mdata[m].uns[key_added]`` as
    above, and ``mdata.obsm[f"{key_added}_{m}"]`` indexed by ``mdata.obs_names`` with NaN rows for samples the
    modality lacks.
    """
    from mudata import MuData
    from scanpy import logging as logg

    modality = _renamed(mod, modality)
    fit = {
        "mode": mode,
        "layer": layer,
        "reference_layer": reference_layer,
        "scale": scale,
        "reference_scale": reference_scale,
        "model_kwargs": model_kwargs,
        "train_kwargs": train_kwargs,
        "random_state": random_state,
        "uncertainty": uncertainty,
        "level": level,
        "unknown_share": unknown_share,
        "measured_key": measured_key,
        "mean_fractions": None if mean_fractions is None else dict(mean_fractions),
    }
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level!r}.")
    if _share_given(fit) and not uncertainty:
        raise ValueError(f"unknown_share={unknown_share!r} calibrates intervals: pass uncertainty=True as well.")
    if measured_key is not None and mean_fractions is not None:
        raise ValueError("Give measured_key (fractions per sample) or mean_fractions (the cohort's average), not both.")
    if isinstance(data, MuData):
        return _deconvolve_mudata(data, reference, labels_key, modality, key_added, copy, return_model, fit)
    if not isinstance(data, AnnData):
        raise TypeError(f"data must be an AnnData or a MuData, got {type(data).__name__}.")
    if not isinstance(reference, AnnData):
        raise TypeError("For an AnnData, reference must be one AnnData (a dict of references is for MuData).")
    if modality is not None:
        raise ValueError("modality= applies to MuData input only.")
    start = logg.info(f"deconvolving {data.n_obs} samples with DECODE ({mode})")
    adata = data.copy() if copy else data
    model, frames, fit_seconds = _fit_one(adata, reference, labels_key, fit)
    _write(adata, model, frames, fit_seconds, key_added, labels_key, fit)
    logg.info(
        "    finished",
        time=start,
        deep=(
            f"added\n    '{key_added}', fractions (adata.obsm)\n"
            f"    '{key_added}', parameters and diagnostics (adata.uns)"
        ),
    )
    return _returned(adata if copy else None, model, return_model)


def _renamed(mod, modality):
    """``modality``, or the value of the deprecated ``mod`` keyword (with a warning)."""
    if mod is None:
        return modality
    warnings.warn("deconvolve(mod=...) is deprecated; use modality=.", DeprecationWarning, stacklevel=3)
    if modality is not None:
        raise TypeError("Pass modality= only (mod= is its deprecated name).")
    return mod


def _returned(result, models, return_model: bool):
    if not return_model:
        return result
    return models if result is None else (result, models)


def _write(adata, model, frames, fit_seconds, key_added, labels_key, fit) -> None:
    from ..model._calibration import check_unexplained
    from ..model._excess_check import check_excess
    from ..model._stored_fit import check_outside_mixtures, mix_cancellation

    fractions = frames[0]
    adata.obsm[key_added] = fractions
    if len(frames) == 3:
        lower, upper = frames[1], frames[2]
        adata.obsm[f"{key_added}_lower"], adata.obsm[f"{key_added}_upper"] = lower, upper
        adata.obs[f"{key_added}_interval_width"] = (upper - lower).mean(axis=1).to_numpy()
    if not model._reads_as_stored():
        reference_fit = model.get_reference_fit(adata, layer=fit["layer"], scale=fit["scale"])
        adata.obs[f"{key_added}_reference_fit"] = reference_fit.to_numpy()
        excess, carriers, left_out = _excess_shares(model, adata, fit)
        adata.obs[f"{key_added}_excess_share"] = excess.to_numpy()
        excess_checked = check_excess(excess, carriers, left_out=left_out, obs_key=f"{key_added}_excess_share")
        if model.module.head.unknown is not None:
            unexplained = model.get_unexplained(adata, layer=fit["layer"], scale=fit["scale"])
            adata.obs[f"{key_added}_unexplained"] = unexplained.to_numpy()
            checked = check_unexplained(unexplained, reference_fit, fit["mode"])
    else:
        stored_fit = model.get_stored_fit(adata, layer=fit["layer"])
        adata.obs[f"{key_added}_stored_fit"] = stored_fit.to_numpy()
        cancellation = mix_cancellation(model.module.label_profiles.cpu().numpy())
        complement = bool(getattr(model, "centring_complement_", False))
        outside = check_outside_mixtures(stored_fit, model.stored_fit_threshold(), cancellation, complement)
    history = {k: v.iloc[:, 0].astype(float).tolist() for k, v in model.history.items()}
    adata.uns[key_added] = {
        "params": {
            "labels_key": labels_key,
            "mode": fit["mode"],
            "random_state": fit["random_state"],
            "model_kwargs": dict(fit["model_kwargs"] or {}),
            **({"measured_key": fit["measured_key"]} if fit.get("measured_key") else {}),
            **(
                {"mean_fractions": {str(k): float(v) for k, v in fit["mean_fractions"].items()}}
                if fit.get("mean_fractions")
                else {}
            ),
            "reference_scale": model.reference_scale_["scale"],
            "bulk_scale": model.bulk_scale_["scale"],
            **{k: v for k, v in model.train_settings_.items() if v is not None},
        },
        "labels": list(fractions.columns),
        "n_features": len(model.features),
        "fit_seconds": float(fit_seconds),
        "history": history,
        "diagnostics": _diagnostics(model, fractions),
    }
    if not model._reads_as_stored():
        adata.uns[key_added]["excess"] = excess_checked
    if not model._reads_as_stored() and model.module.head.unknown is not None:
        adata.uns[key_added]["unexplained"] = checked
    if model._reads_as_stored():
        adata.uns[key_added]["outside_mixtures"] = outside
    if len(frames) == 3:
        calibration = model.interval_calibration_
        adata.uns[key_added]["uncertainty"] = {
            "level": fit["level"],
            "n_members": model.n_members_,
            "shift": calibration["shift"],
            "shift_from": calibration["shift_from"],
            "content_shift": calibration["content_shift"],
            "n_calibration_samples": calibration["n_samples"],
        }
        if "unknown_content_shift" in calibration:
            adata.uns[key_added]["uncertainty"]["unknown_content_shift"] = calibration["unknown_content_shift"]
        for key in ("unknown_share", "unknown_share_from", "unexplained_weight"):
            if key in calibration:
                adata.uns[key_added]["uncertainty"][key] = calibration[key]


def _excess_shares(model, adata, fit) -> tuple[pd.Series, pd.Series, list[str]]:
    """The excess shares the check reads (per sample of ``adata``, per feature) and the features the model left out
    before training: where it left some out, the shares it read before (``excess_share_``), since the features the
    check counts are those left out."""
    left_out = list(getattr(model, "excess_features_", None) or [])
    if left_out and getattr(model, "excess_share_", None) is not None:
        share = model.excess_share_
        values = np.full(adata.n_obs, np.nan)
        values[: len(share)] = share.to_numpy()  # the registered bulk is adata: its first 20,000 samples
        return pd.Series(values, index=adata.obs_names, name=share.name), model.excess_carriers_, left_out
    kwargs = {"layer": fit["layer"], "scale": fit["scale"]}
    share = model.get_excess_share(adata, **kwargs)
    return share, model.get_excess_share(adata, by="feature", **kwargs), left_out


def _deconvolve_mudata(mdata, reference, labels_key, modality, key_added, copy, return_model, fit):
    from scanpy import logging as logg

    if not isinstance(reference, Mapping):
        raise TypeError(
            "For a MuData, reference must be a dict {modality: reference AnnData}, one reference per omics layer."
        )
    mods = [modality] if isinstance(modality, str) else list(modality) if modality is not None else None
    mods = [m for m in mdata.mod if m in reference] if mods is None else mods
    if not mods:
        raise ValueError(
            f"No modality of the MuData ({list(mdata.mod)}) has a reference (references for {list(reference)})."
        )
    for m in mods:
        if m not in mdata.mod:
            raise KeyError(f"Modality {m!r} is not in the MuData (modalities: {list(mdata.mod)}).")
        if m not in reference:
            raise KeyError(f"No reference for modality {m!r}; pass reference={{{m!r}: reference_adata, ...}}.")
        _check_reference(reference[m], labels_key, f"reference[{m!r}]")
    if key_added in mdata.mod:
        raise ValueError(f"key_added {key_added!r} is the name of a modality; choose another key_added.")
    mdata = mdata.copy() if copy else mdata
    models = {}
    for m in mods:
        start = logg.info(f"deconvolving modality {m!r}: {mdata.mod[m].n_obs} samples with DECODE ({fit['mode']})")
        model, frames, fit_seconds = _fit_one(mdata.mod[m], reference[m], labels_key, fit, mdata)
        _write(mdata.mod[m], model, frames, fit_seconds, key_added, labels_key, fit)
        models[m] = model
        for suffix, frame in zip(("", "_lower", "_upper"), frames, strict=False):
            mdata.obsm[f"{key_added}_{m}{suffix}"] = frame.reindex(mdata.obs_names)
        logg.info(
            "    finished",
            time=start,
            deep=f"added\n    '{key_added}_{m}', fractions (mdata.obsm)\n    '{key_added}', (mdata[{m!r}].obsm)",
        )
    return _returned(mdata if copy else None, models, return_model)
