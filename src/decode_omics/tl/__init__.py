"""Tools: deconvolution of bulk AnnData / MuData, baselines, group comparisons and cross-omics consistency."""

from ._compare import compare_groups
from ._consistency import consistency
from ._deconvolve import deconvolve
from ._nnls import nnls

__all__ = ["compare_groups", "consistency", "deconvolve", "nnls"]
