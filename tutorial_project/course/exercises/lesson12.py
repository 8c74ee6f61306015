"""Checks for lesson 12 · Capstone: an async dashboard. One check per step of the service.

A check that passes hands the answer to the capstone: ``your_capstone()`` builds the views
from the learner's pieces that passed, and from the reference pieces (labelled as such) for
the steps not solved yet, so the lesson's demos serve, stream and load the learner's code.
"""

import asyncio
import collections
import functools
import gc
import importlib
import inspect
import json
import re
import threading
import time
import weakref
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.core.cache import cache
from django.core.exceptions import SynchronousOnlyOperation
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.test import override_settings

from tutorial_project.course.exercises.attempt import (
    FORGOT_AWAIT,
    Raised,
    attempt,
    fail,
    stop_if_unawaited,
    watching_awaits,
)
from tutorial_project.course.exercises.core import exercise
from tutorial_project.course.exercises.expect import (
    loop_blocking_calls,
    made_by_the_surroundings,
    must_be_async,
    sync_cache_calls_on_this_thread,
)
from tutorial_project.course.exercises.probes import call_view, quiet_request_log
from tutorial_project.dashboard.clients import in_process_client
from tutorial_project.dashboard.sources import BUDGET
from tutorial_project.instruments.servers import leftovers
from tutorial_project.instruments.streaming import events_in
from tutorial_project.instruments.upstream import ENDPOINTS, FakeUpstream
from tutorial_project.playground import use_middleware

GIVE_UP = 5.0  # a check stops waiting for the learner's code after this long

# --- which version of each piece the capstone runs -------------------------------------------

WRITE_STEPS = {"reserve": ("12.8", "stock")}  # step 8: not a piece of the dashboard's views
STEPS = {  # piece -> (exercise, the module of its reference version)
    "catalog_summary": ("12.1", "service"),
    "gather_sources": ("12.2", "service"),
    "cached": ("12.3", "service"),
    "dashboard_events": ("12.4", "service"),
    "cache_control_middleware": ("12.5", "middleware"),
}
_answers = {}  # piece -> (the learner's answer, its verdict), from the last check run


def _hands_over(piece):
    """Record the answer a check saw, and its verdict, for ``your_capstone()``."""

    def decorate(check):
        @functools.wraps(check)
        async def run(answer):
            verdict = await check(answer)
            _answers[piece] = (answer, verdict)
            return verdict

        return run

    return decorate


def choose(piece):
    """``(function, label)``: the learner's answer if it passed its check, else the reference."""
    number, module = {**STEPS, **WRITE_STEPS}[piece]
    # Imported here: the reference pieces need the project started, this module does not.
    reference = getattr(importlib.import_module(f"tutorial_project.capstone.{module}"), piece)
    answer, verdict = _answers.get(piece, (..., None))
    if verdict is not None and verdict.passed:
        return answer, "yours"
    why = "not solved yet" if answer is ... else f"yours does not pass check {number} yet"
    return reference, f"reference ({why})"


@dataclass
class Capstone:
    """The service built from the chosen pieces: views to mount, a middleware to use."""

    pieces: Any  # tutorial_project.capstone.views.Pieces
    middleware: Any
    labels: dict

    def __post_init__(self):
        from tutorial_project.capstone.views import make_dashboard, make_stream

        self.dashboard = make_dashboard(self.pieces)
        self.dashboard_stream = make_stream(self.pieces)

    def __str__(self):
        return "\n".join(
            f"step {STEPS[piece][0][-1]} {piece:25} {label}" for piece, label in self.labels.items()
        )

    def _repr_pretty_(self, printer, cycle):
        printer.text(str(self))


def your_capstone():
    """The capstone made of your pieces that passed their checks; reference ones elsewhere."""
    chosen = {piece: choose(piece) for piece in STEPS}
    functions = {piece: function for piece, (function, _) in chosen.items()}
    middleware = functions.pop("cache_control_middleware")
    from tutorial_project.capstone.views import Pieces

    return Capstone(Pieces(**functions), middleware,
                    {piece: label for piece, (_, label) in chosen.items()})




def _stop_if_raised(check, outcome, what, hint):
    if isinstance(outcome, Raised):
        fail(check, f"{what} raised {outcome}", hint)


BLOCKING_HINT = ("a blocking call (time.sleep under any name, Event.wait, a sync client) holds "
                 "the event loop, and every request on it, however short: await what you wait "
                 "for (asyncio.sleep, the a-methods, httpx.AsyncClient)")


async def _refuse_loop_blocking(check, what, run, hint=BLOCKING_HINT):
    """Run the answer once more, untimed (the profile hook slows the loop), and stop the check
    if it made any blocking call on the event loop's thread. Its result was judged before."""
    with loop_blocking_calls() as blocking:
        try:
            await asyncio.wait_for(run(), GIVE_UP)
        except Exception:  # noqa: BLE001, S110  (what it returns or raises was checked above)
            pass
    if blocking:
        fail(check, f"{what} made blocking calls on the event loop's thread: "
             f"{', '.join(sorted(set(blocking)))}", hint)


# --- 12.1 --------------------------------------------------------------------------------------


@_hands_over("catalog_summary")
@exercise("12.1", "Read the catalog with the async ORM")
async def check_catalog_summary(check, catalog_summary):
    must_be_async(check, catalog_summary, "catalog_summary", "")
    from tutorial_project.catalog.models import Category, Product  # needs the project started

    got = await attempt(check, catalog_summary, "catalog_summary()")
    sync_orm = isinstance(got, Raised) and isinstance(got.error, SynchronousOnlyOperation)
    _stop_if_raised(check, got, "catalog_summary()",
                    "in async code use the a-methods: await Product.objects.acount()"
                    if sync_orm else "the error is in your queries: try each one on its own")
    await _refuse_loop_blocking(check, "catalog_summary()", catalog_summary)
    from tutorial_project.course.exercises.lesson04 import (
        OFF_THREAD_HINT,
        as_a_request,
        recorded_statements,
    )

    with recorded_statements() as statements:
        await attempt(check, lambda: as_a_request(catalog_summary), "catalog_summary()")
    check.that(not any(statement.off_request_thread for statement in statements),
               "its queries ran on the request's own thread (whose connection Django closes)",
               "its queries ran on another thread: a connection Django never closes",
               hint=OFF_THREAD_HINT)
    expected = await _counts(Category, Product)
    check.that(got == expected, "it counts products, products in stock and categories",
               f"it returned {got!r}, expected {expected!r}",
               hint="stock__gt=0 selects the products in stock")
    # Numbers copied from the output above would pass so far: change the catalog, ask again.
    async with _new_categories_and_products(Category, Product):
        again = await attempt(check, catalog_summary, "catalog_summary() after a change")
        expected_now = await _counts(Category, Product)
    _stop_if_raised(check, again, "catalog_summary()", "")
    only_categories_wrong = (isinstance(again, dict) and again.get("categories") != expected_now[
        "categories"] and {**again, "categories": None} == {**expected_now, "categories": None})
    check.that(again == expected_now, "it reads the database each time it is called",
               f"with two more categories (one of them still empty) and two more products (one "
               f"in stock) it returned {again!r}, expected {expected_now!r}",
               hint="count every category, an empty one too: await Category.objects.acount()"
               if only_categories_wrong else
               "query the counts inside the function; do not return fixed numbers")


async def _counts(Category, Product):
    return {
        "products": await Product.objects.acount(),
        "in_stock": await Product.objects.filter(stock__gt=0).acount(),
        "categories": await Category.objects.acount(),
    }


@asynccontextmanager
async def _new_categories_and_products(Category, Product):
    from django.utils import timezone

    category = await Category.objects.acreate(name="Check 12.1", slug="check-12-1")
    # A category with no products yet is still a category: "categories with products" differs.
    empty = await Category.objects.acreate(name="Check 12.1 (empty)", slug="check-12-1-empty")
    try:
        for sku, stock in (("CHECK-12-1-A", 4), ("CHECK-12-1-B", 0)):
            await Product.objects.acreate(sku=sku, name=sku, category=category, price=1,
                                          stock=stock, created_at=timezone.now())
        yield
    finally:  # leave the catalog as the lesson found it
        await Product.objects.filter(category=category).adelete()
        await category.adelete()
        await empty.adelete()


# --- 12.2 --------------------------------------------------------------------------------------


@_hands_over("gather_sources")
@exercise("12.2", "Fan out to three sources; one failure is not a crash")
async def check_gather_sources(check, gather_sources):
    must_be_async(check, gather_sources, "gather_sources", "client, modes=None")
    upstream = FakeUpstream()  # its own, so it counts only this check's calls
    async with in_process_client(upstream) as client:
        got = await attempt(check, lambda: gather_sources(client), "a healthy fan-out")
        _stop_if_raised(check, got, "with healthy sources it",
                        "return (data, errors): two dicts keyed by source name")
        data, errors = got if isinstance(got, tuple) and len(got) == 2 else ({}, None)
        check.that(
            set(data) == {"weather", "stocks", "news"} and all(data.values()) and errors == {},
            "healthy sources: three widgets, no errors",
            f"healthy sources gave {got!r}",
            hint="return (data, errors): data[name] is the source's JSON, errors is {}",
        )
        check.that(
            upstream.max_in_flight == len(data),
            "the three sources were asked at the same time",
            f"at most {upstream.max_in_flight} source(s) were being asked at once: "
            "they waited one after the other",
            hint="start every fetch before awaiting any: asyncio.gather(...) or a TaskGroup",
        )
        await _refuse_loop_blocking(check, "gather_sources(client)",
                                    lambda: gather_sources(client))
        modes = {"news": "hang", "stocks": "fail"}

        async def timed():  # the learner's call alone, not the check's bookkeeping around it
            started = time.perf_counter()
            result = await gather_sources(client, modes)
            return result, time.perf_counter() - started

        got = await attempt(check, timed, "a hanging news")
    _stop_if_raised(check, got, "with news hanging and stocks failing it",
                    "catch SourceError for each source and keep it: a failure must not escape "
                    "gather (or use return_exceptions=True, and raise again any result that "
                    "is an exception but not a SourceError)")
    got, took = got
    data, errors = got
    check.that(set(data) == {"weather", "stocks", "news"},
               "every source has its key in data, a failed one too",
               f"with news hanging and stocks failing data had only {sorted(data)}",
               hint="a failed source stays in data as None: the page draws an empty widget")
    check.that(
        data.get("weather") and data.get("news") is None and data.get("stocks") is None,
        "the healthy source is kept, the failed ones are None",
        f"with news hanging and stocks failing it gave data={data!r}",
    )
    errors = errors if isinstance(errors, dict) else {"(errors)": errors}
    not_json = {name: error for name, error in errors.items() if not isinstance(error, dict)}
    check.that(not not_json, "each failure is kept as a dict, its as_json()",
               f"with news hanging and stocks failing errors held {not_json!r}, not dicts",
               hint="errors[name] = error.as_json(): the page reads its \"error\" and \"detail\"")
    kinds = {name: error.get("error") for name, error in errors.items()}
    check.that(kinds == {"news": "timeout", "stocks": "bad_status"},
               "errors says why: news timed out, stocks answered 500",
               f"errors was {errors!r}", hint="errors[name] = error.as_json()")
    # fetch_source names the budget it was given ("no answer within 0.5 s"): read, not timed.
    given = re.search(r"within ([\d.]+) s", str(errors["news"].get("detail")))
    given = given and float(given.group(1))
    # 2 s leaves room for a loaded machine and is still not "forever".
    check.that(given in (None, BUDGET) and took < 2.0,
               f"a hanging source costs the service's budget ({BUDGET} s), not more",
               f"the hanging news was given {given} s" if given not in (None, BUDGET)
               else f"it took {took:.1f} s",
               hint=f"call fetch_source(client, name, mode=...) and keep its budget "
                    f"({BUDGET} s, the service's): the page waits that long for a hung "
                    "source, no longer")
    await _check_cancelled_midway(check, gather_sources)
    await _check_a_bug_is_not_a_source_error(check, gather_sources)


