import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import spearmanr

import decode_omics as dco

LABELS = ["B", "T", "NK", "Mono", "DC"]


def _fractions(n: int, seed: int = 0, labels=LABELS, prefix: str = "s") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        rng.dirichlet(np.ones(len(labels)), n), index=[f"{prefix}{i}" for i in range(n)], columns=list(labels)
    )


def _mdata(frames: dict[str, pd.DataFrame | None], *, write_global: bool = True) -> md.MuData:
    """One modality per frame (its samples = the frame's index); fractions in mod.obsm and mdata.obsm."""
    mods = {}
    for i, (mod, frame) in enumerate(frames.items()):
        a = ad.AnnData(np.zeros((frame.shape[0], 2), dtype=np.float32), obs=pd.DataFrame(index=frame.index.copy()))
        a.var_names = [f"{mod}_f{j}_{i}" for j in range(2)]
        mods[mod] = a
    mdata = md.MuData(mods)
    for mod, frame in frames.items():
        if frame is None:
            continue
        mdata[mod].obsm["decode"] = frame
        if write_global:
            mdata.obsm[f"decode_{mod}"] = frame.reindex(mdata.obs_names)
    return mdata


def _with_key_removed(mdata: md.MuData, mod: str) -> md.MuData:
    del mdata.obsm[f"decode_{mod}"]
    del mdata[mod].obsm["decode"]
    return mdata


def test_identical_fractions_agree_perfectly():
    f = _fractions(20)
    mdata = _mdata({"rna": f, "protein": f.copy()})
    assert dco.tl.consistency(mdata) is None
    res = mdata.uns["decode_consistency"]
    assert set(res) == {"per_sample", "per_label", "summary"}

    ps = res["per_sample"]
    assert list(ps.columns) == ["pair", "sample", "pearson", "spearman", "ccc", "jensen_shannon"]
    assert len(ps) == 20
    assert (ps["pair"] == "rna vs protein").all()
    np.testing.assert_allclose(ps[["pearson", "spearman", "ccc"]].to_numpy(), 1.0)
    np.testing.assert_allclose(ps["jensen_shannon"], 0.0, atol=1e-12)

    pl = res["per_label"]
    assert list(pl.columns) == ["pair", "label", "pearson", "spearman", "ccc"]
    assert pl["label"].tolist() == LABELS
    np.testing.assert_allclose(pl[["pearson", "spearman", "ccc"]].to_numpy(), 1.0)

    sm = res["summary"]
    assert list(sm.columns) == ["pair", "n_samples", "n_labels", "ccc", "pearson", "median_jensen_shannon"]
    row = sm.iloc[0]
    assert (row["n_samples"], row["n_labels"]) == (20, 5)
    assert row["ccc"] == pytest.approx(1.0)
    assert row["pearson"] == pytest.approx(1.0)
    assert row["median_jensen_shannon"] == pytest.approx(0.0, abs=1e-12)


def test_shuffled_samples_agree_less_and_values_match_scipy():
    f = _fractions(30)
    shuffled = f.iloc[np.random.default_rng(1).permutation(30)].set_axis(f.index)
    mdata = _mdata({"rna": f, "protein": f.copy(), "metabolite": shuffled})
    dco.tl.consistency(mdata)
    res = mdata.uns["decode_consistency"]
    sm = res["summary"].set_index("pair")
    assert list(sm.index) == ["rna vs protein", "rna vs metabolite", "protein vs metabolite"]
    assert sm.loc["rna vs protein", "ccc"] == pytest.approx(1.0)
    assert sm.loc["rna vs metabolite", "ccc"] < 0.5
    assert sm.loc["rna vs metabolite", "median_jensen_shannon"] > 0.1

    # Per-sample numbers are the textbook ones: scipy's Spearman and base-2 JSD, dco.metrics' CCC.
    ps = res["per_sample"].query("pair == 'rna vs metabolite'").set_index("sample")
    s = "s3"
    assert ps.loc[s, "spearman"] == pytest.approx(spearmanr(f.loc[s], shuffled.loc[s]).statistic)
    assert ps.loc[s, "pearson"] == pytest.approx(np.corrcoef(f.loc[s], shuffled.loc[s])[0, 1])
    assert ps.loc[s, "jensen_shannon"] == pytest.approx(jensenshannon(f.loc[s], shuffled.loc[s], base=2))
    expected_ccc = dco.metrics.ccc(f.loc[[s]].T, shuffled.loc[[s]].T)
    assert ps.loc[s, "ccc"] == pytest.approx(expected_ccc)
    assert ((ps["jensen_shannon"] >= 0) & (ps["jensen_shannon"] <= 1)).all()

    pl = res["per_label"].query("pair == 'rna vs metabolite'").set_index("label")
    assert pl.loc["NK", "ccc"] == pytest.approx(dco.metrics.ccc(f, shuffled, per_label=True)["NK"])
    assert pl.loc["NK", "spearman"] == pytest.approx(spearmanr(f["NK"], shuffled["NK"]).statistic)


