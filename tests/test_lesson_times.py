"""One lesson length everywhere: the title cell, the README's table and total, the
instructor guide's table and total, and the workshop schedules' clock times."""

import itertools
import re
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
LESSONS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
README = (REPO / "README.md").read_text(encoding="utf-8")
GUIDE = (REPO / "notebooks" / "INSTRUCTORS.md").read_text(encoding="utf-8")


def title_time(lesson):
    """(total, teaching, exercises) from "Time: ~55 min (40 teaching, 15 exercises)"."""
    first = nbformat.read(lesson, as_version=4).cells[0].source
    text = " ".join(first.split())
    match = re.search(r"Time: ~(\d+) min \((\d+) teaching, (\d+) exercises?\)", text)
    assert match, f"{lesson.name}: no 'Time: ~N min (T teaching, E exercises)' in the title cell"
    return tuple(int(group) for group in match.groups())


def table_rows(text):
    """The rows of a Markdown table that start with a two-digit lesson number."""
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) > 2 and re.fullmatch(r"\d\d", cells[0]):
            rows[cells[0]] = cells
    return rows


def as_minutes(text):
    match = re.search(r"about (\d+) h (\d+) min", text)
    assert match, text
    return int(match.group(1)) * 60 + int(match.group(2))


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda path: path.name[:2])
def test_title_readme_and_guide_agree_on_a_lessons_length(lesson):
    total, teaching, exercises = title_time(lesson)
    number = lesson.name[:2]
    assert total == teaching + exercises, f"{lesson.name}: {total} != {teaching} + {exercises}"
    readme_row = table_rows(README)[number]
    assert f"{total} min" in readme_row, (lesson.name, readme_row)
    guide_row = table_rows(GUIDE)[number]
    assert guide_row[-2:] == [str(teaching), str(exercises)], (lesson.name, guide_row)


def test_course_totals_are_the_sum_of_the_lessons():
    minutes = sum(title_time(lesson)[0] for lesson in LESSONS)
    readme_total = as_minutes(README[README.index("The whole course takes"):])
    guide_total = as_minutes(GUIDE[GUIDE.index("Total: about"):])
    assert readme_total == guide_total == minutes, (readme_total, guide_total, minutes)


def schedules():
    """Each schedule table of the guide: its title and its (start, minutes) rows."""
    found = {}
    for title, body in re.findall(r"^## ([^\n]*schedule[^\n]*)\n(.*?)(?=^## |\Z)", GUIDE,
                                  flags=re.M | re.S | re.I):  # fmt: skip
        rows = re.findall(r"^\| (\d+):(\d\d) \| .*\((\d+)\)[^|]*\|$", body, flags=re.M)
        if rows:
            found[title] = [(int(h) * 60 + int(m), int(length)) for h, m, length in rows]
    return found


def test_the_guide_has_its_schedules():
    assert len(schedules()) >= 3, list(schedules())


@pytest.mark.parametrize("title", list(schedules()))
def test_each_schedule_row_starts_when_the_one_before_ends(title):
    rows = schedules()[title]
    for (start, length), (next_start, _) in itertools.pairwise(rows):
        assert start + length == next_start, (
            f"{title}: a slot at {start // 60}:{start % 60:02} of {length} min "
            f"ends before or after the next one, at {next_start // 60}:{next_start % 60:02}"
        )
