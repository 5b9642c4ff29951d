"""The excess-share check of :func:`~decode_omics.tl.deconvolve`: how much of each bulk sample no mix of the
reference's labels can hold, and which features carry it.

No mix of the labels holds more of a feature, as a share of the whole, than the label that holds most of it. The
features the cohort holds beyond :data:`EXCESS_RATIO` times that share, at the median over its samples, carry
material the reference lacks (or a platform gain that large); what each sample holds on them beyond the bound,
summed, is a lower bound on the share of the sample the reference does not explain, whatever its composition
(:meth:`~decode_omics.model.DECODE.get_excess_share`). The factor keeps platforms that measure a feature up to that
many times more efficiently than the reference's out of it, and judging features at the cohort's median keeps out
features that burst in a few samples (cell-to-cell sampling in mixtures of a few cells). It needs no training and no
seed, and the features that carry it name what is missing: the marker genes of a cell type, or a cell state, the
reference lacks (monocytes' LYZ, FGL2, TGFBI in PBMC bulk against a reference without monocytes).

It is a lower bound, and often a loose one: material whose profile lies near a mix of the labels (cell types whose
markers the reference's labels share, states between its labels) holds no feature beyond any label, and reads 0.
Measured on the benchmark's tasks on the method page (*The excess-share check*).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

#: A feature's share counts as excess beyond this many times the largest label's share (the same factor as
#: ``DECODE(max_feature_excess=10)``; chosen from the features' ratios on the real PBMC cohorts, no truth).
EXCESS_RATIO = 10.0
#: Where the bulk's median excess share reaches this, :func:`~decode_omics.tl.deconvolve` names, in a warning, the
#: samples at or above it. Chosen on the robustness suite's real PBMC tasks without training or truth fractions
#: (which labels a task leaves out is its design): medians 0.002-0.007 with nothing missing, 0.030-0.058 with
#: monocytes missing (``python -m benchmarks.excess_check``; every task on the method page).
EXCESS_WARNING = 0.02
#: How many of the features carrying the most excess are reported.
N_CARRIERS = 10


def check_excess(
    share: pd.Series, carriers: pd.Series, *, left_out: Sequence[str] = (), obs_key: str = "excess_share"
) -> dict:
    """Warn when the bulk's median excess share reaches :data:`EXCESS_WARNING`, naming the samples at or above it
    and the features that carry the excess; returns what was checked (for ``uns``).

    Parameters
    ----------
    share
        Per sample, the excess share (:meth:`~decode_omics.model.DECODE.get_excess_share`).
    carriers
        Per feature, the mean excess share over the samples, largest first (``by="feature"``).
    left_out
        The features the model left out before training (``max_feature_excess``): the warning says so.
    obs_key
        The ``.obs`` column the per-sample shares are written to (named in the warning).
    """
    values = share.to_numpy(dtype=np.float64)
    median = float(np.nanmedian(values)) if values.size and not np.isnan(values).all() else float("nan")
    top = carriers.iloc[:N_CARRIERS]
    out = {
        "ratio": EXCESS_RATIO,
        "threshold": EXCESS_WARNING,
        "median": median,
        "carriers": {str(k): float(v) for k, v in top.items()},
        "flagged": [],
        "left_out": [str(f) for f in left_out],
    }
    if not median >= EXCESS_WARNING:
        return out
    flagged = share.index[values >= EXCESS_WARNING]
    out["flagged"] = [str(name) for name in flagged]
    names = ", ".join(map(str, flagged[:10])) + (f" and {len(flagged) - 10} more" if len(flagged) > 10 else "")
    features = ", ".join(map(str, top.index[:6])) + (", ..." if len(carriers) > 6 else "")
    if len(left_out):
        effect = (
            f"The model left these {len(left_out)} features out before training (max_feature_excess), so the known "
            "labels' fractions do not read them"
        )
    else:
        effect = (
            "The relative fractions may have handed it to the known labels that express these features most; "
            "DECODE(max_feature_excess=10) (tl.deconvolve(model_kwargs=...)) leaves such features out before training"
        )
    warnings.warn(
        f"At least {EXCESS_WARNING:.0%} of {len(flagged)} of {len(share)} samples ({names}; median "
        f"{median:.1%}) is material no mix of the reference's labels holds, even if the bulk's platform measured "
        f"each feature up to {EXCESS_RATIO:g} times more efficiently. It sits on {len(carriers)} features that most "
        f"samples hold beyond that ({features}). {effect}. A reference with the cell types or states that express "
        f"them is the fix; mode='absolute' reports the material as `unknown`. Per sample: obs[{obs_key!r}].",
        UserWarning,
        stacklevel=3,
    )
    return out
