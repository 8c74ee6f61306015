"""Build the course as a static book site with Sphinx and myst-nb: ``make html``.

    python -m tutorial_project.course.book [--to .site] [notebooks/NN_*.ipynb ...]

For people who read along without running anything. Nothing is executed: the pages show
the outputs stored in the lessons (the ones strict nbval checks). Sphinx reads a staged
source folder (``.book/_build/src``, made here) with the configuration in ``.book/``:

- ``index.md``: the landing page, one line per lesson with its time and what you do in it;
- a copy of each lesson whose ``solution`` cells are folded behind "Show the answer";
- ``downloads/``: each lesson as it is in the repository, and its learner copy
  (``make exercises`` writes the same copies to notebooks/learner/).

The toolchain (Sphinx, myst-nb, sphinx-book-theme) is the maintainers', pinned in
``.ci/requirements-maintainer.txt``; ``make html`` installs it into the venv.
"""

import argparse
import re
import shutil
import sys
from pathlib import Path

import nbformat

from tutorial_project.course.learner_copies import is_solution, write_copies

REPO = Path(__file__).resolve().parents[2]
LESSONS_DIR = REPO / "notebooks"
CONF_DIR = REPO / ".book"
BUILD_DIR = CONF_DIR / "_build"  # ignored by git
SITE_DIR = REPO / ".site"
DOWNLOADS = "downloads"
LEARNER_DOWNLOADS = f"{DOWNLOADS}/learner"
# "**Exercise 00.1.**", "### Exercise 05.1 · ...", "### Your turn · exercise 12.1"
EXERCISE = re.compile(r"\b[Ee]xercise (\d+\.\d+)\b")


class Lesson:
    """What the site says about a lesson, read from its first markdown cell."""

    def __init__(self, path, notebook):
        self.path = Path(path)
        self.notebook = notebook
        intro = next((c.source for c in notebook.cells if c.cell_type == "markdown"), "")
        lines = intro.strip().splitlines()
        heading = lines[0] if lines and lines[0].startswith("#") else ""
        self.title = heading.lstrip("#").strip() or self.path.stem
        self.time = _match(r"Time:\s*(~?\s*\d+\s*min)", intro)
        what_you_do = _match(r"\*\*What you'll do:\*\*(.*?)(?:\n\n|$)", intro)
        self.what_you_do = " ".join(what_you_do.split())

    @classmethod
    def read(cls, path):
        return cls(path, nbformat.read(path, as_version=4))

    @property
    def name(self):
        return self.path.name

    def summary(self):
        """One sentence for the index: what you do in the lesson."""
        if not self.what_you_do:
            return ""
        sentence = f"You {self.what_you_do}"
        return sentence if sentence.endswith((".", "!", "?")) else sentence + "."


def _match(pattern, text):
    found = re.search(pattern, text, re.S)
    return found.group(1).strip() if found else ""


def with_answers_folded(notebook):
    """A copy whose solution cells sit behind a click labelled as the exercise's answer.

    myst-nb folds a cell tagged ``hide-cell`` into a ``<details>`` element; the label
    names the exercise set in the markdown above the answer.
    """
    copy = nbformat.from_dict(notebook)
    exercise = None
    for cell in copy.cells:
        if cell.cell_type == "markdown":
            numbers = EXERCISE.findall(cell.source)
            exercise = f"Exercise {numbers[-1]}" if numbers else exercise
        elif is_solution(cell):
            tags = cell.metadata.setdefault("tags", [])
            tags.append("hide-cell")
            answer = f"the answer to {exercise}" if exercise else "the answer"
            cell.metadata["mystnb"] = {
                "code_prompt_show": f"Show {answer}",
                "code_prompt_hide": f"Hide {answer}",
            }
    return copy


def index_page(lessons):
    """The landing page (MyST markdown): the lessons in order, one useful sentence each."""
    lines = [
        "# Django async tutorial",
        "",
        "Django's asynchronous support, taught by running it: every page is a lesson notebook",
        "with the outputs it really produced. Answers to the exercises are folded away; open",
        "them when you have tried. To run the lessons yourself, download a notebook (or its",
        "learner copy, with the answers removed), launch it on Binder, or clone the",
        "repository and run `make venv` then `make lab`.",
        "",
        "```{toctree}",
        ":hidden:",
        ":maxdepth: 1",
        "",
        *(lesson.path.stem for lesson in lessons),
        "```",
        "",
    ]
    for lesson in lessons:
        time = f" ({lesson.time})" if lesson.time else ""
        lines.append(f"- **[{lesson.title}]({lesson.name})**{time}. {lesson.summary()}")
    return "\n".join(lines) + "\n"


def stage(lesson_paths, source=BUILD_DIR / "src"):
    """Write Sphinx's source folder; returns the lessons in course order."""
    lessons = [Lesson.read(path) for path in sorted(map(Path, lesson_paths), key=_by_name)]
    if source.exists():
        shutil.rmtree(source)
    downloads = source / DOWNLOADS
    downloads.mkdir(parents=True)
    for lesson in lessons:
        nbformat.write(with_answers_folded(lesson.notebook), source / lesson.name)
        shutil.copy2(lesson.path, downloads / lesson.name)
    write_copies([lesson.path for lesson in lessons], source / LEARNER_DOWNLOADS, force=True)
    (source / "index.md").write_text(index_page(lessons), encoding="utf-8")
    return lessons


def _by_name(path):
    return path.name


def build_site(lesson_paths, destination=SITE_DIR, work=BUILD_DIR):
    """Stage, run Sphinx, and copy the HTML to ``destination``; returns its index.html.

    Sphinx writes next to its output folder (myst-nb puts output images in a sibling
    folder), so it builds inside ``work`` and the finished site is copied out.
    """
    from sphinx.cmd.build import build_main  # the maintainers' toolchain, not the learners'

    source, html = work / "src", work / "html"
    stage(lesson_paths, source)
    args = ["-b", "html", "-c", str(CONF_DIR), "-d", str(work / "doctrees"), "-q", "-W",
            "--keep-going", "-E", str(source), str(html)]  # fmt: skip
    if build_main(args) != 0:
        raise RuntimeError("Sphinx could not build the site (its messages are above)")
    shutil.copytree(source / DOWNLOADS, html / DOWNLOADS, dirs_exist_ok=True)
    if destination.exists():
        shutil.rmtree(destination)
    shutil.copytree(html, destination)
    return destination / "index.html"


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
