"""The rates client shares one AsyncClient per event loop, and use_transport still swaps it."""

import asyncio
from decimal import Decimal

import httpx

from tutorial_project.rates import client


def test_calls_on_one_loop_share_one_client_and_the_transport_can_still_be_swapped():
    async def scenario():
        first = await client.fetch_rate("USD")
        shared = client.shared_client()
        with client.use_transport(
            httpx.MockTransport(lambda request: httpx.Response(200, json={"rate": "2"}))
        ):
            swapped = await client.fetch_rate("USD")
        again = await client.fetch_rate("USD")
        same_client = client.shared_client() is shared
        await client.aclose_clients()
        return first, swapped, again, same_client, shared.is_closed

    first, swapped, again, same_client, closed = asyncio.run(scenario())
    assert (first, swapped, again) == (Decimal("1.10"), Decimal("2"), Decimal("1.10"))
    assert same_client and closed


def test_each_event_loop_gets_its_own_client():
    async def one_loop():
        made = client.shared_client()
        await client.fetch_rate("GBP")
        await client.aclose_clients()
        return made

    assert asyncio.run(one_loop()) is not asyncio.run(one_loop())
