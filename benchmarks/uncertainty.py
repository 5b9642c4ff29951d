"""Calibration of DECODE's intervals on the scenarios with truth, and the ensemble against one network.

    python -m benchmarks.uncertainty run --scenarios pbmc_real kidney --seeds 0 1 2 [--jobs 2]
    python -m benchmarks.uncertainty run --scenarios robustness --seeds 0 --jobs 2   # about 80 min on 2 cores
    python -m benchmarks.uncertainty table          # rewrite the tracked table from the cached jobs

Each (scenario, seed) job fits, per task, ``DECODE(n_members=4)`` with the package's other defaults on the task's
reference and its bulk (transductive, as ``dco.tl.deconvolve`` does; no truth is used to fit or calibrate) in its own
process with one torch thread, and scores its central estimate and its intervals against the truth:

- ``ccc`` / ``rmse``: pooled, as the main benchmark scores (each side renormalised over the shared labels);
- ``coverage_<level>``: share of true values inside the intervals at that level (every sample x label);
- ``width_90``: mean width of the 90 % intervals;
- ``constant_width_90``: the mean width of intervals of one constant half-width around the same estimates (clipped
  to [0, 1]) whose coverage equals ours: an oracle baseline (it is fitted on the truth), so a method that is not
  wider than needed sits near it.

The robustness suite (``benchmarks.robustness``: the reference lacking one or two labels, the bulk damaged by noise
or lost features) runs one job per omics layer, so that ``--jobs`` spreads it; its base tasks (full reference,
unperturbed) are the other scenarios' tasks and are measured there.

``run --members 1`` scores one network the same way (same code, same calibration); where those rows are missing, one
network's figures come from ``results/scores.csv`` (the main benchmark's ``DECODE`` rows, same seeds).
Job results are cached in ``results/uncertainty_jobs/`` (git-ignored), with every fitted model (``models/``); the
tracked table is ``results/uncertainty.csv``; ``python -m benchmarks report`` puts its section and the reliability plot
on the benchmark page.

    python -m benchmarks.uncertainty rescore --scenarios kidney --seeds 0 1 2   # recalibrate the saved models

``rescore`` loads the saved models, calibrates their intervals again with the package as it is now (the calibration
runs after training, so changing it needs no new training) and rewrites their rows; each row records the commit that
trained it (``commit``) and the one that calibrated it (``calibrated_at``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import interval_cohorts, interval_content, interval_shift

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CACHE = RESULTS / "uncertainty_jobs"
MODELS = CACHE / "models"
TABLE = RESULTS / "uncertainty.csv"
#: The seed-spread benchmark's table (``python -m benchmarks.seed_spread``): the spread of each fraction over seeds.
SEED_SPREAD = RESULTS / "seed_spread.csv"
LEVELS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
MEMBERS = 4
#: How the ensemble's members are trained (recorded per row; rows without it predate the change to the members' sum,
#: under which Adam's coupled weight decay acted n_members times as strongly as on one network).
MEMBER_LOSS = "sum"
#: What the ensemble's members share (recorded per row): ``"own-draws"``, nothing random (own initial weights, input
#: scaling, and pseudo-tissues drawn apart, each draw with its own artificial noise cells; the package since
#: 2026-12-06); the older ensembles are described in :data:`OLDER_MEMBERS`.
MEMBER_DATA = "own-draws"
#: Rows of older ensembles, by their ``member_data`` (rows without it are ``"shared"``): how their members were trained.
OLDER_MEMBERS = {
    "shared": "every member trained on the same pseudo-tissue batches through one input transform",
    "own": (
        "each member trained on pseudo-tissues of its own, but rows of one draw per epoch, whose noisy views "
        "took their artificial noise cells from one set of 64 that every member shared (2026-12-05)"
    ),
}
#: Scenarios with truth, real cohorts first; the robustness suite last (issue 20's missing material and damage).
SCENARIOS = (
    "pbmc_real", "cellbench", "kidney", "bone_marrow", "proteomics", "unknown", "tscp_states", "cellmix", "robustness",
)  # fmt: skip
#: The suite whose jobs run one omics layer each (``benchmarks.robustness.LAYERS``; see the module docstring).
ROBUSTNESS = "robustness"


def _shared(estimate: pd.DataFrame, truth: pd.DataFrame) -> list:
    return [c for c in truth.columns if c in estimate.columns and (c != "unknown" or "unknown" in truth.columns)]


def constant_width(estimate: np.ndarray, truth: np.ndarray, coverage: float) -> float:
    """Mean width of intervals ``estimate +- h`` (clipped to [0, 1]) with the smallest ``h`` reaching ``coverage``."""
    if coverage <= 0:
        return 0.0
    h = float(np.quantile(np.abs(estimate - truth), coverage, method="higher"))
    return float((np.clip(estimate + h, 0, 1) - np.clip(estimate - h, 0, 1)).mean())


def score_intervals(model, task) -> dict:
    """Scores of one fitted model's estimate and intervals on a task (see the module docstring)."""
    from .__main__ import score

    row: dict = {}
    frames = {level: model.get_fractions(return_interval=True, level=level) for level in LEVELS}
    estimate = frames[0.9][0]
    row |= {k: v for k, v in score(estimate, task.truth).items() if k in ("ccc", "rmse", "unknown_rmse")}
    labels = _shared(estimate, task.truth)
    truth = task.truth.loc[:, labels]
    if "unknown" not in labels:  # relative fractions: scored against the known labels' split of the truth (where the
        known = truth.sum(axis=1)  # reference lacks material, as in the robustness suite, it is not in the estimate)
        truth = truth[known > 0].div(known[known > 0], axis=0)
    per_label = {}
    for level, (est, lower, upper) in frames.items():
        inside = (truth >= lower.loc[truth.index, labels]) & (truth <= upper.loc[truth.index, labels])
        row[f"coverage_{round(level * 100)}"] = float(inside.to_numpy().mean())
        if level == 0.9:
            per_label = {str(k): round(float(v), 3) for k, v in inside.mean().items()}
            width = (upper - lower).loc[truth.index, labels]
            row["width_90"] = float(width.to_numpy().mean())
            row["constant_width_90"] = constant_width(
                est.loc[truth.index, labels].to_numpy(), truth.to_numpy(), row["coverage_90"]
            )
            row["per_label_width_90"] = json.dumps({str(k): round(float(v), 3) for k, v in width.mean().items()})
    row["per_label_coverage_90"] = json.dumps(per_label)
    row["n_values"] = int(truth.size)
    cal = model.interval_calibration_
    row["shift"], row["shift_from"] = cal["shift"], cal["shift_from"]
    return row


