"""Preflight check for workshop attendees: ``make doctor``.

Checks, each with a fix when it fails: the Python and Django versions, the packages the
lessons import, the Jupyter kernel the lessons run in, the embedded project coming up, a free
port for JupyterLab (``PORT``, default 8888), a free loopback port for the servers lesson, and
free disk space. Prints a report and exits 1 when something blocks the workshop, else 0.

Runs with the project's venv (``python -m tutorial_project.course.doctor``) and also with a bare
interpreter (``python3 tutorial_project/course/doctor.py``), so it can say that the venv is missing.
Only the standard library is imported at module level for that reason.
"""

import importlib
import importlib.metadata
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OK, WARN, BLOCK = "ok", "warning", "blocks"
SYMBOLS = {OK: "✅", WARN: "⚠️ ", BLOCK: "❌"}
MIN_PYTHON = (3, 11)
# Django release each Python gets (see requirements.txt).
DJANGO_FOR_PYTHON = {(3, 11): "5.2"}
DJANGO_NEWEST = "6.1"
# The learner's packages are read from requirements.txt (the import name is the distribution
# name with "_" for "-"); the maintainers' tools are not needed to follow the lessons.
REQUIREMENTS = REPO / "requirements.txt"
# Importing these takes seconds; finding them is enough (JupyterLab imports them itself).
# locust: importing it patches the whole process with gevent (the lessons run it as its own
# process), so the doctor must not import it either.
FOUND_NOT_IMPORTED = {"jupyterlab", "locust"}
DISK_BLOCK_MB = 300  # below this, a venv or the lesson databases cannot be written
DISK_WARN_MB = 2000


@dataclass
class Finding:
    status: str  # OK, WARN or BLOCK
    what: str
    fix: str = ""


