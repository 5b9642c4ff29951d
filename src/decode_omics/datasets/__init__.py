"""Data sets: the embedded demo (scanpy's bundled ``pbmc68k_reduced``) and loaders for public data.

The loaders read each file from the first of: the ``path=`` argument (only there); ``$DECODE_OMICS_DATA``; the
project's ``../shared/data``; the download cache (:func:`cache_dir`: ``$DECODE_OMICS_CACHE`` or
``pooch.os_cache("decode-omics")``); else they download it from its public deposit with pooch and check its SHA-256.
:func:`registry` lists every file, its deposit, URL and checksum; files converted from R objects have no public URL:
they are built in the cache from their R sources, downloaded and checked against their SHA-256
(``built_from_sources``).
"""

from ._demo import pbmc68k_reference_and_bulk
from ._metabolomics import bone_marrow_metabolomics, kidney_metabolomics, kidney_tissue_metabolomics
from ._multiome import eccite_pbmc
from ._paths import BONE_MARROW_PROTOCOL_TYPES, CELLBENCH_CELL_LINES, PBMC_BROAD_LABELS, PBMC_BROAD_TYPES, data_dir
from ._proteomics import murine_cellline_proteomics, tscp_cellcycle
from ._registry import cache_dir, registry
from ._rna import cellbench_mixtures, cellbench_reference, pbmc_bulk, pbmc_sorted_10x

__all__ = [
    "BONE_MARROW_PROTOCOL_TYPES",
    "CELLBENCH_CELL_LINES",
    "PBMC_BROAD_LABELS",
    "PBMC_BROAD_TYPES",
    "bone_marrow_metabolomics",
    "cache_dir",
    "cellbench_mixtures",
    "cellbench_reference",
    "data_dir",
    "eccite_pbmc",
    "kidney_metabolomics",
    "kidney_tissue_metabolomics",
    "murine_cellline_proteomics",
    "pbmc68k_reference_and_bulk",
    "pbmc_bulk",
    "pbmc_sorted_10x",
    "registry",
    "tscp_cellcycle",
]
