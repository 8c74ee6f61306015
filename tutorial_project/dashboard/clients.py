"""The dashboard's httpx.AsyncClient: one per event loop under ASGI, made by a swappable factory.

A client owns a connection pool, and pooled connections belong to the event loop that opened
them; so the client is shared by every request on one loop, never across loops. That pays off
under an ASGI server, where one loop serves every request of the process. Under WSGI
(``runserver`` without daphne, gunicorn's sync workers, ``django.test.Client``) Django runs
each async view in a one-off event loop: a per-loop client would be made for one request and
never closed, so ``client_for(request)`` makes one for that request and closes it instead.

Each loop's client is closed when its loop is finished by ``asyncio.run`` or ``asyncio.Runner``
(uvicorn, asgiref's ``async_to_sync``, a management command, a test with a loop of its own):
they cancel the tasks still pending, and a task started with the client closes it when
cancelled. For a loop ended otherwise, await ``close_shared_client()`` before it ends.

By default the client reaches the fake upstream in-process; ``use_client_factory`` points it
elsewhere (e.g. a URL served by uvicorn) without touching the view.
"""

import asyncio
import contextlib
import contextvars
import time
import weakref

import httpx
from django.core.handlers.wsgi import WSGIRequest

from tutorial_project.instruments.upstream import FakeUpstream

# Connect and read timeouts for real sockets. ASGITransport ignores them (it never touches the
# network), which is why sources.fetch_source also bounds every call with asyncio.timeout.
TIMEOUT = httpx.Timeout(1.0, connect=0.5)
# A burst of requests reuses at most 10 open connections instead of opening one per request.
# The rest queue for a free one, and that wait counts against each source's budget.
# An idle connection is dropped after 4 s, before uvicorn's 5 s keep-alive timeout closes it
# from the other end (reusing one the server is closing fails with RemoteProtocolError).
LIMITS = httpx.Limits(max_connections=10, max_keepalive_connections=10, keepalive_expiry=4.0)
# httpx builds a new SSL context (loading certifi's CA file, ~10-500 ms) for every client by
# default, on the event loop. Build it once, at import, and give it to every client.
SSL_CONTEXT = httpx.create_ssl_context()

default_upstream = FakeUpstream()
# event loop -> (its client, the task that closes it when the loop ends). Not a weak map: the
# client's connections hold their loop, so an entry must be removed, by that task or by
# close_shared_client(), for the loop and the client to be freed.
_clients = {}


def in_process_client(app=None):
    """A client that calls the fake upstream app directly: no sockets, no ports.

    ``raise_app_exceptions=False``: a crash inside the app becomes a 500 answer, as a real
    server would send, instead of an exception raised inside the caller's ``client.get``.
    """
    transport = httpx.ASGITransport(app=app or default_upstream, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://upstream", timeout=TIMEOUT)


def loopback_client(base_url):
    """A client for an upstream served on a real socket (e.g. by uvicorn on 127.0.0.1)."""
    return httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT, limits=LIMITS, verify=SSL_CONTEXT)


_factory = in_process_client

# httpcore 1.0.9 bug (open: https://github.com/encode/httpcore/issues/1093): a request
# cancelled just as the pool hands it a new connection, or just after that connection opens,
# leaves the connection in the pool for good, "CONNECTING" or "NEW" and used by nobody. Once
# they fill max_connections, every call fails against a healthy upstream. No setting avoids
# it while calls are cancelled (asyncio.timeout, a client that disconnects), so the shared
# client is replaced once half its slots are such orphans. A connection sets up within the
# 0.5 s connect timeout; one still setting up at a look STUCK_AFTER later is an orphan.
STUCK_AFTER = 1.0  # seconds
_setting_up = weakref.WeakKeyDictionary()  # connection -> when it was first seen setting up
_retiring = set()  # replaced clients being closed


def stranded_share(client):
    """The share of the client's connection slots held by orphans: connections still setting
    up STUCK_AFTER seconds after this function first saw them (0.0 for a client with no pool).

    Reads httpx 0.28's private ``_transport._pool`` (httpcore's pool): recheck on upgrade.
    """
    pool = getattr(client._transport, "_pool", None)  # ASGITransport has none
    if pool is None:
        return 0.0
    now, stuck = time.monotonic(), 0
    for connection in pool.connections:
        info = connection.info()
        if info == "CONNECTING" or ", NEW," in info:
            stuck += now - _setting_up.setdefault(connection, now) >= STUCK_AFTER
    return stuck / pool._max_connections


def shared_client():
    """This event loop's client, created on first use (for a long-lived loop: ASGI), and
    replaced when cancelled calls have stranded half its connections (httpcore #1093)."""
    loop = asyncio.get_running_loop()
    _forget_closed_loops()
    client, closer = _clients.get(loop, (None, None))
    if client is not None and not client.is_closed and stranded_share(client) >= 0.5:
        closing = loop.create_task(_close_when_idle(client))
        _retiring.add(closing)
        closing.add_done_callback(_retiring.discard)
        client = None
    if client is None or client.is_closed:
        client = _factory()
        if closer is None:
            # An empty context: the task lives as long as the loop, and must not keep the
            # first request's context variables alive with it.
            closer = loop.create_task(_close_at_loop_end(loop), context=contextvars.Context())
        _clients[loop] = client, closer
    return client


async def _close_at_loop_end(loop):
    """Wait until cancelled, then close the loop's client. ``asyncio.run`` and ``Runner``
    cancel every pending task before closing their loop, so this runs while it still can."""
    try:
        await loop.create_future()  # never set
    finally:
        client, _ = _clients.pop(loop, (None, None))
        if client is not None:
            await client.aclose()


def _forget_closed_loops():
    """Drop the clients of loops closed without cancelling their tasks (no ``asyncio.run``):
    too late to close them on their loop; the garbage collector closes their sockets."""
    for loop in [loop for loop in _clients if loop.is_closed()]:
        del _clients[loop]


# Closing a client fails the calls still running on it (httpcore's pool closes every
# connection: a ReadError on httpx 0.28), so a replaced client is closed once its pool holds no
# request, or after RETIRE_WITHIN seconds whatever is still running.
RETIRE_WITHIN = 10.0  # seconds


async def _close_when_idle(client):
    """Close a replaced client once its calls have ended. Reads httpcore 1.0's private
    ``_pool._requests`` (the requests queued or running): recheck on upgrade."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + RETIRE_WITHIN
    try:
        while client._transport._pool._requests and loop.time() < give_up:
            await asyncio.sleep(0.05)
    finally:  # also when the loop ends first and cancels this task
        await client.aclose()


@contextlib.asynccontextmanager
async def client_for(request):
    """The client for this request: the loop's shared one under ASGI; under WSGI, whose
    one-off loop dies with the request, a client of its own, closed when the block ends."""
    if not isinstance(request, WSGIRequest):
        yield shared_client()
        return
    async with _factory() as client:
        yield client


async def close_shared_client():
    """Close this loop's client (its open connections); the next request makes a new one."""
    client, closer = _clients.pop(asyncio.get_running_loop(), (None, None))
    if closer is not None:
        closer.cancel()
    if client is not None:
        await client.aclose()


async def use_client_factory(factory=None):
    """Make future clients with ``factory`` (None: back to in-process); closes the current one."""
    global _factory
    await close_shared_client()
    _factory = factory or in_process_client
