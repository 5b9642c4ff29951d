"""Methods the benchmark runs in-process: DECODE and its ablations, and NNLS.

Every method takes a :class:`~benchmarks.scenarios.Task` and a seed and returns fractions (samples x labels).
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

import decode_omics as dco
from decode_omics.tl._deconvolve import _lightweight

from .scenarios import Task

#: DECODE variants: (model keyword arguments, train keyword arguments). Defaults are the package's defaults.
DECODE_VARIANTS: dict[str, tuple[dict, dict]] = {
    "DECODE": ({}, {}),  # denoiser on, adversarial stage off (the defaults)
    "DECODE + adversarial": ({}, {"adversarial": True}),
    "DECODE no denoiser": ({}, {"denoise": False}),
    "DECODE neither": ({}, {"adversarial": False, "denoise": False}),
    # The research code's settings (DECODE-REFERENCE.md §1, §4, §5) on our corrected implementation: sums of real
    # cells, uniform fractions, 30 cells, Adam 1e-4, batch 64, no input noise, classical two-sided alignment.
    "DECODE research settings": (
        {"pseudotissue": "cells", "standardize": False, "fractions": "uniform", "cells_per_sample": 30},
        {"lr": 1e-4, "batch_size": 64, "input_noise": 0.0, "adversarial": True, "align": "both"},
    ),
}


def run_decode(task: Task, seed: int, variant: str = "DECODE", max_epochs: int | None = None) -> pd.DataFrame:
    """Fit DECODE (a variant) on the task's reference and its bulk, return the fractions of the truth's labels."""
    import scvi

    from decode_omics.model import DECODE

    model_kwargs, train_kwargs = DECODE_VARIANTS[variant]
    scvi.settings.seed = seed
    ref = _lightweight(task.reference, None, task.labels_key)
    bulk = _lightweight(task.bulk, None)
    DECODE.setup_anndata(ref, labels_key=task.labels_key)
    DECODE.setup_anndata(bulk)
    model = DECODE(ref, bulk, mode=task.mode, **model_kwargs)
    kwargs = {"enable_progress_bar": False} | train_kwargs
    if max_epochs is not None:
        kwargs["max_epochs"] = max_epochs
    model.train(**kwargs)
    return model.get_fractions()


def run_nnls(task: Task, seed: int) -> pd.DataFrame:
    """NNLS on the reference's mean label profiles (deterministic; the seed is unused)."""
    out = dco.tl.nnls(task.bulk, task.reference, task.labels_key, copy=True)
    return out.obsm["nnls"]


def methods(max_epochs: int | None = None) -> dict[str, Callable[[Task, int], pd.DataFrame]]:
    """Name -> callable(task, seed)."""
    table: dict[str, Callable[[Task, int], pd.DataFrame]] = {"NNLS": run_nnls}
    for name in DECODE_VARIANTS:
        table[name] = lambda task, seed, _n=name: run_decode(task, seed, _n, max_epochs)
    return table
