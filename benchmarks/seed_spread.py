"""How much the fractions move with the seed: one network against the ensemble, per value and in the pooled CCC.

Issue 21 asks that the ensemble's spread over seeds be at least half of one network's. The uncertainty benchmark
judges it on the pooled CCC over 3 seeds, a single nonlinear summary whose sd over 3 seeds is itself uncertain by
about half. This benchmark measures the spread a user reads, each sample's fraction of each label, over more seeds,
and says where it comes from. Per task and seed it trains, with the package's defaults:

- one network (``n_members=1``), read as :meth:`DECODE.get_fractions` reads it;
- an ensemble of ``n_members`` (default 4), read the same way (the members' average through the platform gains
  fitted from that average's first reading);
- from the same ensemble, each member read alone: through its *own* platform gains, fitted from its own first
  reading (a stand-in for one network, with ``n_members`` draws per seed), through the ensemble's shared gains,
  and with no gains.

Scores (``report``): the pooled CCC of one network and of the ensemble (mean ± sd, worst seed) and the ratio of
their sds; the *fraction sd*: per sample and label the sd over seeds of the fraction, root mean square over samples
and labels, for one network and the ensemble, and their ratio; and the *shared part*: the share of a member's
seed-to-seed variance that the members of one ensemble have in common (0: they err independently, so averaging
``n`` of them divides the variance by ``n``; 1: they err alike). Transductive, like every DECODE figure: the models see
the unlabelled bulk they score; the truth scores, it fits nothing.

The ensemble is the package's as it is at the run: since 2026-12-06 its members share nothing random (own initial
weights, input scaling, and pseudo-tissues drawn apart with their own artificial noise cells; ``member_data =
"own-draws"``); jobs from before are kept and reported as ``"own"`` (members whose pseudo-tissues were rows of one
draw per epoch, sharing its noise cells) and ``"shared"`` (members that also shared the pseudo-tissue batches and the
input transform). One network has not changed:
``--reuse-one`` takes its fractions and time from a cached job of the same task and seed instead of training it
again (the run prints whether a job that trains it anew matches the cache). ``--ensemble-from-uncertainty`` loads the
ensemble the uncertainty benchmark saved for the same task and seed instead of training it: the same code, seed and
one-thread set-up give the same fit (checked bit for bit on three cached task-seeds), and its training time is
that job's. So every relative-mode task of the uncertainty benchmark gets this measure for the cost of one network.

Run: ``python -m benchmarks.seed_spread run --tasks kidney:0 kidney:2 bone_marrow --seeds 0 1 2 3 4 5`` (several
processes may run different seeds at once); estimates go to the git-ignored cache
``benchmarks/results/seed_spread_jobs/``. ``python -m benchmarks.seed_spread report`` summarises the cache into
``benchmarks/results/seed_spread.csv`` (tracked) and prints the table of the uncertainty page.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd

from decode_omics.metrics import ccc

from . import uncertainty

RESULTS = Path(__file__).parent / "results" / "seed_spread.csv"
CACHE = Path(__file__).parent / "results" / "seed_spread_jobs"
#: How the package's ensemble members are trained now (the uncertainty benchmark's label; older cached jobs keep
#: theirs: ``"own"`` before 2026-12-06, ``"shared"`` before 2026-12-05).
MEMBER_DATA = uncertainty.MEMBER_DATA
#: ``--tasks`` names: scenario, and after a colon the index of the task within it (default 0).
TASKS = (
    "kidney:0", "kidney:1", "kidney:2", "bone_marrow", "pbmc_real:0", "pbmc_real:1", "tscp_states",
    "cellbench:0", "cellbench:1", "proteomics:0", "proteomics:1",
    "cellmix:0", "cellmix:1", "cellmix:2", "cellmix:3", "cellmix:4",
)  # fmt: skip


def _registered(task):
    """The task's reference and bulk, light copies registered with DECODE."""
    from decode_omics.model import DECODE

    from .methods import _lightweight

    ref = _lightweight(task.reference, None, task.labels_key)
    bulk = _lightweight(task.bulk, None)
    DECODE.setup_anndata(ref, labels_key=task.labels_key, scale=task.scale)
    DECODE.setup_anndata(bulk, scale=task.scale)
    return ref, bulk


def _train(task, seed: int, n_members: int, **train_kwargs):
    import scvi

    from decode_omics.model import DECODE

    scvi.settings.seed = seed
    ref, bulk = _registered(task)
    model = DECODE(ref, bulk, mode=task.mode, n_members=n_members)
    model.train(**({"enable_progress_bar": False} | train_kwargs))
    return model


