"""Measure the time a middleware chain adds per request, in microseconds, the way a server runs it.

Each request goes through ``ASGIHandler.__call__`` with an ASGI ``scope``, ``receive`` and
``send``, exactly as uvicorn or daphne call it: so it pays for the per-request
``ThreadSensitiveContext``, the ``request_started`` / ``request_finished`` signals, the
disconnect listener and ``send_response``, not only for ``get_response_async()``.
No socket and no HTTP parsing: those cost the same whatever the chain, and would only add noise.
"""

import asyncio
import contextlib
import logging
import statistics
import time
from functools import partial

from asgiref import sync as asgiref_sync
from django.core.handlers.asgi import ASGIHandler

from tutorial_project.playground import use_middleware


def _scope(path, host=b"testserver", headers=()):
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", host), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }


async def asgi_get(app, path, *, on_last_body=None, disconnect_after=None, disconnect_when=None,
                   headers=()):
    """Send one GET for ``path`` through the ASGI app ``app``; return the response's status
    (None if the app sent no response).

    ``on_last_body``, if given, is called when the app sends the response's last body message
    (``more_body`` false): the moment a server completes the response to its client.
    ``disconnect_after``, if given, is the number of seconds after which the client goes
    away (an ``http.disconnect`` message), as a server reports a closed connection; by
    default the client stays for the whole response. ``disconnect_when``, if given, is an
    ``asyncio.Event``: the client goes away once it is set. ``headers``: more request headers, as
    ASGI pairs of lower-case bytes (``[(b"x-api-key", b"...")]``).
    """
    messages = iter([{"type": "http.request", "body": b"", "more_body": False}])
    connection_open = asyncio.Event()  # never set: the client stays for the whole response

    async def receive():
        message = next(messages, None)
        if message is None:
            if disconnect_when is not None:
                await disconnect_when.wait()
                return {"type": "http.disconnect"}
            if disconnect_after is not None:
                await asyncio.sleep(disconnect_after)
                return {"type": "http.disconnect"}
            await connection_open.wait()  # Django's disconnect listener waits here
        return message

    status = None

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body" and not message.get("more_body"):
            if on_last_body is not None:
                on_last_body()

    await app(_scope(path, headers=headers), receive, send)
    return status


def _now_into(moments):
    moments.append(time.perf_counter())


async def microseconds_per_request(chains, path, *, requests=300, rounds=5):
    """``{name: µs per request}`` for each chain in ``chains`` (``{name: middleware list}``).

    A fresh ASGIHandler per chain builds it (load_middleware) as a server does at startup;
    then requests go one at a time through ``ASGIHandler.__call__`` to the view at ``path``,
    each one timed on its own, from the call to the response's last body message: what a
    client waits for. What the handler does after that message (``ThreadSensitiveContext``
    shutting down the request's executor) is left out: the client does not wait for it, though
    the server's CPU does that work. The chains take turns, round after round, and each
    reports its median request: on a busy machine the OS pauses a few requests for
    milliseconds, and the median ignores them.
    """
    handlers = {}
    for name, middleware in chains.items():
        with use_middleware(*middleware):
            handlers[name] = ASGIHandler()
    for handler in handlers.values():  # warm-up: imports, URL resolver, first thread pools
        for _ in range(20):
            await asgi_get(handler, path)
    timings = {name: [] for name in chains}
    for _ in range(rounds):
        for name, handler in handlers.items():
            for _ in range(requests):
                sent = []
                started = time.perf_counter()
                status = await asgi_get(handler, path, on_last_body=partial(_now_into, sent))
                timings[name].append((sent[-1] - started) * 1e6 if sent else float("inf"))
                if status != 200:
                    raise RuntimeError(f"{path} answered {status} through the chain {name!r}")
    return {name: statistics.median(values) for name, values in timings.items()}


def _noop():
    return None


async def _anoop():
    return None


def _median_and_p90(seconds):
    """(median, 90th percentile) of ``seconds``, in µs."""
    return statistics.median(seconds) * 1e6, statistics.quantiles(seconds, n=10)[-1] * 1e6


def _to_loop_from_this_thread(times):
    spans = []
    for _ in range(times):
        started = time.perf_counter()
        asgiref_sync.async_to_sync(_anoop)()  # waits for the event loop to run it
        spans.append(time.perf_counter() - started)
    return spans


async def crossing_microseconds(times=1000):
    """``{"sync_to_async": (median, p90), "async_to_sync": (median, p90)}`` in µs: one crossing
    each way, timed on its own ``times`` times, with nothing else around it.

    As in a request under ``ASGIHandler``: inside a ``ThreadSensitiveContext``, whose worker
    thread a first, untimed call starts; ``sync_to_async`` of a function that does nothing,
    awaited on the event loop; ``async_to_sync`` of a coroutine that does nothing, called
    from that worker thread (as a sync middleware calls an async view) while the loop waits.
    """
    async with asgiref_sync.ThreadSensitiveContext():
        await asgiref_sync.sync_to_async(_noop)()  # starts the worker thread: not timed
        to_thread = []
        for _ in range(times):
            started = time.perf_counter()
            await asgiref_sync.sync_to_async(_noop)()
            to_thread.append(time.perf_counter() - started)
        to_loop = await asgiref_sync.sync_to_async(_to_loop_from_this_thread)(times)
    return {"sync_to_async": _median_and_p90(to_thread),
            "async_to_sync": _median_and_p90(to_loop)}


@contextlib.contextmanager
def _counting_thread_hops():
    """Count every ``sync_to_async`` and ``async_to_sync`` call made while the block runs."""
    counts = {"sync_to_async": 0, "async_to_sync": 0}
    to_thread, to_loop = asgiref_sync.SyncToAsync.__call__, asgiref_sync.AsyncToSync.__call__

    async def counted_to_thread(self, *args, **kwargs):
        counts["sync_to_async"] += 1
        return await to_thread(self, *args, **kwargs)

    def counted_to_loop(self, *args, **kwargs):
        counts["async_to_sync"] += 1
        return to_loop(self, *args, **kwargs)

    asgiref_sync.SyncToAsync.__call__ = counted_to_thread
    asgiref_sync.AsyncToSync.__call__ = counted_to_loop
    try:
        yield counts
    finally:
        asgiref_sync.SyncToAsync.__call__, asgiref_sync.AsyncToSync.__call__ = to_thread, to_loop


async def thread_hops_per_request(middleware, path):
    """``{"sync_to_async": n, "async_to_sync": m}``: the crossings one request makes.

    Each ``sync_to_async`` sends sync code to the request's worker thread and waits for it;
    each ``async_to_sync`` sends a coroutine back to the event loop while a thread waits.
    Counted for one GET of ``path`` through ``ASGIHandler`` with exactly ``middleware``.
    Django's log line of an error response is dropped (a logging filter), but the
    ``sync_to_async(log_response)`` that produces it still runs and is counted: an answer of
    400 or more shows one more ``sync_to_async`` than a 2xx one, whatever the chain.
    """
    with use_middleware(*middleware):
        handler = ASGIHandler()
    with _without_request_log():
        await asgi_get(handler, path)  # the first request may do one-time work
        with _counting_thread_hops() as counts:
            await asgi_get(handler, path)
    return counts


@contextlib.contextmanager
def _without_request_log():
    request_log = logging.getLogger("django.request")
    drop = lambda record: False  # noqa: E731
    request_log.addFilter(drop)
    try:
        yield
    finally:
        request_log.removeFilter(drop)
