"""Loader for public paired RNA + surface-protein data (ECCITE-seq PBMC) as a MuData."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from anndata import AnnData
from anndata.utils import make_index_unique

if TYPE_CHECKING:
    from mudata import MuData

from ._paths import (
    _csr32,
    _describe,
    _file,
    _read_h5ad,
)

# --------------------------------------------------------------------------------------------------------------------
# multi-omics: ECCITE-seq
# --------------------------------------------------------------------------------------------------------------------
_HTO_COLUMNS = ("HTO_HTO28_5P", "HTO_HTO29_5P", "HTO_HTO30_5P", "HTO_HTO44_5P")


def eccite_pbmc(*, path: str | os.PathLike | None = None, strip_genome_prefix: bool = False) -> MuData:
    """500 PBMC with RNA and 49 surface proteins (ADT) measured in the same cells (ECCITE-seq).

    The PBMC control sample of Mimitou E.P. et al. (2019), Nat Methods 16:409 (GEO GSE126310), as subset in the
    CiteFuse R package (``data/CITEseq_example.rda`` of github.com/SydneyBioX/CiteFuse; licence GPL-3). **No cell-type
    labels** are provided (derive them, e.g. by ADT gating). The 4 hashtag (HTO) counts are in ``obs`` of both
    modalities and of the MuData.

    The RNA gene names are stored with an ``hg19_`` prefix (``hg19_CD4``); they are kept by default, which keeps the
    feature names unique across the two modalities, and the plain symbols are in ``mdata["rna"].var["gene_symbol"]``.
    15 markers have the same name in both modalities once the prefix is removed (CCR7, CD14, CD19, CD2, CD24, CD27,
    CD28, CD34, CD4, CD44, CD5, CD69, CD7, CTLA4, LAMP1).

    Parameters
    ----------
    path
        Local data folder, the only place read when given (see :func:`data_dir`); the files read are
        ``citeseq_eccite_pbmc_citefuse/eccite_pbmc_RNA.h5ad`` and ``eccite_pbmc_ADT.h5ad``. Without it, the files come
        from ``$DECODE_OMICS_DATA``, ``../shared/data`` or the download cache (:func:`cache_dir`). They were converted
        from an R list of github.com/SydneyBioX/CiteFuse: when missing, ``data/CITEseq_example.rda`` is downloaded
        into the cache (SHA-256 checked) and the h5ad files are built from it with ``rdata``.
    strip_genome_prefix
        Use the plain gene symbols (without ``hg19_``) as RNA ``var_names``. The MuData's feature names are then not
        unique across modalities (see above; mudata warns about it).

    Returns
    -------
    :class:`~mudata.MuData` with modalities ``"rna"`` (500 x 19,521 genes; ``var["gene_symbol"]``) and ``"prot"``
    (500 x 49 proteins, e.g. ``CD11b``, ``CCR7``, ``B220 (CD45R)``; ``var["isotype_control"]`` flags ``IgG1`` and
    ``IgG2a``) on the same cells; ``X`` raw UMI counts as float32 CSR.
    """
    import mudata

    rna_raw = _read_h5ad(_file("citeseq_eccite_pbmc_citefuse", "eccite_pbmc_RNA.h5ad", path))
    prot_raw = _read_h5ad(_file("citeseq_eccite_pbmc_citefuse", "eccite_pbmc_ADT.h5ad", path))
    if not rna_raw.obs_names.equals(prot_raw.obs_names):
        raise ValueError("ECCITE-seq: the RNA and ADT files hold different cells")
    cells = pd.Index(rna_raw.obs_names.astype(str), name=None)
    hto = rna_raw.obs[list(_HTO_COLUMNS)].astype(np.float32)
    hto.index = cells

    rna_var = pd.DataFrame(index=pd.Index(rna_raw.var_names.astype(str), name=None))
    rna_var["gene_symbol"] = rna_var.index.str.replace(r"^hg19_", "", regex=True)
    if strip_genome_prefix:
        rna_var.index = make_index_unique(pd.Index(rna_var["gene_symbol"], name=None))
    rna = AnnData(_csr32(rna_raw.X), obs=hto.copy(), var=rna_var)
    prot_var = pd.DataFrame(index=pd.Index(prot_raw.var_names.astype(str), name=None))
    prot_var["isotype_control"] = prot_var.index.str.match(r"^Ig[GMA]")
    prot = AnnData(_csr32(prot_raw.X), obs=hto.copy(), var=prot_var)

    with mudata.set_options(pull_on_update=False):
        mdata = mudata.MuData({"rna": rna, "prot": prot})
    mdata.obs = hto.copy()
    _describe(mdata, "eccite_pbmc", "citeseq_eccite_pbmc_citefuse", "raw UMI counts (RNA, ADT)")
    return mdata