def member_readings(model) -> dict[str, np.ndarray]:
    """Every member's relative fractions of the registered bulk (``members x samples x labels``): through its own
    platform gains (fitted from its own first reading), through the ensemble's gains, and with no gains."""
    import torch

    from decode_omics.model._calibration import _gains_from
    from decode_omics.model._ensemble import members

    source = model._bulk_source(None, platform_correction=False)
    _, bulk = next(source.blocks(source.n_obs))
    x = torch.as_tensor(bulk, dtype=torch.float32, device=model.device)
    k = len(model.labels_)

    def read(member, divisor=None):
        out = member(x if divisor is None else x / divisor, denoise=model.denoise_)[:, :k]
        return (out / out.sum(dim=1, keepdim=True).clamp_min(1e-12)).cpu().numpy().astype(np.float64)

    def divisor(gains):
        return None if gains is None else torch.as_tensor(gains.to_numpy(), dtype=torch.float32, device=model.device)

    shared = divisor(model.platform_gains_)
    readings = {"own_gains": [], "shared_gains": [], "no_gains": []}
    model.module.eval()
    with torch.inference_mode():
        for member in members(model.module):
            alone = read(member)
            own = divisor(_gains_from(model, bulk, alone)) if shared is not None else None
            readings["no_gains"].append(alone)
            readings["own_gains"].append(read(member, own))
            readings["shared_gains"].append(read(member, shared))
    return {name: np.stack(v) for name, v in readings.items()}


def saved_ensemble(task, seed: int, n_members: int):
    """The ensemble the uncertainty benchmark saved for ``task`` at ``seed`` and its training seconds, or ``None``
    where it saved none, or its row is not of the package's current members (:data:`MEMBER_DATA`)."""
    import json

    from decode_omics.model import DECODE

    path = uncertainty.model_dir(task.scenario, seed, n_members, task.name)
    rows = uncertainty.CACHE / f"{task.scenario}__{seed}__m{n_members}.json"
    if not path.is_dir() or not rows.exists():
        return None
    row = next((r for r in json.loads(rows.read_text()) if r["task"] == task.name), None)
    if row is None or row.get("member_data") != MEMBER_DATA:
        return None
    ref, bulk = _registered(task)
    return DECODE.load(path, reference=ref, bulk=bulk), float(row["seconds"])


def run_task(
    task, seed: int, n_members: int = 4, one: tuple | None = None, ensemble: tuple | None = None, **train_kwargs
) -> dict[str, np.ndarray]:
    """One network and one ensemble of ``n_members`` at ``seed`` (``train_kwargs``, e.g. fewer epochs in tests, go
    to :meth:`DECODE.train`): their fractions of the task's labels, the members' readings (:func:`member_readings`),
    the truth and the training seconds, as arrays. ``one``: one network's fractions (samples in the bulk's order,
    labels in the truth's) and seconds, taken as given instead of training it; ``ensemble``: a trained ensemble and
    its training seconds (:func:`saved_ensemble`), read instead of training one."""
    labels = list(task.truth.columns)
    if one is None:
        start = time.perf_counter()
        network = _train(task, seed, 1, **train_kwargs)
        seconds_one = time.perf_counter() - start
        one_fractions = network.get_fractions().loc[task.bulk.obs_names, labels].to_numpy()
    else:
        one_fractions, seconds_one = one
    if ensemble is None:
        start = time.perf_counter()
        trained = _train(task, seed, n_members, **train_kwargs)
        ensemble = trained, time.perf_counter() - start
    ensemble, seconds_ensemble = ensemble
    estimate = ensemble.get_fractions()
    order = [ensemble.labels_.index(label) for label in labels]
    readings = {name: v[:, :, order] for name, v in member_readings(ensemble).items()}
    assert list(estimate.index) == list(task.bulk.obs_names)
    return {
        "one": one_fractions,
        "ensemble": estimate[labels].to_numpy(),
        **readings,
        "truth": task.truth.loc[estimate.index, labels].to_numpy(),
        "seconds": np.array([seconds_one, seconds_ensemble]),
    }


def _job_path(task, seed: int, n_members: int, member_data: str = MEMBER_DATA) -> Path:
    scheme = "" if member_data == "shared" else f"-{member_data}"
    return CACHE / f"{task.scenario}__{task.name.replace(' ', '_')}__m{n_members}{scheme}__{seed}.npz"


def _cached_one(task, seed: int) -> tuple | None:
    """One network's fractions and seconds from any cached job of this task and seed (``None`` if none)."""
    for path in sorted(CACHE.glob(f"{task.scenario}__{task.name.replace(' ', '_')}__m*__{seed}.npz")):
        with np.load(path) as job:
            return job["one"], float(job["seconds"][0])
    return None


