"""Lesson 08's load, for locust: closed-loop clients on keep-alive connections.

``tools.run_locust`` runs it as its own process, headless, never inside the notebook:

    locust -f locustfile.py --headless -H http://127.0.0.1:8000 -u 10 -r 10 --levels 10,100
           --path "/serving/wait-async/?ms=100" --warmup 2 --duration 5 --timeout 30
           --report result.json

Each user sends its next request as soon as the previous answer is in (no think time), on the
one connection it keeps open. For each number of users in ``--levels``: start them all, warm up
(not measured: at least ``--warmup`` seconds, and longer until it has lasted twice the latency
of the answers of its last second, so that the queue is full, at most ``WARMUP_CAP``), reset the
statistics, then measure exactly ``--duration`` seconds, with this
process's own CPU time over the same window. A level repeated (``--levels 10,10,10``) measures
again at once, without a second warm-up. One process runs every level, so locust's
start-up (a few seconds of CPU) is paid once.
"""

import json
import os
import time

import gevent
from locust import FastHttpUser, constant, events, task


@events.init_command_line_parser.add_listener
def _options(parser):
    parser.add_argument("--path", default="/", help="the path every request GETs")
    parser.add_argument("--warmup", default="2.0",
                        help="seconds not measured: one for every level, or one per level")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured")
    parser.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    parser.add_argument("--levels", default="10", help="numbers of users, comma-separated")
    parser.add_argument("--report", default="locust-report.json", help="JSON file to write")


_run = {}  # the locust Environment, set once at start
WARMUP_CAP = 15.0  # seconds: the longest a warm-up grows to
_recent = []  # (when, seconds) of each answer, while a warm-up runs


@events.request.add_listener
def _note_latency(response_time=None, **kwargs):
    if _run.get("warming") and response_time is not None:
        _recent.append((time.perf_counter(), response_time / 1000))


def _warm_up(seconds):
    """Sleep ``seconds``, then on until the warm-up has lasted twice the latency of the last
    second's answers (a queue fills in about one latency). Returns the seconds it lasted."""
    began = time.perf_counter()
    _recent.clear()
    _run["warming"] = True
    gevent.sleep(seconds)
    while (now := time.perf_counter()) - began < WARMUP_CAP:
        last = sorted(took for when, took in _recent if when > now - 1)
        if not last or now - began >= 2 * last[len(last) // 2]:
            break
        gevent.sleep(0.1)
    _run["warming"] = False
    return time.perf_counter() - began


@events.init.add_listener
def _timeouts(environment, **kwargs):
    _run["environment"] = environment
    Client.network_timeout = Client.connection_timeout = environment.parsed_options.timeout


class Client(FastHttpUser):
    wait_time = constant(0)  # closed loop: the next request leaves when the answer is in
    concurrency = 1  # one connection per user, kept alive between its requests

    @task
    def get(self):
        self.client.get(self.environment.parsed_options.path, name="view")


def _write(path, report):
    with open(f"{path}.part", "w") as file:
        json.dump(report, file)
    os.replace(f"{path}.part", path)  # the reader never sees half a file


def _measure(environment):
    options, runner = environment.parsed_options, environment.runner
    stats = runner.stats
    levels = [int(users) for users in options.levels.split(",")]
    warmups = [float(seconds) for seconds in options.warmup.split(",")]
    warmups = warmups * len(levels) if len(warmups) == 1 else warmups
    done, warmed = [], 0.0
    for level, users in enumerate(levels):
        if runner.user_count != users:
            runner.start(users, spawn_rate=users)
            while runner.user_count != users:
                gevent.sleep(0.05)
        if level == 0 or users != levels[level - 1]:
            warmed = _warm_up(warmups[level])  # a repeated level measures on, already warm
        stats.reset_all()
        cpu, started = time.process_time(), time.perf_counter()
        _write(options.report, {"measuring": level, "results": done})
        gevent.sleep(options.duration)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        total = stats.total
        answered = total.num_requests - total.num_failures
        done.append({
            "users": users,
            "seconds": seconds,
            "requests": total.num_requests,
            "errors": total.num_failures,
            "p50_ms": total.get_response_time_percentile(0.5) if answered else None,
            "p99_ms": total.get_response_time_percentile(0.99) if answered else None,
            "mean_ms": total.avg_response_time if answered else None,
            "cpu_seconds": cpu,
            "warmup_seconds": warmed,  # of this level's warm-up, repeated levels included
            "error_kinds": sorted({str(e.error)[:120] for e in stats.errors.values()})[:3],
        })
        _write(options.report, {"measuring": None, "results": done})
    runner.quit()


_windows = []


@events.spawning_complete.add_listener
def _start_windows(user_count, **kwargs):
    if not _windows:  # the first level is up; _measure starts the next ones itself
        _windows.append(gevent.spawn(_measure, _run["environment"]))
