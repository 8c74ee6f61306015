"""The exchange-rate upstream, reached with one shared httpx.AsyncClient per event loop.

A client owns a connection pool, and its connections belong to the event loop that opened
them, so every call on one loop reuses that loop's client (lesson 06 measures what a client
per call costs); ``aclose_clients()`` closes it at shutdown or at the end of a test.

The HTTP transport is the only thing a test (or a lesson) replaces: ``use_transport()``
swaps it for, say, ``httpx.MockTransport(handler)``, and the same client code runs. The
shared client sends through a small transport that forwards to whichever one is in use, so
swapping it needs no new client. By default the upstream is simulated in this process
(``simulated_upstream``), so the tutorial never needs the network.
"""

import asyncio
import contextlib
import weakref
from decimal import Decimal, InvalidOperation

import httpx

UPSTREAM_URL = "http://rates.upstream"
TIMEOUT_SECONDS = 2.0
SIMULATED_RATES = {"EUR": "1", "USD": "1.10", "GBP": "0.85", "JPY": "170"}


class UpstreamError(Exception):
    """The upstream failed or answered something unusable (the view answers 502)."""


class UpstreamTimeout(UpstreamError):
    """The upstream did not answer in time (the view answers 504)."""


class UnknownCurrency(Exception):
    """The upstream has no rate for this currency (the view answers 400)."""


def simulated_upstream(request):
    """An in-process stand-in for the real service: GET /rates/<CODE> -> {"rate": "1.10"}."""
    code = request.url.path.rsplit("/", 1)[-1]
    if code not in SIMULATED_RATES:
        return httpx.Response(404, json={"error": f"unknown currency {code}"})
    return httpx.Response(200, json={"currency": code, "rate": SIMULATED_RATES[code]})


_transport = httpx.MockTransport(simulated_upstream)
_clients = weakref.WeakKeyDictionary()  # event loop -> its shared client


class _CurrentTransport(httpx.AsyncBaseTransport):
    """Forwards each request to the transport in use at that moment (see use_transport)."""

    async def handle_async_request(self, request):
        return await _transport.handle_async_request(request)


@contextlib.contextmanager
def use_transport(transport):
    """Send upstream requests through ``transport`` inside this block."""
    global _transport
    previous, _transport = _transport, transport
    try:
        yield transport
    finally:
        _transport = previous


def shared_client():
    """This event loop's client, made on first use and reused by every call after it."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = _clients[loop] = httpx.AsyncClient(
            transport=_CurrentTransport(), base_url=UPSTREAM_URL, timeout=TIMEOUT_SECONDS
        )
    return client


async def aclose_clients():
    """Close this event loop's client; the next call makes a new one."""
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


async def fetch_rate(currency):
    """The EUR -> ``currency`` rate as a Decimal; raises the errors above."""
    try:
        response = await shared_client().get(f"/rates/{currency}")
    except httpx.TimeoutException as error:
        raise UpstreamTimeout(f"no answer within {TIMEOUT_SECONDS} s") from error
    except httpx.HTTPError as error:
        raise UpstreamError(f"{type(error).__name__}: {error}") from error
    if response.status_code == 404:
        raise UnknownCurrency(currency)
    if response.status_code != 200:
        raise UpstreamError(f"the upstream answered {response.status_code}")
    try:
        return Decimal(response.json()["rate"])
    except (ValueError, KeyError, TypeError, InvalidOperation) as error:
        raise UpstreamError("the upstream answered something that is not a rate") from error