def _commit() -> str:
    """The checkout's commit, with ``+`` when ``src/`` differs from it."""
    from .__main__ import _git

    head = _git("rev-parse", "--short=10", "HEAD") or "unknown"
    return head + ("+" if _git("status", "--porcelain", "--", "src") else "")


def model_dir(scenario: str, seed: int, members: int, task: str) -> Path:
    """Where a job saves the model it fitted on one task."""
    return MODELS / f"{scenario}__{seed}__m{members}" / re.sub(r"[^A-Za-z0-9]+", "_", task).strip("_")


def job_parts(scenario: str) -> list[str | None]:
    """The parts one (scenario, seed) runs in: the robustness suite's omics layers, else the whole scenario."""
    if scenario != ROBUSTNESS:
        return [None]
    from .robustness import LAYERS

    return list(LAYERS)


def job_path(scenario: str, seed: int, members: int, part: str | None = None) -> Path:
    """Where one job's rows are cached."""
    return CACHE / f"{scenario}__{seed}__m{members}{f'__{part}' if part else ''}.json"


def scenario_tasks(scenario: str) -> list:
    """The tasks a job measures: the scenario's, without the robustness suite's base tasks (the other scenarios'
    tasks: the same reference, bulk and mode) and, for the suite, of the layers ``$BENCHMARKS_ROBUSTNESS_LAYERS``
    names (all when unset)."""
    from .scenarios import SCENARIOS as BUILDERS

    tasks = BUILDERS[scenario]()
    if scenario == ROBUSTNESS:
        from .robustness import BASE, split_name

        tasks = [task for task in tasks if split_name(task.name)[1] != BASE]
    return tasks


