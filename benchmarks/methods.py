"""Methods the benchmark runs in-process: DECODE and its ablations, and NNLS.

Every method takes a :class:`~benchmarks.scenarios.Task` and a seed and returns fractions (samples x labels).
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

import decode_omics as dco
from decode_omics._engine.adata import lightweight as _lightweight

from .scenarios import Task

#: DECODE variants: (model keyword arguments, train keyword arguments). Defaults are the package's defaults.
DECODE_VARIANTS: dict[str, tuple[dict, dict]] = {
    "DECODE": ({}, {}),  # the package's defaults
    # The defaults, explicitly: no adversarial stage, the denoiser, platform gains (in relative mode; None = on in
    # relative mode, off in absolute mode). See SAME_AS_DEFAULTS.
    "DECODE platform correction": ({}, {"adversarial": False, "denoise": True, "platform_correction": None}),
    # The ablation: each stage on or off, explicitly, all measured without the platform correction (added after
    # them; "DECODE no adversarial" was the defaults until then).
    "DECODE full": ({}, {"adversarial": True, "denoise": True, "platform_correction": False}),
    "DECODE no adversarial": ({}, {"adversarial": False, "denoise": True, "platform_correction": False}),
    "DECODE no denoiser": ({}, {"adversarial": True, "denoise": False, "platform_correction": False}),
    "DECODE neither": ({}, {"adversarial": False, "denoise": False, "platform_correction": False}),
    # The adversarial stage as first built, without its spread guard (it collapses the bulk's codes).
    "DECODE full unguarded": (
        {},
        {"adversarial": True, "denoise": True, "spread_weight": 0.0, "platform_correction": False},
    ),
    "DECODE no denoiser unguarded": (
        {},
        {"adversarial": True, "denoise": False, "spread_weight": 0.0, "platform_correction": False},
    ),
    # The research code's settings (DECODE-REFERENCE.md §1, §4, §5) on our corrected implementation: sums of real
    # cells, uniform fractions, 30 cells, Adam 1e-4, batch 64, no input noise, classical two-sided alignment (without
    # the spread guard or the platform gains, which the research code does not have).
    "DECODE research settings": (
        {"pseudotissue": "cells", "standardize": False, "fractions": "uniform", "cells_per_sample": 30},
        {
            "lr": 1e-4,
            "batch_size": 64,
            "input_noise": 0.0,
            "adversarial": True,
            "denoise": True,
            "align": "both",
            "spread_weight": 0.0,
            "platform_correction": False,
        },
    ),
    # Data-parallel training over two CPU processes (gloo); the same global batch and steps as one process.
    "DECODE 2-process DDP": (
        {},
        {"strategy": "ddp", "devices": 2, "accelerator": "cpu", "denoise": True, "platform_correction": False},
    ),
    # Experimental: per-feature gain augmentation (plan_kwargs feature_gain).
    "DECODE gain 0.3": ({}, {"plan_kwargs": {"feature_gain": 0.3}, "denoise": True, "platform_correction": False}),
    "DECODE gain 0.3 no denoiser": (
        {},
        {"plan_kwargs": {"feature_gain": 0.3}, "denoise": False, "platform_correction": False},
    ),
}


#: Variants whose configuration equals the package defaults: deterministic on CPU, so their job results are reused
#: under the name "DECODE" instead of running the same configuration twice (checked by `defaults_alias`).
SAME_AS_DEFAULTS = "DECODE platform correction"


def defaults_alias() -> str:
    """The explicit variant equal to the package defaults, after checking that it still is."""
    import inspect

    from decode_omics.model import DECODE

    defaults = inspect.signature(DECODE.train).parameters
    _, train_kwargs = DECODE_VARIANTS[SAME_AS_DEFAULTS]
    for key, value in train_kwargs.items():
        if defaults[key].default != value:
            raise RuntimeError(f"{SAME_AS_DEFAULTS!r} no longer equals the defaults ({key}); update SAME_AS_DEFAULTS.")
    return SAME_AS_DEFAULTS


def run_decode(task: Task, seed: int, variant: str = "DECODE", max_epochs: int | None = None) -> pd.DataFrame:
    """Fit DECODE (a variant) on the task's reference and its bulk, return the fractions of the truth's labels."""
    import scvi

    from decode_omics.model import DECODE

    model_kwargs, train_kwargs = DECODE_VARIANTS[variant]
    scvi.settings.seed = seed
    ref = _lightweight(task.reference, None, task.labels_key)
    bulk = _lightweight(task.bulk, None)
    DECODE.setup_anndata(ref, labels_key=task.labels_key, scale=task.scale)
    DECODE.setup_anndata(bulk, scale=task.scale)
    model = DECODE(ref, bulk, mode=task.mode, **model_kwargs)
    kwargs = {"enable_progress_bar": False} | train_kwargs
    if max_epochs is not None:
        kwargs["max_epochs"] = max_epochs
    model.train(**kwargs)
    return model.get_fractions()


def run_nnls(task: Task, seed: int) -> pd.DataFrame:
    """NNLS on the reference's mean label profiles (deterministic; the seed is unused)."""
    scales = {"scale": task.scale, "reference_scale": task.scale}
    out = dco.tl.nnls(task.bulk, task.reference, task.labels_key, copy=True, **scales)
    return out.obsm["nnls"]


