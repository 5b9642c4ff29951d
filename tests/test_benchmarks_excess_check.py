"""What ``tl.deconvolve``'s excess-share check names on the benchmark (``python -m benchmarks.excess_check``)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
from conftest import absent_marked_type, reference_and_bulk

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package sits at the repository root
from benchmarks import excess_check as check


def _task(name, ref, bulk):
    return SimpleNamespace(
        name=name, reference=ref, bulk=bulk, labels_key="cell_type", scale="auto", truth=bulk.obsm["fractions"].copy()
    )


def test_rows_read_the_missing_material_and_run_writes_them(tmp_path, monkeypatch):
    absent = _task("toy: type3 left out", *absent_marked_type(n_samples=30))
    complete = _task("toy: full reference", *reference_and_bulk(4, n_samples=20))
    monkeypatch.setattr("benchmarks.scenarios.SCENARIOS", {"toy": lambda: [complete, absent]})
    out = check.run(["toy"], tmp_path / "excess.csv")
    assert list(out["task"]) == [complete.name, absent.name] and (out["scenario"] == "toy").all()
    full, missing = out.iloc[0], out.iloc[1]
    assert full["median"] == 0 and full["named"] == 0 and full["carriers"] == "" and full["truth_median"] == 0
    assert full["left_out_by_auto"] == 0 and missing["left_out_by_auto"] >= 15
    # without the features it counted, the default model's own check reads less
    assert pd.isna(full["median_after_auto"]) and missing["median_after_auto"] < missing["median"]
    assert missing["named"] > 0.5 and missing["below_truth"] == 1.0 and missing["pearson"] > 0.8
    assert 0 < missing["q10"] <= missing["median"] <= missing["q90"] <= missing["max"] < missing["truth_median"] + 0.3
    assert all(f.startswith("gene") for f in missing["carriers"].split())  # type3's markers (genes 75-99)
    assert all(75 <= int(f[4:]) < 100 for f in missing["carriers"].split())
    stored = pd.read_csv(tmp_path / "excess.csv")
    assert list(stored["task"]) == list(out["task"])
