"""make html: one page per lesson with its stored outputs, and a landing page listing them."""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tutorial_project.course.html_site import build_site, lesson_title_and_summary, main

REPO = Path(__file__).resolve().parents[1]
LESSON_00 = REPO / "notebooks" / "00_your_notebook_is_an_event_loop.ipynb"


def test_title_and_first_sentence():
    notebook = new_notebook(cells=[new_markdown_cell(
        "# 07 · Streaming\n\nStream `bytes` **now**. Then more.\n\n**What you'll do:** x")])
    assert lesson_title_and_summary(notebook) == ("07 · Streaming", "Stream `bytes` **now**.")


def test_site_has_a_landing_page_and_lesson_pages_with_stored_outputs(tmp_path):
    lesson = tmp_path / "lessons" / "01_test.ipynb"
    lesson.parent.mkdir()
    cell = new_code_cell("print('hi')", execution_count=1)
    cell.outputs = [new_output("stream", name="stdout", text="stored output 123\n")]
    nbformat.write(new_notebook(cells=[
        new_markdown_cell("# 01 · A <test> lesson\n\nIt uses `code`."), cell]), lesson)

    index = build_site([LESSON_00, lesson], tmp_path / "site")

    landing = index.read_text()
    assert landing.index("00_your_notebook_is_an_event_loop.html") < landing.index("01_test.html")
    assert "01 · A &lt;test&gt; lesson" in landing and "It uses <code>code</code>." in landing
    assert "00 · Your notebook is an event loop" in landing
    page = (tmp_path / "site" / "01_test.html").read_text()
    assert "stored output 123" in page
    page_00 = (tmp_path / "site" / "00_your_notebook_is_an_event_loop.html").read_text()
    assert "SynchronousOnlyOperation" in page_00  # the stored error output is on the page


def test_command_line_builds_every_lesson(tmp_path, capsys):
    assert main(["--to", str(tmp_path)]) == 0
    lessons = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert f"wrote {len(lessons)} lesson page(s)" in capsys.readouterr().out
    for lesson in lessons:
        assert (tmp_path / lesson.with_suffix(".html").name).exists()
