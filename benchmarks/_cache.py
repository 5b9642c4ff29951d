"""Reading the per-job cache (``benchmarks/results/jobs``): job names and the stored estimates of each task."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd


def job_key(tag: str) -> tuple[str, str, int]:
    """``(scenario, method, seed)`` of a job named ``scenario__method__seed__epochs``."""
    scenario, method, seed = tag.split("__")[:3]
    return scenario, method.replace("_", " "), int(seed)


def task_estimates(estimates: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame, pd.DataFrame]]:
    """``(task, estimate, truth)`` per task of a job's cached estimates (columns ``task``, ``index``, ``label``,
    ``estimate``, ``truth``), each frame samples x labels, in the order stored."""
    for task, d in estimates.groupby("task", sort=False):
        yield (
            task,
            d.pivot(index="index", columns="label", values="estimate"),
            d.pivot(index="index", columns="label", values="truth"),
        )
