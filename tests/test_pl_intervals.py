"""Per-sample uncertainty intervals in dco.pl.fractions (kind="points") and dco.pl.truth (error bars, coverage)."""

import matplotlib

matplotlib.use("Agg")

from types import SimpleNamespace

import anndata as ad
import matplotlib.pyplot as plt
import mudata as md
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.colors import to_rgba

import decode_omics as dco

LABELS = ["B", "T", "NK", "Mono"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _frames(n: int, labels=LABELS, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Truth, estimate and lower / upper bounds (lower <= estimate <= upper, in [0, 1]) of varied widths."""
    rng = np.random.default_rng(seed)
    index = [f"s{i}" for i in range(n)]
    truth = pd.DataFrame(rng.dirichlet(np.ones(len(labels)), n), index=index, columns=labels)
    est = np.clip(truth.to_numpy() + rng.normal(0, 0.05, truth.shape), 0, None)
    est = pd.DataFrame(est / est.sum(axis=1, keepdims=True), index=index, columns=labels)
    below, above = rng.uniform(0.0, 0.08, truth.shape), rng.uniform(0.0, 0.08, truth.shape)
    lower = (est - below).clip(lower=0.0)
    upper = (est + above).clip(upper=1.0)
    return truth, est, lower, upper


def _adata(n: int = 8, labels=LABELS, level: float | None = 0.9, seed: int = 0) -> ad.AnnData:
    truth, est, lower, upper = _frames(n, labels, seed)
    adata = ad.AnnData(np.zeros((n, 3), dtype=np.float32), obs=pd.DataFrame(index=truth.index))
    adata.obs["donor"] = pd.Categorical(["d2", "d1", "d3"] * (n // 3) + ["d1"] * (n % 3), categories=["d1", "d2", "d3"])
    adata.obsm["fractions"] = truth
    adata.obsm["decode"] = est
    adata.obsm["decode_lower"] = lower
    adata.obsm["decode_upper"] = upper
    if level is not None:
        adata.uns["decode"] = {"uncertainty": {"level": level}}
    return adata


def _intervals(ax) -> dict[str, LineCollection]:
    """The interval lines of an Axes by label (their gid is ``"interval <label>"``)."""
    return {
        c.get_gid().removeprefix("interval "): c
        for c in ax.collections
        if isinstance(c, LineCollection) and (c.get_gid() or "").startswith("interval ")
    }


def _extents(lines: LineCollection) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, lower y and upper y of each vertical segment."""
    segments = np.array(lines.get_segments())
    np.testing.assert_allclose(segments[:, 0, 0], segments[:, 1, 0])  # vertical
    return segments[:, 0, 0], segments[:, :, 1].min(axis=1), segments[:, :, 1].max(axis=1)


def _points(ax) -> list[PathCollection]:
    return [c for c in ax.collections if isinstance(c, PathCollection)]


# --- fractions -------------------------------------------------------------------------------------------------------


def test_fractions_points_draw_the_intervals(tmp_path):
    adata = _adata(8)
    path = tmp_path / "points.png"
    ax = dco.pl.fractions(adata, show=False, save=path)  # kind="auto": intervals stored, 32 estimates -> points
    assert path.exists() and path.stat().st_size > 0
    assert ax.containers == []  # no bars
    names = [t.get_text() for t in ax.get_xticklabels()]
    assert names == list(adata.obs_names)
    lines = _intervals(ax)
    assert list(lines) == LABELS
    points = _points(ax)
    assert [p.get_label() for p in points] == LABELS
    slot_x = np.arange(8.0)
    for j, (label, scatter) in enumerate(zip(LABELS, points)):
        x, low, high = _extents(lines[label])
        np.testing.assert_allclose(low, adata.obsm["decode_lower"].loc[names, label])
        np.testing.assert_allclose(high, adata.obsm["decode_upper"].loc[names, label])
        offsets = scatter.get_offsets()
        np.testing.assert_allclose(offsets[:, 1], adata.obsm["decode"].loc[names, label])
        np.testing.assert_allclose(offsets[:, 0], x)  # the line passes through its point
        np.testing.assert_allclose(x - slot_x, (j - 1.5) * 0.2)  # labels side by side within each sample's slot
        assert to_rgba(lines[label].get_color()[0]) == to_rgba(scatter.get_facecolor()[0])
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == LABELS  # left to right, as in each slot
    assert legend.get_title().get_text() == "lines: 90 % intervals"
    assert ax.get_ylim()[1] >= adata.obsm["decode_upper"].to_numpy().max()


def test_fractions_auto_kind():
    def kind(ax):
        if ax.containers:
            assert not _intervals(ax)
            return "stacked"
        return "points+intervals" if _intervals(ax) else "points"

    assert kind(dco.pl.fractions(_adata(100), show=False)) == "points+intervals"  # 400 estimates
    assert kind(dco.pl.fractions(_adata(101), show=False)) == "stacked"  # 404: too many points
    assert kind(dco.pl.fractions(_adata(101), intervals=True, show=False)) == "points+intervals"  # asked for
    assert kind(dco.pl.fractions(_adata(8), intervals=False, show=False)) == "stacked"
    assert kind(dco.pl.fractions(_adata(8), kind="stacked", show=False)) == "stacked"

    plain = _adata(8)
    del plain.obsm["decode_lower"], plain.obsm["decode_upper"]
    ax = dco.pl.fractions(plain, show=False)
    assert kind(ax) == "stacked" and len(ax.patches) == 8 * len(LABELS)  # as without uncertainty
    assert kind(dco.pl.fractions(plain.obsm["decode"], show=False)) == "stacked"  # a DataFrame has no intervals
    ax = dco.pl.fractions(plain, kind="points", show=False)
    assert kind(ax) == "points" and ax.get_legend().get_title().get_text() == ""


def test_fractions_points_groupby_sort_by_colors_ax():
    adata = _adata(12)
    bars = dco.pl.fractions(adata, kind="stacked", groupby="donor", sort_by="NK", show=False)
    order = [t.get_text() for t in bars.get_xticklabels()]

    _, ax = plt.subplots()
    colors = {"B": "red", "T": "green", "NK": "blue", "Mono": "black"}
    out = dco.pl.fractions(adata, groupby="donor", sort_by="NK", colors=colors, ax=ax, show=False)
    assert out is ax
    assert [t.get_text() for t in ax.get_xticklabels()] == order  # samples ordered as the bars
    assert [t.get_text() for t in ax.texts] == ["d1", "d2", "d3"]
    assert len(ax.lines) == 2  # group separators
    lines = _intervals(ax)
    for label, colour in colors.items():
        assert to_rgba(lines[label].get_color()[0]) == to_rgba(colour)
        _, low, high = _extents(lines[label])
        np.testing.assert_allclose(low, adata.obsm["decode_lower"].loc[order, label])
        np.testing.assert_allclose(high, adata.obsm["decode_upper"].loc[order, label])
    # the group gap shifts the slots of the second group
    x, _, _ = _extents(lines["B"])
    donors = adata.obs.loc[order, "donor"].astype(str).to_numpy()
    first_d2 = int(np.argmax(donors == "d2"))
    assert x[first_d2] - x[first_d2 - 1] == pytest.approx(1.8)


def test_fractions_points_mudata_unknown_and_reordered_bounds():
    _, est, lower, upper = _frames(6, labels=[*LABELS, "unknown"])
    rna = ad.AnnData(np.zeros((6, 2), dtype=np.float32), obs=pd.DataFrame(index=est.index.copy()))
    prot = ad.AnnData(np.zeros((4, 2), dtype=np.float32), obs=pd.DataFrame(index=est.index[:4].copy()))
    prot.var_names = ["p0", "p1"]
    mdata = md.MuData({"rna": rna, "prot": prot})
    for suffix, frame in (("", est), ("_lower", lower), ("_upper", upper)):
        part = frame.iloc[:4]
        if suffix == "_upper":  # same samples and labels in another order: aligned, not rejected
            part = part.iloc[::-1, ::-1]
        mdata.obsm[f"decode_prot{suffix}"] = part.reindex(mdata.obs_names)
    mdata.uns["decode"] = {"uncertainty": {"level": 0.8}}
    ax = dco.pl.fractions(mdata, "decode_prot", show=False)
    names = [t.get_text() for t in ax.get_xticklabels()]
    assert names == list(est.index[:4])  # samples without protein are left out
    lines = _intervals(ax)
    assert list(lines)[-1] == "unknown"  # unknown last
    for label in [*LABELS, "unknown"]:
        _, low, high = _extents(lines[label])
        np.testing.assert_allclose(low, lower.loc[names, label])
        np.testing.assert_allclose(high, upper.loc[names, label])
    assert ax.get_legend().get_title().get_text() == "lines: 80 % intervals"  # level from mdata.uns["decode"]


# --- truth -----------------------------------------------------------------------------------------------------------


def test_truth_error_bars_and_coverage(tmp_path):
    adata = _adata(20)
    truth, lower, upper = adata.obsm["fractions"], adata.obsm["decode_lower"], adata.obsm["decode_upper"]
    path = tmp_path / "truth.png"
    axs = dco.pl.truth(adata, show=False, save=path)
    assert path.exists()
    assert len(axs) == len(LABELS)
    inside_all = 0
    for ax, label in zip(axs, LABELS):
        assert len(ax.collections[0].get_offsets()) == 20  # the points come first, as without intervals
        (lines,) = _intervals(ax).values()
        x, low, high = _extents(lines)
        np.testing.assert_allclose(x, truth[label])  # at the true value...
        np.testing.assert_allclose(low, lower[label])  # ...from the lower to the upper bound
        np.testing.assert_allclose(high, upper[label])
        inside = sum(lower.loc[s, label] <= truth.loc[s, label] <= upper.loc[s, label] for s in truth.index)
        inside_all += inside
        assert ax.get_title().split("\n")[2] == f"coverage {int(100 * inside / 20 + 0.5)} % of 90 % intervals"
        assert ax.get_ylim()[1] >= upper.to_numpy().max()
    assert 0 < inside_all < 80  # the fixture has intervals that miss
    assert (
        f"coverage {int(100 * inside_all / 80 + 0.5)} % of 90 % intervals (20 samples" in axs[0].figure.get_suptitle()
    )


def test_truth_coverage_by_hand():
    index = ["s0", "s1", "s2", "s3"]
    frame = lambda a, b: pd.DataFrame({"a": a, "b": b}, index=index)
    adata = ad.AnnData(np.zeros((4, 1), dtype=np.float32), obs=pd.DataFrame(index=index))
    adata.obsm["decode"] = frame([0.5, 0.6, 0.3, 0.8], [0.5, 0.4, 0.7, 0.2])
    adata.obsm["decode_lower"] = frame([0.4, 0.5, 0.2, 0.7], [0.45, 0.35, 0.6, 0.1])
    adata.obsm["decode_upper"] = frame([0.6, 0.7, 0.4, 0.9], [0.6, 0.5, 0.8, 0.3])
    # a: in, on the upper bound (in), below, in -> 3 of 4; b: in, below, above, in -> 2 of 4
    adata.obsm["fractions"] = frame([0.45, 0.7, 0.1, 0.75], [0.55, 0.3, 0.9, 0.25])
    adata.uns["decode"] = {"uncertainty": {"level": 0.95}}
    axs = dco.pl.truth(adata, show=False)
    assert [ax.get_title().split("\n")[2] for ax in axs] == [
        "coverage 75 % of 95 % intervals",
        "coverage 50 % of 95 % intervals",
    ]
    assert "coverage 63 % of 95 % intervals (4 samples, 2 labels)" in axs[0].figure.get_suptitle()  # 5 of 8


def test_truth_without_intervals_unchanged_and_unknown_level():
    adata = _adata(10, level=None)
    axs = dco.pl.truth(adata, show=False)
    assert axs[0].get_title().endswith("of intervals")  # no level recorded

    for axs in (
        dco.pl.truth(adata, intervals=False, show=False),
        dco.pl.truth(estimate=adata.obsm["decode"], truth=adata.obsm["fractions"], show=False),
    ):
        assert all(len(ax.get_title().split("\n")) == 2 and not _intervals(ax) for ax in axs)
        assert "coverage" not in axs[0].figure.get_suptitle()

    del adata.obsm["decode_lower"], adata.obsm["decode_upper"]
    axs = dco.pl.truth(adata, show=False)
    assert all(len(ax.get_title().split("\n")) == 2 and not _intervals(ax) for ax in axs)


# --- errors ----------------------------------------------------------------------------------------------------------


def test_interval_errors():
    adata = _adata(6)
    plain = adata.copy()
    del plain.obsm["decode_lower"], plain.obsm["decode_upper"]
    for plot in (dco.pl.fractions, dco.pl.truth):
        with pytest.raises(KeyError, match=r"decode_lower.*missing.*dco\.tl\.deconvolve\(\.\.\., uncertainty=True\)"):
            plot(plain, intervals=True, show=False)
        with pytest.raises(ValueError, match="intervals='yes'"):
            plot(adata, intervals="yes", show=False)
    with pytest.raises(ValueError, match="DataFrame of fractions carries no intervals"):
        dco.pl.fractions(adata.obsm["decode"], intervals=True, show=False)
    with pytest.raises(ValueError, match="kind='stacked' draws no intervals"):
        dco.pl.fractions(adata, kind="stacked", intervals=True, show=False)
    with pytest.raises(ValueError, match="kind='bars'"):
        dco.pl.fractions(adata, kind="bars", show=False)
    with pytest.raises(ValueError, match="leave out estimate="):
        dco.pl.truth(adata, estimate=adata.obsm["decode"], intervals=True, show=False)

    half = adata.copy()
    del half.obsm["decode_upper"]
    with pytest.raises(KeyError, match=r"Found \.obsm\['decode_lower'\] but not \.obsm\['decode_upper'\]"):
        dco.pl.fractions(half, show=False)

    # AnnData keeps .obsm aligned with obs_names; other containers with .obsm / .obs need not
    shifted = SimpleNamespace(obs=adata.obs, obsm=dict(adata.obsm), uns=adata.uns)
    shifted.obsm["decode_lower"] = adata.obsm["decode_lower"].rename(index={"s0": "x0"})
    with pytest.raises(ValueError, match=r"\.obsm\['decode_lower'\] do not match.*samples differ.*\['x0'\]"):
        dco.pl.fractions(shifted, show=False)
    with pytest.raises(ValueError, match=r"\.obsm\['decode_lower'\] do not match"):
        dco.pl.truth(shifted, show=False)
    relabelled = adata.copy()
    relabelled.obsm["decode_upper"] = adata.obsm["decode_upper"].drop(columns="NK")
    with pytest.raises(ValueError, match=r"\.obsm\['decode_upper'\] do not match.*labels differ.*missing: \['NK'\]"):
        dco.pl.fractions(relabelled, show=False)
    swapped = adata.copy()
    swapped.obsm["decode_lower"], swapped.obsm["decode_upper"] = adata.obsm["decode_upper"], adata.obsm["decode_lower"]
    with pytest.raises(ValueError, match="lower bounds must not exceed the upper"):
        dco.pl.truth(swapped, show=False)
    # stacked bars never read the bounds, so broken ones cannot get in their way
    assert dco.pl.fractions(shifted, kind="stacked", show=False).containers
