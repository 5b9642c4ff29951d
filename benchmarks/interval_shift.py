"""Which calibration shift would the truth have needed? A diagnosis of the intervals' coverage (issue 21).

DECODE's intervals are calibrated on held-out pseudo-tissue cohorts shifted from the reference by a platform shift of
size ``s``, matched to how far the registered bulk is from the reference (step 1 of
``decode_omics.model._intervals``). For every model the uncertainty benchmark saved (``python -m benchmarks.uncertainty
run``), this calibrates the intervals again at each shift of :data:`GRID` (``fit_interval_calibration(model,
shift=s)``) and scores their 90 % coverage and mean width against the truth. Beside the package's own (matched) shift,
that shows which shifts would have put the coverage within 80-95 %: where none of the grid does, no size of random
platform shift makes the held-out cohorts err as the real bulk does, and step 1 is not what fails. The truth is used
to diagnose, never to fit anything in the package.

It diagnoses the platform shift alone: every calibration here reads the cohorts' truth with content shift 0 (as the
package did before :data:`~decode_omics.model._intervals.CONTENT_SHIFT`; ``benchmarks.interval_content`` scores that).

Run: ``python -m benchmarks.interval_shift [--scenarios kidney ...] [--seeds 0]`` (about a minute per model on one
thread; writes ``benchmarks/results/interval_shift.csv``, one row per model and shift; the row with ``shift_from``
other than ``given`` is the package's own calibration).

``--streams 5`` instead calibrates each saved model 5 times, each with another random stream, with the calibration's
former size (12 held-out cohorts, 4 to match the shift on) and its default (96 and 16), and writes
``benchmarks/results/interval_streams.csv``: how much of the coverage's spread the calibration's own draws make.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from ._tables import merge_rows, write_table

RESULTS = Path(__file__).parent / "results" / "interval_shift.csv"
STREAMS = Path(__file__).parent / "results" / "interval_streams.csv"
#: Shifts the intervals are calibrated at (log-gain sd on linear scales; offset sd in feature spreads as stored).
GRID = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.2, 2.0)
LEVEL = 0.9
BAND = (0.8, 0.95)


def coverage(model, truth: pd.DataFrame) -> tuple[float, float]:
    """Coverage and mean width of the model's intervals at :data:`LEVEL` over the labels the truth has."""
    _, lower, upper = model.get_fractions(return_interval=True, level=LEVEL)
    labels = [c for c in truth.columns if c in lower.columns]
    t = truth.loc[:, labels]
    lo, up = lower.loc[t.index, labels], upper.loc[t.index, labels]
    inside = (t >= lo) & (t <= up)
    return float(inside.to_numpy().mean()), float((up - lo).to_numpy().mean())


def saved_models(scenario: str, seed: int, members: int = 4):
    """``(task, model)`` for every model of one (scenario, seed) that the uncertainty benchmark saved, with its
    reference and bulk attached."""
    import scvi

    from decode_omics._engine.adata import lightweight
    from decode_omics.model import DECODE

    from .scenarios import SCENARIOS as BUILDERS
    from .uncertainty import model_dir

    for task in BUILDERS[scenario]():
        path = model_dir(scenario, seed, members, task.name)
        if not path.is_dir():
            continue
        scvi.settings.seed = seed
        ref = lightweight(task.reference, None, task.labels_key)
        bulk = lightweight(task.bulk, None)
        DECODE.setup_anndata(ref, labels_key=task.labels_key, scale=task.scale)
        DECODE.setup_anndata(bulk, scale=task.scale)
        yield task, DECODE.load(path, reference=ref, bulk=bulk)


def model_rows(scenario: str, seed: int) -> list[dict]:
    """Every saved model of one (scenario, seed): its own calibration's coverage, then the grid's."""
    from decode_omics.model._intervals import fit_interval_calibration

    rows = []
    for task, model in saved_models(scenario, seed):
        model.interval_calibration_ = fit_interval_calibration(model, content_shift=0.0)  # the platform shift alone
        key = {"scenario": scenario, "task": task.name, "seed": seed}
        for shift in (None, *GRID):
            if shift is not None:
                model.interval_calibration_ = fit_interval_calibration(model, shift=shift, content_shift=0.0)
            cal = model.interval_calibration_
            cov, width = coverage(model, task.truth)
            rows.append(key | {"shift": cal["shift"], "shift_from": cal["shift_from"]} | {
                "coverage_90": cov, "width_90": width})  # fmt: skip
        own = rows[-len(GRID) - 1]
        grid = ", ".join(f"{r['shift']:g}: {r['coverage_90']:.2f}" for r in rows[-len(GRID) :])
        print(f"{scenario} / {task.name} / seed {seed}: matched {own['shift']:.2f} -> {own['coverage_90']:.2f}; {grid}")
    return rows


#: Calibration sizes compared by ``--streams``: (held-out cohorts, cohorts the shift is matched on).
SIZES = ((12, 4), None)  # None: the package's defaults


