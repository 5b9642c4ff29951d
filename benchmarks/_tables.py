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


def merge_rows(new: pd.DataFrame, path: Path, keys: tuple[str, ...] = ("scenario", "task", "seed")) -> pd.DataFrame:
    """``new`` with the rows of the tracked table at ``path`` whose ``keys`` it does not hold (models not rerun)."""
    if not path.exists() or not len(new):
        return new
    old = pd.read_csv(path)
    done = set(new.loc[:, list(keys)].itertuples(index=False, name=None))
    old = old[[k not in done for k in old.loc[:, list(keys)].itertuples(index=False, name=None)]]
    return pd.concat([old, new], ignore_index=True)
