"""Writing a diagnosis's result: the tracked CSV (``benchmarks/results``) and the same table printed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def write_table(table: pd.DataFrame, path: Path, digits: int = 3) -> None:
    """Write ``table`` rounded to ``digits`` to ``path`` (its folder created) and print it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table.round(digits).to_csv(path, index=False)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table.round(digits).to_string(index=False))
    print(f"Wrote {path}")
