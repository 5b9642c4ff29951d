"""Loaders for public real data sets kept on disk (``../shared/data`` next to the project, never in the package).

Every loader reads one folder of the shared data directory (see :func:`data_dir`), checks the shapes and labels it
relies on, and returns an :class:`~anndata.AnnData` (or :class:`~mudata.MuData`) with clean categorical labels and
``uns["dataset"]``: a small dict with the source, citation, licence and the scale of ``X``. Nothing is downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from anndata.utils import make_index_unique

if TYPE_CHECKING:
    from mudata import MuData

__all__ = [
    "BONE_MARROW_PROTOCOL_TYPES",
    "CELLBENCH_CELL_LINES",
    "PBMC_BROAD_LABELS",
    "PBMC_BROAD_TYPES",
    "bone_marrow_metabolomics",
    "cellbench_mixtures",
    "cellbench_reference",
    "data_dir",
    "eccite_pbmc",
    "kidney_metabolomics",
    "kidney_tissue_metabolomics",
    "murine_cellline_proteomics",
    "pbmc_bulk",
    "pbmc_sorted_10x",
    "tscp_cellcycle",
]

#: Environment variable naming the shared data folder (the folder that holds ``pbmc_flow_quasar/`` etc.).
DATA_ENV_VAR = "DECODE_OMICS_DATA"

#: Sorted population of :func:`pbmc_sorted_10x` -> broad label shared with the flow cytometry of :func:`pbmc_bulk`.
PBMC_BROAD_LABELS: dict[str, str] = {
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

#: The five broad PBMC labels, in the column order of ``pbmc_bulk(...).obsm["fractions"]``.
PBMC_BROAD_TYPES: tuple[str, ...] = ("B", "CD4T", "CD8T", "NK", "Mono")

#: The five bone-marrow types of the DECODE paper's metabolomics protocol (HSC is the held-out "unknown" type).
BONE_MARROW_PROTOCOL_TYPES: tuple[str, ...] = ("Erythroid", "T", "B", "GMP", "Myeloid")

#: The three lung adenocarcinoma lines of CellBench, in the column order of the mixture truth.
CELLBENCH_CELL_LINES: tuple[str, ...] = ("H1975", "H2228", "HCC827")

# Public source of each folder, quoted in the error raised when a file is missing.
_SOURCES: dict[str, str] = {
    "pbmc_sorted_10x_mudan": (
        "github.com/JEFworks/MUDAN data/referenceCounts.rda + data/referenceAnnot.rda "
        "(10x Genomics purified PBMC populations, Zheng et al. 2017)"
    ),
    "pbmc_flow_quasar": "github.com/SergejRuff/QuasarDeconData data/GSE107011.rda, data/GSE107572.rda (GEO GSE107011, "
    "GSE107572)",
    "monaco2019_pbmc": "Table S6 of Monaco et al. 2019 (github.com/LieberInstitute/deconvo_lute-paper "
    "cohort3/data/monaco_et_al_2019/manuscript/flow_cytometry_true_cell_type_proportions_s13.csv; GEO GSE107011)",
    "cellbench_lung_mixtures": "github.com/LuyiTian/sc_mixology data/csv/ (GEO GSE118767)",
    "scp_murine_cellline": "github.com/TencentAILabHealthcare/scpDeconv data/murine_cellline/",
    "scp_cellcycle_tscp": "github.com/TencentAILabHealthcare/scPROTEIN "
    "downstream_application/cell_cycle_analysis/data/T-SCP.h5ad",
    "scm_bone_marrow_decode": "github.com/forceworker/DECODE data/bone_marrow_mb/bone_marrow.h5ad",
    "metaboprofiles_kidney_metaproviz": "github.com/saezlab/MetaProViz data/intracell_raw.rda, data/tissue_norm.rda "
    "(Metabolomics Workbench PR001418 / ST002224)",
    "citeseq_eccite_pbmc_citefuse": "github.com/SydneyBioX/CiteFuse data/CITEseq_example.rda (GEO GSE126310)",
}


# --------------------------------------------------------------------------------------------------------------------
# locating files
# --------------------------------------------------------------------------------------------------------------------
def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The folder that holds the public data sets (one sub-folder per data set, each with a ``MANIFEST.md``).

    Resolved in this order: the ``path`` argument; else the environment variable ``DECODE_OMICS_DATA``; else
    ``../shared/data`` relative to the current working directory (the layout of the project, run from its root);
    else a ``shared/data`` folder found by walking up from this file (a ``shared/`` next to, or inside, the
    repository).

    Parameters
    ----------
    path
        Explicit data folder. Takes precedence over everything else.

    Returns
    -------
    The absolute path of the data folder.

    Raises
    ------
    FileNotFoundError
        When ``path`` or ``DECODE_OMICS_DATA`` names a folder that does not exist, or when neither is given and no
        ``shared/data`` folder is found.
    """
    if path is not None:
        return _existing_dir(Path(path), "the `path` argument")
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        return _existing_dir(Path(env), f"the environment variable {DATA_ENV_VAR}")
    candidates = [Path.cwd() / ".." / "shared" / "data"]
    candidates += [parent / "shared" / "data" for parent in Path(__file__).resolve().parents]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    tried = ", ".join(str(c) for c in candidates[:3]) + ", ..."
    raise FileNotFoundError(
        f"No public data folder found (tried {tried}). Pass `path=` to the loader or set the environment variable "
        f"{DATA_ENV_VAR} to the folder that holds the data-set folders (e.g. `pbmc_flow_quasar/`)."
    )


