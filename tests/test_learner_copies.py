"""Learner copies: solutions become stubs, and a copy still runs to the end with "Run All"."""

import ast
import textwrap
from pathlib import Path

import nbformat
import pytest
from jupyter_client import KernelManager
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from nbval.kernel import CURRENT_ENV_KERNEL_NAME, NbvalKernelspecManager

from tutorial_project.course.learner_copies import (
    ANSWER_SUMMARY,
    ANSWER_TAG,
    STUB_COMMENT,
    as_python,
    defined_names,
    is_solution,
    learner_copy,
    lesson_paths,
    main,
    stub_problems,
    stub_source,
    write_copies,
)

REPO = Path(__file__).resolve().parents[1]
LESSON_00 = REPO / "notebooks" / "00_your_notebook_is_an_event_loop.ipynb"
NOT_SOLVED = "not solved yet"


def solution(source, **metadata):
    cell = new_code_cell(textwrap.dedent(source).strip())
    cell.metadata.update({"tags": ["solution"], "jupyter": {"source_hidden": True}, **metadata})
    return cell


# --- which names a solution defines -------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "names"),
    [
        ("async def view(request):\n    return 1", ["view"]),
        ("def helper():\n    pass\nclass Timing:\n    pass", ["helper", "Timing"]),
        ("answer = 42", ["answer"]),
        ("a = b = 1", ["a", "b"]),
        ("first, (second, *rest) = 1, (2, 3)", ["first", "second", "rest"]),
        ("limit: int = 5\ncount += 1", ["limit", "count"]),
        ("import asyncio\nfrom x import y\nview = y", ["view"]),  # imports are not the answer
        ("settings.X = 1\nitems[0] = 2", []),  # mutates objects, binds no name
        ("view = 1\nview = 2", ["view"]),  # once, first place
        ("if True:\n    nested = 1", []),  # only the top level is the cell's answer
        ("%time x = 1\nresult = await compute()", ["result"]),  # magics and top-level await
    ],
)
def test_defined_names(source, names):
    assert defined_names(source) == names


def test_stub_assigns_ellipsis_to_every_defined_name_and_says_where_to_write():
    stub = stub_source("async def fetch_all(urls):\n    ...\n\nTIMEOUT = 2")
    assert stub.splitlines() == [STUB_COMMENT, "fetch_all = ...", "TIMEOUT = ..."]
    assert "write your code here" in STUB_COMMENT
    namespace = {}
    exec(stub, namespace)  # the stub is valid Python that binds the names to Ellipsis
    assert namespace["fetch_all"] is Ellipsis and namespace["TIMEOUT"] is Ellipsis


# --- the copy of a notebook ----------------------------------------------------------------


def small_lesson():
    ran = new_code_cell("x = 1", execution_count=3)
    ran.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hi\n")]
    return new_notebook(
        cells=[
            new_markdown_cell("# 99 · Test"),
            ran,
            solution("def answer():\n    return 42"),
            new_code_cell("check(answer)", execution_count=5),
        ]
    )


def test_copy_stubs_solutions_clears_outputs_and_leaves_the_lesson_alone():
    lesson = small_lesson()
    before = nbformat.writes(lesson)
    copy = learner_copy(lesson)
    assert nbformat.writes(lesson) == before
    cells = copy.cells
    assert cells[0].source == "# 99 · Test"
    assert cells[1].source == "x = 1"
    code_cells = [cell for cell in cells if cell.cell_type == "code"]
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code_cells)
    assert cells[2].source == f"{STUB_COMMENT}\nanswer = ..."
    assert "source_hidden" not in cells[2].metadata.get("jupyter", {})  # the stub is in view
    assert cells[3].source == "check(answer)"
    # The answer follows the check, folded in markdown: one click away, never run.
    assert cells[4].cell_type == "markdown" and cells[4].metadata["tags"] == [ANSWER_TAG]
    assert cells[4].source.startswith(f"<details><summary>{ANSWER_SUMMARY}</summary>")
    assert "def answer():\n    return 42" in cells[4].source
    assert len(cells) == 5
    nbformat.validate(copy)


def test_write_copies_keeps_a_learners_work_unless_forced(tmp_path):
    lesson = tmp_path / "99_test.ipynb"
    nbformat.write(small_lesson(), lesson)
    copies = tmp_path / "learner"
    assert write_copies([lesson], copies) == [(copies / lesson.name, "written")]
    (copies / lesson.name).write_text("my work")
    assert write_copies([lesson], copies) == [(copies / lesson.name, "kept")]
    assert (copies / lesson.name).read_text() == "my work"
    assert write_copies([lesson], copies, force=True) == [(copies / lesson.name, "written")]
    assert "answer = ..." in (copies / lesson.name).read_text()


