"""Calibration and power of ``dco.tl.compare_groups`` on simulated cohorts whose estimates carry per-sample intervals.

Run: ``python -m benchmarks.compare_groups`` (writes ``benchmarks/results/compare_groups.csv`` and prints a markdown
table; about 15 seconds on one core). Options: ``--n-cohorts`` (default 20,000), ``--seed`` (default 0).

No model is trained: estimates and intervals are simulated as a deconvolution with uncertainty would return them.

- Cohorts of PBMC-like fractions of 5 labels (B, CD4T, CD8T, NK, Mono). Each sample's true fractions are drawn from a
  Dirichlet with mean (0.10, 0.35, 0.20, 0.10, 0.25) and concentration 80 (per-label sd 0.033 to 0.053, as real
  cohorts vary).
- Estimates = truth + a bias common to all samples of the cohort (per label, N(0, 0.03), drawn once per cohort, a
  platform effect) + per-sample error N(0, s_i), with s_i drawn log-uniform in [0.005, 0.05] per sample (the same for
  all its labels), clipped to [0, 1].
- 90 % intervals = estimate ± z * sqrt(s_i^2 + 0.03^2), clipped to [0, 1]: their widths include the shared bias, as
  an interval from a method that does not know which part of its error is common to the cohort would.
- Groups: the samples are exchangeable, so the first half is the reference and the second the group (a random
  assignment). *Null*: no shift. *Shift*: in the group, Mono's true fraction is raised by 0.05 and the other labels
  are scaled down proportionally.
- 20 vs 20 and 10 vs 10 samples; and 20 vs 20 with errors that vary more between samples (s_i log-uniform in
  [0.005, 0.15], a cohort with a few poor samples). A test is positive at p < 0.05 (unadjusted). The false-positive
  rate is given per label and pooled over labels; its Monte-Carlo standard error is binomial (pooled: over cohorts x
  labels, which treats a cohort's labels as independent). Power is the rate of positives for Mono under the shift;
  coverage is how often the 90 % confidence interval of Mono's difference contains the planted +0.05.

Methods: ``weighted`` (``use_uncertainty=True``: random-effects weights from the intervals, sandwich variance, t with
Welch-Satterthwaite df from the effective sample sizes), ``welch`` (``use_uncertainty=False``) and two variants that
``compare_groups`` does not use, for contrast: ``weighted, clipped widths as they are`` reads every variance as
``((upper - lower) / (2 z))^2``, also where a bound was clipped at 0 (``compare_groups`` takes the larger half-width
there); ``weighted, 1/sum(w) variance`` takes the weighted means with the textbook meta-analysis variance
``1 / sum w`` and a normal reference instead of the sandwich variance and t.

The arrays of all cohorts go through the same vectorised core as ``compare_groups`` (``_compare_arrays``); the first
cohorts of every setting are also run through ``dco.tl.compare_groups`` on an AnnData and must give the same p-values.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import stats

import decode_omics as dco
from decode_omics.tl._compare import _compare_arrays, _interval_variance

RESULTS = Path(__file__).resolve().parent / "results"

LABELS = ["B", "CD4T", "CD8T", "NK", "Mono"]
MEAN = np.array([0.10, 0.35, 0.20, 0.10, 0.25])
CONCENTRATION = 80.0
BIAS_SD = 0.03
S_RANGE = (0.005, 0.05)
SHIFT_LABEL, SHIFT = "Mono", 0.05
INTERVAL_LEVEL = 0.9
ALPHA = 0.05
CI_LEVEL = 0.9
# (samples per group, largest per-sample error sd): the main setting, fewer samples, and errors that vary more.
SETTINGS = [(20, S_RANGE[1]), (10, S_RANGE[1]), (20, 0.15)]
METHODS = ["weighted", "welch", "weighted, clipped widths as they are", "weighted, 1/sum(w) variance"]


def simulate(
    n_cohorts: int, n_per_group: int, shift: float, rng: np.random.Generator, s_range: tuple[float, float] = S_RANGE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Estimates, lower and upper bounds, each cohorts x labels x samples (reference first, then group)."""
    n = 2 * n_per_group
    truth = rng.dirichlet(MEAN * CONCENTRATION, size=(n_cohorts, n))
    if shift:
        k = LABELS.index(SHIFT_LABEL)
        grp = truth[:, n_per_group:]
        old = grp[..., k].copy()
        grp *= ((1 - old - shift) / (1 - old))[..., None]
        grp[..., k] = old + shift
    bias = rng.normal(0, BIAS_SD, size=(n_cohorts, 1, len(LABELS)))
    s = np.exp(rng.uniform(*np.log(s_range), size=(n_cohorts, n, 1)))
    est = np.clip(truth + bias + s * rng.standard_normal(truth.shape), 0, 1)
    half = stats.norm.ppf(0.5 + INTERVAL_LEVEL / 2) * np.sqrt(s**2 + BIAS_SD**2)
    lower, upper = np.clip(est - half, 0, 1), np.clip(est + half, 0, 1)
    return tuple(np.moveaxis(a, 1, 2) for a in (est, lower, upper))