def stream_rows(scenario: str, seed: int, n_streams: int) -> list[dict]:
    """How much one trained model's calibration moves with the random stream it draws its cohorts from, at each of
    :data:`SIZES`: the matched shift and the coverage of the 90 % intervals, per stream."""
    import time

    import scvi

    from decode_omics.model import _intervals

    defaults = (_intervals.N_COHORTS, _intervals.N_PROBE_COHORTS)
    rows = []
    for task, model in saved_models(scenario, seed):
        for size in SIZES:
            cohorts, probe = size or defaults
            _intervals.N_COHORTS, _intervals.N_PROBE_COHORTS = cohorts, probe
            try:
                for stream in range(n_streams):
                    scvi.settings.seed = 1000 + stream  # the calibration's own stream follows the seed
                    start = time.perf_counter()
                    model.interval_calibration_ = _intervals.fit_interval_calibration(model, content_shift=0.0)
                    seconds = time.perf_counter() - start
                    cov, width = coverage(model, task.truth)
                    shift = model.interval_calibration_["shift"]
                    rows.append({"scenario": scenario, "task": task.name, "seed": seed, "cohorts": cohorts,
                                 "probe_cohorts": probe, "stream": stream, "shift": shift, "coverage_90": cov,
                                 "width_90": width, "seconds": seconds})  # fmt: skip
            finally:
                _intervals.N_COHORTS, _intervals.N_PROBE_COHORTS = defaults
            g = pd.DataFrame(rows[-n_streams:])
            print(f"{scenario} / {task.name}: {cohorts} cohorts: coverage sd {g['coverage_90'].std():.3f}")
    return rows


def band(grid: pd.DataFrame) -> str:
    """The grid's shifts whose coverage lies in :data:`BAND`, as text."""
    inside = grid[(grid["coverage_90"] >= BAND[0]) & (grid["coverage_90"] <= BAND[1])]["shift"]
    if inside.empty:
        below = grid[grid["coverage_90"] < BAND[0]]["shift"]
        above = grid[grid["coverage_90"] > BAND[1]]["shift"]
        if above.empty:
            return f"none (at most {grid['coverage_90'].max():.2f})"
        if below.empty:
            return f"none (at least {grid['coverage_90'].min():.2f})"
        return f"none: {below.max():g} -> {grid.set_index('shift')['coverage_90'][below.max()]:.2f}, " + (
            f"{above.min():g} -> {grid.set_index('shift')['coverage_90'][above.min()]:.2f}"
        )
    return ", ".join(f"{s:g}" for s in inside)


def report_lines(path: Path = RESULTS, streams: Path = STREAMS) -> list[str]:
    """The diagnoses' part of the uncertainty section: the calibration's own noise and the shift the truth would have
    needed (each only where its tracked table exists)."""
    lines = []
    if streams.exists():
        lines += [
            "",
            "### How much the calibration's own draws move it",
            "",
            "`python -m benchmarks.interval_shift --streams 5`: each saved model calibrated 5 times, each time with "
            "another random stream, with the calibration's former size (12 held-out cohorts, the shift matched on 4) "
            "and its default. The samples of a cohort share its shift, so the number of cohorts, not of samples, sets "
            "how well the quantile is known.",
            "",
            *streams_lines(streams),
            "",
        ]
    if not path.exists():
        return lines
    t = pd.read_csv(path)
    rows = []
    for (scenario, task, seed), g in t.groupby(["scenario", "task", "seed"], sort=False):
        own = g[g["shift_from"] != "given"].iloc[0]
        rows.append(
            f"| {scenario} | {task} | {seed} | {own['shift']:.2f} | {own['coverage_90']:.2f} | "
            f"{band(g[g['shift_from'] == 'given'])} |"
        )
    return [
        *lines,
        "",
        "### Which shift would the truth have needed?",
        "",
        "`python -m benchmarks.interval_shift` (a diagnosis: the truth scores, it fits nothing) calibrates each saved "
        f"model's intervals again at fixed shifts ({', '.join(f'{s:g}' for s in GRID)}; log-gain sd, or offset sd "
        "in feature spreads for values read as stored), with content shift 0, and scores their 90 % coverage. Where "
        "no shift lands in 80-95 %, no size of random platform shift alone makes the held-out cohorts err as the real "
        "bulk does.",
        "",
        "| scenario | task | seed | matched shift | its coverage | shifts covering 80-95 % |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]


def streams_lines(path: Path = STREAMS) -> list[str]:
    """The stream study's table (empty without its tracked table)."""
    if not path.exists():
        return []
    t = pd.read_csv(path)
    rows = []
    for (scenario, task, cohorts, probe), g in t.groupby(["scenario", "task", "cohorts", "probe_cohorts"], sort=False):
        c = g["coverage_90"]
        rows.append(
            f"| {scenario} | {task} | {cohorts} ({probe}) | {g['shift'].mean():.2f} ± {g['shift'].std():.3f} | "
            f"{c.mean():.2f} ± {c.std():.3f} ({c.min():.2f}-{c.max():.2f}) | {g['seconds'].mean():.1f} |"
        )
    return [
        "| scenario | task | cohorts (matched on) | matched shift, mean ± sd | coverage of 90 %, mean ± sd (range) "
        "| seconds per calibration |",
        "|---|---|---|---|---|---|",
        *rows,
    ]


def main(argv: list[str] | None = None) -> None:
    from .uncertainty import SCENARIOS

    parser = argparse.ArgumentParser(prog="python -m benchmarks.interval_shift", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument(
        "--streams", type=int, default=0, help="instead: calibrate each model this many times, with other random "
        f"streams, at {SIZES[0][0]} cohorts and at the defaults (writes {STREAMS.name})"
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.streams:
        fn, path = (lambda scenario, seed: stream_rows(scenario, seed, args.streams)), STREAMS
    else:
        fn, path = model_rows, RESULTS
    rows = [r for seed in args.seeds for scenario in args.scenarios for r in fn(scenario, seed)]
    new = merge_rows(pd.DataFrame(rows), path)
    write_table(new.sort_values(["scenario", "task", "seed"], kind="stable"), path)


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    main()
