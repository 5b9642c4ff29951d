"""Converted data sets built from their public R sources: tiny ``.rda`` files written here with ``rdata``, served
from 127.0.0.1 in place of the deposit, downloaded (checksummed) into the cache and converted.

Offline like ``test_datasets_download.py``, whose fixtures are reused: no local data folder, the cache in a
temporary folder, and any connection beyond the loopback fails the test.
"""

from __future__ import annotations

import dataclasses
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from test_datasets_download import offline, server, sha256  # noqa: F401  (fixtures)

from decode_omics import datasets as ds
from decode_omics.datasets import _convert, _registry

rdata = pytest.importorskip("rdata")
xr = pytest.importorskip("xarray")
to_r = pytest.importorskip("rdata.conversion.to_r")

TYPES = ["Bcells", "CD4Tcells", "CD8Tcells", "Monocytes", "NK", "Unknown"]


def _matrix(data, converter):
    """An R numeric matrix with dimnames (column-major), as R saves one, from a 2-D labelled array."""
    attributes = converter.convert_to_r_attributes(
        {
            "dim": np.array(data.shape, dtype=np.int32),
            "dimnames": [np.array([str(v) for v in data.coords[d].values]) for d in data.dims],
        }
    )
    values = np.asarray(data.values, dtype=float).ravel(order="F")
    return to_r.build_r_object(rdata.parser.RObjectType.REAL, value=values, attributes=attributes)


def _labelled(values, rows, cols):
    return xr.DataArray(np.asarray(values, dtype=float), dims=("dim_0", "dim_1"), coords={"dim_0": rows, "dim_1": cols})


def write_quasar_rda(path, cohort: str, ensembl: bool) -> bytes:
    """A tiny QuasarDeconData cohort list (3 genes x 2 samples) saved as ``<cohort>.rda``; returns its bytes."""
    bulk = _labelled([[1.5, 0.0], [2.0, 3.25], [0.0, 4.0]], ["G1", "G2", "G3"], ["s1", "s2"])
    truth = _labelled([[0.1, 0.2, 0.3, 0.2, 0.1, 0.1], [0.25, 0.25, 0.1, 0.2, 0.1, 0.1]], ["s2", "s1"], TYPES)
    obj = {"ground_truth_proportions": truth, "bulk_expression_profiles": bulk}
    if ensembl:
        obj["ensembl_ids"] = np.array(["E1.1", "E2.1", "E3.1"])
    classes = {**to_r.DEFAULT_CLASS_MAP, xr.DataArray: _matrix}
    rdata.write_rda(str(path), {cohort: obj}, constructor_dict=classes)
    return path.read_bytes()


@pytest.fixture
def quasar(monkeypatch, server):  # noqa: F811
    """The two cohorts' tiny ``.rda`` served by ``server``; the registry's sources point there."""
    checksums = {}
    for cohort in ("GSE107011", "GSE107572"):
        data = write_quasar_rda(server.root / "deposit" / f"{cohort}.rda", cohort, ensembl=cohort == "GSE107011")
        checksums[cohort] = sha256(data)
    for key, entry in list(_registry.REGISTRY.items()):
        if entry.folder == "pbmc_flow_quasar":
            cohort = entry.name.split("_", 1)[0]
            sources = ((f"{server.url}{cohort}.rda", checksums[cohort]),)
            monkeypatch.setitem(_registry.REGISTRY, key, dataclasses.replace(entry, sources=sources))
    return checksums


def test_quasar_is_built_from_its_sources_and_cached(quasar, server, offline):  # noqa: F811
    a = ds.pbmc_bulk("GSE107011")
    assert list(a.obs_names) == ["s1", "s2"] and list(a.var_names) == ["G1", "G2", "G3"]
    np.testing.assert_array_equal(a.X, np.array([[1.5, 2.0, 0.0], [0.0, 3.25, 4.0]], dtype=np.float32))
    assert list(a.var["ensembl_id"]) == ["E1.1", "E2.1", "E3.1"]
    np.testing.assert_allclose(a.obsm["fractions"].loc["s1"].sum(), 1.0)
    assert a.obsm["fractions"].loc["s2"].iloc[0] == pytest.approx(0.1)  # rows follow the bulk samples
    # both cohorts' sources are downloaded once (one builder writes the folder), kept under sources/
    assert sorted(server.hits) == ["/deposit/GSE107011.rda", "/deposit/GSE107572.rda"]
    built = offline / "pbmc_flow_quasar"
    assert {p.name for p in built.iterdir()} == {
        "GSE107011_bulk.csv.gz",
        "GSE107011_ground_truth.csv",
        "GSE107572_bulk.csv.gz",
        "GSE107572_ground_truth.csv",
        "sources",
    }
    b = ds.pbmc_bulk("GSE107572")  # built already: nothing downloaded again
    assert "ensembl_id" not in b.var and b.shape == (2, 3)
    ds.pbmc_bulk("GSE107011")
    assert len(server.hits) == 2
    assert ds.registry().loc["pbmc_flow_quasar/GSE107011_bulk.csv.gz", "built_from_sources"]


