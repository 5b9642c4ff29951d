"""Run the decode-omics benchmarks.

    python -m benchmarks run --quick        # DECODE, NNLS, dtangle, one seed, all scenarios but noise, tscp_narrow
    python -m benchmarks run --full         # plus the ablation and every peer, three seeds, every scenario
    python -m benchmarks throughput         # the pseudo-tissue engine against per-sample loops
    python -m benchmarks report             # rewrite the tables and docs/benchmarks.md from cached job results
    python -m benchmarks scaling            # on-disk references (100k, 1M cells) and a 200k-sample cohort

``run`` writes ``benchmarks/results/scores.csv`` (one row per scenario x task x method x seed), ``summary.csv`` and
``docs/benchmarks.md`` with figures in ``docs/_static/benchmarks/``. Every (scenario, method, seed) job runs in its own
process so that its wall time and peak resident memory are its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .report import ABLATION, PEERS

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DOCS = HERE.parent / "docs"

QUICK_METHODS = ["DECODE", "NNLS", "dtangle"]
#: Scenarios only --full runs (the noise scenario refits DECODE on 20 perturbed cohorts; tscp_narrow is a check of
#: the adversarial stage under label shift).
FULL_ONLY_SCENARIOS = ("noise", "tscp_narrow")
FULL_METHODS = ["DECODE", *ABLATION, *PEERS]
#: What `report` shows: every method of --full, Scaden's smallest member alone and the data-parallel check.
REPORT_METHODS = [*FULL_METHODS, "Scaden m256", "DECODE 2-process DDP"]


def score(estimate: pd.DataFrame, truth: pd.DataFrame) -> dict:
    """Pooled CCC / RMSE / r and per-label CCC over the labels both have, each side renormalised over them."""
    import decode_omics as dco

    labels = [c for c in truth.columns if c in estimate.columns and c != "unknown"]
    e = estimate.loc[truth.index, labels]
    t = truth[labels]
    e = e.div(e.sum(axis=1).replace(0, np.nan), axis=0).fillna(1 / len(labels))
    t = t.div(t.sum(axis=1), axis=0)
    out = {
        "ccc": dco.metrics.ccc(e, t),
        "rmse": dco.metrics.rmse(e, t),
        "pearson": dco.metrics.pearson(e, t),
        "per_label_ccc": json.dumps({k: round(float(v), 4) for k, v in dco.metrics.ccc(e, t, per_label=True).items()}),
    }
    if "unknown" in truth.columns and "unknown" in estimate.columns:
        out["unknown_rmse"] = float(np.sqrt(((estimate.loc[truth.index, "unknown"] - truth["unknown"]) ** 2).mean()))
    return out


def job(args) -> None:
    """One scenario x method x seed in this process; writes a JSON list of rows."""
    from .methods import methods
    from .scenarios import SCENARIOS

    tasks = SCENARIOS[args.scenario]()
    fn = methods(args.max_epochs)[args.method]
    rows, estimates = [], []
    from .peers import PeerFailed, PeerUnavailable

    for task in tasks:
        start = time.perf_counter()
        try:
            estimate = fn(task, args.seed)
        except (PeerUnavailable, PeerFailed) as why:  # a row with the reason, not a silent gap
            note = str(why).strip().splitlines()[0][:240]
            rows.append(
                {"scenario": task.scenario, "task": task.name, "method": args.method, "seed": args.seed}
                | {"ccc": np.nan, "rmse": np.nan, "pearson": np.nan, "seconds": np.nan, "note": note}
            )
            continue
        seconds = time.perf_counter() - start
        long = estimate.loc[task.truth.index].melt(ignore_index=False, var_name="label", value_name="estimate")
        truth = task.truth.melt(ignore_index=False, var_name="label", value_name="truth")
        merged = long.reset_index().merge(truth.reset_index(), on=["index", "label"], how="inner")
        estimates.append(merged.assign(scenario=task.scenario, task=task.name))
        rows.append(
            {
                "scenario": task.scenario,
                "task": task.name,
                "method": args.method,
                "seed": args.seed,
                "seconds": seconds,
                **score(estimate, task.truth),
            }
        )
    if int(os.environ.get("LOCAL_RANK", "0")) != 0:
        return  # another process of a data-parallel run: rank 0 reports
    # kB -> MB on Linux; a peer runs in a child process, so the larger of this process and its children counts
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    for row in rows:
        row["peak_rss_mb"] = max(own, children)
        row["peak_rss_with_children"] = True
    Path(args.out).write_text(json.dumps(rows))
    if estimates:
        pd.concat(estimates).to_csv(Path(args.out).with_suffix(".csv.gz"), index=False)


def _versions() -> dict:
    from importlib.metadata import version

    import scvi
    import torch

    import decode_omics

    return {
        "decode-omics": decode_omics.__version__,
        "scvi-tools": scvi.__version__,
        "torch": torch.__version__,
        "anndata": version("anndata"),
        "python": platform.python_version(),
    }


def _expected_seconds(out: Path) -> float:
    """A job's duration when it last ran (from its cached result); jobs never run count as the longest."""
    if not out.exists():
        return np.inf
    return float(sum(row.get("seconds") or 0.0 for row in json.loads(out.read_text())))


