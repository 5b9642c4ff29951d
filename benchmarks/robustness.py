"""Robustness suite: missing material and damaged measurements on every omics layer (scenario ``robustness``).

    python -m benchmarks run --scenarios robustness --methods DECODE,NNLS,dtangle --seeds 3 --jobs 1

One representative task per layer is the *base*, with its full reference: real PBMC bulk against flow cytometry
(GSE107011 and GSE107572), CellBench pure-RNA mixtures (CEL-seq2), murine single-cell proteomics in both directions,
the bone-marrow metabolomics protocol, kidney cell lines (replicate 1 held out) and T-SCP cell-cycle stages, each
built by its own scenario in :mod:`benchmarks.scenarios`. From each base the suite derives

- **missing material** (absolute mode, except on proteomics values read as stored, which have no linear scale and
  so no unknown share: relative mode there; truth = every label, the left-out ones summed into ``unknown``): the
  reference without the most abundant label of the base truth (mean over samples; ties by name); on the real PBMC
  cohorts also without the least abundant one and without the two most abundant (together 55-60 % of these
  samples); and a *majority-absent* task in which the left-out material is 50-80 % of every sample: on the
  simulated layers, new mixtures of the base's held-out cells with the left-out labels' share drawn from
  U(0.5, 0.8) (the two most abundant labels where the layer has four or more, else the most abundant, since a
  reference needs two labels), on CellBench the real wells whose design holds the left-out line at 50-80 % (68 %);
- **damaged measurements** (the base's mode and full reference): the base bulk with multiplicative noise
  U(0.9, 1.1) per value and with 10 % of its features deleted, as the ``noise`` scenario perturbs them (seed 0).

Why these labels: on real bulk, abundance decides how much material goes missing, so the most and least abundant
labels bound it; on the simulated layers every label's expected share is equal, so the order by realised mean share
is a fixed, seeded but otherwise arbitrary choice. Leaving two of three labels out would leave a one-label reference
(no known-label score), so the three-label layers (CellBench, proteomics) have no leave-two-out task.

The known labels are scored renormalised over themselves (``benchmarks.__main__.score``), and in absolute mode the
``unknown`` share is scored against the truth (RMSE). ``BENCHMARKS_ROBUSTNESS_LAYERS`` (comma-separated keys of
:data:`LAYERS` or layer names) restricts a run to some layers and ``BENCHMARKS_ROBUSTNESS_TASKS`` (a regular
expression) to some tasks; the job records which tasks ran.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from anndata import AnnData

import decode_omics as dco

from .scenarios import (
    Task,
    _bone_marrow_split,
    _halves,
    _perturb,
    _proteomics_directions,
    bone_marrow,
    cellbench,
    kidney,
    pbmc_real,
    proteomics,
    tscp_states,
)

SCENARIO = "robustness"
#: Environment variable restricting the suite to some layers (comma-separated keys of :data:`LAYERS`).
LAYERS_ENV = "BENCHMARKS_ROBUSTNESS_LAYERS"
#: Environment variable restricting the suite to the tasks whose name a regular expression matches.
TASKS_ENV = "BENCHMARKS_ROBUSTNESS_TASKS"
#: Name of the base task (full reference, unperturbed) within a layer.
BASE = "full reference"
#: The damaged measurements (a subset of ``scenarios.PERTURBATIONS``, applied by ``scenarios._perturb``).
DAMAGE = ("noise U(0.9, 1.1)", "10% features deleted")
#: Share of every sample that is left-out material in the majority-absent tasks.
MAJORITY_SHARE = (0.5, 0.8)


@dataclass
class Layer:
    """One omics layer's base task and how to mix majority-absent samples for it.

    Attributes
    ----------
    name
        Display name, the prefix of every task name of the layer.
    base
        The base task (full reference, unperturbed), as its scenario builds it.
    real
        Whether the bulk is real (its compositions are not drawn by the benchmark).
    pool
        Held-out cells (never in the reference) to mix majority-absent samples from; ``None`` for real bulk.
    simulate
        Keyword arguments of :func:`decode_omics.pp.simulate_pseudobulk` for those samples (the base's own settings,
        with ``cells_per_sample`` chosen so that 50 % and 80 % are whole cells).
    """

    name: str
    base: Task
    real: bool = False
    pool: AnnData | None = None
    simulate: dict = field(default_factory=dict)


def _pbmc() -> list[Layer]:
    return [Layer(t.name, t, real=True) for t in pbmc_real()]


def _cellbench() -> list[Layer]:
    return [Layer("CellBench CEL-seq2", cellbench()[0], real=True)]


def _proteomics() -> list[Layer]:
    kwargs = {"n_samples": 200, "cells_per_sample": 20, "fractions": "uniform", "scale": "as_is", "random_state": 0}
    return [
        Layer(task.name, task, pool=query, simulate={"labels_key": "cell_type"} | kwargs)
        for task, (_, query, _) in zip(proteomics(), _proteomics_directions(), strict=True)
    ]


def _bone_marrow() -> list[Layer]:
    _, test, _ = _bone_marrow_split()
    kwargs = {"n_samples": 500, "cells_per_sample": 30, "fractions": "uniform", "scale": "linear", "random_state": 42}
    return [Layer("bone marrow", bone_marrow()[0], pool=test, simulate={"labels_key": "cell_type"} | kwargs)]


def _kidney() -> list[Layer]:
    base = kidney()[0]  # replicate 1 held out
    adata = dco.datasets.kidney_metabolomics(include_qc=False)
    held = adata[(adata.obs["biological_replicate"] == 1).to_numpy()].copy()
    kwargs = {"n_samples": 200, "cells_per_sample": 20, "fractions": "dirichlet", "scale": "linear", "random_state": 1}
    return [Layer("kidney rep1", base, pool=held, simulate={"labels_key": "cell_line"} | kwargs)]


def _tscp() -> list[Layer]:
    _, query = _halves(dco.datasets.tscp_cellcycle(), "stage")
    kwargs = {"n_samples": 200, "cells_per_sample": 50, "fractions": "dirichlet", "scale": "log1p", "random_state": 0}
    return [Layer("T-SCP", tscp_states()[0], pool=query, simulate={"labels_key": "stage"} | kwargs)]


#: Layer key -> builder of its layers (the PBMC and proteomics keys give two each).
LAYERS: dict[str, Callable[[], list[Layer]]] = {
    "pbmc_real": _pbmc,
    "cellbench": _cellbench,
    "proteomics": _proteomics,
    "bone_marrow": _bone_marrow,
    "kidney": _kidney,
    "tscp_states": _tscp,
}


def by_abundance(truth: pd.DataFrame) -> list[str]:
    """Labels from the most to the least abundant (mean share over samples; ties by name)."""
    mean = truth.mean()
    return sorted(mean.index, key=lambda label: (-mean[label], label))


def without(reference: AnnData, labels_key: str, labels: list[str]) -> AnnData:
    """The reference's cells of every label but ``labels`` (the label column's unused categories dropped)."""
    keep = ~reference.obs[labels_key].astype(str).isin(labels).to_numpy()
    out = reference[keep].copy()
    out.obs[labels_key] = out.obs[labels_key].astype(str).astype("category")
    return out


def fold_unknown(truth: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """The truth with ``labels`` summed into one ``unknown`` column (rows still sum to what they summed to)."""
    return truth.drop(columns=labels).assign(unknown=truth[labels].sum(axis=1))


def _task(layer: Layer, what: str, reference: AnnData, bulk: AnnData, truth: pd.DataFrame, mode: str) -> Task:
    base = layer.base
    return Task(SCENARIO, f"{layer.name}: {what}", reference, base.labels_key, bulk, truth, mode, scale=base.scale)


def leave_out_mode(base: Task) -> str:
    """``"absolute"``, so that the ``unknown`` share is estimated and scored, except for values read as stored
    (``scale="as_is"``, the proteomics log-ratios and z-scores): they have no linear scale, so no share of abundance,
    and DECODE refuses absolute mode on them; those tasks run in relative mode and score the known labels only."""
    return "relative" if base.scale == "as_is" else "absolute"


def leave_out(layer: Layer, labels: list[str]) -> Task:
    """The base bulk against the reference without ``labels``, in absolute mode; named with their mean share.

    Samples made of the left-out material alone (CellBench's pure wells) are dropped: they have no known label to
    score after renormalising.
    """
    base = layer.base
    rows = (base.truth.drop(columns=labels).sum(axis=1) > 0).to_numpy()
    truth = fold_unknown(base.truth.loc[rows], labels)
    what = f"{', '.join(labels)} left out (mean {truth['unknown'].mean():.0%})"
    bulk = base.bulk if rows.all() else base.bulk[rows].copy()
    return _task(layer, what, without(base.reference, base.labels_key, labels), bulk, truth, leave_out_mode(base))


def majority_absent(layer: Layer, labels: list[str]) -> Task:
    """Left-out material making 50-80 % of every sample, in absolute mode.

    Simulated layers: new mixtures of the layer's held-out cells, the ``labels``' cells set aside as unknown material
    with a share drawn from U(0.5, 0.8) per sample. Real layers: the base samples whose truth holds ``labels`` at
    50-80 %.
    """
    base = layer.base
    lo, hi = MAJORITY_SHARE
    what = f"{', '.join(labels)} left out ({lo * 100:.0f}-{hi * 100:.0f} %)"
    if layer.pool is None:
        share = base.truth[labels].sum(axis=1)
        rows = share.between(lo, hi).to_numpy()
        bulk, truth = base.bulk[rows].copy(), fold_unknown(base.truth.loc[rows], labels)
        shares = ", ".join(f"{v:.0f}" for v in np.unique(np.round(share[rows] * 100)))
        what = f"{', '.join(labels)} left out (its {shares} % wells)"
    else:
        kwargs = dict(layer.simulate)
        labels_key = kwargs.pop("labels_key")
        bulk = dco.pp.simulate_pseudobulk(
            layer.pool, labels_key, unknown=labels, unknown_fraction=MAJORITY_SHARE, unknown_column=True, **kwargs
        )
        truth = bulk.obsm["fractions"]
    return _task(layer, what, without(base.reference, base.labels_key, labels), bulk, truth, leave_out_mode(base))


def damaged(layer: Layer, how: str) -> Task:
    """The base task with its bulk perturbed by ``scenarios._perturb`` (seed 0): full reference, the base's mode."""
    base = layer.base
    return _task(layer, how, base.reference, _perturb(base.bulk, how), base.truth, base.mode)


def layer_tasks(layer: Layer) -> list[Task]:
    """Every task of one layer: the base, its missing-material tasks, its damaged-measurement tasks."""
    base = layer.base
    order = by_abundance(base.truth)
    tasks = [_task(layer, BASE, base.reference, base.bulk, base.truth, base.mode), leave_out(layer, order[:1])]
    if layer.real and len(order) >= 4:
        tasks += [leave_out(layer, order[-1:]), leave_out(layer, order[:2])]
    if layer.pool is not None or len(order) < 4:
        tasks.append(majority_absent(layer, order[:2] if len(order) >= 4 else order[:1]))
    return tasks + [damaged(layer, how) for how in DAMAGE]


def robustness() -> list[Task]:
    """The suite's tasks, layer by layer: all layers, or those ``$BENCHMARKS_ROBUSTNESS_LAYERS`` names (keys of
    :data:`LAYERS` or layers' display names such as ``GSE107572``), in the order of :data:`LAYERS`; of these, the
    tasks whose name the regular expression ``$BENCHMARKS_ROBUSTNESS_TASKS`` matches (all when unset)."""
    chosen = {k.strip() for k in os.environ.get(LAYERS_ENV, "").split(",") if k.strip()} or set(LAYERS)
    names = chosen - set(LAYERS)
    layers = [layer for key in LAYERS if key in chosen or names for layer in LAYERS[key]()]
    layers = [layer for key, layer in zip(_keys(layers), layers, strict=True) if key in chosen or layer.name in names]
    unknown = sorted(names - {layer.name for layer in layers})
    if unknown:
        raise ValueError(f"${LAYERS_ENV}: unknown layers {unknown}; choose from {list(LAYERS)} or layer names.")
    pattern = re.compile(os.environ.get(TASKS_ENV, ""))
    return [task for layer in layers for task in layer_tasks(layer) if pattern.search(task.name)]


def _keys(layers: list[Layer]) -> list[str]:
    """The :data:`LAYERS` key of each layer (the scenario its base task comes from)."""
    return [layer.base.scenario for layer in layers]


# ----------------------------------------------------------------------------------------------------------------------
# The benchmark page's section


def split_name(task: str) -> tuple[str, str]:
    """``"<layer>: <what>"`` -> (layer, what)."""
    layer, _, what = task.partition(": ")
    return layer, what


def _per_seed(d: pd.DataFrame, task: str, method: str, column: str = "ccc") -> pd.Series:
    v = d[(d["task"] == task) & (d["method"] == method)].set_index("seed")[column]
    return v.dropna().sort_index()


def _cell(v: pd.Series, worst: str = "min", why: str = "not run") -> str:
    """mean ± sd (worst seed; n seeds) or the single value (1 seed); ``why`` where there is none."""
    if v.empty:
        return why
    if len(v) == 1:
        return f"{v.iloc[0]:.3f} (1)"
    w = v.min() if worst == "min" else v.max()
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f} (worst {w:.3f}; {len(v)})"


