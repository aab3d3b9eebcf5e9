"""Execute notebooks top to bottom with their full parameters and save them with their outputs, so they
read on a repository page (tests/test_notebooks.py still runs them fresh, with smaller parameters).

Usage: .venv/bin/python scripts/execute_notebooks.py [notebooks/NAME.ipynb ...]   (default: all)
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import nbclient
import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from test_notebooks import KERNEL_NAME, NOTEBOOKS, _kernel_manager  # noqa: E402  (the kernel the tests use)


def execute(path: Path) -> float:
    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as kernel_root:
        client = nbclient.NotebookClient(notebook, km=_kernel_manager(Path(kernel_root)), kernel_name=KERNEL_NAME,
                                         timeout=1800, startup_timeout=120, allow_errors=False, record_timing=False,
                                         resources={"metadata": {"path": str(path.parent)}})
        client.execute()
    nbformat.validate(notebook)
    nbformat.write(notebook, path)
    return time.perf_counter() - started


if __name__ == "__main__":
    paths = [Path(p).resolve() for p in sys.argv[1:]] or NOTEBOOKS
    for path in paths:
        print(f"{path.name}: executed and saved in {execute(path):.1f} s", flush=True)
