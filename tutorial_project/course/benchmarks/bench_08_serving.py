"""Lesson 08's scenario under locust and under wrk: throughput ratio, load generators' CPU share.

Every setup runs one server process (gunicorn with two uvicorn workers is shown apart: the
multi-process deployment), with the same clients, warm-up, window and timeout for both tools.
Each client count gets three windows in a row and the medians are compared, so that one window
disturbed by the machine does not decide. At the saturating load (throughput no longer rises
from the lower client count), locust must be within 25 % of wrk. Careful numbers need a quiet
machine: the load average is printed first.
"""

import asyncio
import os
import sys

from tutorial_project.instruments.loadtest.compare import (
    ASYNC_VIEW,
    SYNC_VIEW,
    Setup,
    measure,
    summarize,
)
from tutorial_project.instruments.loadtest.tools import run_locust, run_wrk, wrk_installed

LEVELS = (200, 400)  # both saturate every setup below on 2 cores: the check compares them
WARMUP, DURATION = 3.0, 4.0
REPEATS = 3  # windows per client count and tool: their median is compared
AGREEMENT = 0.25  # locust within 25 % of wrk at saturation

SETUPS = [
    Setup("uvicorn (asyncio), async view", "uvicorn", ASYNC_VIEW, LEVELS),
    Setup("uvicorn (asyncio), sync view", "uvicorn", SYNC_VIEW, LEVELS),
    Setup("daphne, async view", "daphne", ASYNC_VIEW, LEVELS),
    Setup("waitress 4 threads, sync view", "waitress", SYNC_VIEW, LEVELS, threads=4),
    Setup("waitress 32 threads, sync view", "waitress", SYNC_VIEW, LEVELS, threads=32),
    Setup("waitress 200 threads, sync view", "waitress", SYNC_VIEW, LEVELS, threads=200),
]
UNIX_SETUPS = [
    Setup("uvicorn (uvloop), async view", "uvicorn", ASYNC_VIEW, LEVELS, loop="uvloop"),
    Setup("gunicorn gthread 200 threads, sync view", "gunicorn-threads", SYNC_VIEW, LEVELS,
          threads=200),
    Setup("gunicorn + 2 uvicorn workers, async view (2 processes)", "gunicorn-uvicorn",
          ASYNC_VIEW, LEVELS, workers=2),
]


def install_wrk():
    """wrk from Debian's packages, when it is missing and we may install it."""
    if wrk_installed() or sys.platform != "linux" or os.geteuid() != 0:
        return wrk_installed()
    import subprocess

    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, **quiet)
    if not wrk_installed():
        subprocess.run(["apt-get", "update", "-qq"], check=False, **quiet)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, **quiet)
    return wrk_installed()


def _line(row):
    spread = f"({row.rps_low:.0f}-{row.rps_high:.0f})"
    p50 = row.p50 * 1000 if row.p50 else 0
    return (f"{row.requests_per_second:6.0f} req/s {spread:>9}  p50 {p50:5.0f} ms"
            f"  server CPU {row.server_cpu:4.0%}  {row.tool} CPU {row.tool_cpu:4.0%}"
            f"  threads {row.threads:4d}  RSS {row.rss_mb:4.0f} MB  DB {row.db_connections:3d}"
            f"  errors {row.errors}")


async def _bench(setups, have_wrk):
    table, verdicts = [], []
    for setup in setups:
        options = {"warmup": WARMUP, "duration": DURATION, "repeats": REPEATS}
        locust = summarize(await measure(setup, tool=run_locust, **options))
        wrk = summarize(await measure(setup, tool=run_wrk, **options)) if have_wrk else None
        low, high = locust
        saturated = high.requests_per_second <= 1.15 * low.requests_per_second
        table.append((f"{setup.label}: locust c={low.clients}", _line(low)))
        table.append((f"{setup.label}: locust c={high.clients}", _line(high)))
        if wrk:
            table.append((f"{setup.label}: wrk    c={wrk[0].clients}", _line(wrk[0])))
            table.append((f"{setup.label}: wrk    c={wrk[1].clients}", _line(wrk[1])))
            if not (high.requests_per_second and wrk[1].requests_per_second):
                table.append((f"{setup.label}: locust/wrk", "no answer in a window: the "
                              "machine is too busy to measure (see the load average)"))
                verdicts.append(False)
                continue
            ratio = high.requests_per_second / wrk[1].requests_per_second
            agrees = abs(ratio - 1) <= AGREEMENT
            table.append((
                f"{setup.label}: locust/wrk at c={high.clients}",
                f"{ratio:5.2f}  ({'within' if agrees else 'NOT within'} {AGREEMENT:.0%}; "
                f"{'saturated' if saturated else 'not saturated'}; "
                f"locust used {high.tool_cpu:.0%} of a core, wrk {wrk[1].tool_cpu:.0%})",
            ))
            if "2 processes" not in setup.label:
                verdicts.append(agrees or not saturated)
    return table, verdicts


def run(notebooks):
    from tutorial_project import start

    start(quiet=True)
    have_wrk = install_wrk()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    setups = SETUPS + (UNIX_SETUPS if os.name == "posix" else [])
    table, verdicts = asyncio.run(_bench(setups, have_wrk))
    header = [
        ("load average at start (1 min; careful numbers need it below the cores)",
         f"{load[0]:.1f} on {os.cpu_count()} cores" if load else "n/a"),
        ("scenario", f"a query then a 100 ms wait; clients {LEVELS}, warm-up {WARMUP:g} s, "
         f"{REPEATS} windows of {DURATION:g} s (median, spread), keep-alive, timeout 30 s, "
         "one server process"),
    ]
    if not have_wrk:
        header.append(("wrk", "not installed: only locust ran (apt-get install wrk)"))
    elif verdicts:
        header.append(("locust within 25 % of wrk at saturation, every one-process setup",
                       "yes" if all(verdicts) else "NO"))
    return header + table