def _why(d: pd.DataFrame, task: str, method: str) -> str:
    """*n/a* where the method's job ran and could not run the task (its reason is listed under the tables), else
    *not run*."""
    if "note" in d and d.loc[(d["task"] == task) & (d["method"] == method), "note"].notna().any():
        return "n/a"
    return "not run"


def _notes(d: pd.DataFrame) -> list[str]:
    """One line per method and reason it could not run a task."""
    if "note" not in d:
        return []
    notes = d[d["note"].notna()].drop_duplicates(["method", "note"])
    return [f"- *n/a*: {r.note}" for r in notes.itertuples()]


def _verdict(means: dict[str, float]) -> str:
    """Where DECODE stands against NNLS and the best other method (by the mean over seeds)."""
    dec = means.get("DECODE", np.nan)
    others = {m: v for m, v in means.items() if m != "DECODE" and np.isfinite(v)}
    if not np.isfinite(dec) or not others:
        return ""
    best = max(others, key=others.get)
    marks = []
    if np.isfinite(means.get("NNLS", np.nan)) and dec < means["NNLS"]:
        marks.append("**below NNLS**")
    if dec < others[best] and best != "NNLS":
        marks.append(f"**below {best}**")
    return ", ".join(marks) or "best"


def _seeds_text(d: pd.DataFrame) -> str:
    """Per method, each seed run and on how many tasks it has a score."""
    scored = d[d["ccc"].notna() | d["unknown_rmse"].notna()]
    parts = []
    for method, g in scored.groupby("method", sort=False):
        n_tasks = g.groupby("seed")["task"].nunique().sort_index()
        parts.append(f"{method} " + ", ".join(f"seed {seed} ({n} tasks)" for seed, n in n_tasks.items()))
    return "; ".join(parts)


