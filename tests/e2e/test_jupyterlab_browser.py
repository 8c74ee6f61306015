"""Lessons run in a real JupyterLab, driven through its UI by Debian's headless Chromium.

JupyterLab is started on a free loopback port with token auth, on copies of the lessons in a
temporary folder (the browser run never saves over the real lessons), with its own Jupyter
config, data and runtime folders. Chromium runs "Run > Run All Cells" from the menu; the test
then reads every cell from JupyterLab's own notebook model and saves a screenshot in
.test-output/. Run it with `make e2e`; `.ci/run` does, once, after the unit tests.
"""

import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import sync_playwright
from system_chromium import CHROMIUM_ARGS

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / ".test-output"
# Lesson 00, and one lesson from the middle of the course: the first of these that exists
# (04, the async ORM, runs in the browser in under a minute even on a busy 2-core machine).
MIDDLE_LESSONS = ["04", "05", "06", "02", "03", "07", "01", "09", "10", "11"]
RUN_TIMEOUT_S = 240



def lessons_to_run():
    lessons = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    by_number = {path.name[:2]: path for path in lessons}
    chosen = [by_number["00"]]
    middle = next((by_number[n] for n in MIDDLE_LESSONS if n in by_number), None)
    return chosen + ([middle] if middle else [])


def copy_without_outputs(lesson, target):
    """So that every execution count and output the test reads comes from this run."""
    notebook = nbformat.read(lesson, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(notebook, target)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 serving copies of the lessons; yields its base URL."""
    root = tmp_path_factory.mktemp("lab")
    for lesson in lessons_to_run():
        copy_without_outputs(lesson, root / lesson.name)
    home = tmp_path_factory.mktemp("jupyter-home")
    env = {
        **os.environ,
        # Nothing from the user's own Jupyter setup (kernels, settings, workspaces) leaks in.
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
    }
    # Answer the "notified about Jupyter news?" question up front: no news, no popup.
    notification = home / "settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    port, token = free_port(), secrets.token_hex(16)
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    if os.geteuid() == 0:  # CI containers run as root; Jupyter refuses that unless told
        command.append("--allow-root")
    log = (home / "lab.log").open("w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(f"{base}/api/status?token={token}", server, home / "lab.log")
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _wait_until_up(url, server, log_path, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"JupyterLab did not answer within {timeout} s:\n{log_path.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def browser(chromium, tmp_path_factory):
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),  # a new, empty --user-data-dir
            executable_path=str(chromium),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


# JavaScript run in the page, against JupyterLab's own objects (exposed by the server flag).
NOTEBOOK = "window.jupyterapp && window.jupyterapp.shell.currentWidget"
KERNEL_IDLE = f"""() => {{
    const panel = {NOTEBOOK};
    const kernel = panel && panel.sessionContext && panel.sessionContext.session
        && panel.sessionContext.session.kernel;
    return !!(kernel && kernel.status === "idle" && panel.content.widgets.length);
}}"""
CELLS = f"""() => {{
    const panel = {NOTEBOOK};
    return panel.content.widgets.map((cell) => {{
        const json = cell.model.toJSON();
        return {{
            type: json.cell_type,
            tags: (json.metadata && json.metadata.tags) || [],
            count: json.execution_count === undefined ? null : json.execution_count,
            busy: cell.node.querySelector(".jp-InputPrompt") ?
                cell.node.querySelector(".jp-InputPrompt").textContent.includes("*") : false,
            errors: (json.outputs || []).filter((o) => o.output_type === "error")
                .map((o) => o.ename + ": " + o.evalue),
        }};
    }});
}}"""


def run_all_cells_through_the_ui(page):
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()


def wait_for_the_run_to_end(page):
    """Until every code cell ran, or the run stopped (a cell failed), and the kernel is idle."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        page.wait_for_timeout(1000)
        cells = [cell for cell in page.evaluate(CELLS) if cell["type"] == "code"]
        if not page.evaluate(KERNEL_IDLE) or any(cell["busy"] for cell in cells):
            continue
        unexpected = [c for c in cells if c["errors"] and "raises-exception" not in c["tags"]]
        if unexpected or all(cell["count"] is not None for cell in cells):
            return cells
    pytest.fail(f"the lesson did not finish running within {RUN_TIMEOUT_S} s")


@pytest.fixture(scope="module")
def lab_page(browser, lab):
    """One JupyterLab tab for every lesson: the app loads once (it is the slow part)."""
    base, token = lab
    page = browser.new_page()
    page.goto(f"{base}/lab?token={token}&reset", timeout=90_000)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.started", timeout=90_000)
    yield page
    page.close()


def open_notebook(page, name):
    page.evaluate(
        "(path) => window.jupyterapp.commands.execute('docmanager:open', {path})", name
    )
    is_open = f"(name) => {{ const p = {NOTEBOOK}; return !!(p && p.context.path === name); }}"
    page.wait_for_function(is_open, arg=name, timeout=60_000)
    page.wait_for_function(KERNEL_IDLE, timeout=90_000)


def close_notebook(page):
    # Shut the kernel down with the tab, so the next lesson starts in a fresh kernel.
    page.evaluate(
        f"""async () => {{
            const panel = {NOTEBOOK};
            await panel.sessionContext.shutdown();
            panel.dispose();
        }}"""
    )


@pytest.mark.parametrize("lesson", lessons_to_run(), ids=lambda path: path.name[:2])
def test_lesson_runs_in_jupyterlab(lab_page, lesson):
    page = lab_page
    open_notebook(page, lesson.name)
    try:
        run_all_cells_through_the_ui(page)
        cells = wait_for_the_run_to_end(page)
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=OUTPUT / f"jupyterlab-{lesson.stem}.png")
    finally:
        close_notebook(page)

    unexpected = {
        f"code cell {index}": cell["errors"]
        for index, cell in enumerate(cells)
        if cell["errors"] and "raises-exception" not in cell["tags"]
    }
    assert not unexpected, f"{lesson.name}: errors in cells not tagged raises-exception"
    not_run = [index for index, cell in enumerate(cells) if cell["count"] is None]
    assert not not_run, f"{lesson.name}: code cells that never ran: {not_run}"
    expected_to_fail = [cell for cell in cells if "raises-exception" in cell["tags"]]
    assert all(cell["errors"] for cell in expected_to_fail), "a demonstrated error did not occur"
