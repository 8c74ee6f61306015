"""Open JupyterLab where a learner starts: their own copy of lesson 00.

    python -m tutorial_project.course.lab [--port 8888]

``make lab`` runs this; on Windows, or without make, run it with the venv's Python. It

1. writes the learner copies that are missing (``notebooks/learner/``), never touching a copy
   that exists: it holds the learner's work (``learner_copies``);
2. answers JupyterLab's "get notified about Jupyter news?" question with no, once, in this
   environment's settings, so no prompt covers the lesson on first start;
3. starts JupyterLab on 127.0.0.1 only, with its token, at the copy of lesson 00.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tutorial_project.course.learner_copies import COPIES_DIR, REPO, lesson_paths, write_copies

FIRST_LESSON = "00_your_notebook_is_an_event_loop.ipynb"
# Settings that this environment's JupyterLab applies before the user's own (an "overrides"
# file in its app settings folder); the user can still change them in Settings.
NO_NEWS = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false",
                                                           "checkForUpdates": False}}


def overrides_path(prefix=sys.prefix):
    return Path(prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"


def turn_off_news(path=None):
    """Merge NO_NEWS into JupyterLab's overrides.json, keeping what else it holds."""
    path = path or overrides_path()
    settings = json.loads(path.read_text()) if path.exists() else {}
    for plugin, values in NO_NEWS.items():
        settings[plugin] = {**settings.get(plugin, {}), **values}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2) + "\n")
    return path


def lab_command(port, notebook):
    command = [sys.executable, "-m", "jupyterlab", "--ip=127.0.0.1", f"--port={port}",
               "--ServerApp.port_retries=20", f"--ServerApp.root_dir={REPO}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI often run as root
        command.append("--allow-root")
    # The address JupyterLab prints and opens: the notebook itself, not the file browser.
    return [*command, f"--LabApp.default_url=/lab/tree/{notebook.relative_to(REPO).as_posix()}"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--dry-run", action="store_true", help="prepare, print the command")
    args = parser.parse_args(argv)
    written = [path for path, outcome in write_copies(lesson_paths()) if outcome == "written"]
    copies = COPIES_DIR.relative_to(REPO) if COPIES_DIR.is_relative_to(REPO) else COPIES_DIR
    if written:
        print(f"Wrote {len(written)} lesson copies for you in {copies}/.")
    print(f"Your copies in {copies}/ hold your work; they are never overwritten. "
          "The lessons with answers are in notebooks/.")
    turn_off_news()
    command = lab_command(args.port, COPIES_DIR / FIRST_LESSON)
    if args.dry_run:
        print(" ".join(command))
        return 0
    lab = subprocess.Popen(command, cwd=REPO)
    # Ctrl-C reaches JupyterLab too (same console): let it ask and stop, then end with it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: lab.terminate())  # stopped: stop it too
    return lab.wait()


if __name__ == "__main__":
    sys.exit(main())
