"""A stand-in for a slow upstream service (a price API), with no network involved.

``await fetch_price(sku)`` answers after ``DELAY`` seconds, like an HTTP call to a service
that takes that long, without blocking the event loop while it waits.
``fetch_price_blocking(sku)`` is the same call written the sync way: it holds its thread
for the whole wait, as ``requests.get`` would.

``watch_concurrency()`` counts how many calls started inside it were in flight at once,
which tells calls made together from calls made one after another without depending on how
busy the machine is,
how many calls were made for each sku (``seen.calls``, a Counter),
how many were blocking ones, and how many ``fetch_price`` calls ran for a thread that sat
waiting on them (``asyncio.run`` in a worker thread, ``async_to_sync`` inside
``sync_to_async``): a thread held for the whole wait, as with the blocking call.

Two kinds of sku misbehave, so that views can show how they handle an upstream in trouble:
``DOWN-...`` waits ``DELAY`` like any call, then fails with ``UpstreamError``; ``SLOW-...``
takes ``SLOW_DELAY`` seconds.
"""

import asyncio
import threading
import time
import zlib
from collections import Counter
from contextlib import contextmanager

DELAY = 0.1  # seconds: a typical answer from a remote API
SLOW_DELAY = 3.0  # seconds: an upstream that hangs


class UpstreamError(Exception):
    """The upstream service answered with an error."""


async def fetch_price(sku):
    """The upstream's price for ``sku``, as a dict; waits without blocking the loop."""
    with _in_flight(sku):
        await asyncio.sleep(_delay_for(sku))
    return quote_for(sku)


def fetch_price_blocking(sku):
    """The same answer, but the calling thread sleeps through the wait."""
    with _in_flight(sku, blocking=True):
        time.sleep(_delay_for(sku))
    return quote_for(sku)


class Concurrency:
    """Calls in flight now, the most that were in flight at once, and how many blocked."""

    def __init__(self):
        self.now = 0
        self.peak = 0
        self.calls = Counter()  # sku -> calls made for it, at once or one after another
        self.blocking_calls = 0  # calls to fetch_price_blocking
        self.watcher_thread = threading.get_ident()  # the event loop that watches, normally
        self.calls_a_thread_waited_on = 0  # fetch_price run for a thread that waits on it


_lock = threading.Lock()  # blocking calls come from several threads
_watching = []


@contextmanager
def watch_concurrency():
    """``with watch_concurrency() as seen: ...`` then ``seen.peak``."""
    seen = Concurrency()
    with _lock:
        _watching.append(seen)
    try:
        yield seen
    finally:
        with _lock:
            _watching.remove(seen)


def _a_thread_waits_on_this_call():
    """Whether a ``fetch_price`` call runs for a thread that waits on it: on an event loop in
    another thread (``asyncio.run`` in ``to_thread``), or in the task that ``async_to_sync``
    starts on the loop for a thread it holds (asgiref's ``AsyncToSync.main_wrap``)."""
    task = asyncio.current_task()
    coroutine = task.get_coro() if task is not None else None
    return getattr(coroutine, "__qualname__", "") == "AsyncToSync.main_wrap"


@contextmanager
def _in_flight(sku, blocking=False):
    waited_on = not blocking and _a_thread_waits_on_this_call()
    with _lock:
        # A call counts in the watches open when it starts, and ends in those only: a call
        # left running by earlier code (a shielded task) ends without touching a later watch.
        watches = list(_watching)
        for seen in watches:
            seen.calls[sku] += 1
            seen.now += 1
            seen.peak = max(seen.peak, seen.now)
            seen.blocking_calls += blocking
            seen.calls_a_thread_waited_on += not blocking and (
                waited_on or threading.get_ident() != seen.watcher_thread)
    try:
        yield
    finally:
        with _lock:
            for seen in watches:
                seen.now -= 1


def _delay_for(sku):
    return SLOW_DELAY if sku.startswith("SLOW-") else DELAY


def quote_for(sku):
    """The answer for ``sku``, without the wait (checks compare views' answers with it)."""
    if sku.startswith("DOWN-"):
        raise UpstreamError(f"the price service failed for {sku}")
    # A made-up but stable price, so that outputs are the same on every run.
    cents = 500 + zlib.crc32(sku.encode()) % 4500
    return {"sku": sku, "price": f"{cents // 100}.{cents % 100:02d}", "currency": "EUR"}
