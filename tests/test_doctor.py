"""make doctor: a readable report, a fix for every problem, exit 1 only when something blocks."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tutorial_project.course import doctor

REPO = Path(__file__).resolve().parents[1]


def run_doctor(tmp_path, *, port=None, pythonpath=None, python=sys.executable, module=True):
    env = {**os.environ, "PORT": str(port or free_port())}
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    command = [python, "-m", "tutorial_project.course.doctor"] if module else [
        python, str(REPO / "tutorial_project" / "course" / "doctor.py")
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path,
                            timeout=240)
    return result.returncode, result.stdout


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthy_environment_is_ready(tmp_path):
    status, report = run_doctor(tmp_path)
    assert status == 0, report
    assert "❌" not in report
    for expected in ["Python 3.", "Django ", "packages the lessons use import", "`python3` kernel",
                     "project comes up", "free for JupyterLab", "loopback port", "MB free"]:
        assert expected in report, (expected, report)
    assert "Ready for the workshop" in report


def test_a_package_that_cannot_be_imported_blocks_with_a_fix(tmp_path):
    # Shadow httpx with a module that fails to import, as a broken install would.
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "httpx.py").write_text("raise ImportError('simulated broken install')\n")
    status, report = run_doctor(tmp_path, pythonpath=broken)
    assert status == 1, report
    assert "❌ cannot import httpx: ImportError: simulated broken install" in report
    assert "fix: run `make venv" in report
    assert "1 problem(s) block the workshop" in report


def test_busy_jupyterlab_port_is_reported_with_a_way_out(monkeypatch, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        monkeypatch.setenv("PORT", str(port))
        # The slow checks are covered above; this test is about the port.
        monkeypatch.setattr(doctor, "check_project", lambda: doctor.Finding(doctor.OK, "up"))
        monkeypatch.setattr(doctor, "check_kernel", lambda: doctor.Finding(doctor.OK, "kernel"))
        monkeypatch.setattr(doctor, "check_python", lambda: doctor.Finding(doctor.OK, "python"))
        status = doctor.main()
    report = capsys.readouterr().out
    # make lab retries the next ports, so a busy port warns instead of blocking.
    assert status == 0, report
    assert f"port {port} on 127.0.0.1 is in use" in report
    assert f"make lab PORT={port + 1}" in report
    assert "1 warning(s)" in report


def test_loopback_that_cannot_listen_blocks(monkeypatch):
    def refuse(self, address):
        raise OSError(99, "Cannot assign requested address")

    monkeypatch.setattr(doctor.socket.socket, "bind", refuse)
    finding = doctor.check_loopback_port()
    assert finding.status == doctor.BLOCK and "loopback" in finding.fix


@pytest.mark.skipif(sys.platform == "win32",
                    reason="the bare interpreter is a /bin/sh wrapper: POSIX only")
def test_interpreter_without_the_venv_is_told_to_make_one(tmp_path):
    """A bare interpreter (here: isolated, no site-packages) runs the doctor by file path."""
    bare = tmp_path / "bare-python"
    bare.write_text(f'#!/bin/sh\nexec {sys.executable} -I -S "$@"\n')
    bare.chmod(0o755)
    status, report = run_doctor(tmp_path, python=str(bare), module=False)
    assert status == 1, report
    assert "the project's packages are not installed for this Python" in report
    assert "fix: run `make venv" in report


@pytest.mark.parametrize("interpreter", ["/nonexistent/python3", sys.executable + "-broken"])
def test_a_user_kernel_with_another_python_blocks_with_a_fix(tmp_path, monkeypatch, interpreter):
    # A `python3` kernelspec on JUPYTER_PATH (e.g. set by another setup's shell profile)
    # wins over the venv's own.
    spec = tmp_path / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [interpreter, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3", "language": "python",
    }))  # fmt: skip
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    finding = doctor.check_kernel()
    assert finding.status == doctor.BLOCK
    assert interpreter in finding.what and str(spec) in finding.what
    assert "jupyter kernelspec remove python3" in finding.fix


@pytest.mark.parametrize(
    ("version", "status"), [((3, 10, 12), doctor.BLOCK), ((3, 11, 7), doctor.WARN),
                            ((3, 13, 0), doctor.OK)]
)
def test_python_version(version, status):
    finding = doctor.check_python(version)
    assert finding.status == status
    assert (finding.fix != "") == (status != doctor.OK)


def test_python_311_says_what_needs_312_and_how_to_get_it():
    finding = doctor.check_python((3, 11, 7))
    assert "Django 5.2 LTS" in finding.what and "needs Python 3.12 or newer" in finding.what
    assert "AsyncPaginator" in finding.what and "PYTHON=python3.13" in finding.fix


def test_fixes_name_the_base_interpreter_not_the_venvs(monkeypatch):
    monkeypatch.setattr(doctor.sys, "_base_executable", "/usr/bin/python3.11", raising=False)
    assert "make venv PYTHON=/usr/bin/python3.11" in doctor.venv_fix()


def test_checks_the_learners_packages_for_this_interpreter(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text('# comment\ndjango==5.2 ; python_version < "3.0"\n'
                            "nest-asyncio==1.6.0  # why\ndj-database-url==3.1.2\n")
    assert doctor.learner_modules(requirements) == ["nest_asyncio", "dj_database_url"]
    assert "nbval" not in doctor.learner_modules() and "django" in doctor.learner_modules()


def test_disk_thresholds(monkeypatch, tmp_path):
    usage = {"free": 0}
    monkeypatch.setattr(doctor.shutil, "disk_usage",
                        lambda place: type("Usage", (), {"free": usage["free"]}))
    for free_mb, status in [(100, doctor.BLOCK), (1000, doctor.WARN), (50_000, doctor.OK)]:
        usage["free"] = free_mb * 2**20
        [finding] = doctor.check_disk({"here": tmp_path})
        assert finding.status == status
        assert f"{free_mb} MB free for here" in finding.what


def test_report_counts_blocking_problems_only():
    text, status = doctor.report([doctor.Finding(doctor.WARN, "w", "fix w"),
                                  doctor.Finding(doctor.OK, "fine")])
    assert status == 0 and "1 warning(s)" in text and "fix: fix w" in text
    text, status = doctor.report([doctor.Finding(doctor.BLOCK, "b", "fix b")])
    assert status == 1 and "1 problem(s) block" in text
