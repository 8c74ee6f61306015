"""The learner's install and the maintainers' tools stay two lists that cannot drift apart.

requirements.txt is what a learner (and Binder, and pip users) install; it must hold no
maintainers' tool. .ci/requirements-maintainer.txt goes on top of it for tests and CI; it
must not pin again, differently or at all, what the learner's list already pins.
"""

from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
LEARNER = REPO / "requirements.txt"
MAINTAINER = REPO / ".ci" / "requirements-maintainer.txt"
# Tools no learner needs to follow the lessons.
MAINTAINERS_ONLY = {"nbval", "pytest-xdist", "playwright", "ruff", "psycopg", "psycopg-pool",
                    "sphinx", "myst-nb", "sphinx-book-theme", "uv"}


def pins(path):
    found = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            found.append(Requirement(line))
    return found


def test_every_requirement_is_pinned_exactly():
    for requirement in pins(LEARNER) + pins(MAINTAINER):
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", str(requirement)


def test_learners_install_no_maintainers_tool():
    names = {requirement.name.lower() for requirement in pins(LEARNER)}
    assert not names & MAINTAINERS_ONLY, names & MAINTAINERS_ONLY


def test_the_maintainers_list_repeats_nothing_the_learners_list_pins():
    learner = {requirement.name.lower() for requirement in pins(LEARNER)}
    repeated = [str(r) for r in pins(MAINTAINER) if r.name.lower() in learner]
    assert not repeated, f"pinned in requirements.txt already: {repeated}"


def test_binder_installs_the_learners_list():
    assert "-r ../requirements.txt" in (REPO / ".binder" / "requirements.txt").read_text()


def test_readme_has_a_binder_link_to_the_learner_copy_of_every_lesson():
    import re
    import tomllib

    repository = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["urls"][
        "Repository"
    ]
    owner_and_name = repository.removeprefix("https://github.com/")
    readme = (REPO / "README.md").read_text()
    linked = re.findall(
        rf"https://mybinder\.org/v2/gh/{re.escape(owner_and_name)}/HEAD"
        r"\?urlpath=lab/tree/notebooks/learner/(\d\d_\w+\.ipynb)",
        readme,
    )
    lessons = sorted(path.name for path in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert linked == lessons


def test_the_tasks_backport_is_installed_with_every_django_that_needs_it():
    """django-tasks is for Django < 6.0; a marker cannot name Django, so it repeats the marker of
    the Django 5.2 pin."""
    django_pins = {str(r.specifier): r.marker for r in pins(LEARNER) if r.name == "django"}
    backport = [r for r in pins(LEARNER) if r.name == "django-tasks"]
    assert len(backport) == 1 and str(backport[0].marker) == str(django_pins["==5.2.19"])


def test_django_5_2_without_the_backport_stops_with_advice(monkeypatch):
    """Django 5.2 on a Python the requirements pair with 6.x: the settings say what to install,
    instead of a ModuleNotFoundError from INSTALLED_APPS."""
    import runpy
    import sys

    import django
    import pytest
    from django.core.exceptions import ImproperlyConfigured

    monkeypatch.setattr(django, "VERSION", (5, 2, 19, "final", 0))
    monkeypatch.setitem(sys.modules, "django_tasks", None)  # not installed
    with pytest.raises(ImproperlyConfigured, match=r"pip install django-tasks==0\.12\.0"):
        runpy.run_path(str(REPO / "tutorial_project" / "settings.py"))
