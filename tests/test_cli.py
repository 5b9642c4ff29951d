"""The ``decode-omics`` command line, run in-process through ``decode_omics.cli.main`` (and once as the real script)."""

import hashlib
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
from conftest import reference_and_bulk

import decode_omics as dco
from decode_omics.cli import main
from decode_omics.model import DECODE

LABELS = ["type0", "type1", "type2", "type3"]
N_SAMPLES, N_PROT = 8, 5
# The CLI has no option for the pseudo-tissues per epoch or the network size: runs other than the first one go
# through ``fast_training``, which passes these on to dco.tl.deconvolve (every CLI code path still runs).
FAST_TRAIN = {"n_pseudotissues": 256, "n_validation": 128, "enable_progress_bar": False}
SMALL = {"n_hidden": 64, "n_latent": 16}


def _split(seed, n_features, prefix):
    return reference_and_bulk(
        seed, cells_per_label=60, n_features=n_features, prefix=prefix, n_samples=N_SAMPLES, cells_per_sample=100
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Small input files: an RNA reference and bulk (.h5ad), a protein reference, and a cohort .h5mu whose 'prot'
    modality has only the first 5 of the 8 samples."""
    d = tmp_path_factory.mktemp("cli_inputs")
    ref, bulk = _split(0, 100, "gene")
    prot_ref, prot_bulk = _split(1, 40, "prot")
    paths = {
        "ref": d / "ref.h5ad",
        "bulk": d / "bulk.h5ad",
        "prot_ref": d / "prot_ref.h5ad",
        "cohort": d / "cohort.h5mu",
        "garbage": d / "garbage.h5ad",
        "csv_bulk": d / "bulk.csv",
    }
    ref.write_h5ad(paths["ref"])
    bulk.write_h5ad(paths["bulk"])
    prot_ref.write_h5ad(paths["prot_ref"])
    md.MuData({"rna": bulk, "prot": prot_bulk[:N_PROT].copy()}).write_h5mu(paths["cohort"])
    paths["garbage"].write_text("this is not an HDF5 file\n")
    pd.DataFrame(np.asarray(bulk.X), index=bulk.obs_names, columns=bulk.var_names).to_csv(paths["csv_bulk"])
    return paths


def _sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _deconvolve_args(reference, bulk, out, *extra, labels_key="cell_type"):
    refs = [reference] if isinstance(reference, str | Path) else reference
    args = ["deconvolve"]
    for r in refs:
        args += ["--reference", str(r)]
    return [*args, "--labels-key", labels_key, "--bulk", str(bulk), "--out", str(out), "--max-epochs", "2", *extra]


@pytest.fixture
def fast_training(monkeypatch):
    real = dco.tl.deconvolve

    def fast(*args, train_kwargs=None, model_kwargs=None, **kwargs):
        train_kwargs = dict(train_kwargs or {}) | FAST_TRAIN
        return real(*args, train_kwargs=train_kwargs, model_kwargs=SMALL | dict(model_kwargs or {}), **kwargs)

    monkeypatch.setattr(dco.tl, "deconvolve", fast)


# ------------------------------------------------------------------------------------------------------------ runs
def test_deconvolve_h5ad_with_csv_and_model(files, tmp_path, capsys):
    """The one run with the CLI's own training settings (2 epochs of the default 2048 pseudo-tissues)."""
    out, csv, model_dir = tmp_path / "out.h5ad", tmp_path / "fractions.csv", tmp_path / "model"
    bulk_sha = _sha(files["bulk"])
    argv = _deconvolve_args(files["ref"], files["bulk"], out, "--csv", str(csv), "--save-model", str(model_dir))
    assert main([*argv, "--accelerator", "cpu"]) == 0
    stdout = capsys.readouterr().out
    assert f"Deconvolved {N_SAMPLES} samples" in stdout and str(out) in stdout and str(csv) in stdout
    assert _sha(files["bulk"]) == bulk_sha  # the input file is not touched

    bulk = ad.read_h5ad(files["bulk"])
    result = ad.read_h5ad(out)
    fractions = result.obsm["decode"]
    assert isinstance(fractions, pd.DataFrame)
    assert fractions.shape == (N_SAMPLES, len(LABELS))
    assert list(fractions.columns) == LABELS and list(fractions.index) == list(bulk.obs_names)
    np.testing.assert_allclose(fractions.sum(axis=1), 1.0, atol=1e-5)
    assert "fractions" in result.obsm  # what the bulk held is kept
    uns = result.uns["decode"]
    assert uns["params"]["max_epochs"] == 2 and uns["params"]["labels_key"] == "cell_type"
    assert list(uns["labels"]) == LABELS
    assert uns["diagnostics"].shape == (N_SAMPLES, 3)

    table = pd.read_csv(csv, index_col=0)
    pd.testing.assert_frame_equal(table, fractions, check_names=False, atol=1e-6)

    model = DECODE.load(model_dir)
    assert model.labels == LABELS
    pd.testing.assert_frame_equal(model.get_fractions(bulk), fractions, check_names=False, atol=1e-5)


def test_deconvolve_uncertainty_writes_intervals(files, tmp_path, capsys, fast_training):
    out, csv = tmp_path / "out.h5ad", tmp_path / "fractions.csv"
    argv = _deconvolve_args(files["ref"], files["bulk"], out, "--csv", str(csv), "--uncertainty", "--level", "0.8")
    assert main(argv) == 0
    result = ad.read_h5ad(out)
    lower, upper = result.obsm["decode_lower"], result.obsm["decode_upper"]
    assert lower.shape == upper.shape == (N_SAMPLES, len(LABELS))
    assert (lower.to_numpy() <= result.obsm["decode"].to_numpy() + 1e-9).all()
    assert result.uns["decode"]["uncertainty"]["level"] == 0.8
    table = pd.read_csv(csv, index_col=0)
    assert list(table.columns) == LABELS + [f"{x}_lower" for x in LABELS] + [f"{x}_upper" for x in LABELS]
    np.testing.assert_allclose(table[[f"{x}_upper" for x in LABELS]].to_numpy(), upper.to_numpy(), atol=1e-6)


def test_backed_reference_and_given_scales(files, tmp_path, capsys, fast_training):
    out = tmp_path / "out.h5ad"
    ref_sha = _sha(files["ref"])
    extra = ["--backed", "--reference-scale", "counts", "--scale", "counts"]
    assert main(_deconvolve_args(files["ref"], files["bulk"], out, *extra)) == 0
    assert _sha(files["ref"]) == ref_sha
    result = ad.read_h5ad(out)
    assert result.obsm["decode"].shape == (N_SAMPLES, len(LABELS))
    assert result.uns["decode"]["params"]["reference_scale"] == "counts"
    with pytest.raises(SystemExit) as exc:
        main(_deconvolve_args(files["ref"], files["bulk"], out, "--scale", "centred", "--overwrite"))
    assert exc.value.code == 2 and "invalid choice: 'centred'" in capsys.readouterr().err


def test_deconvolve_h5mu_two_references(files, tmp_path, capsys, fast_training):
    out, csv = tmp_path / "cohort_out.h5mu", tmp_path / "fractions.csv"
    out.write_text("an older result")  # replaced thanks to --overwrite
    argv = _deconvolve_args(
        [f"rna={files['ref']}", f"prot={files['prot_ref']}"],
        files["cohort"],
        out,
        "--mode",
        "absolute",
        "--csv",
        str(csv),
        "--overwrite",
    )
    assert main(argv) == 0
    # each sample once, though 5 of the 8 are measured in both layers
    assert f"Deconvolved {N_SAMPLES} samples (2 modalities: rna, prot)" in capsys.readouterr().out

    mdata = md.read_h5mu(out)
    columns = [*LABELS, "unknown"]
    assert mdata["rna"].obsm["decode"].shape == (N_SAMPLES, 5)
    assert mdata["prot"].obsm["decode"].shape == (N_PROT, 5)
    assert list(mdata["prot"].obsm["decode"].columns) == columns
    assert mdata["prot"].uns["decode"]["params"]["mode"] == "absolute"
    rna, prot = mdata.obsm["decode_rna"], mdata.obsm["decode_prot"]
    assert rna.shape == prot.shape == (N_SAMPLES, 5)
    assert not rna.isna().any().any()
    missing = ~mdata.obs_names.isin(mdata["prot"].obs_names)
    assert missing.sum() == N_SAMPLES - N_PROT
    assert prot[missing].isna().all(axis=1).all() and prot[~missing].notna().all(axis=1).all()

    table = pd.read_csv(csv, index_col=0)
    assert list(table.columns) == [*columns, "modality"]
    assert table["modality"].value_counts().to_dict() == {"rna": N_SAMPLES, "prot": N_PROT}


# ------------------------------------------------------------------------------------------------------ bad inputs
def _case(f, tmp):
    """argv builders for the bad-input cases: name -> (argv, expected message regex)."""
    out_h5ad, out_h5mu = tmp / "out.h5ad", tmp / "out.h5mu"
    return {
        "missing bulk": (
            _deconvolve_args(f["ref"], tmp / "nope.h5ad", out_h5ad),
            "File not found: .*nope\\.h5ad",
        ),
        "missing reference": (
            _deconvolve_args(tmp / "nope_ref.h5ad", f["bulk"], out_h5ad),
            "File not found: .*nope_ref\\.h5ad",
        ),
        "bulk not an h5ad": (
            _deconvolve_args(f["ref"], f["garbage"], out_h5ad),
            "Could not read .*garbage\\.h5ad",
        ),
        "reference not an h5ad": (
            _deconvolve_args(f["garbage"], f["bulk"], out_h5ad),
            "Could not read .*garbage\\.h5ad",
        ),
        "bulk neither h5ad nor h5mu": (
            _deconvolve_args(f["ref"], f["csv_bulk"], out_h5ad),
            "bulk\\.csv: expected a \\.h5ad or \\.h5mu file",
        ),
        "wrong labels key": (
            _deconvolve_args(f["ref"], f["bulk"], out_h5ad, labels_key="celltype"),
            "labels_key 'celltype' is not a column of reference(\\['rna'\\])?\\.obs",
        ),
        "wrong labels key, h5mu": (
            _deconvolve_args([f"rna={f['ref']}"], f["cohort"], out_h5mu, labels_key="celltype"),
            "labels_key 'celltype' is not a column of reference(\\['rna'\\])?\\.obs",
        ),
        "missing layer": (
            _deconvolve_args(f["ref"], f["bulk"], out_h5ad, "--layer", "counts"),
            "Layer 'counts' is not in adata\\.layers",
        ),
        "existing output": (
            _deconvolve_args(f["ref"], f["bulk"], f["bulk"]),
            "bulk\\.h5ad exists; pass --overwrite to replace it",
        ),
        "h5ad bulk, h5mu out": (
            _deconvolve_args(f["ref"], f["bulk"], out_h5mu),
            "--out must have the same kind of file as --bulk \\(\\.h5ad\\)",
        ),
        "h5mu bulk, h5ad out": (
            _deconvolve_args([f"rna={f['ref']}"], f["cohort"], out_h5ad),
            "--out must have the same kind of file as --bulk \\(\\.h5mu\\)",
        ),
        "h5mu without MOD=": (
            _deconvolve_args(f["ref"], f["cohort"], out_h5mu),
            "for \\.h5mu bulk write MOD=path",
        ),
        "h5ad with two references": (
            _deconvolve_args([f["ref"], f["prot_ref"]], f["bulk"], out_h5ad),
            "An \\.h5ad bulk takes exactly one --reference path",
        ),
        "h5mu, reference for no modality": (
            _deconvolve_args([f"metab={f['ref']}"], f["cohort"], out_h5mu),
            "'metab' is not a modality of the bulk \\(\\['rna', 'prot'\\]\\)",
        ),
    }


@pytest.mark.parametrize("case", list(_case(defaultdict(Path), Path())))
def test_bad_inputs_exit_3_with_message(case, files, tmp_path, capsys, no_training):
    argv, match = _case(files, tmp_path)[case]
    bulk_sha = _sha(files["bulk"])
    assert main(argv) == 3
    captured = capsys.readouterr()
    assert captured.err.startswith("decode-omics: error: ")
    assert re.search(match, captured.err), captured.err
    assert "Traceback" not in captured.err
    assert not (tmp_path / "out.h5ad").exists() and not (tmp_path / "out.h5mu").exists()
    assert _sha(files["bulk"]) == bulk_sha


# ------------------------------------------------------------------------------------------------------------ help
def test_no_command_prints_help_and_returns_2(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    assert out.startswith("usage: decode-omics")
    assert "deconvolve" in out and "demo" in out


@pytest.mark.parametrize(("command", "text"), [("demo", "pbmc68k_reduced"), ("deconvolve", "--labels-key")])
def test_command_help(command, text, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: decode-omics {command}") and text in out and "--max-epochs" in out


def test_console_script_help():
    script = Path(sys.executable).with_name("decode-omics")
    script = str(script) if script.is_file() else shutil.which("decode-omics")
    assert script, "the decode-omics console script is not installed"
    run = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("usage: decode-omics") and "deconvolve" in run.stdout and "demo" in run.stdout


# ---------------------------------------------------------------------------------------------------- known bugs
@pytest.mark.parametrize("which", ["--out", "--csv"])
def test_output_in_missing_directory(which, files, tmp_path, capsys, fast_training):
    out, csv = tmp_path / "out.h5ad", tmp_path / "fractions.csv"
    if which == "--out":
        out = tmp_path / "results" / "out.h5ad"
    else:
        csv = tmp_path / "results" / "fractions.csv"
    rc = main(_deconvolve_args(files["ref"], files["bulk"], out, "--csv", str(csv)))
    err = capsys.readouterr().err
    if rc == 0:
        assert out.is_file() and csv.is_file()
    else:
        assert rc == 3 and "results" in err and "Traceback" not in err


@pytest.mark.parametrize("which", ["--save-model", "--csv"])
def test_existing_side_outputs_need_overwrite(which, files, tmp_path, capsys, no_training):
    target = tmp_path / "side"
    if which == "--save-model":
        target.mkdir()
        (target / "keep.txt").write_text("x")
    else:
        target.write_text("x")
    out = tmp_path / "out.h5ad"
    assert main(_deconvolve_args(files["ref"], files["bulk"], out, which, str(target))) == 3
    err = capsys.readouterr().err
    assert "--overwrite" in err and "Traceback" not in err
    assert not out.exists()


def test_save_model_with_h5mu_is_not_silently_ignored(files, tmp_path, capsys, no_training):
    argv = _deconvolve_args(
        [f"rna={files['ref']}"], files["cohort"], tmp_path / "out.h5mu", "--save-model", str(tmp_path / "m")
    )
    assert main(argv) == 3
    assert "--save-model" in capsys.readouterr().err


def test_reference_for_unknown_modality_is_refused(files, tmp_path, capsys, no_training):
    argv = _deconvolve_args(
        [f"rna={files['ref']}", f"protien={files['prot_ref']}"], files["cohort"], tmp_path / "out.h5mu"
    )
    assert main(argv) == 3
    assert re.search("protien.*'rna', 'prot'", capsys.readouterr().err)


def test_h5mu_reference_for_h5ad_bulk_names_the_file(files, tmp_path, capsys, no_training):
    assert main(_deconvolve_args(files["cohort"], files["bulk"], tmp_path / "out.h5ad")) == 3
    err = capsys.readouterr().err
    assert "cohort.h5mu" in err and ".h5ad" in err


def test_predict_streams_a_cohort_to_csv(files, tmp_path, capsys, fast_training):
    """Train once, save; then `predict` reads the bulk from disk in blocks and writes the same fractions as CSV."""
    out, model_dir, csv = tmp_path / "out.h5ad", tmp_path / "model", tmp_path / "fractions.csv"
    assert main(_deconvolve_args(files["ref"], files["bulk"], out, "--save-model", str(model_dir))) == 0
    expected = ad.read_h5ad(out).obsm["decode"]
    bulk_sha = _sha(files["bulk"])
    argv = ["predict", "--model", str(model_dir), "--bulk", str(files["bulk"]), "--out", str(csv)]
    assert main([*argv, "--block-rows", "3"]) == 0
    assert f"Deconvolved {N_SAMPLES} samples" in capsys.readouterr().out
    got = pd.read_csv(csv, index_col=0)
    pd.testing.assert_frame_equal(got, expected, check_names=False, atol=1e-5)
    assert _sha(files["bulk"]) == bulk_sha
    # a .h5mu modality; existing output needs --overwrite; a missing model folder is named
    assert main(["predict", "--model", str(model_dir), "--bulk", str(files["cohort"]), "--out", str(csv)]) == 3
    assert "exists; pass --overwrite" in capsys.readouterr().err
    h5mu = ["--bulk", str(files["cohort"]), "--modality", "rna", "--overwrite"]
    assert main(["predict", "--model", str(model_dir), "--out", str(csv), *h5mu]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(csv, index_col=0), expected, check_names=False, atol=1e-5)
    nope = ["predict", "--model", str(tmp_path / "nope"), "--bulk", str(files["bulk"]), "--out", str(csv)]
    assert main([*nope, "--overwrite"]) == 3
    assert "no such folder" in capsys.readouterr().err
    prot = ["--bulk", str(files["cohort"]), "--modality", "prot", "--overwrite"]
    assert main(["predict", "--model", str(model_dir), "--out", str(csv), *prot]) == 3
    assert "lack" in capsys.readouterr().err and not (tmp_path / "fractions.csv.partial").exists()
    # the training bulk's platform gains are applied unless switched off (for bulk from another platform)
    model = dco.model.DECODE.load(model_dir)
    assert model.platform_gains_ is not None
    assert main([*argv, "--overwrite", "--no-platform-correction"]) == 0
    raw = model.get_fractions(ad.read_h5ad(files["bulk"]), platform_correction=False)
    pd.testing.assert_frame_equal(pd.read_csv(csv, index_col=0), raw, check_names=False, atol=1e-5)
    assert np.abs(np.log(model.platform_gains_)).max() > 0.01  # so the two differ
    assert not np.allclose(raw.to_numpy(), expected.to_numpy(), atol=1e-5)


def test_measurement_noise_option(files, tmp_path, capsys, fast_training):
    out = tmp_path / "out.h5ad"
    assert main(_deconvolve_args(files["ref"], files["bulk"], out, "--measurement-noise", "auto")) == 0
    used = ad.read_h5ad(out).uns["decode"]["params"]["measurement_noise"]
    assert isinstance(used, float) and used >= 0  # the estimate that was trained with is recorded
    assert main(_deconvolve_args(files["ref"], files["bulk"], out, "--measurement-noise", "0.05", "--overwrite")) == 0
    assert ad.read_h5ad(out).uns["decode"]["params"]["measurement_noise"] == 0.05
    with pytest.raises(SystemExit) as exc:
        main(_deconvolve_args(files["ref"], files["bulk"], out, "--measurement-noise", "-1", "--overwrite"))
    assert exc.value.code == 2 and "must be 'auto' or a number >= 0" in capsys.readouterr().err


def test_deconvolve_measured_key_not_in_obsm_is_an_input_error(files, tmp_path, capsys, fast_training):
    rc = main(_deconvolve_args(files["ref"], files["bulk"], tmp_path / "out.h5ad", "--measured-key", "flow"))
    err = capsys.readouterr().err
    assert rc != 0 and "measured_key 'flow' is not in the bulk's .obsm" in err and "Traceback" not in err


def test_deconvolve_mean_fractions_anchor_the_gains(files, tmp_path, capsys, fast_training):
    """--mean-fractions LABEL=VALUE,...: the cohort's average composition anchors the platform gains (recorded in
    the parameters); a malformed pair is a usage error, a missing label an input error naming it."""
    labels = sorted(ad.read_h5ad(files["ref"]).obs["cell_type"].astype(str).unique())
    mean = ",".join(f"{label}={1 / len(labels):.4f}" for label in labels)
    out = tmp_path / "out.h5ad"
    assert main(_deconvolve_args(files["ref"], files["bulk"], out, "--mean-fractions", mean)) == 0
    params = ad.read_h5ad(out).uns["decode"]["params"]
    assert params["platform_gains_from"] == "the cohort's mean fractions"
    assert sorted(params["mean_fractions"]) == labels
    with pytest.raises(SystemExit) as exc:
        main(_deconvolve_args(files["ref"], files["bulk"], out, "--mean-fractions", "B:0.2", "--overwrite"))
    assert exc.value.code == 2 and "LABEL=VALUE pairs" in capsys.readouterr().err
    rc = main(_deconvolve_args(files["ref"], files["bulk"], out, "--mean-fractions", f"{labels[0]}=1", "--overwrite"))
    assert rc == 3 and "mean_fractions needs one value per label" in capsys.readouterr().err
