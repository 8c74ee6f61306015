"""Lesson 08's load tools: locust runs in its own process and reports each window; wrk's
report is read right; the server's usage is read; nothing is left running."""

import asyncio
import os

import pytest

from tutorial_project.instruments.loadtest.tools import (
    parse_wrk,
    run_locust,
    run_wrk,
    wrk_installed,
)
from tutorial_project.instruments.loadtest.watch import ServerWatch
from tutorial_project.instruments.servers import leftovers, serve

WRK_REPORT = """Running 5s test @ http://127.0.0.1:8000/serving/wait-sync/?ms=100
  1 threads and 100 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   250.10ms   20.01ms   1.20s    90.00%
    Req/Sec   400.00     20.00   450.00     70.00%
  Latency Distribution
     50%  245.00ms
     75%  260.00ms
     90%  280.00ms
     99%    1.10s
  2000 requests in 5.00s, 400.00KB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 10
Requests/sec:    400.00
"""


def test_parse_wrk():
    run = parse_wrk(WRK_REPORT, 100, cpu_seconds=0.5)
    assert run.tool == "wrk" and run.clients == 100 and run.seconds == 5.0
    assert run.requests == 2005 and run.errors == 15  # socket errors are not in wrk's count
    assert run.requests_per_second == pytest.approx(1990 / 5)
    assert run.p50 == pytest.approx(0.245) and run.p99 == pytest.approx(1.1)
    assert run.mean == pytest.approx(0.2501) and run.cpu_share == pytest.approx(0.1)


def test_parse_wrk_takes_the_window_that_its_script_counted():
    window = "window: 1200 answers, 4 not 2xx/3xx, in 3.010 s\n"
    run = parse_wrk(WRK_REPORT + window, 100, cpu_seconds=0.3)
    assert run.seconds == pytest.approx(3.01)  # not the whole run's 5 s
    assert run.requests == 1205 and run.errors == 9  # socket errors: the whole run's
    assert run.requests_per_second == pytest.approx(1196 / 3.01)


def _database():
    from django.conf import settings

    return settings.DATABASES["default"]["NAME"]


def test_locust_measures_each_level_with_the_servers_usage(project):
    async def scenario():
        async with serve("waitress", threads=8) as server:
            return await run_locust(
                server.url, "/serving/wait-sync/?ms=50", clients=[2, 8, 8], warmup=0.5,
                duration=1.5, watch=lambda: ServerWatch(server.pid, database=_database()),
            )

    low, high, again = asyncio.run(scenario())  # 8 twice: the repeat measures without warm-up
    assert (low.tool, low.clients, high.clients, again.clients) == ("locust", 2, 8, 8)
    assert again.errors == 0 and 1.4 < again.seconds < 2.5 and again.server is not None
    # the whole machine: at least the server's and locust's CPU, at most every core
    assert high.server.cpu_share <= high.server.machine_busy <= (os.cpu_count() or 1) * 1.05
    assert low.errors == high.errors == 0
    assert 1.4 < low.seconds < 2.5
    assert high.requests_per_second > low.requests_per_second  # 8 threads: more clients, more
    assert high.requests_per_second <= 8 / 0.05 * 1.15  # ... never past 8 threads / 50 ms
    assert 0.05 <= high.p50 < 5 and high.p99 >= high.p50
    assert 0 < high.cpu_share < 1
    assert 8 <= high.server.peak_threads <= 8 + 8  # the pool, and a few of waitress's own
    assert 1 <= high.server.peak_db_connections <= 8
    assert high.server.peak_rss > 10 * 2**20 and high.server.cpu_seconds > 0
    assert leftovers() == {}


def test_a_refused_connection_is_an_error_not_a_hang(project):
    from tutorial_project.instruments.servers import free_port

    url = f"http://127.0.0.1:{free_port()}"
    (run,) = asyncio.run(run_locust(url, "/", clients=2, warmup=0.2, duration=0.5, timeout=2))
    assert run.requests == run.errors > 0 and run.requests_per_second == 0


@pytest.mark.skipif(not wrk_installed(), reason="wrk is not installed (apt-get install wrk)")
def test_wrk_measures_the_same_way(project):
    async def scenario():
        async with serve("waitress", threads=4) as server:
            return await run_wrk(server.url, "/serving/wait-sync/?ms=50", clients=[8],
                                 warmup=1, duration=2)

    (run,) = asyncio.run(scenario())
    assert run.tool == "wrk" and run.errors == 0
    assert 1.9 <= run.seconds <= 2.6  # the window alone, on the warm-up's connections
    assert run.requests_per_second <= 4 / 0.05 * 1.15
    assert run.p50 >= 0.05 and run.cpu_share < 1
    assert leftovers() == {}


def test_summarize_takes_the_median_of_the_repeats_and_their_spread():
    from tutorial_project.instruments.loadtest.compare import Row, by_setup, summarize, table

    def row(rps, cpu, machine):
        return Row("waitress", 100, rps, 0.5, 0.9, 0.5, 0, 0.05, cpu, 201, 80.0, 80,
                   machine_busy=machine, load_average=9.0)

    rows = [row(140, 0.5, 1.9), row(240, 0.7, 2.0), row(220, 0.6, 1.8)]
    (summary,) = summarize(rows)
    assert (summary.requests_per_second, summary.rps_low, summary.rps_high) == (220, 140, 240)
    assert (summary.server_cpu, summary.machine_busy, summary.repeats) == (0.6, 1.9, 3)
    assert by_setup(rows)["waitress"][100] == summary
    text = table(rows)
    assert "(140-240)" in text and f"1.9 of {os.cpu_count()}" in text and "p99" not in text
