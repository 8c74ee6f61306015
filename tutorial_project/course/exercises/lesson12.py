"""Checks for lesson 12 · Capstone: an async dashboard. One check per step of the service."""

import asyncio
import inspect
import logging
import time
from contextlib import contextmanager

from django.core.cache import cache
from django.http import JsonResponse

from tutorial_project.course.exercises.core import _StopCheck, exercise
from tutorial_project.course.exercises.expect import must_be_async
from tutorial_project.course.exercises.probes import call_view
from tutorial_project.dashboard.clients import in_process_client
from tutorial_project.instruments.servers import leftovers
from tutorial_project.instruments.streaming import events_in
from tutorial_project.instruments.upstream import FakeUpstream
from tutorial_project.playground import use_middleware

GIVE_UP = 5.0  # a check stops waiting for the learner's code after this long


@contextmanager
def _quiet_request_log():
    # The check's own 502 probe is expected: do not log it as the learner's server error
    # (its route name also changes from run to run).
    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


async def _bounded(check, awaitable, what):
    try:
        async with asyncio.timeout(GIVE_UP):
            return await awaitable
    except TimeoutError:
        check.that(False, "", f"{what} had no result after {GIVE_UP:.0f} s",
                   hint="bound every upstream call with a budget (fetch_source has one)")


@exercise("12.1", "Read the catalog with the async ORM")
async def check_catalog_summary(check, catalog_summary):
    must_be_async(check, catalog_summary, "catalog_summary", "")
    from tutorial_project.catalog.models import Category, Product  # needs the project started

    expected = {
        "products": await Product.objects.acount(),
        "in_stock": await Product.objects.filter(stock__gt=0).acount(),
        "categories": await Category.objects.acount(),
    }
    try:
        got = await catalog_summary()
    except Exception as error:  # SynchronousOnlyOperation, most likely
        check.that(False, "", f"it raised {type(error).__name__}: {error}",
                   hint="in async code use the a-methods: await Product.objects.acount()")
    check.that(got == expected, "it counts products, products in stock and categories",
               f"it returned {got!r}, expected {expected!r}",
               hint="stock__gt=0 selects the products in stock")


@exercise("12.2", "Fan out to three sources; one failure is not a crash")
async def check_gather_sources(check, gather_sources):
    must_be_async(check, gather_sources, "gather_sources", "client, modes=None")
    async with in_process_client() as client:
        try:
            data, errors = await _bounded(check, gather_sources(client), "a healthy fan-out")
        except _StopCheck:
            raise
        except Exception as error:
            check.that(False, "", f"with healthy sources it raised {type(error).__name__}: {error}")
        check.that(
            set(data) == {"weather", "stocks", "news"} and all(data.values()) and errors == {},
            "healthy sources: three widgets, no errors",
            f"healthy sources gave data={data!r}, errors={errors!r}",
        )
        modes = {"news": "hang", "stocks": "fail"}
        started = time.perf_counter()
        try:
            data, errors = await _bounded(check, gather_sources(client, modes), "a hanging news")
        except _StopCheck:
            raise
        except Exception as error:
            check.that(False, "", f"with failing sources it raised {type(error).__name__}: {error}",
                       hint="catch SourceError for each source and return it: a failure must "
                            "not escape gather (or use return_exceptions=True)")
        took = time.perf_counter() - started
    check.that(
        data.get("weather") and data.get("news") is None and data.get("stocks") is None,
        "the healthy source is kept, the failed ones are None",
        f"with news hanging and stocks failing it gave data={data!r}",
    )
    kinds = {name: error.get("error") for name, error in errors.items()}
    check.that(kinds == {"news": "timeout", "stocks": "bad_status"},
               "errors says why: news timed out, stocks answered 500",
               f"errors was {errors!r}", hint="errors[name] = error.as_json()")
    check.that(took < 2.0, "a hanging source costs its budget, not forever",
               f"it took {took:.1f} s", hint="call fetch_source: it bounds each call")


@exercise("12.3", "Cache: cold once, warm after")
async def check_cached(check, cached):
    must_be_async(check, cached, "cached", "key, compute, seconds=30")
    await cache.adelete("exercise-12-3")
    calls = []

    async def compute():
        calls.append(1)
        return {"answer": 42}

    first = await cached("exercise-12-3", compute)
    second = await cached("exercise-12-3", compute)
    check.that(first == second == {"answer": 42}, "both calls give the computed value",
               f"the calls gave {first!r} and {second!r}", hint="return the value in both cases")
    check.that(len(calls) == 1, "the second call was served from the cache",
               f"compute() ran {len(calls)} times for the same key",
               hint="await cache.aget(key) first; after computing, "
                    "await cache.aset(key, value, seconds)")
    stored = await cache.aget("exercise-12-3")
    check.that(stored == {"answer": 42}, "the value is in Django's cache",
               "the value is not in django.core.cache.cache",
               hint="use Django's cache (from django.core.cache import cache), not a dict")
    await cache.adelete("exercise-12-3")


