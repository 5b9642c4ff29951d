"""Silent wrong answers and misleading records a new user hit (each reproduced first, then fixed at its cause)."""

import inspect
import warnings

import numpy as np
import pandas as pd
import pytest
import scvi
from anndata import AnnData
from conftest import reference_and_bulk
from lightning.pytorch.callbacks import Callback

import decode_omics as dco
from decode_omics.cli import main
from decode_omics.model import DECODE

TINY = {"max_epochs": 2, "n_pseudotissues": 256, "n_validation": 64, "enable_progress_bar": False}
SMALL = {"n_hidden": 32, "n_latent": 8, "n_features": None}


def _model(ref, bulk, seed=0, **model_kwargs):
    scvi.settings.seed = seed
    DECODE.setup_anndata(ref, labels_key="cell_type")
    DECODE.setup_anndata(bulk)
    return DECODE(ref, bulk, **(SMALL | model_kwargs))


# ------------------------------------------------------------------------------------------------- scale of the bulk
def test_log2_bulk_is_detected_on_all_its_features():
    """The model's features alone (here all below 15 in log2) read as log1p; the whole matrix says log2."""
    ref, bulk = reference_and_bulk(0, n_samples=20)
    linear = np.asarray(bulk.X, dtype=np.float64)
    assert np.log2(linear + 1).max() < 15  # the model's features alone look like log1p
    rng = np.random.default_rng(0)
    extra = AnnData(rng.uniform(2.0**15, 2.0**17, (bulk.n_obs, 5)).astype(np.float32))  # e.g. mitochondrial genes
    extra.var_names = [f"other{j}" for j in range(5)]
    wide = AnnData(np.hstack([linear, extra.X]).astype(np.float32), obs=bulk.obs[[]])
    wide.var_names = [*bulk.var_names, *extra.var_names]
    logged = wide.copy()
    logged.X = np.log2(np.asarray(wide.X, dtype=np.float64) + 1).astype(np.float32)
    assert dco.pp.check_scale(logged).scale == "log2"

    model = _model(ref, wide)
    model.train(**TINY)
    assert model.bulk_scale_["scale"] == "linear"
    with pytest.warns(UserWarning, match="guessed as 'log2' from its value range alone"):
        from_log2 = model.get_fractions(logged)
    from_linear = model.get_fractions(wide)
    assert np.abs(from_log2.to_numpy() - from_linear.to_numpy()).max() < 0.01


def test_tl_records_the_bulk_scale():
    ref, bulk = reference_and_bulk(1, n_samples=6)
    dco.tl.deconvolve(bulk, ref, "cell_type", model_kwargs=SMALL, train_kwargs=TINY)
    params = bulk.uns["decode"]["params"]
    assert params["bulk_scale"] == "counts" and params["reference_scale"] == "counts"


def test_centred_linear_bulk_is_refused_and_background_subtracted_is_not(no_training):
    ref, bulk = reference_and_bulk(2, n_samples=20)
    X = np.asarray(bulk.X, dtype=np.float64) * 10
    centred = bulk.copy()
    centred.X = (X - X.mean(axis=0)).astype(np.float32)  # about half negative, maximum in the thousands
    report = dco.pp.check_scale(centred)
    assert report.scale == "centered" and 0.3 < report.frac_negative < 0.7
    with pytest.raises(dco.pp.ScaleError, match="centred"):
        dco.tl.deconvolve(centred, ref, "cell_type")
    background = bulk.copy()
    B = X - np.quantile(X, 0.05)  # background subtraction: a small share of small negatives
    background.X = B.astype(np.float32)
    report = dco.pp.check_scale(background)
    assert report.scale == "linear" and 0 < report.frac_negative <= 0.1


# ---------------------------------------------------------------------------------------- every train() trains
class _RecordMode(Callback):
    def __init__(self):
        self.modes = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.modes.append(pl_module.module.training)


def test_second_training_and_training_after_load_run_in_train_mode(tmp_path):
    ref, bulk = reference_and_bulk(3, n_samples=8)
    model = _model(ref, bulk)
    first, second = _RecordMode(), _RecordMode()
    model.train(**TINY, callbacks=[first])
    model.train(**TINY, callbacks=[second])
    assert first.modes and all(first.modes)
    assert second.modes and all(second.modes)
    assert not model.module.training  # predictions run in eval mode
    model.save(tmp_path / "model")
    loaded = DECODE.load(tmp_path / "model", reference=ref)
    after_load = _RecordMode()
    loaded.train(**TINY, callbacks=[after_load])
    assert after_load.modes and all(after_load.modes)


# ----------------------------------------------------------------------------------------- weak feature overlap
def test_versioned_ensembl_ids_name_the_fix():
    ids = [f"ENSG{i:011d}" for i in range(50)]
    with pytest.raises(ValueError, match="version suffixes"):
        dco.pp.shared_features(ids, [f"{g}.{i % 3 + 1}" for i, g in enumerate(ids)])


def test_half_the_names_lower_cased_warns():
    names = [f"GENE{i}" for i in range(100)]
    bulk = [n.lower() if i % 2 else n for i, n in enumerate(names)]
    with pytest.warns(UserWarning, match="100 features match when letter case is ignored"):
        shared = dco.pp.shared_features(names, bulk)
    assert len(shared) == 50


def test_small_share_of_both_sides_warns_and_a_full_overlap_does_not():
    ref = [f"g{i}" for i in range(2000)]
    bulk = [f"g{i}" for i in range(25)] + [f"x{i}" for i in range(2000)]
    with pytest.warns(UserWarning, match="share only 25 features"):
        dco.pp.shared_features(ref, bulk)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dco.pp.shared_features(ref, ref[:1500])


