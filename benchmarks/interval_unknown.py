"""Relative-mode intervals when the reference lacks material the bulk holds, with and without unknown material in
the calibration (``DECODE.calibrate_intervals(unknown_share=...)``).

    python -m benchmarks.interval_unknown --seeds 0 1 2 [--tasks "NK removed"]
    python -m benchmarks.interval_unknown --table     # the tracked table as markdown (the uncertainty page's)

The ``unknown`` scenario's tasks (bone-marrow mixtures with HSC cells absent from the reference; real PBMC bulk,
GSE107011 and GSE107572, with NK cells removed from the reference) deconvolved in **relative** mode, the default,
scored against the known labels' true split (truth renormalised over them), beside full-reference tasks: the same
PBMC cohorts, the bone-marrow protocol's own mixtures, CellBench CEL-seq2 (the platform far from the reference's),
kidney (a held-out replicate, whose batch shift reads as unexplained material) and T-SCP. Each (task, seed) fits
``DECODE(n_members=4)`` with the package's defaults as the uncertainty benchmark's jobs do (one torch thread; the
model is saved under ``results/uncertainty_jobs/models/interval_unknown__<seed>__m4/`` and loaded when there), then
calibrates the intervals with ``unknown_share`` 0 (the default) and ``"auto"`` and scores coverage and mean width of
the 90 % intervals, with the constant-width oracle of the uncertainty benchmark, and records the weight by which each
sample's unexplained share widens its intervals (``unexplained_weight``; 0 where the cohorts hold no missing
material). Transductive, as every figure here:
the model sees the unlabelled bulk it scores; the truth only scores. Writes ``results/interval_unknown.csv``.
"""

from __future__ import annotations

import argparse
import re
import time

import pandas as pd

from .uncertainty import RESULTS, constant_width, model_dir

TABLE = RESULTS / "interval_unknown.csv"
SCENARIO = "interval_unknown"
MEMBERS = 4
SHARES = (0.0, "auto")


def tasks() -> list:
    """Relative-mode tasks: the ``unknown`` scenario's three, then full-reference ones (same and far platforms)."""
    from .scenarios import Task, bone_marrow, cellbench, kidney, pbmc_real, tscp_states, unknown_material

    out = []
    for t in unknown_material():
        truth = t.truth.drop(columns="unknown")
        truth = truth.div(truth.sum(axis=1), axis=0)
        out.append(Task(SCENARIO, t.name, t.reference, t.labels_key, t.bulk, truth, mode="relative", scale=t.scale))
    for t in pbmc_real() + bone_marrow() + cellbench()[:1] + kidney() + tscp_states():
        name = f"{t.name}, full reference"
        out.append(Task(SCENARIO, name, t.reference, t.labels_key, t.bulk, t.truth, mode="relative", scale=t.scale))
    return out


def fitted(task, seed: int):
    """The task's ensemble for ``seed``: loaded when saved, else fitted and saved."""
    import scvi

    from decode_omics._engine.adata import lightweight
    from decode_omics.model import DECODE

    scvi.settings.seed = seed
    ref = lightweight(task.reference, None, task.labels_key)
    bulk = lightweight(task.bulk, None)
    DECODE.setup_anndata(ref, labels_key=task.labels_key, scale=task.scale)
    DECODE.setup_anndata(bulk, scale=task.scale)
    path = model_dir(SCENARIO, seed, MEMBERS, task.name)
    if path.is_dir():
        return DECODE.load(path, reference=ref, bulk=bulk)
    model = DECODE(ref, bulk, mode="relative", n_members=MEMBERS)
    model.train(enable_progress_bar=False)
    model.save(path, overwrite=True)
    return model


def score(model, truth: pd.DataFrame) -> dict:
    """Coverage and mean width of the 90 % intervals on the known labels' true split."""
    est, lower, upper = model.get_fractions(return_interval=True)
    labels = [c for c in truth.columns if c in est.columns]
    truth = truth.loc[:, labels].div(truth.loc[:, labels].sum(axis=1), axis=0)
    est, lower, upper = (d.loc[truth.index, labels] for d in (est, lower, upper))
    inside = (truth >= lower) & (truth <= upper)
    coverage = float(inside.to_numpy().mean())
    return {
        "coverage_90": coverage,
        "width_90": float((upper - lower).to_numpy().mean()),
        "constant_width_90": constant_width(est.to_numpy(), truth.to_numpy(), coverage),
    }


def run(seeds, pattern: str | None = None) -> pd.DataFrame:
    import torch

    torch.set_num_threads(1)
    rows = []
    for task in tasks():
        if pattern and not re.search(pattern, task.name):
            continue
        for seed in seeds:
            model = fitted(task, seed)
            unexplained = float(model.get_unexplained().median())
            for share in SHARES:
                start = time.perf_counter()
                model.calibrate_intervals(unknown_share=share)
                seconds = time.perf_counter() - start
                cal = model.interval_calibration_
                row = {"task": task.name, "seed": seed, "unknown_share_asked": str(share)}
                row |= {"unknown_share": cal["unknown_share"], "median_unexplained": unexplained}
                row |= {"unexplained_weight": cal.get("unexplained_weight", 0.0)}
                row |= score(model, task.truth) | {"calibration_seconds": seconds, "shift": cal["shift"]}
                rows.append(row)
                print(
                    f"{task.name} / seed {seed} / unknown_share {share}: share {row['unknown_share']:.2f}, coverage "
                    f"{row['coverage_90']:.3f}, width {row['width_90']:.3f}",
                    flush=True,
                )
    new = pd.DataFrame(rows)
    if TABLE.exists():
        old = pd.read_csv(TABLE)
        done = set(zip(new["task"], new["seed"], strict=True))
        old = old[[(t, s) not in done for t, s in zip(old["task"], old["seed"], strict=True)]]
        new = pd.concat([old, new], ignore_index=True)
    new = new.sort_values(["task", "seed", "unknown_share_asked"], key=lambda c: c.astype(str))
    new.to_csv(TABLE, index=False, float_format="%.4f")
    return new


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per task and ``unknown_share`` asked: coverage and width over seeds (mean, worst seed's coverage)."""
    g = table.groupby(["task", "unknown_share_asked"], sort=False)
    out = g.agg(
        seeds=("seed", "nunique"),
        share=("unknown_share", "mean"),
        coverage=("coverage_90", "mean"),
        coverage_min=("coverage_90", "min"),
        coverage_max=("coverage_90", "max"),
        width=("width_90", "mean"),
        constant_width=("constant_width_90", "mean"),
    )
    return out.reset_index()


def markdown(table: pd.DataFrame) -> list[str]:
    """The summary as a markdown table (the uncertainty page's): coverage as mean (lowest - highest seed)."""
    lines = [
        "| task | `unknown_share` | share used (mean) | seeds | coverage of the 90 % intervals | mean width | "
        "constant-width oracle |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, r in summary(table).iterrows():
        lines.append(
            f"| {r['task']} | {r['unknown_share_asked']} | {r['share']:.2f} | {r['seeds']} | {r['coverage']:.2f} "
            f"({r['coverage_min']:.2f}-{r['coverage_max']:.2f}) | {r['width']:.3f} | {r['constant_width']:.3f} |"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--tasks", default=None, help="regular expression: only the tasks whose name matches")
    parser.add_argument("--table", action="store_true", help="print the tracked table as markdown; run nothing")
    args = parser.parse_args(argv)
    if args.table:
        print("\n".join(markdown(pd.read_csv(TABLE))))
        return
    table = run(args.seeds, args.tasks)
    print(summary(table).to_string(index=False))


if __name__ == "__main__":
    main()