def _provenance_text(d: pd.DataFrame) -> str:
    """The commits (and package sources) the suite's jobs recorded."""
    if "commit" not in d or d["commit"].isna().all():
        return "The jobs recorded no commit."
    d = d.assign(source=d["package_source"] if "package_source" in d else "")
    parts = []
    for (method, seed), g in d.groupby(["method", "seed"], sort=False):
        runs = g.drop_duplicates(["commit", "source"])
        parts.append(
            f"{method} seed {seed}: "
            + ", ".join(
                f"commit {str(r.commit)[:10]}" + (f" ({r.source})" if isinstance(r.source, str) and r.source else "")
                for r in runs.itertuples()
            )
        )
    return "Jobs: " + "; ".join(parts) + "."


def report_lines(scores: pd.DataFrame) -> list[str]:
    """The benchmark page's section on the robustness suite (empty without its rows).

    Parameters
    ----------
    scores
        The benchmark's scores (one row per scenario x task x method x seed, with ``ccc`` and ``unknown_rmse``);
        only the ``robustness`` rows are read.

    Returns
    -------
    Markdown lines: the missing-material table (known-label pooled CCC per method, DECODE's ``unknown`` RMSE, the
    change from the full reference) and the damaged-measurement table (CCC and cost against the base task).
    """
    d = scores[scores["scenario"] == SCENARIO].copy()
    if d.empty:
        return []
    if "unknown_rmse" not in d:
        d["unknown_rmse"] = np.nan
    methods = list(dict.fromkeys(["DECODE", "NNLS", *d["method"].unique()]))
    methods = [m for m in methods if m in set(d["method"])]
    # the suite's order, from the method with most tasks (NNLS on a tie: its one job runs the suite in order)
    counts = d.groupby("method")["task"].nunique()
    widest = max(counts.index, key=lambda m: (counts[m], m == "NNLS"))
    tasks = list(dict.fromkeys([*d.loc[d["method"] == widest, "task"], *d["task"]]))
    only_seed_0 = set(d["seed"].unique()) <= {0}
    lines = [
        "",
        "## Robustness: missing material and damaged measurements (scenario `robustness`)",
        "",
        "A development suite (`benchmarks/robustness.py`, public data only): per omics layer one base task with its",
        "full reference; the reference without labels the bulk holds (truth: every label, the left-out ones summed",
        "into `unknown`; the task name gives the left-out labels and their mean share of the samples), including",
        "samples where the absent material is 50-80 %; and the base bulk damaged (multiplicative noise U(0.9, 1.1) per",
        "value; 10 % of the features deleted). The leave-out tasks run in absolute mode, except on proteomics: DECODE",
        "refuses absolute mode on values read as stored, which have no linear scale and so no unknown share. Known",
        "labels are scored by pooled CCC after renormalising estimate and truth over them; `unknown` RMSE is DECODE's",
        "absolute-mode share against the truth (NNLS and dtangle estimate relative fractions only). Like every DECODE",
        "figure on this page these are transductive: DECODE sees the unlabelled bulk it is scored on. DECODE's",
        "absolute mode trains on unknown shares of U(0, 0.5), so the 50-80 % tasks lie outside its training draws",
        "(its intervals are calibrated on shares up to 0.8 since 2026-12-08).",
        "Left out: each layer's most abundant label (mean share in the truth); on the real PBMC cohorts also the least",
        "abundant and the two most abundant; in the 50-80 % tasks the two most abundant where a layer has four or more",
        "labels. On the simulated layers every label's expected share is equal, so there the order is fixed but",
        "arbitrary.",
        "",
        "Seeds run: " + _seeds_text(d) + "." + (" **Only seed 0 ran**: one run per cell." if only_seed_0 else ""),
        "Cells: mean ± sd over seeds (worst seed; seeds), or the single run (1). " + _provenance_text(d),
        "",
        "### Missing material",
        "",
        "| task | "
        + " | ".join(f"{m} CCC" for m in methods)
        + " | DECODE vs others | DECODE unknown RMSE | DECODE CCC change from full reference |",
        "|---|" + "---|" * (len(methods) + 3),
    ]
    for task in tasks:
        layer, what = split_name(task)
        if what in DAMAGE:
            continue
        per = {m: _per_seed(d, task, m) for m in methods}
        means = {m: float(v.mean()) if not v.empty else np.nan for m, v in per.items()}
        unknown = _per_seed(d, task, "DECODE", "unknown_rmse")
        change = ""
        if what != BASE:
            base = _per_seed(d, f"{layer}: {BASE}", "DECODE")
            paired = (per["DECODE"] - base).dropna() if "DECODE" in per else pd.Series(dtype=float)
            change = f"{paired.mean():+.3f}" if not paired.empty else ""
        cells = [_cell(per[m], why=_why(d, task, m)) for m in methods]
        lines.append(
            f"| {task} | "
            + " | ".join(cells)
            + f" | {_verdict(means)} | {_cell(unknown, 'max') if not unknown.empty else ''} | {change} |"
        )
    lines += [
        *(["", *_notes(d)] if _notes(d) else []),
        "",
        "In the CellBench 50-80 % task (the wells whose design holds the left-out line at 68 %) the two known lines",
        "are at 16 % each in every well, so their renormalised truth is constant and the known-label CCC is not",
        "informative there; its `unknown` RMSE is.",
        "",
        "On the proteomics leave-out tasks DECODE trains, since 2026-12-06, on the material the reference's",
        "centring implies it lacks, and since 2026-12-07 on that material at amounts that vary per sample (method",
        "page, *Training on the material the centring implies*; before 2026-12-06: 0.170, 0.081, 0.748 and 0.458;",
        "until 2026-12-07: 0.446, 0.322, 0.877 and 0.830). Where it still falls below NNLS (N2 -> nanoPOTS, RAW",
        "35 %), the fractions are not",
        "silent: `tl.deconvolve` finds 54 % and 60 % of the samples (RAW left out, mean 35 %) outside every",
        "non-negative mix of the known lines' profiles and warns, naming them (method page, *What the check sees",
        "there*); with the full references neither runs (their profiles cancel).",
        *_anchored_lines(),
        "",
        "### Damaged measurements",
        "",
        "Pooled CCC on the damaged bulk and, in brackets, its cost: the change from the same method and seed on the",
        "undamaged base task (mean over the seeds both have). Every seed reads one draw of the damage (deletion",
        "seed 0). The cost of deleting genes depends on which genes the draw takes; other draws, measured outside",
        "the benchmark, are on the method page (*Which genes are lost, and what replaces them*).",
        "",
        "| layer | damage | " + " | ".join(methods) + " | DECODE vs others |",
        "|---|---|" + "---|" * (len(methods) + 1),
    ]
    for task in tasks:
        layer, what = split_name(task)
        if what not in DAMAGE:
            continue
        cells, means = [], {}
        for m in methods:
            v = _per_seed(d, task, m)
            cost = (v - _per_seed(d, f"{layer}: {BASE}", m)).dropna()
            means[m] = float(v.mean()) if not v.empty else np.nan
            cost_text = f" ({cost.mean():+.3f})" if not cost.empty else ""
            cells.append(_why(d, task, m) if v.empty else f"{v.mean():.3f}{cost_text}")
        lines.append(f"| {layer} | {what} | " + " | ".join(cells) + f" | {_verdict(means)} |")
    from .unknown_share import report_lines as reach_lines

    return lines + reach_lines() + _diagnosis_lines(scores) + _default_check_lines() + _excess_check_lines()


