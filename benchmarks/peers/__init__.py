"""The field's deconvolution methods ("peers"), each run in its own pinned virtual environment.

``bash benchmarks/peers/setup.sh [peer ...]`` builds the venvs (see ``benchmarks/peers/README.md``). Every entry of
:data:`PEERS` takes a :class:`~benchmarks.scenarios.Task` and a seed and returns fractions (samples x labels), like the
in-process methods of ``benchmarks/methods.py``:

1. the task is exported to a temporary exchange folder (reference cells and bulk samples on the linear scale, over the
   features both share; see ``_exchange.py``);
2. ``run_<peer>.py`` runs in the peer's venv as a subprocess (OMP_NUM_THREADS and friends are inherited; threads
   default to 1 where unset), with a timeout;
3. its ``fractions.csv`` is read back.

:class:`PeerUnavailable` is raised when a peer's venv (or source) is missing, or the peer cannot run the task.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ._exchange import DOES_NOT_APPLY

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
VENVS = Path(os.environ.get("DECODE_OMICS_PEER_VENVS", BENCH / ".peers" / "venvs"))
SRC = Path(os.environ.get("DECODE_OMICS_PEER_SRC", VENVS.parent / "src"))


class PeerUnavailable(RuntimeError):
    """A peer cannot run here: its venv or source is missing, or it does not apply to the task."""


class PeerFailed(RuntimeError):
    """A peer ran and failed (non-zero exit, timeout, or no fractions written)."""


@dataclass
class Peer:
    """How to run one peer."""

    name: str  # the benchmark's method name
    venv: str  # folder under VENVS, also the setup.sh argument
    runner: str  # run_<x>.py in this folder
    timeout_s: int  # per task
    runtime: str  # what to expect on 2 CPU cores (pbmc_real, one cohort)
    options: dict = field(default_factory=dict)
    needs_source: bool = False  # the GitHub-only peers: SRC/<venv> must exist
    needs_rna: bool = False  # refuses non-RNA tasks

    def python(self) -> Path:
        return VENVS / self.venv / "bin" / "python"

    def check(self, task) -> None:
        if not self.python().exists():
            raise PeerUnavailable(
                f"{self.name}: no venv at {VENVS / self.venv}; run `bash benchmarks/peers/setup.sh {self.venv}`"
            )
        if self.needs_source and not (SRC / self.venv).exists():
            raise PeerUnavailable(
                f"{self.name}: no source at {SRC / self.venv}; run `bash benchmarks/peers/setup.sh {self.venv}`"
            )
        if self.needs_rna and not _looks_like_rna(task):
            raise PeerUnavailable(f"{self.name}: an RNA-seq method; scenario {task.scenario!r} is not RNA counts")

    def __call__(self, task, seed: int) -> pd.DataFrame:
        self.check(task)
        keep = os.environ.get("DECODE_OMICS_PEER_KEEP")  # keep the exchange folder for debugging
        folder = Path(tempfile.mkdtemp(prefix=f"peer-{self.venv}-"))
        try:
            # DECODE_OMICS_PEER_OPTIONS='{"epochs": 2}' overrides runner options (smoke tests)
            options = {**self.options, **json.loads(os.environ.get("DECODE_OMICS_PEER_OPTIONS", "{}"))}
            export_task(task, folder, seed, options)
            env = dict(os.environ)
            for var in (
                "OMP_NUM_THREADS",
                "MKL_NUM_THREADS",
                "OPENBLAS_NUM_THREADS",
                "NUMBA_NUM_THREADS",
                "TF_NUM_INTEROP_THREADS",
                "TF_NUM_INTRAOP_THREADS",
            ):
                env.setdefault(var, env.get("OMP_NUM_THREADS", "1"))
            env.update(
                {
                    "PYTHONHASHSEED": "0",  # scpDeconv orders features through a set
                    "MPLBACKEND": "Agg",
                    "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1",  # TAPE reloads a pickled model
                    "CUDA_VISIBLE_DEVICES": "",
                    "TF_CPP_MIN_LOG_LEVEL": "2",
                    "PEER_SOURCE_DIR": str(SRC / self.venv),
                }
            )
            env.pop("PYTHONPATH", None)  # never leak the main environment's packages into a peer venv
            cmd = [str(self.python()), str(HERE / self.runner), str(folder)]
            start = time.perf_counter()
            log = folder / "log.txt"  # the runner's output, live (tail -f it with DECODE_OMICS_PEER_KEEP=1)
            try:
                with open(log, "w") as out:
                    proc = subprocess.run(
                        cmd, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=self.timeout_s
                    )
            except subprocess.TimeoutExpired as err:
                raise PeerFailed(f"{self.name}: timed out after {self.timeout_s} s") from err
            tail = log.read_text(errors="replace")[-3000:]
            if proc.returncode == DOES_NOT_APPLY:  # the runner's own "does not apply" exit
                raise PeerUnavailable(f"{self.name}: {(tail.strip().splitlines() or ['does not apply'])[-1]}")
            if proc.returncode != 0 or not (folder / "fractions.csv").exists():
                text = log.read_text(errors="replace").splitlines()
                errors = [line.strip() for line in text if "Error" in line and not line.startswith(" ")]
                cause = errors[-1] if errors else "see the log"
                raise PeerFailed(f"{self.name} failed (exit {proc.returncode}): {cause}\n{tail}")
            fractions = pd.read_csv(folder / "fractions.csv", index_col=0)
            fractions.index = fractions.index.astype(str)
            fractions.attrs["peer_seconds"] = time.perf_counter() - start
            return _match(fractions, task)
        finally:
            if keep:
                print(f"{self.name}: exchange folder kept at {folder}")
            else:
                shutil.rmtree(folder, ignore_errors=True)


def _looks_like_rna(task) -> bool:
    names = pd.Index(task.reference.var_names.astype(str))
    return bool(
        names.str.match(r"^(ENSG|ENSMUSG)\d+").mean() > 0.5
        or names.str.match(r"^[A-Za-z][A-Za-z0-9.\-]*$").mean() > 0.9
    )


def _linear(adata, name: str, scale: str = "auto") -> tuple[np.ndarray, str]:
    """The AnnData's matrix on the linear, non-negative scale (dense float32) and the scale it was detected in
    (``scale="as_is"``: the stored values, for tasks whose mixtures are sums of stored values)."""
    from scipy import sparse

    from decode_omics import pp
    from decode_omics.pp._scale import get_matrix

    X, report = pp.to_linear(get_matrix(adata), scale=scale, name=name)
    if sparse.issparse(X):
        X = X.toarray()
    return np.asarray(X, dtype=np.float32), report.scale


def export_task(task, folder: Path, seed: int, options: dict | None = None) -> None:
    """Write the task's reference and bulk (linear scale, shared features) and params.json into ``folder``."""
    from decode_omics import pp

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    features = pp.shared_features(task.reference.var_names, task.bulk.var_names)
    # linear scale over ALL features first: library sizes (for CPM-type normalisations) count every feature measured
    scale = getattr(task, "scale", "auto")
    Xr, ref_scale = _linear(task.reference, "reference", scale)
    Xb, bulk_scale = _linear(task.bulk, "bulk", scale)
    lib_r, lib_b = Xr.sum(axis=1, dtype=np.float64), Xb.sum(axis=1, dtype=np.float64)
    Xr = np.ascontiguousarray(Xr[:, task.reference.var_names.get_indexer(features)])
    Xb = np.ascontiguousarray(Xb[:, task.bulk.var_names.get_indexer(features)])
    labels = task.reference.obs[task.labels_key].astype(str).to_numpy()
    var = np.asarray(features, dtype=str)
    np.savez(
        folder / "reference.npz",
        X=Xr,
        obs=np.asarray(task.reference.obs_names, dtype=str),
        var=var,
        labels=labels.astype(str),
        libsize=lib_r,
    )
    np.savez(folder / "bulk.npz", X=Xb, obs=np.asarray(task.bulk.obs_names, dtype=str), var=var, libsize=lib_b)
    params = {
        "seed": int(seed),
        "mode": task.mode,
        "scenario": task.scenario,
        "task": task.name,
        "reference_scale": ref_scale,  # 'counts' for scRNA UMI references
        "bulk_scale": bulk_scale,
        "is_rna": bool(ref_scale == "counts" and _looks_like_rna(task)),
        "options": options or {},
    }
    (folder / "params.json").write_text(json.dumps(params, indent=1))


