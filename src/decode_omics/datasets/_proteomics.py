"""Loaders for public single-cell proteomics data: murine cell lines on two platforms, T-SCP cell-cycle stages."""

from __future__ import annotations

import os
from typing import Literal

import pandas as pd
from anndata import AnnData
from anndata.utils import make_index_unique

from ._paths import (
    _categorical,
    _check_choice,
    _dense32,
    _describe,
    _file,
    _read_h5ad,
)

# --------------------------------------------------------------------------------------------------------------------
# proteomics
# --------------------------------------------------------------------------------------------------------------------
_MURINE_PLATFORMS = {
    "N2": "normalised log-ratios (range -4.26 to 3.44, no NaN)",
    "nanoPOTS": "z-scores per protein (range -3.7 to 4.53; 6,446 NaN = missing, kept)",
}


def murine_cellline_proteomics(
    platform: Literal["N2", "nanoPOTS"] = "N2",
    *,
    path: str | os.PathLike | None = None,
) -> AnnData:
    """Single-cell proteomics of three murine cell lines (C10, RAW 264.7, SVEC) on two mass-spectrometry platforms.

    From scpDeconv: Wang F. et al. (2023) "Deep domain adversarial neural network for the deconvolution of cell type
    mixtures in tissue proteome profiling", Nat Mach Intell; files of github.com/TencentAILabHealthcare/scpDeconv
    ``data/murine_cellline/``. Licence: no licence file, "All rights reserved" by Tencent AI Lab: research-use
    reference data, not for redistribution.

    - ``"N2"``: 108 cells x 1,068 proteins (C10 36, RAW 36, SVEC 36); values are normalised **log-ratios**
      (-4.26 to 3.44, no NaN).
    - ``"nanoPOTS"``: 61 cells x 1,225 proteins (C10 19, RAW 22, SVEC 20); values are **z-scores** (-3.7 to 4.53),
      with 6,446 NaN (missing values, kept as NaN).

    Values are returned as stored (float32); neither scale is linear abundance, so mixtures built from them are not
    physical mixtures. In scpDeconv's demo N2 is the reference and nanoPOTS the (pseudo-bulk) target.

    Parameters
    ----------
    platform
        ``"N2"`` or ``"nanoPOTS"``.
    path
        Local data folder, the only place read when given (see :func:`data_dir`); the files read are
        ``scp_murine_cellline/murine_<platform>_SCP.h5ad`` and ``murine_<platform>_SCP_meta.csv``. Without it, the files
        come from ``$DECODE_OMICS_DATA``, ``../shared/data`` or the download cache (:func:`cache_dir`), or are
        downloaded from github.com/TencentAILabHealthcare/scpDeconv and checked against their SHA-256
        (:func:`registry`).

    Returns
    -------
    Cells x proteins (UniProt IDs) :class:`~anndata.AnnData`; ``obs["cell_type"]`` (categorical ``C10``, ``RAW``,
    ``SVEC``) from the meta CSV, plus its columns as stored (``CellType``; N2 also ``Batch``, ``Channel``); ``var``
    as stored (protein names).
    """
    platform = _check_choice("platform", platform, tuple(_MURINE_PLATFORMS))
    raw = _read_h5ad(_file("scp_murine_cellline", f"murine_{platform}_SCP.h5ad", path))
    meta = pd.read_csv(_file("scp_murine_cellline", f"murine_{platform}_SCP_meta.csv", path), index_col=0)
    meta.index = meta.index.astype(str)
    names = raw.obs_names.astype(str)
    if set(meta.index) != set(names):
        raise ValueError(f"murine {platform}: the meta CSV and the h5ad hold different cells")
    obs = meta.loc[names].copy()
    obs.index.name = None
    obs["CellType"] = _categorical(obs["CellType"])
    obs["cell_type"] = obs["CellType"].copy()
    var = raw.var.copy()
    var.index = var.index.astype(str).rename(None)
    adata = AnnData(_dense32(raw.X), obs=obs, var=var)
    _describe(adata, f"murine_cellline_{platform}", "scp_murine_cellline", _MURINE_PLATFORMS[platform])
    return adata


def tscp_cellcycle(*, path: str | os.PathLike | None = None) -> AnnData:
    """T-SCP single-cell proteomics of HeLa cells with experimentally defined cell-cycle stages.

    225 cells x 1,810 proteins (UniProt IDs), stages G1 87, G2 52, G2-M 45, G1-S 41 (cells arrested by drug
    treatment, not inferred). The file is ``downstream_application/cell_cycle_analysis/data/T-SCP.h5ad`` of the
    scPROTEIN repository (github.com/TencentAILabHealthcare/scPROTEIN, licence Apache-2.0). The T-SCP measurements
    are, per the data folder's MANIFEST (not re-verified there), from Brunner A.-D. et al. (2022), Mol Syst Biol
    (HeLa cells arrested at cell-cycle stages by drug treatment).

    Values are kept as stored: **log1p-transformed intensities** (0 to 14.9; 28 % zeros, which are missing values,
    not measured zeros). Two UniProt IDs occur twice with different values (P07951, Q15149); the names are made
    unique (``P07951-1`` ...) and the stored ID is kept in ``var["protein_id"]``.

    Parameters
    ----------
    path
        Local data folder, the only place read when given (see :func:`data_dir`); the file read is
        ``scp_cellcycle_tscp/T-SCP.h5ad``. Without it, the files come from ``$DECODE_OMICS_DATA``, ``../shared/data`` or
        the download cache (:func:`cache_dir`), or are downloaded from github.com/TencentAILabHealthcare/scPROTEIN and
        checked against their SHA-256 (:func:`registry`).

    Returns
    -------
    Cells x proteins :class:`~anndata.AnnData` (``X`` dense float32); ``obs["stage"]`` the cell-cycle stage
    (categorical ``G1``, ``G1-S``, ``G2``, ``G2-M``), ``obs["cell_cycle"]`` the original column, ``obs["n_genes"]``;
    ``var["protein_id"]``, ``var["n_cells"]``; ``uns["log1p"]`` as stored.
    """
    raw = _read_h5ad(_file("scp_cellcycle_tscp", "T-SCP.h5ad", path))
    obs = raw.obs.copy()
    obs.index = obs.index.astype(str).rename(None)
    obs["cell_cycle"] = _categorical(obs["cell_cycle"])
    obs["stage"] = obs["cell_cycle"].copy()
    var = raw.var.copy()
    var.index = var.index.astype(str).rename(None)
    var.insert(0, "protein_id", var.index.to_numpy())
    var.index = make_index_unique(var.index)
    adata = AnnData(_dense32(raw.X), obs=obs, var=var, uns={"log1p": dict(raw.uns.get("log1p", {}))})
    _describe(adata, "tscp_cellcycle", "scp_cellcycle_tscp", "log1p intensities; zeros are missing values")
    return adata
