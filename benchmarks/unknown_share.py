"""How far must absolute mode's training reach in unknown material? (issue 20: ``unknown`` must track what is absent)

Absolute mode's unknown head learns the share of material the reference lacks from pseudo-tissues with cells of a
new cell type added, a share drawn from ``U(0, max_unknown_share)`` per pseudo-tissue. A head trained on shares up
to 0.5 may not read the 0.55-0.80 that whole blood's neutrophils or a tumour's cancer cells make of a sample; a wider
reach may read more where nothing is missing. This trains absolute mode (package defaults otherwise, one network)
at each ``max_unknown_share`` on

- every task whose reference lacks material that the bulk holds: the robustness suite's leave-out tasks on linear
  scales (minority and majority absences) and the ``unknown`` scenario (NK cells removed, bone marrow + HSC);
- every linear-scale full reference of the suite, read in absolute mode, where the true unknown share is 0 (what
  a wider reach costs when nothing is missing),

and records per task and seed the known labels' pooled CCC (renormalised over themselves), the ``unknown`` RMSE,
its mean error (bias), median, and Pearson r with the truth. The unknown head reads the encoder's codes detached,
so the known labels' fractions do not depend on the reach: the CCC column checks that. Transductive, as every DECODE
figure: the model sees the unlabelled bulk it reads; the truth only scores.

Run: ``python -m benchmarks.unknown_share --seeds 0 1 2 --jobs 2`` (about 32 minutes per seed and reach on one
thread; writes ``benchmarks/results/unknown_share.csv``; ``--shares`` the reaches, ``--tasks`` a regular
expression on task names, ``--table`` prints the stored table and the summary).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).parent / "results" / "unknown_share.csv"
#: Per-job rows (git-ignored) while a run is under way.
CACHE = Path(__file__).parent / "results" / "unknown_share_jobs"
#: The reaches measured by default: the previous default and the new one.
SHARES = (0.5, 0.8)


def tasks(pattern: str | None = None) -> list:
    """The tasks measured: linear-scale leave-outs and full references of the robustness suite, the ``unknown``
    scenario; every one in absolute mode (full references with a true ``unknown`` share of 0)."""
    from dataclasses import replace

    from .robustness import robustness
    from .scenarios import SCENARIOS

    out = []
    for task in [*robustness(), *SCENARIOS["unknown"]()]:
        if task.scale == "as_is":  # values read as stored have no share of abundance: no absolute mode
            continue
        if task.name.endswith("full reference"):
            task = replace(task, mode="absolute", truth=task.truth.assign(unknown=0.0))
        elif "unknown" not in task.truth.columns:  # damaged measurements: nothing missing from the reference
            continue
        if pattern is None or re.search(pattern, task.name):
            out.append(task)
    return out


def _row(task, seed: int, share: float, **train_kwargs) -> dict:
    """Train absolute mode with unknown material up to ``share`` on one task and score it."""
    import scvi

    from decode_omics.model import DECODE

    from .__main__ import score
    from .methods import _lightweight

    start = time.perf_counter()
    ref, bulk = _lightweight(task.reference, None, task.labels_key), _lightweight(task.bulk, None)
    DECODE.setup_anndata(ref, labels_key=task.labels_key, scale=task.scale)
    DECODE.setup_anndata(bulk, scale=task.scale)
    scvi.settings.seed = seed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = DECODE(ref, bulk, mode="absolute", max_unknown_share=share)
        model.train(**({"enable_progress_bar": False} | train_kwargs))
        estimate = model.get_fractions()
    scores = score(estimate, task.truth)
    est, truth = estimate.loc[task.truth.index, "unknown"].to_numpy(float), task.truth["unknown"].to_numpy(float)
    varies = truth.std() > 0 and est.std() > 0
    return {
        "task": task.name,
        "kind": kind(float(np.median(truth))),
        "seed": seed,
        "max_unknown_share": share,
        "n_samples": truth.size,
        "truth_median": float(np.median(truth)),
        "ccc_known": scores["ccc"],
        "unknown_rmse": scores["unknown_rmse"],
        "unknown_bias": float(np.mean(est - truth)),
        "unknown_median": float(np.median(est)),
        "unknown_pearson": float(np.corrcoef(est, truth)[0, 1]) if varies else np.nan,
        "seconds": round(time.perf_counter() - start),
    }


def kind(truth_median: float) -> str:
    """``"full reference"`` (nothing missing), ``"majority"`` (the missing material at least half of the median
    sample) or ``"minority"``."""
    return "full reference" if truth_median == 0 else ("majority" if truth_median >= 0.5 else "minority")


def _job_path(task: str, seed: int, share: float) -> Path:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", task).strip("_")
    return CACHE / f"{slug}__{seed}__{share:g}.json"


def job(task_name: str, seed: int, share: float) -> None:
    """One (task, seed, reach) in this process, written to its cache file."""
    (task,) = [t for t in tasks() if t.name == task_name]
    path = _job_path(task_name, seed, share)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_row(task, seed, share)))


def run(seeds: list[int], shares: list[float], pattern: str | None, n_jobs: int, out: Path) -> pd.DataFrame:
    """Every (seed, task, reach) not yet cached, ``n_jobs`` processes at a time (one thread each), seed by seed;
    then the table from every cached row."""
    todo = [
        (t.name, seed, share)
        for seed in seeds
        for t in tasks(pattern)
        for share in shares
        if not _job_path(t.name, seed, share).exists()
    ]
    env = os.environ | {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    running: list[subprocess.Popen] = []
    for name, seed, share in todo:
        while len(running) >= n_jobs:
            running = [p for p in running if p.poll() is None]
            time.sleep(2)
        cmd = [sys.executable, "-m", "benchmarks.unknown_share", "--job", name, str(seed), str(share)]
        running.append(subprocess.Popen(cmd, env=env, cwd=Path(__file__).parent.parent))
    for p in running:
        p.wait()
    return table(out)


def table(out: Path = RESULTS) -> pd.DataFrame:
    """The cached rows, merged into ``out`` (a row replaces the stored row of its task, seed and reach)."""
    from ._tables import write_table

    new = pd.DataFrame([json.loads(p.read_text()) for p in sorted(CACHE.glob("*.json"))])
    old = pd.read_csv(out) if out.exists() else pd.DataFrame()
    keys = ["task", "seed", "max_unknown_share"]
    rows = pd.concat([old, new]).drop_duplicates(keys, keep="last") if len(new) else old
    rows["kind"] = rows["truth_median"].map(kind)
    write_table(rows.sort_values(["kind", "task", "seed", "max_unknown_share"]), out)
    return rows


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per task and reach: mean and worst seed of the ``unknown`` RMSE, mean bias, mean known-label CCC."""
    grouped = rows.groupby(["kind", "task", "max_unknown_share"])
    return grouped.agg(
        seeds=("seed", "nunique"),
        unknown_rmse=("unknown_rmse", "mean"),
        worst_rmse=("unknown_rmse", "max"),
        bias=("unknown_bias", "mean"),
        ccc_known=("ccc_known", "mean"),
    ).reset_index()


