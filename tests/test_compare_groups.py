import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import decode_omics as dco
from decode_omics.tl._compare import COLUMNS

LABELS = ["B", "T", "NK", "Mono"]
MEAN = np.array([0.15, 0.45, 0.15, 0.25])


def _adata(
    n_group: int = 15,
    n_reference: int = 15,
    *,
    shift: float = 0.0,
    seed: int = 0,
    intervals: bool = True,
    half_width: float = 0.04,
    noise: float = 0.01,
) -> ad.AnnData:
    """Fractions of ``n_reference`` then ``n_group`` samples; ``shift`` added to Mono in the group (others rescaled)."""
    rng = np.random.default_rng(seed)
    n = n_group + n_reference
    truth = rng.dirichlet(MEAN * 100, n)
    if shift:
        old = truth[n_reference:, 3].copy()
        truth[n_reference:] *= ((1 - old - shift) / (1 - old))[:, None]
        truth[n_reference:, 3] = old + shift
    est = np.clip(truth + rng.normal(0, noise, truth.shape), 0, 1)
    names = [f"s{i}" for i in range(n)]
    obs = pd.DataFrame(
        {"condition": pd.Categorical(["ctrl"] * n_reference + ["treated"] * n_group, categories=["ctrl", "treated"])},
        index=names,
    )
    adata = ad.AnnData(np.zeros((n, 3), dtype=np.float32), obs=obs)
    adata.obsm["decode"] = pd.DataFrame(est, index=names, columns=LABELS)
    if intervals:
        adata.obsm["decode_lower"] = (adata.obsm["decode"] - half_width).clip(0, 1)
        adata.obsm["decode_upper"] = (adata.obsm["decode"] + half_width).clip(0, 1)
        adata.uns["decode"] = {"uncertainty": {"level": 0.9}}
    return adata


def _results(adata: ad.AnnData, key: str = "decode_compare_condition") -> pd.DataFrame:
    return adata.uns[key]["results"]


@pytest.mark.parametrize("use_uncertainty", [True, False])
def test_planted_shift_detected(use_uncertainty):
    adata = _adata(shift=0.15, seed=1)
    assert dco.tl.compare_groups(adata, "condition", use_uncertainty=use_uncertainty) is None
    res = _results(adata)
    mono = res.loc["Mono"]
    assert mono["pvalue"] < 0.01
    assert mono["pvalue_adj"] < 0.01
    assert mono["lower"] <= 0.15 <= mono["upper"]
    assert abs(mono["difference"] - 0.15) < 0.05
    assert mono["difference"] == pytest.approx(mono["mean_group"] - mono["mean_reference"])
    assert mono["method"] == ("weighted" if use_uncertainty else "welch")
    assert (res["n_group"] == 15).all() and (res["n_reference"] == 15).all()


def test_null_not_significant():
    adata = _adata(seed=2)
    dco.tl.compare_groups(adata, "condition")
    res = _results(adata)
    assert res["pvalue"].min() > 0.05
    assert ((res["lower"] <= 0) & (res["upper"] >= 0)).all()


def test_without_intervals_is_welch():
    adata = _adata(seed=3, shift=0.05, intervals=False)
    dco.tl.compare_groups(adata, "condition")  # "auto" without intervals
    res = _results(adata)
    assert (res["method"] == "welch").all()
    assert adata.uns["decode_compare_condition"]["params"]["use_uncertainty"] is False
    f = adata.obsm["decode"].to_numpy()
    t = stats.ttest_ind(f[15:], f[:15], equal_var=False)
    np.testing.assert_allclose(res["statistic"], t.statistic, rtol=1e-10)
    np.testing.assert_allclose(res["pvalue"], t.pvalue, rtol=1e-10)
    np.testing.assert_allclose(res["df"], t.df, rtol=1e-10)
    ci = t.confidence_interval(0.9)
    np.testing.assert_allclose(res["lower"], ci.low, rtol=1e-10)
    np.testing.assert_allclose(res["upper"], ci.high, rtol=1e-10)
    np.testing.assert_allclose(res["mean_group"], f[15:].mean(0))


