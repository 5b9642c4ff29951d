"""Loaders of the public data sets in ``../shared/data``: shapes, labels and truth exactly as the MANIFESTs state."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import decode_omics as dco
from decode_omics import datasets as ds

try:
    DATA = ds.data_dir()
except FileNotFoundError:
    pytest.skip("public data folder not found (set DECODE_OMICS_DATA)", allow_module_level=True)

pytestmark = pytest.mark.shared_data

FLOW_COLUMNS = ["B", "CD4T", "CD8T", "NK", "Mono", "Unknown"]
LINES = ["H1975", "H2228", "HCC827"]


def counts(series) -> dict:
    return {str(k): int(v) for k, v in pd.Series(series).value_counts().items() if v}


# ------------------------------------------------------------------------------------------------- data_dir, errors
def test_public_names_exported():
    for name in [
        "data_dir",
        "pbmc_sorted_10x",
        "pbmc_bulk",
        "cellbench_mixtures",
        "cellbench_reference",
        "murine_cellline_proteomics",
        "tscp_cellcycle",
        "bone_marrow_metabolomics",
        "kidney_metabolomics",
        "kidney_tissue_metabolomics",
        "eccite_pbmc",
        "PBMC_BROAD_LABELS",
        "BONE_MARROW_PROTOCOL_TYPES",
        "pbmc68k_reference_and_bulk",
    ]:
        assert name in ds.__all__
        assert hasattr(dco.datasets, name)


def test_data_dir_resolution(tmp_path, monkeypatch):
    assert (DATA / "pbmc_flow_quasar" / "MANIFEST.md").is_file()
    assert ds.data_dir(tmp_path) == tmp_path.resolve()  # the argument wins
    monkeypatch.setenv("DECODE_OMICS_DATA", str(tmp_path))
    assert ds.data_dir() == tmp_path.resolve()  # then the environment variable
    assert ds.data_dir(DATA) == DATA  # argument over environment variable
    monkeypatch.setenv("DECODE_OMICS_DATA", str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="DECODE_OMICS_DATA"):
        ds.data_dir()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ds.data_dir(tmp_path / "nope")


@pytest.mark.parametrize(
    ("loader", "expected_file", "source"),
    [
        (ds.pbmc_sorted_10x, "pbmc_sorted_10x_ref.h5ad", "JEFworks/MUDAN"),
        (ds.pbmc_bulk, "GSE107011_bulk.csv.gz", "GSE107011"),
        (ds.cellbench_mixtures, "RNAmix_celseq2.count.csv.gz", "GSE118767"),
        (ds.cellbench_reference, "sc_dropseq.count.csv.gz", "LuyiTian/sc_mixology"),
        (ds.murine_cellline_proteomics, "murine_N2_SCP.h5ad", "scpDeconv"),
        (ds.tscp_cellcycle, "T-SCP.h5ad", "scPROTEIN"),
        (ds.bone_marrow_metabolomics, "bone_marrow.h5ad", "forceworker/DECODE"),
        (ds.kidney_metabolomics, "intracell_raw.csv.gz", "ST002224"),
        (ds.kidney_tissue_metabolomics, "tissue_norm.csv.gz", "MetaProViz"),
        (ds.eccite_pbmc, "eccite_pbmc_RNA.h5ad", "GSE126310"),
    ],
)
def test_missing_file_message(tmp_path, loader, expected_file, source):
    with pytest.raises(FileNotFoundError) as err:
        loader(path=tmp_path)
    msg = str(err.value)
    assert expected_file in msg
    assert str(tmp_path.resolve()) in msg  # where it was expected
    assert "path=" in msg and "DECODE_OMICS_DATA" in msg  # how to fix it
    assert source in msg  # where to get it


def test_bad_choices():
    with pytest.raises(ValueError, match=r"cohort 'GSE0'.*GSE107011.*GSE107572"):
        ds.pbmc_bulk("GSE0")
    with pytest.raises(ValueError, match="mixture"):
        ds.cellbench_mixtures("RNAmix_10x")
    with pytest.raises(ValueError, match="protocol"):
        ds.cellbench_reference("10x")
    with pytest.raises(ValueError, match="platform"):
        ds.murine_cellline_proteomics("TMT")
    with pytest.raises(ValueError, match="fine_fractions"):
        ds.pbmc_bulk("GSE107572", fine_fractions=True)


# ------------------------------------------------------------------------------------------------------ PBMC RNA
def test_pbmc_sorted_10x():
    a = ds.pbmc_sorted_10x()
    assert a.shape == (2140, 8863)
    assert sp.isspmatrix_csr(a.X) and a.X.dtype == np.float32
    assert np.all(a.X.data == np.round(a.X.data))  # raw UMI counts
    totals = np.asarray(a.X.sum(1)).ravel()
    assert totals.min() == 1971 and totals.max() == 10219
    assert counts(a.obs["cell_type"]) == {
        "nk": 769,
        "bcells": 330,
        "memoryt": 252,
        "regulatoryt": 226,
        "thelper": 191,
        "cytotoxict": 148,
        "monocytes": 129,
        "naivet": 52,
        "naivecytotoxic": 43,
    }
    assert ds.PBMC_BROAD_LABELS == {
        "nk": "NK",
        "bcells": "B",
        "monocytes": "Mono",
        "thelper": "CD4T",
        "memoryt": "CD4T",
        "naivet": "CD4T",
        "regulatoryt": "CD4T",
        "cytotoxict": "CD8T",
        "naivecytotoxic": "CD8T",
    }
    assert isinstance(a.obs["broad_type"].dtype, pd.CategoricalDtype)
    assert list(a.obs["broad_type"].cat.categories) == ["B", "CD4T", "CD8T", "NK", "Mono"]
    assert counts(a.obs["broad_type"]) == {"NK": 769, "CD4T": 721, "B": 330, "CD8T": 191, "Mono": 129}


def test_pbmc_bulk_gse107011():
    a = ds.pbmc_bulk("GSE107011", fine_fractions=True)
    assert a.shape == (12, 36128) and a.X.dtype == np.float32
    assert "ensembl_ids" not in a.var and a.var["ensembl_id"].str.startswith("ENSG").all()
    assert a.var_names.is_unique
    sums = a.X.sum(1)
    assert 0.82e6 < sums.min() and sums.max() < 0.94e6  # TPM-like, after gene filtering
    f = a.obsm["fractions"]
    assert list(f.columns) == FLOW_COLUMNS and f.index.equals(a.obs_names)
    np.testing.assert_allclose(f.sum(1), 1.0, atol=1e-9)
    assert f.loc["CYFZ", "CD8T"] == pytest.approx(0.27818) and f.loc["CYFZ", "Mono"] == pytest.approx(0.1679)
    fine = a.obsm["fractions_fine"]
    assert fine.shape == (12, 29) and fine.index.equals(a.obs_names)
    assert 0.913 < fine.sum(1).min() and fine.sum(1).max() < 0.985  # 91.4-98.4 %


def test_pbmc_bulk_gse107572():
    a = ds.pbmc_bulk(cohort="GSE107572")
    assert a.shape == (9, 19423)
    assert "ensembl_id" not in a.var
    assert np.all(a.X == np.round(a.X))  # integer read counts
    f = a.obsm["fractions"]
    assert list(f.columns) == FLOW_COLUMNS and f.index.equals(a.obs_names)
    rows = f.sum(1)
    assert rows.min() == pytest.approx(0.8806) and rows.max() == pytest.approx(0.9958)
    assert f.loc["pbmc_1", "CD4T"] == pytest.approx(0.3971)


# ------------------------------------------------------------------------------------------------------ CellBench
@pytest.mark.parametrize(
    ("mixture", "shape"),
    [
        ("RNAmix_celseq2", (340, 14804)),
        ("RNAmix_sortseq", (296, 15571)),
        ("cellmix1", (266, 11798)),
        ("cellmix2", (268, 13747)),
        ("cellmix3", (285, 14053)),
        ("cellmix4", (288, 15149)),
        ("cellmix5", (21, 29858)),
    ],
)
def test_cellbench_mixtures(mixture, shape):
    a = ds.cellbench_mixtures(mixture)
    assert a.shape == shape and a.X.dtype == np.float32
    assert (a.var_names.str.startswith("ENSG") | a.var["ercc"]).all()
    assert ds.cellbench_mixtures(mixture, drop_ercc=True).n_vars == shape[1] - a.var["ercc"].sum()
    f = a.obsm["fractions"]
    assert list(f.columns) == LINES and f.index.equals(a.obs_names)
    np.testing.assert_allclose(f.sum(1), 1.0, atol=1e-12)
    if mixture.startswith("RNAmix"):
        design = a.obsm["design_as_published"]
        assert list(design.columns) == ["H2228_prop", "H1975_prop", "HCC827_prop"]
        assert len(design.drop_duplicates()) == 7
        assert not {"H2228_prop", "H1975_prop", "HCC827_prop"} & set(a.obs.columns)
        # the MANIFEST's correction: H2228 and HCC827 are exchanged, H1975 is not
        d = design.div(design.sum(1), axis=0)
        np.testing.assert_allclose(f["H2228"], d["HCC827_prop"])
        np.testing.assert_allclose(f["HCC827"], d["H2228_prop"])
        np.testing.assert_allclose(f["H1975"], d["H1975_prop"])
    else:
        cells = a.obsm["cell_counts"]
        per_well = cells.sum(1)
        assert set(per_well) <= ({90} if mixture == "cellmix5" else {3, 9})
        np.testing.assert_allclose(f, cells.div(per_well, axis=0))
        assert a.obs["poor_quality"].dtype == "boolean"


@pytest.mark.parametrize(("protocol", "shape"), [("celseq2", (274, 28204)), ("dropseq", (225, 15127))])
def test_cellbench_reference(protocol, shape):
    a = ds.cellbench_reference(protocol)
    assert a.shape == shape and sp.isspmatrix_csr(a.X)
    assert list(a.obs["cell_line"].cat.categories) == LINES
    expected = {
        "celseq2": {"H1975": 114, "H2228": 81, "HCC827": 79},
        "dropseq": {"H1975": 92, "HCC827": 68, "H2228": 65},
    }
    assert counts(a.obs["cell_line"]) == expected[protocol]
    singlets = ds.cellbench_reference(protocol, singlets_only=True)
    assert singlets.n_obs == {"celseq2": 240, "dropseq": 210}[protocol]
    assert a.var["ercc"].sum() == {"celseq2": 62, "dropseq": 0}[protocol]


@pytest.mark.parametrize("mixture", ["RNAmix_celseq2", "cellmix1"])
def test_cellbench_truth_matches_reference(mixture):
    """The pure wells of the returned truth look most like the reference cells of the same line."""
    mix = ds.cellbench_mixtures(mixture)
    ref = ds.cellbench_reference("dropseq")
    genes = mix.var_names.intersection(ref.var_names)

    def log_cpm(X):
        X = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=float)
        return np.log1p(X / X.sum(1, keepdims=True) * 1e6)

    r = log_cpm(ref[:, genes].X)
    hv = np.argsort(r.var(0))[-2000:]
    r = r[:, hv]
    m = log_cpm(mix[:, genes].X)[:, hv]
    f = mix.obsm["fractions"]
    for line in LINES:
        pure = m[(f[line] == 1).to_numpy()].mean(0)
        corr = {lab: np.corrcoef(pure, r[(ref.obs["cell_line"] == lab).to_numpy()].mean(0))[0, 1] for lab in LINES}
        assert max(corr, key=corr.get) == line, (line, corr)


# ------------------------------------------------------------------------------------------------------ proteomics
@pytest.mark.parametrize(
    ("platform", "shape", "labels", "n_nan", "value_range"),
    [
        ("N2", (108, 1068), {"C10": 36, "RAW": 36, "SVEC": 36}, 0, (-4.26, 3.44)),
        ("nanoPOTS", (61, 1225), {"C10": 19, "RAW": 22, "SVEC": 20}, 6446, (-3.7, 4.53)),
    ],
)
def test_murine_cellline_proteomics(platform, shape, labels, n_nan, value_range):
    a = ds.murine_cellline_proteomics(platform)
    assert a.shape == shape
    assert counts(a.obs["cell_type"]) == labels
    assert isinstance(a.obs["cell_type"].dtype, pd.CategoricalDtype)
    assert int(np.isnan(a.X).sum()) == n_nan
    assert np.nanmin(a.X) == pytest.approx(value_range[0], abs=0.01)
    assert np.nanmax(a.X) == pytest.approx(value_range[1], abs=0.01)


def test_tscp_cellcycle():
    a = ds.tscp_cellcycle()
    assert a.shape == (225, 1810) and a.var_names.is_unique
    assert counts(a.obs["stage"]) == {"G1": 87, "G2": 52, "G2-M": 45, "G1-S": 41}
    assert list(a.obs["stage"].cat.categories) == ["G1", "G1-S", "G2", "G2-M"]
    assert (a.obs["stage"] == a.obs["cell_cycle"]).all()
    assert a.X.min() == 0 and a.X.max() == pytest.approx(14.907, abs=1e-3)  # log1p intensities
    assert (a.X == 0).mean() == pytest.approx(0.283, abs=1e-3)
    assert set(a.var.loc[["P07951", "P07951-1"], "protein_id"]) == {"P07951"}


# ------------------------------------------------------------------------------------------------------ metabolomics
def test_bone_marrow_metabolomics():
    a = ds.bone_marrow_metabolomics()
    assert a.shape == (1428, 107) and a.obs_names.is_unique and not np.isnan(a.X).any()
    assert (a.X < 0).mean() == pytest.approx(0.0896, abs=1e-4)
    assert counts(a.obs["cell_type"]) == {
        "HSC": 241,
        "B": 143,
        "GMP": 140,
        "CMP": 134,
        "Myeloid": 130,
        "Erythroid": 124,
        "CLP": 117,
        "MEP": 116,
        "T": 116,
        "MPP": 92,
        "HPC": 75,
    }
    assert ds.BONE_MARROW_PROTOCOL_TYPES == ("Erythroid", "T", "B", "GMP", "Myeloid")
    assert a.obs["cell_type"].isin(ds.BONE_MARROW_PROTOCOL_TYPES).sum() == 653
    raw = ds.bone_marrow_metabolomics(merge_hsc=False)
    assert counts(raw.obs["cell_type"])["HSC (catulin+)"] == 127
    assert counts(raw.obs["cell_type"])["HSC (catulin-)"] == 114
    assert raw.obs["cell_type"].nunique() == 12


def test_kidney_metabolomics():
    a = ds.kidney_metabolomics()
    assert a.shape == (58, 182) and not np.isnan(a.X).any() and (a.X >= 0).all()
    assert counts(a.obs["condition"]) == {"HK2": 12, "786-O": 12, "786-M1A": 12, "786-M2A": 12, "Pool": 10}
    assert int(a.obs["is_qc"].sum()) == 10 and a.obs.loc[a.obs["is_qc"], "cell_line"].isna().all()
    lines = a[~a.obs["is_qc"].to_numpy()].obs
    assert counts(lines["cell_line"]) == {"HK2": 12, "786-O": 12, "786-M1A": 12, "786-M2A": 12}
    design = lines.groupby(["cell_line", "biological_replicate", "analytical_replicate"], observed=True).size()
    assert len(design) == 4 * 3 * 4 and (design == 1).all()
    assert set(a.var_names[a.var["internal_standard"]]) == {"valine-d8", "hippuric acid-d5"}
    assert ds.kidney_metabolomics(include_qc=False).n_obs == 48


def test_kidney_tissue_metabolomics():
    a = ds.kidney_tissue_metabolomics()
    assert a.shape == (276, 570) and not np.isnan(a.X).any()
    assert counts(a.obs["tissue_type"]) == {"TUMOR": 138, "NORMAL": 138}
    pairs = a.obs.groupby("matching_index", observed=True)["tissue_type"].agg(lambda s: tuple(sorted(s.astype(str))))
    assert len(pairs) == 138 and (pairs == ("NORMAL", "TUMOR")).all()


# ------------------------------------------------------------------------------------------------------ multi-omics
def test_eccite_pbmc():
    import mudata

    m = ds.eccite_pbmc()
    assert isinstance(m, mudata.MuData)
    assert set(m.mod) == {"rna", "prot"}
    rna, prot = m["rna"], m["prot"]
    assert rna.shape == (500, 19521) and prot.shape == (500, 49)
    assert rna.obs_names.equals(prot.obs_names) and m.n_obs == 500
    assert rna.var_names.str.startswith("hg19_").all() and rna.var["gene_symbol"].is_unique
    assert {"CD11b", "CCR7", "B220 (CD45R)"} <= set(prot.var_names)
    assert list(m.obs.columns) == ["HTO_HTO28_5P", "HTO_HTO29_5P", "HTO_HTO30_5P", "HTO_HTO44_5P"]
    assert np.all(prot.X.data == np.round(prot.X.data))
    with pytest.warns(UserWarning, match="not unique"):  # 15 markers share a name across modalities
        plain = ds.eccite_pbmc(strip_genome_prefix=True)
    assert {"CD4", "CD14"} <= set(plain["rna"].var_names) and plain["rna"].var_names.is_unique
