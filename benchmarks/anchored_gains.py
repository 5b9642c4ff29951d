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

The leave-out cohorts (:data:`LEAVE_OUT`, the robustness suite's tasks on real PBMC bulk) ask the same where the
reference lacks labels the bulk holds: absolute mode, as the suite runs it; the measured samples give the known
labels' flow fractions renormalised over them (what a user whose reference lacks a cell type measured of the
others), and the known labels are scored renormalised.

Run: ``python -m benchmarks.anchored_gains --seeds 0 1 2`` (minutes per cohort and seed; writes
``benchmarks/results/anchored_gains.csv``, one row per cohort, seed and draw, and prints the summary the method
page shows, also as its markdown table; ``--summary-only`` prints both from the tracked CSV). ``--intervals``: the
same with an ensemble of 4 (``uncertainty=True``'s model), scoring its 90 % intervals on the unmeasured samples
(``benchmarks/results/anchored_intervals.csv``; about 4x the time). ``--peers``: NNLS and dtangle (its venv built by
``bash benchmarks/peers/setup.sh dtangle``) on the same cohorts, scored on the same unmeasured samples of the same
draws (``benchmarks/results/anchored_gains_peers.csv``; seconds); the summary shows them beside DECODE.
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
#: Leave-out cohorts: name -> (real PBMC cohort, labels left out of the reference), the robustness suite's tasks
#: (``benchmarks.robustness``) on which the known labels' split failed with the defaults.
LEAVE_OUT = {
    "GSE107572 without Mono": ("GSE107572", ["Mono"]),
    "GSE107572 without Mono, CD8T": ("GSE107572", ["Mono", "CD8T"]),
    "GSE107011 without CD4T, Mono": ("GSE107011", ["CD4T", "Mono"]),
}
COHORTS = ("GSE107011", "GSE107572", *LEAVE_OUT)
#: Where ``--peers`` writes; and the peers it runs.
PEER_RESULTS = Path(__file__).parent / "results" / "anchored_gains_peers.csv"
PEER_METHODS = ("NNLS", "dtangle")
#: The sources of the estimates the summary shows, in its order (the peers' when their CSV holds them).
SOURCES = ("default", "anchored", "every sample's flow", "cohort's mean", "other cohort's mean")
#: Each real PBMC cohort's counterpart: its flow mean is the prior of ``"other cohort's mean"`` (a published
#: composition of the tissue, as a user without any measurement of their own cohort might take).
OTHER_COHORT = {"GSE107011": "GSE107572", "GSE107572": "GSE107011"}


def _task(cohort: str):
    """The benchmark task of ``cohort``: a real PBMC cohort with its full reference, or a leave-out cohort."""
    from . import robustness
    from .scenarios import pbmc_real

    if cohort not in LEAVE_OUT:
        return next(t for t in pbmc_real() if t.name == cohort)
    base, labels = LEAVE_OUT[cohort]
    layer = next(layer for layer in robustness.LAYERS["pbmc_real"]() if layer.name == base)
    return robustness.leave_out(layer, labels)


def known(fractions: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """The known labels' fractions renormalised over themselves (absolute mode's ``unknown`` dropped)."""
    out = fractions[labels]
    return out.div(out.sum(axis=1), axis=0)


def _trained(cohort: str, seed: int, n_members: int = 1):
    """A DECODE model of ``cohort`` trained with the defaults (in the task's mode) at ``seed`` (one thread), and the
    flow truth of its samples over its labels (renormalised over them)."""
    import scvi
    import torch

    from decode_omics._engine.adata import lightweight
    from decode_omics.model import DECODE

    torch.set_num_threads(1)
    task = _task(cohort)
    scvi.settings.seed = seed
    ref = lightweight(task.reference, None, task.labels_key)
    bulk = lightweight(task.bulk, None)
    DECODE.setup_anndata(ref, labels_key=task.labels_key)
    DECODE.setup_anndata(bulk)
    model = DECODE(ref, bulk, mode=task.mode, n_members=n_members)
    model.train(enable_progress_bar=False)
    return model, known(task.truth.loc[bulk.obs_names], list(model.labels_))


def other_cohort_mean(cohort: str, labels: list[str]) -> pd.Series:
    """The flow mean composition of the other real PBMC cohort (:data:`OTHER_COHORT`), over ``labels``."""
    from .scenarios import pbmc_real

    base = LEAVE_OUT[cohort][0] if cohort in LEAVE_OUT else cohort
    other = next(t for t in pbmc_real() if t.name == OTHER_COHORT[base])
    mean = other.truth[labels].mean()
    return mean / mean.sum()


def draws(n_samples: int, seed: int, n_measured: int, n_subsets: int) -> list[np.ndarray]:
    """The measured samples (positions, sorted) of each draw: the same for every method scored on them."""
    rng = np.random.default_rng([seed, n_measured])
    return [np.sort(rng.choice(n_samples, n_measured, replace=False)) for _ in range(n_subsets)]


def run_peers(cohort: str, seeds: list[int], n_measured: int, n_subsets: int) -> pd.DataFrame:
    """:data:`PEER_METHODS` on ``cohort`` (the task's reference, relative fractions), scored on the unmeasured
    samples of every seed's draws (the peers are deterministic; the draws follow the seed); one row per seed and
    draw."""
    from .methods import methods

    task = _task(cohort)
    labels = [c for c in task.truth.columns if c != "unknown"]
    truth = known(task.truth.loc[task.bulk.obs_names], labels)
    table = methods()
    estimates = {name: known(table[name](task, 0), labels) for name in PEER_METHODS}
    rows = []
    for seed in seeds:
        for draw, measured in enumerate(draws(len(truth), seed, n_measured, n_subsets)):
            rest = truth.index[np.setdiff1d(np.arange(len(truth)), measured)]
            row = {"cohort": cohort, "seed": seed, "draw": draw, "n_measured": n_measured}
            for name, est in estimates.items():
                row[f"ccc_{name}"] = ccc(est.loc[rest], truth.loc[rest])
                for label in labels:
                    row[f"gap_{name}_{label}"] = est.loc[rest, label].mean() - truth.loc[rest, label].mean()
            rows.append(row)
    return pd.DataFrame(rows)


def run(cohort: str, seed: int, n_measured: int, n_subsets: int) -> pd.DataFrame:
    """One model of ``cohort`` at ``seed``; one row per random draw of ``n_measured`` measured samples."""
    model, truth = _trained(cohort, seed)
    labels = list(model.labels_)
    default = known(model.get_fractions(), labels)
    model.interval_calibration_ = None  # intervals are not scored here: skip calibrating them again at every draw
    model.fit_platform_gains(truth)  # the diagnosis: gains fitted from every sample's flow fractions
    oracle = known(model.get_fractions(), labels)
    model.fit_platform_gains(mean_fractions=truth.mean())  # the cohort's mean composition (flow, every sample)
    cohort_mean = known(model.get_fractions(), labels)
    model.fit_platform_gains(mean_fractions=other_cohort_mean(cohort, labels))  # a published composition's stand-in
    other_mean = known(model.get_fractions(), labels)
    rows = []
    for draw, measured in enumerate(draws(len(truth), seed, n_measured, n_subsets)):
        model.fit_platform_gains(truth.iloc[measured])
        anchored = known(model.get_fractions(), labels)
        rest = truth.index[np.setdiff1d(np.arange(len(truth)), measured)]
        row = {"cohort": cohort, "seed": seed, "draw": draw, "n_measured": n_measured, "n_scored": len(rest)}
        sources = (default, anchored, oracle, cohort_mean, other_mean)
        for name, est in zip(SOURCES, sources, strict=True):
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
    rows = []
    for draw, measured in enumerate(draws(len(truth), seed, n_measured, n_subsets)):
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


def _labels(rows: pd.DataFrame, prefix: str) -> list[str]:
    """The labels of one cohort's rows: the columns named ``prefix + label`` that hold a value (cohorts whose
    references differ share one CSV)."""
    return [c.removeprefix(prefix) for c in rows.columns if c.startswith(prefix) and rows[c].notna().any()]


def interval_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Per cohort, default and anchored: CCC, coverage (mean over seeds and draws; the seed furthest from 0.875, the
    middle of the 80-95 % band), mean width, and each label's coverage."""
    out = []
    for cohort, g in results.groupby("cohort", sort=False):
        per_seed = g.groupby("seed").mean(numeric_only=True)
        labels = _labels(g, "covered_default_")
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


def with_peers(results: pd.DataFrame, peers: pd.DataFrame | None) -> pd.DataFrame:
    """DECODE's rows with the peers' scores of the same cohort, seed and draw beside them (where run)."""
    if peers is None or peers.empty:
        return results
    keys = ["cohort", "seed", "draw", "n_measured"]
    return results.merge(peers, on=keys, how="left")


def summary(results: pd.DataFrame) -> pd.DataFrame:
    """Per cohort: pooled CCC and every label's mean gap on the unmeasured samples, per source of the gains
    (:data:`SOURCES`, those that ran on every row of the cohort) and the peers, where :func:`with_peers` added them;
    mean over seeds and draws, and the worst seed's mean (lowest CCC, largest absolute gap)."""
    out = []
    for cohort, g in results.groupby("cohort", sort=False):
        per_seed = g.groupby("seed").mean(numeric_only=True)
        labels = _labels(g, "gap_default_")
        ran = [m for m in (*SOURCES, *PEER_METHODS) if f"ccc_{m}" in g and g[f"ccc_{m}"].notna().all()]
        for name in ran:
            label = name if name in SOURCES else f"{name} (same samples)"
            row = {"cohort": cohort, "gains from": label, "seeds": len(per_seed), "draws": len(g)}
            row["CCC (unmeasured samples)"] = per_seed[f"ccc_{name}"].mean()
            row["worst seed"] = per_seed[f"ccc_{name}"].min()
            for label in labels:
                gaps = per_seed[f"gap_{name}_{label}"]
                row[f"{label} gap"] = gaps.mean()
                row[f"{label} worst"] = gaps.iloc[np.abs(gaps.to_numpy()).argmax()]
            out.append(row)
    return pd.DataFrame(out)


def markdown(table: pd.DataFrame) -> str:
    """The method page's table: per cohort and source of the gains, CCC and every label's mean gap (worst seed;
    empty where the cohort's reference lacks the label)."""
    labels = [c.removesuffix(" gap") for c in table.columns if c.endswith(" gap")]
    head = ["cohort", "gains from", "pooled CCC, unmeasured samples"] + [f"{label} mean gap" for label in labels]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for values in table.itertuples(index=False, name=None):
        row = dict(zip(table.columns, values, strict=True))
        cells = [row["cohort"], row["gains from"], f"{row['CCC (unmeasured samples)']:.3f} ({row['worst seed']:.3f})"]
        cells += [
            "" if pd.isna(row[f"{label} gap"]) else f"{row[f'{label} gap']:+.3f} ({row[f'{label} worst']:+.3f})"
            for label in labels
        ]
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
        "--peers", action="store_true", help=f"run {', '.join(PEER_METHODS)} on the same draws ({PEER_RESULTS.name})"
    )
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
    if args.peers and not args.summary_only:
        runs = [run_peers(c, args.seeds, args.measured, args.subsets) for c in args.cohorts]
        _merge_write(pd.concat(runs), PEER_RESULTS, keys)
    elif not args.summary_only:
        _merge_write(
            pd.concat([run(c, s, args.measured, args.subsets) for c in args.cohorts for s in args.seeds]), RESULTS, keys
        )
    peers = pd.read_csv(PEER_RESULTS) if PEER_RESULTS.exists() else None
    table = summary(with_peers(pd.read_csv(RESULTS), peers))
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print(table.round(3).to_string(index=False))
    print(markdown(table))


if __name__ == "__main__":
    main()
