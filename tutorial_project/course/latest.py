"""Run the lessons against the newest releases instead of the pins: ``make test-latest``.

    python -m tutorial_project.course.latest --python python3.13 [notebooks/NN_*.ipynb ...]

Tutorials rot when their libraries release. This builds a separate venv (``.venv/latest-pyXY``)
with the pinned lists, upgrades the packages the lessons are about to their newest releases
(Django's pre-releases included, when there are any for the interpreter; final releases of
the others), runs each lesson under strict nbval there, and prints one row per lesson:
passed, or which cells changed or broke.
Exits 1 when a lesson breaks, so a scheduled CI job shows it.
"""

import argparse
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# What the lessons teach or run on; everything else stays pinned.
MOVING = ["django", "asgiref", "httpx", "uvicorn", "daphne"]
NBVAL = ["--nbval", "--nbval-current-env", "--nbval-sanitize-with", ".nbval-sanitize.cfg",
         "--nbval-cell-timeout=300", "-p", "no:cacheprovider", "-q"]


def venv_for(python):
    tag = subprocess.check_output(
        [python, "-c", 'import sys; print("py%d%d" % sys.version_info[:2])'], text=True
    ).strip()
    return REPO / ".venv" / f"latest-{tag}"


def bin_of(venv, name):
    scripts = "Scripts" if sys.platform == "win32" else "bin"
    suffix = ".exe" if sys.platform == "win32" else ""
    return venv / scripts / f"{name}{suffix}"


def install(python, venv):
    """The pinned lists, then the newest releases of MOVING (pre-releases allowed)."""
    if not bin_of(venv, "python").exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
    target = str(bin_of(venv, "python"))
    uv = bin_of(REPO / ".venv" / "uv", "uv")  # the installer `make` bootstraps, if present
    if uv.exists():
        base = [str(uv), "pip", "install", "--quiet", "--python", target]
        # pre-releases for Django only: the ">=0.dev0" marks it as asked for explicitly
        django_newest = ["--prerelease=if-necessary-or-explicit", "django>=0.dev0"]
    else:
        base = [target, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        django_newest = ["--pre", "django"]
    subprocess.run([*base, "-r", "requirements.txt", "-r", ".ci/requirements-maintainer.txt",
                    "-e", "."], check=True, cwd=REPO)
    others = [name for name in MOVING if name != "django"]
    subprocess.run([*base, "--upgrade", *others], check=True, cwd=REPO)
    subprocess.run([*base, "--upgrade", *django_newest], check=True, cwd=REPO)


def versions(python_path, packages=MOVING):
    code = ("import importlib.metadata as m, sys\n"
            "for name in sys.argv[1:]: print(name, m.version(name))")
    output = subprocess.check_output([python_path, "-c", code, *packages], text=True)
    return dict(line.split() for line in output.splitlines())


def run_lesson(python_path, notebook):
    """(outcome, detail) for one lesson under strict nbval in the latest venv."""
    result = subprocess.run([python_path, "-m", "pytest", *NBVAL, str(notebook)],
                            capture_output=True, text=True, cwd=REPO)
    if result.returncode == 0:
        return "passed", ""
    cells = sorted(set(re.findall(r"::Cell (\d+)", result.stdout)), key=int)
    errors = re.findall(r"^E\s+(\S.*)$", result.stdout, re.MULTILINE)
    detail = f"cells {', '.join(cells)}" if cells else "see the pytest output"
    if errors:
        detail += f": {errors[0][:90]}"
    return "BROKE", detail


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="the interpreter to test on")
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    venv = venv_for(args.python)
    install(args.python, venv)
    python_path = str(bin_of(venv, "python"))
    now, pins = versions(python_path), versions(sys.executable)
    print("package   pinned -> newest")
    for name in MOVING:
        print(f"{name:<9} {pins.get(name, '?')} -> {now[name]}"
              + ("" if pins.get(name) == now[name] else "   (new)"))
    print(f"\n{'lesson':<42} {'result':<7} detail")
    broken = 0
    for notebook in notebooks:
        outcome, detail = run_lesson(python_path, notebook)
        broken += outcome != "passed"
        print(f"{Path(notebook).name:<42} {outcome:<7} {detail}", flush=True)
    print(f"\n{len(notebooks) - broken} of {len(notebooks)} lessons pass on the newest releases.")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