def report_lines(rows: pd.DataFrame | None = None) -> list[str]:
    """The benchmark page's table of this check (empty where it did not run): per task, the ``unknown`` RMSE and mean
    error at each reach, and the known labels' CCC.

    Parameters
    ----------
    rows
        The table (default: the tracked ``unknown_share.csv``).

    Returns
    -------
    Markdown lines: a heading, what was run, one row per task (mean over seeds; worst seed; seeds) and the count of
    tasks each reach wins.
    """
    if rows is None:
        rows = pd.read_csv(RESULTS) if RESULTS.exists() else pd.DataFrame()
    if rows.empty:
        return []
    shares = sorted(rows["max_unknown_share"].unique())
    agg = summary(rows).set_index(["task", "max_unknown_share"])
    order = rows.drop_duplicates("task").sort_values(["kind", "task"], key=lambda c: c.map(KIND_ORDER).fillna(c))
    lines = [
        "",
        "### How far the `unknown` share reaches (absolute mode's `max_unknown_share`)",
        "",
        "Absolute mode (one network, package defaults otherwise) trained with unknown material drawn from",
        f"U(0, a), a = {' and '.join(f'{a:g}' for a in shares)}, on every linear-scale leave-out task above, the",
        "`unknown` scenario and each full reference read in absolute mode (truth: no unknown material)",
        "(`python -m benchmarks.unknown_share`). Cells: `unknown` RMSE, mean over seeds (worst seed; seeds), and the",
        "mean error (estimate minus truth). The known labels' CCC does not depend on the reach (the unknown head reads",
        "detached codes): the last column is the mean over every run. Transductive, as every DECODE figure here.",
        "",
        "| task | truth (median) | "
        + " | ".join(f"RMSE at {a:g} | mean error at {a:g}" for a in shares)
        + " | known labels' CCC |",
        "|---|---|" + "---|---|" * len(shares) + "---|",
    ]
    wins = dict.fromkeys(shares, 0)
    for _, first in order.iterrows():
        task, cells = first["task"], []
        here = rows[rows["task"] == task]
        per_share = {}
        for a in shares:
            if (task, a) not in agg.index:
                cells += ["", ""]
                continue
            r = agg.loc[(task, a)]
            per_share[a] = r["unknown_rmse"]
            cells += [f"{r['unknown_rmse']:.3f} ({r['worst_rmse']:.3f}; {r['seeds']})", f"{r['bias']:+.3f}"]
        if len(per_share) == len(shares):
            wins[min(per_share, key=per_share.get)] += 1
        truth = f"{here['truth_median'].iloc[0]:.2f}"
        lines.append(f"| {task} | {truth} | " + " | ".join(cells) + f" | {here['ccc_known'].mean():.3f} |")
    lines += ["", "Lowest mean RMSE: " + ", ".join(f"at {a:g} on {n} tasks" for a, n in wins.items()) + "."]
    return lines


#: The order of the kinds of task in the page's table.
KIND_ORDER = {"full reference": "0", "minority": "1", "majority": "2"}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.unknown_share", description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--shares", type=float, nargs="+", default=list(SHARES))
    parser.add_argument("--tasks", help="regular expression on task names")
    parser.add_argument("--jobs", type=int, default=2, help="processes at once (one thread each)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--table", action="store_true", help="print the stored table and its summary, and exit")
    parser.add_argument("--job", nargs=3, metavar=("TASK", "SEED", "SHARE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        return job(args.job[0], int(args.job[1]), float(args.job[2]))
    rows = pd.read_csv(args.out) if args.table else run(args.seeds, args.shares, args.tasks, args.jobs, args.out)
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_colwidth", 60):
        print(summary(rows).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