class _BuggyClient:
    """The client, except that asking for ``path`` raises RuntimeError: a bug in our own code
    (not an upstream failure, so fetch_source does not turn it into a SourceError)."""

    def __init__(self, client, path):
        self._client, self._path = client, path

    def __getattr__(self, name):
        return getattr(self._client, name)

    async def get(self, path, *args, **kwargs):
        if path == self._path:
            raise RuntimeError("a bug in our own code")
        return await self._client.get(path, *args, **kwargs)


async def _check_a_bug_is_not_a_source_error(check, gather_sources):
    """A RuntimeError from one fetch must leave gather_sources (Django answers 500, and
    someone sees it), not become an entry in errors beside a 200 ``partial`` page; and the
    other fetches must not run on for nobody after it left."""
    from tutorial_project.dashboard.sources import SOURCES

    upstream = FakeUpstream()  # its own: weather and stocks take 0.1 and 0.2 s, news raises
    async with in_process_client(upstream) as client:
        try:
            got = await asyncio.wait_for(
                gather_sources(_BuggyClient(client, SOURCES["news"])), GIVE_UP)
        except TimeoutError:
            got = "no answer"
        except Exception as error:  # RuntimeError, or an ExceptionGroup holding it
            got = error
        answered_before = sum(upstream.answered.values())
        # A cancelled fetch stops within a few turns of the loop; one left running answers
        # within its 0.2 s. Wait until the upstream serves nothing (2 s at most: a loaded
        # machine), then count what it answered after the error had left.
        deadline = time.monotonic() + 2.0
        while upstream.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        answered_after = sum(upstream.answered.values()) - answered_before
        still_running = upstream.in_flight
    check.that(
        isinstance(got, Exception),
        "a bug in your own code (not an upstream failure) is not hidden as a failed source",
        f"a RuntimeError raised while fetching news was returned as {got!r}, where it "
        "should have left gather_sources" if got != "no answer" else
        "with a RuntimeError raised while fetching news it gave no answer",
        hint="catch SourceError, not every exception: any other exception is a bug, and must "
             "reach Django as a 500 that someone sees, not a 200 'partial' page; with "
             "gather(..., return_exceptions=True), raise again each result that is an "
             "exception but not a SourceError",
    )
    check.that(
        not answered_after and not still_running,
        "a bug in one fetch leaves no other fetch running after it",
        f"after the RuntimeError from news left gather_sources, the other fetches ran on: "
        f"the upstream answered {answered_after} more call(s), for nobody"
        + (f", and {still_running} were still running" if still_running else ""),
        hint="when one awaitable raises, gather raises at once and lets the others run on "
             "(it cancels them only when it is itself cancelled): use a TaskGroup, which "
             "cancels the others when one fails, or create the tasks yourself and cancel "
             "them in a finally:",
    )


class _CancellingUpstream(FakeUpstream):
    """The fake upstream, every source hanging; it notes the task each call runs in and
    cancels ``target`` once every source is being asked (as a server does when the client
    leaves): a moment set by the calls, not by a timer."""

    def __init__(self):
        super().__init__()
        self.tasks, self.target = [], None

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            scope = {**scope, "query_string": b"mode=hang"}
            self.tasks.append(asyncio.current_task())  # in-process: the fetch's own task
            if len(self.tasks) == len(ENDPOINTS) and self.target is not None:
                self.target.cancel()
        return await super().__call__(scope, receive, send)


async def _check_cancelled_midway(check, gather_sources):
    """Cancel the fan-out while its three fetches run: it must end cancelled, with nothing
    left running, and no fetch may swallow its own cancellation."""
    upstream = _CancellingUpstream()
    async with in_process_client(upstream) as client:
        call = upstream.target = asyncio.create_task(gather_sources(client))
        await asyncio.wait([call], timeout=GIVE_UP)
        still_running = upstream.in_flight
        fetches = [task for task in upstream.tasks if task is not call]
        swallowed = [task for task in fetches if task.done() and not task.cancelled()]
        for task in (call, *fetches):  # leave nothing behind, whatever the answer did
            task.cancel()
        await asyncio.wait([call, *fetches], timeout=1.0)
    if not call.done() or not call.cancelled():
        outcome = ("was still running" if not call.done() else
                   f"raised {Raised(call.exception())}" if call.exception() else
                   f"returned {call.result()!r}")
        problem = f"cancelled while its fetches ran (its client left), it {outcome}"
        hint = ("let CancelledError out: catch SourceError (what fetch_source raises), not "
                "BaseException or a bare except:, which also catch the cancellation")
    elif still_running:
        problem = f"cancelled while its fetches ran, it left {still_running} of them running"
        hint = ("gather and a TaskGroup cancel their fetches when they are cancelled; tasks of "
                "your own (create_task) you must cancel yourself, in a finally:")
    elif swallowed:
        problem = (f"cancelled while its fetches ran, {len(swallowed)} fetch task(s) caught "
                   "the cancellation and ended as if nothing happened")
        hint = ("catch SourceError (what fetch_source raises) around each fetch, not "
                "BaseException or a bare except: the server cancels a request by raising "
                "CancelledError in its tasks")
    else:
        problem = hint = None
    check.that(problem is None,
               "cancelled while its fetches run, it ends cancelled and cancels them",
               problem, hint=hint)


# --- 12.3 --------------------------------------------------------------------------------------


@contextmanager
def _own_cache():
    """A local-memory cache of the check's own, empty before and after."""
    own = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
           "LOCATION": "exercise-12-3"}
    with override_settings(CACHES={"default": own}):
        cache.clear()
        try:
            yield
        finally:
            cache.clear()


def _seconds_left(key):
    """How long the cache keeps ``key`` from now, or None if it holds no entry for it.

    Read from the entry itself, so aset(), aadd(), aget_or_set()... all count."""
    expires = cache._expire_info.get(cache.make_and_validate_key(key))
    return None if expires is None else expires - time.time()


@_hands_over("cached")
@exercise("12.3", "Cache: cold once, warm after, and no stampede")
async def check_cached(check, cached):
    must_be_async(check, cached, "cached", "key, compute, seconds=30")
    with _own_cache(), sync_cache_calls_on_this_thread() as sync_calls:
        await _check_cached(check, cached, sync_calls)


async def _check_cached(check, cached, sync_calls):
    calls = []

    async def compute():
        calls.append(1)
        await asyncio.sleep(0.2)  # long enough for 20 callers to find the cache empty
        return {"answer": 42}

    first = await attempt(check, lambda: cached("k", compute, 7), "cached(key, compute, 7)")
    _stop_if_raised(check, first, "cached(key, compute, 7)",
                    OTHER_THREADS_CONNECTION_HINT if _is_other_threads_connection(first) else
                    "await compute(), then store it")
    second = await attempt(check, lambda: cached("k", compute, 7), "a second call")
    left = _seconds_left("k")
    sync_names = sorted(set(sync_calls))
    check.that(not sync_names, "it uses the cache's async API",
               f"it called the sync cache.{'/'.join(sync_names)}() in async code: that runs on "
               "the event loop (with Redis or memcached, a network round trip that stalls "
               "every request)", hint="await cache.aget(key) and await cache.aset(...)")
    check.that(first == second == {"answer": 42}, "both calls give the computed value",
               f"the calls gave {first!r} and {second!r}", hint="return the value in both cases")
    check.that(len(calls) == 1, "the second call was served from the cache",
               f"compute() ran {len(calls)} times for the same key",
               hint="await cache.aget(key) first; after computing, "
                    "await cache.aset(key, value, seconds)")

    await _check_falsy_values(check, cached)

    async def cold_then_warm():
        await cached("watched", compute, 7)
        await cached("watched", compute, 7)

    await _refuse_loop_blocking(check, "cached(key, compute, 7), cold then warm,", cold_then_warm)
    # Stored about 7 s ago at most: 3 s of margin for a loaded machine, far from 30 or 300.
    check.that(left is not None and 4 < left <= 7.05, "it is kept for `seconds`",
               "nothing was stored in Django's cache" if left is None else
               f"it was stored for {left:.0f} more seconds, not for 7",
               hint="await cache.aset(key, value, seconds): without it Django keeps 300 s")

    async def failing():
        raise RuntimeError("upstream down")

    outcome = await attempt(check, lambda: cached("broken", failing), "cached() on a failure")
    check.that(isinstance(outcome, Raised) and isinstance(outcome.error, RuntimeError),
               "an error in compute() reaches the caller",
               f"compute() raised RuntimeError, and cached() returned {outcome!r}",
               hint="do not catch compute()'s errors: the view decides what a failure means")
    check.that(not await cache.ahas_key("broken"),
               "nothing is stored when compute() fails", "something was stored for a failure")
    tries = []

    async def fails_once():
        tries.append(1)
        if len(tries) == 1:
            raise RuntimeError("upstream down, once")
        return {"answer": "back"}

    await attempt(check, lambda: cached("flaky", fails_once), "cached() on a failure")
    again = await attempt(check, lambda: cached("flaky", fails_once), "cached() after a failure")
    check.that(len(tries) == 2 and again == {"answer": "back"},
               "after a failure the next caller computes again",
               f"after compute() failed once, the next call gave {again!r} and compute() ran "
               f"{len(tries)} time(s): the failure was kept",
               hint="forget the running computation once it is done (success or failure): "
                    "only the cache keeps values")
    calls.clear()
    await attempt(check, lambda: cached("short", compute, 0.3), "cached(key, compute, 0.3)")
    await asyncio.sleep(0.6)  # the cache has let the entry expire
    renewed = await attempt(check, lambda: cached("short", compute, 0.3), "a call after expiry")
    check.that(len(calls) == 2 and renewed == {"answer": 42},
               "an expired entry is computed again",
               f"after the entry expired compute() ran {len(calls)} time(s) in all, "
               f"and the call gave {renewed!r}: something kept the old value",
               hint="the cache decides what is fresh: keep nothing per key once it is computed")

    calls.clear()
    values = await attempt(
        check, lambda: asyncio.gather(*(cached("cold", compute) for _ in range(20))),
        "20 callers at once")
    _stop_if_raised(check, values, "20 callers at once", "every caller gets the value")
    check.that(values == [{"answer": 42}] * 20, "20 callers at once all get the value",
               f"they got {values[:3]!r}...")
    check.that(len(calls) == 1, "20 callers at a cold cache compute it once",
               f"compute() ran {len(calls)} times for 20 callers that arrived together "
               "(a cache stampede)",
               hint="keep the task computing each key in a dict keyed by (running loop, key), "
                    "let every caller `await asyncio.shield(task)` and drop the task when it is "
                    "done (a lock held around compute() is not enough: a caller that leaves "
                    "cancels the computation, and the next one starts over)")
    if len(calls) == 1:  # a stampede shows first; a leaving caller only matters without one
        await _check_a_caller_leaving(check, cached)
        await _check_a_failure_for_every_caller(check, cached)
    # Django's async tests run each test in a new event loop (async_to_sync): an asyncio.Lock
    # or a task kept at module level belongs to the loop that first waited on it.
    await cache.adelete("cold")
    calls.clear()
    elsewhere = await asyncio.to_thread(_in_a_new_loop, cached, compute)
    check.that(elsewhere == [{"answer": 42}] * 20 and len(calls) == 1,
               "it works again in another event loop (as in Django's async tests)",
               f"the same 20 callers in a second event loop got {elsewhere!r}",
               hint="an asyncio.Lock, a task or an httpx client belongs to the event loop that "
                    "first waited on it: key what you keep by (asyncio.get_running_loop(), key), "
                    "and drop it once its computation is done")
    # Under WSGI or runserver every request runs its async view in an event loop of its own,
    # at the same moment as the others: what one loop keeps, another must not await.
    await cache.adelete("together")
    both = await asyncio.to_thread(_in_two_loops_at_once, cached)
    failed = [str(outcome) for outcome in both if outcome != [{"answer": 42}] * 10]
    got = failed and failed[0]
    got = got if len(got) < 150 else f"{got[:40]} … {got[-80:]}"
    check.that(not failed, "two event loops at the same moment both get the value",
               "two event loops at the same moment (two threads, as under WSGI) asked for the "
               f"same key, and one got {got}",
               hint="a task belongs to the loop that created it: another loop cannot await it. "
                    "Key the running computations by (asyncio.get_running_loop(), key), and drop "
                    "each one once it is done")
    await _check_loops_left_behind(check, cached)
    await _check_a_request_leaving(check, cached)
    await _check_a_failure_after_a_query(check, cached)
    await _check_a_sync_caller(check, cached)