def job(scenario: str, seed: int, members: int, out: Path, refit: bool = True) -> None:
    """Every task of one scenario with one seed, in this process: fit (and save) each model, or with
    ``refit=False`` load the saved one and calibrate its intervals again."""
    import scvi
    import torch

    from decode_omics._engine.adata import lightweight
    from decode_omics.model import DECODE
    from decode_omics.model._intervals import fit_interval_calibration

    torch.set_num_threads(1)
    before = {r["task"]: r for r in json.loads(out.read_text())} if not refit else {}
    commit, rows = _commit(), []
    for task in scenario_tasks(scenario):
        path = model_dir(scenario, seed, members, task.name)
        if not refit and not path.is_dir():  # no saved model of this task: its row stays as it was
            rows += [before[task.name]] if task.name in before else []
            print(f"{scenario} / {task.name} / seed {seed}: no saved model, row kept", flush=True)
            continue
        start = time.perf_counter()
        scvi.settings.seed = seed
        ref = lightweight(task.reference, None, task.labels_key)
        bulk = lightweight(task.bulk, None)
        DECODE.setup_anndata(ref, labels_key=task.labels_key, scale=task.scale)
        DECODE.setup_anndata(bulk, scale=task.scale)
        if refit:
            model = DECODE(ref, bulk, mode=task.mode, n_members=members)
            model.train(enable_progress_bar=False)
            seconds = time.perf_counter() - start
            model.save(path, overwrite=True)
            row = {"seconds": seconds, "commit": commit}
        else:
            model = DECODE.load(path, reference=ref, bulk=bulk)
            model.interval_calibration_ = fit_interval_calibration(model)
            row = {k: before[task.name][k] for k in ("seconds", "commit") if k in before.get(task.name, {})}
        row = {"scenario": scenario, "task": task.name, "seed": seed, "n_members": members} | row
        row["member_loss"] = MEMBER_LOSS
        if refit:
            row["member_data"] = MEMBER_DATA
        elif "member_data" in before.get(task.name, {}):
            row["member_data"] = before[task.name]["member_data"]
        rows.append(row | score_intervals(model, task) | {"threads": 1, "calibrated_at": commit})
        r = rows[-1]
        print(f"{scenario} / {task.name} / seed {seed}: ccc {r['ccc']:.3f}, coverage_90 {r['coverage_90']:.2f}, "
              f"width {r['width_90']:.3f}, shift {r['shift']:.2f}", flush=True)  # fmt: skip
    out.write_text(json.dumps(rows))


def table() -> pd.DataFrame:
    """The tracked table from the cached jobs (rows of jobs not cached here are kept from the table)."""
    cached = [pd.DataFrame(json.loads(p.read_text())) for p in sorted(CACHE.glob("*.json"))]
    new = pd.concat(cached, ignore_index=True) if cached else pd.DataFrame()
    old = pd.read_csv(TABLE, float_precision="round_trip") if TABLE.exists() else pd.DataFrame()
    if len(old) and len(new):  # a cached row replaces the table's row of the same task, seed and ensemble size
        columns = ["scenario", "task", "seed", "n_members"]
        keys = set(new[columns].itertuples(index=False, name=None))
        old = old[[key not in keys for key in old[columns].itertuples(index=False, name=None)]]
    out = pd.concat([old, new], ignore_index=True).sort_values(["scenario", "task", "seed"])
    out.to_csv(TABLE, index=False)
    return out