def tests(est: np.ndarray, lower: np.ndarray, upper: np.ndarray, n_per_group: int) -> dict[str, dict[str, np.ndarray]]:
    """Per method: p-values and, for the two methods of ``compare_groups``, 90 % intervals (cohorts x labels)."""
    n = est.shape[-1]
    in_group = np.arange(n) >= n_per_group
    s2 = _interval_variance(est, lower, upper, INTERVAL_LEVEL)
    res = _compare_arrays(est, s2, in_group, ~in_group, level=CI_LEVEL)
    out = {"weighted": res, "welch": _compare_arrays(est, None, in_group, ~in_group, level=CI_LEVEL)}
    # Contrast 1: variances from the full widths even where a bound was clipped at 0 or 1.
    s2_plain = ((upper - lower) / (2 * stats.norm.ppf(0.5 + INTERVAL_LEVEL / 2))) ** 2
    out[METHODS[2]] = {"pvalue": _compare_arrays(est, s2_plain, in_group, ~in_group)["pvalue"]}
    # Contrast 2: the same random-effects weighted means with var = 1 / sum(w) per group and a normal reference.
    var = 0.0
    for mask, tau2 in ((in_group, res["tau2_group"]), (~in_group, res["tau2_reference"])):
        w = np.where(mask, 1.0 / (np.maximum(s2, 1e-12) + tau2[..., None]), 0.0)
        var = var + 1.0 / w.sum(-1)
    out[METHODS[3]] = {"pvalue": 2 * stats.norm.sf(np.abs(res["difference"]) / np.sqrt(var))}
    return out


def check_public_api(est: np.ndarray, lower: np.ndarray, upper: np.ndarray, n_per_group: int, res: dict) -> None:
    """``dco.tl.compare_groups`` on AnnData cohorts gives the vectorised p-values."""
    n = est.shape[-1]
    names = [f"s{i}" for i in range(n)]
    cond = pd.Categorical(["reference"] * n_per_group + ["group"] * n_per_group, categories=["reference", "group"])
    for c in range(min(3, est.shape[0])):
        adata = AnnData(np.zeros((n, 1), dtype=np.float32), obs=pd.DataFrame({"cond": cond}, index=names))
        for suffix, arr in (("", est), ("_lower", lower), ("_upper", upper)):
            adata.obsm[f"decode{suffix}"] = pd.DataFrame(arr[c].T, index=names, columns=LABELS)
        adata.uns["decode"] = {"uncertainty": {"level": INTERVAL_LEVEL}}
        for method, use in (("weighted", True), ("welch", False)):
            dco.tl.compare_groups(adata, "cond", use_uncertainty=use, key_added="cmp")
            got = adata.uns["cmp"]["results"]["pvalue"].to_numpy()
            np.testing.assert_allclose(got, res[method]["pvalue"][c], rtol=1e-10, err_msg=f"{method}, cohort {c}")


