"""Setup and bring-up: cold install, start() in a fresh process, and each notebook's run."""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
BRING_UP = """
import time
started = time.perf_counter()
from tutorial_project import start
start(quiet=True)
print(time.perf_counter() - started)
"""


def cold_setup_seconds():
    """Create a venv and install requirements.txt from an empty package cache."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, UV_CACHE_DIR=f"{tmp}/uv-cache", PIP_NO_CACHE_DIR="1")
        started = time.perf_counter()
        subprocess.run(
            ["sh", ".ci/install-venv"],
            cwd=REPO,
            env=dict(env, PYTHON=sys.executable, VENV=f"{tmp}/venv"),
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - started


def bring_up_seconds(repeat=3):
    """start() in a fresh interpreter: import Django, migrate a new database, load the demo."""
    times = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", BRING_UP], cwd=REPO, check=True, capture_output=True, text=True
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return min(times)


def notebook_seconds(path):
    """(kernel start, first cell, whole notebook) for one notebook, in a fresh kernel."""
    import nbformat
    from jupyter_client import KernelManager
    from nbclient import NotebookClient
    from nbval.kernel import CURRENT_ENV_KERNEL_NAME, NbvalKernelspecManager

    nb = nbformat.read(path, as_version=4)
    manager = KernelManager(
        kernel_name=CURRENT_ENV_KERNEL_NAME, kernel_spec_manager=NbvalKernelspecManager()
    )
    client = NotebookClient(
        nb, km=manager, timeout=600, resources={"metadata": {"path": str(path.parent)}}
    )
    started = time.perf_counter()
    with client.setup_kernel():
        kernel_ready = time.perf_counter()
        first_done = None
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
            if first_done is None and cell.cell_type == "code":
                first_done = time.perf_counter()
        finished = time.perf_counter()
    return kernel_ready - started, first_done - kernel_ready, finished - started


def run(notebooks):
    rows = []
    try:
        rows.append(
            (
                "cold setup (empty package cache), s",
                f"{cold_setup_seconds():.1f}  (target: well under 30)",
            )
        )
    except subprocess.CalledProcessError as error:
        rows.append(("cold setup, s", f"failed (no registry?): {error.stderr[-200:]!r}"))
    rows.append(("start() in a fresh process, s", f"{bring_up_seconds():.2f}  (target: under 1)"))
    total = kernels = 0.0
    for path in notebooks:
        kernel, first, whole = notebook_seconds(path)
        total += whole
        kernels += kernel
        rows.append(
            (
                path.name,
                f"kernel start {kernel:.1f} s, first cell {first:.2f} s, whole {whole:.1f} s",
            )
        )
    if notebooks:
        rows.append(
            (
                "all notebooks, one after another, s",
                f"{total:.1f} (of which kernel start {kernels:.1f})",
            )
        )
    return rows
