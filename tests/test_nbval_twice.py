"""tests/plugins/nbval_twice.py: the second pass and the leftover checks fail when they should."""

import os
import subprocess
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

PLUGINS = Path(__file__).resolve().parent / "plugins"


def notebook(path, *cells):
    """A notebook of (source, stored stdout) code cells, as if run once top to bottom."""
    code = []
    for count, (source, stdout) in enumerate(cells, start=1):
        cell = new_code_cell(source, execution_count=count)
        cell.outputs = [new_output("stream", name="stdout", text=stdout)] if stdout else []
        code.append(cell)
    nbformat.write(new_notebook(cells=code), path)


def test_second_pass_and_leftovers_fail_when_they_should(tmp_path):
    # Two stored stream outputs (split by an await), which nbval merges as it compares.
    notebook(tmp_path / "clean.ipynb", ("import asyncio\nprint('a')\nawait asyncio.sleep(0)\n"
                                        "print('b')", "a\nb\n"))
    notebook(tmp_path / "counts.ipynb", ("runs = globals().get('runs', 0) + 1\nprint(runs)", "1\n"))
    notebook(tmp_path / "leaks.ipynb", ("import threading, time\nthreading.Thread("
                                        "target=time.sleep, args=(60,), daemon=True).start()", ""))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "nbval_twice", "-p", "no:cacheprovider",
         "--nbval", "--nbval-current-env", "-rA", "-q",
         "clean.ipynb", "counts.ipynb", "leaks.ipynb"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(PLUGINS)},
    )
    outcome = {
        line.split(" ", 1)[1].split(" - ")[0]: line.split(" ", 1)[0]
        for line in result.stdout.splitlines()
        if line.startswith(("PASSED ", "FAILED "))
    }
    assert outcome == {
        "clean.ipynb::threads at start": "PASSED",
        "clean.ipynb::Cell 0": "PASSED",
        "clean.ipynb::nothing left after run 1": "PASSED",
        "clean.ipynb::Cell 0 (second run)": "PASSED",
        "clean.ipynb::nothing left after run 2": "PASSED",
        "counts.ipynb::threads at start": "PASSED",
        "counts.ipynb::Cell 0": "PASSED",
        "counts.ipynb::nothing left after run 1": "PASSED",
        "counts.ipynb::Cell 0 (second run)": "FAILED",
        "counts.ipynb::nothing left after run 2": "PASSED",
        "leaks.ipynb::threads at start": "PASSED",
        "leaks.ipynb::Cell 0": "PASSED",
        "leaks.ipynb::nothing left after run 1": "FAILED",
        "leaks.ipynb::Cell 0 (second run)": "PASSED",
        "leaks.ipynb::nothing left after run 2": "FAILED",
    }, result.stdout
    assert "run 1 left threads running: ['Thread-" in result.stdout, result.stdout
