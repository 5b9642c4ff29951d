"""Kept for code that imported the scale helpers from here; they live in :mod:`decode_omics._engine.scale`."""

from .._engine.scale import (  # noqa: F401
    USER_SCALES,
    ScaleError,
    ScaleReport,
    check_scale,
    detect_scale,
    get_matrix,
    linearize,
    resolve_scale,
    to_linear,
)
