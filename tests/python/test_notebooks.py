"""The notebooks in examples/notebooks run top to bottom (nbclient, a fresh kernel each), so
they never rot; the repository keeps them without outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import data_root, dataset_path

NOTEBOOKS = Path(__file__).resolve().parents[2] / "examples" / "notebooks"
NEEDS_DATA = {"02_your_own_data.ipynb": "dunnhumby-complete-journey-2017"}


def _books():
    return sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


def test_there_are_notebooks_and_they_carry_no_outputs():
    books = _books()
    assert len(books) >= 4
    for name in books:
        cells = json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))["cells"]
        for cell in cells:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, name


@pytest.mark.parametrize("name", _books())
def test_notebook_runs(name, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    if name in NEEDS_DATA:
        dataset_path(NEEDS_DATA[name])
    monkeypatch.setenv("PERKREC_DATA_DIR", str(data_root()))
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(
        book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    errors = [
        o
        for c in book.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.output_type == "error"
    ]
    assert errors == []
    assert all(c.execution_count is not None for c in book.cells if c.cell_type == "code")
    written = {
        "01_quickstart.ipynb": "redemption.perk",
        "04_campaign_report.ipynb": "campaign_report.html",
    }
    if name in written:
        assert (tmp_path / written[name]).is_file()
