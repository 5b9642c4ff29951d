"""Run the decode-omics benchmarks.

    python -m benchmarks run --quick        # DECODE, NNLS, dtangle, one seed; not noise, batch, tscp_narrow
    python -m benchmarks run --full         # plus the ablation and every peer, three seeds, every scenario
    python -m benchmarks throughput         # the pseudo-tissue engine against per-sample loops
    python -m benchmarks report             # rewrite the tables and docs/benchmarks.md from cached job results
    python -m benchmarks scaling            # on-disk references (100k, 1M cells) and a 200k-sample cohort

``run`` writes ``benchmarks/results/scores.csv`` (one row per scenario x task x method x seed), ``jobs.csv`` (one row
per job that recorded its provenance: commit, uncommitted files, time, full configuration), ``estimate_stats.csv``
(the estimates' spread per job x task, and the seeds' averaged estimates scored), ``summary.csv`` and
``docs/benchmarks.md`` with figures in ``docs/_static/benchmarks/``. Every (scenario, method, seed) job runs in its own
process so that its wall time and peak resident memory are its own.

Each job's own result (``benchmarks/results/jobs/<scenario>__<method>__<seed>__<epochs>.json`` and its estimates,
``.csv.gz``) is a local cache, git-ignored: the tracked tables above hold everything the page shows, so ``report``
rewrites the page from them alone in a fresh clone, and takes a job's rows from the cache where the cache holds that
job. ``run --full --rerun`` (with the peers set up) recomputes the cache; to keep one, archive it
(``tar czf benchmark-jobs-$(git rev-parse --short HEAD).tar.gz benchmarks/results/jobs``).
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

from ._cache import job_key, task_estimates
from .report import ABLATION, PEERS

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DOCS = HERE.parent / "docs"

QUICK_METHODS = ["DECODE", "NNLS", "dtangle"]
#: Scenarios only --full runs (the noise and batch scenarios refit DECODE on 20 and 3 perturbed cohorts; tscp_narrow
#: is a check of the adversarial stage under label shift; robustness is a development suite of 42 tasks).
FULL_ONLY_SCENARIOS = ("noise", "tscp_narrow", "batch", "robustness")
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
    provenance = _provenance(args, tasks)
    # kB -> MB on Linux; a peer runs in a child process, so the larger of this process and its children counts
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    for row in rows:
        row["peak_rss_mb"] = max(own, children)
        row["peak_rss_with_children"] = True
        row.update(provenance)
    Path(args.out).write_text(json.dumps(rows))
    if estimates:
        pd.concat(estimates).to_csv(Path(args.out).with_suffix(".csv.gz"), index=False)
    else:  # no task gave estimates: an earlier run's must not stay next to this result
        Path(args.out).with_suffix(".csv.gz").unlink(missing_ok=True)


#: What a job records about its origin (see `_provenance`), one value per job.
PROVENANCE = ("commit", "uncommitted", "package_source", "recorded_utc", "config")


def _git(*argv: str, strip: bool = True) -> str:
    try:
        out = subprocess.run(["git", *argv], cwd=HERE.parent, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    if out.returncode != 0:
        return ""
    return out.stdout.strip() if strip else out.stdout


def _provenance(args, tasks) -> dict:
    """What a job result records about where it came from: the package commit (``git rev-parse HEAD``), the files
    under ``src/`` and ``benchmarks/`` that differed from it (the job ran on that commit plus those edits), the UTC
    time, and the full configuration (method settings with every default resolved, tasks, threads, versions) as
    JSON."""
    import decode_omics

    from .methods import method_config

    source = Path(decode_omics.__file__).resolve().parent
    in_repo = source.is_relative_to(HERE.parent)
    # tracked files changed since the commit and untracked ones, under the package (if imported from this
    # checkout) and the benchmark code
    paths = ["src", "benchmarks"] if in_repo else ["benchmarks"]
    changed = _git("status", "--porcelain", "--untracked-files=all", "--", *paths, strip=False)
    changed_files = [line[3:] for line in changed.splitlines() if line.strip() and "/results/" not in line]
    config = {
        "scenario": args.scenario,
        "method": args.method,
        "seed": args.seed,
        "max_epochs": args.max_epochs,
        "threads": {v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")},
        "tasks": [
            {
                "task": t.name,
                "mode": t.mode,
                "scale": t.scale,
                "labels_key": t.labels_key,
                "reference": list(t.reference.shape),
                "bulk": list(t.bulk.shape),
            }
            for t in tasks
        ],
        "method_config": method_config(args.method, args.max_epochs),
        "versions": _versions(),
    }
    return {
        "commit": _git("rev-parse", "HEAD") or "unknown",
        "uncommitted": ";".join(changed_files),
        "package_source": "this checkout" if in_repo else _compare_to_commit(source),
        "recorded_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": json.dumps(config, sort_keys=True, default=repr),
    }


def _compare_to_commit(source: Path) -> str:
    """For a package imported from outside this checkout: which commit's ``src/decode_omics`` its files are (HEAD,
    else one of the 20 latest commits that changed ``src/``), checked file by file."""
    files = sorted(
        str(f.relative_to(source)) for f in source.rglob("*") if f.is_file() and "__pycache__" not in f.parts
    )
    hashes = _git("hash-object", *[str(source / f) for f in files]).split() if files else []
    head = _git("rev-parse", "HEAD")
    for commit in dict.fromkeys([head, *_git("log", "-n", "20", "--format=%H", "--", "src").split()]):
        listed = _git("ls-tree", "-r", commit, "src/decode_omics")
        blobs = {line.split("\t")[1].removeprefix("src/decode_omics/"): line.split()[2] for line in listed.splitlines()}
        if blobs and files == sorted(blobs) and hashes == [blobs[f] for f in files]:
            if commit == head:
                return "a copy of the commit's src/ (verified file by file)"
            return f"a copy of commit {commit[:10]}'s src/ (verified file by file; HEAD had moved on)"
    return f"outside the checkout, matching no recent commit's src/: {source}"


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
    plan = _plan(scenarios, methods, seeds, args.max_epochs, cache)
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
    # The page and the tracked tables hold every job: the ones just planned and every job `report` knows, each read
    # from the local cache where it holds the job, else from the tracked tables (a clone has no cache).
    everything = _plan(list(SCENARIOS), REPORT_METHODS, range(3), None, cache)
    page = list(dict.fromkeys([p[3:] for p in plan] + [p[3:] for p in everything]))
    scores = _collect(page, fresh)
    stats = _estimate_stats(page)
    keys = ["scenario", "method", "seed"]
    scores.dropna(subset=["commit"]).drop_duplicates("job")[["job", *keys, *PROVENANCE]].to_csv(
        TABLES["jobs"], index=False
    )
    scores.drop(columns=["config", "_order"]).to_csv(TABLES["scores"], index=False)
    stats.to_csv(TABLES["estimate_stats"], index=False)
    from .per_label import collect as per_label

    labels = per_label(page, TABLES["per_label"])
    labels.to_csv(TABLES["per_label"], index=False)
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
    summary.to_csv(TABLES["summary"], index=False)
    from .report import write_report

    write_report(scores, summary, _versions(), DOCS, stats, labels)
    print(summary.to_string(index=False))


#: The tracked tables (``benchmarks/results``): everything the page shows, so that ``report`` rewrites it without the
#: per-job cache (``benchmarks/results/jobs``, git-ignored).
TABLES = {
    "scores": RESULTS / "scores.csv",  # one row per job x task
    "jobs": RESULTS / "jobs.csv",  # one row per job that recorded its provenance, with its configuration
    "estimate_stats": RESULTS / "estimate_stats.csv",  # the estimates' spread per job x task; seeds averaged
    "summary": RESULTS / "summary.csv",  # one row per scenario x task x method
    "per_label": RESULTS / "per_label.csv",  # each label's mean estimate, mean truth and CCC per job x task
}


def _plan(scenarios, methods, seeds, max_epochs, cache: Path) -> list[tuple]:
    """(scenario, method, seed, tag, cached result path) for every job; NNLS (deterministic) runs seed 0 only."""
    plan = []
    for scenario in scenarios:
        for method in methods:
            for seed in seeds if method != "NNLS" else [0]:
                tag = f"{scenario}__{method.replace(' ', '_')}__{seed}__{max_epochs or 'default'}"
                plan.append((scenario, method, seed, tag, cache / f"{tag}.json"))
    return plan


def _collect(page: list[tuple[str, Path]], fresh: set) -> pd.DataFrame:
    """Rows of every job on the page: from its cached result where the cache holds it, else from the tracked
    ``scores.csv`` (with the configuration from ``jobs.csv``); rows of the tables' other jobs are kept if their
    scenario still exists. Ordered as the page's jobs, then as stored."""
    from .scenarios import SCENARIOS

    rows, from_cache = [], set()
    for tag, out in page:
        if out.exists():
            rows += [row | {"job": tag, "cached": tag not in fresh} for row in json.loads(out.read_text())]
            from_cache.add(tag)
    scores = pd.DataFrame(rows)
    if TABLES["scores"].exists():
        kept = pd.read_csv(TABLES["scores"], float_precision="round_trip")
        if "job" not in kept:  # tables written before jobs were named in them: every job then ran with defaults
            kept["job"] = (
                kept["scenario"] + "__" + kept["method"].str.replace(" ", "_") + "__" + kept["seed"].astype(str)
            ) + "__default"
        kept = kept[~kept["job"].isin(from_cache) & kept["scenario"].isin(list(SCENARIOS))]
        if TABLES["jobs"].exists() and not kept.empty:
            config = pd.read_csv(TABLES["jobs"], float_precision="round_trip")
            if "job" in config and "config" in config:
                kept = kept.merge(config[["job", "config"]], on="job", how="left")
        scores = pd.concat([scores, kept.assign(cached=True)], ignore_index=True)
    order = {tag: i for i, (tag, _) in enumerate(page)}
    scores["_order"] = scores["job"].map(order).fillna(len(order))
    scores = scores.sort_values("_order", kind="stable").reset_index(drop=True)
    # jobs cached before peers' child processes were measured: their peak RSS is the harness's alone
    measured = (
        scores["peak_rss_with_children"] if "peak_rss_with_children" in scores else pd.Series(False, scores.index)
    )
    scores["peak_rss_with_children"] = measured.eq(True)
    for col in ("unknown_rmse", "note", *PROVENANCE):
        if col not in scores:
            scores[col] = np.nan
    if TABLES["scores"].exists():  # the tracked table's column order, so that new rows do not rewrite every line
        stored = list(pd.read_csv(TABLES["scores"], nrows=0).columns)
        scores = scores[[c for c in stored if c in scores] + [c for c in scores if c not in stored]]
    return scores