def run(args) -> None:
    from .scenarios import SCENARIOS

    default = list(SCENARIOS) if args.full else [s for s in SCENARIOS if s not in FULL_ONLY_SCENARIOS]
    scenarios = args.scenarios.split(",") if args.scenarios else default
    methods = args.methods.split(",") if args.methods else (FULL_METHODS if args.full else QUICK_METHODS)
    seeds = list(range(args.seeds if args.seeds else (3 if args.full else 1)))
    RESULTS.mkdir(exist_ok=True)
    cache = RESULTS / "jobs"
    cache.mkdir(exist_ok=True)
    plan = []
    for scenario in scenarios:
        for method in methods:
            for seed in seeds if method != "NNLS" else [0]:
                tag = f"{scenario}__{method.replace(' ', '_')}__{seed}__{args.max_epochs or 'default'}"
                plan.append((scenario, method, seed, tag, cache / f"{tag}.json"))
    from .methods import defaults_alias

    alias = defaults_alias()
    for _scenario, method, _seed, _tag, out in plan:  # "DECODE" is the same configuration as the alias: reuse its jobs
        twin = cache / out.name.replace("__DECODE__", f"__{alias.replace(' ', '_')}__")
        if method == "DECODE" and not out.exists() and twin.exists():
            out.write_text(json.dumps([r | {"method": "DECODE"} for r in json.loads(twin.read_text())]))
            if twin.with_suffix(".csv.gz").exists():
                shutil.copy(twin.with_suffix(".csv.gz"), out.with_suffix(".csv.gz"))
    todo = [p for p in plan if (args.rerun or not p[4].exists()) and not args.cached_only]
    todo.sort(key=lambda p: -_expected_seconds(p[4]))  # longest first, so the slowest job does not start last
    fresh = set()

    def _one(item) -> None:
        scenario, method, seed, tag, out = item
        cmd = [sys.executable, "-m", "benchmarks", "job", "--scenario", scenario, "--method", method]
        cmd += ["--seed", str(seed), "--out", str(out)]
        if args.max_epochs:
            cmd += ["--max-epochs", str(args.max_epochs)]
        start = time.perf_counter()
        env = os.environ | {"OMP_NUM_THREADS": str(args.threads), "NUMBA_NUM_THREADS": str(args.threads)}
        proc = subprocess.run(cmd, cwd=HERE.parent, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            print(f"FAILED {tag}:\n{proc.stderr[-2000:]}", file=sys.stderr, flush=True)
            return
        fresh.add(tag)
        print(f"{tag}: {time.perf_counter() - start:.0f} s", flush=True)

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        list(pool.map(_one, todo))
    rows = []
    for _scenario, _method, _seed, tag, out in plan:
        if out.exists():
            rows += [row | {"cached": tag not in fresh} for row in json.loads(out.read_text())]
    scores = pd.DataFrame(rows)
    # jobs cached before peers' child processes were measured: their peak RSS is the harness's alone
    measured = (
        scores["peak_rss_with_children"] if "peak_rss_with_children" in scores else pd.Series(False, scores.index)
    )
    scores["peak_rss_with_children"] = measured.eq(True)
    if "unknown_rmse" not in scores:
        scores["unknown_rmse"] = np.nan
    scores.to_csv(RESULTS / "scores.csv", index=False)
    summary = (
        scores.groupby(["scenario", "task", "method"])
        .agg(
            ccc=("ccc", "mean"),
            ccc_sd=("ccc", "std"),
            rmse=("rmse", "mean"),
            pearson=("pearson", "mean"),
            seconds=("seconds", "mean"),
            unknown_rmse=("unknown_rmse", "mean"),
            peak_rss_mb=("peak_rss_mb", "max"),
            peak_rss_with_children=("peak_rss_with_children", "all"),
            seeds=("seed", "nunique"),
        )
        .reset_index()
    )
    summary.to_csv(RESULTS / "summary.csv", index=False)
    from .report import write_report

    write_report(scores, summary, _versions(), DOCS)
    print(summary.to_string(index=False))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the scenarios and write results and docs/benchmarks.md")
    g = r.add_mutually_exclusive_group()
    g.add_argument(
        "--quick", action="store_true", help="DECODE, NNLS and dtangle, one seed, no noise or tscp_narrow (default)"
    )
    g.add_argument("--full", action="store_true", help="all DECODE variants, three seeds")
    r.add_argument("--scenarios", help="comma-separated subset")
    r.add_argument("--methods", help="comma-separated subset")
    r.add_argument("--seeds", type=int, help="number of seeds")
    r.add_argument("--max-epochs", type=int, help="override DECODE's training epochs")
    r.add_argument("--rerun", action="store_true", help="ignore cached job results")
    r.add_argument("--cached-only", action="store_true", help="only report jobs that have cached results")
    r.add_argument("--threads", type=int, default=1, help="CPU threads per job (default 1: jobs are timed alike)")
    r.add_argument("--jobs", type=int, default=2, help="jobs run at once (default 2, one per core)")
    j = sub.add_parser("job", help=argparse.SUPPRESS)
    j.add_argument("--scenario", required=True)
    j.add_argument("--method", required=True)
    j.add_argument("--seed", type=int, default=0)
    j.add_argument("--max-epochs", type=int)
    j.add_argument("--out", required=True)
    sub.add_parser("report", help="rewrite results/*.csv and docs/benchmarks.md from the cached jobs (runs none)")
    sub.add_parser("throughput", help="time the pseudo-tissue engine against per-sample loops")
    sub.add_parser("scaling", help="peak memory and speed with on-disk references and cohorts", add_help=False)
    args, rest = parser.parse_known_args(argv)
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    if args.command == "run":
        run(args)
    elif args.command == "report":
        every = {"scenarios": None, "methods": ",".join(REPORT_METHODS), "seeds": 3, "max_epochs": None}
        run(argparse.Namespace(full=True, cached_only=True, rerun=False, threads=1, jobs=1, **every))
    elif args.command == "job":
        job(args)
    elif args.command == "scaling":
        from .scaling import main as scaling

        scaling(rest)
    else:
        from .simulate_throughput import main as throughput

        throughput(rest)


if __name__ == "__main__":
    main()
