"""Sphinx configuration of the course's book site. Build it with `make html`.

tutorial_project/course/book.py stages the source folder (the lessons, with their stored
outputs, and an index) and runs Sphinx with this folder as its configuration directory.
Nothing is executed and nothing is loaded from another host: the pages work offline.
"""

import os
import tomllib
from pathlib import Path

# Where the course lives: pyproject.toml's [project.urls] Repository, the one place that names
# it (the README's Binder links are tested against it). Binder launches and the repository
# button use it. The Pages workflow sets BOOK_REPOSITORY_URL to the repository it runs in.
_PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
REPOSITORY_URL = os.environ.get("BOOK_REPOSITORY_URL", _PYPROJECT["project"]["urls"]["Repository"])
BRANCH = os.environ.get("BOOK_BRANCH", "main")

project = "Django async tutorial"
author = "The Django async tutorial contributors"
copyright = "the Django async tutorial contributors"

extensions = ["myst_nb", "tutorial_project.course.book_pages"]
exclude_patterns = ["downloads", "**/.ipynb_checkpoints"]

# The lessons' outputs are verified by strict nbval: show them as stored, never re-run.
nb_execution_mode = "off"
nb_merge_streams = True
# Long outputs keep their length; wide ones scroll sideways (see static/book.css).
nb_output_stderr = "show"
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
suppress_warnings = ["mystnb.unknown_mime_type"]

book_repository_url = REPOSITORY_URL
book_branch = BRANCH
book_binder_url = "https://mybinder.org"

html_theme = "sphinx_book_theme"
html_title = "Django async tutorial"
html_static_path = ["static"]
html_css_files = ["book.css"]
html_copy_source = False
html_show_sourcelink = False
html_last_updated_fmt = None
html_theme_options = {
    "repository_url": REPOSITORY_URL,
    "repository_branch": BRANCH,
    "path_to_docs": "notebooks",
    "use_repository_button": True,
    "use_download_button": False,  # the page's card links the notebook and its learner copy
    "launch_buttons": {"binderhub_url": book_binder_url, "notebook_interface": "jupyterlab"},
    "show_toc_level": 2,
    "home_page_in_toc": True,
    "navigation_with_keys": False,
}