def run(scenarios, seeds, members: int, n_jobs: int, rerun: bool, refit: bool = True) -> None:
    """Run the jobs (``n_jobs`` at a time, each in its own process) and rewrite the table. With ``refit=False``,
    every cached job whose models were saved is calibrated and scored again instead."""
    CACHE.mkdir(parents=True, exist_ok=True)
    from .robustness import LAYERS_ENV

    todo = []
    for scenario in scenarios:  # scenario by scenario, so an interrupted run leaves whole scenarios done
        for seed in seeds:
            for part in job_parts(scenario):
                out = job_path(scenario, seed, members, part)
                if not refit:
                    if out.exists() and (MODELS / f"{scenario}__{seed}__m{members}").is_dir():
                        todo.append((scenario, seed, part, out))
                elif rerun or not out.exists():
                    todo.append((scenario, seed, part, out))
    running: list = []
    while todo or running:
        while todo and len(running) < n_jobs:
            scenario, seed, part, out = todo.pop(0)
            argv = [sys.executable, "-m", "benchmarks.uncertainty", "job", scenario, str(seed), str(members), str(out)]
            env = os.environ | ({LAYERS_ENV: part} if part else {})
            running.append(subprocess.Popen([*argv, "--rescore"] if not refit else argv, cwd=HERE.parent, env=env))
        time.sleep(2)
        running = [p for p in running if p.poll() is None]
    table()


def _single_network(
    table_: pd.DataFrame, scores: pd.DataFrame, scenario: str, task: str, seeds
) -> tuple[pd.Series, str]:
    """One network's CCC per seed, and where it comes from: this benchmark's own ``n_members=1`` rows (same code and
    calibration as the ensemble's rows) where they cover ``seeds``, else the main benchmark's ``DECODE`` rows (default
    epochs)."""
    own = table_[(table_["scenario"] == scenario) & (table_["task"] == task) & (table_["n_members"] == 1)]
    own = own.drop_duplicates("seed").set_index("seed")["ccc"].astype(float)
    if set(seeds) <= set(own.index):
        return own, "this benchmark's"
    rows = scores[(scores["scenario"] == scenario) & (scores["task"] == task) & (scores["method"] == "DECODE")]
    if "job" in rows.columns:  # default epochs only
        rows = rows[rows["job"].astype(str).str.endswith("__default")]
    return rows.drop_duplicates("seed").set_index("seed")["ccc"].astype(float), "the main benchmark's"


def _mean_sd_worst(v: pd.Series) -> str:
    if v.empty:
        return "not run"
    sd = f" ± {v.std(ddof=1):.3f}" if len(v) > 1 else ""
    return f"{v.mean():.3f}{sd} (worst {v.min():.3f}, {len(v)} seed{'s' if len(v) > 1 else ''})"


#: Colours of the robustness suite's tasks in the reliability plot, by what they do to the reference or the bulk.
_ROBUSTNESS_KINDS = {"left out": "tab:red", "noise": "tab:blue", "features deleted": "tab:green"}


def _robustness_kind(task: str) -> str:
    """What a robustness task does: a key of :data:`_ROBUSTNESS_KINDS`."""
    return next(kind for kind in _ROBUSTNESS_KINDS if kind in task)


def reliability_plot(table_: pd.DataFrame, path: Path) -> None:
    """Nominal against observed coverage, one line per task (seeds pooled); the robustness suite's tasks in a panel
    of their own, coloured by what they do (a label left out of the reference, noise, features deleted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suite = table_["scenario"] == ROBUSTNESS
    panels = [("Reliability of DECODE's intervals (ensemble of 4)", table_[~suite])]
    if suite.any():
        panels.append(("Robustness suite", table_[suite]))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.6), squeeze=False)
    nominal = np.array(LEVELS)
    cols = [f"coverage_{round(level * 100)}" for level in LEVELS]
    for ax, (title, rows) in zip(axes[0], panels, strict=True):
        for (scenario, task), g in rows.groupby(["scenario", "task"]):
            if scenario == ROBUSTNESS:
                kind = _robustness_kind(task)
                style = {"color": _ROBUSTNESS_KINDS[kind], "alpha": 0.6, "label": kind}
            else:
                style = {"label": f"{scenario}: {task}"}
            ax.plot(nominal, g[cols].mean().to_numpy(), marker="o", ms=3, lw=1, **style)
        ax.plot([0.4, 1], [0.4, 1], color="grey", ls="--", lw=1)
        band = (0.9 - 0.4) / 0.6
        ax.axhspan(0.8, 0.95, xmin=band - 0.02, xmax=band + 0.02, color="tab:green", alpha=0.3)
        ax.set(xlabel="nominal level", ylabel="observed coverage", xlim=(0.4, 1), ylim=(0, 1.02))
        ax.set_title(title, fontsize=10)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=True))  # the suite's kinds once each
        ax.legend(unique.values(), unique.keys(), fontsize=6, loc="upper left", frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _ensemble_rows(table_: pd.DataFrame) -> pd.DataFrame:
    return table_[table_["n_members"] == MEMBERS]


def _member_data(rows: pd.DataFrame) -> pd.Series:
    """What each row's members shared (:data:`MEMBER_DATA`; ``"shared"`` for rows that predate the column)."""
    if "member_data" not in rows.columns:
        return pd.Series("shared", index=rows.index)
    return rows["member_data"].fillna("shared").astype(str)


