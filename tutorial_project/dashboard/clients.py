"""The dashboard's shared httpx.AsyncClient: one per event loop, made by a swappable factory.

A client owns a connection pool, and pooled connections belong to the event loop that opened
them; so the client is shared by every request on one loop, never across loops. By default it
reaches the fake upstream in-process; ``use_client_factory`` points it elsewhere (e.g. a URL
served by uvicorn) without touching the view.
"""

import asyncio
import weakref

import httpx

from tutorial_project.instruments.upstream import FakeUpstream

# Connect and read timeouts for real sockets. ASGITransport ignores them (it never touches the
# network), which is why sources.fetch_source also bounds every call with asyncio.timeout.
TIMEOUT = httpx.Timeout(1.0, connect=0.5)
# A burst of requests reuses at most 10 open connections instead of opening one per request.
LIMITS = httpx.Limits(max_connections=10, max_keepalive_connections=10)

default_upstream = FakeUpstream()
_clients = weakref.WeakKeyDictionary()  # event loop -> its client


def in_process_client(app=None):
    """A client that calls the fake upstream app directly: no sockets, no ports."""
    transport = httpx.ASGITransport(app=app or default_upstream)
    return httpx.AsyncClient(transport=transport, base_url="http://upstream", timeout=TIMEOUT)


def loopback_client(base_url):
    """A client for an upstream served on a real socket (e.g. by uvicorn on 127.0.0.1)."""
    return httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT, limits=LIMITS)


_factory = in_process_client


def shared_client():
    """This event loop's client, created on first use."""
    loop = asyncio.get_running_loop()
    if loop not in _clients:
        _clients[loop] = _factory()
    return _clients[loop]


async def close_shared_client():
    """Close this loop's client (its open connections); the next request makes a new one."""
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


async def use_client_factory(factory=None):
    """Make future clients with ``factory`` (None: back to in-process); closes the current one."""
    global _factory
    await close_shared_client()
    _factory = factory or in_process_client
