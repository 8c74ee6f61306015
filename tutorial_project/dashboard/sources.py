"""Fetch the dashboard's sources from the upstream service, and say precisely what failed."""

import asyncio
import random
from contextlib import nullcontext

import httpx

SOURCES = {"weather": "/weather", "stocks": "/stocks", "news": "/news"}
BUDGET = 0.5  # seconds one source may take, retries included, before we give up on it


class SourceError(Exception):
    """One source failed; ``kind`` is timeout, bad_status, malformed or unreachable."""

    def __init__(self, kind, detail):
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail = kind, detail

    def as_json(self):
        return {"error": self.kind, "detail": self.detail}


# Statuses worth asking again: the upstream was overloaded or briefly down (429 and 503 may
# say when with Retry-After, which this small client does not read). Other 4xx and 5xx (404,
# 501 Not Implemented...) fail the same way every time.
RETRYABLE = {408, 429, 500, 502, 503, 504}


async def get_json(client, path, *, params=None, attempts=1, backoff=0.05):
    """GET ``path`` and decode its JSON; retry RETRYABLE statuses and network errors
    ``attempts - 1`` times. Every httpx error becomes a SourceError.

    Only for idempotent requests: repeating a GET cannot do anything twice. Never retry a
    POST that charges a card this way. The waits double each time (0.05 s, 0.1 s...), times a
    random factor (jitter), so that clients that failed together do not retry in step.
    """
    for attempt in range(1, attempts + 1):
        try:
            response = await client.get(path, params=params)
            response.raise_for_status()  # 3xx too: httpx does not follow redirects by default
            break
        except httpx.HTTPStatusError as error:
            status = error.response.status_code
            failure = SourceError("bad_status", f"upstream answered {status}")
            if status not in RETRYABLE:
                raise failure from error  # asking again would fail the same way
        except httpx.TimeoutException as error:  # PoolTimeout too: no free connection in time
            failure = SourceError("timeout", f"httpx gave up: {type(error).__name__}")
        except httpx.TransportError as error:
            failure = SourceError("unreachable", f"{type(error).__name__}")
        except httpx.HTTPError as error:  # e.g. DecodingError: a body its headers lie about
            raise SourceError("malformed", f"{type(error).__name__}") from error
        if attempt == attempts:
            raise failure
        await asyncio.sleep(backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.5))
    try:
        return response.json()
    except ValueError as error:
        raise SourceError("malformed", "upstream sent a body that is not JSON") from error


async def fetch_source(client, name, *, mode="ok", budget=BUDGET, attempts=1, timeline=None):
    """One source's JSON, or a SourceError; never waits longer than ``budget`` seconds."""
    params = {} if mode == "ok" else {"mode": mode}
    with timeline.span(name) if timeline else nullcontext():
        try:
            # asyncio.timeout bounds the whole call, retries included, on any transport.
            async with asyncio.timeout(budget):
                return await get_json(client, SOURCES[name], params=params, attempts=attempts)
        except TimeoutError:
            raise SourceError("timeout", f"no answer within {budget} s") from None


async def fetch_all(client, modes=None, *, strategy="concurrent", timeline=None, **options):
    """``{name: json or SourceError}`` for every source, one after another or all at once."""
    modes = modes or {}

    async def one(name):
        try:
            return await fetch_source(
                client, name, mode=modes.get(name, "ok"), timeline=timeline, **options
            )
        except SourceError as error:
            return error  # a value, not an exception: the TaskGroup cancels nobody

    if strategy == "sequential":
        return {name: await one(name) for name in SOURCES}
    # Python 3.11+. If a task raises, the group cancels the others, waits for them and raises
    # an ExceptionGroup (handled with except*); so one() lets only our own bugs escape.
    async with asyncio.TaskGroup() as group:
        tasks = {name: group.create_task(one(name)) for name in SOURCES}
    return {name: task.result() for name, task in tasks.items()}
