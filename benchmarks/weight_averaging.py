"""What weight averaging changes: the last step's weights against their moving average, in the same training run.

Each task is trained once per seed with ``weight_averaging=0`` (the network keeps its last step's weights, as before
the option existed) while a :class:`~decode_omics.model._averaging.WeightAverage` with the package's default decay
follows the same steps. The estimates of the last weights are scored, then the averaged weights are put in, the
platform gains refitted from them (as :meth:`DECODE.train` does), and those estimates are scored: a paired comparison,
free of the seed's other effects. For values read as stored (proteomics) the transferable-feature mask comes from the
last weights in both arms (the package fits it from the averaged ones). Transductive, like every DECODE figure: the
model sees the unlabelled bulk it scores; no truth is used to fit anything.

Run: ``python -m benchmarks.weight_averaging run --scenarios pbmc_real bone_marrow --seeds 0 1 2`` (appends to
``benchmarks/results/weight_averaging.csv``, one row per task and seed, replacing earlier rows of the same task and
seed); ``python -m benchmarks.weight_averaging report`` prints the table of the method page.
"""

from __future__ import annotations

import argparse
import fcntl
import inspect
import subprocess
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pandas as pd

from decode_omics.metrics import ccc

RESULTS = Path(__file__).parent / "results" / "weight_averaging.csv"
SCENARIOS = ("pbmc_real", "pbmc68k", "bone_marrow", "kidney", "tscp_states", "cellbench", "proteomics")


def default_decay() -> float:
    """The package's default ``weight_averaging``."""
    from decode_omics.model import DECODE

    return inspect.signature(DECODE.train).parameters["weight_averaging"].default


class _Follow(pl.Callback):
    """Keeps a weight average of the network over the training steps, without touching the network."""

    def __init__(self, decay: float):
        from decode_omics.model._averaging import WeightAverage

        self.average = WeightAverage(decay)

    def on_train_batch_end(self, trainer, plan, *args, **kwargs):
        self.average.update(plan.module)


def run_task(task, seed: int, decay: float, **train_kwargs) -> dict:
    """One paired run: CCC of the last weights and of the averaged weights (see the module docstring);
    ``train_kwargs`` (tests: fewer epochs) go to :meth:`DECODE.train`."""
    import scvi

    from decode_omics.model import DECODE
    from decode_omics.model._calibration import fit_platform_gains

    from .methods import _lightweight

    scvi.settings.seed = seed
    ref = _lightweight(task.reference, None, task.labels_key)
    bulk = _lightweight(task.bulk, None)
    DECODE.setup_anndata(ref, labels_key=task.labels_key, scale=task.scale)
    DECODE.setup_anndata(bulk, scale=task.scale)
    model = DECODE(ref, bulk, mode=task.mode)
    follow = _Follow(decay)
    model.train(**({"enable_progress_bar": False} | train_kwargs), weight_averaging=0.0, callbacks=[follow])
    labels = list(task.truth.columns)
    last = model.get_fractions()[labels]
    follow.average.copy_to(model.module)
    if model.platform_gains_ is not None:
        model.platform_gains_ = fit_platform_gains(model)
    averaged = model.get_fractions()[labels]
    return {
        "scenario": task.scenario,
        "task": task.name,
        "seed": seed,
        "decay": decay,
        "epochs": int(model.trainer.current_epoch),
        "ccc_last": ccc(last, task.truth),
        "ccc_averaged": ccc(averaged, task.truth),
        "commit": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip(),
    }


def run(scenarios: list[str], seeds: list[int]) -> pd.DataFrame:
    """Run the paired comparison and merge the rows into :data:`RESULTS`."""
    from . import scenarios as catalogue

    decay = default_decay()
    for name in scenarios:
        for seed in seeds:
            for task in getattr(catalogue, name)():
                row = run_task(task, seed, decay)
                print(f"{row['task']} seed {seed}: last {row['ccc_last']:.3f}, averaged {row['ccc_averaged']:.3f}")
                with open(RESULTS.with_suffix(".lock"), "w") as lock:  # runs in parallel share the file
                    fcntl.flock(lock, fcntl.LOCK_EX)
                    old = pd.read_csv(RESULTS) if RESULTS.exists() else pd.DataFrame(columns=list(row))
                    same = (old["task"] == row["task"]) & (old["seed"] == seed) & (old["scenario"] == row["scenario"])
                    pd.concat([old[~same], pd.DataFrame([row])]).to_csv(RESULTS, index=False)
    return pd.read_csv(RESULTS)


def table(results: pd.DataFrame) -> pd.DataFrame:
    """Per task: mean ± sd and worst seed of both arms, the mean paired change and the seeds on which it lost."""
    rows = []
    for (_scenario, task), g in results.groupby(["scenario", "task"], sort=False):
        change = g["ccc_averaged"] - g["ccc_last"]
        rows.append(
            {
                "task": task,
                "seeds": len(g),
                "last weights": _cell(g["ccc_last"]),
                "averaged weights": _cell(g["ccc_averaged"]),
                "change": f"{change.mean():+.3f}",
                "seeds worse by > 0.01": int((change < -0.01).sum()),
            }
        )
    return pd.DataFrame(rows)


def _cell(values: pd.Series) -> str:
    if len(values) == 1:
        return f"{values.iloc[0]:.3f} (1 seed)"
    sd = float(np.std(values, ddof=1))
    return f"{values.mean():.3f} ± {sd:.3f} (worst {values.min():.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.weight_averaging", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    go = sub.add_parser("run", help="train and score (appends to the results file)")
    go.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    go.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    sub.add_parser("report", help="print the table of the method page")
    args = parser.parse_args()
    if args.command == "run":
        run(args.scenarios, args.seeds)
    print(table(pd.read_csv(RESULTS)).to_markdown(index=False, disable_numparse=True))


if __name__ == "__main__":
    main()
