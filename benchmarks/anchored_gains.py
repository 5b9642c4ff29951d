"""Platform gains anchored on measured fractions: what a few samples with flow cytometry do for the others.

On real PBMC bulk, gains fitted from the network's own estimates keep B cells 2.5-3x below flow; fitted from the
true fractions they bring every label's mean within 0.025 (the method page's B-cell diagnosis).
:meth:`DECODE.fit_platform_gains(measured_fractions) <decode_omics.model.DECODE.fit_platform_gains>` uses the
fractions measured on some of the samples. This asks how much that helps the samples whose fractions were *not*
measured: per cohort and seed, one model trained with the defaults; then, for each of ``--subsets`` random draws of
``--measured`` samples, the gains anchored on their flow fractions, and the other samples scored (pooled CCC and
each label's mean against flow) against the same model's default estimates of the same samples. The measured
samples are never scored. As a diagnosis, the same samples are also scored with gains fitted from *every* sample's
flow fractions (the measured ones included; an upper bound no user has). Transductive like every DECODE figure: the
model saw the unlabelled bulk.

Run: ``python -m benchmarks.anchored_gains --seeds 0 1 2`` (minutes per cohort and seed; writes
``benchmarks/results/anchored_gains.csv``, one row per cohort, seed and draw, and prints the summary the method
page shows, also as its markdown table; ``--summary-only`` prints both from the tracked CSV).
"""

from __future__ import annotations

import argparse
import fcntl
from pathlib import Path

import numpy as np
import pandas as pd

from decode_omics.metrics import ccc

from ._tables import write_table

RESULTS = Path(__file__).parent / "results" / "anchored_gains.csv"
COHORTS = ("GSE107011", "GSE107572")


def run(cohort: str, seed: int, n_measured: int, n_subsets: int) -> pd.DataFrame:
    """One model of ``cohort`` at ``seed``; one row per random draw of ``n_measured`` measured samples."""
    import scvi
    import torch

    from decode_omics._engine.adata import lightweight
    from decode_omics.model import DECODE

    from .scenarios import pbmc_real

    torch.set_num_threads(1)
    task = next(t for t in pbmc_real() if t.name == cohort)
    scvi.settings.seed = seed
    ref = lightweight(task.reference, None, task.labels_key)
    bulk = lightweight(task.bulk, None)
    DECODE.setup_anndata(ref, labels_key=task.labels_key)
    DECODE.setup_anndata(bulk)
    model = DECODE(ref, bulk)
    model.train(enable_progress_bar=False)
    labels = list(model.labels_)
    truth = task.truth.loc[bulk.obs_names, labels]
    default = model.get_fractions()
    model.interval_calibration_ = None  # intervals are not scored here: skip calibrating them again at every draw
    model.fit_platform_gains(truth)  # the diagnosis: gains fitted from every sample's flow fractions
    oracle = model.get_fractions()
    rng = np.random.default_rng([seed, n_measured])
    rows = []
    for draw in range(n_subsets):
        measured = np.sort(rng.choice(len(truth), n_measured, replace=False))
        model.fit_platform_gains(truth.iloc[measured])
        anchored = model.get_fractions()
        rest = truth.index[np.setdiff1d(np.arange(len(truth)), measured)]
        row = {"cohort": cohort, "seed": seed, "draw": draw, "n_measured": n_measured, "n_scored": len(rest)}
        for name, est in (("default", default), ("anchored", anchored), ("every sample's flow", oracle)):
            row[f"ccc_{name}"] = ccc(est.loc[rest], truth.loc[rest])
            for label in labels:
                row[f"gap_{name}_{label}"] = est.loc[rest, label].mean() - truth.loc[rest, label].mean()
        rows.append(row)
    return pd.DataFrame(rows)


def summary(results: pd.DataFrame) -> pd.DataFrame:
    """Per cohort: pooled CCC and every label's mean gap on the unmeasured samples, default and anchored; mean over
    seeds and draws, and the worst seed's mean (lowest CCC, largest absolute gap)."""
    out = []
    for cohort, g in results.groupby("cohort", sort=False):
        per_seed = g.groupby("seed").mean(numeric_only=True)
        labels = [c.removeprefix("gap_default_") for c in g.columns if c.startswith("gap_default_")]
        for name in ("default", "anchored", "every sample's flow"):
            row = {"cohort": cohort, "gains from": name, "seeds": len(per_seed), "draws": len(g)}
            row["CCC (unmeasured samples)"] = per_seed[f"ccc_{name}"].mean()
            row["worst seed"] = per_seed[f"ccc_{name}"].min()
            for label in labels:
                gaps = per_seed[f"gap_{name}_{label}"]
                row[f"{label} gap"] = gaps.mean()
                row[f"{label} worst"] = gaps.iloc[np.abs(gaps.to_numpy()).argmax()]
            out.append(row)
    return pd.DataFrame(out)


def markdown(table: pd.DataFrame) -> str:
    """The method page's table: per cohort and source of the gains, CCC and every label's mean gap (worst seed)."""
    labels = [c.removesuffix(" gap") for c in table.columns if c.endswith(" gap")]
    head = ["cohort", "gains from", "pooled CCC, unmeasured samples"] + [f"{label} mean gap" for label in labels]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for values in table.itertuples(index=False, name=None):
        row = dict(zip(table.columns, values, strict=True))
        cells = [row["cohort"], row["gains from"], f"{row['CCC (unmeasured samples)']:.3f} ({row['worst seed']:.3f})"]
        cells += [f"{row[f'{label} gap']:+.3f} ({row[f'{label} worst']:+.3f})" for label in labels]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--cohorts", nargs="+", default=list(COHORTS), choices=COHORTS)
    parser.add_argument("--measured", type=int, default=5, help="measured samples per draw (at least 5)")
    parser.add_argument("--subsets", type=int, default=10, help="random draws of measured samples per model")
    parser.add_argument("--summary-only", action="store_true", help="print the summary of the tracked CSV")
    args = parser.parse_args(argv)
    if not args.summary_only:
        new = pd.concat([run(c, s, args.measured, args.subsets) for c in args.cohorts for s in args.seeds])
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with open(RESULTS.with_suffix(".lock"), "w") as lock:  # several runs may finish at once
            fcntl.flock(lock, fcntl.LOCK_EX)
            if RESULTS.exists():
                old = pd.read_csv(RESULTS)
                keys = ["cohort", "seed", "n_measured"]
                keep = ~old.set_index(keys).index.isin(new.set_index(keys).index)
                new = pd.concat([old[keep], new], ignore_index=True)
            write_table(new.sort_values(["cohort", "seed", "draw"]), RESULTS, digits=4)
    table = summary(pd.read_csv(RESULTS))
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print(table.round(3).to_string(index=False))
    print(markdown(table))


if __name__ == "__main__":
    main()