def rate_rows(res: dict, scenario: str, n_per_group: int, s_max: float, n_cohorts: int) -> list[dict]:
    rows = []
    k = LABELS.index(SHIFT_LABEL)
    for method, r in res.items():
        pos = r["pvalue"] < ALPHA
        if scenario == "no_shift":
            measures = [("false_positive_rate", label, pos[:, LABELS.index(label)]) for label in LABELS]
            measures.append(("false_positive_rate", "pooled", pos))
        else:
            measures = [("power", SHIFT_LABEL, pos[:, k])]
            if "lower" in r:
                covered = (r["lower"][:, k] <= SHIFT) & (SHIFT <= r["upper"][:, k])
                measures.append((f"ci{CI_LEVEL * 100:.0f}_coverage", SHIFT_LABEL, covered))
        for measure, label, hits in measures:
            rate = float(hits.mean())
            rows.append(
                {
                    "scenario": scenario,
                    "n_per_group": n_per_group,
                    "error_sd_max": s_max,
                    "method": method,
                    "label": label,
                    "measure": measure,
                    "rate": rate,
                    "mc_se": float(np.sqrt(rate * (1 - rate) / hits.size)),
                    "tests": hits.size,
                    "n_cohorts": n_cohorts,
                }
            )
    return rows


def markdown(table: pd.DataFrame) -> str:
    def fmt(rows: pd.DataFrame) -> str:
        if rows.empty:
            return "-"
        r = rows.iloc[0]
        return f"{r['rate']:.3f} ± {r['mc_se']:.3f}"

    lines = [
        "| method | n per group | per-sample error sd | FPR pooled | FPR per label (min-max) | "
        f"power, +{SHIFT} {SHIFT_LABEL} | {CI_LEVEL:.0%} CI covers +{SHIFT} |",
        "|---|---|---|---|---|---|---|",
    ]
    for (n, s_max, method), sub in table.groupby(["n_per_group", "error_sd_max", "method"], sort=False):
        fpr = sub[sub["measure"] == "false_positive_rate"]
        per = fpr[fpr["label"] != "pooled"]["rate"]
        pooled = fmt(fpr[fpr["label"] == "pooled"])
        power, coverage = fmt(sub[sub["measure"] == "power"]), fmt(sub[sub["measure"].str.endswith("coverage")])
        lines.append(
            f"| {method} | {n} vs {n} | {S_RANGE[0]}-{s_max} | {pooled} | {per.min():.3f}-{per.max():.3f} | {power} | "
            f"{coverage} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-cohorts", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    rows = []
    for i, (n_per_group, s_max) in enumerate(SETTINGS):
        for j, (scenario, shift) in enumerate((("no_shift", 0.0), ("shift", SHIFT))):
            rng = np.random.default_rng([args.seed, i, j])
            est, lower, upper = simulate(args.n_cohorts, n_per_group, shift, rng, (S_RANGE[0], s_max))
            res = tests(est, lower, upper, n_per_group)
            check_public_api(est, lower, upper, n_per_group, res)
            rows += rate_rows(res, scenario, n_per_group, s_max, args.n_cohorts)
    table = pd.DataFrame(rows)
    table["alpha"] = ALPHA
    table["seed"] = args.seed
    table["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}"
    RESULTS.mkdir(exist_ok=True)
    table.to_csv(RESULTS / "compare_groups.csv", index=False, float_format="%.5g")
    print(markdown(table))
    print(
        f"\n{args.n_cohorts} simulated cohorts per row and scenario, seed {args.seed}, alpha {ALPHA} (unadjusted); "
        f"± is the Monte-Carlo standard error. {time.perf_counter() - t0:.1f} s."
    )
    return table


if __name__ == "__main__":
    main()