OTHER_THREADS_CONNECTION_HINT = (
    "`connection.close` looks `connection` up on the thread that evaluates it, the event "
    "loop's, and gives that thread's DatabaseWrapper; sync_to_async then calls its close() on "
    "another thread, and Django refuses to use a connection outside the thread that made it. "
    "Let the lookup happen on the thread that ran the queries: "
    "`await sync_to_async(connections.close_all)()` (close_all finds the connections of the "
    "thread it runs on)")


def _is_other_threads_connection(outcome):
    """Did the answer use, on one thread, a DatabaseWrapper made on another?"""
    from django.db import DatabaseError

    return (isinstance(outcome, Raised) and isinstance(outcome.error, DatabaseError)
            and "can only be used in that same thread" in str(outcome.error))


FALSY = [("falsy-zero", 0), ("falsy-empty", {})]  # values a view may cache: no stock, no rows


async def _check_falsy_values(check, cached):
    """A cached 0 or {} is a value: is it served from the cache, or computed again?"""
    wrong = []
    for key, falsy in FALSY:
        got, calls = await _twice(check, cached, key, falsy)
        if got != [falsy, falsy] or calls != 1:
            wrong.append(f"for {falsy!r} two calls gave {got!r} and compute() ran {calls} "
                         "time(s)")
    check.that(not wrong, "a cached 0 or {} is served from the cache too",
               f"{'; '.join(wrong)}: a falsy value was taken for a missing one",
               hint="`if value:` is false for a cached 0, \"\", [] or {}: test `value is "
                    "not None` (the values cached here are never None), or pass a default "
                    "of your own, `await cache.aget(key, MISSING)` with "
                    "`MISSING = object()`, and test `value is not MISSING`")


async def _twice(check, cached, key, value):
    """Two calls of cached(key, ...) whose compute() returns ``value``: (results, computes)."""
    calls = []

    async def compute():
        calls.append(1)
        return value

    got = []
    for _ in range(2):
        got.append(await attempt(check, lambda: cached(key, compute), f"cached() of {value!r}"))
        _stop_if_raised(check, got[-1], f"cached() of {value!r}", "")
    return got, len(calls)


LOOPS = 6  # WSGI requests one after the other, each with an event loop of its own
LOOP_LEAK_HINT = (
    "drop what you keep for a loop once its computation is done (pop it in the task's done "
    "callback, as the task itself): nothing may stay behind for a loop that has ended. A "
    "WeakKeyDictionary keyed by the loop does not free it when its values (a task, an "
    "asyncio.Lock that was waited on) refer to the loop")


