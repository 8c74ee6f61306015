"""Checks for lesson 06 · Calling external APIs with httpx."""

import asyncio
import time

import httpx

from tutorial_project.course.exercises.attempt import Raised, attempt, fail
from tutorial_project.course.exercises.core import exercise
from tutorial_project.course.exercises.expect import must_be_async
from tutorial_project.instruments.upstream import FakeUpstream

LATENCY = 0.2  # both endpoints of 06.1
GIVE_UP = 3.0  # the check stops waiting for an answer after this long
USE_THE_CLIENT = "use the client you are given (await client.get(...)): it reaches the upstream"


def _client(upstream):
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=upstream), base_url="http://upstream"
    )


def _stop_if_raised(check, outcome, what, hint):
    if isinstance(outcome, Raised):
        if isinstance(outcome.error, httpx.TransportError):
            hint = USE_THE_CLIENT  # requests.get / httpx.get try the network, which is not here
        fail(check, f"{what} raised {outcome}", hint)


@exercise("06.1", "Fetch two sources at the same time")
async def check_fetch_both(check, fetch_both):
    must_be_async(check, fetch_both, "fetch_both", "client")
    upstream = FakeUpstream(
        {"/weather": (LATENCY, {"celsius": 14}), "/news": (LATENCY, {"headlines": []})}
    )
    async with _client(upstream) as client:
        result = await attempt(check, lambda: fetch_both(client), "fetch_both(client)",
                               give_up=GIVE_UP, hint="each call answers in 0.2 s: is one stuck?")
    _stop_if_raised(check, result, "fetch_both(client)", "return (weather.json(), news.json())")
    check.that(
        result == ({"celsius": 14}, {"headlines": []}),
        "it returns (weather JSON, news JSON)",
        f"it returned {result!r}",
        hint="return a tuple of the two decoded bodies: (weather.json(), news.json())",
    )
    # Counted by the upstream, not timed: a loaded machine cannot make this pass or fail.
    check.that(
        upstream.max_in_flight == 2,
        "the two calls waited at the same time",
        "the upstream never had both calls at once: they ran one after the other",
        hint="start both before awaiting either: asyncio.gather(...) or a TaskGroup",
    )


HANG_CASES = [
    ("/weather?mode=fail", "a 500 answer",
     "call response.raise_for_status() and catch httpx.HTTPStatusError"),
    ("/weather?mode=malformed", "a body that is not JSON",
     "response.json() raises ValueError (json.JSONDecodeError): catch it"),
    ("/weather?mode=hang", "an upstream that never answers",
     "wrap the call in `async with asyncio.timeout(budget):` and catch TimeoutError "
     "(ASGITransport ignores httpx's own timeout)"),
]


@exercise("06.2", "An answer or None, never a hang")
async def check_get_or_none(check, get_or_none):
    must_be_async(check, get_or_none, "get_or_none", "client, path, budget")
    upstream = FakeUpstream()
    async with _client(upstream) as client:

        def timed(path, budget):
            async def call():  # times the answer alone, not the check around it
                started = time.perf_counter()
                result = await get_or_none(client, path, budget)
                return result, time.perf_counter() - started

            return call

        got = await attempt(check, timed("/weather", 1.0), "a healthy call", give_up=GIVE_UP)
        _stop_if_raised(check, got, "a healthy call", "return response.json()")
        check.that(
            got[0] == {"city": "Lyon", "celsius": 14},
            "a healthy source gives its JSON",
            f"a healthy source gave {got[0]!r}",
            hint="return response.json()",
        )
        for path, what, hint in HANG_CASES:
            got = await attempt(check, timed(path, 0.3), f"with {what}, get_or_none",
                                give_up=GIVE_UP, hint=hint)
            # The answer's own TimeoutError is an error it let escape, not the check's deadline.
            _stop_if_raised(check, got, f"with {what} it", hint)
            result, took = got
            check.that(result is None, f"{what} gives None", f"{what} gave {result!r}",
                       hint=hint)
            check.that(took < 0.3 + 1.0, f"{what} gives up within the budget",
                       f"{what} took {took:.1f} s with a budget of 0.3 s", hint=hint)
        await _check_cancellation(check, client, get_or_none)


async def _check_cancellation(check, client, get_or_none):
    """A caller that cancels (Django, when the client disconnects) must really cancel it."""
    task = asyncio.ensure_future(get_or_none(client, "/weather?mode=hang", 5.0))
    await asyncio.sleep(0.1)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=GIVE_UP)
    if not done:
        outcome = "kept running"
        task.cancel()
    elif task.cancelled():
        outcome = "cancelled"
    elif task.exception() is not None:
        outcome = f"raised {type(task.exception()).__name__}"
    else:
        outcome = f"returned {task.result()!r}"
    check.that(
        outcome == "cancelled",
        "a cancelled call stays cancelled",
        f"cancelled while it waited, it {outcome} instead of letting the cancellation through",
        hint="a bare `except:` or `except BaseException:` also catches asyncio.CancelledError: "
        "catch Exception, or the errors you expect",
    )