#: Column heads of the anchored table (the sources of ``benchmarks.anchored_gains``).
_ANCHORED_HEADS = {
    "default": "DECODE, defaults",
    "anchored": "DECODE, anchored on 5",
    "every sample's flow": "DECODE, gains from every sample's flow",
    "cohort's mean": "DECODE, anchored on the cohort's mean",
    "other cohort's mean": "DECODE, anchored on the other cohort's mean",
    "NNLS (same samples)": "NNLS",
    "dtangle (same samples)": "dtangle",
}


def _anchored_lines() -> list[str]:
    """The leave-out cohorts of ``benchmarks.anchored_gains`` (gains anchored on five samples' measured fractions;
    empty where they did not run): DECODE's default and anchored estimates beside NNLS and dtangle on the same
    unmeasured samples."""
    from . import anchored_gains as ag

    if not ag.RESULTS.exists():
        return []
    results = pd.read_csv(ag.RESULTS)
    results = results[results["cohort"].isin(list(ag.LEAVE_OUT))]
    if results.empty:
        return []
    peers = pd.read_csv(ag.PEER_RESULTS) if ag.PEER_RESULTS.exists() else None
    table = ag.summary(ag.with_peers(results, peers))
    lines = [
        "",
        "**With cell fractions measured on five samples** (opt-in: `tl.deconvolve(measured_key=...)`; method page,",
        "*Gains anchored where the reference lacks material*; `python -m benchmarks.anchored_gains --cohorts ...`).",
        "Where the reference lacks labels the bulk holds, DECODE's default split of the known labels on real PBMC",
        "bulk is wrong mostly because its platform gains, fitted from its own first estimates, keep their error",
        "(*gains from every sample's flow*, a diagnosis no user has, bounds what anchoring can reach). Anchored on",
        "the known labels' flow fractions of five samples (absolute mode, 3 seeds x 10 random draws), the *other*",
        "samples are scored, and NNLS and dtangle (which use no measured sample) on the same samples. Pooled CCC of",
        "the known labels (worst seed). *Anchored on the cohort's mean*: no sample measured, only the cohort's",
        "average composition of the known labels (`tl.deconvolve(mean_fractions=...)`; here the flow mean of all",
        "its samples); *the other cohort's mean*: the other real PBMC cohort's flow mean, a stand-in for a published",
        "composition that misses this cohort's by up to 0.14 per label:",
        "",
        "| cohort | " + " | ".join(_ANCHORED_HEADS.get(h, h) for h in table["gains from"].unique()) + " |",
        "|---|" + "---|" * table["gains from"].nunique(),
    ]
    for cohort, g in table.groupby("cohort", sort=False):
        cells = [f"{r['CCC (unmeasured samples)']:.3f} ({r['worst seed']:.3f})" for _, r in g.iterrows()]
        lines.append(f"| {cohort} | " + " | ".join(cells) + " |")
    return lines


