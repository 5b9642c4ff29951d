"""Per-feature platform gains of a bulk cohort, estimated against the model's own first estimates.

A bulk platform (or batch) measures every feature with its own efficiency: bulk RNA-seq against 10x cells, another
replicate of a metabolomics run. Such a gain multiplies a feature in every sample of the cohort alike, whatever the
sample's composition, so it shows up as a log-ratio between the measured bulk and the mixture its estimated
fractions predict that is common to all samples. This module estimates that common log-ratio per feature and shrinks
it towards zero by how much of it sampling noise alone could produce (an empirical-Bayes, James-Stein-type shrinkage),
so that a cohort from the reference's own platform is barely changed.
"""

from __future__ import annotations

import numpy as np

#: Fewest bulk samples from which gains are estimated: a median over fewer samples is mostly one sample's noise.
MIN_SAMPLES = 5
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
    if n_samples < MIN_SAMPLES:
        raise ValueError(f"Platform gains need at least {MIN_SAMPLES} bulk samples; got {n_samples}.")
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