async def _check_loops_left_behind(check, cached):
    """As WSGI runs async views: each request through async_to_sync, in a new event loop,
    with five callers at a cold key. Does what cached() keeps grow with every loop?"""
    before = _kept_sizes(cached)
    outcomes = await asyncio.to_thread(_in_fresh_loops, cached)
    # Held until every request has run: a freed loop's id may come back for the next one.
    failed = [outcome for outcome in outcomes if isinstance(outcome, str)]
    loops = [weakref.ref(loop) for loop in outcomes if not isinstance(loop, str)]
    outcomes.clear()  # the list may outlive this line (in to_thread's future): its items not
    gc.collect()  # a closed loop sits in reference cycles
    alive = sum(loop() is not None for loop in loops)
    grew = {name: size - before.get(name, 0) for name, size in _kept_sizes(cached).items()
            if size - before.get(name, 0) >= LOOPS // 2}
    check.that(not failed, f"{LOOPS} requests in turn, each in an event loop of its own (as "
               "under WSGI), all get the value",
               f"{LOOPS} calls through async_to_sync, each in a new event loop as WSGI runs "
               f"an async view: {failed[0] if failed else ''}",
               hint="key the running computations by (asyncio.get_running_loop(), key)")
    check.that(alive <= 1 and not grew,
               "it keeps nothing for an event loop that has ended",
               f"after {LOOPS} requests, each in an event loop of its own (as WSGI runs an "
               "async view), "
               + (f"{alive} of those closed loops were still referenced by what cached() "
                  "keeps" if alive > 1 else
                  ", ".join(f"{name} grew by {size} entries" for name, size in grew.items()))
               + ": one more for every request, a leak that lasts as long as the process",
               hint=LOOP_LEAK_HINT)


def _in_fresh_loops(cached):
    """The LOOPS event loops, each made by one async_to_sync call from a thread of its own (a
    fresh context, as a WSGI worker's); a string for a call that failed."""
    from asgiref.sync import async_to_sync

    async def compute():
        await asyncio.sleep(0.05)  # the other four callers wait: a lock gets bound to the loop
        return {"answer": 42}

    async def five():
        loop = asyncio.get_running_loop()
        got = await asyncio.wait_for(
            asyncio.gather(*(cached("per-loop", compute) for _ in range(5))), GIVE_UP)
        return loop if got == [{"answer": 42}] * 5 else f"the five callers got {got!r}"

    loops = []

    def requests():
        for _ in range(LOOPS):
            cache.delete("per-loop")  # cold for each request: not on the checked loop's thread
            try:
                loops.append(async_to_sync(five)())
            except Exception as error:  # noqa: BLE001  (reported by the check)
                loops.append(f"{type(error).__name__}: {error}")

    thread = threading.Thread(target=requests, daemon=True)
    thread.start()
    thread.join(LOOPS * GIVE_UP)
    cache.delete("per-loop")
    return loops


def _kept_sizes(cached):
    """name -> len of each container cached() can reach: its closure, defaults and globals."""
    function = inspect.unwrap(getattr(cached, "__func__", cached))
    places = dict(getattr(function, "__globals__", {}))
    code = getattr(function, "__code__", None)
    for name, cell in zip(code.co_freevars if code else (), function.__closure__ or (),
                          strict=True):
        try:
            places[name] = cell.cell_contents
        except ValueError:  # an empty cell
            pass
    for number, default in enumerate(getattr(function, "__defaults__", None) or ()):
        places[f"default {number}"] = default
    kinds = (dict, list, set, collections.deque, weakref.WeakKeyDictionary,
             weakref.WeakValueDictionary)
    return {name: len(value) for name, value in places.items() if isinstance(value, kinds)}


@asynccontextmanager
async def _connections_watched(route, view, cache_key, used):
    """Serve ``view`` at ``route`` with CONN_MAX_AGE = 0 (Django's advice under ASGI), so that
    every request's connection is closed when it ends. ``used`` collects the connections the
    computation queried with; afterwards ``left_open`` holds those still open GIVE_UP seconds
    later. They are then closed from here, and the route, the setting and the cached value put
    back: the check leaves nothing open."""
    from asgiref.sync import sync_to_async
    from django.db import connections

    from tutorial_project.playground import mount, unmount

    watch = _Watch()
    database = connections.settings["default"]  # every thread's connection is made from it
    saved_age, database["CONN_MAX_AGE"] = database["CONN_MAX_AGE"], 0
    close_all = connections.close_all

    def noting_the_thread():  # which thread the answer's close_all ran on, for the hint
        watch.closed_on.append(threading.current_thread())
        close_all()

    connections.close_all = noting_the_thread  # looked up when the answer calls it
    mount(route, view)
    try:
        with quiet_request_log():
            yield watch
        for _ in range(int(GIVE_UP / 0.05)):  # the task may still be closing what it opened
            watch.left_open = [c for c in used if c.connection is not None]
            if not watch.left_open:
                break
            await asyncio.sleep(0.05)
    finally:
        del connections.close_all  # the class's own again
        unmount(route)
        database["CONN_MAX_AGE"] = saved_age
        await cache.adelete(cache_key)
        for connection in used:
            await sync_to_async(_close_from_another_thread, thread_sensitive=False)(connection)


@dataclass
class _Watch:
    left_open: list | None = None  # the connections still open at the end
    closed_on: list = field(default_factory=list)  # the threads connections.close_all ran on

    def hint(self, otherwise):
        """What to say of the connections left open: a close_all that ran, but never on the
        thread that holds one of them, is named as such; ``otherwise`` for the rest."""
        holders = {connection._thread_ident for connection in self.left_open or ()}
        if not self.closed_on or holders & {thread.ident for thread in self.closed_on}:
            return otherwise
        pool = any(thread.name.startswith("asyncio") for thread in self.closed_on)
        return (("your connections.close_all ran on a thread of the event loop's pool: "
                 "sync_to_async(..., thread_sensitive=False) (or asyncio.to_thread) sends it "
                 "there. " if pool else "your connections.close_all ran, on another thread. ")
                + "A connection belongs to the thread that opened it, and close_all closes only "
                "the connections of the thread it runs on, so it closed nothing of the "
                "computation's. Close on the thread that ran the queries: leave thread_sensitive "
                "at its default (True), `await sync_to_async(connections.close_all)()` inside "
                "the task's `async with ThreadSensitiveContext():`")


LEAVING_ROUTE = "exercise-12-3/leaving/"
LEAVING_HINT = (
    "a task starts with a copy of its creator's contextvars, and with them the first "
    "request's ThreadSensitiveContext: once that request has ended, the task's sync_to_async "
    "calls get a thread whose connection no request_finished closes. Start the task in a "
    "context of its own, asyncio.create_task(..., context=contextvars.Context()), open "
    "`async with ThreadSensitiveContext():` in it, and close its connections at the end "
    "(finally: await sync_to_async(connections.close_all)()), so that close_all closes that "
    "thread's connection and no caller's")


async def _check_a_request_leaving(check, cached):
    """Through ASGIHandler, as a server runs requests: the first request starts the
    computation and its client leaves; only then does compute() query the database, while a
    second request waits for it. Is the connection that query used closed at the end?"""
    from asgiref.sync import sync_to_async
    from django.core.handlers.asgi import ASGIHandler
    from django.db import connections

    from tutorial_project.catalog.models import Product
    from tutorial_project.instruments.handler_cost import asgi_get

    started, leaves, first_left, used = (asyncio.Event(), asyncio.Event(), asyncio.Event(),
                                         [])

    def count_noting_the_connection():  # what acount() runs, on the thread it is given
        used.append(connections["default"])
        return Product.objects.count()

    async def compute():  # an upstream call, then a query, after the first client left
        started.set()
        await first_left.wait()
        return {"products": await sync_to_async(count_noting_the_connection)()}

    async def view(request):
        return JsonResponse(await cached("leaving-request", compute))

    async def two_requests():
        first = asyncio.ensure_future(
            asgi_get(ASGIHandler(), f"/{LEAVING_ROUTE}", leaves_when=leaves))
        await started.wait()
        second = asyncio.ensure_future(asgi_get(ASGIHandler(), f"/{LEAVING_ROUTE}"))
        await asyncio.sleep(0.1)  # it joins the computation (later is fine: compute() waits)
        leaves.set()  # the first client disconnects: Django cancels its request and ends it
        statuses = [await first]
        first_left.set()
        return [*statuses, await second]

    async with _connections_watched(LEAVING_ROUTE, view, "leaving-request", used) as watch:
        statuses = await attempt(check, two_requests, "two requests, the first one leaving",
                                 give_up=2 * GIVE_UP)
    left_open = watch.left_open
    _stop_if_raised(check, statuses, "two requests, the first one leaving", "")
    check.that(statuses == [None, 200] and used,
               "through ASGIHandler, a request that leaves does not fail the one that waits",
               f"the first request's client left, and the requests answered {statuses} "
               "(None: no answer, as for a client that left)",
               hint="the request that stays gets the computed value")
    check.that(not left_open,
               "a request that leaves leaves no database connection open",
               f"the first request's client left; the computation then queried the database "
               f"on a thread that no request owns, and that connection was still open "
               f"{GIVE_UP:.0f} s after both requests had ended (under a server: one more for "
               "each client that leaves while a key is cold)",
               hint=watch.hint(LEAVING_HINT))


FAILING_ROUTE = "exercise-12-3/failing/"


async def _check_a_failure_after_a_query(check, cached):
    """Through ASGIHandler: three requests in turn, each one's compute() queries the database
    and then raises (as the dashboard's does when a source is down). Is the connection that
    query used closed, although the computation failed?"""
    from asgiref.sync import sync_to_async
    from django.core.handlers.asgi import ASGIHandler
    from django.db import connections

    from tutorial_project.catalog.models import Product
    from tutorial_project.instruments.handler_cost import asgi_get

    used = []

    def count_noting_the_connection():
        used.append(connections["default"])
        return Product.objects.count()

    async def compute():  # a query, then a failed source
        await sync_to_async(count_noting_the_connection)()
        raise RuntimeError("upstream down")

    async def view(request):
        try:
            return JsonResponse(await cached("failing-query", compute))
        except RuntimeError:
            return JsonResponse({"error": "upstream down"}, status=502)

    async def three_requests():
        return [await asgi_get(ASGIHandler(), f"/{FAILING_ROUTE}") for _ in range(3)]

    async with _connections_watched(FAILING_ROUTE, view, "failing-query", used) as watch:
        statuses = await attempt(check, three_requests, "three requests, compute() failing",
                                 give_up=2 * GIVE_UP)
    left_open = watch.left_open
    _stop_if_raised(check, statuses, "three requests, compute() failing", "")
    check.that(statuses == [502] * 3 and used,
               "through ASGIHandler, a compute() that fails reaches each request",
               f"three requests whose compute() queried, then raised, answered {statuses}",
               hint="let compute()'s error reach every caller")
    check.that(not left_open,
               "a compute() that queries, then fails, leaves no database connection open",
               f"three requests in turn, each one's compute() queried the database and then "
               f"raised; {len(left_open)} of those connections were still open {GIVE_UP:.0f} s "
               "later (under a server: one more for every failed computation, which is every "
               "request while a source is down)",
               hint=watch.hint("close the computation's connections whether compute() "
                               "succeeds or raises: in a `finally:` around it, "
                               "`await sync_to_async(connections.close_all)()`"))


SYNC_CALLER_HINT = (
    "run the computation's queries, and its close_all, on a thread of its own; it takes both "
    "of _start()'s steps (tutorial_project/capstone/service.py): an empty context, "
    "asyncio.create_task(..., context=contextvars.Context()), and `async with "
    "ThreadSensitiveContext():` inside it. Under a sync caller, a thread-sensitive "
    "sync_to_async runs on the caller's thread otherwise: a copied context carries the "
    "caller's executor, which asgiref prefers to a ThreadSensitiveContext() entered in the "
    "task, and an empty context alone is sent to the thread that called async_to_sync for "
    "this loop. The close_all there closes the caller's connection")


async def _check_a_sync_caller(check, cached):
    """As Django's TestCase runs an async test: async_to_sync(cached) from a sync thread that
    has added a row inside transaction.atomic(), not committed. Does cached() return, and is
    the caller's transaction still usable afterwards? (Whether compute() sees the row is not
    asked: only asgiref internals tell a task that its caller is sync.)"""
    outcome = {}
    thread = threading.Thread(target=_sync_caller_in_a_transaction, args=(cached, outcome),
                              daemon=True)  # a fresh context, as a sync test's thread has
    thread.start()
    await asyncio.to_thread(thread.join, 2 * GIVE_UP)
    await cache.adelete("sync-caller")
    problem = outcome.get("problem", "it did not return within "
                                     f"{2 * GIVE_UP:.0f} s (waiting for the caller's thread?)")
    check.that(problem is None,
               "under a sync caller (Django's TestCase), it leaves the caller's transaction "
               "usable",
               f"a sync caller in transaction.atomic() added a category, then called "
               f"async_to_sync(cached)(key, compute) (as Django's TestCase runs an async test, "
               f"and WSGI an async view); {problem}",
               hint=SYNC_CALLER_HINT)


def _sync_caller_in_a_transaction(cached, outcome):
    from asgiref.sync import async_to_sync
    from django.db import connections, transaction

    from tutorial_project.catalog.models import Category

    async def compute():
        return {"categories": await Category.objects.acount()}

    try:
        with transaction.atomic():
            Category.objects.create(name="Exercise 12.3, uncommitted", slug="exercise-12-3")
            seen = Category.objects.count()
            try:
                got = async_to_sync(cached)("sync-caller", compute)
            except Exception as error:  # noqa: BLE001  (reported by the check)
                outcome["problem"] = f"cached() raised {type(error).__name__}: {error}"
                got = None
            try:
                after = Category.objects.count()
            except Exception as error:  # noqa: BLE001  (reported by the check)
                after = f"{type(error).__name__}: {error}"
            transaction.set_rollback(True)  # the caller's row goes, as at the end of a test
        outcome["seen"], outcome["got"] = seen, got  # compute() may see the row or not
        if "problem" in outcome:
            pass
        elif got not in ({"categories": seen}, {"categories": seen - 1}):
            outcome["problem"] = (
                f"the caller counted {seen} categories (one of them its own, uncommitted), "
                f"and cached() returned {got!r}")
        elif after != seen:
            outcome["problem"] = (
                f"cached() returned the right count, but then the caller's own query in its "
                f"transaction gave {after!r}: something closed the caller's connection in the "
                "middle of its transaction (connections.close_all() on the caller's thread)")
        else:
            outcome["problem"] = None
    except Exception as error:  # noqa: BLE001  (reported by the check)
        outcome["problem"] = f"the caller's transaction failed: {type(error).__name__}: {error}"
    finally:
        connections.close_all()


def _close_from_another_thread(connection):
    connection.inc_thread_sharing()  # Django refuses to close a thread's connection otherwise
    try:
        connection.close()
    finally:
        connection.dec_thread_sharing()


async def _check_a_caller_leaving(check, cached):
    """The first caller's request is cancelled (its client left) while five others wait."""
    calls, release = [], asyncio.Event()

    async def compute():  # it ends when the check says so: no race with the cancellation
        calls.append(1)
        await release.wait()
        return {"answer": 42}

    async def leave_first():
        first = asyncio.ensure_future(cached("leaving", compute))
        while not calls and not first.done():  # the first caller has started compute()
            await asyncio.sleep(0.01)
        others = [asyncio.ensure_future(cached("leaving", compute)) for _ in range(5)]
        await asyncio.sleep(0.2)  # they looked in the cache and now wait for the computation
        first.cancel()  # what ASGIHandler does to a request whose client disconnects
        await asyncio.wait([first], timeout=1.0)
        left = first.done()  # before the computation ends: the caller stopped waiting
        release.set()
        if not left:
            await asyncio.wait([first], timeout=1.0)
        return left, await asyncio.gather(*others, return_exceptions=True)

    outcome = await attempt(check, leave_first, "five callers after the first one left")
    _stop_if_raised(check, outcome, "five callers after the first one left", "")
    left, got = outcome
    check.that(
        left, "a caller that is cancelled stops waiting at once",
        "the first caller was cancelled (its client left) and was still waiting a second "
        "later: it caught CancelledError and went on waiting for the computation",
        hint="let CancelledError out of cached(): Django cancels a request whose client left "
             "and then waits for it to end, and asyncio.timeout() needs it too; "
             "asyncio.shield(task) already keeps the shared task running",
    )
    failed = sorted({type(value).__name__ for value in got if isinstance(value, BaseException)})
    check.that(
        not failed and got == [{"answer": 42}] * 5 and len(calls) == 1,
        "a caller that leaves does not stop the computation the others wait for",
        (f"the first caller was cancelled (its client left) and the five callers waiting for "
         f"the same key got {', '.join(failed)} (under uvicorn, a 500 for each of their requests)")
        if failed else
        (f"the first caller was cancelled (its client left), which stopped the computation: "
         f"compute() ran {len(calls)} times, another caller starting it again")
        if len(calls) > 1 and got == [{"answer": 42}] * 5 else
        (f"the first caller was cancelled (its client left); the five callers waiting for the "
         f"same key got {got[:2]!r}... and compute() ran {len(calls)} times"),
        hint="run the computation in a task of its own (asyncio.create_task) and let every "
             "caller `await asyncio.shield(task)`: cancelling a caller then stops its wait, not "
             "the task the others share",
    )


async def _check_a_failure_for_every_caller(check, cached):
    """Ten callers at a cold cache; the shared compute() raises once they all wait for it."""
    calls, release = [], asyncio.Event()

    async def compute():  # it fails when the check says so: every caller is waiting by then
        calls.append(1)
        await release.wait()
        raise RuntimeError("upstream down")

    async def ten_callers():
        callers = [asyncio.ensure_future(cached("failing", compute)) for _ in range(10)]
        while not calls and not all(caller.done() for caller in callers):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # the nine others looked in the cache and now wait for it
        release.set()  # a caller that comes later computes (and fails) on its own: no harm
        return await asyncio.gather(*callers, return_exceptions=True)

    got = await attempt(check, ten_callers, "ten callers, compute() raising")
    _stop_if_raised(check, got, "ten callers, compute() raising", "")
    wrong = [value for value in got if not isinstance(value, RuntimeError)]
    shown = sorted({repr(value) for value in wrong})
    check.that(
        not wrong, "when compute() raises, every caller waiting for it gets the error",
        f"10 callers at a cold cache, compute() raised RuntimeError, and {len(wrong)} of them "
        f"got {', '.join(shown)} instead (the view then fails on that value: a 500 for each "
        "of those requests, not the partial answer the error would give)",
        hint="let every caller `await asyncio.shield(task)`: the task's exception reaches each "
             "of them. Reading the cache again after the computation finds nothing when it "
             "failed")
    check.that(not await cache.ahas_key("failing"),
               "nothing is stored when a shared compute() fails",
               "something was stored for a failure")


def _in_two_loops_at_once(cached):
    """Two threads, each with its own event loop, send ten callers for one key together."""
    computing, start = set(), threading.Barrier(2)

    async def compute():  # held until the other loop is computing too, or has had time to join
        computing.add(asyncio.get_running_loop())
        for _ in range(50):
            if len(computing) == 2:
                break
            await asyncio.sleep(0.02)
        return {"answer": 42}

    async def ten():
        return await asyncio.wait_for(
            asyncio.gather(*(cached("together", compute) for _ in range(10))), GIVE_UP)

    outcomes = [None, None]

    def one_loop(index):
        try:
            start.wait(GIVE_UP)
            outcomes[index] = asyncio.run(ten())
        except Exception as error:  # noqa: BLE001  (reported by the check)
            outcomes[index] = f"{type(error).__name__}: {error}"

    threads = [threading.Thread(target=one_loop, args=(i,), daemon=True) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(2 * GIVE_UP)
    return outcomes


def _in_a_new_loop(cached, compute):
    async def twenty():
        return await asyncio.wait_for(
            asyncio.gather(*(cached("cold", compute) for _ in range(20))), GIVE_UP)

    try:
        return asyncio.run(twenty())
    except Exception as error:  # noqa: BLE001  (reported by the check)
        return f"{type(error).__name__}: {error}"


# --- 12.4 --------------------------------------------------------------------------------------

# Far-apart latencies, in an order unlike SOURCES' (weather, stocks, news), all under the budget.
ARRIVAL = {"/weather": (0.4, {"w": 1}), "/stocks": (0.05, {"s": 1}), "/news": (0.15, {"n": 1})}
ARRIVAL_ORDER = ["stocks", "news", "weather"]


@_hands_over("dashboard_events")
@exercise("12.4", "Stream progress as each source arrives, stop when the client leaves")
async def check_dashboard_events(check, dashboard_events):
    check.that(inspect.isasyncgenfunction(dashboard_events),
               "dashboard_events is an async generator",
               "dashboard_events is not an async generator",
               hint="`async def dashboard_events(client):` with `yield sse_event(...)` inside")
    upstream = FakeUpstream(ARRIVAL)
    async with in_process_client(upstream) as client:
        events = await attempt(check, lambda: _read_all(dashboard_events(client)),
                               "dashboard_events(client)")
        _stop_if_raised(check, events, "dashboard_events(client)",
                        "catch SourceError per source and send its as_json() as the data")
        _check_events(check, events, upstream)
        await _refuse_loop_blocking(check, "dashboard_events(client)",
                                    lambda: _read_all(dashboard_events(client)))
    await _check_a_failed_source(check, dashboard_events)
    leaving = FakeUpstream(ARRIVAL)
    async with in_process_client(leaving) as client:
        # Not through attempt(): its garbage collection could stall the loop past the slow
        # sources' answers. The first event comes at ~0.05 s, the others at 0.15 and 0.4 s.
        events = dashboard_events(client)
        await anext(events)
        try:
            await events.aclose()  # what Django does when the client disconnects
        except BaseException as error:  # noqa: BLE001  (a GeneratorExit in a group, mostly)
            fail(check, f"closing it after the first event raised {type(error).__name__}: {error}",
                 "a `yield` inside `async with asyncio.TaskGroup()` turns the GeneratorExit of "
                 "a closing generator into an exception group: create the tasks yourself and "
                 "cancel them in a `finally:`")
        await asyncio.sleep(0.01)  # a cancelled task stops at its next step
        still_running = leaving.in_flight
        await asyncio.sleep(0.5)  # the leaked fetches, if any, answer for nobody
    check.that(
        still_running == 0,
        "when the client leaves at a yield (aclose()), the fetches still running are cancelled",
        f"the client left after the first event, yet {still_running} fetch(es) kept running "
        f"({sum(leaving.answered.values()) - 1} answered for nobody)",
        hint="create the tasks yourself and cancel them in a `finally:` around the loop: "
             "closing the generator cancels none of them (nor do asyncio.as_completed and "
             "asyncio.wait)",
    )
    cancelled = FakeUpstream(ARRIVAL)
    async with in_process_client(cancelled) as client:
        # What ASGIHandler does, mostly: the response's task is cancelled while the generator
        # waits at an await (CancelledError there, not GeneratorExit at a yield).
        events = dashboard_events(client)
        await anext(events)
        reader = asyncio.create_task(anext(events))
        await asyncio.sleep(0.02)  # it now awaits the next source
        # On a busy machine that source may have come already: then cancel at the next one.
        while reader.done() and not reader.cancelled() and reader.exception() is None:
            reader = asyncio.create_task(anext(events))
            await asyncio.sleep(0.02)
        reader.cancel()
        try:
            await reader
        except BaseException:  # noqa: BLE001, S110  (CancelledError, or what the answer raised)
            pass
        await asyncio.sleep(0.01)
        still_running = cancelled.in_flight
        await asyncio.sleep(0.5)
    check.that(
        still_running == 0,
        "when the client leaves at an await (CancelledError), the fetches are cancelled too",
        f"the stream was cancelled while it awaited a source, yet {still_running} fetch(es) "
        f"kept running ({sum(cancelled.answered.values()) - 1} answered for nobody)",
        hint="a server cancels the stream's task: CancelledError arrives at the await, "
             "not GeneratorExit; cancel the tasks in a `finally:`, not `except GeneratorExit:`",
    )


class _FailingUpstream(FakeUpstream):
    """The fake upstream, with the sources in ``failing`` answering 500 every time."""

    def __init__(self, endpoints, failing):
        super().__init__(endpoints)
        self.failing = failing

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].rstrip("/") in self.failing:
            scope = {**scope, "query_string": b"mode=fail"}
        return await super().__call__(scope, receive, send)


async def _check_a_failed_source(check, dashboard_events):
    """News answers 500: its event carries SourceError.as_json(), and the stream still ends
    with `done`. No timing here: only what is sent, whatever the machine's load."""
    from tutorial_project.dashboard.sources import SourceError, fetch_source

    failing = {**ARRIVAL, "/news": (0, {"n": 1})}  # its 500 comes at once: no timeout
    async with in_process_client(_FailingUpstream(failing, {"/news"})) as client:
        try:
            await fetch_source(client, "news")
        except SourceError as error:
            expected = error.as_json()
    async with in_process_client(_FailingUpstream(failing, {"/news"})) as client:
        events = await attempt(check, lambda: _read_all(dashboard_events(client)),
                               "dashboard_events(client) with news failing")
    _stop_if_raised(check, events, "with the news source answering 500, dashboard_events(client)",
                    "catch SourceError for each source (in the task that fetches it) and send "
                    "its as_json() as that source's data: one failed source must not end the "
                    "stream")
    parsed = events_in("".join(chunk for _, chunk in events))
    sent = {data.get("source"): data.get("data", "(no data)") for event, data in parsed
            if event == "source"}
    names = [event for event, _ in parsed]
    check.that("news" in sent and names[-1:] == ["done"],
               "a failed source still gets its event, and the stream ends with `done`",
               f"with the news source answering 500, the events were {names} and the sources "
               f"sent were {sorted(sent, key=str)}",
               hint="catch SourceError for each source and yield its event with "
                    "error.as_json() as the data; then `done` as usual")
    check.that(sent["news"] == expected or (isinstance(sent["news"], dict)  # a stalled loop
                                            and sent["news"].get("error") == "timeout"),
               "a failed source sends its SourceError's as_json()",
               f"with the news source answering 500, its event's data was {sent['news']!r}, "
               f"not {expected!r}",
               hint='sse_event({"source": name, "data": error.as_json()}, event="source")')


async def _read_all(events):
    started, received = time.perf_counter(), []
    async for chunk in events:
        received.append((time.perf_counter() - started, chunk))
    return received


def _check_events(check, events, upstream):
    check.that(events and all(isinstance(chunk, str) for _, chunk in events),
               "it yields text", f"it yielded {[chunk for _, chunk in events][:2]!r}",
               hint="yield sse_event(data, event=...) strings")
    parsed = events_in("".join(chunk for _, chunk in events))
    names = [event for event, _ in parsed]
    check.that(names[-1:] == ["done"] and names.count("source") == 3,
               "three `source` events, then `done`", f"the events were {names}",
               hint='yield sse_event({"source": name, "data": data}, event="source"), '
                    'then sse_event(..., event="done")')
    check.that(upstream.max_in_flight == 3, "the three sources were asked at the same time",
               f"at most {upstream.max_in_flight} source(s) were being asked at once",
               hint="start every fetch first (tasks), then wait for whichever finishes first")
    order = [data.get("source") for event, data in parsed if event == "source"]
    source_times = [moment for moment, chunk in events if "event: source" in chunk]
    check.that(order == ARRIVAL_ORDER and source_times[-1] - source_times[0] > 0.15,
               "each source is sent as soon as it arrives",
               f"sources were sent in the order {order}, "
               f"{source_times[-1] - source_times[0]:.2f} s apart; they arrived in the order "
               f"{ARRIVAL_ORDER}, over 0.35 s",
               hint="asyncio.as_completed(tasks) gives each result as soon as it is ready")
    check.that(parsed[-1][1].get("arrived") == ARRIVAL_ORDER,
               "`done` lists the sources in arrival order",
               f"done said {parsed[-1][1]!r}", hint='sse_event({"arrived": [...]}, event="done")')
    payloads = {path.strip("/"): payload for path, (_, payload) in ARRIVAL.items()}
    sent = {data.get("source"): data.get("data", "(no data)") for event, data in parsed
            if event == "source"}
    timed_out = {name for name, data in sent.items()  # a loaded machine: past the budget
                 if isinstance(data, dict) and data.get("error") == "timeout"}
    check.that(sent.keys() == payloads.keys() and all(
        sent[name] == payloads[name] for name in payloads.keys() - timed_out),
               "each `source` event carries that source's data",
               f"the `source` events sent {sent!r}; the sources answered {payloads!r}",
               hint='yield sse_event({"source": name, "data": data}, event="source"), with '
                    "data what fetch_source() returned for that name")


# --- 12.5 --------------------------------------------------------------------------------------


@_hands_over("cache_control_middleware")
@exercise("12.5", "An async-only middleware")
async def check_middleware(check, middleware_factory):
    check.that(
        getattr(middleware_factory, "async_capable", False)
        and not getattr(middleware_factory, "sync_capable", True),
        "it is async-only (async_capable, not sync_capable)",
        "Django would treat it as sync (or both): it may adapt it through a thread",
        hint="decorate the factory with @async_only_middleware (django.utils.decorators)",
    )
    if getattr(middleware_factory, "async_capable", False):
        from asgiref.sync import iscoroutinefunction  # what BaseHandler.load_middleware asks

        async def nothing(request):
            return JsonResponse({})

        try:
            instance = middleware_factory(nothing)
        except Exception as error:  # noqa: BLE001  (reported by the check)
            instance = f"{type(error).__name__}: {error}"
        if instance is None:
            check.that(False, "the factory returns the middleware it makes",
                       "your factory returned None: Django calls what it returns for every "
                       "request", hint="end the factory with `return middleware`")
        check.that(iscoroutinefunction(instance),
                   "Django sees the middleware it makes as a coroutine function",
                   f"it made {instance!r}, which Django takes for a sync callable: it wraps "
                   "it in the sync exception handler, so an exception raised in the "
                   "middleware escapes as a raw error instead of a 500 when it is the "
                   "outermost middleware, or when every one outside it is taken for sync too "
                   "(another such class, or a MiddlewareMixin such as the built-ins); behind a "
                   "sync-only or a recognised async one it becomes a 500, so the bug depends "
                   "on the order",
                   hint="a class with an async __call__ calls markcoroutinefunction(self) in "
                        "__init__ (asgiref.sync), as Django's docs require; or write a "
                        "function middleware with @async_only_middleware"
                   if inspect.isclass(middleware_factory) else
                   "the function your factory returns must be `async def middleware(request):`"
                   " (@async_only_middleware only tells Django the factory wants an async "
                   "get_response; it does not make the inner function async)")

    async def ok(request):
        return JsonResponse({"ok": True})

    async def broken(request):
        return JsonResponse({"error": "upstream down"}, status=502)

    async def created(request):
        return JsonResponse({"id": 1}, status=201)

    async def bad(request):  # the dashboard's own "unknown mode" answer
        return JsonResponse({"error": "unknown mode"}, status=400)

    async def missing(request):  # a 404 is cacheable by default (RFC 9111) without a header
        return JsonResponse({"error": "no such page"}, status=404)

    async def empty(request):
        return HttpResponse(status=204)

    async def moved(request):
        return HttpResponseRedirect("/capstone/dashboard/")

    async def own(request):
        response = JsonResponse({"partial": True})
        response["Cache-Control"] = "no-store"
        return response

    async def private(request):  # a 200 the view itself keeps to one browser, briefly
        response = JsonResponse({"user": "ada"})
        response["Cache-Control"] = "private, max-age=5"
        return response

    async def gone(request):  # an error the view says may be cached for a minute
        response = JsonResponse({"error": "no such page"}, status=404)
        response["Cache-Control"] = "max-age=60"
        return response

    async def stream(request):  # as the dashboard's SSE view answers: no .content to read
        async def events():
            yield b"data: 1\n\n"

        return StreamingHttpResponse(events(), content_type="text/event-stream")

    others = {"broken": 502, "created": 201, "empty": 204, "moved": 302, "bad": 400,
              "missing": 404}  # every status but 200, without a header of the view's own
    views = [("ok", ok), ("broken", broken), ("created", created), ("empty", empty),
             ("moved", moved), ("bad", bad), ("missing", missing), ("own", own),
             ("private", private), ("gone", gone), ("stream", stream)]
    returned = None  # what Django raised when the middleware returned a coroutine
    with watching_awaits() as unawaited, use_middleware(middleware_factory), quiet_request_log():
        try:
            answers = {name: await call_view(view) for name, view in views}
        except AttributeError as raised:  # ASGIHandler, given a coroutine for a response
            if "'coroutine' object" not in str(raised):
                raise
            returned = f"AttributeError: {raised}"
        else:
            status = answers["ok"].status_code
            error = answers["ok"].exc_info and answers["ok"].exc_info[1]
            error = error and f"{type(error).__name__}: {error}"
            got = {name: r.headers.get("Cache-Control") for name, r in answers.items()}
            streamed = answers["stream"].status_code
            streamed_error = answers["stream"].exc_info and answers["stream"].exc_info[1]
            streamed_error = streamed_error and f"{type(streamed_error).__name__}: {streamed_error}"
            del answers  # a failed request's traceback holds its frames (and their coroutines)
    # Django's own coroutine is the one left unawaited: name the call the learner wrote.
    if returned or any("_get_response_async" in found for found in unawaited):
        fail(check, "a request through it: get_response(request) was called but never awaited"
                    + (f", and the middleware returned its coroutine (Django: {returned})"
                       if returned else ""), FORGOT_AWAIT)
    stop_if_unawaited(check, unawaited, "a request through it")
    check.that(status == 200, "a request passes through it",
               f"a view's 200 came out as {status}" + (f" ({error})" if error else ""),
               hint="response = await get_response(request); return response")

    async def through_it():
        with use_middleware(middleware_factory), quiet_request_log():
            await call_view(ok)

    await _refuse_loop_blocking(check, "a request through it", through_it)
    check.that(got["ok"] == "max-age=30", "a 200 gets Cache-Control: max-age=30",
               f"a 200 got Cache-Control {got['ok']!r}")
    wrong = [f"a {code} got " + (f"Cache-Control {got[name]!r}" if got[name] else
                                 "no Cache-Control at all")
             for name, code in others.items() if got[name] != "no-store"]
    check.that(not wrong, "any other status gets Cache-Control: no-store",
               "; ".join(wrong) + (" (without the header a browser or proxy may keep a 404, "
                                   "a 301 and others by its own rules)"
                                   if any("at all" in line for line in wrong) else ""),
               hint="the exercise lets caches keep a 200 only (HTTP lets them keep some other "
                    "statuses too, and a browser or proxy may, by its own rules): compare "
                    "status_code == 200, and give every other status no-store (an `else:`, "
                    "not a list of the statuses)")
    check.that(streamed == 200, "a streaming response (as the dashboard's SSE) passes through it",
               f"a StreamingHttpResponse came out as {streamed}"
               + (f" ({streamed_error})" if streamed_error else ""),
               hint="a streaming response has no .content (it raises AttributeError): a "
                    "middleware that sets headers reads only the status and the headers, never "
                    "the body")
    own = {"own": "no-store", "private": "private, max-age=5", "gone": "max-age=60"}
    changed = [f"{own[name]!r} became {got[name]!r}" for name in own if got[name] != own[name]]
    check.that(not changed, "a view's own Cache-Control is kept, whatever the status",
               "the views set Cache-Control themselves, and " + "; ".join(changed),
               hint="set it only when the view did not: `if not response.has_header("
                    "'Cache-Control'):` (patch_cache_control() merges into the view's header, "
                    "and an error status does not mean the view's header may go)")


# --- 12.6 --------------------------------------------------------------------------------------


def _buggy_views():
    """The real dashboard, and views that each get one thing of a partial answer wrong."""
    from tutorial_project.capstone.views import dashboard

    def changed(change, status=None, cache_control="no-store"):
        """A view that gives the dashboard's partial answer with ``change(body)`` applied."""

        async def view(request):
            response = await dashboard(request)
            if response.status_code != 200:
                return response
            body = json.loads(response.content)
            if not body["partial"]:
                return response
            change(body)
            changed = JsonResponse(body, status=status or response.status_code)
            changed["Cache-Control"] = cache_control
            return changed

        return view

    async def caches_partial_answers(request):  # stores gather_sources()' pair, partial or not
        from tutorial_project.capstone import service
        from tutorial_project.dashboard.clients import client_for
        from tutorial_project.dashboard.sources import SOURCES

        modes = {name: request.GET.get(name, "ok") for name in SOURCES}
        catalog = await service.cached("capstone:catalog", service.catalog_summary)
        async with client_for(request) as client:
            data, errors = await service.cached("capstone:widgets:" + urlencode(modes),
                                                lambda: service.gather_sources(client, modes))
        response = JsonResponse({"catalog": catalog, **data, "errors": errors,
                                 "partial": bool(errors)})
        if errors:
            response["Cache-Control"] = "no-store"
        return response

    async def fails_whole_page(request):  # one failed source loses every widget
        response = await dashboard(request)
        if response.status_code == 200 and json.loads(response.content)["partial"]:
            return JsonResponse({"error": "upstream failed"}, status=502)
        return response

    def keep(body):
        pass

    return dashboard, {
        "a view that calls a partial answer complete": (
            changed(lambda body: body.update(partial=False)),
            'assert body["partial"] is True'),
        "a view that hides the failed source behind an empty widget": (
            changed(lambda body: body.update(news={})),
            'assert body["news"] is None: a failed source is None, not an empty widget'),
        "a view that does not say why a widget is missing": (
            changed(lambda body: body.update(errors={})),
            'assert body["errors"]["news"]...: the answer names the failed source and why'),
        "a view that drops the widgets that did arrive": (
            changed(lambda body: body.update(weather=None, stocks=None)),
            'assert body["weather"] and body["stocks"]: the sources that answered are kept'),
        "a view that answers 502 when one source fails": (
            fails_whole_page,
            "assert response.status_code == 200: the other widgets are kept"),
        "a view that sends the partial page with status 503": (
            changed(keep, status=503),
            "assert response.status_code == 200: a partial answer is still a success"),
        "a view that sends the partial page with status 206": (
            changed(keep, status=206),
            "assert response.status_code == 200 (206 Partial Content answers a Range request; "
            "`< 300` lets it through)"),
        "a view that lets browsers keep the partial page": (
            changed(keep, cache_control="max-age=30"),
            'assert response["Cache-Control"] == "no-store": a partial page must not stick'),
        "a view that caches the partial answer": (
            caches_partial_answers,
            "a partial answer is never cached: assert nothing is stored under the view's key "
            'for ?news=fail (await cache.aget("capstone:widgets:weather=ok&stocks=ok&news=fail") '
            "is None), or that a second ?news=fail calls the upstream's /news again "
            "(default_upstream.calls). A request for \"\" cannot tell: its key is another "
            "one, which an answer kept for ?news=fail never reaches"),
    }


TEST_BLOCKING_HINT = (
    "an async test runs on the event loop, with the view it calls and the tasks that view "
    "starts (its upstream calls, a shared computation): a blocking call (time.sleep under any "
    "name, Event.wait, a sync client) stops them all while it waits, so a test that waits for "
    "one of them waits for nothing. The exercise asks for `await asyncio.sleep()` if your "
    "test must wait")


@exercise("12.6", "A test that catches a bug")
async def check_partial_test(check, test_partial_failure):
    must_be_async(check, test_partial_failure, "test_partial_failure", "client")
    correct, buggy = _buggy_views()
    with quiet_request_log():
        with _own_cache(), sync_cache_calls_on_this_thread() as sync_calls:  # an empty cache
            outcome = await attempt(check, lambda: test_partial_failure(_ViewClient(correct)),
                                    "your test on the correct view")
        check.that(not isinstance(outcome, Raised), "it passes on the correct view",
                   f"on the correct view it failed: {outcome}",
                   hint="request ?news=fail and assert what a partial answer looks like")
        sync_names = sorted(set(sync_calls))
        check.that(not sync_names, "it uses the cache's async API",
                   f"it called the sync cache.{'/'.join(sync_names)}() in async code: the "
                   "exercise asks for the async API, the one check 12.3 asks of cached() (in "
                   "a test nothing else waits on the loop, but the habit carries into views, "
                   "where with Redis or memcached each call stalls every request)",
                   hint="await cache.aget(key)")
        with _own_cache():
            await _refuse_loop_blocking(check, "your test",
                                        lambda: test_partial_failure(_ViewClient(correct)),
                                        TEST_BLOCKING_HINT)
        for what, (view, hint) in buggy.items():
            client = _ViewClient(view)
            with _own_cache():
                outcome = await attempt(check, lambda client=client: test_partial_failure(client),
                                        f"your test on {what}")
            # Under pytest any exception fails a test; a KeyError on a broken body is a catch.
            check.that(isinstance(outcome, Raised), f"it fails on {what}",
                       f"it passes on {what}", hint=hint)


class _ViewClient:
    """``await client.get("?news=fail")`` on one view, as the learner's test expects."""

    def __init__(self, view):
        self.view = view

    async def get(self, query=""):
        if not query.startswith("?") and query:  # "/capstone/?news=fail": a path
            raise ValueError(f"client.get({query!r}): this client takes the query string only "
                             '(client.get("?news=fail")); it adds the path of the view it '
                             "tests, which differs from one view to the next")
        return await call_view(self.view, suffix=query)


# --- 12.7 --------------------------------------------------------------------------------------


def _surroundings_or_httpcore_poll(frame):
    """The check's own code and Django's, and httpcore's ``is_socket_readable``: a ``poll(0)``
    (or ``select`` with timeout 0 on Windows) that asks whether a pooled connection was
    closed, and never waits."""
    return made_by_the_surroundings(frame) or frame.f_globals.get("__name__") == "httpcore._utils"


@exercise("12.7", "Serve it with uvicorn and load it")
async def check_load_test(check, load_capstone):
    must_be_async(check, load_capstone, "load_capstone", "")
    # Judged unwatched first: the watch's profile hook slows the loop, and the dashboard
    # gives each source a 0.5 s budget (under the hook, on a busy machine, half of the
    # requests timed out). Watched for blocking calls after that, in a run not judged.
    result = await attempt(check, load_capstone, "load_capstone()", give_up=60.0,
                           hint="100 small requests take a few seconds: is a request stuck?")
    _stop_if_raised(check, result, "load_capstone()",
                    'serve with `async with serve_in_process() as url:`, load f"{url}/capstone/"')
    check.that(hasattr(result, "latencies") and hasattr(result, "concurrency"),
               "it returns a LoadResult", f"it returned {type(result).__name__}",
               hint="return await run_load(url, concurrency=20, requests_per_client=5)")
    check.that(result.url.startswith("http://127.0.0.1:") and result.url.endswith("/capstone/"),
               "it loaded /capstone/ on a real server on 127.0.0.1",
               f"it loaded {result.url!r}",
               hint='load f"{url}/capstone/" with the url that serve_in_process() yields')
    check.that(result.concurrency >= 20, "at least 20 clients at once",
               f"only {result.concurrency} client(s) at once", hint="concurrency=20")
    check.that(result.errors == 0 and len(result.latencies) >= 100,
               "at least 100 requests, every one answered 200",
               f"{len(result.latencies)} answered 200, {result.errors} failed",
               hint="requests_per_client=5; a failure means the view answered an error")
    seen = {name.lower() for name in getattr(result, "headers", {})}
    missing = [name for name in ("X-Request-ID", "Cache-Control") if name.lower() not in seen]
    check.that(not missing,
               "its answers went through both middleware (X-Request-ID, Cache-Control)",
               f"an answer came without {' and '.join(missing)}",
               hint="serve inside "
                    "`with use_middleware(request_id_middleware, capstone.middleware):`")
    # The server and the clients run on this event loop, with load_capstone(): a blocking
    # call in it, however short, held all of them. Its outcome was judged above.
    with loop_blocking_calls(_surroundings_or_httpcore_poll) as blocking:
        try:
            await asyncio.wait_for(load_capstone(), 120)
        except Exception:  # noqa: BLE001, S110  (judged above)
            pass
    check.that(not blocking,
               "it made no blocking call on the event loop (the server and the clients run "
               "on it too)",
               f"load_capstone() made blocking calls on the event loop's thread: "
               f"{', '.join(sorted(set(blocking)))}: while it blocks, the server answers no "
               "one and the clients measure the wait",
               hint="serve_in_process() yields its url once the server has started: there "
                    "is nothing to wait for; to wait at all, `await asyncio.sleep(...)`, never "
                    "time.sleep")
    check.that(not leftovers(), "the server has stopped (nothing left behind)",
               f"still running: {leftovers()}",
               hint="load inside `async with serve_in_process() as url:`, which stops it")


# --- 12.8 --------------------------------------------------------------------------------------

CHECK_SKU = "CHECK-12-8"


@asynccontextmanager
async def _a_product_in_stock():
    from django.utils import timezone

    from tutorial_project.catalog.models import Category, Product

    category = await Category.objects.order_by("pk").afirst()
    await Product.objects.filter(sku=CHECK_SKU).adelete()  # a run stopped half-way
    product = await Product.objects.acreate(sku=CHECK_SKU, name="Check 12.8", price=1, stock=5,
                                            category=category, created_at=timezone.now())
    try:
        yield product
    finally:  # leave the catalog as the lesson found it
        await Product.objects.filter(pk=product.pk).adelete()


async def _stock_now(product):
    from tutorial_project.catalog.models import Product

    return await Product.objects.filter(pk=product.pk).values_list("stock", flat=True).aget()


async def _outcome(awaitable):
    """What a request got: the value, or the exception (not raised)."""
    try:
        return await awaitable
    except Exception as error:  # noqa: BLE001  (judged by the check)
        return error


class _Rival:
    """Another request's take of the same product, committed between a read of its row and
    the statement after that read, where PostgreSQL (READ COMMITTED) would let it land.

    SQLite runs this project's transactions one at a time (BEGIN IMMEDIATE), so no other
    request can commit inside the learner's transaction there. On PostgreSQL one can, unless
    the learner's transaction holds the row's lock: its ``select_for_update()`` of that row,
    or its UPDATE of it, locks the row until the commit, and a rival's UPDATE waits. So the
    rival lands on the learner's own connection (its later statements see it, as they would
    see a commit on PostgreSQL), once, after the first read of the row while the row is not
    locked, or after a take of it outside a transaction (autocommit: nothing stays locked),
    or in the gap after the transaction that locked the row commits (the lock goes with it)
    and before the next statement on the product table.
    ``leave(stock)`` says how many the rival leaves."""

    def __init__(self, product, leave):
        self.product, self.leave = product, leave
        self.took = 0
        self.landed = self.committed = self.after_your_take = False
        self.in_the_gap = self._taken = False
        self._gaps = set()  # connections whose transaction that locked the row has committed
        self._pending = set()  # connections whose last statement read the row unlocked
        self._locks = {}  # connection -> the outermost atomic block that holds the row's lock

    def _names_the_row(self, statement):
        where = statement.partition(" WHERE ")[2]
        return any(
            (isinstance(param, str) and self.product.sku.lower() in param.lower())
            or (type(param) is int and param == self.product.pk and '"id"' in where)
            for param in statement.params)

    def _is_the_row(self, db, statement):
        """Whether a SELECT read this product's row: by the rows it returns when they carry
        an id or a sku (``exclude(sku=sku)`` names the sku too), else by its WHERE."""
        cursor = db.create_cursor()  # a cursor of its own, with no execute wrappers
        try:
            cursor.execute(statement, statement.params)
            names = [column[0] for column in cursor.description or ()]
            rows = cursor.fetchall()
        finally:
            cursor.close()
        if "id" not in names and "sku" not in names:
            return self._names_the_row(statement)
        return any((name == "id" and value == self.product.pk)
                   or (name == "sku" and value == self.product.sku)
                   for row in rows for name, value in zip(names, row, strict=True))

    def _land(self, db):
        cursor = db.create_cursor()
        try:
            cursor.execute('SELECT "stock" FROM "catalog_product" WHERE "id" = %s',
                           [self.product.pk])
            (stock,) = cursor.fetchone()
            left = self.leave(stock)
            if 0 <= left < stock:
                cursor.execute('UPDATE "catalog_product" SET "stock" = %s WHERE "id" = %s',
                               [left, self.product.pk])
                self.took = stock - left
        finally:
            cursor.close()
        self.landed = True
        if db.in_atomic_block:  # undone if the learner's transaction rolls back
            db.on_commit(self._commit)
        else:
            self._commit()

    def _commit(self):
        self.committed = True

    def _lock_released(self, key):
        if self._locks.pop(key, None) is not None:
            self._gaps.add(key)

    def before(self, db, sql=""):
        if id(db) in self._gaps and '"catalog_product"' in sql and not self.landed:
            self._gaps.discard(id(db))
            self.in_the_gap = True
            self.after_your_take = self.after_your_take or self._taken
            self._land(db)
        if id(db) in self._pending and not self.landed:
            self._land(db)
        self._pending.discard(id(db))

    def after(self, db, statement):
        outermost = db.atomic_blocks[0] if db.in_atomic_block and db.atomic_blocks else None
        if outermost is None:
            self._locks.pop(id(db), None)  # a transaction ended: its locks went with it
        sql = statement.lstrip()[:6].upper()
        if self.landed or '"catalog_product"' not in statement or sql not in ("SELECT",
                                                                               "UPDATE"):
            return
        mine = (self._is_the_row(db, statement) if sql == "SELECT"
                else self._names_the_row(statement))
        if not mine:
            return
        locked = outermost is not None and self._locks.get(id(db)) is outermost
        if outermost is not None and (statement.for_update or sql == "UPDATE"):
            if not locked:  # its end, at the commit, releases the lock
                db.on_commit(functools.partial(self._lock_released, id(db)))
            self._locks[id(db)] = outermost  # held until the commit
            self._taken = self._taken or sql == "UPDATE"
        elif sql == "UPDATE":  # a take in autocommit: committed, and its lock gone with it
            self._pending.add(id(db))
            self.after_your_take = True
        elif sql == "SELECT" and not locked:
            self._pending.add(id(db))

    async def put_back_if_undone(self):
        """The rival committed: if the learner's transaction undid its take, take it again."""
        from django.db.models import F

        from tutorial_project.catalog.models import Product

        if self.took and not self.committed:
            await Product.objects.filter(pk=self.product.pk).aupdate(stock=F("stock") - self.took)
            self.committed = True


@contextmanager
def _rival_between_read_and_write(rival, statements):
    """Let ``rival`` watch every statement; use inside ``recorded_statements(statements)``,
    which notes which of them lock (``select_for_update()``, even where SQLite drops it)."""
    from django.db.backends.utils import CursorWrapper

    original = CursorWrapper._execute_with_wrappers

    def watched(self, sql, params, many, executor):
        rival.before(self.db, sql)
        result = original(self, sql, params, many, executor)
        if not many and statements and statements[-1] == sql:
            if sql.lstrip()[:6].upper() == "UPDATE" and not self.cursor.rowcount:
                return result  # changed no row: locked nothing
            rival.after(self.db, statements[-1])
        return result

    CursorWrapper._execute_with_wrappers = watched
    try:
        yield rival
    finally:
        CursorWrapper._execute_with_wrappers = original


RIVALS = (  # what another request leaves of the stock it finds: it takes 1, or all but 1
    lambda stock: stock - 1,
    lambda stock: 1,
)
NOT_YOURS = "not the stock left right after its own take"
LEFT_HINT = (
    "return the stock as your own take left it: read it back inside the same transaction as "
    "the take (the row stays locked until the commit), or compute it from the row you read "
    "with select_for_update() in that transaction; a stock read before the take, or after it "
    "outside the transaction, tells the buyer a number that was never true for them"
)
PG_HINT = (
    "SQLite lets it pass because this project's transactions begin with BEGIN IMMEDIATE (one "
    "writer at a time); PostgreSQL lets another transaction commit between your read and your "
    "write. Decide on a read made with select_for_update() inside atomic() (a plain read from "
    "before the lock is stale), and use what that read returned in the same outermost "
    "atomic() block (the lock lasts until that block ends: a write in a second atomic() "
    "block is unprotected); or let the "
    "database check and take in one statement: "
    "filter(sku=sku, stock__gte=quantity).update(stock=F('stock') - quantity), and raise "
    "OutOfStock if it changed no row. A lock in Python (asyncio.Lock, threading.Lock) does not "
    "help: it holds inside one process, and the other request may come from another uvicorn "
    "worker or another server; only the database can lock the row for all of them"
)


async def _reserve_with_a_rival(reserve, product, leave, start=5, wanted=2):
    """Reserve ``wanted`` of ``start`` while another request's take lands after the
    learner's first unlocked read of the row; what went wrong on PostgreSQL, or ""."""
    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product
    from tutorial_project.course.exercises.lesson04 import as_a_request, recorded_statements

    await Product.objects.filter(pk=product.pk).aupdate(stock=start)
    rival = _Rival(product, leave)
    with recorded_statements() as statements, _rival_between_read_and_write(rival, statements):
        outcome = await _outcome(as_a_request(reserve, CHECK_SKU, wanted))
    await rival.put_back_if_undone()
    stock = await _stock_now(product)
    before_yours = start if rival.after_your_take else start - rival.took
    if isinstance(outcome, OutOfStock) and before_yours < wanted and stock == before_yours:
        return ""
    if (not isinstance(outcome, Exception) and stock == start - rival.took - wanted >= 0
            and outcome == before_yours - wanted):
        return ""
    if rival.after_your_take and not isinstance(outcome, Exception):
        return (f"with {start} in stock, your take of {wanted} left {before_yours - wanted}; "
                f"another request then took {rival.took} before your next statement (outside "
                f"a transaction PostgreSQL lets it commit there), and yours returned "
                f"{outcome!r}, {NOT_YOURS}")
    if not isinstance(outcome, Exception) and stock == before_yours - wanted >= 0:
        return (f"with {start} in stock, another request took {rival.took}, then yours took "
                f"{wanted} and left {stock}, yet returned {outcome!r}, {NOT_YOURS}")
    if isinstance(outcome, OutOfStock):
        yours = (f"raised OutOfStock though {before_yours} were left" if before_yours >= wanted
                 else f"raised OutOfStock, and the stock is {stock}, not {before_yours}")
    elif isinstance(outcome, Exception):
        yours = f"raised {type(outcome).__name__}: {outcome}" + (
            " (a 500 for the client, where OutOfStock would answer 409)"
            if type(outcome).__name__ == "IntegrityError" else "")
    elif before_yours < wanted and stock == before_yours:
        yours = (f"took nothing (the stock is still {stock}), yet answered success (returned "
                 f"{outcome!r}): its write changed no row (a conditional update() that "
                 "matched none?) and it answered as if it had. update() returns how many rows "
                 "it changed: raise OutOfStock when it is 0")
    elif before_yours < wanted:
        yours = (f"still took {wanted} of the {before_yours} left (returned {outcome!r}), and "
                 f"the stock is {stock}: it sold items that were gone")
    else:
        yours = (f"took {wanted} (returned {outcome!r}), and the stock is {stock}, not "
                 f"{before_yours - wanted}: " + ("the other take was lost, so the same items "
                                                "were sold twice" if stock > before_yours - wanted
                                                else "more went than was sold"))
    if rival.in_the_gap:
        return (f"with {start} in stock, another request took {rival.took} after the "
                f"transaction in which you locked the row had committed, and before your next "
                f"statement on it (a lock lasts only until the end of the outermost atomic() "
                f"block: PostgreSQL lets the other take commit there), and yours {yours}")
    return (f"with {start} in stock, another request took {rival.took} between your read of the "
            f"stock and your next statement, with no lock on the row (PostgreSQL lets it "
            f"commit there), and yours {yours}")


@_hands_over("reserve")
@exercise("12.8", "Reserve stock: no oversell")
async def check_reserve(check, reserve):
    from django.core.exceptions import SynchronousOnlyOperation

    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product
    from tutorial_project.course.exercises.lesson04 import (
        OFF_THREAD_HINT,
        as_a_request,
        recorded_statements,
        slow_reads,
    )

    must_be_async(check, reserve, "reserve", "sku, quantity",
                  hint="async def reserve(sku, quantity): "
                       "return await sync_to_async(a_sync_function)(sku, quantity)")
    async with _a_product_in_stock() as product:
        with recorded_statements() as statements, watching_awaits() as unawaited:
            left = await _outcome(as_a_request(reserve, CHECK_SKU, 2))
        stop_if_unawaited(check, unawaited, "reserve(sku, 2)")
        if isinstance(left, SynchronousOnlyOperation):
            fail(check, f"reserve(sku, 2) raised SynchronousOnlyOperation: {left}",
                 "transaction.atomic() and the sync ORM cannot run in async def, and the "
                 "a-methods inside atomic() would run outside its transaction anyway: put the "
                 "read, the check and the write in one sync function under atomic(), and "
                 "await sync_to_async(that_function)(sku, quantity)")
        if isinstance(left, Exception):
            fail(check, f"reserve(sku, 2) raised {type(left).__name__}: {left}",
                 "take the stock and return what is left")
        # Read from the compiled queries: SQLite drops FOR UPDATE, with its flags and the
        # error for a lock outside a transaction (no has_select_for_update), so it runs these.
        locks = [statement for statement in statements if statement.for_update]
        if any(statement.autocommit for statement in locks):
            fail(check, "its select_for_update() ran outside transaction.atomic(): SQLite drops "
                        "the clause silently, but on PostgreSQL Django raises "
                        "TransactionManagementError ('select_for_update cannot be used outside "
                        "of a transaction') on every call",
                 "open the transaction first and read with select_for_update() inside it, in "
                 "one sync function: with transaction.atomic(): ...")
        if any(statement.lock_fails_fast for statement in locks):
            fail(check, "it locked with select_for_update(skip_locked=True) or (nowait=True): "
                        "SQLite ignores both, but on PostgreSQL a request that finds the row "
                        "locked by another does not wait its turn. With skip_locked, get() skips "
                        "the row and raises DoesNotExist (a 404 for a product in stock); with "
                        "nowait it raises OperationalError ('could not obtain lock on row'), a "
                        "500. Run on PostgreSQL 15 by tests/test_postgres_lesson12.py (after `make "
                        "postgres`): of 20 requests at once for one each of the last 5, fewer "
                        "than 5 reserved (how many depends on how long each request "
                        "holds the lock), and the rest of the stock stayed unsold",
                 "use plain select_for_update(): each request waits for the lock, then reads "
                 "the stock the previous one left (skip_locked is for job queues, where any "
                 "free row will do)")
        check.that(left == 3 and await _stock_now(product) == 3,
                   "reserving 2 of 5 takes 2 and returns the 3 left",
                   f"reserving 2 of 5 returned {left!r}, and the stock is now "
                   f"{await _stock_now(product)}",
                   hint="return the stock left after the write" + (
                       "; on Django < 6.0, save() leaves the F() expression on the instance: "
                       "read the number back with product.refresh_from_db(fields=['stock']) "
                       "(Django 6.0+ reads it back from the UPDATE itself)"
                       if hasattr(left, "resolve_expression") else ""))
        refused = await _outcome(as_a_request(reserve, CHECK_SKU, 4))
        check.that(isinstance(refused, OutOfStock) and await _stock_now(product) == 3,
                   "asking for 4 of the 3 left raises OutOfStock and takes nothing",
                   f"asking for 4 of the 3 left gave {refused!r}, and the stock is now "
                   f"{await _stock_now(product)}",
                   hint="raise OutOfStock (tutorial_project.capstone.stock) when fewer are left, "
                        "before writing anything")
        unknown = await _outcome(as_a_request(reserve, "NO-SUCH-SKU", 1))
        check.that(isinstance(unknown, Product.DoesNotExist),
                   "an unknown SKU raises Product.DoesNotExist",
                   f"an unknown SKU gave {unknown!r}",
                   hint="let Product.objects.get(sku=sku) raise (the view answers 404)")
        await Product.objects.filter(pk=product.pk).aupdate(stock=5)
        with slow_reads():  # each SELECT 20 ms slower: the requests overlap on any machine
            outcomes = await asyncio.gather(
                *(_outcome(as_a_request(reserve, CHECK_SKU, 1)) for _ in range(20)))
        sold = sum(not isinstance(outcome, Exception) for outcome in outcomes)
        others = sorted({type(o).__name__ for o in outcomes
                         if isinstance(o, Exception) and not isinstance(o, OutOfStock)})
        now = await _stock_now(product)
        check.that(
            sold == 5 and now == 0 and not others,
            "20 requests at once for one each of the last 5: 5 reserved, 15 refused, 0 left",
            f"20 requests at once for one each of the last 5: {sold} reserved, stock now {now}"
            + (f", and some raised {', '.join(others)}" if others else ""),
            hint="each request has its own thread: between one request's read and its write "
                 "another reads the same stock. Let one conditional UPDATE check and take it "
                 "(filter(sku=sku, stock__gte=quantity).aupdate(stock=F('stock') - quantity)), "
                 "or read, check and write in one sync function under transaction.atomic(), "
                 "awaited with sync_to_async",
        )
        told = [outcome for outcome in outcomes if not isinstance(outcome, Exception)]
        check.that(
            all(type(left) is int for left in told) and sorted(told) == [0, 1, 2, 3, 4],
            "the 5 reserved were told 4, 3, 2, 1 and 0 left: each the stock after its take",
            f"the 5 requests that reserved one of the last 5 returned {told} as the stock "
            f"left, {NOT_YOURS} (4, 3, 2, 1 and 0, in some order)",
            hint=LEFT_HINT,
        )
        off_thread = any(statement.off_request_thread for statement in statements)
        check.that(not off_thread,
                   "its queries ran on the request's own thread (whose connection Django closes)",
                   "its queries ran on another thread: a connection Django never closes",
                   hint=OFF_THREAD_HINT)
        lost = told_wrong = ""
        for leave in RIVALS:  # until one loses a take or oversells; a wrong number told is
            lost = await _reserve_with_a_rival(reserve, product, leave)  # reported after those
            if lost and NOT_YOURS not in lost:
                break
            told_wrong, lost = told_wrong or lost, ""
        lost = lost or told_wrong
        check.that(
            not lost,
            "it is safe on a model of PostgreSQL, run on SQLite: another request's take, "
            "committed between its read and its write, is neither lost nor oversold",
            f"on PostgreSQL this can happen (modelled on SQLite): {lost}",
            hint=LEFT_HINT if NOT_YOURS in lost else
                 ("the read you checked the quantity against was not locked: another take "
                  "landed after it, and the stock's CHECK (stock >= 0) refused your UPDATE. "
                  "Lock the row first, or check the quantity in the UPDATE itself (catching the "
                  "IntegrityError only hides the race). "
                  if "IntegrityError" in lost else "") + PG_HINT,
        )
        await Product.objects.filter(pk=product.pk).aupdate(stock=5)
        await _refuse_loop_blocking(check, "reserve(sku, 1)",
                                    lambda: as_a_request(reserve, CHECK_SKU, 1))
