import re

import pytest

# Which lessons each test module serves, for `make test LESSONS=...` (`--lessons`): a fast
# loop that runs a lesson with its own tests. Modules named ..._lessonNN... serve lesson NN;
# the modules below say so here; PER_LESSON modules are parametrized by lesson, and only the
# chosen lessons' cases run. Course tooling (doctor, site, reset, requirements) runs in full
# `make test` only.
LESSONS_OF_MODULE = {
    "test_catalog_api.py": {"02", "04"},
    "test_connection_settings.py": {"04"},
    "test_middleware_instruments.py": {"05"},
    "test_upstream.py": {"06"},
    "test_streaming.py": {"07"},
    "test_servers.py": {"07", "08"},
    "test_postgres.py": {"08"},
    "test_async_patterns.py": {"10"},
    "test_dashboard.py": {"12"},
    "test_capstone.py": {"12"},
}
PER_LESSON = {"test_notebook_hygiene.py", "test_learner_copies.py"}
# The fast loop's longest tests run a lesson's kernel end to end (the notebook itself twice,
# see tests/plugins/nbval_twice.py): they go to the workers first, so that they do not start
# last and make the wall time.
SLOWEST_FIRST = [".ipynb", "test_learner_copies.py", "test_notebook_hygiene.py"]


def pytest_addoption(parser):
    parser.addoption("--lessons", default="", help='only these lessons\' tests, e.g. "00 07"')


def lessons_of(item):
    name = item.path.name
    if item.path.suffix == ".ipynb":
        return {name[:2]}
    if match := re.search(r"lesson(\d\d)", name):
        return {match.group(1)}
    if name in PER_LESSON:
        callspec = getattr(item, "callspec", None)
        return set(re.findall(r"(?<!\d)(\d\d)(?:_|$)", callspec.id)) if callspec else set()
    return LESSONS_OF_MODULE.get(name, set())


def module_serves(name, chosen):
    """Whether a test module has tests for the chosen lessons (decided before importing it)."""
    if match := re.search(r"lesson(\d\d)", name):
        return match.group(1) in chosen
    return name in PER_LESSON or bool(LESSONS_OF_MODULE.get(name, set()) & chosen)


def pytest_ignore_collect(collection_path, config):
    # Not importing the other lessons' test modules is most of the fast loop's speed.
    chosen = set(config.getoption("--lessons").split())
    if chosen and collection_path.suffix == ".py" and collection_path.name.startswith("test_"):
        return not module_serves(collection_path.name, chosen)
    return None


def pytest_collection_modifyitems(config, items):
    chosen = set(config.getoption("--lessons").split())
    if not chosen:
        return
    kept = [item for item in items if lessons_of(item) & chosen]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = sorted(kept, key=slowest_first)


def slowest_first(item):
    name = ".ipynb" if item.path.suffix == ".ipynb" else item.path.name
    return SLOWEST_FIRST.index(name) if name in SLOWEST_FIRST else len(SLOWEST_FIRST)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    # xdist hands out test files biggest first (most tests), which puts the few-test learner
    # copies file last; in the fast loop, the order above is the order the workers get them.
    if config.getoption("--lessons").strip() and hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


@pytest.fixture
def project():
    """The embedded project, up in this test process, reset to the demo data."""
    from tutorial_project import start

    start(quiet=True)
    yield
    from tutorial_project.playground import unmount_all

    unmount_all()
