"""The shared data folder, dataset constants and small helpers of the public-data loaders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

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
    """The local folder that holds the public data sets (one sub-folder per data set, each with a ``MANIFEST.md``).

    Resolved in this order: the ``path`` argument; else the environment variable ``DECODE_OMICS_DATA``; else
    ``../shared/data`` relative to the current working directory (the layout of the project, run from its root);
    else a ``shared/data`` folder found by walking up from this file (a ``shared/`` next to, or inside, the
    repository).

    The loaders also find files without such a folder: they look in the download cache (:func:`cache_dir`) and
    download the files that have a public URL (:func:`registry`). This function only locates a local folder.

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
    found = _shared_data_dir()
    if found is not None:
        return found
    tried = ", ".join(str(c) for c in _shared_candidates()[:3]) + ", ..."
    raise FileNotFoundError(
        f"No public data folder found (tried {tried}). Pass `path=` to the loader or set the environment variable "
        f"{DATA_ENV_VAR} to the folder that holds the data-set folders (e.g. `pbmc_flow_quasar/`)."
    )


def _shared_candidates() -> list[Path]:
    candidates = [Path.cwd() / ".." / "shared" / "data"]
    candidates += [parent / "shared" / "data" for parent in Path(__file__).resolve().parents]
    return candidates


def _shared_data_dir() -> Path | None:
    """The project's ``shared/data`` folder (see :func:`data_dir`), or ``None`` when there is none."""
    for candidate in _shared_candidates():
        if candidate.is_dir():
            return candidate.resolve()
    return None


def _existing_dir(p: Path, origin: str) -> Path:
    p = p.expanduser()
    if not p.is_dir():
        raise FileNotFoundError(
            f"The data folder {str(p)!r} given by {origin} does not exist. Point it at the folder that holds the "
            f"data-set folders (e.g. `pbmc_flow_quasar/`), with `path=` or the environment variable {DATA_ENV_VAR}."
        )
    return p.resolve()


def _file(folder: str, name: str, path: str | os.PathLike | None) -> Path:
    """The local path of ``<folder>/<name>``, or an error that says how to get it.

    With ``path``, only ``<path>/<folder>/<name>`` is read (``FileNotFoundError`` when absent; nothing is downloaded).
    Without it: ``$DECODE_OMICS_DATA``, the project's ``shared/data``, the download cache, then a download from the
    public deposit (see :mod:`decode_omics.datasets._registry`).
    """
    if path is None:
        from ._registry import fetch

        return fetch(folder, name)
    root = data_dir(path)
    f = root / folder / name
    if not f.is_file():
        from ._registry import REGISTRY

        entry = REGISTRY.get(f"{folder}/{name}")
        where = (
            f" Without `path=`, the loader downloads it from {entry.url}."
            if entry is not None and entry.url is not None
            else ""
        )
        raise FileNotFoundError(
            f"Expected data file {name!r} at {str(f)!r}, but it is not there. Pass `path=` (the folder that holds "
            f"`{folder}/`) or set the environment variable {DATA_ENV_VAR}; the data folder in use is {str(root)!r}. "
            f"Public source: {_SOURCES[folder]}.{where}"
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


#: Per data folder: the citation and the licence recorded with every data set read from it.
_ABOUT: dict[str, tuple[str, str]] = {
    "pbmc_sorted_10x_mudan": ("Zheng G.X.Y. et al. (2017) Nat Commun 8:14049", "GPL-3"),
    "pbmc_flow_quasar": ("", "GPL-3 (QuasarDeconData); public GEO data"),
    "cellbench_lung_mixtures": (
        "Tian L. et al. (2019) Benchmarking single cell RNA-sequencing analysis pipelines using mixture control "
        "experiments, Nat Methods 16:479 (GEO GSE118767)",
        "MIT",
    ),
    "scp_murine_cellline": (
        "Wang F. et al. (2023) Nat Mach Intell (scpDeconv)",
        "no licence file; all rights reserved (Tencent AI Lab); research use only",
    ),
    "scp_cellcycle_tscp": (
        "Brunner A.-D. et al. (2022) Mol Syst Biol (T-SCP), via the scPROTEIN repository",
        "Apache-2.0 (scPROTEIN)",
    ),
    "scm_bone_marrow_decode": (
        "Zhao T. et al. (2026) DECODE, Nat Methods 23:596-608",
        "no licence file; research-use test data, not for redistribution",
    ),
    "metaboprofiles_kidney_metaproviz": (
        "Metabolomics Workbench PR001418 / ST002224 (Nat Commun 2022, doi:10.1038/s41467-022-35036-4), via MetaProViz",
        "BSD-3-Clause (MetaProViz DESCRIPTION/LICENSE.md; R source headers say GPLv3: check before redistribution)",
    ),
    "citeseq_eccite_pbmc_citefuse": (
        "Mimitou E.P. et al. (2019) Nat Methods 16:409, via CiteFuse",
        "GPL-3 (CiteFuse)",
    ),
}


def _describe(adata, name: str, folder: str, scale: str, note: str | None = None, citation: str | None = None):
    """Record where a data set comes from in ``adata.uns["dataset"]`` (``citation`` overrides the folder's)."""
    cited, licence = _ABOUT[folder]
    info = {"name": name, "source": _SOURCES[folder], "citation": citation or cited, "licence": licence}
    adata.uns["dataset"] = {k: v for k, v in (info | {"scale": scale, "note": note}).items() if v is not None}


def _read_h5ad(f: Path) -> AnnData:
    import warnings

    import anndata as ad

    with warnings.catch_warnings():  # non-unique names are handled by the callers
        warnings.filterwarnings("ignore", message=".*names are not unique.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*written without encoding metadata.*")  # old h5ad files
        return ad.read_h5ad(f)
