"""Sphinx configuration for decode-omics.

Build (warnings are errors; nothing is downloaded):

    sphinx-build -W --keep-going -b html docs docs/_build/html

Cross-links into the documentation of Python, NumPy, pandas, AnnData, scanpy, scvi-tools, MuData and PyTorch need
their object inventories from the internet, so intersphinx is off unless ``DOCS_INTERSPHINX=1`` is set.

The tutorial notebooks live in ``../notebooks`` (committed with their outputs, executed by the test suite). At build
time they are copied into ``tutorials/notebooks/`` (git-ignored) and rendered by myst-nb without execution; the
tutorials page lists whichever of them exist. ``DOCS_NOTEBOOKS=<folder>`` reads them from another folder.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import sys
import warnings
from datetime import datetime
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))  # document the source tree, installed or not

# -- Project -----------------------------------------------------------------------------------------------------------

project = "decode-omics"
author = "decode-omics developers"
copyright = f"{datetime.now():%Y}, {author}"
try:
    release = _version("decode-omics")
except PackageNotFoundError:  # building from a source tree without installing it
    release = "0.0.0"
version = ".".join(release.split(".")[:2])
repository_url = "https://github.com/decode-omics/decode-omics"

# -- General -----------------------------------------------------------------------------------------------------------

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx_autodoc_typehints",  # after napoleon
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

INTERSPHINX = os.environ.get("DOCS_INTERSPHINX", "0").lower() in ("1", "true", "yes")
if INTERSPHINX:
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable/", None),
        "scipy": ("https://docs.scipy.org/doc/scipy/", None),
        "pandas": ("https://pandas.pydata.org/pandas-docs/stable/", None),
        "anndata": ("https://anndata.readthedocs.io/en/stable/", None),
        "scanpy": ("https://scanpy.readthedocs.io/en/stable/", None),
        "scvi": ("https://docs.scvi-tools.org/en/stable/", None),
        "mudata": ("https://mudata.readthedocs.io/en/latest/", None),
        "torch": ("https://docs.pytorch.org/docs/stable/", None),
        "lightning": ("https://lightning.ai/docs/pytorch/stable/", None),
        "matplotlib": ("https://matplotlib.org/stable/", None),
    }

templates_path = ["_templates"]
html_static_path = ["_static"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints", "_templates", "_static/*.md"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
master_doc = "index"
default_role = "literal"
pygments_style = "default"

# -- MyST / myst-nb ----------------------------------------------------------------------------------------------------

myst_enable_extensions = ["colon_fence", "deflist", "dollarmath", "amsmath", "html_image", "html_admonition"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # notebooks are committed with outputs; the test suite executes them
nb_merge_streams = True
nb_output_stderr = "remove"  # progress bars and library chatter, not results

# -- autodoc / autosummary / napoleon ----------------------------------------------------------------------------------

autosummary_generate = True  # stubs into generated/ (git-ignored)
autosummary_imported_members = False
autodoc_member_order = "bysource"
autodoc_default_options = {"show-inheritance": False}
autodoc_preserve_defaults = True
autoclass_content = "class"
# Methods our classes override without a docstring of their own (Lightning hooks such as ``training_step``) would
# otherwise inherit Lightning's docstrings, written in another convention (Google style, ``testcode`` directives).
autodoc_inherit_docstrings = False
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_include_init_with_doc = False
napoleon_use_rtype = True  # a separate "Return type" line
napoleon_use_param = True
# Our "Returns" sections are prose (scanpy style: what comes back and where results are written), not "name : type"
# lines, so they are rendered as written; the return type itself comes from the annotation (sphinx-autodoc-typehints).
napoleon_custom_sections = [("Returns", "notes_style")]
typehints_defaults = "braces"
always_document_param_types = False
typehints_use_signature = False
typehints_use_signature_return = False

# -- HTML --------------------------------------------------------------------------------------------------------------

html_theme = "sphinx_book_theme"
html_title = "decode-omics"
html_css_files = ["custom.css"]
html_show_sphinx = False
html_theme_options = {
    "repository_url": repository_url,
    "repository_branch": "main",
    "path_to_docs": "docs",
    "use_repository_button": True,
    "use_download_button": True,
    "navigation_with_keys": False,
    "show_toc_level": 2,
}

# -- Warnings ----------------------------------------------------------------------------------------------------------

nitpicky = False
suppress_warnings: list[str] = []
# sphinx-autodoc-typehints 3.6 calls an API that Sphinx 9 deprecates and prints a Python DeprecationWarning for every
# docstring (third-party noise on stderr, not a Sphinx warning, so -W never saw it).
warnings.filterwarnings("ignore", message=r".*_RstSnippetParser\.set_application.*")

# -- Tutorials: copy ../notebooks/*.ipynb into tutorials/notebooks/ and list them --------------------------------------

NOTEBOOKS_SRC = Path(os.environ.get("DOCS_NOTEBOOKS", ROOT / "notebooks")).resolve()
NOTEBOOKS_DST = HERE / "tutorials" / "notebooks"
#: Reading order of the tutorials; any other notebook follows, alphabetically.
TUTORIAL_ORDER = [
    "pbmc_bulk_rnaseq",
    "proteomics_cross_platform",
    "multiomics_mudata",
    "cell_states_tscp",
]
TOCTREE_MARKER = "<!-- tutorials-toctree -->"


def _sync_notebooks() -> list[str]:
    """Mirror ``NOTEBOOKS_SRC/*.ipynb`` into ``NOTEBOOKS_DST`` (copying only changed files, so Sphinx re-reads only
    those) and return the notebook names in reading order."""
    NOTEBOOKS_DST.mkdir(parents=True, exist_ok=True)
    sources = {p.stem: p for p in sorted(NOTEBOOKS_SRC.glob("*.ipynb"))} if NOTEBOOKS_SRC.is_dir() else {}
    for stale in NOTEBOOKS_DST.glob("*.ipynb"):
        if stale.stem not in sources:
            stale.unlink()
    for src in sources.values():
        dst = NOTEBOOKS_DST / src.name
        if not dst.exists() or not filecmp.cmp(src, dst, shallow=False):
            shutil.copyfile(src, dst)
    return [n for n in TUTORIAL_ORDER if n in sources] + sorted(n for n in sources if n not in TUTORIAL_ORDER)


TUTORIALS = _sync_notebooks()


def _tutorials_toctree(app, docname: str, source: list[str]) -> None:
    """Replace the marker in ``tutorials/index.md`` with a toctree of the notebooks that exist (an empty toctree or a
    glob that matches nothing would be a warning)."""
    if docname != "tutorials/index" or TOCTREE_MARKER not in source[0]:
        return
    if TUTORIALS:
        entries = "\n".join(f"notebooks/{name}" for name in TUTORIALS)
        block = f"```{{toctree}}\n:maxdepth: 1\n\n{entries}\n```\n"
    else:
        block = "```{note}\nThe tutorial notebooks have not been added to `notebooks/` yet.\n```\n"
    source[0] = source[0].replace(TOCTREE_MARKER, block)


def _keep_prose_returns(app) -> None:
    """sphinx-autodoc-typehints inserts a ``:`` line under every numpydoc "Returns" header so that napoleon does not
    read its first line as a type. Our Returns sections are rendered as prose (``napoleon_custom_sections`` above),
    where that ``:`` would show up as a stray colon, so that one listener is removed."""
    from sphinx_autodoc_typehints.patches import napoleon_numpy_docstring_return_type_processor as insert_colon

    for listener in list(app.events.listeners.get("autodoc-process-docstring", [])):
        if listener.handler is insert_colon:
            app.disconnect(listener.id)


def _reread_tutorials_index(app, env, added, changed, removed) -> list[str]:
    """Re-read ``tutorials/index.md`` on every build: its toctree depends on the notebooks, not on its own text."""
    return ["tutorials/index"]


def setup(app):
    app.connect("source-read", _tutorials_toctree)
    app.connect("env-get-outdated", _reread_tutorials_index)
    _keep_prose_returns(app)
