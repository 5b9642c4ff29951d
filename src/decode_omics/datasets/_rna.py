"""Loaders for public RNA data: the sorted-PBMC 10x reference, real PBMC bulk with flow cytometry, CellBench."""

from __future__ import annotations

import os
from typing import Literal

import numpy as np
import pandas as pd
from anndata import AnnData

from ._paths import (
    CELLBENCH_CELL_LINES,
    PBMC_BROAD_LABELS,
    PBMC_BROAD_TYPES,
    _categorical,
    _check_choice,
    _csr32,
    _describe,
    _file,
    _read_h5ad,
)


# --------------------------------------------------------------------------------------------------------------------
# transcriptomics: PBMC
# --------------------------------------------------------------------------------------------------------------------
def pbmc_sorted_10x(*, path: str | os.PathLike | None = None) -> AnnData:
    """10x single-cell RNA reference of FACS-sorted PBMC populations (raw UMI counts).

    2,140 cells x 8,863 genes, subsampled and gene-filtered by the MUDAN author from the purified PBMC populations of
    Zheng G.X.Y. et al. (2017) "Massively parallel digital transcriptional profiling of single cells", Nat Commun
    8:14049 (10x Genomics public data sets). Copied from github.com/JEFworks/MUDAN (``data/referenceCounts.rda``,
    ``data/referenceAnnot.rda``); licence GPL-3. Labels are the sorted population each cell came from (nk 769,
    bcells 330, memoryt 252, regulatoryt 226, thelper 191, cytotoxict 148, monocytes 129, naivet 52,
    naivecytotoxic 43); there are no DCs and no CD34+ cells.

    Parameters
    ----------
    path
        Local data folder, the only place read when given (see :func:`data_dir`); the file read is
        ``pbmc_sorted_10x_mudan/pbmc_sorted_10x_ref.h5ad``. Without it, the files come from ``$DECODE_OMICS_DATA``,
        ``../shared/data`` or the download cache (:func:`cache_dir`). It was converted from R objects of
        github.com/JEFworks/MUDAN: when missing, ``data/referenceCounts.rda`` and ``data/referenceAnnot.rda`` are
        downloaded into the cache (SHA-256 checked) and the h5ad file is built from them with ``rdata``.

    Returns
    -------
    Cells x genes :class:`~anndata.AnnData`: ``X`` raw UMI counts (float32 CSR); ``obs["cell_type"]`` the sorted
    population (categorical, as published); ``obs["broad_type"]`` the broad label of :data:`PBMC_BROAD_LABELS`
    (categories ``B``, ``CD4T``, ``CD8T``, ``NK``, ``Mono``, the labels of ``pbmc_bulk(...).obsm["fractions"]``).
    """
    f = _file("pbmc_sorted_10x_mudan", "pbmc_sorted_10x_ref.h5ad", path)
    raw = _read_h5ad(f)
    cell_type = _categorical(raw.obs["cell_type"])
    unknown = set(cell_type.categories) - set(PBMC_BROAD_LABELS)
    if unknown:
        raise ValueError(f"{f}: cell types without a broad label: {sorted(unknown)}")
    obs = pd.DataFrame(index=pd.Index(raw.obs_names.astype(str), name=None))
    obs["cell_type"] = cell_type
    obs["broad_type"] = _categorical(obs["cell_type"].map(PBMC_BROAD_LABELS).astype(str), PBMC_BROAD_TYPES)
    adata = AnnData(_csr32(raw.X), obs=obs, var=pd.DataFrame(index=raw.var_names.astype(str).rename(None)))
    _describe(adata, "pbmc_sorted_10x", "pbmc_sorted_10x_mudan", "raw UMI counts")
    return adata


_PBMC_BULK = {
    "GSE107011": {
        "scale": "TPM-like (linear; column sums 0.83-0.93e6 after gene filtering)",
        "citation": "Monaco G. et al. (2019) Cell Reports 26:1627",
    },
    "GSE107572": {
        "scale": "integer read counts (linear)",
        "citation": "Finotello F. et al. (2019) Genome Medicine 11:34",
    },
}
_PBMC_FLOW_COLUMNS = {
    "Bcells": "B",
    "CD4Tcells": "CD4T",
    "CD8Tcells": "CD8T",
    "NK": "NK",
    "Monocytes": "Mono",
    "Unknown": "Unknown",
}


