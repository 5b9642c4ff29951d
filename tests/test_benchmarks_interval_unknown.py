"""The interval_unknown benchmark's summary: coverage per task and unknown_share over seeds, worst seed kept."""

from __future__ import annotations

import pandas as pd
from benchmarks.interval_unknown import markdown, summary


def test_summary_keeps_every_seed_and_the_worst():
    rows = []
    for seed, (plain, auto) in enumerate([(0.6, 0.8), (0.7, 0.9), (0.5, 0.7)]):
        for asked, coverage, share in (("0.0", plain, 0.0), ("auto", auto, 0.3)):
            rows.append({"task": "t", "seed": seed, "unknown_share_asked": asked, "unknown_share": share,
                         "coverage_90": coverage, "width_90": 0.2, "constant_width_90": 0.1})  # fmt: skip
    out = summary(pd.DataFrame(rows)).set_index("unknown_share_asked")
    assert out.loc["auto", "seeds"] == 3
    assert abs(out.loc["auto", "coverage"] - 0.8) < 1e-12 and out.loc["auto", "coverage_min"] == 0.7
    assert out.loc["0.0", "coverage_max"] == 0.7
    lines = markdown(pd.DataFrame(rows))
    assert lines[2] == "| t | 0.0 | 0.00 | 3 | 0.60 (0.50-0.70) | 0.200 | 0.100 |"
    assert len(lines) == 4
