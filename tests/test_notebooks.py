"""Execute the tutorial notebooks end to end on small settings (``DECODE_OMICS_QUICK=1``: a few epochs).

Every notebook reads public data from the shared data folder (``../shared/data`` or ``$DECODE_OMICS_DATA``) and is
skipped when that folder is absent. The kernel is ``python3``, which jupyter_client starts with the interpreter that
runs the tests, so the notebooks see the same environment.
"""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"

# notebook -> whether it reads the shared data folder
NOTEBOOKS = {
    "pbmc_bulk_rnaseq.ipynb": True,
    "proteomics_cross_platform.ipynb": True,
    "multiomics_mudata.ipynb": True,
    "cell_states_tscp.ipynb": True,
}


def test_every_notebook_is_tested():
    assert sorted(p.name for p in NOTEBOOKS_DIR.glob("*.ipynb")) == sorted(NOTEBOOKS)


def _data_dir() -> Path | None:
    import decode_omics as dco

    try:
        return dco.datasets.data_dir()
    except FileNotFoundError:
        return None


@pytest.mark.shared_data
@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_notebook_runs(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")

    if NOTEBOOKS[name]:
        data = _data_dir()
        if data is None:
            pytest.skip("the shared data folder (../shared/data or $DECODE_OMICS_DATA) is absent")
        # the kernel runs in notebooks/, so hand it the folder found from here
        monkeypatch.setenv("DECODE_OMICS_DATA", str(data))
    monkeypatch.setenv("DECODE_OMICS_QUICK", "1")

    nb = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(NOTEBOOKS_DIR)}}
    )
    client.execute()  # raises CellExecutionError, with the failing cell and traceback, on the first error
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]
    assert not [out for out in outputs if out.get("output_type") == "error"]
    # a tutorial needs no warning filters: third-party chatter is silenced by the package, our own warnings pass
    assert not [c for c in nb.cells if c.cell_type == "code" and "filterwarnings" in c.source]
    stderr = "".join(out.get("text", "") for out in outputs if out.get("name") == "stderr")
    for chatter in ("DeprecationWarning", "FutureWarning", "LeafSpec", "litlogger", "GPU available", "Seed set to"):
        assert chatter not in stderr, f"{name} shows third-party output: {chatter}"
