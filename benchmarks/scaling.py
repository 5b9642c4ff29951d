"""Scaling benchmark: references and bulk cohorts that stay on disk.

    python -m benchmarks scaling                          # 100k- and 1M-cell references, a 200k-sample cohort
    python -m benchmarks scaling --cells 100000 --cohort 0

For each reference size a synthetic sparse count reference (``--genes`` features, ~5 % non-zero, ``--labels`` cell
types with distinct marker programmes) is written to an h5ad file in ``--workdir`` block by block (never held whole),
then, in a fresh process, opened with ``backed="r"`` and used to fit DECODE (``--epochs`` epochs) against 50
simulated bulk samples: peak resident memory, the streaming pass, the pseudo-tissue rate and the accuracy on those 50
samples are recorded. The 100k reference is also fitted in memory for comparison. The cohort run writes
``--cohort`` bulk samples to disk and deconvolves them with ``get_fractions`` in blocks. Results go to
``benchmarks/results/scaling.csv`` and ``docs/_static/scaling_table.md`` (included by ``docs/scaling.md``).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def _profiles(n_labels: int, n_genes: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.gamma(0.6, 1.0, n_genes)
    profiles = np.tile(base, (n_labels, 1))
    block = n_genes // (4 * n_labels)
    for k in range(n_labels):
        profiles[k, k * block : (k + 1) * block] *= 15.0
    return profiles / profiles.sum(axis=1, keepdims=True)


def _cells(rng, labels: np.ndarray, profiles: np.ndarray, nnz_per_cell: int):
    """Sparse counts: ``nnz_per_cell`` draws per cell from its label's profile (duplicates summed)."""
    from scipy import sparse

    n = labels.size
    cdf = np.cumsum(profiles, axis=1)
    rows = np.repeat(np.arange(n), nnz_per_cell)
    cols = np.empty(rows.size, dtype=np.int64)
    u = rng.random(rows.size)
    lab = labels[rows]
    for k in range(profiles.shape[0]):  # a loop over labels
        sel = lab == k
        cols[sel] = np.searchsorted(cdf[k], u[sel] * cdf[k, -1])
    cols = np.minimum(cols, profiles.shape[1] - 1)
    X = sparse.csr_matrix((np.ones(rows.size, np.float32), (rows, cols)), shape=(n, profiles.shape[1]))
    X.sum_duplicates()
    return X


def _h5ad_without_x(f, obs: pd.DataFrame, var: pd.DataFrame) -> None:
    """Everything of an h5ad file but ``X`` (written next, block by block, by the caller)."""
    from anndata.io import write_elem

    f.attrs["encoding-type"], f.attrs["encoding-version"] = "anndata", "0.1.0"
    write_elem(f, "obs", obs)
    write_elem(f, "var", var)
    for key in ("obsm", "varm", "obsp", "varp", "layers", "uns"):
        write_elem(f, key, {})


def write_reference(path: Path, n_cells: int, n_genes: int, n_labels: int, block: int = 50_000) -> None:
    """A synthetic reference written block by block with anndata's on-disk sparse append."""
    import h5py
    from anndata.io import sparse_dataset, write_elem

    rng = np.random.default_rng(1)
    profiles = _profiles(n_labels, n_genes)
    labels = rng.integers(0, n_labels, n_cells)
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical.from_codes(labels, [f"type{k}" for k in range(n_labels)])},
        index=pd.Index([f"cell{i}" for i in range(n_cells)]),
    )
    var = pd.DataFrame(index=pd.Index([f"gene{j}" for j in range(n_genes)]))
    nnz = int(0.05 * n_genes)
    with h5py.File(path, "w") as f:
        _h5ad_without_x(f, obs, var)
        for start in range(0, n_cells, block):
            chunk = _cells(rng, labels[start : start + block], profiles, nnz)
            if start == 0:
                write_elem(f, "X", chunk)
                X = sparse_dataset(f["X"])
            else:
                X.append(chunk)


