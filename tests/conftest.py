import pytest


@pytest.fixture
def project():
    """The embedded project, up in this test process, reset to the demo data."""
    from tutorial_project import start

    start(quiet=True)
    yield
    from tutorial_project.playground import unmount_all

    unmount_all()
