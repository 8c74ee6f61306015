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


# The single list every learner installed before the learner and maintainer lists were split.
BEFORE_SPLIT = "f7ba385:requirements.txt"


def cold_setup(for_="learner"):
    """(seconds, MB) to create a venv and install it from an empty package cache.

    ``for_`` is what .ci/install-venv installs: "learner" (``make lab``) or "maintainer".
    """
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, UV_CACHE_DIR=f"{tmp}/uv-cache", PIP_NO_CACHE_DIR="1",
                   PYTHON=sys._base_executable, VENV=f"{tmp}/venvs/venv", FOR=for_)
        started = time.perf_counter()
        subprocess.run(["sh", ".ci/install-venv"], cwd=REPO, env=env, check=True,
                       capture_output=True)
        return time.perf_counter() - started, folder_mb(Path(tmp) / "venvs" / "venv")


def cold_setup_before_split():
    """(seconds, MB) for the one list learners installed before the split, for comparison."""
    old = subprocess.run(["git", "show", BEFORE_SPLIT], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "requirements.txt").write_text(old)
        venv = Path(tmp) / "venv"
        subprocess.run([sys._base_executable, "-m", "venv", str(venv)], check=True)
        python = venv / ("Scripts" if sys.platform == "win32" else "bin") / "python"
        started = time.perf_counter()
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "uv==0.13.9"],
                       check=True, capture_output=True)
        uv = python.parent / "uv"
        subprocess.run([str(uv), "pip", "install", "--quiet", "--python", str(python), "-r",
                        str(Path(tmp) / "requirements.txt")], check=True, capture_output=True,
                       env=dict(os.environ, UV_CACHE_DIR=f"{tmp}/uv-cache"))
        return time.perf_counter() - started, folder_mb(venv)


def folder_mb(folder):
    """Bytes of every file below ``folder`` (links not followed), as ``du`` would, in MB."""
    total = sum(path.lstat().st_size for path in folder.rglob("*") if not path.is_dir())
    return total / 2**20


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
    setups = [("learner venv (make lab)", lambda: cold_setup("learner")),
              ("learner + maintainers' tools (make test)", lambda: cold_setup("maintainer")),
              ("before the split: one list for all", cold_setup_before_split)]
    for label, measure in setups:
        try:
            seconds, size = measure()
            rows.append((f"cold setup, {label}", f"{seconds:.1f} s, {size:.0f} MB"))
        except subprocess.CalledProcessError as error:
            rows.append((f"cold setup, {label}", f"failed (no registry?): {error.stderr!r:.200}"))
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
