"""Checks for lesson 08 · Serving Django for real."""

import asyncio
import contextlib
import logging
import time

import httpx
from asgiref.sync import sync_to_async

from tutorial_project.course.exercises.core import exercise
from tutorial_project.course.exercises.expect import must_be_async
from tutorial_project.instruments.servers import serve_in_process
from tutorial_project.playground import mount, unmount

# Load tests a colleague might send, each with what limited it and why.
RUNS = [
    ({"clients": 50, "rps": 78, "mean": 0.64, "work": 0.1, "server_cpu": 0.12,
      "tool_cpu": 0.04}, "queue",
     "gunicorn, 8 threads: latency 6x the work while the server's CPU idles: a queue"),
    ({"clients": 20, "rps": 190, "mean": 0.105, "work": 0.1, "server_cpu": 0.45,
      "tool_cpu": 0.08}, "clients",
     "uvicorn, 20 clients: latency is the work itself, nothing near a core: add clients"),
    ({"clients": 400, "rps": 950, "mean": 0.42, "work": 0.1, "server_cpu": 0.98,
      "tool_cpu": 0.35}, "server CPU",
     "waitress, 400 threads: the server process used a whole core"),
    ({"clients": 1000, "rps": 3100, "mean": 0.32, "work": 0.05, "server_cpu": 0.7,
      "tool_cpu": 0.99}, "load generator",
     "a load tool at a whole core: its numbers are its own limit"),
    ({"clients": 10, "rps": 95, "mean": 0.105, "work": 0.01, "server_cpu": 0.97,
      "tool_cpu": 0.05}, "server CPU",
     "a view that computes: latency 10x the work, but because the CPU is full"),
    ({"clients": 5, "rps": 48, "mean": 0.104, "work": 0.1, "server_cpu": 0.05,
      "tool_cpu": 0.01}, "clients",
     "5 clients on a big pool: every request took its own time, no more"),
]
HINTS = {
    "load generator": "look at the load tool's own CPU first: near a whole core, it is the limit",
    "server CPU": "one server process near a whole core is CPU-bound, however long requests "
                  "took: check server_cpu before reading latency as a queue",
    "queue": "latency far above the work with no process near a core means waiting in line "
             "(a thread pool, a connection limit), not CPU",
    "clients": "when latency is the work itself and nothing is near a core, the server kept up",
}


@exercise("08.1", "Name the limit")
def check_what_limited(check, what_limited):
    for run, expected, story in RUNS:
        got = what_limited(dict(run))
        check.that(
            got == expected,
            f"{story}: {expected!r}",
            f"{story}: you said {got!r}, expected {expected!r}",
            hint=HINTS[expected],
        )


WAIT_MS = 500
CLIENTS = 20
ROUTE = "/exercise-08-2/stock/"


@contextlib.contextmanager
def _quiet_request_log():
    """The probe's own 500s are reported in the verdict; no log lines above it.

    A filter, not ``logger.disabled``: uvicorn's start-up reconfigures logging, which
    enables every existing logger again.
    """
    logger = logging.getLogger("django.request")

    def drop(record):
        return False

    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def _holds_a_connection():
    from django.db import connection

    return connection.connection is not None  # this thread's connection, open or not


@contextlib.contextmanager
def _watching_upstream_calls():
    """Each upstream() call notes whether its request's thread still holds a connection."""
    from tutorial_project.serving import upstream

    held = []

    async def observe():
        # thread_sensitive: runs on the calling request's thread, where its connection lives
        held.append(await sync_to_async(_holds_a_connection)())

    upstream.observers.append(observe)
    try:
        yield held
    finally:
        upstream.observers.remove(observe)


@exercise("08.2", "Let the connection go before the wait")
async def check_stock_then_wait(check, stock_then_wait):
    from tutorial_project.catalog.models import Product

    must_be_async(check, stock_then_wait, "stock_then_wait", "request", kind="view")
    expected = await Product.objects.filter(stock__gt=0).acount()
    mount(ROUTE, stock_then_wait)
    try:
        with _quiet_request_log(), _watching_upstream_calls() as held:
            async with serve_in_process() as url, httpx.AsyncClient(timeout=60) as client:

                async def timed_get():
                    answer = await client.get(f"{url}{ROUTE}", params={"ms": WAIT_MS})
                    return answer, time.perf_counter() - started

                started = time.perf_counter()
                timed = await asyncio.gather(*(timed_get() for _ in range(CLIENTS)))
    finally:
        unmount(ROUTE)
    answers = [answer for answer, _ in timed]
    done = sorted(seconds for _, seconds in timed)
    statuses = sorted({answer.status_code for answer in answers})
    check.that(
        statuses == [200],
        f"{CLIENTS} concurrent requests answered 200",
        f"the view answered {statuses}",
        hint="read the count with the async ORM (`await ....acount()`); in async code, "
        "anything that touches the database goes through sync_to_async, inside a function: "
        "`sync_to_async(connection.close)` looks the connection up on the event loop's "
        "thread, not on the request's",
    )
    bodies = [answer.json() for answer in answers]
    check.that(
        all(body == {"in_stock": expected} for body in bodies),
        "each answer is {\"in_stock\": n} with the right count",
        f"an answer was {bodies[0]!r}, expected {{'in_stock': {expected}}}",
        hint="count Product rows with stock > 0: filter(stock__gt=0)",
    )
    check.that(
        len(held) == CLIENTS,
        "each request awaited upstream() once",
        f"upstream() was awaited {len(held)} times for {CLIENTS} requests",
        hint="wait with `await upstream(ms / 1000)`, ms from request.GET (default 100)",
    )
    one_by_one = WAIT_MS / 1000 * CLIENTS  # the least it takes if the waits do not overlap
    check.that(
        done[0] >= WAIT_MS / 1000 * 0.9 and done[-1] < one_by_one / 2,
        f"the requests waited ?ms={WAIT_MS} each, at the same time",
        f"the last answer came after {done[-1]:.1f} s (one after another: {one_by_one:.0f} s)",
        hint="nothing blocking in the view: time.sleep or sync I/O stops the event loop, so "
        "the requests wait one after another",
    )
    check.that(
        not any(held),
        "no request held a database connection while it waited",
        f"{sum(held)} of {CLIENTS} requests still held their database connection while they "
        "waited",
        hint="close the connection before the wait, on the thread that holds it: a function "
        "that calls connection.close(), run with sync_to_async (thread_sensitive=True, the "
        "default, runs it on the request's thread; a thread of its own would close nothing)",
    )