def _match(fractions: pd.DataFrame, task) -> pd.DataFrame:
    """Fractions over the task's bulk samples, labels as the peer named them (the reference's labels)."""
    missing = pd.Index(task.bulk.obs_names.astype(str)).difference(fractions.index)
    if len(missing):
        raise PeerFailed(f"peer returned no fractions for {len(missing)} samples, e.g. {list(missing[:3])}")
    out = fractions.loc[task.bulk.obs_names.astype(str)]
    out.index = task.bulk.obs_names
    return out.clip(lower=0).fillna(0.0)


#: Scaden's ensemble as its CLI trains it (``scaden train`` trains all three members; ``predict`` averages them).
SCADEN_MEMBERS = ["m256", "m512", "m1024"]

_PEERS: list[Peer] = [
    # runtime = measured here on pbmc_real (2,140 cells x ~8,000 genes, 9-12 bulk samples), 1 thread, per cohort
    Peer("dtangle", "dtangle", "run_dtangle.py", 1800, "~5 s"),
    Peer("RNA-Sieve", "rnasieve", "run_rnasieve.py", 3600, "~35 s"),
    Peer("TAPE", "tape", "run_tape.py", 3 * 3600, "~10 min, ~6 GB peak"),
    Peer("BayesPrism", "bayesprism", "run_bayesprism.py", 3 * 3600, "~1-2 min (grows with the bulk samples)"),
    # The method name says which members ran, so cached jobs of the two configurations never mix.
    Peer("Scaden", "scaden", "run_scaden.py", 4 * 3600, "all three members: ~15-20 min", {"members": SCADEN_MEMBERS}),
    Peer("Scaden m256", "scaden", "run_scaden.py", 3600, "~3.5 min (its smallest member alone)", {"members": ["m256"]}),
    Peer("scpDeconv", "scpdeconv", "run_scpdeconv.py", 3 * 3600, "~25 min", needs_source=True),
    Peer(
        "DECODE research code", "decode_research", "run_decode_research.py", 3 * 3600, "~15-30 min", needs_source=True
    ),
    Peer("Rectangle", "rectanglepy", "run_rectanglepy.py", 3 * 3600, "~4-5 min", needs_rna=True),
    Peer("AutoGeneS", "autogenes", "run_autogenes.py", 3 * 3600, "~8-11 min (ngen=2000; ~4-5 min CPU)"),
    Peer("DeconV", "deconv", "run_deconv.py", 3 * 3600, "~8-9 min (2000 HVG, 400 reference epochs)", needs_rna=True),
]

#: Name -> Peer (a callable(task, seed) -> fractions DataFrame).
PEERS: dict[str, Callable] = {p.name: p for p in _PEERS}

#: Peers fast enough for ``--quick`` runs (minutes, not tens of minutes, per task on 2 cores).
QUICK_SAFE: set[str] = {"dtangle", "RNA-Sieve"}


def available() -> dict[str, str]:
    """Peer name -> 'ok' or the reason it is unavailable (venv/source missing)."""
    out = {}
    for name, peer in PEERS.items():
        if not peer.python().exists():
            out[name] = f"no venv at {VENVS / peer.venv}"
        elif peer.needs_source and not (SRC / peer.venv).exists():
            out[name] = f"no source at {SRC / peer.venv}"
        else:
            out[name] = "ok"
    return out


__all__ = ["PEERS", "QUICK_SAFE", "Peer", "PeerFailed", "PeerUnavailable", "available", "export_task"]
