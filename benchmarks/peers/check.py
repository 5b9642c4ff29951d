"""Run peers on benchmark scenarios and print pooled CCC and wall time (integration check).

    cd /work/main && OMP_NUM_THREADS=1 /work/venv/bin/python benchmarks/peers/check.py dtangle --scenario pbmc_real
    ... check.py --list                          # which peers are set up
    ... check.py RNA-Sieve TAPE --scenario pbmc_real --seed 0 --save

``--save`` also writes ``benchmarks/results/jobs/<scenario>__<Peer>__<seed>__default.json`` (+ ``.csv.gz``) in the
format ``python -m benchmarks job`` writes, so that ``python -m benchmarks run --cached-only`` picks them up.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from benchmarks.peers import PEERS, PeerUnavailable, available  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("peers", nargs="*")
    parser.add_argument("--scenario", default="pbmc_real")
    parser.add_argument(
        "--tasks", default=None, help="task names separated by semicolons (names may hold commas; default: all)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", action="store_true")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()
    if args.list or not args.peers:
        for name, state in available().items():
            print(f"{name:24s} {state}")
        return

    from benchmarks.__main__ import score
    from benchmarks.scenarios import SCENARIOS

    tasks = SCENARIOS[args.scenario]()
    if args.tasks:
        keep = {name.strip() for name in args.tasks.split(";")}
        tasks = [t for t in tasks if t.name in keep]
    for name in args.peers:
        peer = PEERS[name]
        rows, estimates = [], []
        for task in tasks:
            start = time.perf_counter()
            try:
                est = peer(task, args.seed)
            except PeerUnavailable as err:
                print(f"{name:22s} {task.name:24s} UNAVAILABLE: {err}", flush=True)
                continue
            seconds = time.perf_counter() - start
            s = score(est, task.truth)
            print(
                f"{name:22s} {task.scenario}/{task.name:24s} ccc={s['ccc']:.3f} rmse={s['rmse']:.3f} "
                f"r={s['pearson']:.3f} {seconds:.0f}s  per-label {s['per_label_ccc']}",
                flush=True,
            )
            rows.append(
                {
                    "scenario": task.scenario,
                    "task": task.name,
                    "method": name,
                    "seed": args.seed,
                    "seconds": seconds,
                    **s,
                }
            )
            long = est.loc[task.truth.index].melt(ignore_index=False, var_name="label", value_name="estimate")
            truth = task.truth.melt(ignore_index=False, var_name="label", value_name="truth")
            merged = long.reset_index().merge(truth.reset_index(), on=["index", "label"], how="inner")
            estimates.append(merged.assign(scenario=task.scenario, task=task.name))
        if args.save and rows and len(rows) == len(tasks):
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            for row in rows:
                row["peak_rss_mb"] = peak
            jobs = ROOT / "benchmarks" / "results" / "jobs"
            jobs.mkdir(parents=True, exist_ok=True)
            out = jobs / f"{args.scenario}__{name.replace(' ', '_')}__{args.seed}__default.json"
            out.write_text(json.dumps(rows))
            pd.concat(estimates).to_csv(out.with_suffix(".csv.gz"), index=False)
            print(f"saved {out}")


if __name__ == "__main__":
    main()
