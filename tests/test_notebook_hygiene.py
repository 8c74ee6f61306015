"""What learners and strict nbval rely on, checked for every lesson without running it."""

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SETUP_CELL = "from tutorial_project import start; start()"
MACHINE_VALUE = re.compile(
    r"(/tmp/|/root/|/home/|/work/|ipykernel_\d+|0x[0-9a-f]{8,}|127\.0\.0\.1:\d{4,5})"
)
TOP_LEVEL = {"notebooks", "tutorial_project", "tests", "requirements.txt", "Makefile", "README.md",
             "LICENSE", "pyproject.toml", "lesson_tests"}


def load(path):
    return json.loads(path.read_text())


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def source(cell):
    return "".join(cell["source"])


def test_top_level_holds_only_the_documented_entries():
    tracked = {p.name for p in REPO.iterdir() if not p.name.startswith(".")}
    generated = {"build"}  # ignored output folders may exist locally
    assert tracked - generated <= TOP_LEVEL


def test_lessons_are_numbered_from_00_without_gaps():
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers == list(range(len(numbers)))


def test_readme_lists_every_lesson():
    readme = (REPO / "README.md").read_text()
    missing = [p.name for p in NOTEBOOKS if f"notebooks/{p.name}" not in readme]
    assert not missing, f"README's lesson table lacks {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_saved_after_one_clean_run_with_minimal_metadata(path):
    nb = load(path)
    counts = [c["execution_count"] for c in code_cells(nb)]
    assert counts == list(range(1, len(counts) + 1)), "run `make save` for this lesson"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert set(nb["metadata"]) <= {"kernelspec", "language_info"}
    for cell in nb["cells"]:
        assert set(cell.get("metadata", {})) <= {"tags", "jupyter"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_machine_values_skips_or_unsafe_switches(path):
    for number, cell in enumerate(code_cells(load(path)), start=1):
        text = source(cell)
        tags = cell.get("metadata", {}).get("tags", [])
        assert "NBVAL_SKIP" not in text and "nbval-skip" not in tags, f"cell {number} is skipped"
        assert not ("DJANGO_ALLOW_ASYNC_UNSAFE" in text and "environ" in text), f"cell {number}"
        found = MACHINE_VALUE.search(json.dumps(cell["outputs"]))
        assert not found, f"code cell {number} output holds {found.group(0)!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_follows_the_lesson_skeleton(path):
    nb = load(path)
    title = source(nb["cells"][0])
    assert title.startswith(f"# {path.name[:2]} · "), "title cell: '# NN · Topic'"
    for heading in ("What you'll do", "What you'll learn", "What you'll need"):
        assert heading in title, f"title cell lacks *{heading}*"
    assert source(code_cells(nb)[0]) == SETUP_CELL, "the first code cell brings up the project"
    markdown = "\n".join(source(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    for heading in ("## Your turn", "## Recap", "## Next"):
        assert heading in markdown, f"lesson lacks a '{heading}' section"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_solution_cell_is_followed_by_its_check(path):
    cells = load(path)["cells"]
    solutions = [i for i, c in enumerate(cells) if "solution" in c["metadata"].get("tags", [])]
    assert solutions, "a lesson has exercises with reference solutions tagged 'solution'"
    for i in solutions:
        following = next(c for c in cells[i + 1 :] if c["cell_type"] == "code")
        assert "check" in source(following), f"cell {i}: the cell after a solution checks it"
