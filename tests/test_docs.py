"""The documentation builds with Sphinx, warnings as errors, without the internet."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in ("sphinx", "myst_nb")),
    reason="the doc extra (sphinx, myst-nb) is not installed: pip install '.[doc]'",
)


def test_docs_build(tmp_path):
    """``sphinx-build -W --keep-going -b html docs <tmp>`` succeeds (doctrees in tmp too)."""
    env = {k: v for k, v in os.environ.items() if k != "DOCS_INTERSPHINX"}  # never reach for the internet here
    cmd = [
        sys.executable,
        "-m",
        "sphinx",
        "-W",
        "--keep-going",
        "-q",
        "-b",
        "html",
        "-d",
        str(tmp_path / "doctrees"),
        str(DOCS),
        str(tmp_path / "html"),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, f"sphinx-build failed:\n{result.stdout[-5000:]}\n{result.stderr[-10000:]}"
    for page in ("index", "installation", "method", "api", "benchmarks", "changelog", "tutorials/index"):
        assert (tmp_path / "html" / f"{page}.html").is_file(), page
    assert (tmp_path / "html" / "generated" / "decode_omics.model.DECODE.html").is_file()
