"""make reset removes what the workshop generated and leaves the lessons as they are."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    shutil.which("make") is None or shutil.which("sh") is None,
    reason="`make reset` needs make and sh (Linux, macOS); on Windows delete the folders by hand",
)


def copy_of_the_workshop(tmp_path):
    """A copy of what the Makefile needs, so the test never touches this checkout's files."""
    shutil.copy(REPO / "Makefile", tmp_path)
    (tmp_path / ".ci").mkdir()
    shutil.copy(REPO / ".ci" / "find-python", tmp_path / ".ci")
    shutil.copytree(REPO / "notebooks", tmp_path / "notebooks",
                    ignore=shutil.ignore_patterns("learner", ".ipynb_checkpoints"))


def reset(tmp_path, *arguments):
    return subprocess.run(["make", "-s", "reset", f"PYTHON={sys.executable}", *arguments],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)


def test_reset_removes_generated_files_keeps_lessons_and_the_learners_work(tmp_path):
    copy_of_the_workshop(tmp_path)
    lessons = {path: path.read_bytes() for path in (tmp_path / "notebooks").glob("*")
               if path.is_file()}
    assert any(path.suffix == ".ipynb" for path in lessons)
    work = tmp_path / "notebooks" / "learner" / "00_lesson.ipynb"
    work.parent.mkdir(parents=True)
    work.write_text("the learner's answers")
    generated = [
        ".data/db.sqlite3",
        "notebooks/.ipynb_checkpoints/00_lesson-checkpoint.ipynb",
        ".site/index.html",
        ".book/_build/src/index.md",
        ".test-output/lesson-00.png",
    ]
    for name in generated:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("generated")

    result = reset(tmp_path)

    assert result.returncode == 0, result.stderr
    assert "are kept (FORCE=1 removes them)" in result.stdout
    for name in generated:
        assert not (tmp_path / name).exists(), name
    assert (tmp_path / ".book").is_dir(), "the site's configuration folder is not generated"
    assert {path: path.read_bytes() for path in lessons} == lessons
    assert work.read_text() == "the learner's answers"


def test_reset_removes_the_learners_copies_only_when_forced(tmp_path):
    copy_of_the_workshop(tmp_path)
    work = tmp_path / "notebooks" / "learner" / "00_lesson.ipynb"
    work.parent.mkdir(parents=True)
    work.write_text("the learner's answers")

    result = reset(tmp_path, "FORCE=1")

    assert result.returncode == 0, result.stderr
    assert not work.exists() and "were removed too" in result.stdout
    assert any((tmp_path / "notebooks").glob("[0-9][0-9]_*.ipynb"))
