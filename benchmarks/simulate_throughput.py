"""Throughput of the pseudo-tissue engine against a naive per-sample loop.

Run: ``python -m benchmarks.simulate_throughput`` (writes ``benchmarks/results/simulate_throughput.csv``).

The reference is synthetic: 10,000 cells x 3,000 features, sparse (about 10 % non-zero counts), 10 labels. The task
is 10,000 mixtures of 30 cells. Three implementations draw the same kind of mixtures:

- ``dco.pp.simulate_pseudobulk``: one sparse mixing matrix times the cell matrix;
- ``research-code loop``: what the DECODE research code does (``data_process.py`` ``mix_cells``): the reference as a
  dense pandas DataFrame; per mixture and per label a boolean ``.loc`` selection of the label's cells, a random draw
  with replacement and a sum;
- ``naive loop``: the same per-mixture, per-label structure in numpy on the sparse matrix;
- ``per-sample loop, precomputed indices``: a tighter loop (label indices computed once, one fancy-index per mixture)
  so the comparison is not only against the slowest way.

Loops are timed on a subset of mixtures and reported as mixtures per second.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

import decode_omics as dco

RESULTS = Path(__file__).resolve().parent / "results"


def make_reference(n_cells: int = 10_000, n_features: int = 3_000, n_labels: int = 10, seed: int = 0) -> AnnData:
    rng = np.random.default_rng(seed)
    X = sparse.random(n_cells, n_features, density=0.1, format="csr", random_state=seed, dtype=np.float32)
    X.data = rng.poisson(3, X.nnz).astype(np.float32) + 1
    adata = AnnData(X)
    adata.obs["cell_type"] = pd.Categorical(rng.integers(0, n_labels, n_cells).astype(str))
    return adata


def research_code_loop(adata: AnnData, labels_key: str, n_samples: int, cells: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    df = adata.to_df()
    df["CellType"] = adata.obs[labels_key].to_numpy()
    types = df["CellType"].unique()
    out = []
    for _ in range(n_samples):
        f = rng.random(len(types))
        f /= f.sum()
        parts = []
        for t, fk in zip(types, f):
            n = round(fk * cells)
            sub = df.loc[df["CellType"] == t]
            pick = rng.integers(0, len(sub), n)
            parts.append(sub.iloc[pick, :-1].sum(axis=0))
        out.append(pd.concat(parts, axis=1).sum(axis=1))
    return pd.concat(out, axis=1).T.to_numpy()


def naive_loop(adata: AnnData, labels_key: str, n_samples: int, cells: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = adata.obs[labels_key].to_numpy()
    types = np.unique(labels)
    out = np.zeros((n_samples, adata.n_vars), dtype=np.float32)
    for i in range(n_samples):
        f = rng.random(len(types))
        f /= f.sum()
        for t, fk in zip(types, f):
            n = round(fk * cells)
            if n == 0:
                continue
            idx = np.flatnonzero(labels == t)
            pick = rng.choice(idx, n, replace=True)
            out[i] += np.asarray(adata.X[pick].sum(axis=0)).ravel()
    return out


def indexed_loop(adata: AnnData, labels_key: str, n_samples: int, cells: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    codes = adata.obs[labels_key].cat.codes.to_numpy()
    groups = [np.flatnonzero(codes == k) for k in range(codes.max() + 1)]
    X = adata.X
    out = np.zeros((n_samples, adata.n_vars), dtype=np.float32)
    for i in range(n_samples):
        f = rng.random(len(groups))
        n = np.round(f / f.sum() * cells).astype(int)
        pick = np.concatenate([rng.choice(g, k) for g, k in zip(groups, n)])
        out[i] = np.asarray(X[pick].sum(axis=0)).ravel()
    return out


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=10_000)
    parser.add_argument("--cells", type=int, default=30)
    parser.add_argument("--loop-samples", type=int, default=500, help="mixtures timed for each loop")
    args = parser.parse_args(argv)
    ref = make_reference()
    rows = []

    dco.pp.simulate_pseudobulk(ref, "cell_type", n_samples=100, cells_per_sample=args.cells)  # warm-up
    t0 = time.perf_counter()
    out = dco.pp.simulate_pseudobulk(
        ref, "cell_type", n_samples=args.n_samples, cells_per_sample=args.cells, scale="counts"
    )
    t = time.perf_counter() - t0
    assert out.shape == (args.n_samples, ref.n_vars)
    rows.append(("dco.pp.simulate_pseudobulk", args.n_samples, t))

    loops = [
        ("research-code loop", research_code_loop, max(1, args.loop_samples // 10)),
        ("naive loop", naive_loop, args.loop_samples),
        ("per-sample loop, precomputed indices", indexed_loop, args.loop_samples),
    ]
    for name, fn, n in loops:
        t0 = time.perf_counter()
        fn(ref, "cell_type", n, args.cells)
        rows.append((name, n, time.perf_counter() - t0))

    table = pd.DataFrame(rows, columns=["method", "mixtures_timed", "seconds"])
    table["mixtures_per_second"] = table["mixtures_timed"] / table["seconds"]
    engine = table.loc[0, "mixtures_per_second"]
    table["engine_speedup"] = engine / table["mixtures_per_second"]
    table["seconds_for_10k"] = 10_000 / table["mixtures_per_second"]
    table["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}"
    RESULTS.mkdir(exist_ok=True)
    table.to_csv(RESULTS / "simulate_throughput.csv", index=False)
    with pd.option_context("display.width", 160, "display.float_format", "{:,.2f}".format):
        print(table.drop(columns="machine").to_string(index=False))
    print(
        f"\nReference: {ref.n_obs} cells x {ref.n_vars} features, sparse ({ref.X.nnz / np.prod(ref.shape):.0%} "
        f"non-zero); {args.cells} cells per mixture. Machine: {table.loc[0, 'machine']}."
    )
    return table


if __name__ == "__main__":
    main()
