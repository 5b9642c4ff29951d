import matplotlib

matplotlib.use("Agg")

from types import SimpleNamespace

import anndata as ad
import matplotlib.pyplot as plt
import mudata as md
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba

import decode_omics as dco

LABELS = ["B", "T", "NK", "Mono"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _fractions(n: int, seed: int = 0, labels=LABELS) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.dirichlet(np.ones(len(labels)), n), index=[f"s{i}" for i in range(n)], columns=labels)


def _adata(n: int = 12, noise: float = 0.02) -> ad.AnnData:
    truth = _fractions(n)
    rng = np.random.default_rng(1)
    est = np.clip(truth.to_numpy() + rng.normal(0, noise, truth.shape), 0, None)
    est = pd.DataFrame(est / est.sum(axis=1, keepdims=True), index=truth.index, columns=truth.columns)
    adata = ad.AnnData(np.zeros((n, 3), dtype=np.float32), obs=pd.DataFrame(index=truth.index))
    adata.obs["donor"] = pd.Categorical(["d2", "d1", "d3"] * (n // 3) + ["d1"] * (n % 3), categories=["d1", "d2", "d3"])
    adata.obsm["fractions"] = truth
    adata.obsm["decode"] = est
    return adata


def _mdata(frames: dict[str, pd.DataFrame]) -> md.MuData:
    mods = {}
    for i, (mod, frame) in enumerate(frames.items()):
        a = ad.AnnData(np.zeros((frame.shape[0], 2), dtype=np.float32), obs=pd.DataFrame(index=frame.index.copy()))
        a.var_names = [f"{mod}_{j}_{i}" for j in range(2)]
        a.obsm["decode"] = frame
        mods[mod] = a
    mdata = md.MuData(mods)
    for mod, frame in frames.items():
        mdata.obsm[f"decode_{mod}"] = frame.reindex(mdata.obs_names)
    return mdata


def _history(epochs: int = 15) -> dict[str, pd.DataFrame]:
    t = np.arange(epochs)
    curves = {
        "train_loss": 3 * np.exp(-t / 5) + 1,
        "validation_loss": 3 * np.exp(-t / 5) + 1.2,
        "fraction_loss_train": 0.4 * np.exp(-t / 4) + 0.01,
        "fraction_loss_validation": 0.4 * np.exp(-t / 4) + 0.02,
        "contrastive_loss_train": np.exp(-t / 8) + 0.5,
        "adversarial_loss_train": 0.69 + 0.01 * np.sin(t),
        "discriminator_accuracy_train": 0.5 + 0.4 * np.exp(-t / 3),
    }
    return {k: pd.DataFrame({k: v}, index=pd.Index(t, name="epoch")) for k, v in curves.items()}


# --- fractions -------------------------------------------------------------------------------------------------------


def test_fractions_stacked_bars(tmp_path):
    adata = _adata(12)
    path = tmp_path / "fractions.png"
    ax = dco.pl.fractions(adata, show=False, save=path)
    assert path.exists() and path.stat().st_size > 0
    assert len(ax.containers) == len(LABELS)  # one BarContainer per label
    assert len(ax.patches) == 12 * len(LABELS)
    # stacked: the second label's bars start where the first's end
    first, second = ax.containers[0], ax.containers[1]
    np.testing.assert_allclose([p.get_height() for p in first], adata.obsm["decode"]["B"])
    np.testing.assert_allclose([p.get_y() for p in second], adata.obsm["decode"]["B"])
    tops = np.sum([[p.get_height() for p in c] for c in ax.containers], axis=0)
    np.testing.assert_allclose(tops, 1.0)
    # legend lists the labels top of the stack first
    assert [t.get_text() for t in ax.get_legend().get_texts()] == LABELS[::-1]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(adata.obs_names)


def test_fractions_groupby_and_sort_by():
    adata = _adata(12)
    ax = dco.pl.fractions(adata, groupby="donor", sort_by="NK", show=False)
    names = [t.get_text() for t in ax.get_xticklabels()]
    donors = adata.obs.loc[names, "donor"].astype(str).tolist()
    assert donors == sorted(donors)  # contiguous groups in category order d1, d2, d3
    for donor in ["d1", "d2", "d3"]:
        nk = adata.obsm["decode"].loc[[n for n, d in zip(names, donors) if d == donor], "NK"].to_numpy()
        assert (np.diff(nk) <= 0).all()  # most NK first within each group
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["d1", "d2", "d3"]
    assert len(ax.lines) == 2  # separators between 3 groups


def test_fractions_dataframe_mudata_unknown_and_many_samples():
    df = _fractions(60, labels=["a", "b", "c"])
    ax = dco.pl.fractions(df, show=False, colors={"a": "red", "b": "green", "c": "blue"})
    assert len(ax.patches) == 180
    labels = ax.get_xticklabels()
    assert not labels or min(t.get_fontsize() for t in labels) >= 5  # readable, or hidden
    assert ax.containers[0].patches[0].get_facecolor() == to_rgba("red")

    absolute = df * 0.8
    absolute.insert(0, "unknown", 0.2)
    ax = dco.pl.fractions(absolute, show=False)
    assert ax.get_legend().get_texts()[0].get_text() == "unknown"  # stacked last, on top

    mdata = _mdata({"rna": _fractions(10), "protein": _fractions(6, seed=2)})
    ax = dco.pl.fractions(mdata, "decode_protein", show=False)
    assert len(ax.patches) == 6 * len(LABELS)  # NaN rows of samples without protein are left out

    ax = dco.pl.fractions(_fractions(300), show=False)
    assert ax.get_xticklabels() == [] and ax.get_xlabel() == "300 samples"


def test_fractions_errors():
    adata = _adata(6)
    with pytest.raises(KeyError, match=r"\.obsm\['nope'\].*available obsm keys: \['fractions', 'decode'\]"):
        dco.pl.fractions(adata, "nope", show=False)
    mdata = _mdata({"rna": _fractions(4), "protein": _fractions(4)})
    with pytest.raises(KeyError, match="key='decode_rna'"):
        dco.pl.fractions(mdata, show=False)
    with pytest.raises(KeyError, match="groupby='batch'"):
        dco.pl.fractions(adata, groupby="batch", show=False)
    with pytest.raises(KeyError, match="sort_by='xyz'"):
        dco.pl.fractions(adata, sort_by="xyz", show=False)


# --- truth -----------------------------------------------------------------------------------------------------------


def test_truth_panels_titles_and_axes(tmp_path):
    adata = _adata(30)
    axs = dco.pl.truth(adata, show=False, save=tmp_path / "truth.png")
    assert (tmp_path / "truth.png").exists()
    assert len(axs) == len(LABELS)
    assert len(axs[0].figure.axes) == len(LABELS)  # unused grid cells removed
    per_label = dco.metrics.score(adata.obsm["decode"], adata.obsm["fractions"])
    for ax, label in zip(axs, LABELS):
        title = ax.get_title()
        assert title.startswith(label)
        assert f"CCC {per_label.loc[label, 'ccc']:.2f}" in title
        assert f"RMSE {per_label.loc[label, 'rmse']:.3f}" in title
        assert ax.get_xlim() == axs[0].get_xlim() == ax.get_ylim()  # shared, square axes
        assert len(ax.collections[0].get_offsets()) == 30
        identity = ax.lines[0].get_xydata()
        np.testing.assert_allclose(identity[:, 0], identity[:, 1])
    suptitle = axs[0].figure.get_suptitle()
    assert f"pooled CCC {per_label.loc['pooled', 'ccc']:.3f}" in suptitle
    assert f"RMSE {per_label.loc['pooled', 'rmse']:.3f}" in suptitle


def test_truth_from_dataframes_perfect_and_unknown():
    truth = _fractions(10)
    axs = dco.pl.truth(estimate=truth, truth=truth.copy(), ncols=2, show=False)
    assert axs.shape == (4,)
    assert all("CCC 1.00" in ax.get_title() and "RMSE 0.000" in ax.get_title() for ax in axs)
    assert "pooled CCC 1.000" in axs[0].figure.get_suptitle()

    absolute = truth * 0.9
    absolute["unknown"] = 0.1
    axs = dco.pl.truth(estimate=absolute, truth=truth, show=False)
    assert [ax.get_title().split("\n")[0] for ax in axs] == [*LABELS, "unknown"]  # unknown vs a truth of 0


def test_truth_errors():
    truth = _fractions(5)
    with pytest.raises(ValueError, match=r"only in the estimate: \['x'\]"):
        dco.pl.truth(estimate=truth.rename(columns={"B": "x"}), truth=truth, show=False)
    with pytest.raises(KeyError, match=r"\.obsm\['truth'\]"):
        dco.pl.truth(_adata(6), truth_key="truth", show=False)
    with pytest.raises(TypeError, match="estimate= and truth="):
        dco.pl.truth(estimate=truth, show=False)


# --- consistency -----------------------------------------------------------------------------------------------------


def test_consistency_pair_annotated_with_ccc():
    f = _fractions(20)
    shuffled = f.iloc[np.random.default_rng(3).permutation(20)].set_axis(f.index)
    mdata = _mdata({"rna": f, "protein": f.iloc[:15].copy(), "metabolite": shuffled})
    ax = dco.pl.consistency(mdata, mods=["rna", "protein"], show=False)
    assert ax.get_title() == "rna vs protein"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("rna fraction", "protein fraction")
    assert len(ax.collections) == len(LABELS)  # one scatter per label
    assert all(len(c.get_offsets()) == 15 for c in ax.collections)  # shared samples only
    assert "CCC 1.000" in ax.texts[0].get_text() and "15 samples" in ax.texts[0].get_text()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [f"{lab} (1.00)" for lab in LABELS]

    ax = dco.pl.consistency(mdata, mods=["rna", "metabolite"], show=False)
    expected = dco.metrics.ccc(f, shuffled)
    assert f"CCC {expected:.3f}" in ax.texts[0].get_text()
    assert expected < 0.5


def test_consistency_all_pairs_and_errors():
    f = _fractions(8)
    mdata = _mdata({"rna": f, "protein": f.copy(), "metabolite": f.copy()})
    axs = dco.pl.consistency(mdata, show=False)
    assert [ax.get_title() for ax in axs] == ["rna vs protein", "rna vs metabolite", "protein vs metabolite"]
    with pytest.raises(ValueError, match="ax draws one pair"):
        dco.pl.consistency(mdata, ax=axs[0], show=False)

    del mdata.obsm["decode_protein"], mdata["protein"].obsm["decode"]
    with pytest.raises(KeyError, match=r"No fractions for modality 'protein'.*decode_protein"):
        dco.pl.consistency(mdata, mods=("rna", "protein"), show=False)
    with pytest.raises(KeyError, match="not a modality"):
        dco.pl.consistency(mdata, mods=("rna", "atac"), show=False)
    del mdata.obsm["decode_metabolite"], mdata["metabolite"].obsm["decode"]
    with pytest.raises(ValueError, match="at least 2 modalities"):
        dco.pl.consistency(mdata, show=False)


# --- training --------------------------------------------------------------------------------------------------------


def _line(ax, name):
    return next(line for line in ax.get_lines() if line.get_label() == name)


def test_training_from_model_dataframes(tmp_path):
    model = SimpleNamespace(history=_history(15))
    axs = dco.pl.training(model, show=False, save=tmp_path / "training.png")
    assert (tmp_path / "training.png").exists()
    assert len(axs) == 2
    losses, accuracy = axs
    assert {line.get_label() for line in losses.get_lines()} == {
        "train_loss",
        "validation_loss",
        "fraction_loss_train",
        "fraction_loss_validation",
        "contrastive_loss_train",
        "adversarial_loss_train",
    }
    train, val = _line(losses, "fraction_loss_train"), _line(losses, "fraction_loss_validation")
    assert train.get_color() == val.get_color() and val.get_linestyle() == "--"
    assert len(train.get_xdata()) == 15
    chance = _line(accuracy, "chance (0.5)")
    assert chance.get_linestyle() == "--" and set(chance.get_ydata()) == {0.5}
    assert accuracy.get_ylim()[0] == 0
    np.testing.assert_allclose(
        _line(accuracy, "discriminator_accuracy_train").get_ydata(),
        model.history["discriminator_accuracy_train"].iloc[:, 0],
    )


def test_training_from_lists_anndata_and_keys():
    as_lists = {k: v.iloc[:, 0].tolist() for k, v in _history(6).items()}
    axs = dco.pl.training(as_lists, show=False)
    assert len(axs) == 2

    adata = _adata(3)
    adata.uns["decode"] = {"history": as_lists}
    axs = dco.pl.training(adata, keys=["fraction_loss_train", "fraction_loss_validation"], show=False)
    assert len(axs) == 1  # no accuracy requested: one panel
    assert [line.get_label() for line in axs[0].get_lines()] == ["fraction_loss_train", "fraction_loss_validation"]


def test_training_errors():
    with pytest.raises(KeyError, match=r"available: \["):
        dco.pl.training(_history(3), keys=["elbo_train"], show=False)
    with pytest.raises(KeyError, match=r"\.uns\['decode'\]\['history'\]"):
        dco.pl.training(_adata(3), show=False)
    with pytest.raises(TypeError, match="model"):
        dco.pl.training(42, show=False)


# --- show / save -----------------------------------------------------------------------------------------------------


def test_show_and_save_semantics(tmp_path, monkeypatch):
    import scanpy as sc

    adata = _adata(6)
    assert not plt.isinteractive()
    assert dco.pl.fractions(adata) is not None  # show=None, non-interactive: not shown, Axes returned
    shown = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: shown.append(True))
    assert dco.pl.fractions(adata, show=True) is None and shown == [True]
    monkeypatch.setattr(plt, "isinteractive", lambda: True)  # e.g. Jupyter
    assert dco.pl.fractions(adata) is None and shown == [True, True]
    monkeypatch.undo()

    dco.pl.fractions(adata, show=False, save=tmp_path / "sub" / "bars")  # no extension: rcParams savefig.format
    assert (tmp_path / "sub" / "bars.png").exists()
    dco.pl.fractions(adata, show=False, save=tmp_path / "bars.pdf")
    assert (tmp_path / "bars.pdf").read_bytes().startswith(b"%PDF")

    figdir = sc.settings.figdir
    sc.settings.figdir = tmp_path / "figures"
    try:
        dco.pl.truth(adata, show=False, save=True)
    finally:
        sc.settings.figdir = figdir
    assert (tmp_path / "figures" / f"truth.{sc.settings.file_format_figs}").exists()