def _default_check_lines() -> list[str]:
    """The tracked table of ``benchmarks.unexplained_check``: what ``tl.deconvolve``'s default check of unexplained
    material names on the suite's tasks (empty where it was not written)."""
    from . import unexplained_check as check

    if not check.RESULTS.exists():
        return []
    from decode_omics.model._calibration import UNEXPLAINED_MAX_FIT, UNEXPLAINED_WARNING

    lines = [
        "",
        "### What `tl.deconvolve`'s default check names (relative mode)",
        "",
        "`tl.deconvolve` runs relative mode by default and names, in a warning, the samples whose unexplained share",
        f"(the unknown head's reading) exceeds {UNEXPLAINED_WARNING}, unless the bulk's median reference fit exceeds",
        f"{UNEXPLAINED_MAX_FIT} (not checked). The missing-material rows above read absolute mode's `unknown` share;",
        "here the default model on the same tasks (`python -m benchmarks.unexplained_check`; method page, *What",
        "`tl.deconvolve`'s default check sees*). Transductive, as every DECODE figure. A sample not named is no",
        "evidence that the reference explains it.",
        "",
        "| task | missing share (truth, median) | unexplained share, median per seed | samples named, per seed | RMSE, "
        "mean (worst) |",
        "|---|---|---|---|---|",
    ]
    for _, row in check.table(check.RESULTS).iterrows():
        fit = row["median reference fit"]
        named = row["samples named (per seed)"] if fit <= UNEXPLAINED_MAX_FIT else f"not checked (fit {fit:.1f})"
        cells = [row["task"], f"{row['missing share (truth, median)']:.2f}", row["unexplained, median per seed"]]
        lines.append("| " + " | ".join([*cells, named, row["RMSE (mean; worst)"]]) + " |")
    return lines


