"""The notebooks (notebooks/*.ipynb): executed end to end, committed clean, paired with their .py.

* every notebook runs top to bottom in a fresh ``python3`` kernel of this interpreter, and fails
  the test if any cell raises (the notebooks contain their own numerical checks as asserts);
* every committed ``.ipynb`` has no outputs and no execution counts (a pre-commit-style check:
  run ``jupytext --to ipynb notebooks/NN_name.py`` to regenerate a clean one);
* every ``.ipynb`` and its jupytext percent-format ``.py`` have the same cells (type and source);
* every notebook's first code cell is tagged ``parameters`` and holds only assignments of literals,
  so papermill (``papermill in.ipynb out.ipynb -p d 100``) can override it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import nbformat
import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = ["01_tour", "02_alignment", "03_preconditioning", "04_hrp", "05_nonlinear"]
KERNEL = "python3"
CELL_TIMEOUT = 600  # seconds; the notebooks take well under a minute each at their defaults


def _ids(paths):
    return [p.stem for p in paths]


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def test_every_notebook_is_present_with_its_py_pair():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED
    for path in NOTEBOOKS:
        assert path.with_suffix(".py").is_file(), f"{path.name} has no jupytext pair {path.stem}.py"
    orphans = {p.stem for p in NOTEBOOK_DIR.glob("*.py")} - {p.stem for p in NOTEBOOKS}
    assert not orphans, f"percent-format .py without an .ipynb: {sorted(orphans)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_committed_without_outputs(path):
    nb = _read(path)
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, (
        f"{path.name}: cells {dirty} have outputs or execution counts; regenerate it clean with "
        f"`jupytext --to ipynb notebooks/{path.stem}.py`"
    )
    assert nb.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent", f"{path.name}: not paired"
    assert nb.metadata.get("kernelspec", {}).get("name") == KERNEL


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_matches_its_py_pair(path):
    nb = _read(path)
    paired = jupytext.read(path.with_suffix(".py"))
    cells = [(c.cell_type, c.source.strip()) for c in nb.cells]
    paired_cells = [(c.cell_type, c.source.strip()) for c in paired.cells]
    assert len(cells) == len(paired_cells), (
        f"{path.name} has {len(cells)} cells, {path.stem}.py has {len(paired_cells)}: "
        f"run `jupytext --to ipynb notebooks/{path.stem}.py`"
    )
    for i, (cell, other) in enumerate(zip(cells, paired_cells, strict=True)):
        assert cell == other, (
            f"{path.name}: cell {i} differs from {path.stem}.py; run `jupytext --to ipynb notebooks/{path.stem}.py`"
        )
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    paired_tags = [c.metadata.get("tags", []) for c in paired.cells]
    assert tags == paired_tags, f"{path.name}: cell tags differ from {path.stem}.py"


def _is_literal(node) -> bool:
    """A constant, a list/tuple of them, or arithmetic on them (e.g. ``1 / 64``, ``32 ** -0.5``)."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, (ast.List, ast.Tuple)):
        return all(_is_literal(e) for e in node.elts)
    if isinstance(node, ast.UnaryOp):
        return _is_literal(node.operand)
    if isinstance(node, ast.BinOp):
        return _is_literal(node.left) and _is_literal(node.right)
    return False


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_first_code_cell_is_a_papermill_parameters_cell(path):
    first = _code_cells(_read(path))[0]
    assert "parameters" in first.metadata.get("tags", []), f"{path.name}: first code cell is not tagged 'parameters'"
    tree = ast.parse(first.source)
    assert tree.body, f"{path.name}: empty parameters cell"
    for statement in tree.body:
        assert isinstance(statement, ast.Assign) and len(statement.targets) == 1, (
            f"{path.name}: the parameters cell must hold only `name = literal` lines, got {ast.unparse(statement)!r}"
        )
        assert isinstance(statement.targets[0], ast.Name) and _is_literal(statement.value), (
            f"{path.name}: parameter line {ast.unparse(statement)!r} is not `name = literal`"
        )


def test_kernel_is_this_interpreter():
    """nbclient's 'python3' kernel must be this environment's Python (where lora_theory is installed)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys, lora_theory\nprint(sys.prefix)")])
    nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=120).execute()
    printed = nb.cells[0].outputs[0]["text"].strip()
    assert Path(printed).resolve() == Path(sys.prefix).resolve(), (
        f"the {KERNEL} kernel runs in {printed}, the tests in {sys.prefix}: install ipykernel in this "
        "environment (`pip install -e .[test]`)"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_executes(path, monkeypatch):
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel inherits the environment: keep its inline backend
    nb = _read(path)
    client = nbclient.NotebookClient(
        nb, kernel_name=KERNEL, timeout=CELL_TIMEOUT, resources={"metadata": {"path": str(NOTEBOOK_DIR)}}
    )
    client.execute()  # raises CellExecutionError (with the cell and traceback) if any cell fails
    errors = [o for c in _code_cells(nb) for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    images = sum("image/png" in o.get("data", {}) for c in _code_cells(nb) for o in c.get("outputs", []))
    assert images >= 3, f"{path.name} produced {images} figures"
