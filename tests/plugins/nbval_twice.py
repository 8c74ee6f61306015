"""Loaded in `make test` (``-p nbval_twice``): nbval runs every lesson twice in its one kernel.

A learner reruns a lesson from the top in the same kernel, so every notebook must give the
stored outputs a second time and leave no process or thread behind. nbval already runs each
notebook once in a kernel of its own and compares every cell with the stored outputs; this
appends a second pass of the same cells to that kernel (compared the same way) and, before
the first pass and after each pass, a look at the kernel's threads and child processes. One
kernel does both runs, so each lesson runs twice per Python, not three times.
"""

import copy
import json
import re

import pytest
from nbval.plugin import IPyNbCell, IPyNbFile

# Worker pools (asyncio's default executor, asgiref's and Django's executors) keep idle
# threads by design; anything else still alive after a lesson was left behind by it.
POOL_THREAD = re.compile(r"^(ThreadPoolExecutor-\d+_\d+|asyncio_\d+)$")
KERNEL_STATE = """
import json as _json, threading as _threading
import psutil as _psutil
def _alive(process):  # a zombie has ended; it only waits for its parent to reap it
    try:
        return process.status() != _psutil.STATUS_ZOMBIE
    except _psutil.NoSuchProcess:
        return False
# pyzmq's garbage collector: the kernel's own, started once when it first sends a large
# message (an image, say) without copying; nothing a lesson started.
print(_json.dumps({
    "threads": sorted(f"{t.name}#{t.ident}" for t in _threading.enumerate()
                      if not type(t).__module__.startswith("zmq.")),
    "children": [f"{p.pid} ({p.name()})" for p in _psutil.Process().children() if _alive(p)],
}))
del _json, _threading, _psutil, _alive
"""
TIMEOUT = 60


def kernel_state(kernel):
    """The kernel's threads (less the worker pools') and live child processes, read in it."""
    msg_id = kernel.execute_cell_input(KERNEL_STATE, allow_stdin=False)
    kernel.await_reply(msg_id, timeout=TIMEOUT)
    printed = []
    while True:
        msg = kernel.get_message("iopub", timeout=TIMEOUT)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        content = msg["content"]
        if msg["msg_type"] == "stream":
            printed.append(content["text"])
        elif msg["msg_type"] == "error":
            raise RuntimeError(f"reading the kernel's state failed: {content['evalue']}")
        elif msg["msg_type"] == "status" and content["execution_state"] == "idle":
            break
    state = json.loads("".join(printed))
    threads = {t for t in state["threads"] if not POOL_THREAD.match(t.split("#")[0])}
    return threads, state["children"]


class KernelLeftovers(pytest.Item):
    """Before the first pass: note the kernel's threads. After a pass: nothing new is alive."""

    def __init__(self, *, after_run=None, **kwargs):
        super().__init__(**kwargs)
        self.after_run = after_run

    def runtest(self):
        notebook = self.parent
        if not notebook.kernel.is_alive():
            raise RuntimeError("the notebook's kernel is not running")
        threads, children = kernel_state(notebook.kernel)
        if self.after_run is None:
            notebook.threads_at_start = threads
            return
        assert children == [], f"run {self.after_run} left processes: {children}"
        extra = threads - notebook.threads_at_start
        assert not extra, f"run {self.after_run} left threads running: {sorted(extra)}"

    def reportinfo(self):
        return self.path, None, self.name


def pytest_collection_modifyitems(items):
    by_notebook = {}
    for item in items:
        if isinstance(item, IPyNbCell):
            by_notebook.setdefault(item.parent, []).append(item)
    for notebook, cells in by_notebook.items():
        assert isinstance(notebook, IPyNbFile)
        second = [
            IPyNbCell.from_parent(
                notebook, name=f"{cell.name} (second run)", cell_num=cell.cell_num,
                # A copy: nbval merges the stored stream outputs in place as it compares them.
                cell=copy.deepcopy(cell.cell), options=cell.options,
            )
            for cell in cells
        ]
        start = items.index(cells[0])
        end = items.index(cells[-1]) + 1
        items[start:end] = [
            KernelLeftovers.from_parent(notebook, name="threads at start"),
            *cells,
            KernelLeftovers.from_parent(notebook, name="nothing left after run 1", after_run=1),
            *second,
            KernelLeftovers.from_parent(notebook, name="nothing left after run 2", after_run=2),
        ]