def test_command_line_reports_what_it_wrote(tmp_path, capsys):
    assert main([str(LESSON_00), "--to", str(tmp_path)]) == 0
    assert f"written {tmp_path / LESSON_00.name}" in capsys.readouterr().out


# --- every lesson follows the convention the copies rely on --------------------------------


def _check_call_arguments(cell):
    """Names passed to the check cell's last expression, ``await check_x(a, b)``."""
    body = ast.parse(as_python(cell.source)).body
    last = body[-1].value if body and isinstance(body[-1], ast.Expr) else None
    call = last.value if isinstance(last, ast.Await) else last
    if not isinstance(call, ast.Call):
        return []  # not the convention: the caller's assertion says what is expected
    return [arg.id for arg in call.args if isinstance(arg, ast.Name)]


@pytest.mark.parametrize("lesson", lesson_paths(), ids=lambda path: path.name[:2])
def test_each_solution_is_followed_by_a_check_of_the_names_it_defines(lesson):
    cells = nbformat.read(lesson, as_version=4).cells
    solutions = [i for i, cell in enumerate(cells) if is_solution(cell)]
    assert solutions, f"{lesson.name} has no cell tagged 'solution'"
    for index in solutions:
        stubbed = defined_names(cells[index].source)
        assert stubbed, f"{lesson.name} cell {index}: the solution defines no name to stub"
        check = cells[index + 1]
        assert check.cell_type == "code" and not is_solution(check)
        passed = _check_call_arguments(check)
        # core.exercise says "not solved yet" when any answer passed to it is `...`.
        assert set(passed) & set(stubbed), (
            f"{lesson.name} cell {index + 1}: the check should receive a name the solution "
            f"defines ({stubbed}) as a positional argument; it receives {passed}"
        )
        stored = "".join(
            "".join(output.get("data", {}).get("text/plain", "")) for output in check.outputs
        )
        # Strict nbval reruns the lesson and compares with this stored verdict, so the
        # reference solution passes on every run, not only when the lesson was saved.
        assert "✅ passed" in stored, f"{lesson.name} cell {index + 1}: the solution must pass"


@pytest.mark.parametrize("lesson", lesson_paths(), ids=lambda path: path.name[:2])
def test_no_cell_but_the_check_uses_a_stubbed_name(lesson):
    problems = stub_problems(nbformat.read(lesson, as_version=4))
    assert not problems, f"{lesson.name}: {problems}"


def test_stub_problems_finds_later_uses_of_a_stubbed_name():
    notebook = new_notebook(cells=[
        solution("async def view(request):\n    return 1"),
        new_code_cell("mount('/v/', view)\nawait check_view(view)"),  # before the check: breaks
        new_code_cell("response = await view(None)"),  # a later cell: breaks
        new_code_cell("def view(request):\n    return 2"),  # rebinds it: fine from here on
        new_code_cell("await view(None)"),
    ])
    problems = stub_problems(notebook)
    assert len(problems) == 2
    assert "code cell 2 uses ['view']" in problems[0] and "code cell 3" in problems[1]
    good = new_notebook(cells=[solution("answer = 42"), new_code_cell("check(answer)")])
    assert stub_problems(good) == []


# --- a learner copy really runs ------------------------------------------------------------


def execute(notebook, folder):
    manager = KernelManager(
        kernel_name=CURRENT_ENV_KERNEL_NAME, kernel_spec_manager=NbvalKernelspecManager()
    )
    # nbclient lets cells tagged raises-exception fail and stops at any other error.
    try:
        NotebookClient(
            notebook, km=manager, timeout=300, resources={"metadata": {"path": str(folder)}}
        ).execute()
    finally:  # nbclient leaves a kernel it was given running: stop it, not at the run's end
        if manager.has_kernel:
            manager.shutdown_kernel(now=True)
    return notebook


def verdicts(notebook):
    cells = notebook.cells
    return [
        "".join(output.get("data", {}).get("text/plain", ""))
        for index, cell in enumerate(cells)
        if index and is_solution(cells[index - 1])
        for output in cell.outputs
    ]


@pytest.mark.parametrize("lesson", lesson_paths(), ids=lambda path: path.name[:2])
def test_learner_copy_runs_to_the_end_and_says_not_solved_yet(lesson, tmp_path):
    [(path, _)] = write_copies([lesson], tmp_path)
    notebook = execute(nbformat.read(path, as_version=4), tmp_path)
    results = verdicts(notebook)
    assert results and all(NOT_SOLVED in text for text in results), results
    last_code = [cell for cell in notebook.cells if cell.cell_type == "code"][-1]
    assert last_code.execution_count is not None  # Run All reached the end