def _provenance(ensemble: pd.DataFrame) -> list[str]:
    """Warning lines for ensemble rows trained by an older ensemble: on the members' mean loss (before
    :data:`MEMBER_LOSS`), or with members that shared their pseudo-tissues and input transform (before
    :data:`MEMBER_DATA`)."""
    loss = ensemble["member_loss"] if "member_loss" in ensemble.columns else pd.Series(np.nan, index=ensemble.index)
    old = int((loss != MEMBER_LOSS).sum())
    commit = ensemble["commit"] if "commit" in ensemble.columns else pd.Series(np.nan, index=ensemble.index)
    undated = int(commit.isna().sum())
    lines = []
    member_data = _member_data(ensemble)
    for label, how in OLDER_MEMBERS.items():
        older = int((member_data == label).sum())
        if older:
            lines.append(
                f"*{older} of the {len(ensemble)} ensemble rows (members *{label}* below) were measured when {how}; "
                f"the package's members (*{MEMBER_DATA}*) share nothing random. Those rows are due for a rerun "
                "(`python -m benchmarks.uncertainty run --rerun`).*"
            )
    if old:
        lines.append(
            f"*{old} of the {len(ensemble)} ensemble rows were measured when the members were trained on their mean "
            "loss, under which Adam's coupled weight decay acted 4x as strongly as on one network; the package now "
            "trains them on their sum. Those rows are due for a rerun (`python -m benchmarks.uncertainty run "
            "--rerun`).*"
        )
    if undated:
        lines.append(
            f"*{undated} of the {len(ensemble)} ensemble rows record no training commit: they were trained before "
            "the weights' moving average became the default (commit 7ee70b2), by the package as it was then.*"
        )
    return [line for text in lines for line in (text, "")]


def _fraction_spread() -> dict[tuple[str, str], pd.Series]:
    """Per task, the seed-spread benchmark's row of the package's ensemble (:data:`MEMBERS` members, members' data
    :data:`MEMBER_DATA`): its fraction sd over seeds against one network's and against its members' read alone."""
    if not SEED_SPREAD.exists():
        return {}
    t = pd.read_csv(SEED_SPREAD)
    t = t[(t["members"] == MEMBERS) & (t.get("member_data", "shared") == MEMBER_DATA)]
    return {(r["scenario"], r["task"]): r for _, r in t.iterrows()}


def _fraction_spread_sentence(rows: list[pd.Series]) -> str:
    """What the seed-spread rows of the page's tasks say (empty without any)."""
    if not rows:
        return ""
    one = np.array([r["fraction_sd_ensemble"] / r["fraction_sd_one"] for r in rows])
    alone = np.array([r["fraction_sd_ensemble"] / r["fraction_sd_member_alone"] for r in rows])
    seeds = sorted({int(r["seeds"]) for r in rows})
    return (
        f"Per sample and label, the spread a user reads (`python -m benchmarks.seed_spread`: these tasks' ensembles "
        f"and one network trained at the same seeds, {' or '.join(map(str, seeds))} seeds; column *fraction sd "
        f"ratio*): the ensemble's fraction sd is at most half of one network's on **{int((one <= 0.5).sum())} of "
        f"{len(rows)}** tasks (ratios {one.min():.2f}-{one.max():.2f}, median {np.median(one):.2f}) and at most half "
        f"of its members' read alone on {int((alone <= 0.5).sum())} (median {np.median(alone):.2f}). 4 members that "
        "err independently reach 0.5 on average, so over a few seeds about half of such tasks read above it; members "
        "that share part of their error stay above it. The uncertainty page, *How much the ensemble narrows the "
        "fractions*, has the full table, with the part the members share."
    )


