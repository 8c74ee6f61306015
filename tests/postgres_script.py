"""The PostgreSQL tests that measure in a script of their own (lessons 04 and 12).

Such a test module is also the script: run with the production settings against the server in
DATABASE_URL, after `migrate`, it prints what it measured as JSON. Skipped without a server.
"""

import contextlib
import hashlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

DATABASE_URL = os.environ.get("DATABASE_URL", "")
ROOT = Path(__file__).resolve().parents[1]

needs_postgres = pytest.mark.skipif(
    not DATABASE_URL.startswith(("postgres://", "postgresql://")),
    reason="no PostgreSQL configured: run `sh .ci/postgres-up` and export the DATABASE_URL",
)


@contextlib.contextmanager
def the_database_alone(stale_after=900):
    """Hold the PostgreSQL database of DATABASE_URL for this block, against the other test
    processes (pytest-xdist runs the test files side by side, and they share one database:
    test_postgres.py flushes it while another file's script may be racing on its rows).

    A directory made with mkdir is the lock: mkdir is atomic on every OS. A lock older than
    ``stale_after`` seconds was left by a killed run and is taken over."""
    name = hashlib.sha256(DATABASE_URL.encode()).hexdigest()[:16]
    lock = Path(tempfile.gettempdir()) / f"tutorial-postgres-{name}.lock"
    while True:
        try:
            lock.mkdir()
            break
        except FileExistsError:
            try:
                if time.time() - lock.stat().st_mtime > stale_after:
                    lock.rmdir()
                    continue
            except FileNotFoundError:
                continue
            time.sleep(0.2)
    try:
        yield
    finally:
        lock.rmdir()


def printed_by(script):
    """Migrate the database, run ``script`` with the production settings, and return the JSON
    it printed."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tutorial_project.settings_production",
           "DJANGO_SECRET_KEY": secrets.token_urlsafe(50), "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
           "DATABASE_URL": DATABASE_URL, "PYTHONPATH": str(ROOT)}
    with the_database_alone():
        for args in (["-m", "tutorial_project", "migrate", "--no-input"], [script]):
            done = subprocess.run([sys.executable, *args], env=env, cwd=ROOT,
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