def test_the_model_warns_on_weak_overlap(no_training):
    ref, bulk = reference_and_bulk(4, n_samples=6)
    names = list(bulk.var_names)
    bulk.var_names = [n.upper() if i % 2 else n for i, n in enumerate(names)]
    with pytest.warns(UserWarning, match="letter case"):
        _model(ref, bulk)


# ------------------------------------------------------------------------------------------------------ records
def test_platform_correction_is_recorded_as_applied():
    ref, bulk = reference_and_bulk(5, n_samples=3)  # fewer than 5 samples: no gains can be fitted
    dco.tl.deconvolve(bulk, ref, "cell_type", model_kwargs=SMALL, train_kwargs=TINY)
    params = bulk.uns["decode"]["params"]
    assert params["platform_correction"] is False and params["platform_correction_requested"] is True


def test_empty_label_is_refused(no_training):
    ref, bulk = reference_and_bulk(6, n_samples=6)
    labels = ref.obs["cell_type"].astype(str).to_numpy()
    labels[:5] = ""
    ref.obs["cell_type"] = pd.Categorical(labels)
    with pytest.raises(ValueError, match="empty label"):
        dco.tl.deconvolve(bulk, ref, "cell_type")


def test_integer_labels_stay_integers_in_the_model_and_are_named_in_anndata():
    ref, bulk = reference_and_bulk(7, n_samples=6)
    ref.obs["cell_type"] = ref.obs["cell_type"].cat.codes.astype(int) * 10  # 0, 10, 20, 30
    with pytest.warns(UserWarning, match="not strings"):
        model = dco.tl.deconvolve(bulk, ref, "cell_type", model_kwargs=SMALL, train_kwargs=TINY, return_model=True)
    assert list(model.get_fractions().columns) == model.labels == [0, 10, 20, 30]
    assert list(bulk.obsm["decode"].columns) == ["0", "10", "20", "30"]  # AnnData needs string column names


def test_deconvolve_gives_the_global_seed_back():
    ref, bulk = reference_and_bulk(8, n_samples=6)
    scvi.settings.seed = 123
    dco.tl.deconvolve(bulk, ref, "cell_type", model_kwargs=SMALL, train_kwargs=TINY, random_state=5)
    assert scvi.settings.seed == 123
    assert bulk.uns["decode"]["params"]["random_state"] == 5


def test_saving_to_a_file_path_is_a_clear_error(tmp_path):
    ref, bulk = reference_and_bulk(9, n_samples=6)
    model = _model(ref, bulk)
    target = tmp_path / "model.pt"
    target.write_text("a file")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        model.save(target)


def test_cli_predict_on_h5mu_names_the_option_and_accepts_as_is(tmp_path, capsys):
    import mudata as md

    ref, bulk = reference_and_bulk(10, n_samples=6, n_features=60, cells_per_label=40)
    ref_path, bulk_path, cohort = tmp_path / "ref.h5ad", tmp_path / "bulk.h5ad", tmp_path / "cohort.h5mu"
    ref.write_h5ad(ref_path)
    bulk.write_h5ad(bulk_path)
    md.MuData({"rna": bulk}).write_h5mu(cohort)
    out, model_dir = tmp_path / "out.h5ad", tmp_path / "model"
    argv = ["deconvolve", "--reference", str(ref_path), "--labels-key", "cell_type", "--bulk", str(bulk_path)]
    argv += ["--out", str(out), "--max-epochs", "1", "--n-pseudotissues", "128"]
    assert main([*argv, "--scale", "as_is", "--reference-scale", "as_is", "--save-model", str(model_dir)]) == 0
    captured = capsys.readouterr()
    assert "Deconvolved 6 samples" in captured.out
    assert "Epoch" not in captured.out  # progress bars go to stderr
    assert main(["predict", "--model", str(model_dir), "--bulk", str(cohort), "--out", str(tmp_path / "f.csv")]) == 3
    err = capsys.readouterr().err
    assert "pass --modality" in err and "modality=" not in err
    target = tmp_path / "a_file"
    target.write_text("x")
    assert main([*argv, "--overwrite", "--save-model", str(target)]) == 3
    assert "is a file" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------------- docs
def test_deconvolve_docstring_names_the_keys_it_sets():
    ref, bulk = reference_and_bulk(11, n_samples=6)
    dco.tl.deconvolve(bulk, ref, "cell_type", model_kwargs=SMALL, train_kwargs=TINY)
    doc = inspect.getdoc(dco.tl.deconvolve)
    for key in bulk.uns["decode"]:
        assert f"``{key}``" in doc
    assert "``features`` (count)" not in doc


def test_pbmc68k_docstring_counts_the_kept_labels(pbmc68k):
    ref, _ = pbmc68k
    n = ref.obs["bulk_labels"].nunique()
    assert f"of which {n} have at least" in inspect.getdoc(dco.datasets.pbmc68k_reference_and_bulk)


# ------------------------------------------------------------------------------------------------- output noise
def test_training_prints_results_only(capfd):
    ref, bulk = reference_and_bulk(12, n_samples=6)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dco.tl.deconvolve(bulk, ref, "cell_type", model_kwargs=SMALL, train_kwargs=TINY | {"enable_progress_bar": True})
    out, err = capfd.readouterr()
    assert out == ""  # the progress bar is on stderr
    assert "Training" in err or "Epoch" in err
    for chatter in ("Seed set to", "GPU available", "TPU available", "litlogger", "max_epochs=", "Signaling Trainer"):
        assert chatter not in err
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "LeafSpec" in m or "eval mode" in m]