def report_lines(scores: pd.DataFrame, static: Path) -> list[str]:
    """The benchmark page's section on the intervals and the ensemble (empty without the tracked table)."""
    if not TABLE.exists():
        return []
    everything = pd.read_csv(TABLE)
    t = _ensemble_rows(everything)
    if t.empty:
        return []
    reliability_plot(t, static / "reliability.png")
    rows, spread, sources = [], [], set()
    fraction_spread, fraction_rows = _fraction_spread(), []
    n_cov = n_acc = n_spread = n_spread_tasks = 0
    current = [0, 0, 0, 0, 0]  # tasks measured with the package's members; of them in band, >= one; spread: of, halved
    for (scenario, task), g in t.groupby(["scenario", "task"], sort=False):
        single, source = _single_network(everything, scores, scenario, task, g["seed"])
        single = single[single.index.isin(g["seed"])]
        sources.add(source)
        ens = g.set_index("seed")["ccc"]
        cov = g["coverage_90"]
        worst = cov.iloc[(cov - 0.875).abs().argmax()]
        met = bool(((cov >= 0.8) & (cov <= 0.95)).all())
        n_cov += met
        at_least = len(single) > 0 and ens.mean() >= single.mean() and ens.min() >= single.min()
        n_acc += at_least
        rows.append(
            f"| {scenario} | {task} | {len(g)} | {_mean_sd_worst(single)} | {_mean_sd_worst(ens)} | "
            f"{'yes' if at_least else '**no**'} | {cov.mean():.2f} ({worst:.2f}) | {g['width_90'].mean():.3f} | "
            f"{g['constant_width_90'].mean():.3f} | {'yes' if met else '**no**'} | {g['seconds'].mean():.0f} | "
            f"{'/'.join(sorted(set(_member_data(g))))} |"
        )
        now = bool((_member_data(g) == MEMBER_DATA).all())
        current[0] += now
        current[1] += now and met
        current[2] += now and at_least
        if len(g) >= 3 and len(single) >= 3:
            ratio = ens.std(ddof=1) / max(single.std(ddof=1), 1e-12)
            n_spread_tasks += 1
            n_spread += ratio <= 0.5
            if now:
                current[3] += 1
                current[4] += ratio <= 0.5
            by_fraction = fraction_spread.get((scenario, task))
            cell = ""
            if by_fraction is not None:
                fraction_rows.append(by_fraction)
                ratio_one = by_fraction["fraction_sd_ensemble"] / by_fraction["fraction_sd_one"]
                ratio_alone = by_fraction["fraction_sd_ensemble"] / by_fraction["fraction_sd_member_alone"]
                cell = f"{ratio_one:.2f} / {ratio_alone:.2f} ({int(by_fraction['seeds'])})"
            spread.append(
                f"| {scenario} | {task} | {single.std(ddof=1):.4f} | {ens.std(ddof=1):.4f} | {ratio:.2f} | {cell} |"
            )
    n = t.groupby(["scenario", "task"]).ngroups
    lines = [
        "",
        "## Uncertainty: the ensemble and its intervals",
        "",
        f"`dco.tl.deconvolve(..., uncertainty=True)`: {MEMBERS} networks trained together in one process, their "
        "average as the estimate, and 90 % intervals calibrated on held-out pseudo-tissues shifted as far from the "
        "reference as each bulk is and scored against cell fractions that differ from their shares of material by a "
        "per-label content shift (`decode_omics.model._intervals`). Written by `python -m benchmarks.uncertainty "
        f"run`; one network's figures come from {' and '.join(sorted(sources))} rows of the same seeds "
        "(`run --members 1`: same code and calibration). Like every DECODE figure here, transductive: the model sees "
        "the unlabelled bulk it scores; no truth is used to fit or calibrate, except the content shift's size, one "
        "prior for every bulk, chosen on these tasks' truth (below). Target: coverage of the 90 % intervals "
        "within 80-95 % on every task (every seed); *constant width* is the mean width of intervals of one constant "
        "half-width around the same estimates that reach the same coverage (an oracle fitted on the truth): intervals "
        "not wider than needed sit near it. The coverage column shows the mean and, in brackets, the seed furthest "
        "from the band's middle.",
        "",
        f"Measured: coverage within 80-95 % on every seed on **{n_cov} of {n}** tasks; the ensemble at least as "
        f"accurate as one network (mean and worst seed) on **{n_acc} of {n}**; the spread of its pooled CCC over "
        f"seeds at most half of one network's on **{n_spread} of {n_spread_tasks}**. An sd over 3 seeds is itself "
        "uncertain: an ensemble whose sd is truly half of one network's shows a ratio of at most 0.5 on only half of "
        "the tasks, and 4 members that err independently reach 0.5 at best.",
        *(["", _fraction_spread_sentence(fraction_rows)] if fraction_rows else []),
        "",
        *(
            [
                f"Of the {current[0]} tasks measured with the package's current members (*{MEMBER_DATA}*): "
                f"coverage in band on **{current[1]}**, the ensemble at least as accurate as one network on "
                f"**{current[2]}**, its spread at most half on **{current[4]} of {current[3]}**.",
                "",
            ]
            if current[0] and current[0] < n
            else []
        ),
        *_provenance(t),
        "| scenario | task | seeds | CCC one network | CCC ensemble | ensemble >= one | coverage of 90 % intervals "
        "(furthest seed) | mean width | constant width | in 80-95 % | seconds (ensemble) | members |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]
    if spread:
        lines += [
            "",
            "Spread over seeds (target: the ensemble's at most half of one network's). Pooled CCC: its sd over the "
            "seeds above; *fraction sd ratio*: per sample and label, the ensemble's sd over seeds over one network's "
            "/ over its members' read alone (seeds), from the seed-spread benchmark:",
            "",
            "| scenario | task | CCC sd one network | CCC sd ensemble | CCC sd ratio | fraction sd ratio (seeds) |",
            "|---|---|---|---|---|---|",
            *spread,
        ]
    lines += [
        "",
        "Coverage of the 90 % intervals per label (seeds pooled):",
        "",
        *[
            f"- {scenario} / {task}: "
            + ", ".join(
                f"{k} {np.mean([json.loads(x)[k] for x in g['per_label_coverage_90']]):.2f}"
                for k in json.loads(g["per_label_coverage_90"].iloc[0])
            )
            for (scenario, task), g in t.groupby(["scenario", "task"], sort=False)
        ],
        "",
        "![reliability](_static/benchmarks/reliability.png)",
        "",
    ]
    cohorts = interval_cohorts.report_lines(observed=t)
    return lines + cohorts + interval_content.report_lines() + interval_shift.report_lines()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.uncertainty", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the jobs and rewrite the table")
    r.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    r.add_argument("--seeds", nargs="+", type=int, default=[0])
    r.add_argument("--members", type=int, default=MEMBERS)
    r.add_argument("--jobs", type=int, default=1, help="jobs at a time (one torch thread each)")
    r.add_argument("--rerun", action="store_true", help="run jobs whose result is cached, too")
    c = sub.add_parser("rescore", help="calibrate the saved models' intervals again and rewrite their rows")
    c.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    c.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    c.add_argument("--members", type=int, default=MEMBERS)
    c.add_argument("--jobs", type=int, default=1, help="jobs at a time (one torch thread each)")
    j = sub.add_parser("job", help=argparse.SUPPRESS)
    for name in ("scenario", "seed", "members", "out"):
        j.add_argument(name)
    j.add_argument("--rescore", action="store_true")
    sub.add_parser("table", help="rewrite results/uncertainty.csv from the cached jobs")
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.scenarios, args.seeds, args.members, args.jobs, args.rerun)
    elif args.command == "rescore":
        run(args.scenarios, args.seeds, args.members, args.jobs, rerun=False, refit=False)
    elif args.command == "job":
        job(args.scenario, int(args.seed), int(args.members), Path(args.out), refit=not args.rescore)
    else:
        table()


if __name__ == "__main__":
    main()