def test_wrong_source_checksum_builds_nothing(monkeypatch, quasar, offline):  # noqa: F811
    key = "pbmc_flow_quasar/GSE107572_bulk.csv.gz"
    entry = _registry.REGISTRY[key]
    monkeypatch.setitem(_registry.REGISTRY, key, dataclasses.replace(entry, sources=((entry.sources[0][0], "0" * 64),)))
    with pytest.raises(ValueError, match="does not match its registered checksum"):
        ds.pbmc_bulk("GSE107572")
    assert not list((offline / "pbmc_flow_quasar").glob("*.csv*"))


def test_unreachable_source_gives_a_clear_error(monkeypatch, offline):  # noqa: F811
    from test_datasets_download import closed_port_url

    key = "pbmc_flow_quasar/GSE107572_ground_truth.csv"
    for k, entry in list(_registry.REGISTRY.items()):
        if entry.folder == "pbmc_flow_quasar":
            url = closed_port_url() + entry.sources[0][0].rsplit("/", 1)[1]
            monkeypatch.setitem(_registry.REGISTRY, k, dataclasses.replace(entry, sources=((url, "0" * 64),)))
    with pytest.raises(ConnectionError, match="Could not download"):
        _registry.fetch(*key.split("/"))


def test_without_rdata_the_error_says_how_to_install_it(monkeypatch, quasar, server):  # noqa: F811
    monkeypatch.setitem(sys.modules, "rdata", None)
    with pytest.raises(ImportError, match=r"pip install \"rdata>=1\.0\""):
        ds.pbmc_bulk("GSE107011")
    assert server.hits == []


def test_registry_says_which_converted_files_are_built():
    table = ds.registry()
    built = table[table["built_from_sources"]]
    assert built.index.equals(table.index[table["url"].isna()])  # every converted file, and only those
    assert len(built) == 9 and all(row for row in built["sources"])
    assert not table.loc["scp_murine_cellline/murine_N2_SCP.h5ad", "built_from_sources"]
    assert _convert.can_build(_registry.REGISTRY["pbmc_flow_quasar/GSE107572_ground_truth.csv"])


# ------------------------------------------------------------------------------------------------- MUDAN sorted PBMC
def test_mudan_reference_is_built_from_its_two_sources(monkeypatch, server, offline):  # noqa: F811
    cells = ["bcellsAAA-1", "bcellsCCC-1", "nkGGG-1"]
    counts = _labelled([[0, 3, 1], [2, 0, 0], [5, 1, 7], [0, 0, 4]], ["GA", "GB", "GC", "GD"], cells)
    classes = {**to_r.DEFAULT_CLASS_MAP, xr.DataArray: _matrix}
    deposit = server.root / "deposit"
    rdata.write_rda(str(deposit / "referenceCounts.rda"), {"referenceCounts": counts}, constructor_dict=classes)
    rdata.write_rda(str(deposit / "referenceAnnot.rda"), {"referenceAnnot": np.array(["bcells", "bcells", "nk"])})
    key = "pbmc_sorted_10x_mudan/pbmc_sorted_10x_ref.h5ad"
    sources = tuple(
        (f"{server.url}{name}", sha256((deposit / name).read_bytes()))
        for name in ("referenceCounts.rda", "referenceAnnot.rda")
    )
    monkeypatch.setitem(_registry.REGISTRY, key, dataclasses.replace(_registry.REGISTRY[key], sources=sources))
    a = ds.pbmc_sorted_10x()
    assert list(a.obs_names) == cells and list(a.var_names) == ["GA", "GB", "GC", "GD"]
    np.testing.assert_array_equal(a.X.toarray(), np.array([[0, 2, 5, 0], [3, 0, 1, 0], [1, 0, 7, 4]], dtype=np.float32))
    assert a.X.dtype == np.float32
    assert list(a.obs["cell_type"]) == ["bcells", "bcells", "nk"] and list(a.obs["broad_type"]) == ["B", "B", "NK"]
    assert sorted(server.hits) == ["/deposit/referenceAnnot.rda", "/deposit/referenceCounts.rda"]
    assert (offline / key).is_file()
    ds.pbmc_sorted_10x()  # cached
    assert len(server.hits) == 2


def test_mudan_labels_must_match_the_cells():
    counts = _labelled([[1, 2]], ["GA"], ["c1", "c2"])
    with pytest.raises(ValueError, match="1 labels for 2 cells"):
        _convert.mudan_adata(counts, np.array(["nk"]))


