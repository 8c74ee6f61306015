"""Run a real load tool as its own process: locust (every OS) or wrk (Unix, where installed).

``runs = await run_locust(url, path, clients=[10, 100])`` and ``await run_wrk(...)`` take the
same settings and return one ``LoadRun`` per number of clients. Both tools are closed-loop:
``clients`` connections, kept alive, each sending its next request as soon as the previous
answer is in, so at most ``clients`` requests are in flight. First a warm-up (not measured),
then a fixed window of ``duration`` seconds; a request that takes longer than ``timeout``
counts as an error.

The tool runs in a process of its own (never in the notebook's event loop), and each
``LoadRun`` says how much CPU it used over the window: a load generator near 100 % of a core
is the limit, not the server. ``watch``, a function that returns a new ``ServerWatch``, also
reads the server's threads, memory, database connections and CPU over each window.
"""

import asyncio
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from tutorial_project.instruments.loadtest.watch import ServerUsage

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
WRK_WINDOW = Path(__file__).with_name("wrk_window.lua")
WARMUP, DURATION, TIMEOUT = 2.0, 5.0, 30.0  # seconds


@dataclass
class LoadRun:
    tool: str  # "locust" or "wrk"
    clients: int
    seconds: float  # the measured window
    requests: int  # requests that finished in the window, errors included
    errors: int  # failed: refused, timed out, or not a 2xx/3xx answer
    p50: float | None  # seconds, over the answered requests
    p99: float | None
    mean: float | None
    cpu_seconds: float  # the load generator's own CPU over the window
    server: ServerUsage | None = None
    error_kinds: list = field(default_factory=list)
    warmup: float | None = None  # seconds the warm-up before this window lasted

    @property
    def requests_per_second(self):
        """Answered (non-error) requests per second of the window."""
        return (self.requests - self.errors) / self.seconds

    @property
    def cpu_share(self):
        """The load generator's CPU over the window, as a fraction of one core."""
        return self.cpu_seconds / self.seconds


def stop_tree(pid, timeout=10.0):
    """Stop a process and everything it started: terminate, wait, then kill what is left."""
    try:
        parent = psutil.Process(pid)
        family = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        return
    for process in family:
        try:
            process.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(family, timeout=timeout)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=timeout)


async def run_locust(url, path, *, clients, warmup=WARMUP, duration=DURATION, timeout=TIMEOUT,
                     watch=None):
    """Load ``url + path`` with locust (headless, FastHttpUser), in a process of its own.

    ``clients``: one number of clients, or several (ascending), measured one after the other
    by the same locust process. Returns one ``LoadRun`` per number. ``warmup``: seconds, or
    a list of seconds, one per number of clients. ``watch``: a function that returns a new
    ``ServerWatch``, used for each measured window.
    """
    levels = [clients] if isinstance(clients, int) else list(clients)
    warmups = _per_level(warmup, levels)
    with tempfile.TemporaryDirectory() as folder:
        report, log_path = Path(folder) / "report.json", Path(folder) / "locust.log"
        command = [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            "--host", url, "--users", str(levels[0]), "--spawn-rate", str(levels[0]),
            "--levels", ",".join(map(str, levels)), "--path", path,
            "--warmup", ",".join(map(str, warmups)), "--duration", str(duration),
            "--timeout", str(timeout),
            "--report", str(report), "--only-summary", "--loglevel", "WARNING",
            "--exit-code-on-error", "0",
            "--run-time",
            f"{int(len(levels) * (max(15, *warmups) + duration + 10) + timeout + 60)}s",
        ]
        usages = []
        with open(log_path, "wb") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
        try:
            deadline = time.monotonic() + 90  # locust's own start-up, on a busy machine
            watching = None
            while process.poll() is None:
                state = _read_json(report) if report.exists() else None
                if state is None and time.monotonic() > deadline:
                    raise RuntimeError(f"locust did not start:\n{_tail(log_path)}")
                if state and watch:
                    if watching is None and state["measuring"] is not None \
                            and state["measuring"] == len(usages):
                        watching = watch()
                        watching.start()
                    if watching is not None and len(state["results"]) > len(usages):
                        usages.append(watching.stop())
                        watching = None
                await asyncio.sleep(0.02)
            if watching is not None:
                usages.append(watching.stop())
        finally:
            stop_tree(process.pid)
        results = _read_json(report)["results"] if report.exists() else []
        if len(results) != len(levels):
            raise RuntimeError(f"locust stopped before its report:\n{_tail(log_path)}")
    usages += [None] * (len(levels) - len(usages))
    return [
        LoadRun("locust", r["users"], r["seconds"], r["requests"], r["errors"],
                _ms(r["p50_ms"]), _ms(r["p99_ms"]), _ms(r["mean_ms"]), r["cpu_seconds"], usage,
                r["error_kinds"], r.get("warmup_seconds"))
        for r, usage in zip(results, usages, strict=True)
    ]