@exercise("12.4", "Stream progress as each source arrives")
async def check_dashboard_events(check, dashboard_events):
    check.that(inspect.isasyncgenfunction(dashboard_events),
               "dashboard_events is an async generator",
               "dashboard_events is not an async generator",
               hint="`async def dashboard_events(client):` with `yield sse_event(...)` inside")
    # Far-apart latencies, so "as soon as it arrives" is visible even on a busy machine.
    upstream = FakeUpstream({"/weather": (0.05, {"w": 1}), "/stocks": (0.1, {"s": 1}),
                             "/news": (0.45, {"n": 1})})

    started, events = time.perf_counter(), []
    async with in_process_client(upstream) as client, asyncio.timeout(GIVE_UP):
        async for chunk in dashboard_events(client):
            events.append((time.perf_counter() - started, chunk))
    check.that(events and all(isinstance(chunk, str) for _, chunk in events),
               "it yields text", f"it yielded {[chunk for _, chunk in events][:2]!r}",
               hint="yield sse_event(data, event=...) strings")
    text = "".join(chunk for _, chunk in events)
    parsed = events_in(text)
    names = [event for event, _ in parsed]
    check.that(names[-1:] == ["done"] and names.count("source") == 3,
               "three `source` events, then `done`", f"the events were {names}",
               hint='yield sse_event({"source": name, "data": data}, event="source"), '
                    'then sse_event(..., event="done")')
    first, last = events[0][0], events[-1][0]
    check.that(last - first > 0.2, "the first event left before the slowest source answered",
               "every event left at the same moment: the client waited for all sources",
               hint="asyncio.as_completed(...) gives each result as soon as it is ready")



@exercise("12.5", "An async-only middleware")
async def check_middleware(check, middleware_factory):
    check.that(
        getattr(middleware_factory, "async_capable", False)
        and not getattr(middleware_factory, "sync_capable", True),
        "it is async-only (async_capable, not sync_capable)",
        "Django would treat it as sync (or both): it may adapt it through a thread",
        hint="decorate the factory with @async_only_middleware (django.utils.decorators)",
    )

    async def ok(request):
        return JsonResponse({"ok": True})

    async def broken(request):
        return JsonResponse({"error": "upstream down"}, status=502)

    async def own(request):
        response = JsonResponse({"partial": True})
        response["Cache-Control"] = "no-store"
        return response

    with use_middleware(middleware_factory), _quiet_request_log():
        answers = {name: await call_view(view) for name, view in
                   [("ok", ok), ("broken", broken), ("own", own)]}
    got = {name: r.headers.get("Cache-Control") for name, r in answers.items()}
    check.that(got["ok"] == "max-age=30", "a 200 gets Cache-Control: max-age=30",
               f"a 200 got Cache-Control {got['ok']!r}")
    check.that(got["broken"] == "no-store", "an error gets Cache-Control: no-store",
               f"a 502 got Cache-Control {got['broken']!r}",
               hint="anything but 200 must not be kept by a browser")
    check.that(got["own"] == "no-store", "a view's own Cache-Control is kept",
               f"a view that set no-store ended with {got['own']!r}",
               hint="if response.has_header('Cache-Control'): leave it")


@exercise("12.6", "A test that catches a bug")
async def check_partial_test(check, test_partial_failure):
    must_be_async(check, test_partial_failure, "test_partial_failure", "client")
    from tutorial_project.capstone.views import dashboard

    async def hides_failures(request):  # the bug: a failed source looks like an empty widget
        response = await dashboard(request)
        if response.status_code == 200:
            import json

            body = json.loads(response.content)
            body = {k: (v if v is not None else {}) for k, v in body.items()}
            body.update(errors={}, partial=False)
            return JsonResponse(body)
        return response

    outcomes = {}
    for name, view in [("correct", dashboard), ("buggy", hides_failures)]:
        client = _ViewClient(view)
        try:
            await _bounded(check, test_partial_failure(client), f"your test on the {name} view")
            outcomes[name] = "passed"
        except AssertionError:
            outcomes[name] = "failed"
    check.that(outcomes["correct"] == "passed", "it passes on the correct view",
               "it fails on the correct view", hint="request ?news=fail and read the JSON")
    check.that(outcomes["buggy"] == "failed", "it fails on a view that hides failures",
               "it also passes on a view that hides the failed source",
               hint='assert body["partial"] is True and body["news"] is None, not just the status')


class _ViewClient:
    """``await client.get("?news=fail")`` on one view, as the learner's test expects."""

    def __init__(self, view):
        self.view = view

    async def get(self, query=""):
        return await call_view(self.view, suffix=query)


@exercise("12.7", "Serve it with uvicorn and load it")
async def check_load_test(check, load_capstone):
    must_be_async(check, load_capstone, "load_capstone", "")
    async with asyncio.timeout(60):  # 100 small requests take a few seconds at most
        result = await load_capstone()
    check.that(hasattr(result, "latencies") and hasattr(result, "concurrency"),
               "it returns a LoadResult", f"it returned {type(result).__name__}",
               hint="return await run_load(url, concurrency=20, requests_per_client=5)")
    check.that(result.url.startswith("http://127.0.0.1:") and "/capstone/" in result.url,
               "it loaded /capstone/ on a real server on 127.0.0.1",
               f"it loaded {result.url!r}",
               hint='load f"{url}/capstone/" with the url that serve_in_process() yields')
    check.that(result.concurrency >= 20, "at least 20 clients at once",
               f"only {result.concurrency} client(s) at once", hint="concurrency=20")
    check.that(result.errors == 0 and len(result.latencies) >= 20,
               "every request answered 200", f"{result.errors} request(s) failed")
    check.that(not leftovers(), "the server has stopped (nothing left behind)",
               f"still running: {leftovers()}",
               hint="load inside `async with serve_in_process() as url:`, which stops it")
