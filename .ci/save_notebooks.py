"""Run notebooks top to bottom in a fresh kernel of this venv and save them, normalized.

Usage: python .ci/save_notebooks.py notebooks/00_*.ipynb ...

The kernel is this interpreter's (as nbval's --nbval-current-env), started in notebooks/.
Cells tagged "raises-exception" may raise; any other error stops the run and saves nothing.
Saved notebooks keep only what learners and nbval need: outputs (a stream's chunks merged),
execution counts 1..N, cell tags, and the python3 kernelspec.
"""

import re
import sys
from pathlib import Path

import nbformat
from jupyter_client import KernelManager
from nbclient import NotebookClient
from nbval.kernel import CURRENT_ENV_KERNEL_NAME, NbvalKernelspecManager

REPO = Path(__file__).resolve().parents[1]
# Tracebacks are not compared by nbval, but learners read them: no machine paths in them.
PATH_REWRITES = [
    (re.compile(r"[^\s:'\"(]*/site-packages/"), "site-packages/"),
    (re.compile(r"[^\s:'\"(]*/lib/python(3\.\d+)/"), r"python\1/"),
    (re.compile(r"/tmp/ipykernel_\d+/\d+\.py"), "<cell>"),
    (re.compile(re.escape(str(REPO)) + "/"), ""),
]
KEPT_CELL_METADATA = ("tags", "jupyter")
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def run(path):
    nb = nbformat.read(path, as_version=4)
    manager = KernelManager(
        kernel_name=CURRENT_ENV_KERNEL_NAME, kernel_spec_manager=NbvalKernelspecManager()
    )
    client = NotebookClient(
        nb,
        km=manager,
        timeout=600,
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    return nb


def normalize(nb):
    nb.metadata = nbformat.NotebookNode(kernelspec=KERNELSPEC, language_info={"name": "python"})
    for cell in nb.cells:
        if "outputs" in cell:
            cell.outputs = _merged_streams(cell.outputs)
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                output.traceback = [_without_machine_paths(line) for line in output.traceback]
        cell.metadata = nbformat.NotebookNode(
            {k: v for k, v in cell.metadata.items() if k in KEPT_CELL_METADATA}
        )
    return nb


def _merged_streams(outputs):
    """One output per run of stdout (or stderr) text: a busy kernel sends a print in chunks."""
    merged = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (output.output_type == "stream" and previous is not None
                and previous.output_type == "stream" and previous.name == output.name):
            previous.text += output.text
        else:
            merged.append(output)
    return merged


def _without_machine_paths(text):
    for pattern, replacement in PATH_REWRITES:
        text = pattern.sub(replacement, text)
    return text


def main(paths):
    for name in paths:
        path = Path(name).resolve()
        print(f"running {path.name} ...", flush=True)
        nb = normalize(run(path))
        nbformat.validate(nb)
        nbformat.write(nb, path)
        print(f"saved {path.name}")


if __name__ == "__main__":
    main(sys.argv[1:])
