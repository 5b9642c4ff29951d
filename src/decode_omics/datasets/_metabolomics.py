"""Loaders for public metabolomics data: DECODE's bone-marrow single cells, kidney cell lines and tissues."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from anndata import AnnData
from anndata.utils import make_index_unique

from ._paths import (
    _categorical,
    _dense32,
    _describe,
    _file,
    _read_h5ad,
)


# --------------------------------------------------------------------------------------------------------------------
# metabolomics
# --------------------------------------------------------------------------------------------------------------------
def bone_marrow_metabolomics(*, path: str | os.PathLike | None = None, merge_hsc: bool = True) -> AnnData:
    """Single-cell metabolomics of 12 mouse bone-marrow cell types: the DECODE paper's own metabolomics example.

    1,428 cells x 107 metabolite peaks (m/z features; ``var_names`` are integers as strings): B 143, GMP 140,
    CMP 134, Myeloid 130, HSC (catulin+) 127, Erythroid 124, CLP 117, MEP 116, T 116, HSC (catulin-) 114, MPP 92,
    HPC 75. File ``data/bone_marrow_mb/bone_marrow.h5ad`` of github.com/forceworker/DECODE (Zhao T. et al.,
    "DECODE: deep learning-based common deconvolution framework for various omics data", Nat Methods 23:596-608,
    2026). Licence: the repository has no licence file; research-use test data, not for redistribution.

    Values are kept as stored (float32): **raw, background-subtracted intensities** (-12,901 to 79,910, 8.96 %
    negative, no NaN). The paper's protocol sets negatives (and NaN) to 0 before mixing, merges the two HSC
    populations into ``HSC`` and uses the five types of :data:`BONE_MARROW_PROTOCOL_TYPES` (653 cells), with HSC as
    the held-out "unknown" type; it reports CCC 0.808 on its 1,000 test mixtures.

    The stored cell names are the cell types, so they are made unique (as ``obs_names_make_unique``: ``B``, ``B-1``,
    ...).

    Parameters
    ----------
    path
        Local data folder, the only place read when given (see :func:`data_dir`); the file read is
        ``scm_bone_marrow_decode/bone_marrow.h5ad``. Without it, the files come from ``$DECODE_OMICS_DATA``,
        ``../shared/data`` or the download cache (:func:`cache_dir`), or are downloaded from
        github.com/forceworker/DECODE and checked against their SHA-256 (:func:`registry`).
    merge_hsc
        Merge ``HSC (catulin+)`` and ``HSC (catulin-)`` into ``HSC`` in ``obs["cell_type"]`` (11 types instead of
        12), as the paper does.

    Returns
    -------
    Cells x peaks :class:`~anndata.AnnData`; ``obs["cell_type"]`` the label to use (categorical, HSC merged when
    ``merge_hsc``) and ``obs["CellType"]`` the 12 labels as stored.
    """
    raw = _read_h5ad(_file("scm_bone_marrow_decode", "bone_marrow.h5ad", path))
    obs = pd.DataFrame(index=make_index_unique(pd.Index(raw.obs_names.astype(str), name=None)))
    obs["CellType"] = _categorical(raw.obs["CellType"].to_numpy())
    labels = obs["CellType"].astype(str)
    if merge_hsc:
        labels = labels.replace({"HSC (catulin+)": "HSC", "HSC (catulin-)": "HSC"})
    obs["cell_type"] = _categorical(labels.to_numpy())
    var = pd.DataFrame(index=pd.Index(raw.var_names.astype(str), name=None))
    adata = AnnData(_dense32(raw.X), obs=obs, var=var)
    scale = "raw background-subtracted intensities (8.96 % negative)"
    _describe(adata, "bone_marrow_metabolomics", "scm_bone_marrow_decode", scale)
    return adata


_KIDNEY_CELL_LINES = ("HK2", "786-O", "786-M1A", "786-M2A")
_KIDNEY_INTERNAL_STANDARDS = ("valine-d8", "hippuric acid-d5")
_TISSUE_CITATION = "Hakimi A.A. et al. (2016) Cancer Cell (Supplementary Table 2), via MetaProViz"


def kidney_metabolomics(*, path: str | os.PathLike | None = None, include_qc: bool = True) -> AnnData:
    """Intracellular LC-MS metabolomics of four kidney cell lines, with pooled QC samples.

    Four lines (HK2, kidney proximal tubule; ccRCC lines 786-O, 786-M1A, 786-M2A) x 3 biological x 4 analytical
    replicates (48 samples) + 10 ``Pool`` samples, x 182 metabolites (incl. the deuterated internal standards
    valine-d8 and hippuric acid-d5). Data set ``intracell_raw`` of the MetaProViz R package
    (github.com/saezlab/MetaProViz ``data/intracell_raw.rda``; Metabolomics Workbench PR001418 / ST002224;
    Nat Commun 2022, doi:10.1038/s41467-022-35036-4). Licence: BSD-3-Clause per the package DESCRIPTION (the R
    source headers say GPLv3; check before redistribution).

    Values are kept as stored: **raw integrated peak areas** (linear scale, no NaN), as float32.

    The ``Pool`` samples are presumably pooled QC extracts of the study samples (a physical mixture), but the
    pooling scheme is not documented, so any composition assigned to them is an assumption. They are **kept**
    with ``obs["is_qc"] == True`` and ``obs["cell_line"]`` NaN unless ``include_qc=False``; for them the file's
    ``Biological_Replicates`` numbers the pool injections (1-10) and ``Analytical_Replicates`` is empty.

    Parameters
    ----------
    path
        Local data folder, the only place read when given (see :func:`data_dir`); the file read is
        ``metaboprofiles_kidney_metaproviz/intracell_raw.csv.gz``. Without it, the files come from
        ``$DECODE_OMICS_DATA``, ``../shared/data`` or the download cache (:func:`cache_dir`). It was converted from an
        R data frame of github.com/saezlab/MetaProViz: when missing, ``data/intracell_raw.rda`` is downloaded into the
        cache (SHA-256 checked) and the CSV file is built from it with ``rdata``.
    include_qc
        Keep the 10 pooled QC samples (default); ``False`` drops them (48 samples remain).

    Returns
    -------
    Samples x metabolites :class:`~anndata.AnnData` (``obs_names`` the sample codes, e.g. ``MS55_01``, ``POOL0``);
    ``obs["condition"]`` as stored (``HK2``, ``786-O``, ``786-M1A``, ``786-M2A``, ``Pool``), ``obs["cell_line"]``
    (categorical, NaN for Pool), ``obs["biological_replicate"]`` and ``obs["analytical_replicate"]`` (nullable
    integers), ``obs["is_qc"]``; ``var["internal_standard"]`` flags the two deuterated standards.
    """
    d = pd.read_csv(_file("metaboprofiles_kidney_metaproviz", "intracell_raw.csv.gz", path))
    d = d.set_index("Code")
    d.index = d.index.astype(str).rename(None)
    info_cols = ["Conditions", "Analytical_Replicates", "Biological_Replicates"]
    X = d.drop(columns=info_cols)
    condition = d["Conditions"].astype(str).str.strip()
    is_qc = condition.str.lower() == "pool"
    unknown = set(condition[~is_qc]) - set(_KIDNEY_CELL_LINES)
    if unknown:
        raise ValueError(f"kidney metabolomics: unexpected conditions {sorted(unknown)}")
    obs = pd.DataFrame(index=d.index)
    obs["condition"] = _categorical(condition, (*_KIDNEY_CELL_LINES, "Pool"))
    obs["cell_line"] = _categorical(condition.where(~is_qc), _KIDNEY_CELL_LINES)
    obs["biological_replicate"] = d["Biological_Replicates"].round().astype("Int64")
    obs["analytical_replicate"] = d["Analytical_Replicates"].round().astype("Int64")
    obs["is_qc"] = is_qc.to_numpy()
    var = pd.DataFrame(index=pd.Index(X.columns.astype(str), name=None))
    var["internal_standard"] = var.index.isin(_KIDNEY_INTERNAL_STANDARDS)
    adata = AnnData(X.to_numpy(dtype=np.float32), obs=obs, var=var)
    if not include_qc:
        adata = adata[~adata.obs["is_qc"].to_numpy()].copy()
    scale = "raw integrated LC-MS peak areas (linear)"
    _describe(adata, "kidney_metabolomics", "metaboprofiles_kidney_metaproviz", scale)
    return adata


_TISSUE_CLINICAL = (
    "CLIENT_IDENTIFIER",
    "TISSUE_TYPE",
    "MATCHING_INDEX",
    "GENDER",
    "RACE",
    "AGE_AT_SURGERY",
    "PATHSTAGET_1",
    "TYPE-STAGE",
    "PATHSTAGEN_1",
    "PATHSTAGEM_1",
    "PATHGRADE1",
    "STAGE",
    "AGE",
)


def kidney_tissue_metabolomics(*, path: str | os.PathLike | None = None) -> AnnData:
    """Bulk metabolomics of 138 matched ccRCC tumour / normal kidney tissue pairs.

    276 samples x 570 metabolites, median-normalised, with clinical annotations: Supplementary Table 2 of Hakimi
    A.A. et al. (2016), Cancer Cell (ccRCC), as the data set ``tissue_norm`` of the MetaProViz R package
    (github.com/saezlab/MetaProViz ``data/tissue_norm.rda``). Licence: BSD-3-Clause per the package DESCRIPTION
    (check before redistribution). No cell-type fractions exist for these samples.

    Parameters
    ----------
    path
        Local data folder, the only place read when given (see :func:`data_dir`); the file read is
        ``metaboprofiles_kidney_metaproviz/tissue_norm.csv.gz``. Without it, the files come from ``$DECODE_OMICS_DATA``,
        ``../shared/data`` or the download cache (:func:`cache_dir`). It was converted from an R data frame of
        github.com/saezlab/MetaProViz: when missing, ``data/tissue_norm.rda`` is downloaded into the cache (SHA-256
        checked) and the CSV file is built from it with ``rdata``.

    Returns
    -------
    Samples x metabolites :class:`~anndata.AnnData` (``X`` float32, median-normalised ratios, no NaN); ``obs`` the
    clinical columns as stored plus ``obs["tissue_type"]`` (categorical ``NORMAL``/``TUMOR``) and
    ``obs["matching_index"]`` (the tumour/normal pair).
    """
    d = pd.read_csv(_file("metaboprofiles_kidney_metaproviz", "tissue_norm.csv.gz", path))
    d = d.set_index("Code")
    d.index = d.index.astype(str).rename(None)
    missing = set(_TISSUE_CLINICAL) - set(d.columns)
    if missing:
        raise ValueError(f"kidney tissue metabolomics: clinical columns missing: {sorted(missing)}")
    obs = d[list(_TISSUE_CLINICAL)].copy()
    for col in obs.columns:
        if obs[col].dtype == object:
            obs[col] = _categorical(obs[col])
    obs["tissue_type"] = _categorical(d["TISSUE_TYPE"], ("NORMAL", "TUMOR"))
    obs["matching_index"] = d["MATCHING_INDEX"].round().astype("Int64")
    X = d.drop(columns=list(_TISSUE_CLINICAL))
    adata = AnnData(X.to_numpy(dtype=np.float32), obs=obs, var=pd.DataFrame(index=X.columns.astype(str)))
    scale, citation = "median-normalised metabolite levels (linear ratios)", _TISSUE_CITATION
    _describe(adata, "kidney_tissue_metabolomics", "metaboprofiles_kidney_metaproviz", scale, citation=citation)
    return adata
