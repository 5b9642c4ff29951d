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
page shows, also as its markdown table; ``--summary-only`` prints both from the tracked CSV). ``--intervals``: the
same with an ensemble of 4 (``uncertainty=True``'s model), scoring its 90 % intervals on the unmeasured samples
(``benchmarks/results/anchored_intervals.csv``; about 4x the time).
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
#: Where ``--intervals`` writes (ensembles of 4: coverage and width of the 90 % intervals of the unmeasured samples).
INTERVALS = Path(__file__).parent / "results" / "anchored_intervals.csv"
COHORTS = ("GSE107011", "GSE107572")


def _trained(cohort: str, seed: int, n_members: int = 1):
    """A DECODE model of ``cohort`` trained with the defaults at ``seed`` (one thread), and the flow truth of its
    samples over its labels."""
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
    model = DECODE(ref, bulk) if n_members == 1 else DECODE(ref, bulk, n_members=n_members)
    model.train(enable_progress_bar=False)
    return model, task.truth.loc[bulk.obs_names, list(model.labels_)]


def run(cohort: str, seed: int, n_measured: int, n_subsets: int) -> pd.DataFrame:
    """One model of ``cohort`` at ``seed``; one row per random draw of ``n_measured`` measured samples."""
    model, truth = _trained(cohort, seed)
    labels = list(model.labels_)
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


def run_intervals(cohort: str, seed: int, n_measured: int, n_subsets: int, n_members: int = 4) -> pd.DataFrame:
    """As :func:`run` with an ensemble of ``n_members`` (``uncertainty=True``'s model): the 90 % intervals of the
    unmeasured samples, calibrated as the package does (again after anchoring, with the content shift the measured
    samples leave open); one row per draw."""
    model, truth = _trained(cohort, seed, n_members)
    labels = list(model.labels_)
    default = model.get_fractions(return_interval=True, level=0.9)
    rng = np.random.default_rng([seed, n_measured])
    rows = []
    for draw in range(n_subsets):
        measured = np.sort(rng.choice(len(truth), n_measured, replace=False))
        model.fit_platform_gains(truth.iloc[measured])
        anchored = model.get_fractions(return_interval=True, level=0.9)
        rest = truth.index[np.setdiff1d(np.arange(len(truth)), measured)]
        t = truth.loc[rest]
        row = {"cohort": cohort, "seed": seed, "draw": draw, "n_measured": n_measured, "n_members": n_members}
        row["content_shift_anchored"] = model.interval_calibration_["content_shift"]
        for name, (est, lower, upper) in (("default", default), ("anchored", anchored)):
            inside = (t >= lower.loc[rest, labels]) & (t <= upper.loc[rest, labels])
            row[f"ccc_{name}"] = ccc(est.loc[rest, labels], t)
            row[f"coverage_{name}"] = float(inside.to_numpy().mean())
            row[f"width_{name}"] = float((upper - lower).loc[rest, labels].to_numpy().mean())
            for label in labels:
                row[f"covered_{name}_{label}"] = float(inside[label].mean())
        rows.append(row)
    return pd.DataFrame(rows)


def interval_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Per cohort, default and anchored: CCC, coverage (mean over seeds and draws; the seed furthest from 0.875, the
    middle of the 80-95 % band), mean width, and each label's coverage."""
    out = []
    for cohort, g in results.groupby("cohort", sort=False):
        per_seed = g.groupby("seed").mean(numeric_only=True)
        labels = [c.removeprefix("covered_default_") for c in g.columns if c.startswith("covered_default_")]
        for name in ("default", "anchored"):
            cov = per_seed[f"coverage_{name}"]
            row = {"cohort": cohort, "gains from": name, "seeds": len(per_seed), "draws": len(g)}
            row["CCC"] = per_seed[f"ccc_{name}"].mean()
            row["coverage"] = cov.mean()
            row["furthest seed"] = cov.iloc[np.abs(cov.to_numpy() - 0.875).argmax()]
            row["width"] = per_seed[f"width_{name}"].mean()
            row["content shift"] = per_seed["content_shift_anchored"].mean() if name == "anchored" else np.nan
            row |= {f"{label} covered": per_seed[f"covered_{name}_{label}"].mean() for label in labels}
            out.append(row)
    return pd.DataFrame(out)


def _merge_write(new: pd.DataFrame, path: Path, keys: list[str]) -> pd.DataFrame:
    """``new`` with the rows of ``path`` it does not replace, written back under a lock (runs may finish at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            old = pd.read_csv(path)
            keep = ~old.set_index(keys).index.isin(new.set_index(keys).index)
            new = pd.concat([old[keep], new], ignore_index=True)
        write_table(new.sort_values(["cohort", "seed", "draw"]), path, digits=4)
    return new


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
    parser.add_argument(
        "--intervals",
        action="store_true",
        help=f"score the 90 %% intervals of an ensemble of 4 instead (writes {INTERVALS.name})",
    )
    args = parser.parse_args(argv)
    keys = ["cohort", "seed", "n_measured"]
    if args.intervals:
        if not args.summary_only:
            runs = [run_intervals(c, s, args.measured, args.subsets) for c in args.cohorts for s in args.seeds]
            _merge_write(pd.concat(runs), INTERVALS, keys)
        with pd.option_context("display.width", 250, "display.max_columns", 40):
            print(interval_summary(pd.read_csv(INTERVALS)).round(3).to_string(index=False))
        return
    if not args.summary_only:
        _merge_write(
            pd.concat([run(c, s, args.measured, args.subsets) for c in args.cohorts for s in args.seeds]), RESULTS, keys
        )
    table = summary(pd.read_csv(RESULTS))
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print(table.round(3).to_string(index=False))
    print(markdown(table))


if __name__ == "__main__":
    main()
