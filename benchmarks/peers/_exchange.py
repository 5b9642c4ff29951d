"""The exchange folder between the benchmark and a peer's runner; needs only numpy and pandas (any version).

Folder layout (written by :func:`benchmarks.peers.export_task`):

- ``reference.npz``: ``X`` (cells x features, float32, linear scale), ``obs`` (cell ids), ``var`` (feature names),
  ``labels`` (one label per cell), ``libsize`` (row totals over every feature measured, before the shared subset);
- ``bulk.npz``: ``X`` (samples x features, float32, linear scale), ``obs`` (sample ids), ``var`` (the same features),
  ``libsize``;
- ``params.json``: ``seed``, ``mode``, ``scenario``, ``task``, ``reference_scale``, ``bulk_scale``, ``is_rna``,
  ``options`` (peer-specific settings);
- the runner writes ``fractions.csv`` (samples x labels, index = sample ids).
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import pandas as pd


def load(folder: str):
    """Return (reference DataFrame cells x features, labels Series, bulk DataFrame samples x features, params)."""
    ref = np.load(os.path.join(folder, "reference.npz"), allow_pickle=False)
    bulk = np.load(os.path.join(folder, "bulk.npz"), allow_pickle=False)
    reference = pd.DataFrame(ref["X"], index=pd.Index(ref["obs"].astype(str)), columns=pd.Index(ref["var"].astype(str)))
    labels = pd.Series(ref["labels"].astype(str), index=reference.index, name="label")
    mixtures = pd.DataFrame(
        bulk["X"], index=pd.Index(bulk["obs"].astype(str)), columns=pd.Index(bulk["var"].astype(str))
    )
    with open(os.path.join(folder, "params.json")) as fh:
        params = json.load(fh)
    # library sizes over every feature measured (before restricting to the shared ones), for CPM normalisation
    # (kept in params, not in DataFrame.attrs: arrays there break pandas operations)
    params["reference_libsize"] = ref["libsize"] if "libsize" in ref.files else reference.sum(axis=1).to_numpy()
    params["bulk_libsize"] = bulk["libsize"] if "libsize" in bulk.files else mixtures.sum(axis=1).to_numpy()
    return reference, labels, mixtures, params


def save(folder: str, fractions: pd.DataFrame) -> None:
    """Write the fractions (samples x labels) the benchmark reads back."""
    fractions = pd.DataFrame(fractions).astype(float)
    fractions.index = fractions.index.astype(str)
    fractions.columns = fractions.columns.astype(str)
    fractions.to_csv(os.path.join(folder, "fractions.csv"))


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - the peers draw from numpy's global generator


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cpm(X, libsize=None) -> np.ndarray:
    """Counts per million per row (sample or cell); ``libsize`` = row totals over all features (default: X's)."""
    X = np.asarray(X, dtype=np.float64)
    tot = X.sum(axis=1) if libsize is None else np.asarray(libsize, dtype=np.float64).copy()
    tot = tot.reshape(-1, 1)
    tot[tot == 0] = 1.0
    return X / tot * 1e6


#: Exit code a runner uses for "this peer does not apply to the task" (reported under *Not run*).
DOES_NOT_APPLY = 3


def require_rna_counts(params: dict, peer: str) -> None:
    """Exit with :data:`DOES_NOT_APPLY` unless the task's reference is raw RNA-seq counts (``params["is_rna"]``)."""
    if not params.get("is_rna"):
        print(
            f"{peer} needs raw single-cell RNA-seq counts; this reference is {params['reference_scale']!r}, "
            f"not RNA counts (scenario {params['scenario']!r})",
            flush=True,
        )
        sys.exit(DOES_NOT_APPLY)