def _bulk(n_samples: int, n_genes: int, n_labels: int, seed: int = 2):
    from anndata import AnnData

    rng = np.random.default_rng(seed)
    profiles = _profiles(n_labels, n_genes)
    fractions = rng.dirichlet(np.ones(n_labels), n_samples)
    X = rng.poisson(fractions @ profiles * 2e6).astype(np.float32)
    names = [f"sample{i}" for i in range(n_samples)]
    adata = AnnData(X, obs=pd.DataFrame(index=names), var=pd.DataFrame(index=[f"gene{j}" for j in range(n_genes)]))
    truth = pd.DataFrame(fractions, index=names, columns=[f"type{k}" for k in range(n_labels)])
    return adata, truth


def fit_job(args) -> None:
    """One fit in this process: reference from disk (backed, or loaded with --in-memory)."""
    import anndata as ad
    import scvi

    import decode_omics as dco
    from decode_omics.model import DECODE

    start = time.perf_counter()
    ref = ad.read_h5ad(args.path, backed=None if args.in_memory else "r")
    read_s = time.perf_counter() - start
    bulk, truth = _bulk(50, ref.n_vars, len(ref.obs["cell_type"].cat.categories))
    scvi.settings.seed = 0
    DECODE.setup_anndata(ref, labels_key="cell_type")
    DECODE.setup_anndata(bulk)
    t = time.perf_counter()
    model = DECODE(ref, bulk)
    prepare_s = time.perf_counter() - t
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    model._sampler.sample(2048, rng)
    sample_s = time.perf_counter() - t
    t = time.perf_counter()
    model.train(max_epochs=args.epochs, enable_progress_bar=False, early_stopping=False)
    train_s = time.perf_counter() - t
    ccc = dco.metrics.ccc(model.get_fractions(), truth)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row = {
        "case": "reference",
        "n": ref.n_obs,
        "features": ref.n_vars,
        "storage": "in memory" if args.in_memory else "backed (on disk)",
        "read_s": read_s,
        "prepare_s": prepare_s,
        "pseudotissues_per_s": 2048 / sample_s,
        "epoch_s": train_s / args.epochs,
        "ccc": ccc,
        "peak_rss_mb": peak,
    }
    Path(args.out).write_text(json.dumps(row))


def cohort_job(args) -> None:
    """Deconvolve a cohort on disk (dense h5ad written block by block) with a model trained on a small reference."""
    import anndata as ad
    import h5py
    import scvi

    import decode_omics as dco
    from decode_omics.model import DECODE

    n_genes, n_labels = 2000, 8
    path = Path(args.workdir) / f"cohort_{args.n}.h5ad"
    ref_path = Path(args.workdir) / "cohort_reference.h5ad"
    if not ref_path.exists():
        write_reference(ref_path, 20_000, n_genes, n_labels)
    if not path.exists():
        with h5py.File(path, "w") as f:
            obs = pd.DataFrame(index=pd.Index([f"sample{i}" for i in range(args.n)]))
            _h5ad_without_x(f, obs, pd.DataFrame(index=pd.Index([f"gene{j}" for j in range(n_genes)])))
            X = f.create_dataset("X", shape=(args.n, n_genes), dtype="float32", chunks=(1000, n_genes))
            X.attrs["encoding-type"], X.attrs["encoding-version"] = "array", "0.2.0"
            truth = []
            for start in range(0, args.n, 20_000):
                block, t = _bulk(min(20_000, args.n - start), n_genes, n_labels, seed=start)
                X[start : start + block.n_obs] = block.X
                truth.append(t.to_numpy())
            f.create_dataset("truth", data=np.concatenate(truth))
    ref = ad.read_h5ad(ref_path, backed="r")
    scvi.settings.seed = 0
    DECODE.setup_anndata(ref, labels_key="cell_type")
    model = DECODE(ref)
    model.train(max_epochs=args.epochs, enable_progress_bar=False, early_stopping=False)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cohort = ad.read_h5ad(path, backed="r")
    t = time.perf_counter()
    fractions = model.get_fractions(cohort, batch_size=4096)
    seconds = time.perf_counter() - t
    with h5py.File(path, "r") as f:
        truth = pd.DataFrame(f["truth"][:], index=fractions.index, columns=fractions.columns)
    row = {
        "case": "cohort",
        "n": args.n,
        "features": n_genes,
        "storage": "backed (on disk)",
        "predict_s": seconds,
        "samples_per_s": args.n / seconds,
        "ccc": dco.metrics.ccc(fractions, truth),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_rss_before_predict_mb": base,
    }
    Path(args.out).write_text(json.dumps(row))


