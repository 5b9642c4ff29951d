"""Does ``tl.deconvolve``'s excess-share check see what the reference lacks? (issue 20: the user is told)

``tl.deconvolve`` writes, per sample, a lower bound on the share no mix of the reference's labels holds
(:meth:`~decode_omics.model.DECODE.get_excess_share`, features beyond ``EXCESS_RATIO`` times their largest label's
share) and names the samples at or above ``EXCESS_WARNING`` when the bulk's median reaches it. The check needs no
training, so it is deterministic: this builds the model as ``tl.deconvolve`` does (defaults, relative mode) on every
linear-scale task of every benchmark scenario, the robustness suite included, and records per task the share's
median and 10-90 % range, the share of samples the warning names, how many features the default
``max_feature_excess="auto"`` leaves out before training (every feature the check counts, where it names samples),
the median share the check reads once they are left out (``median_after_auto``: the default model's own check on the
features it keeps, which says whether a second pass would fire), its Pearson r with the truth's missing share (the
``unknown`` column where the task has one) and the features that carry most of it. The truth only scores.

Run: ``python -m benchmarks.excess_check`` (about 10 minutes on one thread; writes
``benchmarks/results/excess_check.csv``; ``--scenarios`` some of them, ``--table`` prints the stored table).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).parent / "results" / "excess_check.csv"
#: How many carrier features a row lists.
N_LISTED = 6


def _row(scenario: str, task) -> dict:
    """Build the default model on one task (no training) and summarise its excess share."""
    from decode_omics.model import DECODE
    from decode_omics.model._excess_check import check_excess

    from .methods import _lightweight

    ref, bulk = _lightweight(task.reference, None, task.labels_key), _lightweight(task.bulk, None)
    DECODE.setup_anndata(ref, labels_key=task.labels_key, scale=task.scale)
    DECODE.setup_anndata(bulk, scale=task.scale)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        # every feature kept: the shares tl.deconvolve reports are read before max_feature_excess="auto" leaves
        # any out (the model's excess_share_), which is what this model reads
        model = DECODE(ref, bulk, max_feature_excess=None)
        share, carriers = model.get_excess_share(), model.get_excess_share(by="feature")
        checked = check_excess(share, carriers)
        after = np.nan
        if checked["flagged"]:  # the default model leaves the counted features out: what its own check reads then
            after = float(np.median(DECODE(ref, bulk).get_excess_share().to_numpy(dtype=float)))
    values = share.to_numpy(dtype=float)
    truth = task.truth["unknown"].to_numpy(dtype=float) if "unknown" in task.truth else np.zeros(values.size)
    q10, median, q90 = np.quantile(values, [0.1, 0.5, 0.9])
    varies = truth.std() > 0 and values.std() > 0
    return {
        "scenario": scenario,
        "task": task.name,
        "n_samples": values.size,
        "n_features": len(model.features),
        "truth_median": float(np.median(truth)),
        "median": median,
        "q10": q10,
        "q90": q90,
        "max": float(values.max()),
        "named": len(checked["flagged"]) / values.size,
        # the default max_feature_excess="auto" leaves out every counted feature where the check names samples
        "left_out_by_auto": len(carriers) if checked["flagged"] else 0,
        "median_after_auto": after,
        "below_truth": float(np.mean(values <= truth + 1e-9)),
        "pearson": float(np.corrcoef(values, truth)[0, 1]) if varies else np.nan,
        "carriers": " ".join(map(str, carriers.index[:N_LISTED])),
    }


def run(scenarios: list[str], out: Path) -> pd.DataFrame:
    """Every linear-scale task of ``scenarios`` (keys of ``benchmarks.scenarios.SCENARIOS``), written to ``out``."""
    from ._tables import write_table
    from .scenarios import SCENARIOS

    rows = []
    for scenario in scenarios:
        for task in SCENARIOS[scenario]():
            if task.scale != "as_is":
                rows.append(_row(scenario, task))
                write_table(pd.DataFrame(rows), out)
    return pd.DataFrame(rows)


def main() -> None:
    from .scenarios import SCENARIOS

    parser = argparse.ArgumentParser(prog="python -m benchmarks.excess_check", description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated (all by default)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--table", action="store_true", help="print the stored table and exit")
    args = parser.parse_args()
    if not args.table:
        unknown = sorted(set(args.scenarios.split(",")) - set(SCENARIOS))
        if unknown:
            raise SystemExit(f"unknown scenarios {unknown}; choose from {list(SCENARIOS)}")
        run(args.scenarios.split(","), args.out)
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_colwidth", 60):
        print(pd.read_csv(args.out).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