def run(
    tasks: list[str], seeds: list[int], n_members: int, reuse_one: bool = False, ensemble_from_uncertainty: bool = False
) -> None:
    """Train and cache every task at every seed (with ``ensemble_from_uncertainty``, a task-seed whose ensemble the
    uncertainty benchmark did not save with the current members is skipped, and said so)."""
    from . import scenarios as catalogue

    CACHE.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    for spec in tasks:
        scenario, _, index = spec.partition(":")
        task = getattr(catalogue, scenario)()[int(index or 0)]
        if task.mode != "relative":
            raise ValueError(f"{spec}: only relative-mode tasks (the members' own gains are read in relative mode).")
        for seed in seeds:
            saved = saved_ensemble(task, seed, n_members) if ensemble_from_uncertainty else None
            if ensemble_from_uncertainty and saved is None:
                print(f"{task.name} seed {seed}: the uncertainty benchmark saved no current ensemble, skipped")
                continue
            cached = _cached_one(task, seed)
            arrays = run_task(task, seed, n_members, one=cached if reuse_one else None, ensemble=saved)
            if cached is not None and not reuse_one:
                print(f"one network as cached: {np.array_equal(cached[0], arrays['one'])}", flush=True)
            np.savez(
                _job_path(task, seed, n_members),
                **arrays,
                scenario=task.scenario,
                task=task.name,
                commit=commit,
                member_data=MEMBER_DATA,
                one_reused=cached is not None and reuse_one,
                ensemble_from_uncertainty=saved is not None,
            )
            print(f"{task.name} seed {seed}: one {_ccc(arrays['one'], arrays['truth']):.3f}, "
                  f"ensemble {_ccc(arrays['ensemble'], arrays['truth']):.3f}", flush=True)  # fmt: skip


def _ccc(estimate: np.ndarray, truth: np.ndarray) -> float:
    return float(ccc(pd.DataFrame(estimate), pd.DataFrame(truth)))


def fraction_sd(values: np.ndarray) -> float:
    """Root mean square over samples and labels of the sd over seeds (axis 0) of each fraction."""
    return float(np.sqrt(np.var(values, axis=0, ddof=1).mean()))


def shared_part(members: np.ndarray) -> float:
    """Share of one member's seed-to-seed variance that the members of an ensemble have in common, from readings
    ``seeds x members x samples x labels``: the variance of the members' average over seeds, less what independent
    members would leave of their within-seed variance, over a member's variance over seeds."""
    n = members.shape[1]
    average = np.var(members.mean(axis=1), axis=0, ddof=1).mean()
    within = np.var(members, axis=1, ddof=1).mean()
    member = np.var(members, axis=0, ddof=1).mean()
    return float((average - within / n) / member)


def summarise(jobs: dict[tuple, list[dict[str, np.ndarray]]]) -> pd.DataFrame:
    """One row per task and ensemble size from its jobs (keyed by scenario and task; one dict of arrays per seed, as
    :func:`run_task` returns)."""
    rows = []
    for (scenario, task, _, member_data), runs in jobs.items():
        stack = {key: np.stack([r[key] for r in runs]) for key in ("one", "ensemble", "own_gains", "shared_gains")}
        truth = runs[0]["truth"]
        one = [_ccc(r["one"], truth) for r in runs]
        ensemble = [_ccc(r["ensemble"], truth) for r in runs]
        members_alone = [_ccc(m, truth) for r in runs for m in r["own_gains"]]
        rows.append(
            {
                "scenario": scenario,
                "task": task,
                "seeds": len(runs),
                "members": stack["own_gains"].shape[1],
                "member_data": member_data,
                "ccc_one_mean": np.mean(one),
                "ccc_one_sd": np.std(one, ddof=1),
                "ccc_one_worst": np.min(one),
                "ccc_ensemble_mean": np.mean(ensemble),
                "ccc_ensemble_sd": np.std(ensemble, ddof=1),
                "ccc_ensemble_worst": np.min(ensemble),
                "ccc_member_alone_sd": np.std(members_alone, ddof=1),
                "fraction_sd_one": fraction_sd(stack["one"]),
                "fraction_sd_ensemble": fraction_sd(stack["ensemble"]),
                "fraction_sd_member_alone": fraction_sd(stack["own_gains"].reshape(-1, *truth.shape)),
                "shared_part_own_gains": shared_part(stack["own_gains"]),
                "shared_part_shared_gains": shared_part(stack["shared_gains"]),
                "seconds_one": np.mean([r["seconds"][0] for r in runs]),
                "seconds_ensemble": np.mean([r["seconds"][1] for r in runs]),
            }
        )
    return pd.DataFrame(rows)


#: The columns that name a row of :data:`RESULTS`: a row summarised from the cache replaces the stored row of the same
#: task, ensemble size and members' data; stored rows the cache has no jobs for are kept.
ROW_KEY = ["scenario", "task", "members", "member_data"]


