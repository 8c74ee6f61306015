"""Checks for lesson 06 · Calling external APIs with httpx."""

import asyncio
import time

import httpx

from tutorial_project.course.exercises.core import exercise
from tutorial_project.course.exercises.expect import must_be_async
from tutorial_project.instruments.upstream import FakeUpstream

LATENCY = 0.2  # both endpoints: about 0.2 s together, 0.4 s one after the other
GIVE_UP = 3.0  # the check stops waiting for an answer after this long


def _client(upstream):
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=upstream), base_url="http://upstream"
    )


async def _bounded(check, coroutine, what):
    try:
        async with asyncio.timeout(GIVE_UP):
            return await coroutine
    except TimeoutError:
        check.that(
            False,
            "",
            f"{what} still had no result after {GIVE_UP:.0f} s",
            hint="bound the call: async with asyncio.timeout(budget): ...",
        )


@exercise("06.1", "Fetch two sources at the same time")
async def check_fetch_both(check, fetch_both):
    must_be_async(check, fetch_both, "fetch_both", "client")
    upstream = FakeUpstream(
        {"/weather": (LATENCY, {"celsius": 14}), "/news": (LATENCY, {"headlines": []})}
    )
    async with _client(upstream) as client:
        started = time.perf_counter()
        result = await _bounded(check, fetch_both(client), "fetch_both(client)")
        took = time.perf_counter() - started
    check.that(
        result == ({"celsius": 14}, {"headlines": []}),
        "it returns (weather JSON, news JSON)",
        f"it returned {result!r}",
        hint="return a tuple of the two decoded bodies: (weather.json(), news.json())",
    )
    check.that(
        took < LATENCY * 1.8,
        "the two calls waited at the same time",
        f"it took {took:.2f} s: the calls ran one after the other (each takes {LATENCY} s)",
        hint="start both before awaiting either: asyncio.gather(...) or a TaskGroup",
    )


@exercise("06.2", "An answer or None, never a hang")
async def check_get_or_none(check, get_or_none):
    must_be_async(check, get_or_none, "get_or_none", "client, path, budget")
    upstream = FakeUpstream()
    async with _client(upstream) as client:
        got = await _bounded(check, get_or_none(client, "/weather", 0.5), "a healthy call")
        check.that(
            got == {"city": "Lyon", "celsius": 14},
            "a healthy source gives its JSON",
            f"a healthy source gave {got!r}",
            hint="return response.json()",
        )
        cases = [
            (
                "/weather?mode=fail",
                "a 500 answer",
                "call response.raise_for_status() and catch httpx.HTTPStatusError",
            ),
            (
                "/weather?mode=malformed",
                "a body that is not JSON",
                "response.json() raises ValueError: catch it",
            ),
            (
                "/weather?mode=hang",
                "an upstream that never answers",
                "wrap the call in async with asyncio.timeout(budget)",
            ),
        ]
        for path, what, hint in cases:
            started = time.perf_counter()
            try:
                got = await _bounded(
                    check, get_or_none(client, path, 0.3), f"with {what}, get_or_none"
                )
            except Exception as error:
                check.that(
                    False, "", f"with {what} it raised {type(error).__name__}: {error}", hint=hint
                )
            took = time.perf_counter() - started
            check.that(
                got is None, f"{what} gives None", f"{what} gave {got!r}, not None", hint=hint
            )
            check.that(
                took < 0.3 + 1.0,
                f"{what} gives up within the budget",
                f"{what} took {took:.1f} s with a budget of 0.3 s",
                hint=hint,
            )