def test_equal_intervals_reduce_to_welch():
    adata = _adata(seed=4, shift=0.05, half_width=0.04)
    dco.tl.compare_groups(adata, "condition", key_added="w")
    dco.tl.compare_groups(adata, "condition", use_uncertainty=False, key_added="u")
    w, u = adata.uns["w"]["results"], adata.uns["u"]["results"]
    assert (w["method"] == "weighted").all()
    num = [c for c in COLUMNS if c != "method"]
    pd.testing.assert_frame_equal(w[num], u[num], rtol=1e-9)


def test_uncertain_wild_sample_counts_less():
    adata = _adata(seed=5)
    est, lo, up = (adata.obsm[k].copy() for k in ("decode", "decode_lower", "decode_upper"))
    wild = adata.obs_names[-1]  # in "treated"
    est.loc[wild, "Mono"], lo.loc[wild, "Mono"], up.loc[wild, "Mono"] = 0.9, 0.5, 1.0
    adata.obsm["decode"], adata.obsm["decode_lower"], adata.obsm["decode_upper"] = est, lo, up
    dco.tl.compare_groups(adata, "condition", key_added="w")
    dco.tl.compare_groups(adata, "condition", use_uncertainty=False, key_added="u")
    w, u = adata.uns["w"]["results"].loc["Mono"], adata.uns["u"]["results"].loc["Mono"]
    others = est.loc[adata.obs["condition"] == "treated", "Mono"].drop(wild).mean()
    assert u["mean_group"] == pytest.approx(est.loc[adata.obs["condition"] == "treated", "Mono"].mean())
    assert abs(w["mean_group"] - others) < 0.5 * abs(u["mean_group"] - others)


def test_clipped_bound_uses_other_half_width():
    from decode_omics.tl._compare import _interval_variance

    est = np.array([0.01, 0.5, 0.99])
    lo = np.array([0.0, 0.45, 0.94])
    up = np.array([0.06, 0.55, 1.0])
    z = stats.norm.ppf(0.95)
    np.testing.assert_allclose(_interval_variance(est, lo, up, 0.9), (np.array([0.05, 0.05, 0.05]) / z) ** 2)


def test_benjamini_hochberg_matches_manual():
    adata = _adata(seed=6, shift=0.06, n_group=12, n_reference=12)
    dco.tl.compare_groups(adata, "condition")
    res = _results(adata)
    p = res["pvalue"].to_numpy()
    m = len(p)
    order = np.argsort(p)
    manual = np.empty(m)
    for rank, i in enumerate(order, start=1):
        manual[i] = min(1.0, min(p[j] * m / (r + 1) for r, j in enumerate(order) if r + 1 >= rank))
    np.testing.assert_allclose(res["pvalue_adj"], manual, rtol=1e-12)
    np.testing.assert_allclose(res["pvalue_adj"], stats.false_discovery_control(p), rtol=1e-12)


def test_constant_label_and_unknown_column():
    adata = _adata(seed=7, intervals=False)
    f = adata.obsm["decode"].copy()
    f["unknown"] = 0.0
    adata.obsm["decode"] = f
    dco.tl.compare_groups(adata, "condition")
    res = _results(adata)
    assert list(res.index) == [*LABELS, "unknown"]
    row = res.loc["unknown"]
    assert row["statistic"] == 0 and row["pvalue"] == 1 and row["difference"] == 0
    assert row["lower"] == 0 and row["upper"] == 0
    assert np.isfinite(res["pvalue_adj"]).all()