def report() -> pd.DataFrame:
    """Summarise the cache into :data:`RESULTS` (rows of tasks the cache lacks are kept as stored) and return the
    page's table."""
    if CACHE.exists() and any(CACHE.glob("*.npz")):
        jobs: dict[tuple, list[dict[str, np.ndarray]]] = {}
        for path in sorted(CACHE.glob("*.npz")):
            with np.load(path) as job:
                member_data = str(job["member_data"]) if "member_data" in job.files else "shared"
                key = (str(job["scenario"]), str(job["task"]), job["own_gains"].shape[0], member_data)
                jobs.setdefault(key, []).append({name: job[name] for name in job.files})
        merge_summaries(summarise(jobs)).to_csv(RESULTS, index=False, float_format="%.5g")
    return table(pd.read_csv(RESULTS))


def merge_summaries(new: pd.DataFrame, stored: pd.DataFrame | None = None) -> pd.DataFrame:
    """``new`` rows (:func:`summarise`) in place of the ``stored`` rows (default: :data:`RESULTS`, if any) with the same
    :data:`ROW_KEY`, each in the stored row's place; the other stored rows kept; new keys appended."""
    if stored is None:
        stored = pd.read_csv(RESULTS) if RESULTS.exists() else new.iloc[:0]

    def keys(frame: pd.DataFrame) -> list[tuple]:
        return [tuple(map(str, k)) for k in frame[ROW_KEY].itertuples(index=False)]

    fresh = dict(zip(keys(new), (row for _, row in new.iterrows()), strict=True))
    rows = [fresh.pop(k, row) for k, (_, row) in zip(keys(stored), stored.iterrows(), strict=True)]
    return pd.DataFrame([*rows, *fresh.values()], columns=new.columns).reset_index(drop=True)


def table(results: pd.DataFrame) -> pd.DataFrame:
    """The uncertainty page's table of :func:`summarise`'s rows."""

    def ccc_cell(row, arm):
        return f"{row[f'ccc_{arm}_mean']:.3f} ± {row[f'ccc_{arm}_sd']:.3f} (worst {row[f'ccc_{arm}_worst']:.3f})"

    rows = []
    for _, r in results.iterrows():
        rows.append(
            {
                "task": f"{r['scenario']}: {r['task']}",
                "members": int(r["members"]),
                "members' data": r.get("member_data", "shared"),
                "seeds": int(r["seeds"]),
                "CCC one network": ccc_cell(r, "one"),
                "CCC ensemble": ccc_cell(r, "ensemble"),
                "CCC sd ratio": f"{r['ccc_ensemble_sd'] / r['ccc_one_sd']:.2f}",
                "fraction sd, one network": f"{r['fraction_sd_one']:.4f}",
                "fraction sd, ensemble": f"{r['fraction_sd_ensemble']:.4f}",
                "fraction sd ratio": f"{r['fraction_sd_ensemble'] / r['fraction_sd_one']:.2f}",
                "fraction sd, a member alone": f"{r['fraction_sd_member_alone']:.4f}",
                "shared part (own gains / ensemble's gains)": (
                    f"{r['shared_part_own_gains']:.2f} / {r['shared_part_shared_gains']:.2f}"
                ),
                "seconds, one network / ensemble (ratio)": (
                    f"{r['seconds_one']:.0f} / {r['seconds_ensemble']:.0f} "
                    f"({r['seconds_ensemble'] / r['seconds_one']:.1f}x)"
                ),
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.seed_spread", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    go = sub.add_parser("run", help="train one network and an ensemble per task and seed (cached)")
    go.add_argument("--tasks", nargs="+", default=["kidney:0", "kidney:2", "bone_marrow"], choices=TASKS)
    go.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4, 5])
    go.add_argument("--members", type=int, default=4)
    go.add_argument("--reuse-one", action="store_true", help="one network's fractions from a cached job")
    go.add_argument(
        "--ensemble-from-uncertainty",
        action="store_true",
        help="load the ensemble the uncertainty benchmark saved for the task and seed instead of training it",
    )
    sub.add_parser("report", help="summarise the cache and print the uncertainty page's table")
    args = parser.parse_args()
    if args.command == "run":
        run(args.tasks, args.seeds, args.members, args.reuse_one, args.ensemble_from_uncertainty)
        return
    print(markdown(report()))


def markdown(table: pd.DataFrame) -> str:
    """``table`` as a pipe table without padding (as the docs hold it)."""
    rows = [list(table.columns), ["---"] * table.shape[1], *table.astype(str).to_numpy().tolist()]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


if __name__ == "__main__":
    main()
