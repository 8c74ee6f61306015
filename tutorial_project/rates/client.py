"""The exchange-rate upstream, reached with httpx.

The HTTP transport is the only thing a test (or a lesson) replaces: ``use_transport()``
swaps it for, say, ``httpx.MockTransport(handler)``, and the same client code runs.
By default the upstream is simulated in this process (``simulated_upstream``), so the
tutorial never needs the network.
"""

import contextlib
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


@contextlib.contextmanager
def use_transport(transport):
    """Send upstream requests through ``transport`` inside this block."""
    global _transport
    previous, _transport = _transport, transport
    try:
        yield transport
    finally:
        _transport = previous


async def fetch_rate(currency):
    """The EUR -> ``currency`` rate as a Decimal; raises the errors above."""
    async with httpx.AsyncClient(
        transport=_transport, base_url=UPSTREAM_URL, timeout=TIMEOUT_SECONDS
    ) as client:
        try:
            response = await client.get(f"/rates/{currency}")
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
