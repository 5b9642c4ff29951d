"""Does ``tl.deconvolve``'s default check see what the reference lacks? (issue 20: the user is told)

``tl.deconvolve`` runs in relative mode by default. A relative-mode model on a linear scale also learns an unknown
head (:meth:`~decode_omics.model.DECODE.get_unexplained`), and the function names, in a warning, every sample whose
unexplained share exceeds ``UNEXPLAINED_WARNING``. The robustness suite's missing-material rows run absolute mode,
whose ``unknown`` share is another reading. This trains the default relative-mode model on the robustness suite's
full-reference and leave-out tasks of every linear-scale layer (proteomics, read as stored, has no unknown head) and
records, per task and seed, the unexplained share over the bulk samples against the truth's missing share: median and
10-90 % range, the share of samples the warning would name, RMSE and Pearson r, and the bulk's median reference fit
(above ``UNEXPLAINED_MAX_FIT`` nothing is named). Transductive, as every DECODE figure: the model sees the unlabelled
bulk it reads; the truth only scores.

Run: ``python -m benchmarks.unexplained_check --seeds 0 1 2`` (about 30 minutes per seed on one thread; writes
``benchmarks/results/unexplained_check.csv``; ``--layers`` as ``BENCHMARKS_ROBUSTNESS_LAYERS``, ``--out`` another
file, ``--resume`` skips what it holds, ``--table`` prints the stored table).
"""

from __future__ import annotations

import argparse
import os
import re
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).parent / "results" / "unexplained_check.csv"
#: The suite's tasks read here: each layer's full reference and its leave-out tasks (not the damaged bulks).
TASKS = r"full reference$|left out"


def _row(task, seed: int, **train_kwargs) -> dict | None:
    """Train the default relative-mode model on one task and summarise its unexplained share (``None`` where the
    model has no unknown head). ``train_kwargs`` go to ``train`` (the tests' short runs; the benchmark uses none)."""
    import scvi

    from decode_omics.model import DECODE
    from decode_omics.model._calibration import check_unexplained

    from .__main__ import score
    from .methods import _lightweight
    from .uncertainty import _commit

    start = time.perf_counter()
    ref, bulk = _lightweight(task.reference, None, task.labels_key), _lightweight(task.bulk, None)
    DECODE.setup_anndata(ref, labels_key=task.labels_key, scale=task.scale)
    DECODE.setup_anndata(bulk, scale=task.scale)
    scvi.settings.seed = seed
    model = DECODE(ref, bulk, mode="relative")
    if model.module.head.unknown is None:
        return None
    model.train(**({"enable_progress_bar": False} | train_kwargs))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        estimate = model.get_fractions()
        unexplained, reference_fit = model.get_unexplained(), model.get_reference_fit()
        checked = check_unexplained(unexplained, reference_fit, "relative")  # what tl.deconvolve names
    share, fit = unexplained.to_numpy(dtype=float), checked["median_reference_fit"]
    truth = task.truth["unknown"].to_numpy(dtype=float) if "unknown" in task.truth else np.zeros(share.size)
    q10, median, q90 = np.quantile(share, [0.1, 0.5, 0.9])
    return {
        "task": task.name,
        "seed": seed,
        "n_samples": share.size,
        "truth_median": float(np.median(truth)),
        "median": median,
        "q10": q10,
        "q90": q90,
        "named": len(checked["flagged"]) / share.size,
        "rmse": float(np.sqrt(np.mean((share - truth) ** 2))),
        "pearson": float(np.corrcoef(share, truth)[0, 1]) if truth.std() > 0 else np.nan,
        "median_reference_fit": fit,
        "ccc_known": score(estimate, task.truth)["ccc"],
        "seconds": time.perf_counter() - start,
        "commit": _commit(),
    }


def run(seeds: list[int], out: Path, resume: bool = False) -> pd.DataFrame:
    """Every seed's rows, merged into ``out`` (rows of other tasks and seeds kept) after each task; with ``resume``,
    the tasks and seeds ``out`` holds already are skipped."""
    from . import robustness
    from ._tables import merge_rows, write_table

    done = set()
    if resume and out.exists():
        done = set(pd.read_csv(out).loc[:, ["task", "seed"]].itertuples(index=False, name=None))
    rows = []
    for seed in seeds:
        for task in robustness.robustness():
            if task.scale == "as_is" or not re.search(TASKS, task.name) or (task.name, seed) in done:
                continue
            row = _row(task, seed)
            if row is not None:
                rows.append(row)
                new = pd.DataFrame(rows)
                write_table(merge_rows(new, out, keys=("task", "seed")), out)
    return pd.DataFrame(rows)


def table(path: Path = RESULTS) -> pd.DataFrame:
    """Per task, over the seeds stored: the median share per seed, the share of samples named, RMSE and r."""
    rows = pd.read_csv(path)
    order = list(dict.fromkeys(rows["task"]))
    out = []
    for task, group in rows.groupby("task", sort=False):
        group = group.sort_values("seed")
        out.append(
            {
                "task": task,
                "seeds": len(group),
                "missing share (truth, median)": group["truth_median"].iloc[0],
                "unexplained, median per seed": ", ".join(f"{v:.2f}" for v in group["median"]),
                "samples named (per seed)": ", ".join(f"{v:.0%}" for v in group["named"]),
                "RMSE (mean; worst)": f"{group['rmse'].mean():.3f} ({group['rmse'].max():.3f})",
                "r (mean)": group["pearson"].mean(),
                "median reference fit": group["median_reference_fit"].median(),
            }
        )
    return pd.DataFrame(out).set_index("task").loc[order].reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.unexplained_check", description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--layers", help="comma-separated robustness layers (all by default)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--resume", action="store_true", help="skip the tasks and seeds --out holds already")
    parser.add_argument("--table", action="store_true", help="print the stored table and exit")
    args = parser.parse_args()
    if not args.table:
        from .robustness import LAYERS_ENV, TASKS_ENV

        os.environ.setdefault(TASKS_ENV, TASKS)  # the damaged bulks are not even built
        if args.layers:
            os.environ[LAYERS_ENV] = args.layers
        run(args.seeds, args.out, resume=args.resume)
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_colwidth", 60):
        print(table(args.out).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
