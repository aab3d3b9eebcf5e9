"""Execute every notebook under ``notebooks/`` top to bottom; any cell error fails the test.

The kernel is the interpreter running the tests (``sys.executable``, i.e. the project's virtualenv),
whatever ``python3`` kernelspec the machine has installed: the test writes its own ``python3``
kernelspec into a temporary folder and starts the kernel from it, with ``MPLBACKEND=Agg`` so no plot
ever needs a display, and one CPU thread (fast and reproducible on busy machines). Each notebook runs
in its own folder, as Jupyter would run it.

Values in a notebook's cell tagged ``parameters`` can be overridden (papermill-style) through
``TEST_PARAMETERS``, to keep training tiny here.
"""
from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest

# Plain imports, not importorskip: the notebooks must run in CI, never be skipped silently.
import ipykernel  # noqa: F401
import nbclient
import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(p for p in NOTEBOOK_DIR.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)

KERNEL_NAME = "python3"
CELL_TIMEOUT_S = 300
# Overrides for names a notebook's "parameters" cell assigns (names it does not assign are ignored).
TEST_PARAMETERS = {"MAX_EPOCHS": 2, "D_MODEL": 16, "TRAIN_ROWS": 600, "TEST_ROWS": 500}


def _notebook_id(path: Path) -> str:
    return path.relative_to(NOTEBOOK_DIR).as_posix()


def _kernel_manager(kernel_root: Path) -> KernelManager:
    """A manager for a ``python3`` kernel running this interpreter, with a non-interactive matplotlib."""
    spec_dir = kernel_root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (test: sys.executable)",
        "language": "python",
        "env": {
            "MPLBACKEND": "Agg",
            # One BLAS/torch thread: these models are tiny, and on a shared or busy CI machine
            # multi-threaded kernels can be tens of times slower (oversubscribed OpenMP), not faster.
            "OMP_NUM_THREADS": "1",
            # A private IPython profile: no user startup files, history or config leak into the run.
            "IPYTHONDIR": str(kernel_root / "ipython"),
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        },
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    spec_manager = KernelSpecManager(kernel_dirs=[str(kernel_root / "kernels")])
    resolved = spec_manager.get_kernel_spec(KERNEL_NAME)
    assert resolved.argv[0] == sys.executable, f"the {KERNEL_NAME!r} kernelspec resolved to {resolved.argv}"
    return KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=spec_manager)


def _assigned_names(source: str) -> set[str]:
    names = set()
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def _inject_parameters(nb, overrides: dict) -> None:
    """Insert a cell assigning ``overrides`` right after the ``parameters`` cell (as papermill does)."""
    for position, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            wanted = {k: v for k, v in overrides.items() if k in _assigned_names(cell.source)}
            if wanted:
                source = "# Parameters injected by tests/test_notebooks.py\n" + "".join(
                    f"{name} = {value!r}\n" for name, value in wanted.items())
                injected = nbformat.v4.new_code_cell(source, id="injected-parameters")
                injected.metadata["tags"] = ["injected-parameters"]
                nb.cells.insert(position + 1, injected)
            return


def _check_kernel_cell(expected_prefix: str):
    """A first cell asserting the kernel really is this interpreter's environment."""
    source = (
        "import os as _os, sys as _sys\n"
        f"assert _sys.prefix == {expected_prefix!r}, (_sys.prefix, _sys.executable)\n"
        "assert _os.environ.get('MPLBACKEND') == 'Agg'\n"
        "del _os, _sys\n"
    )
    return nbformat.v4.new_code_cell(source, id="kernel-check")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_notebook_id)
def test_notebook_is_stored_executed(path):
    """Notebooks are committed valid (nbformat 4), with the python3 kernel, and executed in one run top to
    bottom with their outputs, so they read on a repository page (``scripts/execute_notebooks.py``
    re-executes and saves them), with no error output."""
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata.get("kernelspec", {}).get("name") == KERNEL_NAME
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    counts = [cell.execution_count for cell in code]
    assert counts == list(range(1, len(code) + 1)), \
        f"{path.name}: not executed top to bottom in one run (execution counts {counts}); " \
        f"run .venv/bin/python scripts/execute_notebooks.py notebooks/{path.name}"
    assert any(cell.outputs for cell in code), f"{path.name}: saved without outputs"
    errors = [cell.get("id") for cell in code for out in cell.outputs if out.get("output_type") == "error"]
    assert not errors, f"{path.name}: error outputs in cells {errors}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_notebook_id)
def test_notebook_runs(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    _inject_parameters(nb, TEST_PARAMETERS)
    nb.cells.insert(0, _check_kernel_cell(sys.prefix))
    client = nbclient.NotebookClient(
        nb,
        km=_kernel_manager(tmp_path),
        kernel_name=KERNEL_NAME,
        timeout=CELL_TIMEOUT_S,
        startup_timeout=120,
        allow_errors=False,  # the first failing cell raises CellExecutionError, which fails the test
        resources={"metadata": {"path": str(path.parent)}},  # the kernel's working directory
    )
    client.execute()
    errors = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
              if out.get("output_type") == "error"]
    assert not errors, f"{path.name}: {errors}"