def base_python():
    """The interpreter the venv was made from (a fix must not name the venv's own python)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def venv_fix():
    return (f"run `make venv PYTHON={base_python()}` in {REPO} "
            "(without make: see the README's setup commands)")


def learner_modules(requirements=REQUIREMENTS):
    """Import names of the packages requirements.txt installs for this interpreter."""
    from packaging.requirements import Requirement  # installed with the venv, not stdlib

    modules = []
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate():
            modules.append(requirement.name.lower().replace("-", "_"))
    return modules


def check_python(version=None):
    version = version or sys.version_info[:3]
    shown = ".".join(map(str, version))
    if tuple(version[:2]) < MIN_PYTHON:
        return Finding(
            BLOCK,
            f"Python {shown} is too old: the lessons need 3.11 or newer",
            "install Python 3.11 (Django 5.2 LTS) or 3.13 (Django 6.1), then "
            "`make venv PYTHON=python3.13`",
        )
    django = DJANGO_FOR_PYTHON.get(tuple(version[:2]), DJANGO_NEWEST)
    if django != DJANGO_NEWEST:
        return Finding(
            WARN,
            f"Python {shown} runs every lesson on Django {django} LTS; what is new in Django "
            f"6.0 and {DJANGO_NEWEST} (lesson 09's {DJANGO_NEWEST} cache and signal changes, "
            f"lesson 11's AsyncPaginator) needs Python 3.12 or newer",
            "to see those too, make a second venv: `make venv PYTHON=python3.13` "
            "(pyenv's 3.13 is found even when not activated)",
        )
    return Finding(OK, f"Python {shown} (the lessons use Django {django} with it)")


def check_django():
    expected = DJANGO_FOR_PYTHON.get(sys.version_info[:2], DJANGO_NEWEST)
    try:
        installed = importlib.metadata.version("django")
    except importlib.metadata.PackageNotFoundError:
        return Finding(BLOCK, "Django is not installed for this Python", venv_fix())
    if not (installed == expected or installed.startswith(expected + ".")):
        return Finding(
            BLOCK,
            f"Django {installed} is installed; the lessons expect {expected}.x on this Python",
            venv_fix(),
        )
    return Finding(OK, f"Django {installed}")


def check_modules(modules=None):
    """One finding per package that cannot be imported, or one OK for all of them."""
    modules = learner_modules() if modules is None else modules
    broken = []
    for name in modules:
        try:
            if name in FOUND_NOT_IMPORTED:
                if importlib.util.find_spec(name) is None:
                    raise ModuleNotFoundError(f"No module named {name!r}")
            else:
                importlib.import_module(name)
        except Exception as error:  # any failure to import blocks the lessons that use it
            broken.append(Finding(BLOCK, f"cannot import {name}: {_one_line(error)}", venv_fix()))
    return broken or [Finding(OK, f"all {len(modules)} packages the lessons use import")]


def check_project():
    """The embedded project comes up: settings, migrations and demo data on a temp database."""
    code = "from tutorial_project.bringup import start; start(quiet=True); print('up')"
    try:
        result = _run([sys.executable, "-c", code], timeout=120)
    except subprocess.TimeoutExpired:
        return Finding(BLOCK, "the tutorial project did not come up within 2 minutes",
                       "check that the disk is not full and rerun `make doctor`")
    if result.returncode != 0 or "up" not in result.stdout:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return Finding(BLOCK, f"the tutorial project does not come up: {last}", venv_fix())
    return Finding(OK, "the tutorial project comes up (database migrated, demo data loaded)")


def check_kernel():
    """The kernel JupyterLab starts for the lessons must be able to import the project."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    except ImportError:
        return Finding(BLOCK, "jupyter_client is missing, so no kernel can start", venv_fix())
    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        return Finding(BLOCK, "no `python3` Jupyter kernel is registered",
                       f"run `{sys.executable} -m ipykernel install --sys-prefix`")
    python = spec.argv[0]
    if python in {"python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}"}:
        python = sys.executable  # jupyter_client starts such kernels with its own interpreter
    try:
        works = _run([python, "-c", "import ipykernel, tutorial_project"], timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        works = None  # the kernel's interpreter does not even start
    if works is None or works.returncode != 0:
        return Finding(
            BLOCK,
            f"the `python3` kernel ({spec.resource_dir}) runs {python}, "
            "which cannot import ipykernel and tutorial_project",
            "remove that kernelspec (`jupyter kernelspec remove python3`, or unset "
            "JUPYTER_PATH if it adds it) so that JupyterLab uses this venv's Python",
        )
    return Finding(OK, f"the `python3` kernel runs {_short(python)} and imports the project")


def check_lab_port(port):
    if _port_is_free(port):
        return Finding(OK, f"port {port} on 127.0.0.1 is free for JupyterLab")
    return Finding(
        WARN,
        f"port {port} on 127.0.0.1 is in use (another Jupyter server?): "
        "`make lab` will take the next free port and print its address",
        "stop the other server (`jupyter server list` shows Jupyter ones) "
        f"or pick a port: `make lab PORT={port + 1}`",
    )


def check_loopback_port():
    """The servers lesson binds uvicorn and daphne to a free port on 127.0.0.1."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            port = sock.getsockname()[1]
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass
    except OSError as error:
        return Finding(BLOCK, f"cannot listen on and connect to 127.0.0.1: {error}",
                       "the servers lesson needs the loopback interface: enable `lo` "
                       "or run the workshop outside this sandbox/container")
    return Finding(OK, "a free loopback port for the servers lesson (bind and connect work)")


def check_disk(places=None):
    places = places or {"the repository": REPO, "the temp folder": Path(tempfile.gettempdir())}
    findings = []
    for label, place in places.items():
        free_mb = shutil.disk_usage(place).free // 2**20
        if free_mb < DISK_BLOCK_MB:
            status = BLOCK
        elif free_mb < DISK_WARN_MB:
            status = WARN
        else:
            status = OK
        fix = "" if status == OK else f"free some space ({DISK_WARN_MB} MB or more is comfortable)"
        findings.append(Finding(status, f"{free_mb} MB free for {label} ({place})", fix))
    return findings


def run_checks(lab_port):
    yield check_python()
    if importlib.util.find_spec("django") is None:
        # A bare interpreter without the venv: say so once instead of listing every package.
        yield Finding(BLOCK, "the project's packages are not installed for this Python",
                      venv_fix())
    else:
        yield check_django()
        modules = check_modules()
        yield from modules
        if all(finding.status == OK for finding in modules):
            yield check_kernel()
            yield check_project()
    yield check_lab_port(lab_port)
    yield check_loopback_port()
    yield from check_disk()


def report(findings):
    """The printed report and the exit status (1 when something blocks)."""
    lines = ["Django async tutorial · preflight check", ""]
    for finding in findings:
        lines.append(f"{SYMBOLS[finding.status]} {finding.what}")
        if finding.fix:
            lines.append(f"     fix: {finding.fix}")
    blocking = sum(finding.status == BLOCK for finding in findings)
    warnings = sum(finding.status == WARN for finding in findings)
    lines.append("")
    if blocking:
        lines.append(f"{blocking} problem(s) block the workshop: apply the fixes above, "
                     "then run `make doctor` again.")
    else:
        lines.append("Ready for the workshop" + (f" ({warnings} warning(s) above)." if warnings
                                                  else ". See you there!"))
    return "\n".join(lines), 1 if blocking else 0


def _port_is_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _run(command, timeout):
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=REPO / "notebooks")  # where JupyterLab starts kernels


def _one_line(error):
    return re.sub(r"\s+", " ", f"{type(error).__name__}: {error}").strip()


def _short(path):
    path = Path(path)
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def main():
    port = int(os.environ.get("PORT") or 8888)
    text, status = report(list(run_checks(port)))
    print(text)
    return status


if __name__ == "__main__":
    sys.exit(main())