def write_table(table: pd.DataFrame, path: Path) -> None:
    """The measured table as Markdown (included by docs/scaling.md)."""
    lines = [
        "| case | size | storage | peak RSS (GB) | streaming pass (s) | pseudo-tissues/s | s per epoch | samples/s "
        "| CCC |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table.to_dict("records"):
        what = "reference" if r["case"] == "reference" else "cohort"
        size = f"{int(r['n']):,} {'cells' if what == 'reference' else 'samples'} x {int(r['features']):,}"

        def fmt(key, spec, r=r):
            value = r.get(key)
            return "" if value is None or pd.isna(value) else format(value, spec)

        lines.append(
            f"| {what} | {size} | {r['storage']} | {r['peak_rss_mb'] / 1024:.2f} | {fmt('prepare_s', '.1f')} "
            f"| {fmt('pseudotissues_per_s', ',.0f')} | {fmt('epoch_s', '.2f')} | {fmt('samples_per_s', ',.0f')} "
            f"| {r['ccc']:.3f} |"
        )
    path.write_text("\n".join(lines) + "\n")


def _run(cmd: list[str]) -> dict:
    out = Path(cmd[cmd.index("--out") + 1])
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "scaling", *cmd], cwd=HERE.parent, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {cmd}")
    row = json.loads(out.read_text())
    row["wall_s"] = time.perf_counter() - start
    print(row, flush=True)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks scaling", description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="100000,1000000", help="reference sizes (comma-separated)")
    parser.add_argument("--genes", type=int, default=10_000)
    parser.add_argument("--labels", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--cohort", type=int, default=200_000, help="bulk samples of the cohort run (0: skip)")
    parser.add_argument("--workdir", default="/tmp/decode_omics_scaling", help="where the synthetic files go")
    parser.add_argument("--job", choices=["fit", "cohort"], help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--in-memory", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.job == "fit":
        return fit_job(args)
    if args.job == "cohort":
        return cohort_job(args)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in [int(x) for x in args.cells.split(",") if x]:
        path = work / f"reference_{n}x{args.genes}.h5ad"
        if not path.exists():
            t = time.perf_counter()
            write_reference(path, n, args.genes, args.labels)
            print(f"wrote {path} ({path.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - t:.0f} s", flush=True)
        common = ["--job", "fit", "--path", str(path), "--epochs", str(args.epochs)]
        rows.append(_run([*common, "--out", str(work / f"fit_{n}.json")]) | {"file_gb": path.stat().st_size / 1e9})
        if n <= 100_000:
            rows.append(_run([*common, "--in-memory", "--out", str(work / f"fit_{n}_mem.json")]))
    if args.cohort:
        cmd = ["--job", "cohort", "--n", str(args.cohort), "--epochs", str(args.epochs), "--workdir", str(work)]
        rows.append(_run([*cmd, "--out", str(work / f"cohort_{args.cohort}.json")]))
    RESULTS.mkdir(exist_ok=True)
    table = pd.DataFrame(rows)
    table.to_csv(RESULTS / "scaling.csv", index=False)
    write_table(table, HERE.parent / "docs" / "_static" / "scaling_table.md")
    print(table.to_string(index=False))