def _estimate_stats(page: list[tuple[str, Path]]) -> pd.DataFrame:
    """Per job x task, the spread of the stored estimates over samples (per-label sd, averaged over labels) and the
    truth's; per scenario x task x method with two or more seeds, the pooled CCC of the seeds' averaged estimates
    (seed -1). Read from the cached estimates where the cache holds them, else kept from the tracked table."""
    import decode_omics as dco

    rows, averaged, from_cache = [], {}, set()
    for tag, out in page:
        gz = out.with_suffix(".csv.gz")
        if not gz.exists():
            continue
        from_cache.add(tag)
        scenario, method, seed = job_key(tag)
        for task, est, truth in task_estimates(pd.read_csv(gz)):
            rows.append(
                {
                    "job": tag,
                    "scenario": scenario,
                    "task": task,
                    "method": method,
                    "seed": seed,
                    "estimate_sd": float(est.std().mean()),
                    "truth_sd": float(truth.std().mean()),
                }
            )
            if tag.endswith("__default"):
                averaged.setdefault((scenario, task, method), []).append((est, truth))
    for (scenario, task, method), runs in averaged.items():
        if len(runs) < 2:
            continue
        est = sum(e for e, _ in runs) / len(runs)
        est = est.div(est.sum(axis=1), axis=0)
        truth = runs[0][1].div(runs[0][1].sum(axis=1), axis=0)
        rows.append(
            {
                "job": f"{scenario}__{method.replace(' ', '_')}__seeds_averaged",
                "scenario": scenario,
                "task": task,
                "method": method,
                "seed": -1,
                "seeds": len(runs),
                "ccc": float(dco.metrics.ccc(est, truth)),
            }
        )
    columns = ["job", "scenario", "task", "method", "seed", "estimate_sd", "truth_sd", "seeds", "ccc"]
    stats = pd.DataFrame(rows, columns=columns)
    if TABLES["estimate_stats"].exists():
        kept = pd.read_csv(TABLES["estimate_stats"], float_precision="round_trip")
        averaged_here = set(stats.loc[stats["seed"] == -1, "job"])
        kept = kept[~kept["job"].isin(from_cache | averaged_here)]
        stats = pd.concat([stats, kept[columns]], ignore_index=True)
    return stats


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the scenarios and write results and docs/benchmarks.md")
    g = r.add_mutually_exclusive_group()
    g.add_argument(
        "--quick",
        action="store_true",
        help="DECODE, NNLS and dtangle, one seed, no noise, batch or tscp_narrow (default)",
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
