"""make reset removes what the workshop generated and leaves the lessons as they are."""

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_reset_removes_generated_files_and_keeps_lessons(tmp_path):
    # A copy of what the Makefile needs, so the test never touches this checkout's files.
    shutil.copy(REPO / "Makefile", tmp_path)
    shutil.copytree(REPO / "notebooks", tmp_path / "notebooks",
                    ignore=shutil.ignore_patterns("learner", ".ipynb_checkpoints"))
    lessons = {path: path.read_bytes() for path in (tmp_path / "notebooks").glob("*")
               if path.is_file()}
    assert any(path.suffix == ".ipynb" for path in lessons)
    generated = [
        ".data/db.sqlite3",
        "notebooks/learner/00_lesson.ipynb",
        "notebooks/.ipynb_checkpoints/00_lesson-checkpoint.ipynb",
        ".site/index.html",
        ".book/_build/src/index.md",
        ".test-output/lesson-00.png",
    ]
    for name in generated:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("generated")

    result = subprocess.run(["make", "-s", "reset", f"PYTHON={sys.executable}"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert "Your edits to notebooks/NN_*.ipynb are kept" in result.stdout
    for name in generated:
        assert not (tmp_path / name).exists(), name
    assert (tmp_path / ".book").is_dir(), "the site's configuration folder is not generated"
    assert {path: path.read_bytes() for path in lessons} == lessons
