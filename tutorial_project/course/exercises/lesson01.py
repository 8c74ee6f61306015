"""Checks for lesson 01 · asyncio essentials for Django developers."""

import asyncio
import threading
import time

from tutorial_project.course.exercises.core import exercise
from tutorial_project.course.exercises.expect import must_be_async
from tutorial_project.instruments.heartbeat import Heartbeat


class FakePriceService:
    """An async "upstream" that remembers how many calls were waiting at the same time."""

    def __init__(self, delay):
        self.delay = delay
        self.in_flight = 0
        self.most_in_flight = 0
        self.cancelled = []

    async def fetch_price(self, sku):
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled.append(sku)
            raise
        finally:
            self.in_flight -= 1
        return len(sku) * 1.5


@exercise("01.1", "Fetch every price at the same time")
async def check_fetch_prices(check, fetch_prices):
    must_be_async(check, fetch_prices, "fetch_prices")
    service = FakePriceService(delay=0.05)
    skus = ["BK-001", "CF-002", "GM-003", "TL-001"]
    result = await fetch_prices(service.fetch_price, skus)
    expected = {sku: len(sku) * 1.5 for sku in skus}
    check.that(
        result == expected,
        "it returns a dict {sku: price} with every sku",
        f"it returned {result!r}, expected {expected!r}",
        hint="build the dict from the skus and the awaited results, in the same order",
    )
    check.that(
        service.most_in_flight == len(skus),
        f"all {len(skus)} fetches were waiting at the same time",
        f"at most {service.most_in_flight} of {len(skus)} fetches were waiting at the same time",
        hint="start them all before waiting for any: asyncio.gather(...) or a TaskGroup",
    )


@exercise("01.2", "Give up on a slow upstream")
async def check_price_or_none(check, price_or_none):
    must_be_async(check, price_or_none, "price_or_none")
    fast = FakePriceService(delay=0.01)
    price = await price_or_none(fast.fetch_price, "BK-001", 0.5)
    check.that(
        price == 9.0,
        "a fast fetch returns its price",
        f"a fast fetch returned {price!r}, expected 9.0",
        hint="await the fetch inside `async with asyncio.timeout(seconds):` and return it",
    )
    slow = FakePriceService(delay=30)
    try:
        async with asyncio.timeout(2):
            price = await price_or_none(slow.fetch_price, "GM-003", 0.1)
    except TimeoutError:
        check.that(False, "", "a slow fetch was still being awaited after 2 s",
                   hint="wrap the await in `async with asyncio.timeout(seconds):`")
    check.that(
        price is None,
        "a slow fetch gives None after the timeout",
        f"a slow fetch returned {price!r}, expected None",
        hint="catch TimeoutError (outside the `async with` block) and return None",
    )
    check.that(
        slow.cancelled == ["GM-003"],
        "the slow fetch was cancelled, not left running",
        "the slow fetch was not cancelled",
        hint="asyncio.timeout cancels what it wraps; a task you created yourself must be cancelled",
    )


@exercise("01.3", "Run blocking code without freezing the loop")
async def check_without_blocking(check, without_blocking):
    must_be_async(check, without_blocking, "without_blocking")
    threads = []

    def blocking_sum(a, b):
        threads.append(threading.current_thread())
        time.sleep(0.3)
        return a + b

    async with Heartbeat() as heartbeat:
        result = await without_blocking(blocking_sum, 2, 3)
    check.that(
        result == 5,
        "it returns what the blocking function returned",
        f"it returned {result!r}, expected 5",
        hint="return the awaited result",
    )
    check.that(
        heartbeat.longest_gap < 0.2,
        "the event loop kept running while the function slept",
        "the event loop froze while the blocking function ran",
        hint="run it on another thread: `await asyncio.to_thread(func, *args)`",
    )
    check.that(
        threads and threads[0] is not threading.current_thread(),
        "the function ran on another thread",
        "the function ran on the event loop's thread",
        hint="asyncio.to_thread runs it on a worker thread",
    )