def test_nan_rows_of_missing_samples_are_excluded():
    f = _fractions(20)
    prot = f.iloc[5:].copy()  # protein lacks s0..s4: NaN rows in mdata.obsm["decode_protein"]
    met = f.iloc[:12].copy()
    mdata = _mdata({"rna": f, "protein": prot, "metabolite": met})
    assert mdata.obsm["decode_protein"].loc["s0"].isna().all()
    dco.tl.consistency(mdata)
    res = mdata.uns["decode_consistency"]
    sm = res["summary"].set_index("pair")
    assert sm.loc["rna vs protein", "n_samples"] == 15
    assert sm.loc["rna vs metabolite", "n_samples"] == 12
    assert sm.loc["protein vs metabolite", "n_samples"] == 7
    ps = res["per_sample"]
    assert set(ps.query("pair == 'protein vs metabolite'")["sample"]) == {f"s{i}" for i in range(5, 12)}
    assert not ps[["pearson", "spearman", "ccc", "jensen_shannon"]].isna().any().any()
    np.testing.assert_allclose(ps["ccc"], 1.0)


def test_unknown_is_dropped_and_shared_labels_renormalised():
    f = _fractions(15)
    absolute = f * 0.7
    absolute["unknown"] = 0.3  # absolute mode: same composition of the known labels
    fewer = f.drop(columns="DC")  # a modality without one label
    fewer = fewer.div(fewer.sum(axis=1), axis=0)
    mdata = _mdata({"rna": f, "protein": absolute, "metabolite": fewer})
    dco.tl.consistency(mdata)
    res = mdata.uns["decode_consistency"]
    sm = res["summary"].set_index("pair")
    assert sm.loc["rna vs protein", "n_labels"] == 5
    assert sm.loc["rna vs protein", "ccc"] == pytest.approx(1.0)
    assert sm.loc["rna vs metabolite", "n_labels"] == 4
    assert sm.loc["rna vs metabolite", "ccc"] == pytest.approx(1.0)  # equal after renormalising without DC
    assert "unknown" not in set(res["per_label"]["label"])
    # rounding in the renormalisation must not turn a zero distance into NaN (sqrt of -1e-17)
    np.testing.assert_allclose(res["per_sample"]["jensen_shannon"], 0.0, atol=1e-6)
    assert "DC" not in set(res["per_label"].query("pair == 'rna vs metabolite'")["label"])


def test_falls_back_to_modality_obsm_key_added_and_copy():
    f = _fractions(10)
    mdata = _mdata({"rna": f, "protein": f.copy()}, write_global=False)
    assert "decode_rna" not in mdata.obsm
    out = dco.tl.consistency(mdata, key_added="cons", copy=True)
    assert isinstance(out, md.MuData)
    assert "cons" in out.uns and "cons" not in mdata.uns
    assert out.uns["cons"]["summary"].loc[0, "n_samples"] == 10


def test_result_survives_h5mu_round_trip(tmp_path):
    f = _fractions(8)
    mdata = _mdata({"rna": f, "protein": _fractions(8, seed=3)})
    dco.tl.consistency(mdata)
    mdata.write(tmp_path / "x.h5mu")
    back = md.read_h5mu(tmp_path / "x.h5mu")
    pd.testing.assert_frame_equal(
        back.uns["decode_consistency"]["summary"], mdata.uns["decode_consistency"]["summary"], check_dtype=False
    )


def test_error_when_fewer_than_two_modalities_have_fractions():
    f = _fractions(10)
    mdata = _with_key_removed(_mdata({"rna": f, "protein": f.copy()}), "protein")
    with pytest.raises(ValueError, match="at least 2 modalities") as err:
        dco.tl.consistency(mdata)
    msg = str(err.value)
    assert "decode_protein" in msg and "dco.tl.deconvolve" in msg and "['rna']" in msg
    with pytest.raises(ValueError, match="key 'other'"):
        dco.tl.consistency(_mdata({"rna": f, "protein": f.copy()}), key="other")


def test_error_when_no_shared_samples_or_labels():
    a = _fractions(6, prefix="a")
    b = _fractions(6, prefix="b")
    with pytest.raises(ValueError, match="share no samples"):
        dco.tl.consistency(_mdata({"rna": a, "protein": b}))
    other = _fractions(6, labels=["x", "y", "z"])
    with pytest.raises(ValueError, match="share no labels"):
        dco.tl.consistency(_mdata({"rna": _fractions(6), "protein": other}))


def test_error_for_anndata_and_arrays():
    with pytest.raises(TypeError, match="MuData"):
        dco.tl.consistency(ad.AnnData(np.zeros((3, 2))))
    f = _fractions(5)
    mdata = _mdata({"rna": f, "protein": f.copy()})
    mdata.obsm["decode_rna"] = mdata.obsm["decode_rna"].to_numpy()
    with pytest.raises(TypeError, match="not a DataFrame"):
        dco.tl.consistency(mdata)
