"""Values read as stored (``scale="as_is"``): does each bulk sample point where some mix of the reference's labels can?

Log-ratios and z-scores are centred per feature over the cells they were measured with. A cell type those cells
held but the reference lacks then has a profile near *minus* a mix of the labels the reference has, and summed into a
sample it reads as less of them: the sample points outside every non-negative mix of the label profiles, where no
pseudo-tissue lies. The network reads such inputs near the middle of what it was trained on, and silently (measured
on the method page, *The proteomics leave-out tasks*).

The check, per sample :math:`x` and label profiles :math:`P` (labels x features, the reference's means as stored):
the share of :math:`\\lVert x \\rVert^2` that the best non-negative mix :math:`P^\\top c_{\\ge 0}` misses beyond
the best unconstrained one, :math:`(\\lVert x - P^\\top c_{\\ge 0} \\rVert^2 - \\lVert x - P^\\top c \\rVert^2) /
\\lVert x \\rVert^2` (:func:`cone_excess`). It is 0 for a sample inside the cone of non-negative mixes, whatever its
platform scales or its own noise off the labels' span, and grows as the sample turns away from it. A sample is
*outside* when its excess exceeds the :data:`OUTSIDE_QUANTILE` quantile of fresh pseudo-tissues' (drawn as training
draws them); the warning fires when at least :data:`OUTSIDE_WARNING_SHARE` of the samples are.

The check runs only where the labels' profiles do not cancel (:func:`mix_cancellation`). A reference centred over its
own cells has label means whose cell-weighted sum is 0: their non-negative mixes then fill their whole span, no
sample can point outside it, and what the excess measures is noise in the direction where the profiles nearly cancel.
A reference centred over more cells than it holds (the values of a larger experiment, some cell types not kept) has
profiles that do not cancel, and there missing material shows.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.optimize import nnls

#: Quantile of the pseudo-tissues' excess above which a sample counts as outside every mix of the labels.
OUTSIDE_QUANTILE = 0.99
#: Share of outside samples from which the check warns. Chosen on the robustness suite's proteomics tasks (through
#: ``tl.deconvolve``, seed 0): 0.54 and 0.60 with the RAW line left out; 0.13 and 0.005 with the full references
#: (measured before the :data:`CANCELLING_MIX` gate, which now skips them).
OUTSIDE_WARNING_SHARE = 0.25
#: Pseudo-tissues drawn to set the threshold.
N_PSEUDOTISSUES = 1000
#: Below this :func:`mix_cancellation` the labels' profiles cancel and the check is not run. Chosen on the
#: proteomics tasks and the synthetic test: 0.000-0.036 with references centred over their own cells (full
#: references), 0.50-0.60 with one of three types left out after centring.
CANCELLING_MIX = 0.2


def mix_cancellation(profiles: np.ndarray) -> float:
    """The norm of the convex mix of the label profiles (rows) closest to 0, over their mean norm: 0 when the profiles
    cancel (a reference centred over its own cells), about 1 when no mix of them comes near 0."""
    profiles = np.asarray(profiles, dtype=np.float64)
    scale = float(np.linalg.norm(profiles, axis=1).mean())
    if scale == 0:
        return 0.0
    penalty = 1e3 * scale  # a heavy row forces the weights to sum to 1
    system = np.vstack([profiles.T, np.full((1, profiles.shape[0]), penalty)])
    target = np.concatenate([np.zeros(profiles.shape[1]), [penalty]])
    weights, _ = nnls(system, target)
    weights = weights / weights.sum()
    return float(np.linalg.norm(weights @ profiles) / scale)


def trains_on_complement(requested: bool | None, as_is: bool, profiles: np.ndarray) -> bool:
    """Whether training adds the centring complement (``DECODE(centring_complement=...)``): ``None`` resolves to on
    for values read as stored whose label profiles do not cancel (:func:`mix_cancellation` at least
    :data:`CANCELLING_MIX`), the references that lack some of the cells they were centred over. ``True`` elsewhere
    is refused, naming why."""
    if requested is None:
        return bool(as_is and mix_cancellation(profiles) >= CANCELLING_MIX)
    if requested and not as_is:
        raise ValueError(
            "centring_complement=True is for values read as stored (scale='as_is'): on a linear scale, material the "
            "reference lacks is what absolute mode's `unknown` share and the unknown head learn from."
        )
    if requested and (cancellation := mix_cancellation(profiles)) < CANCELLING_MIX:
        raise ValueError(
            f"centring_complement=True needs label profiles that do not cancel; these do (mix_cancellation "
            f"{cancellation:.3f} < {CANCELLING_MIX}): the reference was centred over its own cells, so no centred "
            "material is missing from it. Leave centring_complement=None."
        )
    return bool(requested)


def cone_excess(x: np.ndarray, profiles: np.ndarray) -> np.ndarray:
    """Per row of ``x`` (samples x features), the share of its squared norm that the best non-negative mix of the
    rows of ``profiles`` (labels x features) misses beyond the best unconstrained mix; NaN for an all-zero row."""
    x = np.asarray(x, dtype=np.float64)
    basis = np.asarray(profiles, dtype=np.float64).T
    unconstrained, *_ = np.linalg.lstsq(basis, x.T, rcond=None)
    free = np.square(x - (basis @ unconstrained).T).sum(axis=1)
    bound = np.array([nnls(basis, row)[1] ** 2 for row in x])
    norm = np.square(x).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, np.maximum(bound - free, 0.0) / norm, np.nan)


def check_outside_mixtures(
    excess: pd.Series, threshold: float, cancellation: float, centring_complement: bool = False
) -> dict:
    """Count the samples whose excess exceeds ``threshold``; warn, naming them, when at least
    :data:`OUTSIDE_WARNING_SHARE` of the samples do. Not checked where the labels' profiles cancel
    (``cancellation``, :func:`mix_cancellation`, below :data:`CANCELLING_MIX`). ``centring_complement``: whether the
    model trained on the material the centring implies (the warning says what that does). Returns what was checked
    (for ``uns``)."""
    out = {
        "threshold": float(threshold),
        "quantile": OUTSIDE_QUANTILE,
        "warning_share": OUTSIDE_WARNING_SHARE,
        "mix_cancellation": float(cancellation),
        "checked": bool(cancellation >= CANCELLING_MIX),
        "centring_complement": bool(centring_complement),
    }
    if not out["checked"]:
        out["flagged"] = []
        out["why_not"] = (
            f"the labels' profiles cancel (mix cancellation {cancellation:.3f} < {CANCELLING_MIX}), as those of a "
            "reference centred over its own cells do: every direction in their span is a non-negative mix, so "
            "material the reference lacks cannot show as samples outside the mixes"
        )
        return out
    outside = excess.index[excess.to_numpy() > threshold]
    share = len(outside) / max(int(excess.notna().sum()), 1)
    out["share_outside"] = float(share)
    out["flagged"] = [str(name) for name in outside]
    if share < OUTSIDE_WARNING_SHARE:
        return out
    names = ", ".join(map(str, outside[:10])) + (f" and {len(outside) - 10} more" if len(outside) > 10 else "")
    warnings.warn(
        f"{len(outside)} of {len(excess)} samples ({names}) point outside every non-negative mix of the reference's "
        f"labels, further than {OUTSIDE_QUANTILE:.0%} of pseudo-tissues do. In values centred per feature "
        "(z-scores, log-ratios), material the reference lacks reads as less of the labels it has. "
        + (
            "The network trained on the material the reference's centring implies it lacks, which reads the known "
            "labels' split better but not always well (on the benchmark, one of three cell lines missing: pooled "
            "CCC 0.51 one way, below NNLS's 0.74, and 0.88 the other). "
            if centring_complement
            else "The fractions cannot tell the two apart: they may be wrong (on the benchmark, one of three cell "
            "lines missing: pooled CCC 0.17 one way, 0.75 the other, without training on the centring complement; "
            "DECODE(centring_complement=None) trains on it). "
        )
        + "A reference with the missing cell types is the fix; compare with dco.tl.nnls, and read these fractions "
        "with care.",
        UserWarning,
        stacklevel=3,
    )
    return out