def pbmc_bulk(
    cohort: Literal["GSE107011", "GSE107572"] = "GSE107011",
    *,
    path: str | os.PathLike | None = None,
    fine_fractions: bool = False,
) -> AnnData:
    """Real PBMC bulk RNA-seq with flow-cytometry ground truth.

    - ``"GSE107011"``: Monaco G. et al. (2019) "RNA-Seq signatures normalized by mRNA abundance allow absolute
      deconvolution of human immune cell types", Cell Reports 26:1627 (S13 cohort); 12 samples x 36,128 genes,
      TPM-like. Flow fractions rows sum to 1 (``Unknown`` holds the rest of PBMC).
    - ``"GSE107572"``: Finotello F. et al. (2019) "Molecular and pharmacological modulators of the tumor immune
      contexture revealed by deconvolution of RNA-seq data" (quanTIseq), Genome Medicine 11:34; 9 samples x 19,423
      genes, integer read counts. Flow fraction rows sum to 0.88-1.00 (Tregs, DCs and neutrophils are outside the
      6 classes). Sample names are kept as published (some end in ``_merged_1.fastq``).

    Both were converted from github.com/SergejRuff/QuasarDeconData (``data/GSE107011.rda``, ``data/GSE107572.rda``;
    licence GPL-3; the underlying data are the public GEO series).

    Duplicated gene symbols, if any, are **summed** (there are none in the current files); the first Ensembl ID of
    each symbol is kept.

    Parameters
    ----------
    cohort
        ``"GSE107011"`` or ``"GSE107572"``.
    path
        Local data folder, the only place read when given (see :func:`data_dir`); the files read are
        ``pbmc_flow_quasar/<cohort>_bulk.csv.gz`` and ``pbmc_flow_quasar/<cohort>_ground_truth.csv``. Without it, the
        files come from ``$DECODE_OMICS_DATA``, ``../shared/data`` or the download cache (:func:`cache_dir`). They were
        converted from R objects of github.com/SergejRuff/QuasarDeconData: when missing, that ``.rda`` file is
        downloaded into the cache (SHA-256 checked) and the CSV files are built from it with ``rdata``. The
        ``monaco2019_pbmc`` table of ``fine_fractions`` is downloaded when missing.
    fine_fractions
        Also load the 29 fine flow-cytometry populations of Monaco et al. 2019 (Table S6; folder
        ``monaco2019_pbmc``, percent / 100) into ``obsm["fractions_fine"]``. Only for ``"GSE107011"``.

    Returns
    -------
    Samples x genes :class:`~anndata.AnnData`: ``X`` float32 on the linear scale (TPM for GSE107011, counts for
    GSE107572); ``var["ensembl_id"]`` (GSE107011 only); ``obsm["fractions"]`` the flow-cytometry fractions, a
    DataFrame with columns ``B``, ``CD4T``, ``CD8T``, ``NK``, ``Mono``, ``Unknown`` (renamed from ``Bcells``,
    ``CD4Tcells``, ``CD8Tcells``, ``NK``, ``Monocytes``, ``Unknown``).
    """
    cohort = _check_choice("cohort", cohort, tuple(_PBMC_BULK))
    if fine_fractions and cohort != "GSE107011":
        raise ValueError("fine_fractions=True is only available for cohort='GSE107011' (Monaco et al. 2019).")
    bulk = pd.read_csv(_file("pbmc_flow_quasar", f"{cohort}_bulk.csv.gz", path), index_col=0)
    truth = pd.read_csv(_file("pbmc_flow_quasar", f"{cohort}_ground_truth.csv", path), index_col=0)

    ensembl = bulk.pop("ensembl_ids").astype(str) if "ensembl_ids" in bulk.columns else None
    bulk.index = bulk.index.astype(str)
    if bulk.index.has_duplicates:
        if ensembl is not None:
            ensembl = ensembl.groupby(level=0, sort=False).first()
        bulk = bulk.groupby(level=0, sort=False).sum()
    samples = bulk.columns.astype(str)

    missing = set(_PBMC_FLOW_COLUMNS) - set(truth.columns)
    if missing:
        raise ValueError(f"{cohort} ground truth lacks the columns {sorted(missing)}; found {list(truth.columns)}")
    truth = truth[list(_PBMC_FLOW_COLUMNS)].rename(columns=_PBMC_FLOW_COLUMNS)
    truth.index = truth.index.astype(str)
    if set(truth.index) != set(samples):
        raise ValueError(f"{cohort}: the ground-truth samples differ from the bulk samples")
    truth = truth.loc[samples].astype(float)
    truth.index.name = None
    truth.columns.name = None

    var = pd.DataFrame(index=pd.Index(bulk.index, name=None))
    if ensembl is not None:
        var["ensembl_id"] = ensembl.loc[bulk.index].to_numpy()
    obs = pd.DataFrame(index=pd.Index(samples, name=None))
    obs["cohort"] = pd.Categorical([cohort] * len(samples))
    adata = AnnData(bulk.T.to_numpy(dtype=np.float32), obs=obs, var=var)
    adata.obsm["fractions"] = truth

    if fine_fractions:
        flow = pd.read_csv(
            _file("monaco2019_pbmc", "flow_cytometry_true_cell_type_proportions_s13.csv", path), index_col=0
        )
        flow.index = flow.index.astype(str)
        fine = flow.iloc[:, :29].reindex(samples) / 100.0
        if fine.isna().any().any():
            raise ValueError("monaco2019_pbmc: the fine flow table does not cover every GSE107011 sample")
        fine.index.name = None
        adata.obsm["fractions_fine"] = fine

    about = _PBMC_BULK[cohort]
    _describe(adata, f"pbmc_bulk_{cohort}", "pbmc_flow_quasar", about["scale"], citation=about["citation"])
    return adata