def methods(max_epochs: int | None = None) -> dict[str, Callable[[Task, int], pd.DataFrame]]:
    """Name -> callable(task, seed)."""
    from .peers import PEERS

    table: dict[str, Callable[[Task, int], pd.DataFrame]] = {"NNLS": run_nnls}
    for name in DECODE_VARIANTS:
        table[name] = lambda task, seed, _n=name: run_decode(task, seed, _n, max_epochs)
    table.update(PEERS)  # the field's methods, each in its own virtual environment (benchmarks/peers)
    return table


def _defaults(fn) -> dict:
    """A callable's keyword defaults (``repr`` of values JSON cannot hold)."""
    import inspect

    return {
        k: (p.default if isinstance(p.default, (bool, int, float, str, type(None))) else repr(p.default))
        for k, p in inspect.signature(fn).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def method_config(name: str, max_epochs: int | None = None) -> dict:
    """A method's full configuration as a job records it: for DECODE variants the variant's arguments and every
    default they leave in place (model, training, training plan, pseudo-tissues, the post-training fits' constants);
    for a peer its venv, runner, timeout, options and installed packages; for NNLS its call."""
    import dataclasses
    import os

    if name == "NNLS":
        return {"kind": "in-process", "call": "dco.tl.nnls(bulk, reference, labels_key, scale=task.scale)"}
    if name in DECODE_VARIANTS:
        from decode_omics.model import DECODE, _calibration, _pseudotissues, _training_plan

        model_kwargs, train_kwargs = DECODE_VARIANTS[name]
        constants = {
            f"{m.__name__.rsplit('.', 1)[-1]}.{k}": getattr(m, k)
            for m in (_calibration,)
            for k in dir(m)
            if k.isupper() and isinstance(getattr(m, k), (int, float))
        }
        return {
            "kind": "in-process",
            "model_kwargs": model_kwargs,
            "train_kwargs": train_kwargs | ({"max_epochs": max_epochs} if max_epochs is not None else {}),
            "model_defaults": _defaults(DECODE.__init__),
            "train_defaults": _defaults(DECODE.train),
            "plan_defaults": _defaults(_training_plan.DECODETrainingPlan.__init__),
            "pseudotissue_defaults": {f.name: f.default for f in dataclasses.fields(_pseudotissues.PseudoTissueConfig)},
            "constants": constants,
            "seeded": "scvi.settings.seed = seed",
        }
    from .peers import PEERS, VENVS

    peer = PEERS.get(name)
    if peer is None:
        return {"kind": "unknown"}
    installed = VENVS / peer.venv / "installed.txt"
    return {
        "kind": "peer",
        "venv": peer.venv,
        "runner": peer.runner,
        "timeout_s": peer.timeout_s,
        "options": peer.options,
        "options_override": os.environ.get("DECODE_OMICS_PEER_OPTIONS"),
        "needs_rna": peer.needs_rna,
        "installed": installed.read_text().split() if installed.exists() else "venv missing",
    }