def test_groups_order_nan_groups_and_nan_estimates():
    adata = _adata(seed=8, shift=0.1)
    dco.tl.compare_groups(adata, "condition", key_added="default")
    default = adata.uns["default"]
    assert default["params"]["groups"] == ["treated", "ctrl"]  # reference: first category
    dco.tl.compare_groups(adata, "condition", groups=("ctrl", "treated"), key_added="flipped")
    flipped = adata.uns["flipped"]["results"]
    np.testing.assert_allclose(flipped["difference"], -default["results"]["difference"])
    np.testing.assert_allclose(flipped["pvalue"], default["results"]["pvalue"])

    obs = adata.obs.copy()
    obs["condition"] = obs["condition"].astype(object)
    obs.iloc[:2, 0] = np.nan  # two reference samples without a group
    obs["condition"] = obs["condition"].astype("category")
    adata.obs = obs
    est = adata.obsm["decode"].copy()
    est.iloc[-1, 0] = np.nan  # one group sample without a B estimate
    adata.obsm["decode"] = est
    dco.tl.compare_groups(adata, "condition")
    res = _results(adata)
    assert (res["n_reference"] == 13).all()
    assert res.loc["B", "n_group"] == 14 and (res.loc[["T", "NK", "Mono"], "n_group"] == 15).all()
    assert np.isfinite(res["pvalue"]).all()


def test_three_groups_with_groups_argument():
    adata = _adata(seed=9)
    adata.obs["batch"] = ["a", "b", "c"] * 10
    dco.tl.compare_groups(adata, "batch", groups=("c", "a"))
    res = adata.uns["decode_compare_batch"]["results"]
    assert (res["n_group"] == 10).all() and (res["n_reference"] == 10).all()


def test_uns_layout_and_h5ad_roundtrip(tmp_path):
    adata = _adata(seed=10)
    dco.tl.compare_groups(adata, "condition", level=0.95)
    out = adata.uns["decode_compare_condition"]
    assert set(out) == {"params", "results"}
    assert out["params"] == {
        "groupby": "condition",
        "groups": ["treated", "ctrl"],
        "key": "decode",
        "level": 0.95,
        "use_uncertainty": True,
        "method": "weighted",
        "interval_level": 0.9,
    }
    res = out["results"]
    assert list(res.columns) == COLUMNS
    assert res.index.name == "label" and list(res.index) == LABELS
    assert res["n_group"].dtype == np.int64 and res["n_reference"].dtype == np.int64
    assert (res["lower"] <= res["difference"]).all() and (res["difference"] <= res["upper"]).all()
    adata.write_h5ad(tmp_path / "a.h5ad")
    back = ad.read_h5ad(tmp_path / "a.h5ad").uns["decode_compare_condition"]
    pd.testing.assert_frame_equal(back["results"], res, check_dtype=False)


def test_level_changes_interval_width():
    adata = _adata(seed=11)
    dco.tl.compare_groups(adata, "condition", level=0.5, key_added="narrow")
    dco.tl.compare_groups(adata, "condition", level=0.99, key_added="wide")
    narrow, wide = adata.uns["narrow"]["results"], adata.uns["wide"]["results"]
    assert ((wide["upper"] - wide["lower"]) > (narrow["upper"] - narrow["lower"])).all()
    np.testing.assert_allclose(wide["pvalue"], narrow["pvalue"])


def test_missing_interval_level_read_as_90():
    adata = _adata(seed=12)
    dco.tl.compare_groups(adata, "condition", key_added="with")
    del adata.uns["decode"]
    dco.tl.compare_groups(adata, "condition", key_added="without")
    pd.testing.assert_frame_equal(adata.uns["with"]["results"], adata.uns["without"]["results"])


def test_inputs_not_modified():
    adata = _adata(seed=13)
    before = adata.copy()
    dco.tl.compare_groups(adata, "condition")
    pd.testing.assert_frame_equal(adata.obs, before.obs)
    for k in ("decode", "decode_lower", "decode_upper"):
        pd.testing.assert_frame_equal(adata.obsm[k], before.obsm[k])
    assert set(adata.uns) == {*before.uns, "decode_compare_condition"}
    assert adata.uns["decode"] == before.uns["decode"]


