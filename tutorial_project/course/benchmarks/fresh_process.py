"""Run a measurement in a new interpreter, so that nothing earlier in this process skews it."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def measure_in_fresh_process(*args, timeout=300):
    """Run ``python *args`` from the repo with its own database; return its last line, as JSON."""
    env = {k: v for k, v in os.environ.items() if k != "TUTORIAL_DATABASE"}
    out = subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])
