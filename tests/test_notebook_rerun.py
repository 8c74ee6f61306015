"""Every lesson runs twice in a row in one kernel, the same both times, leaving nothing behind.

nbval checks one clean run against the stored outputs. This runs each notebook twice in a
single kernel and compares the second run with the stored outputs too (sanitized the same
way), then checks that the kernel has no child process and no extra thread left over.
Notebooks: $TUTORIAL_NOTEBOOKS (space-separated; set by `make test`), else all of them.
"""

import os
import re
from pathlib import Path

import nbformat
import pytest
from jupyter_client import KernelManager
from nbclient import NotebookClient
from nbval.kernel import CURRENT_ENV_KERNEL_NAME, NbvalKernelspecManager
from nbval.plugin import get_sanitize_patterns

REPO = Path(__file__).resolve().parents[1]
SANITIZE = get_sanitize_patterns((REPO / ".nbval-sanitize.cfg").read_text())
NOTEBOOKS = [
    REPO / name for name in os.environ.get("TUTORIAL_NOTEBOOKS", "").split()
] or sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))

# Worker pools (asyncio's default executor, asgiref's and Django's executors) keep idle
# threads by design; anything else still alive after a lesson was left behind by it.
POOL_THREAD = re.compile(r"^(ThreadPoolExecutor-\d+_\d+|asyncio_\d+)$")
LEFTOVERS = """
import json, threading
import psutil
def alive(process):  # a zombie has ended; it only waits for its parent to reap it
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
children = [f"{p.pid} ({p.name()})" for p in psutil.Process().children() if alive(p)]
# pyzmq's garbage collector: the kernel's own, started once when it first sends a large
# message (an image, say) without copying; nothing a lesson started.
kernel_own = [t for t in threading.enumerate() if type(t).__module__.startswith("zmq.")]
print(json.dumps({"threads": sorted(f"{t.name}#{t.ident}" for t in threading.enumerate()
                                    if t not in kernel_own),
                  "children": children}))
"""


def comparable(outputs):
    """What nbval compares, in order: stream text per stream, text/plain, error name+value."""
    streams, items = {}, []
    for output in outputs:
        kind = output["output_type"]
        if kind == "stream":
            if output["name"] not in streams:
                streams[output["name"]] = len(items)
                items.append([f"stream:{output['name']}", ""])
            items[streams[output["name"]]][1] += output["text"]
        elif kind in ("execute_result", "display_data"):
            items.append(["data", output.get("data", {}).get("text/plain", "")])
        elif kind == "error":
            items.append(["error", f"{output['ename']}: {output['evalue']}"])
    return [[kind, sanitize(text)] for kind, text in items]


def sanitize(text):
    for pattern, replacement in SANITIZE:
        text = re.sub(pattern, replacement, text)
    return text


def kernel_state(client):
    import json

    cell = nbformat.v4.new_code_cell(LEFTOVERS)
    client.execute_cell(cell, 0)
    state = json.loads(cell.outputs[0]["text"])
    state["threads"] = {t for t in state["threads"] if not POOL_THREAD.match(t.split("#")[0])}
    return state


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_twice_in_one_kernel_and_leaves_nothing_behind(path):
    stored = nbformat.read(path, as_version=4)
    expected = [comparable(c.outputs) for c in stored.cells if c.cell_type == "code"]
    manager = KernelManager(
        kernel_name=CURRENT_ENV_KERNEL_NAME, kernel_spec_manager=NbvalKernelspecManager()
    )
    runner = nbformat.read(path, as_version=4)
    client = NotebookClient(
        runner, km=manager, timeout=600, resources={"metadata": {"path": str(path.parent)}}
    )
    try:
        with client.setup_kernel():
            before = kernel_state(client)
            for run in (1, 2):
                cells = nbformat.read(path, as_version=4).cells
                for index, cell in enumerate(cells):
                    client.execute_cell(cell, index)  # raises unless tagged raises-exception
                after = kernel_state(client)
                assert after["children"] == [], f"run {run} left processes: {after['children']}"
                extra = after["threads"] - before["threads"]
                assert not extra, f"run {run} left threads running: {sorted(extra)}"
            second = [comparable(c.outputs) for c in cells if c.cell_type == "code"]
    finally:  # nbclient leaves a kernel it was given running: stop it, not at the run's end
        if manager.has_kernel:
            manager.shutdown_kernel(now=True)
    for number, (want, got) in enumerate(zip(expected, second, strict=True), start=1):
        assert got == want, f"code cell {number} differs on the second run in one kernel"
