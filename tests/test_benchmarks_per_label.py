"""The per-label table of the benchmark page (``benchmarks/per_label.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package sits at the repository root
from benchmarks import per_label as pl


def _estimates(bias: float, seed: int) -> pd.DataFrame:
    """Cached estimates of one task: label A read ``bias`` low (B takes it), C exact; an ``unknown`` column too."""
    rng = np.random.default_rng(seed)
    truth = rng.dirichlet(np.ones(3), 10)
    est = truth.copy()
    est[:, 0] -= bias * truth[:, 0]
    est[:, 1] += bias * truth[:, 0]
    rows = [
        {"task": "cohort", "index": f"s{i}", "label": label, "estimate": est[i, k], "truth": truth[i, k]}
        for i in range(10)
        for k, label in enumerate("ABC")
    ]
    rows += [{"task": "cohort", "index": f"s{i}", "label": "unknown", "estimate": 0.1, "truth": 0.0} for i in range(10)]
    return pd.DataFrame(rows)


def test_job_rows_score_each_label_over_the_labels_scored():
    rows = pd.DataFrame(pl.job_rows("pbmc_real__DECODE__1__default", _estimates(0.5, 0)))
    assert list(rows["label"]) == ["A", "B", "C"]  # unknown is not a label scored
    assert (rows["method"] == "DECODE").all() and (rows["seed"] == 1).all()
    a, b, c = (rows.set_index("label").loc[x] for x in "ABC")
    assert a["estimate_mean"] == pytest.approx(a["truth_mean"] / 2)
    assert b["estimate_mean"] - b["truth_mean"] == pytest.approx(a["truth_mean"] / 2)
    assert c["ccc"] == pytest.approx(1.0) and a["ccc"] < 0.9
    np.testing.assert_allclose(rows["truth_mean"].sum(), 1.0)


def test_page_flags_labels_off_by_more_than_the_tolerance_on_the_worst_seed():
    rows = []
    for seed, bias in ((0, 0.0), (1, 0.5)):  # seed 1 reads A half as high
        rows += pl.job_rows(f"pbmc_real__DECODE__{seed}__default", _estimates(bias, 0))
    rows += pl.job_rows("pbmc_real__NNLS__0__default", _estimates(0.0, 0))
    rows += pl.job_rows("kidney__DECODE__0__default", _estimates(0.5, 0))  # no real truth: not on the page
    text = "\n".join(pl.lines(pd.DataFrame(rows)))
    a = next(line for line in text.splitlines() if line.startswith("| cohort | A |"))
    c = next(line for line in text.splitlines() if line.startswith("| cohort | C |"))
    assert "**no**" in a and "; 2)" in a and a.rstrip().endswith("|")
    assert "| yes |" in c
    assert "| NNLS |" in text and text.count("| cohort | A |") == 1
    assert pl.lines(pd.DataFrame(columns=pl.COLUMNS)) == []


def test_collect_keeps_the_tracked_rows_of_jobs_not_in_the_cache(tmp_path):
    cache = tmp_path / "jobs"
    cache.mkdir()
    _estimates(0.2, 0).to_csv(cache / "pbmc_real__DECODE__0__default.csv.gz", index=False)
    tracked = tmp_path / "per_label.csv"
    old = pd.DataFrame(pl.job_rows("pbmc_real__DECODE__0__default", _estimates(0.9, 0)))
    other = pd.DataFrame(pl.job_rows("pbmc_real__DECODE__1__default", _estimates(0.9, 0)))
    pd.concat([old, other]).to_csv(tracked, index=False)
    page = [(f"pbmc_real__DECODE__{s}__default", cache / f"pbmc_real__DECODE__{s}__default.json") for s in (0, 1)]
    table = pl.collect(page, tracked)
    assert len(table) == 6  # seed 0 from the cache (replacing its tracked rows), seed 1 kept
    a0 = table[(table["seed"] == 0) & (table["label"] == "A")].iloc[0]
    assert a0["estimate_mean"] == pytest.approx(0.8 * a0["truth_mean"])