def _excess_check_lines() -> list[str]:
    """The tracked table of ``benchmarks.excess_check`` on the suite's tasks: what ``tl.deconvolve``'s excess-share
    check names (no training; empty where it was not written)."""
    from . import excess_check as check

    if not check.RESULTS.exists():
        return []
    from decode_omics.model._excess_check import EXCESS_RATIO, EXCESS_WARNING

    rows = pd.read_csv(check.RESULTS)
    rows = rows[rows["scenario"] == SCENARIO]
    if rows.empty:
        return []
    lines = [
        "",
        "### What `tl.deconvolve`'s excess-share check names",
        "",
        f"Per sample, what it holds beyond {EXCESS_RATIO:g} times the largest label's share on the features most",
        "samples hold beyond that: a lower bound on the share no mix of the reference's labels explains",
        f"(`obs['decode_excess_share']`). Where the bulk's median reaches {EXCESS_WARNING}, a warning names the",
        'samples at or above it and the features that carry it, and the default `max_feature_excess="auto"` leaves',
        "those features out before training (*left out*); *then* is the median the model's own check reads on the",
        "features it keeps (a second pass would start from it). No training, no seed",
        "(`python -m benchmarks.excess_check`;",
        "every benchmark task on the method page, *The excess-share check*).",
        "",
        "| task | missing share (truth, median) | excess share, median [10-90 %] | samples named | left out | then | r "
        "| carried by |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for _, row in rows.iterrows():
        carriers = ", ".join(str(row["carriers"]).split()[:4]) if isinstance(row["carriers"], str) else "-"
        r = "-" if pd.isna(row["pearson"]) else f"{row['pearson']:+.2f}"
        share = f"{row['median']:.3f} [{row['q10']:.3f}, {row['q90']:.3f}]"
        left_out = int(row.get("left_out_by_auto", 0) or 0)
        after = row.get("median_after_auto", np.nan)
        then = "-" if pd.isna(after) else f"{after:.3f}"
        cells = [row["task"], f"{row['truth_median']:.2f}", share, f"{row['named']:.0%}", str(left_out), then, r]
        cells.append(carriers)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _diagnosis_lines(scores: pd.DataFrame) -> list[str]:
    """What the data allow: the tracked tables of ``benchmarks.identifiability`` and ``benchmarks.damage_oracle``
    (no training; empty where neither was written) beside DECODE's figures on this page."""
    from .damage_oracle import RESULTS as DAMAGE_ORACLE
    from .identifiability import RESULTS as IDENTIFIABILITY

    if not (IDENTIFIABILITY.exists() or DAMAGE_ORACLE.exists()):
        return []
    lines = [
        "",
        "### What the data allow (diagnoses, no training)",
        "",
        "On the method page: *Can any method see the missing share?* and *How much the damage itself destroys*.",
    ]
    decode = scores[scores["method"] == "DECODE"]
    if IDENTIFIABILITY.exists():
        table = pd.read_csv(IDENTIFIABILITY).dropna(subset=["unknown_mean"])
        lines += [
            "",
            "Missing share, same platform (`python -m benchmarks.identifiability`): the best of three readings of",
            "each sample's misfit against the known labels, mapped to the share by a straight line **fitted on the",
            "truth** (an oracle), against reporting each cohort's true mean share (the truth's sd) and DECODE's",
            "`unknown` RMSE.",
            "",
            "| task | oracle line RMSE | truth sd | DECODE `unknown` RMSE |",
            "|---|---|---|---|",
        ]
        for row in table.itertuples():
            oracle = min(getattr(row, c) for c in table.columns if c.endswith("_oracle_rmse"))
            mine = _per_seed(decode, row.task, "DECODE", "unknown_rmse") if "unknown_rmse" in decode else pd.Series()
            lines.append(f"| {row.task} | {oracle:.3f} | {row.unknown_sd:.3f} | {_cell(mine, 'max')} |")
    if DAMAGE_ORACLE.exists():
        table = pd.read_csv(DAMAGE_ORACLE)
        d = decode[decode["scenario"] == SCENARIO]
        lines += [
            "",
            "Damage (`python -m benchmarks.damage_oracle`): the cost to a linear reader fitted on the damaged bulk's",
            "own truth, against DECODE's cost above (mean over seeds).",
            "",
            "| layer | damage | oracle's cost | DECODE's cost |",
            "|---|---|---|---|",
        ]
        for row in table.itertuples():
            cost = _per_seed(d, f"{row.layer}: {row.damage}", "DECODE") - _per_seed(d, f"{row.layer}: {BASE}", "DECODE")
            mine = f"{cost.dropna().mean():+.3f}" if not cost.dropna().empty else "not run"
            lines.append(f"| {row.layer} | {row.damage} | {row.cost:+.3f} | {mine} |")
    return lines
