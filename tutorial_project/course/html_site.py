"""Render the lessons, with their stored outputs, to a static HTML site: ``make html``.

    python -m tutorial_project.course.html_site [--to .site] [notebooks/NN_*.ipynb ...]

For attendees who read along without running anything. Nothing is executed: the pages
show the outputs saved in the lessons (the ones strict nbval checks). The landing page
``index.html`` lists the lessons with their titles and opening sentences.
"""

import argparse
import html
import re
import sys
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

REPO = Path(__file__).resolve().parents[2]
LESSONS_DIR = REPO / "notebooks"
SITE_DIR = REPO / ".site"

INDEX_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Django async tutorial</title>
<style>
  body {{ font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto;
         padding: 0 1rem; line-height: 1.5; color: #222; }}
  li {{ margin-bottom: 0.8rem; }}
  .why {{ color: #555; }}
</style>
</head>
<body>
<h1>Django async tutorial</h1>
<p>The lessons with their real, stored outputs. To run them yourself, clone the repository
and run <code>make venv</code> then <code>make lab</code>.</p>
<ol start="0">
{items}
</ol>
</body>
</html>
"""


def lesson_title_and_summary(notebook):
    """The first heading of the lesson, and the first sentence after it."""
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        lines = cell.source.strip().splitlines()
        if lines and lines[0].startswith("#"):
            title = lines[0].lstrip("#").strip()
            body = " ".join(line.strip() for line in lines[1:] if line.strip())
            first_sentence = re.split(r"(?<=[.!?])\s", body, maxsplit=1)[0] if body else ""
            return title, first_sentence
    return None, ""


def render_lesson(path, exporter):
    notebook = nbformat.read(path, as_version=4)
    title, summary = lesson_title_and_summary(notebook)
    title = title or path.stem
    body, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": title}})
    return title, summary, body


def build_site(lessons, destination=SITE_DIR):
    """Write one page per lesson and ``index.html``; returns the index path."""
    destination.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="lab")
    items = []
    for lesson in sorted((Path(path) for path in lessons), key=lambda path: path.name):
        title, summary, page = render_lesson(lesson, exporter)
        page_name = lesson.with_suffix(".html").name
        (destination / page_name).write_text(page, encoding="utf-8")
        items.append(
            f'<li><a href="{html.escape(page_name)}">{html.escape(title)}</a>'
            f'<br><span class="why">{_markdown_to_text(summary)}</span></li>'
        )
    index = destination / "index.html"
    index.write_text(INDEX_TEMPLATE.format(items="\n".join(items)), encoding="utf-8")
    return index


def _markdown_to_text(text):
    """Enough markdown for one sentence: `code` and **bold**, the rest escaped."""
    text = html.escape(text)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lessons", nargs="*", type=Path, help="default: every lesson")
    parser.add_argument("--to", type=Path, default=SITE_DIR, help="destination folder")
    args = parser.parse_args(argv)
    lessons = args.lessons or sorted(LESSONS_DIR.glob("[0-9][0-9]_*.ipynb"))
    index = build_site(lessons, args.to)
    print(f"wrote {len(lessons)} lesson page(s); open {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
