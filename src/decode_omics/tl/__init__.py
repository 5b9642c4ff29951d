"""Tools: deconvolution of bulk AnnData / MuData, baselines and cross-omics consistency."""

from ._consistency import consistency
from ._deconvolve import deconvolve
from ._nnls import nnls

__all__ = ["consistency", "deconvolve", "nnls"]
