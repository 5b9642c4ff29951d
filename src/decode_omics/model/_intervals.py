"""Per-sample, per-label intervals of the fractions, calibrated on held-out pseudo-tissues made as unlike the
reference as the real bulk is.

An interval must hold the truth as often as it claims on the bulk the user has, not on pseudo-tissues: on real bulk
the error is dominated by what the pseudo-tissues lack (a platform that measures each feature with its own
efficiency, material the reference does not have), not by the network's error on its own training distribution. The
calibration therefore runs once per trained model (:func:`fit_interval_calibration`), when intervals are first asked
for (or the model is saved), with the seed the model was trained with:

1. **How far the bulk is from the reference, as the network sees it.** On linear scales: how much the network's
   estimates of the registered bulk move when its platform gains are divided out (:func:`correction_effect`, from
   the first estimates; it needs :data:`~decode_omics.model._calibration.MIN_GAIN_SAMPLES` bulk samples). A bulk
   from the reference's platform barely moves; a bulk whose platform measures many features with their own
   efficiency moves as much as that shift disturbs the network. For values read as stored (no gains): the median
   residual share of each sample's non-negative least-squares fit by the label profiles (:func:`misfit`).
2. **Held-out pseudo-tissue cohorts shifted as far.** Fresh pseudo-tissues (a stream the training never drew; in
   absolute mode with unknown material added, share up to :data:`ABSOLUTE_UNKNOWN_SHARE` (0.8; the unknown head
   trains on shares up to 0.5, and reads larger ones too low); for values read as stored with the centring
   complement, ``DECODE(centring_complement=...)``, with that material, share up to 0.5, as in training) in
   cohorts of :data:`COHORT_SIZE`, each cohort with its own platform shift: every feature multiplied by
   ``exp(N(0, s^2))`` (linear scales) or offset by ``N(0, s^2)`` times its spread (values as stored), one draw per
   feature and cohort. ``s`` is the size at which the cohorts
   show the bulk's measure of step 1 (interpolated on :data:`SHIFT_GRID`; 0 without registered bulk).
   Each cohort's labels also carry their own amount per cell: the truth the cohort is scored against is its
   fractions of material divided, label by label, by a factor ``exp(N(0, t^2))`` drawn per cohort and renormalised
   (:func:`content_truth`; ``t`` = :data:`CONTENT_SHIFT`). A bulk's cells need not hold what the reference's cells of
   the same label hold (cell size and activation in another donor, replicate or tissue, a platform that captures one
   cell type's transcripts or proteins better): the network then reads a label's share of the material, and the
   cell fraction differs from it by a bias no measurement of the bulk alone can tell from composition, and platform
   gains cannot make. Its size is a prior (about 1.35x either way per label): a larger bias of one label, as B cells
   read 2.5-3x too low on real PBMC, is not covered. In absolute mode the unknown material draws a factor of its
   own, as large: what the reference lacks holds no known amount per cell either (a neutrophil or a tumour cell
   need not hold what the reference's cells hold), and the ``unknown`` share of cells differs from its share of
   material by as much as a known label's.
3. **The same pipeline as the bulk.** Each cohort is predicted as the bulk is: platform gains fitted to it from the
   network's first estimates when the model corrects the bulk, then every member's fractions.
4. **Conformal scores.** Per label, the error of the members' average divided by its scale,
   ``sqrt(sd^2 + c^2 * (f * (1 - f) + e) + (w * u)^2)`` (``sd``: the members' spread; ``f``: the estimate; ``c`` =
   :data:`FRACTION_SCALE`; ``u``: the sample's unexplained share as the unknown head reads it, in relative mode when
   the cohorts hold material the reference lacks (``unknown_share``), else 0; ``e`` from :data:`FLOORS` and ``w``
   from :data:`UNEXPLAINED_WEIGHTS`, the pair giving the narrowest intervals on the first half of the cohorts):
   intervals grow where the members disagree, as they do on samples unlike anything simulated, where a fraction is
   far from 0 and 1, and where the reference explains less of a sample (``w`` is 0 unless that narrows the
   intervals; it is stored as ``unexplained_weight``). The scores are kept (:attr:`DECODE.interval_calibration_`),
   so an interval at any level is the estimate plus or minus that level's conformal quantile times the scale,
   clipped to [0, 1].

The calibration uses no label of the bulk; its coverage on real cohorts with measured truth is on the benchmark page.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import torch
from scipy.optimize import nnls

from ._calibration import MIN_GAIN_SAMPLES, UNEXPLAINED_MAX_FIT, feature_log_gains, log_residual_spread
from ._ensemble import member_fractions
from ._settings import current_seed

logger = logging.getLogger("decode_omics")

#: Level of the intervals when none is given.
DEFAULT_LEVEL = 0.9
#: Held-out pseudo-tissue cohorts and samples per cohort the scores are computed on. The samples of a cohort share its
#: shift, so the cohorts, not the samples, set how well the scores' quantile is known. With 12 cohorts (and 4 probe
#: cohorts) the coverage of one model's 90 % intervals moved by 0.030-0.096 (sd over 5 random streams) on 7 real-truth
#: tasks; with 96 (and 16) by 0.016-0.042, at 5-20 s per calibration on one CPU thread (docs/uncertainty.md).
N_COHORTS = 96
COHORT_SIZE = 64
#: Shift sizes tried when matching the bulk's misfit (log-gain sd, or offset sd in feature spreads).
SHIFT_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.65, 0.8, 1.0, 1.25, 1.5, 2.0)
#: Weight of the fraction term of the scale (a shape: the conformal quantile sets the width).
FRACTION_SCALE = 0.1
#: Floors ``e`` of the fraction term tried (0: width proportional to ``sqrt(f (1 - f))``; large: nearly constant).
FLOORS = (0.0, 0.01, 0.05, 0.25, 1.0)
#: Weights ``w`` of each sample's unexplained share in the scale tried (relative mode with the unknown head, cohorts
#: holding material the reference lacks; 0: the share does not widen the interval).
UNEXPLAINED_WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.4)
#: Log-sd of how much more or less of itself each label puts into a bulk sample per cell than into the reference
#: (step 2 of the module docstring). Chosen on the real-truth tasks of the uncertainty benchmark, leaving each scenario
#: out in turn (``python -m benchmarks.interval_content``; docs/uncertainty.md): every fold chose 0.3.
CONTENT_SHIFT = 0.3
#: Largest shares of unknown material tried when matching the bulk's unexplained share (relative mode,
#: ``unknown_share="auto"``): each cohort's samples draw their share from ``U(0, a)``.
UNKNOWN_SHARE_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
#: Absolute mode: the largest share of unknown material in the calibration cohorts by default (or the unknown head's
#: ``max_unknown_share``, if larger). A head trained on shares up to 0.5 reads larger ones too low; cohorts reaching
#: 0.8 put those errors into the intervals. Chosen on the uncertainty benchmark's absolute-mode tasks (the robustness
#: suite's leave-outs and the ``unknown`` scenario, seeds 0-1; docs/uncertainty.md, *Calibrating beyond the reach*).
ABSOLUTE_UNKNOWN_SHARE = 0.8
#: How an absolute-mode calibration records the default share of unknown material.
DEFAULT_REACH = "absolute mode's default: 0.8, or the unknown head's reach if larger"
#: Cohorts used per shift size when matching the bulk's measure.
N_PROBE_COHORTS = 16
#: Samples of the registered bulk whose misfit is measured.
MAX_BULK_SAMPLES = 2000


def misfit(X: np.ndarray, profiles: np.ndarray, as_is: bool) -> np.ndarray:
    """Per sample, how far it is from every non-negative mix of the label profiles (see the module docstring)."""
    if not as_is:
        return log_residual_spread(X, profiles)
    P = np.asarray(profiles, dtype=np.float64)
    out = np.full(X.shape[0], np.nan)
    for i, x in enumerate(np.asarray(X, dtype=np.float64)):
        centred = x - x.mean()
        if not np.any(centred):
            continue
        w, _ = nnls(P.T, x)
        out[i] = float(np.std(x - w @ P) / np.std(x))
    return out


def _shifted(x: np.ndarray, s: float, spread: np.ndarray, as_is: bool, rng: np.random.Generator) -> np.ndarray:
    """A cohort under one platform shift of size ``s`` (one draw per feature, shared by the cohort's samples)."""
    if s == 0:
        return x
    draw = rng.normal(0.0, s, x.shape[1])
    return x + draw * spread if as_is else x * np.exp(draw)


class _Cohorts:
    """Held-out pseudo-tissues of a model, drawn a cohort at a time with their true fractions (an unknown share in
    absolute mode); the first :data:`N_PROBE_COHORTS` are kept, to match the bulk's shift on."""

    def __init__(self, model, rng: np.random.Generator, absolute_share: float = 0.0):
        self.sampler, self.absolute = model._sampler, model.mode_ == "absolute"
        # the largest share of unknown material in the samples drawn: in absolute mode ``absolute_share``, in
        # relative mode none until a share is given
        self.unknown_share = float(absolute_share) if self.absolute else 0.0
        self.as_is = model._reads_as_stored()
        self.profiles = self.sampler.mean
        self.probe = [self.draw(rng) for _ in range(N_PROBE_COHORTS)]
        self.spread = np.vstack([x for x, _ in self.probe]).std(axis=0)

    def draw(self, rng: np.random.Generator, unknown_share: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """One cohort of :data:`COHORT_SIZE` fresh pseudo-tissues and their fractions; in relative mode with
        unknown material (``unknown_share``, default :attr:`unknown_share`) the fractions are the known labels'."""
        share = self.unknown_share if unknown_share is None else unknown_share
        if not self.absolute and share > 0:
            draw = self.sampler.sample(COHORT_SIZE, rng, absolute=True, views=True, unknown_share=share)
            return draw["xu"].astype(np.float64), draw["y"].astype(np.float64)
        draw = self.sampler.sample(COHORT_SIZE, rng, absolute=self.absolute, views=self.absolute, unknown_share=share)
        if self.absolute:
            u = draw["u"].astype(np.float64)[:, None]
            return draw["xu"].astype(np.float64), np.hstack([(1 - u) * draw["y"], u])
        return draw["x"].astype(np.float64), draw["y"].astype(np.float64)


def correction_effect(model, X: np.ndarray) -> float:
    """Mean absolute change of the estimates of cohort ``X`` (as measured) when its own platform gains are divided
    out (step 1 of the module docstring)."""
    before = predict_members(model, X, correct=False).mean(axis=0)
    after = predict_members(model, X, correct=True).mean(axis=0)
    return float(np.abs(after - before).mean())


def _match_effect(model, cohorts: _Cohorts, target: float, rng: np.random.Generator) -> float:
    """The shift size at which held-out cohorts show the bulk's correction effect ``target``."""
    levels = []
    for s in SHIFT_GRID:
        effects = [correction_effect(model, _shifted(x, s, cohorts.spread, False, rng)) for x, _ in cohorts.probe]
        levels.append(float(np.mean(effects)))
    return _interpolate(levels, target)


def _interpolate(levels: list[float], target: float) -> float:
    """The shift of :data:`SHIFT_GRID` at which the (made monotone) ``levels`` reach ``target``."""
    levels = np.maximum.accumulate(np.asarray(levels))
    if target <= levels[0]:
        return 0.0
    if target >= levels[-1]:
        return float(SHIFT_GRID[-1])
    return float(np.interp(target, levels, SHIFT_GRID))


def _match_shift(cohorts: _Cohorts, target: float, rng: np.random.Generator) -> float:
    """The shift size whose cohorts' median misfit is closest to ``target`` (interpolated on :data:`SHIFT_GRID`)."""
    probe = cohorts.probe[:2]
    levels = []
    for s in SHIFT_GRID:
        x = np.vstack([_shifted(x, s, cohorts.spread, cohorts.as_is, rng) for x, _ in probe])
        levels.append(float(np.nanmedian(misfit(x, cohorts.profiles, cohorts.as_is))))
    return _interpolate(levels, target)


@torch.inference_mode()
def unexplained(model, X: np.ndarray) -> np.ndarray:
    """The unknown head's unexplained share of each sample of ``X`` (as measured), as
    :meth:`~decode_omics.model.DECODE.get_unexplained` reads it."""
    model.module.eval()
    x = torch.as_tensor(X, dtype=torch.float32, device=model.device)
    return model.module.unexplained(x, denoise=model.denoise_).cpu().numpy().astype(np.float64)


def _match_unknown_share(model, cohorts: _Cohorts, shift: float, rng: np.random.Generator) -> tuple[float, str]:
    """Relative mode: the largest unknown share (interpolated on :data:`UNKNOWN_SHARE_GRID`) at which held-out
    cohorts, shifted by ``shift``, show the registered bulk's median unexplained share. Not matched (0, with a
    warning) where the bulk's median reference fit exceeds
    :data:`~decode_omics.model._calibration.UNEXPLAINED_MAX_FIT`: so far from every mix of the labels, the platform
    shift itself reads as unexplained material (CellBench's RNA mixtures, nothing missing, would be matched at the
    grid's top)."""
    if model.bulk_manager_ is None and model.bulk_ is None:
        raise ValueError('unknown_share="auto" matches the registered bulk: register bulk, or give a share.')
    _, block = next(model._bulk_source(None, platform_correction=False).blocks(MAX_BULK_SAMPLES))
    fit = float(np.nanmedian(log_residual_spread(block, cohorts.profiles)))
    if not fit <= UNEXPLAINED_MAX_FIT:
        why = (
            f"not matched: the bulk's median reference fit {fit:.2f} exceeds {UNEXPLAINED_MAX_FIT}, where the "
            "platform shift reads as unexplained material; give unknown_share a value instead"
        )
        warnings.warn(f'unknown_share="auto" {why}. The intervals allow for no missing material.', stacklevel=4)
        return 0.0, why
    target = float(np.median(unexplained(model, block)))
    levels = []
    for share in UNKNOWN_SHARE_GRID:
        per_cohort = []
        for _ in range(N_PROBE_COHORTS // 4):
            x, _ = cohorts.draw(rng, share)
            per_cohort.append(np.median(unexplained(model, _shifted(x, shift, cohorts.spread, False, rng))))
        levels.append(float(np.mean(per_cohort)))
    levels = np.maximum.accumulate(np.asarray(levels))
    if target <= levels[0]:
        share = 0.0
    elif target >= levels[-1]:
        share = float(UNKNOWN_SHARE_GRID[-1])
    else:
        share = float(np.interp(target, levels, UNKNOWN_SHARE_GRID))
    return share, f"matched to the registered bulk's median unexplained share {target:.3f}"


def check_unknown_share(model, unknown_share) -> None:
    """Refuse an ``unknown_share`` the model cannot use, saying why."""
    if unknown_share is None:
        return
    valid_share = not isinstance(unknown_share, str) and 0 <= unknown_share < 1
    if unknown_share != "auto" and not valid_share:
        raise ValueError(f'unknown_share must be "auto" or a share in [0, 1), got {unknown_share!r}.')
    if model.mode_ == "absolute":
        if unknown_share == "auto":
            raise ValueError(
                'unknown_share="auto" matches relative mode\'s unexplained share; in absolute mode give a share (the '
                "calibration cohorts' largest share of unknown material), or None for the default."
            )
        return
    if unknown_share == 0:
        return
    if model.module.head.unknown is None:
        raise ValueError(
            "unknown_share needs the unknown head (a relative-mode model on a linear scale, unknown_head not False): "
            "values read as stored have no linear scale to add material on."
        )


@torch.inference_mode()
def predict_members(model, X: np.ndarray, correct: bool) -> np.ndarray:
    """Every member's fractions (``n_members x samples x columns``) of one cohort ``X`` (samples x model features,
    as measured), after fitting and dividing out the cohort's own platform gains when ``correct``."""
    module, device = model.module, model.device
    module.eval()
    x = torch.as_tensor(X, dtype=torch.float32, device=device)
    if correct and X.shape[0] >= MIN_GAIN_SAMPLES:
        first = module(x, denoise=model.denoise_)[:, : len(model.labels_)].cpu().numpy().astype(np.float64)
        first = first / np.maximum(first.sum(axis=1, keepdims=True), 1e-12)
        s = model._sampler
        gains = np.exp(feature_log_gains(X, first, s.mean, s.var, s.index.sizes))
        x = torch.as_tensor(X / gains, dtype=torch.float32, device=device)
    return member_fractions(module, x, model.denoise_).cpu().numpy().astype(np.float64)


def scale(
    estimate: np.ndarray, spread: np.ndarray, floor: float, unexplained: np.ndarray | None = None, weight: float = 0.0
) -> np.ndarray:
    """The scale of each interval: members' spread, fraction term and, with a ``weight``, each sample's
    ``unexplained`` share combined (see the module docstring)."""
    f = np.clip(estimate, 0, 1)
    variance = spread**2 + FRACTION_SCALE**2 * (f * (1 - f) + floor)
    if weight:
        variance = variance + (weight * np.asarray(unexplained, dtype=np.float64)[:, None]) ** 2
    return np.sqrt(variance) + 1e-4


def _narrowest_scale(estimate, spread, truth, unexplained=None, level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """The floor of :data:`FLOORS` and, given the samples' ``unexplained`` shares, the weight of
    :data:`UNEXPLAINED_WEIGHTS` whose intervals, calibrated per label at ``level`` on these samples, are narrowest
    (on ties the smaller weight, then the smaller floor)."""
    weights = (0.0,) if unexplained is None else UNEXPLAINED_WEIGHTS
    pairs = [(floor, weight) for weight in weights for floor in FLOORS]
    widths = []
    for floor, weight in pairs:
        width = scale(estimate, spread, floor, unexplained, weight)
        q = np.quantile(np.abs(estimate - truth) / width, level, axis=0)
        widths.append(float((q * width).mean()))
    floor, weight = pairs[int(np.argmin(widths))]
    return float(floor), float(weight)


def summarise(members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The members' average and spread (sample standard deviation; 0 for one member)."""
    mean = members.mean(axis=0)
    spread = members.std(axis=0, ddof=1) if members.shape[0] > 1 else np.zeros_like(mean)
    return mean, spread


def _bulk_shift(model, cohorts: _Cohorts, rng: np.random.Generator) -> tuple[float, str]:
    """The platform shift of the registered bulk (step 1 of the module docstring) and how it was measured."""
    if model.bulk_manager_ is None and model.bulk_ is None:
        return 0.0, "no registered bulk"
    if not cohorts.as_is:
        source = model._bulk_source(None, platform_correction=False)
        if source.n_obs < MIN_GAIN_SAMPLES:
            return 0.0, f"fewer than {MIN_GAIN_SAMPLES} bulk samples"
        _, block = next(source.blocks(MAX_BULK_SAMPLES))
        target = correction_effect(model, block)
        return _match_effect(model, cohorts, target, rng), f"matched to the bulk's correction effect {target:.4f}"
    source = model._bulk_source(None, platform_correction=False)
    _, block = next(source.blocks(MAX_BULK_SAMPLES))
    target = float(np.nanmedian(misfit(block, cohorts.profiles, as_is=True)))
    if not np.isfinite(target):
        return 0.0, "bulk misfit undefined"
    return _match_shift(cohorts, target, rng), f"matched to the registered bulk's misfit {target:.2f}"


def content_truth(
    y: np.ndarray, sigma: float, absolute: bool, rng: np.random.Generator, unknown_sigma: float | None = None
) -> np.ndarray:
    """The cell fractions of held-out cohorts whose labels carry other amounts per cell in the bulk than in the
    reference (step 2 of the module docstring): ``y`` holds the cohorts' fractions of material, :data:`COHORT_SIZE`
    rows per cohort; each cohort draws one factor ``exp(N(0, sigma^2))`` per known label and, in absolute mode,
    ``exp(N(0, unknown_sigma^2))`` for the unknown material (``unknown_sigma``: ``sigma`` unless given), and its cell
    fractions are the material fractions divided by the factors, renormalised."""
    unknown_sigma = sigma if unknown_sigma is None else unknown_sigma
    if sigma == 0 and (not absolute or unknown_sigma == 0):
        return y
    out = np.empty_like(y)
    n_known = y.shape[1] - (1 if absolute else 0)
    sigmas = np.array([sigma] * n_known + ([unknown_sigma] if absolute else []))
    for start in range(0, y.shape[0], COHORT_SIZE):
        block = y[start : start + COHORT_SIZE]
        draw = sigmas * rng.normal(0.0, 1.0, len(sigmas)) if absolute else rng.normal(0.0, sigma, n_known)
        factors = np.exp(draw)
        cells = block / factors
        out[start : start + COHORT_SIZE] = cells / np.maximum(cells.sum(axis=1, keepdims=True), 1e-12)
    return out


def _absolute_reach(model, unknown_share: float | None) -> tuple[float, str]:
    """Absolute mode: the largest share of unknown material in the calibration cohorts, and how it was set."""
    if unknown_share is None:
        return max(ABSOLUTE_UNKNOWN_SHARE, model._sampler.config.unknown_share), DEFAULT_REACH
    return float(unknown_share), "given"


def calibration_cohorts(
    model, shift: float | None = None, seed: int | None = None, unknown_share: float | str | None = None
) -> dict:
    """Steps 1-3 of the module docstring: the held-out cohorts' true fractions (``y``, of material), every
    member's fractions of them (``members``) and, in relative mode with the unknown head and an ``unknown_share``
    above 0, each sample's unexplained share (``unexplained``), at the bulk's matched ``shift`` or the one given; drawn
    from a stream
    of ``seed`` (default: the current seed). In relative mode, ``unknown_share`` adds material of a new cell type
    to every cohort's samples, a share ``U(0, unknown_share)`` each (``"auto"``: matched to the registered bulk's
    median unexplained share), their truth staying the known labels' split. A model trained on the centring
    complement (values read as stored) has its cohorts hold that material, a share ``U(0, 0.5)`` as in training
    (``unknown_share_from``: ``"centring complement"``). In absolute mode every cohort holds unknown material, a share
    ``U(0, unknown_share)`` per sample (default ``None``: :data:`ABSOLUTE_UNKNOWN_SHARE`, or the unknown head's
    ``max_unknown_share`` if larger), scored as the ``unknown`` column."""
    seed = current_seed() if seed is None else int(seed)
    rng = np.random.default_rng([seed, 2026])  # a stream of its own: training never drew from it
    absolute = model.mode_ == "absolute"
    # absolute mode: the cohorts hold unknown material from the first probe cohort on
    reach, unknown_from = _absolute_reach(model, unknown_share) if absolute else (0.0, None)
    cohorts = _Cohorts(model, rng, reach)
    if shift is None:
        shift, how = _bulk_shift(model, cohorts, rng)
    elif shift < 0:
        raise ValueError(f"shift must be >= 0, got {shift!r}.")
    else:
        shift, how = float(shift), "given"
    share = 0.0 if unknown_share is None else unknown_share
    if not absolute:
        if share == "auto":  # on a stream of its own: a share matched at 0 leaves the cohorts as by default
            matching = np.random.default_rng([seed, 2026, 2])
            cohorts.unknown_share, unknown_from = _match_unknown_share(model, cohorts, shift, matching)
        elif share == 0 and getattr(model, "centring_complement_", False):
            # values read as stored whose reference lacks cells it was centred over: the cohorts hold that material,
            # as the training pseudo-tissues did
            cohorts.unknown_share, unknown_from = float(model._sampler.config.unknown_share), "centring complement"
        else:
            cohorts.unknown_share, unknown_from = float(share), "given"
    correct = model.platform_gains_ is not None
    # relative mode, cohorts with material the reference lacks (unknown_share): each sample's unexplained share may
    # widen its interval; the cohorts then span the shares a bulk with such material shows, so the weight is
    # calibrated where it applies. Without that material it would be fitted on shares near 0 and extrapolated to a
    # bulk that shows more (measured on the uncertainty page), so it is not read.
    reads_unexplained = not cohorts.absolute and cohorts.unknown_share > 0 and model.module.head.unknown is not None
    parts, truth, shares = [], [], []
    for _ in range(N_COHORTS):  # a cohort at a time: memory stays that of one cohort, whatever the features
        x, y = cohorts.draw(rng)
        measured = _shifted(x, shift, cohorts.spread, cohorts.as_is, rng)
        parts.append(predict_members(model, measured, correct))
        truth.append(y)
        if reads_unexplained:  # as get_unexplained reads the bulk: as measured
            shares.append(unexplained(model, measured))
    columns = model.labels_ + (["unknown"] if cohorts.absolute else [])
    out = {"members": np.concatenate(parts, axis=1), "y": np.vstack(truth), "shift": shift, "shift_from": how,
           "absolute": cohorts.absolute, "columns": columns}  # fmt: skip
    if reads_unexplained:
        out["unexplained"] = np.concatenate(shares)
    return out | {"unknown_share": cohorts.unknown_share, "unknown_share_from": unknown_from}


def conformal_scores(
    cohorts: dict,
    content_shift: float = CONTENT_SHIFT,
    unknown_content_shift: float | None = None,
    seed: int | None = None,
) -> dict:
    """Step 4 of the module docstring on the output of :func:`calibration_cohorts`, with the cohorts' cell fractions
    read at ``content_shift`` (:func:`content_truth`; the unknown material's at ``unknown_content_shift``, by default
    the same; content factors drawn from a stream of ``seed``, default the current seed): what
    :attr:`DECODE.interval_calibration_` holds."""
    rng = np.random.default_rng([current_seed() if seed is None else int(seed), 2026, 1])
    unknown = content_shift if unknown_content_shift is None else float(unknown_content_shift)
    y = content_truth(cohorts["y"], content_shift, cohorts["absolute"], rng, unknown)
    estimate, spread = summarise(cohorts["members"])
    half = estimate.shape[0] // 2
    u = cohorts.get("unexplained")
    floor, weight = _narrowest_scale(estimate[:half], spread[:half], y[:half], None if u is None else u[:half])
    scores = np.abs(estimate - y) / scale(estimate, spread, floor, u, weight)
    return {
        "shift": cohorts["shift"],
        "shift_from": cohorts["shift_from"],
        **{k: cohorts[k] for k in ("unknown_share", "unknown_share_from") if k in cohorts},
        "content_shift": float(content_shift),
        **({"unknown_content_shift": unknown} if cohorts["absolute"] else {}),
        "floor": floor,
        **({"unexplained_weight": weight} if u is not None else {}),
        "n_samples": int(y.shape[0]),
        "columns": cohorts["columns"],
        "scores": {c: np.sort(scores[:, k]).round(5).tolist() for k, c in enumerate(cohorts["columns"])},
    }


def fit_interval_calibration(
    model,
    shift: float | None = None,
    content_shift: float = CONTENT_SHIFT,
    unknown_content_shift: float | None = None,
    seed: int | None = None,
    unknown_share: float | str | None = None,
) -> dict:
    """Calibrate the intervals of a trained model (see the module docstring); returns what
    :attr:`DECODE.interval_calibration_` holds: the platform shift, how it was found, the content shift (in absolute
    mode also the unknown material's), and per column the sorted conformal scores. A given ``shift`` replaces the one
    matched to the bulk (step 1), as the benchmark's ``interval_shift`` diagnosis does; ``content_shift=0`` assumes
    every label carries the same amount per cell in the bulk as in the reference; ``unknown_content_shift`` (default:
    ``content_shift``) is the unknown material's. Every draw comes from streams of ``seed`` (default: the current
    seed, ``scvi.settings.seed``), so a calibration repeats whenever it runs. ``unknown_share`` is the largest share
    of material the reference lacks in the cohorts (see :func:`calibration_cohorts`): in relative mode a share or
    ``"auto"`` (default none), in absolute mode a share (default: :data:`ABSOLUTE_UNKNOWN_SHARE`, or the unknown
    head's reach if larger)."""
    for name, value in (("content_shift", content_shift), ("unknown_content_shift", unknown_content_shift)):
        if value is not None and value < 0:
            raise ValueError(f"{name} must be >= 0, got {value!r}.")
    check_unknown_share(model, unknown_share)
    cohorts = calibration_cohorts(model, shift, seed, unknown_share)
    calibration = conformal_scores(cohorts, content_shift, unknown_content_shift, seed)
    logger.info(
        f"Intervals calibrated on {calibration['n_samples']} held-out pseudo-tissues, platform shift "
        f"{calibration['shift']:.2f} ({calibration['shift_from']}), content shift {content_shift:.2f}."
    )
    return calibration


def conformal_quantile(scores: list[float], level: float) -> float:
    """The split-conformal quantile of sorted ``scores`` at ``level`` (the ``ceil((n + 1) level)``-th smallest)."""
    n = len(scores)
    rank = int(np.ceil((n + 1) * level))
    return float(scores[min(rank, n) - 1])


def intervals(
    calibration: dict, members: np.ndarray, columns: list, level: float, unexplained: np.ndarray | None = None
) -> tuple[np.ndarray, ...]:
    """``estimate, lower, upper`` (samples x columns) from every member's fractions and the calibration; a
    calibration with an ``unexplained_weight`` above 0 needs each sample's ``unexplained`` share."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level!r}.")
    weight = calibration.get("unexplained_weight", 0.0)
    if weight and unexplained is None:
        raise ValueError(
            "This calibration widens each sample's interval by its unexplained share: pass unexplained= "
            "(DECODE.get_unexplained() of the same samples)."
        )
    estimate, spread = summarise(members)
    width = scale(estimate, spread, calibration.get("floor", 0.0), unexplained, weight)
    q = np.array([conformal_quantile(calibration["scores"][str(c)], level) for c in columns])
    return estimate, np.clip(estimate - q * width, 0, 1), np.clip(estimate + q * width, 0, 1)


def interval_frames(estimate, lower, upper, index, columns) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The three arrays as DataFrames."""
    return tuple(pd.DataFrame(a, index=index, columns=columns) for a in (estimate, lower, upper))