def _existing_dir(p: Path, origin: str) -> Path:
    p = p.expanduser()
    if not p.is_dir():
        raise FileNotFoundError(
            f"The data folder {str(p)!r} given by {origin} does not exist. Point it at the folder that holds the "
            f"data-set folders (e.g. `pbmc_flow_quasar/`), with `path=` or the environment variable {DATA_ENV_VAR}."
        )
    return p.resolve()


def _file(folder: str, name: str, path: str | os.PathLike | None) -> Path:
    """The path of ``<data_dir>/<folder>/<name>``, or a ``FileNotFoundError`` that says how to fix it."""
    root = data_dir(path)
    f = root / folder / name
    if not f.is_file():
        raise FileNotFoundError(
            f"Expected data file {name!r} at {str(f)!r}, but it is not there. Pass `path=` (the folder that holds "
            f"`{folder}/`) or set the environment variable {DATA_ENV_VAR}; the data folder in use is {str(root)!r}. "
            f"Public source: {_SOURCES[folder]}."
        )
    return f


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"Unknown {name} {value!r}; choose one of {', '.join(map(repr, choices))}.")
    return value


def _categorical(values, categories=None) -> pd.Categorical:
    values = pd.Series(values).astype("string").str.strip()
    if categories is None:
        categories = sorted(values.dropna().unique())
    return pd.Categorical(values.to_numpy(dtype=object, na_value=None), categories=list(categories))


def _dense32(X) -> np.ndarray:
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    return X.astype(np.float32, copy=False)


def _csr32(X) -> sp.csr_matrix:
    return sp.csr_matrix(X, dtype=np.float32)


def _describe(adata, **info: str) -> None:
    adata.uns["dataset"] = {k: v for k, v in info.items() if v is not None}