def _per_level(warmup, levels):
    """One warm-up in seconds per level, from one number or a list of them."""
    warmups = [warmup] * len(levels) if isinstance(warmup, int | float) else list(warmup)
    if len(warmups) != len(levels):
        raise ValueError(f"{len(warmups)} warm-ups for {len(levels)} levels")
    return warmups


def _ms(value):
    return None if value is None else value / 1000


def wrk_installed():
    return shutil.which("wrk") is not None


async def run_wrk(url, path, *, clients, warmup=WARMUP, duration=DURATION, timeout=TIMEOUT,
                  watch=None):
    """The same load with wrk (one thread; Unix): for each number of clients, one wrk run
    whose connections stay open from the warm-up through the window, as locust's do. wrk's
    own summary covers the whole run, so a script (``wrk_window.lua``) counts the answers of
    the window alone; wrk's latency percentiles still cover the whole run, warm-up included.
    Returns one ``LoadRun`` per number, like ``run_locust``."""

    def command(users, seconds):  # wrk takes whole seconds
        return ["wrk", "-t1", f"-c{users}", f"-d{max(1, math.ceil(seconds))}s",
                f"--timeout={max(1, math.ceil(timeout))}s", "-s", str(WRK_WINDOW),
                "--latency", f"{url}{path}"]

    runs = []
    levels = [clients] if isinstance(clients, int) else list(clients)
    for users, seconds in zip(levels, _per_level(warmup, levels), strict=True):
        if runs:
            # The last run's connections are closed, but a WSGI server still serves what
            # they had sent (queued for its pool). One more request queues behind them:
            # when it is answered, that dead work is done and will not eat into this run.
            async with httpx.AsyncClient(timeout=timeout + 30) as client:
                await client.get(f"{url}{path}")
        environment = {**os.environ, "WRK_WARMUP": str(seconds)}
        with tempfile.TemporaryFile() as out:
            process = subprocess.Popen(command(users, seconds + duration), stdout=out,
                                       stderr=subprocess.STDOUT, env=environment)
            try:
                wrk = psutil.Process(process.pid)
                await asyncio.sleep(seconds)
                watching = watch() if watch else None
                if watching:
                    watching.start()
                cpu_before = _cpu_seconds(wrk)
                await asyncio.sleep(duration)
                cpu_after = _cpu_seconds(wrk)
                cpu = cpu_after - cpu_before if None not in (cpu_before, cpu_after) else 0.0
                usage = watching.stop() if watching else None
                while process.poll() is None:
                    await asyncio.sleep(0.02)
            finally:
                stop_tree(process.pid)
            out.seek(0)
            output = out.read().decode(errors="replace")
        if process.returncode:
            raise RuntimeError(f"wrk failed:\n{output}")
        runs.append(parse_wrk(output, users, cpu, usage))
    return runs


def _cpu_seconds(process):
    """A process's CPU so far, or None once it has ended (its output then says why)."""
    try:
        return sum(process.cpu_times()[:2])
    except psutil.NoSuchProcess:  # ZombieProcess included
        return None


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(value):
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(number) * _UNITS[unit]


def parse_wrk(output, clients, cpu_seconds, usage=None):
    """A ``LoadRun`` from wrk's ``--latency`` report, and from the window's own line when
    ``wrk_window.lua`` printed one (its count and length replace the whole run's).

    wrk counts as "requests" the answers it read, 2xx or not; requests that failed on the
    socket (timeouts included) are counted apart, as socket errors (over the whole run).
    """
    answered, window = re.search(r"(\d+) requests in ([\d.]+\w+),", output).groups()
    answered, seconds = int(answered), _seconds(window)
    mean = re.search(r"^\s+Latency\s+([\d.]+(?:us|ms|s|m))\b", output, re.M)
    latency = {p: _seconds(v) for p, v in re.findall(r"^\s+(50|99)%\s+([\d.]+(?:us|ms|s|m))\b",
                                                      output, re.M)}
    not_ok = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    not_ok = int(not_ok.group(1)) if not_ok else 0
    in_window = re.search(r"^window: (\d+) answers, (\d+) not 2xx/3xx, in ([\d.]+) s$",
                          output, re.M)
    if in_window:
        answered, not_ok, seconds = int(in_window[1]), int(in_window[2]), float(in_window[3])
    socket = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    failed_on_socket = sum(map(int, socket.groups())) if socket else 0
    errors = failed_on_socket + not_ok
    return LoadRun(
        "wrk", clients, seconds, answered + failed_on_socket, errors,
        latency.get("50"), latency.get("99"), mean and _seconds(mean.group(1)), cpu_seconds, usage,
        [f"socket errors: {socket.group(0)}"] if socket else [],
    )


def _read_json(path):
    import json

    return json.loads(path.read_text())


def _tail(path, lines=15):
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"