def test_copy_returns_modified_copy():
    adata = _adata(seed=14)
    out = dco.tl.compare_groups(adata, "condition", copy=True, key_added="cmp")
    assert isinstance(out, ad.AnnData) and out is not adata
    assert "cmp" in out.uns and "cmp" not in adata.uns
    assert list(out.uns["cmp"]["results"].columns) == COLUMNS


def _misaligned_columns(adata):
    adata.obsm["decode_lower"] = adata.obsm["decode_lower"][LABELS[::-1]]


def _swapped(adata):
    adata.obsm["decode_lower"], adata.obsm["decode_upper"] = adata.obsm["decode_upper"], adata.obsm["decode_lower"]


def _one_bound(adata):
    del adata.obsm["decode_upper"]


def _singleton(adata):
    obs = adata.obs.copy()
    obs["condition"] = ["ctrl"] * 29 + ["treated"]
    adata.obs = obs


def _three_groups(adata):
    adata.obs["condition"] = ["a", "b", "c"] * 10


def _not_a_frame(adata):
    adata.obsm["decode"] = adata.obsm["decode"].to_numpy()


def _bad_interval_level(adata):
    adata.uns["decode"]["uncertainty"]["level"] = 90


@pytest.mark.parametrize(
    ("mutate", "kwargs", "error", "match"),
    [
        (None, {"groupby": "tissue"}, KeyError, r"'tissue' is not a column of adata.obs; its columns are 'condition'"),
        (None, {"key": "nnls"}, KeyError, r"run `dco.tl.deconvolve` first"),
        (None, {"groups": ("treated", "sick")}, ValueError, r"Group 'sick' is absent .* 'ctrl', 'treated'"),
        (None, {"groups": ("ctrl", "ctrl")}, ValueError, r"same group twice"),
        (None, {"groups": "ctrl"}, ValueError, r"must be a pair"),
        (None, {"level": 95}, ValueError, r"`level` .* in \(0, 1\)"),
        (None, {"level": 0.0}, ValueError, r"`level` .* in \(0, 1\)"),
        (None, {"use_uncertainty": "yes"}, ValueError, r"`use_uncertainty` must be True, False or 'auto'"),
        (_three_groups, {}, ValueError, r"has 3 groups .* Pass `groups=\(group, reference\)`"),
        (_singleton, {}, ValueError, r"Group 'treated' .* has 1 sample\(s\); .* at least 2 per group"),
        (_misaligned_columns, {}, ValueError, r"'decode_lower'\] is not aligned .* same samples and labels"),
        (_swapped, {}, ValueError, r"below adata.obsm\['decode_lower'\]"),
        (_one_bound, {}, ValueError, r"Only one interval bound is present \(missing adata.obsm\['decode_upper'\]\)"),
        (_not_a_frame, {}, TypeError, r"is a ndarray, not a DataFrame"),
        (_bad_interval_level, {}, ValueError, r"\['uncertainty'\]\['level'\] is 90.0"),
    ],
)
def test_errors(mutate, kwargs, error, match):
    adata = _adata(seed=15)
    if mutate is not None:
        mutate(adata)
    kwargs = {"groupby": "condition", **kwargs}
    with pytest.raises(error, match=match):
        dco.tl.compare_groups(adata, **kwargs)


def test_use_uncertainty_true_needs_intervals():
    adata = _adata(seed=16, intervals=False)
    with pytest.raises(
        ValueError, match=r"needs the interval bounds .* `dco.tl.deconvolve\(\.\.\., uncertainty=True\)"
    ):
        dco.tl.compare_groups(adata, "condition", use_uncertainty=True)


def test_not_anndata():
    adata = _adata(seed=17)
    with pytest.raises(TypeError, match=r"compare_groups takes an AnnData .* got DataFrame"):
        dco.tl.compare_groups(adata.obsm["decode"], "condition")
