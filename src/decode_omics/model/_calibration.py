"""Calibration after training: what the network's first estimates of the registered bulk say about its platform.

Three checks, all against the reference's label means, all run once training is done (:meth:`DECODE.train`):

- **Platform gains** (linear scales): a bulk platform (or batch) measures every feature with its own efficiency (bulk
  RNA-seq against 10x cells, another replicate of a metabolomics run). Such a gain multiplies a feature in every
  sample alike, whatever the composition, so it shows as a log-ratio between the measured bulk and the mixture its
  estimated fractions predict that is common to all samples. :func:`feature_log_gains` estimates it per feature and
  shrinks it towards zero by how much of it sampling noise alone could produce (empirical Bayes, James-Stein-type),
  so that a cohort from the reference's own platform is barely changed.
- **Transferable features** (values read as stored, ``scale="as_is"``): log-ratios and z-scores from two platforms
  have no common linear scale, so no gain can bring one to the other. What can be judged is whether a feature carries
  the same composition signal on both: over the bulk samples, its measured value should rise and fall with the value
  the first estimates imply (:func:`feature_agreement`). Features that agree are kept (:func:`transferable_features`);
  the others are masked and the network is trained again on the rest.
- **Reference fit**: how well the best non-negative mix of the labels explains each sample
  (:func:`log_residual_spread`), a platform-shift check that needs no training; absolute mode warns above
  :data:`PLATFORM_SHIFT_WARNING`.

Measurements on the benchmark tasks are on the method page (``docs/method.md``).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch
from scipy.optimize import nnls

logger = logging.getLogger("decode_omics")

# ---------------------------------------------------------------------------------------------- platform gains
#: Fewest bulk samples from which gains are estimated: a median over fewer samples is mostly one sample's noise.
MIN_GAIN_SAMPLES = 5
#: Largest correction, in natural log units (a factor of e^3 ~ 20 either way).
MAX_LOG_GAIN = 3.0
#: Variance of a median of normal values relative to that of their mean (pi / 2).
_MEDIAN_VARIANCE = np.pi / 2


def feature_log_gains(
    bulk: np.ndarray,
    fractions: np.ndarray,
    means: np.ndarray,
    variances: np.ndarray,
    n_cells: np.ndarray,
) -> np.ndarray:
    """Shrunken log gain of every feature: how much more (``> 0``) or less the bulk's platform measures it.

    Parameters
    ----------
    bulk
        Samples x features, linear scale (only each sample's composition is used).
    fractions
        Samples x labels: estimated cell fractions of the known labels, rows summing to 1.
    means, variances
        Labels x features: mean and variance of the reference's per-cell profiles of each label (linear scale).
    n_cells
        Reference cells per label (the means' sampling noise shrinks with them).

    Returns
    -------
    Log gains, one per feature, centred on the median feature. A feature gets 0 where fewer than half of the samples
    measure it or the estimates predict none of it. Dividing the bulk by ``exp(gains)`` brings it to the reference's
    platform.
    """
    B = np.asarray(bulk, dtype=np.float64)
    F = np.asarray(fractions, dtype=np.float64)
    M = np.asarray(means, dtype=np.float64)
    n_samples, n_features = B.shape
    if n_samples < MIN_GAIN_SAMPLES:
        raise ValueError(f"Platform gains need at least {MIN_GAIN_SAMPLES} bulk samples; got {n_samples}.")
    composition = B / np.maximum(B.sum(axis=1, keepdims=True), 1e-300)
    expected = F @ M
    expected = expected / np.maximum(expected.sum(axis=1, keepdims=True), 1e-300)
    valid = (composition > 0) & (expected > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.where(valid, np.log(composition) - np.log(expected), np.nan)
    n_valid = valid.sum(axis=0)
    usable = n_valid >= max(2, n_samples // 2)
    gains = np.zeros(n_features)
    if not usable.any():
        return gains
    raw = np.nanmedian(log_ratio[:, usable], axis=0)
    raw = raw - np.median(raw)
    # Sampling noise of each raw gain: the spread of the samples' log-ratios (median of n), plus the noise of the
    # reference's label means as seen through the cohort's average composition (delta method).
    bulk_noise = _MEDIAN_VARIANCE * np.nanvar(log_ratio[:, usable], axis=0) / n_valid[usable]
    mean_fraction = F.mean(axis=0)
    average = mean_fraction @ M[:, usable]
    per_label = np.asarray(variances, dtype=np.float64)[:, usable] / np.maximum(np.asarray(n_cells), 1)[:, None]
    reference_noise = (mean_fraction[:, None] ** 2 * per_label).sum(axis=0) / np.maximum(average, 1e-300) ** 2
    noise = bulk_noise + reference_noise
    signal = max(0.0, float(np.var(raw) - np.mean(noise)))  # spread of the true gains over features
    shrink = signal / (signal + noise) if signal > 0 else np.zeros_like(noise)
    gains[usable] = np.clip(shrink * raw, -MAX_LOG_GAIN, MAX_LOG_GAIN)
    return gains


# ---------------------------------------------------------------------------------------- transferable features
#: Fewest bulk samples over which agreement is judged (a correlation over fewer samples is mostly noise).
MIN_TRANSFER_SAMPLES = 20
#: Correlation a feature needs to be kept.
THRESHOLD = 0.5
#: Smallest share, and smallest number, of the features that must agree for any to be masked; below either,
#: nothing is masked.
MIN_SHARE = 0.1
MIN_FEATURES = 20


def feature_agreement(bulk: np.ndarray, fractions: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Per feature: Pearson correlation over the samples between the measured bulk and its estimated mixture.

    Parameters
    ----------
    bulk
        Samples x features, values as stored.
    fractions
        Samples x labels: estimated fractions, rows summing to 1.
    means
        Labels x features: the reference's mean profile of every label, on the same values.

    Returns
    -------
    One correlation per feature; 0 where either side does not vary over the samples.
    """
    B = np.asarray(bulk, dtype=np.float64)
    P = np.asarray(fractions, dtype=np.float64) @ np.asarray(means, dtype=np.float64)
    B = B - B.mean(axis=0)
    P = P - P.mean(axis=0)
    denominator = np.sqrt((B**2).sum(axis=0) * (P**2).sum(axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(denominator > 0, (B * P).sum(axis=0) / denominator, 0.0)
    return r


def transferable_features(agreement: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray | None:
    """Boolean mask of the features to keep, or ``None`` when nothing should be masked: every feature agrees, or
    fewer than :data:`MIN_FEATURES` or fewer than :data:`MIN_SHARE` of them do, as when the samples barely vary in
    composition and no feature's correlation can be told from noise."""
    keep = np.asarray(agreement) >= threshold
    if keep.all() or keep.sum() < max(MIN_FEATURES, MIN_SHARE * keep.size):
        return None
    return keep


# -------------------------------------------------------------------------------------------------- reference fit
#: Above this median log-residual spread, the bulk is not a mix of the reference's labels as measured (samples from
#: the reference's own platform score well below it; the values measured on the benchmark tasks are in docs/method.md).
PLATFORM_SHIFT_WARNING = 0.6
#: Above this unexplained share (:meth:`DECODE.get_unexplained`), :func:`~decode_omics.tl.deconvolve` names the sample
#: in a warning; above :data:`UNEXPLAINED_MAX_FIT` of median reference fit it names none. Both were chosen on the
#: robustness suite, seed 0 (which tasks, and what they flag, is in docs/method.md).
UNEXPLAINED_WARNING = 0.3
UNEXPLAINED_MAX_FIT = 2.0


def log_residuals(samples: np.ndarray, profiles: np.ndarray) -> np.ndarray:
    """Per sample and feature: ``log(composition / composition of its best non-negative mix of label profiles)``.

    Parameters
    ----------
    samples
        Samples x features, linear scale.
    profiles
        Labels x features: each label's mean per-cell profile, linear scale, same features.

    Returns
    -------
    Samples x the half of the features the labels express most: the log-ratio between each sample's composition and
    that of its NNLS fit from the label compositions (a pseudocount of 1e-3 x the fit's median on both sides; a row of
    NaN for an all-zero sample). :func:`nnls_mixes` returns the mixes themselves too.
    """
    return nnls_mixes(samples, profiles)[1]


def nnls_mixes(samples: np.ndarray, profiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's best non-negative mix of the label compositions (samples x labels; weights on the unit-sum
    profiles, so they sum to about 1) and its :func:`log_residuals` (rows of NaN and zero weights for an all-zero
    sample)."""
    P = np.asarray(profiles, dtype=np.float64)
    P = P / np.maximum(P.sum(axis=1, keepdims=True), 1e-300)
    expressed = P.mean(axis=0) >= np.median(P.mean(axis=0))
    P = P[:, expressed]
    B = np.asarray(samples, dtype=np.float64)
    totals = B.sum(axis=1)
    weights = np.zeros((B.shape[0], P.shape[0]))
    out = np.full((B.shape[0], P.shape[1]), np.nan)
    for i in np.flatnonzero(totals > 0):  # one small NNLS per sample (labels x expressed features)
        b = B[i, expressed] / totals[i]
        weights[i], _ = nnls(P.T, b)
        fit = weights[i] @ P
        eps = 1e-3 * max(float(np.median(fit)), 1e-300)
        out[i] = np.log((b + eps) / (fit + eps))
    return weights, out


def log_residual_spread(bulk: np.ndarray, profiles: np.ndarray) -> np.ndarray:
    """Per sample: the spread of its :func:`log_residuals` (NaN for an all-zero sample).

    Samples made of the reference's labels on the reference's platform score low (cell-to-cell sampling only); a
    platform or batch that measures every feature with its own efficiency, or much material of types the reference
    lacks, scores high.
    """
    R = log_residuals(bulk, profiles)
    out = np.full(R.shape[0], np.nan)
    rows = ~np.isnan(R).any(axis=1)
    out[rows] = R[rows].std(axis=1)
    return out


# ---------------------------------------------------------------------------------------------- on a trained model
@torch.inference_mode()
def first_estimates(model, min_samples: int, what: str, max_samples: int = 20_000):
    """The registered bulk as measured (at most its first ``max_samples`` samples) and the network's relative
    fractions of it; ``None`` (with ``what`` logged) without registered bulk or with fewer than ``min_samples``."""
    n_obs = n_registered_bulk(model)
    if n_obs == 0:
        return None
    if n_obs < min_samples:
        logger.info(f"{what} needs at least {min_samples} bulk samples (got {n_obs}): skipped.")
        return None
    source = model._bulk_source(None, platform_correction=False)
    _, bulk = next(source.blocks(max_samples))
    model.module.eval()
    out = model.module(torch.as_tensor(bulk, device=model.device), denoise=model.denoise_)
    known = out[:, : len(model.labels_)].cpu().numpy().astype(np.float64)
    return bulk, known / np.maximum(known.sum(axis=1, keepdims=True), 1e-12)


def n_registered_bulk(model) -> int:
    """How many bulk samples the model has registered (0 without bulk)."""
    if model.bulk_manager_ is None and model.bulk_ is None:
        return 0
    return model._bulk_source(None, platform_correction=False).n_obs


def fit_transferable_features(model) -> np.ndarray | None:
    """Set ``model.feature_agreement_`` (see :func:`feature_agreement`) and return the mask of the features to keep;
    ``None`` when nothing is to be masked."""
    first = first_estimates(model, MIN_TRANSFER_SAMPLES, "Judging which features transfer to the bulk's platform")
    if first is None:
        return None
    bulk, fractions = first
    agreement = feature_agreement(bulk, fractions, model._sampler.mean)
    model.feature_agreement_ = pd.Series(agreement, index=pd.Index(model.features_), name="feature_agreement")
    keep = transferable_features(agreement)
    if keep is None:
        logger.info("No feature set apart as not transferring to the bulk's platform: every feature is used.")
    return keep


def fit_platform_gains(model) -> pd.Series | None:
    """Per-feature platform gains of the registered bulk from the network's estimates (see
    :func:`feature_log_gains`); ``None`` when there is nothing to fit them on."""
    if model._reads_as_stored():
        logger.info("Values read as stored (scale='as_is') have no linear scale: no platform gains fitted.")
        return None
    first = first_estimates(model, MIN_GAIN_SAMPLES, "Fitting platform gains")
    if first is None:
        return None
    bulk, known = first
    return _gains_from(model, bulk, known)


def _gains_from(model, bulk: np.ndarray, fractions: np.ndarray) -> pd.Series:
    """:func:`feature_log_gains` of the bulk at the given fractions, against the reference's label moments, as the
    model's :attr:`~DECODE.platform_gains_` (a factor per feature)."""
    sampler = model._sampler
    gains = feature_log_gains(bulk, fractions, sampler.mean, sampler.var, sampler.index.sizes)
    return pd.Series(np.exp(gains), index=pd.Index(model.features_), name="platform_gain")


def _check_label_names(names, labels: list, ignored: tuple[str, ...], needs: str, what: str) -> None:
    """Raise a ``ValueError`` (``"<needs> per label of the model, [...]; missing ...; unknown <what> ..."``) unless
    ``names`` holds every label and nothing else but ``ignored``."""
    missing = [label for label in labels if label not in names]
    extra = [str(n) for n in names if n not in labels and n not in ignored]
    if missing or extra:
        raise ValueError(
            f"{needs} per label of the model, {list(labels)}; "
            + (f"missing {missing}" if missing else "")
            + ("; " if missing and extra else "")
            + (f"unknown {what} {extra} (drop them, or map them onto the model's labels)" if extra else "")
            + "."
        )


def check_measured_fractions(measured, labels: list, samples: pd.Index, ignored: tuple[str, ...] = ()) -> pd.DataFrame:
    """Validate cell fractions measured on some registered bulk samples (flow cytometry, counting): a DataFrame with
    every label as a column and registered samples as rows; rows of NaN (samples not measured) are dropped, and the
    rest are renormalised over the labels. Columns named in ``ignored`` (an absolute-mode model's ``"unknown"``)
    are allowed and not used. Raises a ``ValueError`` naming the problem and the fix."""
    if not isinstance(measured, pd.DataFrame):
        raise ValueError(
            f"measured_fractions must be a pandas DataFrame (samples x labels), got {type(measured).__name__}."
        )
    _check_label_names(measured.columns, labels, ignored, "measured_fractions needs one column", "columns")
    try:
        values = measured[list(labels)].astype(np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"measured_fractions must hold numbers (fractions per label): {err}") from err
    values = values[~values.isna().all(axis=1)]
    unknown = values.index[~values.index.isin(samples)]
    if len(unknown):
        raise ValueError(
            f"measured_fractions has rows for {len(unknown)} samples that are not in the registered bulk (first: "
            f"{list(map(str, unknown[:5]))}); its index must be the bulk's obs_names."
        )
    if values.isna().any().any() or (values.to_numpy() < 0).any():
        raise ValueError(
            "measured_fractions holds NaN or negative values in a measured sample: give every label's fraction "
            "(0 where it is absent), or a row of NaN for a sample that was not measured."
        )
    totals = values.sum(axis=1)
    if (totals <= 0).any():
        raise ValueError(f"measured_fractions sums to 0 for {list(map(str, values.index[totals <= 0][:5]))}.")
    if len(values) < MIN_GAIN_SAMPLES:
        raise ValueError(
            f"Platform gains anchored on measured fractions need at least {MIN_GAIN_SAMPLES} measured samples; got "
            f"{len(values)}."
        )
    return values.div(totals, axis=0)


def anchored_platform_gains(model, measured: pd.DataFrame) -> tuple[pd.Series, float]:
    """Per-feature platform gains of the registered bulk, anchored on the cell fractions measured on some of its
    samples (validated by :func:`check_measured_fractions`).

    The gains fitted from the network's own estimates cannot tell a feature the bulk's platform over-measures from a
    label the network reads too high: a label whose markers the platform under-measures is read low, and the gains
    fitted from that reading keep it low (on real PBMC bulk, B cells; the method page). Measured fractions break the
    tie. Each label's estimates are rescaled by the geometric mean, over the measured samples, of measured over
    estimated fraction (shrunk towards 1 by its standard error), the measured samples take their measured fractions,
    and the gains are fitted from all samples as :func:`feature_log_gains` does (a median over every sample, so a few
    measured samples do not carry every gain alone).

    Returns the gains and the per-label content shift left once they are anchored: the root mean square over labels
    of the standard error of that geometric mean (log scale). The measured samples pin each label's bias against the
    reference to within it, so the intervals need allow no more (see :meth:`DECODE.fit_platform_gains`).
    """
    first = first_estimates(model, MIN_GAIN_SAMPLES, "Fitting platform gains")
    if first is None:
        raise ValueError(f"Platform gains need a registered bulk of at least {MIN_GAIN_SAMPLES} samples.")
    bulk, estimates = first
    names = model._bulk_source(None, platform_correction=False).obs_names[: len(bulk)]
    rows = names.get_indexer(measured.index)
    if (rows < 0).any():
        raise ValueError("measured_fractions names samples beyond the first 20,000 of the registered bulk.")
    eps = 1e-3  # fractions near 0 would dominate a ratio of logs
    ratio = np.log(measured.to_numpy() + eps) - np.log(estimates[rows] + eps)
    # each label's mean log ratio, shrunk towards 0 by how much of it the measured samples' scatter could produce
    # (positive-part James-Stein): a few samples' noise should not move a label that reads right
    mean = ratio.mean(axis=0)
    noise = ratio.var(axis=0, ddof=1) / len(rows)
    left = float(np.sqrt(noise.mean()))
    mean *= np.clip(1 - noise / np.maximum(mean**2, 1e-12), 0, 1)
    fractions = estimates * np.exp(mean)
    fractions[rows] = measured.to_numpy()
    fractions /= fractions.sum(axis=1, keepdims=True)
    return _gains_from(model, bulk, fractions), left


#: Passes of the per-label rescaling in :func:`mean_anchored_platform_gains` (renormalising each sample moves the
#: labels' means again; on the real PBMC cohorts' first readings, 8 models x 2 means, 50 passes leave the labels'
#: means within 1e-15 of the given ones).
MEAN_ANCHOR_PASSES = 50


def check_mean_fractions(mean, labels: list, ignored: tuple[str, ...] = ()) -> pd.Series:
    """Validate a cohort's mean composition (a mapping or Series label -> average cell fraction over its samples):
    every label given, numbers, finite, non-negative, not all 0; names in ``ignored`` (an absolute-mode model's
    ``"unknown"``) are allowed and not used. Returns it over ``labels``, renormalised over them. Raises a
    ``ValueError`` naming the problem and the fix."""
    if isinstance(mean, pd.DataFrame) or not isinstance(mean, (pd.Series, Mapping)):
        raise ValueError(
            "mean_fractions must be a mapping or a pandas Series from each label to its average cell fraction over "
            f"the cohort, got {type(mean).__name__}"
            + (
                " (for fractions measured per sample, use measured_fractions / measured_key)."
                if isinstance(mean, pd.DataFrame)
                else "."
            )
        )
    mean = pd.Series(dict(mean) if isinstance(mean, Mapping) else mean, dtype=object)
    _check_label_names(mean.index, labels, ignored, "mean_fractions needs one value", "names")
    try:
        values = mean[list(labels)].astype(np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"mean_fractions must hold numbers (average fraction per label): {err}") from err
    if not np.isfinite(values.to_numpy()).all() or (values.to_numpy() < 0).any():
        raise ValueError(
            "mean_fractions holds NaN, infinite or negative values: give every label's average (0 if absent)."
        )
    if values.sum() <= 0:
        raise ValueError("mean_fractions sums to 0: give the labels' average fractions over the cohort.")
    return values / values.sum()


def mean_anchored_platform_gains(model, mean: pd.Series) -> pd.Series:
    """Per-feature platform gains of the registered bulk, anchored on the cohort's mean composition (validated by
    :func:`check_mean_fractions`).

    What the gains fitted from the network's own estimates lack is each label's *level*: the network's estimates
    follow the samples' differences, but a label read too low in every sample is kept too low by the gains fitted from
    it. One number per label breaks that tie: each label's estimates are rescaled so that their mean over the cohort
    is the given one (:data:`MEAN_ANCHOR_PASSES` passes of rescaling and renormalising each sample), keeping every
    sample's deviation from the cohort's mean as the network read it, and the gains are fitted from them as
    :func:`feature_log_gains` does. On real PBMC bulk, the cohort's mean flow composition anchors the gains as well as
    every sample's flow fractions do (method page, *Gains anchored on the cohort's mean composition*).
    """
    first = first_estimates(model, MIN_GAIN_SAMPLES, "Fitting platform gains")
    if first is None:
        raise ValueError(f"Platform gains need a registered bulk of at least {MIN_GAIN_SAMPLES} samples.")
    bulk, estimates = first
    target = mean.to_numpy(dtype=np.float64)
    fractions = estimates.copy()
    for _ in range(MEAN_ANCHOR_PASSES):
        fractions *= target / np.maximum(fractions.mean(axis=0), 1e-12)
        fractions /= np.maximum(fractions.sum(axis=1, keepdims=True), 1e-300)
    return _gains_from(model, bulk, fractions)


def warn_if_unknown_unreliable(source, profiles: np.ndarray, n_check: int = 2000) -> None:
    """Warn when the bulk is far from any mix of the labels (median :func:`log_residual_spread` of its first
    ``n_check`` samples above :data:`PLATFORM_SHIFT_WARNING`): the unknown share then absorbs the platform shift."""
    _, block = next(source.blocks(n_check))
    spread = float(np.nanmedian(log_residual_spread(block, profiles)))
    if spread > PLATFORM_SHIFT_WARNING:
        warnings.warn(
            f"The bulk differs from every mix of the reference's labels far more than samples from the reference's "
            f"own platform do (median log-residual spread {spread:.2f}; above {PLATFORM_SHIFT_WARNING} suggests "
            "another platform or batch). The `unknown` share cannot tell such a shift from missing cell types and "
            "will overestimate: read it as an upper bound, or use relative fractions. See get_reference_fit().",
            UserWarning,
            stacklevel=4,
        )


def check_unexplained(unexplained: pd.Series, reference_fit: pd.Series, mode: str) -> dict:
    """Name, in a warning, the samples whose unexplained share exceeds :data:`UNEXPLAINED_WARNING`, and say what to
    do; returns what was checked (for ``uns``).

    The share is read where the bulk's median reference fit is at most :data:`UNEXPLAINED_MAX_FIT`. Further from the
    reference (on the benchmark, CellBench's RNA mixtures against single cells: 3.0-3.8) the platform shift itself
    reads as unexplained material (0.7 with nothing missing), no threshold separates missing cell types from it, and
    the check says so instead of naming samples.
    """
    fit = float(np.nanmedian(reference_fit)) if len(reference_fit) else float("nan")
    out = {"threshold": UNEXPLAINED_WARNING, "median_reference_fit": fit, "checked": bool(fit <= UNEXPLAINED_MAX_FIT)}
    if not out["checked"]:
        out["flagged"] = []
        out["why_not"] = (
            f"median reference fit {fit:.2f} > {UNEXPLAINED_MAX_FIT}: the bulk is so far from any mix of the "
            "reference's labels (another platform) that the unexplained share cannot tell missing cell types from "
            "that shift (an upper bound)"
        )
        return out
    flagged = unexplained.index[unexplained.to_numpy() > UNEXPLAINED_WARNING]
    out["flagged"] = [str(name) for name in flagged]
    if len(flagged) == 0:
        return out
    names = ", ".join(map(str, flagged[:10])) + (f" and {len(flagged) - 10} more" if len(flagged) > 10 else "")
    what = (
        "their fractions over the known labels may have handed that material to the most similar known labels, "
        "and mode='absolute' reports it as `unknown`"
        if mode == "relative"
        else "the known labels' fractions share the rest"
    )
    warnings.warn(
        f"The reference leaves more than {UNEXPLAINED_WARNING:.0%} of {len(flagged)} of {len(unexplained)} samples "
        f"unexplained ({names}): {what}. A reference with the missing cell types or states is the fix; without "
        f"one, cell fractions of the known labels measured on at least {MIN_GAIN_SAMPLES} of the samples (flow "
        "cytometry; tl.deconvolve(measured_key=...) or model.fit_platform_gains(measured_fractions)) keep the known "
        "labels' split, and so, less closely, does the cohort's average composition of the known labels (a blood "
        "count, a published composition; mean_fractions=...). Where the missing cells have marker genes of their "
        "own, the excess-share check (obs['<key_added>_excess_share']) names them, and the default "
        "max_feature_excess='auto' leaves them out before training once the bulk's median share reaches 0.02; "
        "DECODE(max_feature_excess=10) leaves them out whatever the share (it costs where the reference is complete; "
        "see the method page).",
        UserWarning,
        stacklevel=3,
    )
    return out
