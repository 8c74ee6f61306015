"""Checks for lesson 03 · Bridging sync and async."""

import threading
import time

from asgiref.sync import sync_to_async

from tutorial_project.catalog.reports import stock_report
from tutorial_project.course.exercises.core import exercise
from tutorial_project.course.exercises.expect import must_be_async
from tutorial_project.course.exercises.probes import call_view
from tutorial_project.instruments.heartbeat import Heartbeat


@exercise("03.1", "An async view around sync reporting code")
async def check_stock_report_view(check, view):
    must_be_async(check, view, "stock_report_view")
    response = await call_view(view)
    check.that(
        response.status_code == 200,
        "it answers 200",
        f"it answered {response.status_code}",
        hint="the sync ORM cannot run on the event loop: `await sync_to_async(stock_report)()`",
    )
    expected = await sync_to_async(stock_report)()
    got = response.json() if response.get("Content-Type") == "application/json" else None
    check.that(
        got == expected,
        "it answers with stock_report() as JSON",
        f"it answered {got!r}, expected {expected!r}",
        hint="return JsonResponse(report) with the report that stock_report() returned",
    )


class InstrumentedLookup:
    """A blocking lookup that records how many calls ran at once, and on which threads."""

    def __init__(self, delay):
        self.delay = delay
        self.lock = threading.Lock()
        self.running = 0
        self.most_running = 0
        self.threads = set()

    def __call__(self, sku):
        with self.lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            self.threads.add(threading.current_thread())
        try:
            time.sleep(self.delay)
        finally:
            with self.lock:
                self.running -= 1
        return {"sku": sku, "in_stock": not sku.endswith("3")}


@exercise("03.2", "Call a blocking library concurrently, off the loop")
async def check_lookup_many(check, lookup_many):
    must_be_async(check, lookup_many, "lookup_many")
    lookup = InstrumentedLookup(delay=0.3)
    skus = ["BK-001", "CF-003", "GM-002", "TL-003"]
    async with Heartbeat() as heartbeat:
        result = await lookup_many(lookup, skus)
    expected = [lookup.__class__(0)(sku) for sku in skus]
    check.that(
        result == expected,
        "it returns the lookups' results, in the order of the skus",
        f"it returned {result!r}, expected {expected!r}",
        hint="gather the calls and return the list gather gives you",
    )
    check.that(
        heartbeat.longest_gap < 0.25 and threading.current_thread() not in lookup.threads,
        "the event loop kept running during the lookups",
        "the event loop froze: the blocking lookup ran on the loop's thread",
        hint="wrap it: `sync_to_async(lookup, thread_sensitive=False)(sku)`",
    )
    check.that(
        lookup.most_running == len(skus),
        f"all {len(skus)} lookups ran at the same time",
        f"at most {lookup.most_running} of {len(skus)} lookups ran at the same time",
        hint="thread-sensitive calls take turns on one thread; this lookup touches no "
        "database, so pass thread_sensitive=False, and start all calls with asyncio.gather",
    )
