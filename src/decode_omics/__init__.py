"""decode-omics: DECODE deconvolution of bulk omics from single-cell references.

Import as ``import decode_omics as dco``. The submodules :mod:`~decode_omics.pp`, :mod:`~decode_omics.tl`,
:mod:`~decode_omics.pl`, :mod:`~decode_omics.metrics` and :mod:`~decode_omics.datasets` are light; the model
(:mod:`~decode_omics.model`, which needs torch and scvi-tools) is imported on first use.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from . import datasets, metrics, pl, pp, tl

try:
    __version__ = version("decode-omics")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

if TYPE_CHECKING:
    from . import model

__all__ = ["datasets", "metrics", "model", "pl", "pp", "tl"]


def __getattr__(name: str) -> Any:
    if name == "model":
        return importlib.import_module(f"{__name__}.model")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