# --------------------------------------------------------------------------------------------------------------------
# transcriptomics: CellBench lung cancer lines
# --------------------------------------------------------------------------------------------------------------------
_CELLBENCH_MIXTURES = (
    "RNAmix_celseq2",
    "RNAmix_sortseq",
    "cellmix1",
    "cellmix2",
    "cellmix3",
    "cellmix4",
    "cellmix5",
)
_CELLBENCH_PROTOCOLS = ("celseq2", "dropseq")
# RNAmix design column -> the cell line whose RNA the wells really hold (H2228 and HCC827 are exchanged; see
# cellbench_mixtures).
_RNAMIX_DESIGN_TO_LINE = {"H1975_prop": "H1975", "H2228_prop": "HCC827", "HCC827_prop": "H2228"}
_YES_NO = {"YES": True, "NO": False}


def _ercc_var(genes: pd.Index) -> pd.DataFrame:
    var = pd.DataFrame(index=genes)
    var["ercc"] = genes.str.startswith("ERCC-")
    return var


def _read_cellbench(name: str, path, drop_ercc: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    counts = pd.read_csv(_file("cellbench_lung_mixtures", f"{name}.count.csv.gz", path), index_col=0)
    meta = pd.read_csv(_file("cellbench_lung_mixtures", f"{name}.metadata.csv.gz", path), index_col=0)
    counts.columns = counts.columns.astype(str)
    meta.index = meta.index.astype(str)
    if not counts.columns.equals(meta.index):
        raise ValueError(f"CellBench {name}: the count columns differ from the metadata rows")
    counts.index = counts.index.astype(str).rename(None)
    if drop_ercc:
        counts = counts.loc[~counts.index.str.startswith("ERCC-")]
    meta.index.name = None
    for col in ("poor_quality", "traj"):
        if col in meta.columns:
            meta[col] = meta[col].astype(str).str.upper().map(_YES_NO).astype("boolean")
    if "outliers" in meta.columns:
        meta["outliers"] = (
            meta["outliers"].astype(str).str.upper().map({"TRUE": True, "FALSE": False}).astype("boolean")
        )
    return counts, meta


def cellbench_mixtures(
    mixture: Literal[
        "RNAmix_celseq2", "RNAmix_sortseq", "cellmix1", "cellmix2", "cellmix3", "cellmix4", "cellmix5"
    ] = "RNAmix_celseq2",
    *,
    path: str | os.PathLike | None = None,
    drop_ercc: bool = False,
) -> AnnData:
    """CellBench physical mixtures of three lung adenocarcinoma lines (H1975, H2228, HCC827) with known composition.

    From Tian L. et al. (2019) "Benchmarking single cell RNA-sequencing analysis pipelines using mixture control
    experiments", Nat Methods 16:479 (GEO GSE118767); the CSVs of github.com/LuyiTian/sc_mixology ``data/csv/``
    (MIT licence). Counts are integer UMI counts of low-input wells, not tissue-scale bulk:

    - ``"RNAmix_celseq2"`` (340 wells x 14,804 genes, CEL-seq2) and ``"RNAmix_sortseq"`` (296 x 15,571, SORT-seq):
      each well holds 3.75-30 pg of **pure RNA mixed** from the three lines in 7 designs (1/0/0 x3,
      0.68/0.16/0.16 x3, 1/3 each).
    - ``"cellmix1"`` ... ``"cellmix4"`` (266-288 wells): wells of 9 sorted cells (a few of 3), in varying numbers
      per line; ``"cellmix5"`` (21 wells x 29,858 genes): wells of 90 cells.

    **H2228 and HCC827 are exchanged in the published RNAmix design columns**: the wells whose design says pure
    ``H2228_prop == 1`` match the HCC827 single cells and vice versa, in both single-cell references (the pure
    wells' mean profile correlates best with the other line's cells). This loader applies the correction: the truth
    column ``H2228`` is the published ``HCC827_prop`` and ``HCC827`` is the published ``H2228_prop`` (``H1975``
    unchanged). The design as published is kept in
    ``obsm["design_as_published"]``; say so in any table that uses these mixtures. The cellmix wells were checked the
    same way (pure wells vs. the references) and are **not** exchanged: their per-line cell counts are used as
    published.

    Parameters
    ----------
    mixture
        One of ``"RNAmix_celseq2"``, ``"RNAmix_sortseq"``, ``"cellmix1"``-``"cellmix5"``.
    path
        Local data folder, the only place read when given (see :func:`data_dir`); the files read are
        ``cellbench_lung_mixtures/<mixture>.count.csv.gz`` and ``<mixture>.metadata.csv.gz``. Without it, the files come
        from ``$DECODE_OMICS_DATA``, ``../shared/data`` or the download cache (:func:`cache_dir`), or are downloaded
        from github.com/LuyiTian/sc_mixology and checked against their SHA-256 (:func:`registry`).
    drop_ercc
        Drop the ERCC spike-in rows (``var["ercc"]``; 16-44 per file), which are not cell-line specific.

    Returns
    -------
    Wells x genes :class:`~anndata.AnnData`: ``X`` dense float32 counts, ``var_names`` Ensembl gene IDs plus ERCC
    spike-ins (flagged in ``var["ercc"]``); ``obs`` the published QC metadata (``outliers``, ``poor_quality``,
    ``traj`` as booleans); ``obsm["fractions"]`` the true composition, a DataFrame with columns ``H1975``,
    ``H2228``, ``HCC827`` (the labels of :func:`cellbench_reference`) and rows summing to 1 (RNAmix: the corrected
    design renormalised, so the published 0.33/0.33/0.33 becomes 1/3 each; cellmix: cell counts / cells per well).
    RNAmix also has ``obsm["design_as_published"]`` (the original ``H2228_prop``, ``H1975_prop``, ``HCC827_prop``);
    cellmix has ``obsm["cell_counts"]`` (cells of each line per well).
    """
    mixture = _check_choice("mixture", mixture, _CELLBENCH_MIXTURES)
    counts, meta = _read_cellbench(mixture, path, drop_ercc)
    lines = list(CELLBENCH_CELL_LINES)
    obsm: dict[str, pd.DataFrame] = {}
    if mixture.startswith("RNAmix"):
        design = meta[[c for c in meta.columns if c in _RNAMIX_DESIGN_TO_LINE]].astype(float)  # published order
        corrected = design.rename(columns=_RNAMIX_DESIGN_TO_LINE)[lines]
        fractions = corrected.div(corrected.sum(axis=1), axis=0)
        obsm["design_as_published"] = design
        meta = meta.drop(columns=list(_RNAMIX_DESIGN_TO_LINE))
    else:
        cells = meta[lines].astype(int)
        fractions = cells.div(cells.sum(axis=1), axis=0).astype(float)
        obsm["cell_counts"] = cells
        meta = meta.drop(columns=lines)
    fractions.columns.name = None
    adata = AnnData(counts.T.to_numpy(dtype=np.float32), obs=meta, var=_ercc_var(counts.index), obsm=obsm)
    adata.obsm["fractions"] = fractions
    note = (
        "RNAmix truth: H2228 = published HCC827_prop, HCC827 = published H2228_prop (columns exchanged in the "
        "published design)"
    )
    scale = "integer UMI counts (low-input wells)"
    _describe(
        adata, f"cellbench_{mixture}", "cellbench_lung_mixtures", scale, note if mixture[:6] == "RNAmix" else None
    )
    return adata


def cellbench_reference(
    protocol: Literal["celseq2", "dropseq"] = "dropseq",
    *,
    path: str | os.PathLike | None = None,
    singlets_only: bool = False,
    drop_ercc: bool = False,
) -> AnnData:
    """CellBench single cells of the three lung adenocarcinoma lines H1975, H2228 and HCC827.

    From Tian L. et al. (2019) "Benchmarking single cell RNA-sequencing analysis pipelines using mixture control
    experiments", Nat Methods 16:479 (GEO GSE118767); the CSVs of github.com/LuyiTian/sc_mixology ``data/csv/``
    (MIT licence). ``"celseq2"``: 274 cells x 28,204 genes (H1975 114, H2228 81, HCC827 79); ``"dropseq"``: 225 cells
    x 15,127 genes (H1975 92, HCC827 68, H2228 65). The label is the published ``cell_line`` (demuxlet SNP-based
    genotype call), so it is independent of expression. A reference from one protocol against mixtures from another
    (:func:`cellbench_mixtures`) gives a real platform shift.

    Parameters
    ----------
    protocol
        ``"celseq2"`` or ``"dropseq"``.
    path
        Local data folder, the only place read when given (see :func:`data_dir`); the files read are
        ``cellbench_lung_mixtures/sc_<protocol>.count.csv.gz`` and ``sc_<protocol>.metadata.csv.gz``. Without it, the
        files come from ``$DECODE_OMICS_DATA``, ``../shared/data`` or the download cache (:func:`cache_dir`), or are
        downloaded from github.com/LuyiTian/sc_mixology and checked against their SHA-256 (:func:`registry`).
    singlets_only
        Keep only the cells demuxlet calls singlets (``demuxlet_cls == "SNG"``; drops 34 CEL-seq2 / 15 Drop-seq
        cells).
    drop_ercc
        Drop the ERCC spike-in rows (``var["ercc"]``; 62 in CEL-seq2, none in Drop-seq).

    Returns
    -------
    Cells x genes :class:`~anndata.AnnData`: ``X`` float32 CSR counts, ``var_names`` Ensembl gene IDs plus ERCC
    spike-ins (flagged in ``var["ercc"]``);
    ``obs["cell_line"]`` categorical (categories ``H1975``, ``H2228``, ``HCC827``) plus the published QC and
    demuxlet columns.
    """
    protocol = _check_choice("protocol", protocol, _CELLBENCH_PROTOCOLS)
    counts, meta = _read_cellbench(f"sc_{protocol}", path, drop_ercc)
    meta["cell_line"] = _categorical(meta["cell_line"], CELLBENCH_CELL_LINES)
    if meta["cell_line"].isna().any():
        raise ValueError(f"CellBench sc_{protocol}: unexpected cell lines in the metadata")
    for col in ("cell_line_demuxlet", "demuxlet_cls"):
        if col in meta.columns:
            meta[col] = _categorical(meta[col])
    adata = AnnData(_csr32(counts.T.to_numpy()), obs=meta, var=_ercc_var(counts.index))
    if singlets_only:
        adata = adata[(adata.obs["demuxlet_cls"] == "SNG").to_numpy()].copy()
    _describe(adata, f"cellbench_sc_{protocol}", "cellbench_lung_mixtures", "integer UMI counts")
    return adata