# ------------------------------------------------------------------------------------------------- MetaProViz kidney
def test_metaproviz_table_is_built_from_its_data_frame(monkeypatch, server, offline):  # noqa: F811
    frame = pd.DataFrame(
        {
            "Code": ["MS_01", "MS_02", "MS_03"],
            "Conditions": ["HK2", "786-O", "Pool"],
            "Analytical_Replicates": [1.0, 1.0, 1.0],
            "Biological_Replicates": [1.0, 2.0, 1.0],
            "valine-d8": [10.5, 11.0, 12.0],
            "lactate": [100.0, 250.25, 175.0],
        },
        index=pd.RangeIndex(1, 4),
    )
    deposit = server.root / "deposit"
    rdata.write_rda(str(deposit / "intracell_raw.rda"), {"intracell_raw": frame})
    for key, entry in list(_registry.REGISTRY.items()):
        if entry.folder == "metaboprofiles_kidney_metaproviz":
            name = entry.sources[0][0].rsplit("/", 1)[1]
            url = f"{server.url}{name}"  # tissue_norm.rda is not served: only the one asked for must download
            sources = ((url, sha256((deposit / name).read_bytes()) if (deposit / name).is_file() else "0" * 64),)
            monkeypatch.setitem(_registry.REGISTRY, key, dataclasses.replace(entry, sources=sources))
    monkeypatch.setattr(_convert, "_folder_sources", lambda entry: dict(entry.sources))
    a = ds.kidney_metabolomics(include_qc=True)
    assert list(a.obs_names) == ["MS_01", "MS_02", "MS_03"] and list(a.var_names) == ["valine-d8", "lactate"]
    np.testing.assert_array_equal(a.X, np.array([[10.5, 100.0], [11.0, 250.25], [12.0, 175.0]], dtype=np.float32))
    assert list(a.obs["is_qc"]) == [False, False, True] and bool(a.var.loc["valine-d8", "internal_standard"])
    assert server.hits == ["/deposit/intracell_raw.rda"]
    assert (offline / "metaboprofiles_kidney_metaproviz" / "intracell_raw.csv.gz").is_file()


# ------------------------------------------------------------------------------------------------- CiteFuse ECCITE-seq
def _dgc(dense, rows, cols):
    """A dgCMatrix as rdata reads it (rdata cannot write S4 objects, so the tests build its slots)."""
    from scipy import sparse

    m = sparse.csc_matrix(np.asarray(dense, dtype=float))
    dimnames = [np.array(rows), np.array(cols)]
    return SimpleNamespace(Dim=np.array(m.shape, dtype=np.int32), Dimnames=dimnames, i=m.indices, p=m.indptr, x=m.data)


CELLS = ["AAAC", "CCCG", "GGGT"]
CITEFUSE = {
    "RNA": _dgc([[0, 2, 1], [3, 0, 0]], ["hg19_GA", "hg19_GB"], CELLS),
    "ADT": _dgc([[5, 0, 7], [1, 1, 0], [0, 4, 2]], ["CD4", "IgG1", "CD8"], CELLS),
    "HTO": _dgc([[9, 0, 1], [0, 8, 0], [1, 1, 6], [0, 0, 0]], ["HTO28_5P", "HTO29_5P", "HTO30_5P", "HTO44_5P"], CELLS),
}


def test_citefuse_matrices_become_cells_by_features():
    out = _convert.citefuse_adatas(CITEFUSE)
    rna, adt = out["RNA"], out["ADT"]
    assert list(rna.obs_names) == CELLS and list(rna.var_names) == ["hg19_GA", "hg19_GB"]
    np.testing.assert_array_equal(rna.X.toarray(), np.array([[0, 3], [2, 0], [1, 0]], dtype=np.float32))
    np.testing.assert_array_equal(adt.X.toarray(), np.array([[5, 1, 0], [0, 1, 4], [7, 0, 2]], dtype=np.float32))
    assert rna.X.dtype == np.float32 and list(adt.obs.columns) == [f"HTO_HTO{n}_5P" for n in (28, 29, 30, 44)]
    assert list(adt.obs["HTO_HTO28_5P"]) == [9.0, 0.0, 1.0] and adt.obs["HTO_HTO28_5P"].dtype == np.float32
    other = dict(CITEFUSE, ADT=_dgc([[1, 2, 3]], ["CD4"], ["x", "y", "z"]))
    with pytest.raises(ValueError, match="ADT cells differ"):
        _convert.citefuse_adatas(other)


def test_citefuse_is_downloaded_and_built(monkeypatch, server, offline):  # noqa: F811
    # the served bytes stand for the .rda (checksummed as usual); rdata's reading is replaced by the slots it returns
    data = b"stand-in for CITEseq_example.rda"
    (server.root / "deposit" / "CITEseq_example.rda").write_bytes(data)
    for key, entry in list(_registry.REGISTRY.items()):
        if entry.folder == "citeseq_eccite_pbmc_citefuse":
            sources = ((f"{server.url}CITEseq_example.rda", sha256(data)),)
            monkeypatch.setitem(_registry.REGISTRY, key, dataclasses.replace(entry, sources=sources))
    read = []
    monkeypatch.setattr(rdata, "read_rda", lambda f: read.append(f) or {"CITEseq_example": CITEFUSE})
    m = ds.eccite_pbmc()
    assert list(m.obs_names) == CELLS and m.mod["prot"].var["isotype_control"].tolist() == [False, True, False]
    assert list(m.mod["rna"].var["gene_symbol"]) == ["GA", "GB"]
    assert server.hits == ["/deposit/CITEseq_example.rda"] and len(read) == 1
    assert read[0].endswith("citeseq_eccite_pbmc_citefuse/sources/CITEseq_example.rda")
    ds.eccite_pbmc()  # both files built at once, then cached
    assert len(server.hits) == 1 and len(read) == 1
