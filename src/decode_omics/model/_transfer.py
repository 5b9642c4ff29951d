"""Which features of values read as stored (``scale="as_is"``) transfer from the reference's platform to the bulk's.

Log-ratios and z-scores from two platforms have no common linear scale, so no per-feature gain can bring one to the
other (see :mod:`~decode_omics.model._platform` for linear data). What can be judged is whether a feature carries the
same composition signal on both platforms: over the bulk samples, the feature's measured value should rise and fall
with the value the network's first estimates imply from the reference's label means. On the cross-platform
proteomics tasks most proteins fail that test (median correlation 0.25-0.44), and the network, trained on the
reference alone, cannot know which. Features that agree are kept; the others are masked and the network is trained
again on the rest.
"""

from __future__ import annotations

import numpy as np

#: Fewest bulk samples over which agreement is judged (a correlation over fewer samples is mostly noise).
MIN_SAMPLES = 20
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
