"""Run lesson 10's example tests (``lesson_tests/``) with pytest, in a process of their own.

A notebook cell runs inside a running event loop, and the test runners need a thread without
one: Django's ``TestCase`` runs each ``async def`` test with ``async_to_sync``, pytest-asyncio
starts a loop of its own, and the sync fixtures use the sync ORM. So pytest runs as a
subprocess, exactly as a developer runs it in a terminal, and its output is printed as is.
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "lesson_tests"


def run_pytest(*paths, options=("-q", "-rA", "--tb=no")):
    """``python -m pytest <options> lesson_tests/<path>...`` from the repository: print its
    output, return the finished process (``.returncode``, ``.stdout``).

    The kernel's own database and settings stay out of the child's environment: pytest-django
    reads the settings from lesson_tests/pytest.ini and creates a test database of its own.
    """
    env = {name: value for name, value in os.environ.items()
           if name not in ("TUTORIAL_DATABASE", "DJANGO_SETTINGS_MODULE")}
    env.update(COLUMNS="100", CI="1")  # a fixed width; CI: pytest prints summaries untrimmed
    command = [sys.executable, "-m", "pytest", *options,
               *(str(Path("lesson_tests") / path) for path in paths)]
    run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    print(run.stdout.rstrip())
    if run.stderr.strip():
        print(run.stderr.rstrip())
    return run


def show(path, *names):
    """Print the source of the functions, methods or classes called ``names`` in one test file."""
    source = (TESTS / path).read_text()
    found = {node.name: node for node in ast.walk(ast.parse(source))
             if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}
    for name in names:
        node = found[name]
        start = min([node.lineno] + [decorator.lineno for decorator in node.decorator_list])
        print("\n".join(source.splitlines()[start - 1:node.end_lineno]) + "\n")
