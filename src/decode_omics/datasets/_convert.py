"""Build the files converted from public R ``.rda`` objects: download the sources with pooch, convert with ``rdata``.

A converted file (``DataFile.url is None``) has no public copy; when a builder for its folder is in
:data:`BUILDERS`, :func:`build` downloads the source ``.rda`` file(s) named in ``DataFile.sources`` into
``<cache>/<folder>/sources/`` (each checked against its SHA-256), reads them with the :mod:`rdata` package (a
dependency: pure Python, its own dependencies are already those of decode-omics) and writes the files of that folder
next to them, the way the project's shared copy was made (see its ``MANIFEST.md``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ._sources import REGISTRY, DataFile

logger = logging.getLogger("decode_omics")

#: Folder inside ``<cache>/<folder>/`` the downloaded source files are kept in.
SOURCES_DIR = "sources"


def _frame(array, index_name: str) -> pd.DataFrame:
    """A 2-D labelled array (as :mod:`rdata` returns an R matrix with dimnames) as a data frame."""
    rows, cols = array.dims
    index = [str(v) for v in array.coords[rows].values]
    frame = pd.DataFrame(array.values, index=index, columns=[str(v) for v in array.coords[cols].values])
    frame.index.name = index_name
    return frame


def quasar_files(obj: dict) -> dict[str, pd.DataFrame]:
    """The bulk and ground-truth tables of one QuasarDeconData cohort list.

    Parameters
    ----------
    obj
        The R list of ``data/<cohort>.rda`` as read by :func:`rdata.read_rda`: ``bulk_expression_profiles`` (genes x
        samples), ``ground_truth_proportions`` (samples x cell types) and, for GSE107011, ``ensembl_ids``.

    Returns
    -------
    ``{"bulk": genes x samples (index ``feature``; first column ``ensembl_ids`` when the list has it),
    "ground_truth": samples x cell types (index ``sample``)}``.
    """
    bulk = _frame(obj["bulk_expression_profiles"], "feature")
    if "ensembl_ids" in obj:
        bulk.insert(0, "ensembl_ids", [str(v) for v in obj["ensembl_ids"]])
    return {"bulk": bulk, "ground_truth": _frame(obj["ground_truth_proportions"], "sample")}


def _build_quasar(sources: dict[str, Path], out: Path) -> None:
    import rdata

    for name, path in sources.items():
        cohort = name.removesuffix(".rda")
        tables = quasar_files(rdata.read_rda(str(path))[cohort])
        tables["bulk"].to_csv(out / f"{cohort}_bulk.csv.gz", compression={"method": "gzip", "mtime": 0})
        tables["ground_truth"].to_csv(out / f"{cohort}_ground_truth.csv")


def mudan_adata(counts, annot):
    """The sorted-PBMC reference of MUDAN as AnnData, from ``referenceCounts`` and ``referenceAnnot``.

    Parameters
    ----------
    counts
        ``referenceCounts`` as read by :func:`rdata.read_rda`: UMI counts, genes x cells with dimnames.
    annot
        ``referenceAnnot``: the sorted population of each cell, in the order of the count matrix's columns.

    Returns
    -------
    Cells x genes :class:`~anndata.AnnData`: ``X`` float32 CSR counts, ``obs["cell_type"]`` categorical (sorted
    categories); obs and var indices named ``dim_1`` and ``dim_0``, as in the shared copy.
    """
    import anndata
    import numpy as np
    from scipy import sparse

    genes, cells = counts.dims
    labels = [str(v) for v in np.asarray(annot)]
    if len(labels) != counts.shape[1]:
        raise ValueError(f"referenceAnnot has {len(labels)} labels for {counts.shape[1]} cells of referenceCounts")
    obs = pd.DataFrame(index=pd.Index([str(v) for v in counts.coords[cells].values], name=cells))
    obs["cell_type"] = pd.Categorical(labels)
    var = pd.DataFrame(index=pd.Index([str(v) for v in counts.coords[genes].values], name=genes))
    return anndata.AnnData(sparse.csr_matrix(np.asarray(counts.values, dtype=np.float32).T), obs=obs, var=var)


def _build_mudan(sources: dict[str, Path], out: Path) -> None:
    import rdata

    counts = rdata.read_rda(str(sources["referenceCounts.rda"]))["referenceCounts"]
    annot = rdata.read_rda(str(sources["referenceAnnot.rda"]))["referenceAnnot"]
    mudan_adata(counts, annot).write_h5ad(out / "pbmc_sorted_10x_ref.h5ad", compression="gzip")


def _build_metaproviz(sources: dict[str, Path], out: Path) -> None:
    import warnings

    import rdata

    for name, path in sources.items():
        stem = name.removesuffix(".rda")
        with warnings.catch_warnings():  # tibble classes (spec_tbl_df, tbl_df, tbl) are read as their data.frame
            warnings.filterwarnings("ignore", message="Missing constructor for R class", category=UserWarning)
            frame = rdata.read_rda(str(path))[stem]
        frame.columns = [str(c) for c in frame.columns]  # the sample code is already the column `Code`
        frame.to_csv(out / f"{stem}.csv.gz", index=False, compression={"method": "gzip", "mtime": 0})


def _dgc_matrix(m):
    """A dgCMatrix as :mod:`rdata` returns it (slots ``i``, ``p``, ``x``, ``Dim``, ``Dimnames``): CSC, rows, columns."""
    import numpy as np
    from scipy import sparse

    n_rows, n_cols = (int(v) for v in m.Dim)
    matrix = sparse.csc_matrix((np.asarray(m.x), np.asarray(m.i), np.asarray(m.p)), shape=(n_rows, n_cols))
    return matrix, [str(v) for v in m.Dimnames[0]], [str(v) for v in m.Dimnames[1]]


def citefuse_adatas(obj) -> dict:
    """The RNA and ADT matrices of CiteFuse's ``CITEseq_example`` list as AnnData, with the hashtag counts in obs.

    Parameters
    ----------
    obj
        The R list as read by :func:`rdata.read_rda`: dgCMatrix ``RNA``, ``ADT`` and ``HTO`` (features x cells).

    Returns
    -------
    ``{"RNA": AnnData, "ADT": AnnData}``, cells x features, ``X`` float32 CSR counts, ``obs["HTO_<name>"]`` float32
    hashtag counts of each cell.
    """
    import anndata
    import numpy as np
    from scipy import sparse

    hto, hto_names, hto_cells = _dgc_matrix(obj["HTO"])
    hto = hto.toarray()
    out = {}
    for modality in ("RNA", "ADT"):
        matrix, features, cells = _dgc_matrix(obj[modality])
        if cells != hto_cells:
            raise ValueError(f"CITEseq_example: the {modality} cells differ from the HTO cells")
        obs = pd.DataFrame(index=pd.Index(cells))
        for j, name in enumerate(hto_names):
            obs[f"HTO_{name}"] = hto[j].astype(np.float32)
        X = sparse.csr_matrix(matrix.T.astype(np.float32))
        out[modality] = anndata.AnnData(X, obs=obs, var=pd.DataFrame(index=pd.Index(features)))
    return out


def _build_citefuse(sources: dict[str, Path], out: Path) -> None:
    import warnings

    import rdata

    with warnings.catch_warnings():  # the S4 dgCMatrix has no constructor: it is read as its slots
        warnings.filterwarnings("ignore", message="Missing constructor for R class", category=UserWarning)
        obj = rdata.read_rda(str(sources["CITEseq_example.rda"]))["CITEseq_example"]
    for modality, adata in citefuse_adatas(obj).items():
        adata.write_h5ad(out / f"eccite_pbmc_{modality}.h5ad", compression="gzip")


#: Builders by data-set folder: ``builder({source file name: local path}, output folder)`` writes its files.
BUILDERS: dict[str, Callable[[dict[str, Path], Path], None]] = {
    "pbmc_flow_quasar": _build_quasar,
    "pbmc_sorted_10x_mudan": _build_mudan,
    "metaboprofiles_kidney_metaproviz": _build_metaproviz,
    "citeseq_eccite_pbmc_citefuse": _build_citefuse,
}


def can_build(entry: DataFile) -> bool:
    """Whether :func:`build` can make ``entry`` from its public sources."""
    return entry.url is None and entry.folder in BUILDERS and bool(entry.sources)


def _folder_sources(entry: DataFile) -> dict[str, str]:
    """``{url: sha256}`` of the sources of ``entry`` and of the other files of its folder (one build writes all)."""
    wanted = {url: sha for e in REGISTRY.values() if e.folder == entry.folder for url, sha in e.sources}
    wanted.update(dict(entry.sources))
    return wanted


def build(entry: DataFile, target: Path, download: Callable[[DataFile, Path], Path]) -> Path:
    """Download the sources of a converted file into the cache and build it (and the other files they make).

    Parameters
    ----------
    entry
        The registry entry of the converted file (:func:`can_build` must be true).
    target
        Where the file goes: ``<cache>/<folder>/<name>``.
    download
        The checksummed download of :mod:`._registry` (``download(entry, target) -> path``).

    Returns
    -------
    ``target``, now built.

    Raises
    ------
    ImportError
        Without the :mod:`rdata` package (a dependency of decode-omics; ``pip install "rdata>=1.0"``).
    ConnectionError, ValueError
        As the download (unreachable source, checksum mismatch).
    """
    try:
        import rdata  # noqa: F401
    except ImportError as err:
        raise ImportError(
            f"Building {entry.key!r} from its public R source(s) needs the `rdata` package, a dependency of "
            'decode-omics that is missing here: pip install "rdata>=1.0".'
        ) from err
    wanted = _folder_sources(entry)
    folder = target.parent / SOURCES_DIR
    sources = {}
    for url, sha in wanted.items():
        base, name = url.rsplit("/", 1)
        src = DataFile(entry.folder, name, sha, deposit=entry.deposit, base_url=base + "/")
        sources[name] = download(src, folder / name)
    logger.info("Building %s from %s ...", entry.key, ", ".join(sources))
    tmp = target.parent / ".building"
    tmp.mkdir(parents=True, exist_ok=True)
    BUILDERS[entry.folder](sources, tmp)
    for f in tmp.iterdir():  # move into place only once every file is written
        f.replace(target.parent / f.name)
    tmp.rmdir()
    if not target.is_file():
        raise RuntimeError(f"Building {entry.key!r} from {', '.join(sources)} did not write {target}")
    return target
