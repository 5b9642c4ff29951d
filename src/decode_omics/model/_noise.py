"""Measurement noise of the registered bulk beyond what the pseudo-tissues already carry, estimated before training.

A measurement adds noise of its own to every value (pipetting, ionisation, counting), independently per sample and
feature. Pseudo-tissues carry only the noise of drawing cells. A network trained on them alone reads a bulk measured
with more noise as if every fluctuation were composition.

The estimate needs no truth. Each bulk sample is compared with its best non-negative mix of the label profiles
(:func:`~decode_omics.model._calibration.nnls_mixes`), and so are pseudo-tissues drawn at the same mixes (as many
cells per sample as in training), so that both sides have the same compositions. Each feature's median residual over
the samples is removed first: a platform gain shifts a feature in every sample alike and is not noise. What remains
varies from sample to sample; the median over features of its variance is compared between the two sides. The
excess, as a standard deviation on the log scale, is the noise the bulk has beyond the pseudo-tissues'. Training then
multiplies every value of every pseudo-tissue by its own factor ``exp(N(0, sd^2))`` (the ``measurement_noise`` of
:class:`~decode_omics.model.DECODETrainingPlan`).

Bulk averaged over many more cells than a pseudo-tissue (tissue RNA-seq) varies less than the pseudo-tissues, so its
excess is 0 and training is unchanged. Measurements on the benchmark are on the method page (``docs/method.md``).
"""

from __future__ import annotations

import logging

import numpy as np

from .._engine.mixing import round_counts
from ._calibration import MIN_GAIN_SAMPLES, UNEXPLAINED_MAX_FIT, nnls_mixes
from ._settings import current_seed

logger = logging.getLogger("decode_omics")

#: Bulk samples (at most) and pseudo-tissues (at least) the estimate compares.
N_COMPARED = 500


def within_feature_variance(residuals: np.ndarray) -> float:
    """Median over features of the variance over samples of the log-residuals, each feature's median removed (a
    platform gain is the same in every sample, so it does not count)."""
    R = residuals[~np.isnan(residuals).any(axis=1)]
    R = R - np.median(R, axis=0, keepdims=True)
    return float(np.median(R.var(axis=0)))


def excess_log_noise(bulk: np.ndarray, pseudotissues: np.ndarray, profiles: np.ndarray) -> float:
    """Standard deviation (log scale) of the noise ``bulk`` has beyond ``pseudotissues``: ``sqrt(max(0, v_bulk -
    v_pseudo))`` with ``v`` the :func:`within_feature_variance` of each side's log-residuals from the label profiles.
    Both sides should hold samples of the same compositions (see :func:`estimate_measurement_noise`).

    Parameters
    ----------
    bulk, pseudotissues
        Samples x features, linear scale.
    profiles
        Labels x features: each label's mean profile, linear scale.
    """
    v_bulk = within_feature_variance(nnls_mixes(bulk, profiles)[1])
    v_pseudo = within_feature_variance(nnls_mixes(pseudotissues, profiles)[1])
    return float(np.sqrt(max(0.0, v_bulk - v_pseudo)))


def pseudotissues_like(sampler, weights: np.ndarray, rng: np.random.Generator, n: int = N_COMPARED) -> np.ndarray:
    """At least ``n`` pseudo-tissues (the model's own kind and cells per sample) at the cell fractions of the given
    mixes of unit-sum label profiles (:func:`~decode_omics.model._calibration.nnls_mixes`), each used in turn."""
    mean = np.asarray(sampler.mean, dtype=np.float64)
    cells = weights / np.maximum(mean.sum(axis=1), 1e-300)  # a mix of unit-sum profiles -> cells of each label
    cells = cells[cells.sum(axis=1) > 0]
    fractions = np.tile(cells / cells.sum(axis=1, keepdims=True), (int(np.ceil(n / len(cells))), 1))
    cfg = sampler.config
    counts = round_counts(fractions, cfg.cells_per_sample)
    pool = sampler.pool(rng) if cfg.method == "cells" else None
    return sampler.generator.known(rng, counts, cfg.method, pool)


def estimate_measurement_noise(model) -> float:
    """The registered bulk's noise beyond pseudo-tissues of the same compositions (see :func:`excess_log_noise`).

    0, and nothing estimated, without registered bulk, with fewer than
    :data:`~decode_omics.model._calibration.MIN_GAIN_SAMPLES` samples, for values read as stored (no linear scale: a
    factor on a log-ratio or z-score is not a measurement's noise) and for bulk whose median reference fit is above
    :data:`~decode_omics.model._calibration.UNEXPLAINED_MAX_FIT` (another platform: its departures from the labels'
    mixes are mostly the platform's, not noise; CellBench's RNA mixtures would read as sd 3.3).
    """
    if model._reads_as_stored() or (model.bulk_manager_ is None and model.bulk_ is None):
        return 0.0
    _, bulk = next(model._bulk_source(None, platform_correction=False).blocks(N_COMPARED))
    bulk = np.asarray(bulk[:N_COMPARED], dtype=np.float64)
    bulk = bulk[bulk.sum(axis=1) > 0]
    if bulk.shape[0] < MIN_GAIN_SAMPLES:
        return 0.0
    sampler = model._sampler
    weights, residuals = nnls_mixes(bulk, sampler.mean)
    if int((weights.sum(axis=1) > 0).sum()) < MIN_GAIN_SAMPLES:  # nothing to draw matching pseudo-tissues at
        return 0.0
    fit = float(np.median(residuals.std(axis=1)))
    if fit > UNEXPLAINED_MAX_FIT:
        logger.info(
            f"Measurement noise not estimated: the bulk's median reference fit is {fit:.2f} (above "
            f"{UNEXPLAINED_MAX_FIT}, another platform); training without it."
        )
        return 0.0
    pseudo = pseudotissues_like(sampler, weights, np.random.default_rng([current_seed(), 7]))
    v_pseudo = within_feature_variance(nnls_mixes(pseudo, sampler.mean)[1])
    sd = float(np.sqrt(max(0.0, within_feature_variance(residuals) - v_pseudo)))
    logger.info(f"Measurement noise of the bulk beyond the pseudo-tissues': sd {sd:.3f} (log scale).")
    return sd