def _read_h5ad(f: Path) -> AnnData:
    import warnings

    import anndata as ad

    with warnings.catch_warnings():  # non-unique names are handled by the callers
        warnings.filterwarnings("ignore", message=".*names are not unique.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*written without encoding metadata.*")  # old h5ad files
        return ad.read_h5ad(f)


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
        Data folder (see :func:`data_dir`); the file read is ``pbmc_sorted_10x_mudan/pbmc_sorted_10x_ref.h5ad``.

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
    _describe(
        adata,
        name="pbmc_sorted_10x",
        source=_SOURCES["pbmc_sorted_10x_mudan"],
        citation="Zheng G.X.Y. et al. (2017) Nat Commun 8:14049",
        licence="GPL-3",
        scale="raw UMI counts",
    )
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
        Data folder (see :func:`data_dir`); the files read are ``pbmc_flow_quasar/<cohort>_bulk.csv.gz`` and
        ``pbmc_flow_quasar/<cohort>_ground_truth.csv``.
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

    _describe(
        adata,
        name=f"pbmc_bulk_{cohort}",
        source=_SOURCES["pbmc_flow_quasar"],
        citation=_PBMC_BULK[cohort]["citation"],
        licence="GPL-3 (QuasarDeconData); public GEO data",
        scale=_PBMC_BULK[cohort]["scale"],
    )
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
_CELLBENCH_CITATION = (
    "Tian L. et al. (2019) Benchmarking single cell RNA-sequencing analysis pipelines using mixture control "
    "experiments, Nat Methods 16:479 (GEO GSE118767)"
)
# RNAmix design column -> the cell line whose RNA the wells really hold (H2228 and HCC827 are exchanged; see
# cellbench_mixtures and the folder's MANIFEST.md).
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
    ``H2228_prop == 1`` match the HCC827 single cells and vice versa, in both single-cell references (verified in
    the data folder's MANIFEST.md and again here: the pure wells' mean profile correlates best with the other line).
    This loader applies the MANIFEST's correction: the truth column ``H2228`` is the published ``HCC827_prop`` and
    ``HCC827`` is the published ``H2228_prop`` (``H1975`` unchanged). The design as published is kept in
    ``obsm["design_as_published"]``; say so in any table that uses these mixtures. The cellmix wells were checked the
    same way (pure wells vs. the references) and are **not** exchanged: their per-line cell counts are used as
    published.

    Parameters
    ----------
    mixture
        One of ``"RNAmix_celseq2"``, ``"RNAmix_sortseq"``, ``"cellmix1"``-``"cellmix5"``.
    path
        Data folder (see :func:`data_dir`); the files read are ``cellbench_lung_mixtures/<mixture>.count.csv.gz``
        and ``<mixture>.metadata.csv.gz``.
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
    _describe(
        adata,
        name=f"cellbench_{mixture}",
        source=_SOURCES["cellbench_lung_mixtures"],
        citation=_CELLBENCH_CITATION,
        licence="MIT",
        scale="integer UMI counts (low-input wells)",
        note=(
            "RNAmix truth: H2228 = published HCC827_prop, HCC827 = published H2228_prop (columns exchanged in the "
            "published design)"
            if mixture.startswith("RNAmix")
            else None
        ),
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
        Data folder (see :func:`data_dir`); the files read are ``cellbench_lung_mixtures/sc_<protocol>.count.csv.gz``
        and ``sc_<protocol>.metadata.csv.gz``.
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
    _describe(
        adata,
        name=f"cellbench_sc_{protocol}",
        source=_SOURCES["cellbench_lung_mixtures"],
        citation=_CELLBENCH_CITATION,
        licence="MIT",
        scale="integer UMI counts",
    )
    return adata


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
        Data folder (see :func:`data_dir`); the files read are ``scp_murine_cellline/murine_<platform>_SCP.h5ad``
        and ``murine_<platform>_SCP_meta.csv``.

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
    _describe(
        adata,
        name=f"murine_cellline_{platform}",
        source=_SOURCES["scp_murine_cellline"],
        citation="Wang F. et al. (2023) Nat Mach Intell (scpDeconv)",
        licence="no licence file; all rights reserved (Tencent AI Lab); research use only",
        scale=_MURINE_PLATFORMS[platform],
    )
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
        Data folder (see :func:`data_dir`); the file read is ``scp_cellcycle_tscp/T-SCP.h5ad``.

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
    _describe(
        adata,
        name="tscp_cellcycle",
        source=_SOURCES["scp_cellcycle_tscp"],
        citation="Brunner A.-D. et al. (2022) Mol Syst Biol (T-SCP), via the scPROTEIN repository",
        licence="Apache-2.0 (scPROTEIN)",
        scale="log1p intensities; zeros are missing values",
    )
    return adata


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
        Data folder (see :func:`data_dir`); the file read is ``scm_bone_marrow_decode/bone_marrow.h5ad``.
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
    _describe(
        adata,
        name="bone_marrow_metabolomics",
        source=_SOURCES["scm_bone_marrow_decode"],
        citation="Zhao T. et al. (2026) DECODE, Nat Methods 23:596-608",
        licence="no licence file; research-use test data, not for redistribution",
        scale="raw background-subtracted intensities (8.96 % negative)",
    )
    return adata


_KIDNEY_CELL_LINES = ("HK2", "786-O", "786-M1A", "786-M2A")
_KIDNEY_INTERNAL_STANDARDS = ("valine-d8", "hippuric acid-d5")
_KIDNEY_CITATION = (
    "Metabolomics Workbench PR001418 / ST002224 (Nat Commun 2022, doi:10.1038/s41467-022-35036-4), via MetaProViz"
)
_KIDNEY_LICENCE = (
    "BSD-3-Clause (MetaProViz DESCRIPTION/LICENSE.md; R source headers say GPLv3: check before redistribution)"
)


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
        Data folder (see :func:`data_dir`); the file read is ``metaboprofiles_kidney_metaproviz/intracell_raw.csv.gz``.
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
    _describe(
        adata,
        name="kidney_metabolomics",
        source=_SOURCES["metaboprofiles_kidney_metaproviz"],
        citation=_KIDNEY_CITATION,
        licence=_KIDNEY_LICENCE,
        scale="raw integrated LC-MS peak areas (linear)",
    )
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
        Data folder (see :func:`data_dir`); the file read is ``metaboprofiles_kidney_metaproviz/tissue_norm.csv.gz``.

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
    _describe(
        adata,
        name="kidney_tissue_metabolomics",
        source=_SOURCES["metaboprofiles_kidney_metaproviz"],
        citation="Hakimi A.A. et al. (2016) Cancer Cell (Supplementary Table 2), via MetaProViz",
        licence=_KIDNEY_LICENCE,
        scale="median-normalised metabolite levels (linear ratios)",
    )
    return adata


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
        Data folder (see :func:`data_dir`); the files read are ``citeseq_eccite_pbmc_citefuse/eccite_pbmc_RNA.h5ad``
        and ``eccite_pbmc_ADT.h5ad``.
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
    _describe(
        mdata,
        name="eccite_pbmc",
        source=_SOURCES["citeseq_eccite_pbmc_citefuse"],
        citation="Mimitou E.P. et al. (2019) Nat Methods 16:409, via CiteFuse",
        licence="GPL-3 (CiteFuse)",
        scale="raw UMI counts (RNA, ADT)",
    )
    return mdata
