"""make html: what the book site is made from (Sphinx itself runs in tests/e2e/test_book_site.py).

These tests need no Sphinx: they check the staged source folder that Sphinx reads, the
index's sentences and the folding of the answers.
"""

import json
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tutorial_project.course.book import Lesson, index_page, stage, with_answers_folded

REPO = Path(__file__).resolve().parents[1]
LESSONS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
INTRO = """# 07 · Streaming

Some answers take a while. So far nothing here says what you do.

**What you'll do:** stream a response from an async view, and measure when its first byte
arrives.

**What you'll learn:**
- streaming.

**What you'll need:** lesson 02. Time: ~40 min (25 teaching,
15 exercises).
"""


def lesson_with_an_exercise():
    solution = new_code_cell("async def answer():\n    return 42", execution_count=2)
    solution.metadata["tags"] = ["solution"]
    check = new_code_cell("check(answer)", execution_count=3)
    check.outputs = [new_output("stream", name="stdout", text="✅ right\n")]
    return new_notebook(cells=[
        new_markdown_cell(INTRO),
        new_code_cell("print('setup')", execution_count=1),
        new_markdown_cell("## Your turn\n\n**Exercise 07.2.** Write `answer()`."),
        solution,
        check,
    ])  # fmt: skip


def test_a_lesson_gives_its_title_time_and_what_you_do():
    lesson = Lesson("07_streaming.ipynb", lesson_with_an_exercise())
    assert lesson.title == "07 · Streaming"
    assert lesson.time == "~40 min"
    assert lesson.summary() == (
        "You stream a response from an async view, and measure when its first byte arrives."
    )


def test_every_lesson_has_a_title_a_time_and_a_useful_sentence_for_the_index():
    assert LESSONS
    for path in LESSONS:
        lesson = Lesson.read(path)
        assert lesson.title.startswith(path.name[:2] + " · "), path.name
        assert lesson.time.startswith("~") and lesson.time.endswith("min"), path.name
        sentence = lesson.summary()
        assert sentence.startswith("You ") and sentence.endswith("."), path.name
        assert len(sentence.split()) >= 8, f"{path.name}: {sentence!r} says too little"
        assert "\n" not in sentence


def test_answers_are_folded_and_labelled_with_their_exercise():
    notebook = lesson_with_an_exercise()
    folded = with_answers_folded(notebook)
    solution = folded.cells[3]
    assert "hide-cell" in solution.metadata["tags"] and "solution" in solution.metadata["tags"]
    assert solution.metadata["mystnb"]["code_prompt_show"] == "Show the answer to Exercise 07.2"
    assert solution.metadata["mystnb"]["code_prompt_hide"] == "Hide the answer to Exercise 07.2"
    assert solution.source == notebook.cells[3].source  # folded, not removed
    # Nothing else is folded, and the lesson itself is left as it was.
    assert [c.metadata.get("tags", []) for c in folded.cells if c is not solution] == [[]] * 4
    assert notebook.cells[3].metadata["tags"] == ["solution"]


def test_exercise_headings_of_every_style_name_the_answer():
    notebook = lesson_with_an_exercise()
    for heading in ("### Exercise 07.2 · Stream it", "### Your turn · exercise 07.2"):
        notebook.cells[2].source = f"{heading}\n\nWrite `answer()`."
        folded = with_answers_folded(notebook)
        assert folded.cells[3].metadata["mystnb"]["code_prompt_show"] == (
            "Show the answer to Exercise 07.2"
        )


def test_an_answer_without_a_numbered_exercise_is_still_called_an_answer():
    notebook = lesson_with_an_exercise()
    notebook.cells[2].source = "## Your turn\n\nWrite `answer()`."
    folded = with_answers_folded(notebook)
    assert folded.cells[3].metadata["mystnb"]["code_prompt_show"] == "Show the answer"


def test_the_index_lists_every_lesson_in_order_with_its_sentence():
    lessons = [Lesson.read(path) for path in LESSONS]
    page = index_page(lessons)
    toctree = page.split("```{toctree}")[1].split("```")[0]
    assert [line for line in toctree.splitlines() if line and not line.startswith(":")] == [
        path.stem for path in LESSONS
    ]
    positions = [page.index(f"]({path.name})") for path in LESSONS]
    assert positions == sorted(positions)
    for lesson in lessons:
        assert f"**[{lesson.title}]({lesson.name})** ({lesson.time}). {lesson.summary()}" in page


def test_stage_writes_the_lessons_folded_and_the_downloads_as_they_are(tmp_path):
    lesson_path = tmp_path / "lessons" / "07_streaming.ipynb"
    lesson_path.parent.mkdir()
    nbformat.write(lesson_with_an_exercise(), lesson_path)
    source = tmp_path / "src"
    (source / "stale.ipynb").parent.mkdir()
    (source / "stale.ipynb").write_text("{}")  # left over from an earlier build

    staged = stage([lesson_path, LESSONS[0]], source)

    assert [lesson.name for lesson in staged] == [LESSONS[0].name, "07_streaming.ipynb"]
    assert not (source / "stale.ipynb").exists()
    page = nbformat.read(source / "07_streaming.ipynb", as_version=4)
    assert "hide-cell" in page.cells[3].metadata["tags"]
    assert page.cells[4].outputs[0].text == "✅ right\n"  # stored outputs kept
    download = source / "downloads" / "07_streaming.ipynb"
    assert download.read_bytes() == lesson_path.read_bytes()
    learner = json.loads((source / "downloads" / "learner" / "07_streaming.ipynb").read_text())
    learner_solution = "".join(learner["cells"][3]["source"])
    assert "return 42" not in learner_solution and "answer = ..." in learner_solution
    assert all(not cell.get("outputs") for cell in learner["cells"])
    index = (source / "index.md").read_text()
    assert "07_streaming" in index and LESSONS[0].stem in index
