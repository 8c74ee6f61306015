"""Checks for lesson 11 · Django 6: AsyncPaginator and the Tasks framework."""

import asyncio
import contextvars
import functools
import gc
import inspect
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from urllib.parse import parse_qsl

from asgiref.sync import sync_to_async
from django.core import paginator as django_paginator
from django.core.exceptions import SynchronousOnlyOperation
from django.db.models import QuerySet
from django.http import JsonResponse
from django.test import AsyncClient, override_settings
from django.utils.module_loading import import_string

from tutorial_project.catalog.models import Product
from tutorial_project.course.exercises.core import NotSolved, exercise
from tutorial_project.course.exercises.expect import (
    _REAL_SLEEP,
    async_unsafe_noted,
    loop_blocking_calls,
    must_be_async,
    sleeps_on_this_thread,
    sync_cache_calls_on_this_thread,
)
from tutorial_project.course.exercises.lesson04 import (
    OFF_THREAD_HINT,
    _request_threads,
    as_a_request,
    guard_switched_off,
    recorded_statements,
)
from tutorial_project.course.exercises.probes import quiet_request_log
from tutorial_project.instruments import stock_report, tasks_api
from tutorial_project.instruments.tasks_api import TaskResultStatus
from tutorial_project.playground import mount, unmount

PER_PAGE = 5


async def _expected_page(number):
    """What Django's own ``Paginator.get_page(number)`` gives: the check's reference."""
    paginator = django_paginator.Paginator(Product.objects.order_by("sku"), PER_PAGE)
    return await sync_to_async(lambda: [p.sku for p in paginator.get_page(number)])()


@contextmanager
def _pages_built():
    """The pages a Paginator (or AsyncPaginator, Django 6.0+) builds in the block.

    One entry per page: True when the paginator was given rows already in memory (a list, or a
    QuerySet already evaluated), so that the page is cut from the whole table.
    """
    built = []
    patched = [(django_paginator.Paginator, "page")]
    if hasattr(django_paginator, "AsyncPaginator"):
        patched.append((django_paginator.AsyncPaginator, "apage"))
    originals = [(cls, name, cls.__dict__[name]) for cls, name in patched]

    def in_memory(paginator):
        rows = paginator.object_list
        return not isinstance(rows, QuerySet) or rows._result_cache is not None

    for cls, name, original in originals:
        if inspect.iscoroutinefunction(original):
            async def counted(self, number, _original=original):
                built.append(in_memory(self))
                return await _original(self, number)
        else:
            def counted(self, number, _original=original):
                built.append(in_memory(self))
                return _original(self, number)
        setattr(cls, name, counted)
    try:
        yield built
    finally:
        for cls, name, original in originals:
            setattr(cls, name, original)


def _named(blocking):
    return ", ".join(sorted(set(blocking)))


def _shape_hint(got):
    """A hint for an answer that is not a list of SKUs yet, or None."""
    if inspect.isawaitable(got):
        if inspect.iscoroutine(got):
            got.close()  # never awaited: close it here, so no RuntimeWarning points at the check
        return "you returned an awaitable: an `await` is missing (aget_page, sync_to_async...)"
    if isinstance(got, QuerySet):
        return "you returned a QuerySet, which queries later, on the event loop: return a list"
    if type(got).__name__ in ("AsyncPage", "Page"):
        return "you returned the page itself: return the SKUs, e.g. `[p.sku async for p in page]`"
    return None


FORGOT_AWAIT_HINT = ("an `await` is missing: an async call (`aget_page()`, "
                     "`aget_object_list()`, a function wrapped by sync_to_async) only makes a "
                     "coroutine, which `await` runs: `page = await paginator.aget_page(number)`, "
                     "`skus = await sync_to_async(skus_of_page)(number)`")


def _close_unawaited(traceback):
    """Close the never-started coroutines the answer's frames hold, so that no "never
    awaited" warning turns up later, in another cell or the next run of the check."""
    while traceback is not None:
        for value in list(traceback.tb_frame.f_locals.values()):
            if (inspect.iscoroutine(value)
                    and inspect.getcoroutinestate(value) == inspect.CORO_CREATED):
                value.close()
        traceback = traceback.tb_next


SYNC_CACHE_HINT = ("with Redis or Memcached each sync cache call waits on the network and "
                   "holds the loop: use the async twins (`await cache.aget(...)`, "
                   "`await cache.aset(...)`)")

PAGE_PROBES = [(1, "page 1"), (2, "the middle page"), (3, "the last page"),
               ("x", "not a number: page 1"),
               (99, "out of range: the last page"),
               (0, "out of range too: get_page(0) gives the last page")]


@exercise("11.1", "One page of the catalog, get_page style")
async def check_page_skus(check, page_skus):
    must_be_async(check, page_skus, "page_skus", "number")
    with warnings.catch_warnings(action="ignore", category=RuntimeWarning):
        gc.collect()  # an earlier run's leftover coroutine must not be blamed on this answer
    # The demo rows were inserted in SKU order, so pk order is SKU order there: a product added
    # last whose SKU sorts first tells an answer ordered by pk (or id) from one ordered by SKU.
    first = await Product.objects.order_by("sku").afirst()
    first.pk, first.sku = None, FIRST_SKU
    await first.asave()
    try:
        with async_unsafe_noted() as unsafe:  # unset for the check, noted if the answer sets it
            await _probe_pages(check, page_skus, unsafe)
            await _count_not_cached(check, page_skus)
    finally:
        await Product.objects.filter(sku=FIRST_SKU).adelete()


FIRST_SKU = "AA-000"


KEPT_RESULT_HINT = ("a page must be read when it is asked for, since products come and go between "
                    "calls: build the paginator and read the page in every call, and keep no "
                    "answers of your own (a dict of pages, lru_cache, the cache)")


async def _probe_pages(check, page_skus, unsafe):
    for number, meaning in PAGE_PROBES:
        expected = await _expected_page(number)
        try:
            with (loop_blocking_calls() as blocking, _pages_built() as built,
                  recorded_statements() as statements,
                  sync_cache_calls_on_this_thread() as cache_calls):
                got = await as_a_request(page_skus, number)
        except SynchronousOnlyOperation:
            _refuse(check, f"page_skus({number!r}) ran a query on the event loop",
                    hint="the sync Paginator queries when it counts, and a page's object_list "
                    "(a lazy QuerySet) when a plain `for` or list() reads it: use AsyncPaginator "
                    "(Django 6.0+) and `[p.sku async for p in page]`, or run the sync "
                    "paginator work in one sync_to_async call")
        except django_paginator.InvalidPage as error:
            _refuse(check, f"page_skus({number!r}) raised {type(error).__name__}: {error}",
                    hint="page() / apage() raise for a bad number; get_page() / aget_page() "
                    "turn it into page 1 (not a number) or the last page (out of range)")
        except (TypeError, AttributeError) as error:
            if "coroutine" in str(error):  # `async for` over aget_page(...), no await
                _close_unawaited(error.__traceback__)
                _refuse(check, f"page_skus({number!r}) raised {type(error).__name__}: {error}",
                        hint=FORGOT_AWAIT_HINT)
            if "AsyncPage" not in str(error):
                raise
            _refuse(check, f"page_skus({number!r}) raised TypeError: {error}",
                    hint="an AsyncPage cannot query when you index it, take its len() or loop "
                    "over it with a plain `for`: `[p.sku async for p in page]`, or "
                    "`await page.aget_object_list()` first")
        guard_switched_off(check, unsafe, hint="use AsyncPaginator (Django 6.0+), or run the "
                           "sync paginator work in one sync_to_async call")
        if cache_calls:
            _refuse(check, f"page_skus({number!r}) called the sync cache on the event loop: "
                    + ", ".join(f"cache.{name}()" for name in cache_calls),
                    hint=SYNC_CACHE_HINT)
        if blocking:
            _refuse(check, f"page_skus({number!r}) made blocking calls on the event loop's "
                    f"thread: {_named(blocking)}",
                    hint="a blocking call (time.sleep under any name, Event.wait, a sync "
                    "client) holds the event loop and every request on it, however short: "
                    "`await asyncio.sleep(...)` if you must wait (here nothing needs to)")
        shape = _shape_hint(got)
        if shape:
            _refuse(check, f"page_skus({number!r}) returned {type(got).__name__}", hint=shape)
        too_long = isinstance(got, list | tuple) and len(got) > PER_PAGE
        check.that(
            isinstance(got, list | tuple) and list(got) == expected,
            f"page_skus({number!r}) ({meaning}) == {expected}",
            f"page_skus({number!r}) returned {got!r}, expected {expected} ({meaning})",
            hint="a page holds at most 5 products: per_page=5 and no `orphans`, which merges "
            "a short last page into the one before it" if too_long
            else "order by sku (not by pk: the check adds a product whose SKU sorts first), "
            "5 per page, and use get_page semantics "
            "(AsyncPaginator.aget_page on Django 6.0+, Paginator.get_page on 5.2), not page()",
        )
        if not built and not statements:
            _refuse(check, f"page_skus({number!r}) ran no query: it returned an answer kept "
                    "from an earlier call", hint=KEPT_RESULT_HINT)
        if not built:
            _refuse(check, f"page_skus({number!r}) built no page with a paginator",
                    hint="the exercise is the paginator's API: let AsyncPaginator.aget_page() "
                    "(Django 6.0+) or Paginator.get_page() in one sync_to_async call pick "
                    "the page, rather than slicing the list yourself")
        if any(built):
            _refuse(check, f"page_skus({number!r}) gave the paginator rows already in memory "
                    "(a list, or a QuerySet already fetched)",
                    hint="give the paginator the unevaluated QuerySet "
                    "(`Product.objects.order_by('sku')`): it then counts with COUNT and fetches "
                    "5 rows with LIMIT, instead of loading the whole table for one page")
        _one_count_one_limit(check, number, statements)
        if any(statement.off_request_thread for statement in statements):
            _refuse(check, f"page_skus({number!r}) ran its queries on a thread other than the "
                    "request's", hint=OFF_THREAD_HINT)


def _one_count_one_limit(check, number, statements):
    """Refuse a page that cost more than a COUNT and one LIMIT query, or a SELECT of the whole
    table (a list() of the QuerySet beside the paginator, a second count...)."""
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    unlimited = [s for s in selects if "COUNT(" not in s.upper() and " LIMIT " not in s.upper()]
    if unlimited or len(selects) > 2:
        _refuse(check, f"page_skus({number!r}) ran {len(selects)} SELECT(s)"
                + (f", {len(unlimited)} of them with no LIMIT (every row read)"
                   if unlimited else ""),
                hint="a page costs a COUNT and one LIMIT query: let the paginator run them "
                "(get_page / aget_page, then the page's rows) and read nothing else, neither "
                "the whole QuerySet nor a count of your own")


ADDED_SKUS = ["ZZ-997", "ZZ-998", "ZZ-999"]  # with AA-000: 16 rows, the last page holds one


async def _count_not_cached(check, page_skus):
    """Products added between two calls must show up: a Paginator kept across calls (at
    module level, say) keeps its count (Paginator.count is a cached_property; AsyncPaginator
    keeps acount()'s answer in an attribute) and cuts the last page short.
    The last page then holds one product, which a paginator with `orphans` merges into the
    page before it."""
    last = await Product.objects.order_by("-sku").afirst()
    for sku in ADDED_SKUS:  # they sort last: they belong on the last pages
        last.pk, last.sku = None, sku
        await last.asave()
    try:
        expected = await _expected_page(99)
        with recorded_statements() as statements:
            got = await as_a_request(page_skus, 99)
    finally:
        await Product.objects.filter(sku__in=ADDED_SKUS).adelete()
    merged = isinstance(got, list | tuple) and len(got) > PER_PAGE
    if not statements:  # the answer's own memo, not a paginator's count
        _refuse(check, f"after three products added at the end, page_skus(99) returned "
                f"{got!r}, expected {expected}, and ran no query: an answer kept from an "
                "earlier call", hint=KEPT_RESULT_HINT)
    check.that(
        isinstance(got, list | tuple) and list(got) == expected,
        "products added between two calls show up on the last page, one product alone there",
        f"after three products added at the end, page_skus(99) returned {got!r}, expected "
        f"{expected}",
        hint="a page holds at most 5 products: per_page=5 and no `orphans`, which merges a "
        "short last page into the one before it" if merged else
        "a paginator counts its objects once and keeps the count (Paginator's `count` is a "
        "cached_property, AsyncPaginator keeps what `acount()` found): build the paginator "
        "inside page_skus, once per call, not once for the module",
    )


EXPECTED_CHOICES = {
    "show the product's price in the page": (
        "await",
        "the response needs the price: the view must wait for it",
    ),
    "send the order confirmation email": (
        "task",
        "the customer should not wait for a mail server",
    ),
    "rebuild the sales report, which takes two minutes": (
        "task",
        "no request should take minutes: enqueue it and let a worker run it",
    ),
    "check the customer's credit before accepting the order": (
        "await",
        "the answer decides the response (accepted or refused)",
    ),
    "tell the warehouse about the order, whose API is often slow": (
        "task",
        "the response does not need the warehouse's answer; enqueue it with on_commit, or "
        "inside the transaction if the queue lives in the order's database",
    ),
}
JOBS = list(EXPECTED_CHOICES)


@exercise("11.2", "A task, or await it in the view?")
async def check_task_or_await(check, choices):
    check.that(
        isinstance(choices, dict),
        "choices is a dict",
        f"choices is a {type(choices).__name__}",
        hint='map each job to "task" or "await"',
    )
    if choices and all(value is Ellipsis for value in choices.values()):
        raise NotSolved
    missing = [job for job in JOBS if job not in choices]
    check.that(not missing, "every job has an answer", f"no answer for {missing}",
               hint="use the jobs exactly as printed above, as the dict's keys")
    for job, (answer, why) in EXPECTED_CHOICES.items():
        given = choices.get(job)
        check.that(
            given == answer,
            f"{job}: {answer} ({why})",
            f"{job}: you chose {given!r}",
            hint=f'it is "{answer}": {why}' if given in ("task", "await") else
            'answer "task" or "await" for this job',
        )


SYNC_ENQUEUE_REFUSED = "a database-backed queue cannot enqueue() on the event loop: use aenqueue()"


class _DatabaseLikeQueue(import_string(tasks_api.DUMMY)):
    """Stores tasks as DummyBackend does, but refuses a sync enqueue() on the event loop.

    A queue that keeps tasks in a database (django-tasks-db, for one) writes them with the sync
    ORM in enqueue(), which raises SynchronousOnlyOperation on the event loop's thread.
    """

    def enqueue(self, task, args, kwargs):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            if _request_threads and threading.get_ident() not in _request_threads:
                _off_thread_enqueues.append(task.name)  # its connection would never be closed
            return super().enqueue(task, args, kwargs)
        raise SynchronousOnlyOperation(SYNC_ENQUEUE_REFUSED)

    def get_result(self, result_id):  # refresh(), get_result(): a poll
        _lookups.append(result_id)
        return super().get_result(result_id)

    async def aget_result(self, result_id):  # arefresh(), aget_result(): a poll
        _lookups.append(result_id)
        return await super().aget_result(result_id)


# What a failed enqueue says: the server's own details, which a client must not be shown.
DOWN_DETAIL = "queue-db.internal:5432"
DOWN_ERROR = ConnectionError.__name__


class _QueueDown(import_string(tasks_api.DUMMY)):
    """A queue that cannot be reached: every enqueue fails, as when its database is down."""

    def enqueue(self, task, args, kwargs):
        _down_attempts.append(task.name)
        raise ConnectionError(f"could not connect to the task queue at {DOWN_DETAIL}")


class _StoredThenFails(import_string(tasks_api.DUMMY)):
    """Stores the job, then raises: a task_enqueued receiver that fails (lesson 11's audit)."""

    def enqueue(self, task, args, kwargs):
        result = super().enqueue(task, args, kwargs)
        _stored_then_failed.append(result.id)
        raise RuntimeError("the audit log is down")


# The enqueues that ran on a thread other than the request's (sync_to_async(...,
# thread_sensitive=False), to_thread, run_in_executor): told by lesson 04's list of the running
# requests' threads, since run_in_executor carries no contextvar to its thread.
_off_thread_enqueues = []
# The results a view looked up (a poll: arefresh(), aget_result()...), and the asyncio.sleep()
# calls made in a request the check is making (its child asyncio tasks included).
_lookups = []
_sleeps_in_request = []
_down_attempts = []  # the enqueues tried on the queue that is down
_stored_then_failed = []  # the jobs stored by the backend that raises after storing
# A bounded retry of an enqueue that failed before storing anything (ConnectionError) passes:
# at most this many tries in all (Celery's default publish retry_policy: 1 + 3 retries).
MOST_TRIES_WHEN_DOWN = 4
_in_request = contextvars.ContextVar("lesson11_in_request", default=False)


# A view is late when it takes far longer than a plain aenqueue() in the same run: 10 times,
# never less than 0.2 s, and never more than 0.28 s, so that a view that waits 0.3 s after its
# enqueue (a sync helper in sync_to_async, a to_thread call) is late on any machine. The
# reference request takes about 6 ms (2 cores, load 9; rarely 150 ms), and a late answer is
# timed twice more, the fastest of the three counting.
LATE_FACTOR = 10
LATE_FLOOR = 0.2
LATE_CAP = 0.28
PROBE_QUEUE = {"default": {"BACKEND": f"{__name__}._DatabaseLikeQueue"}}
DOWN_QUEUE = {"default": {"BACKEND": f"{__name__}._QueueDown"}}
STORED_THEN_FAILS = {"default": {"BACKEND": f"{__name__}._StoredThenFails"}}
RUNS_AT_ONCE = {"default": {"BACKEND": tasks_api.IMMEDIATE}}  # its results are SUCCESSFUL
# A request that has not answered after this long is stopped (it waits for a job that, on a
# real queue, a worker elsewhere runs: a poll loop in the view never ends).
NO_ANSWER_SECONDS = 10
# When the queue is down the view must answer a 5xx soon: its retries' asyncio.sleep() calls
# may total BACKOFF_SECONDS, and the request is stopped after DOWN_ANSWER_SECONDS (a right
# answer takes milliseconds, rarely 0.2 s on 2 loaded cores; a stopped request is tried once
# more, so one stall under load refuses nothing).
BACKOFF_SECONDS = 1
DOWN_ANSWER_SECONDS = 3


class _NoAnswer(Exception):
    """The view did not answer within NO_ANSWER_SECONDS: the check stopped the request."""


def _arguments(result):
    """The enqueued call's arguments by name, however they were passed; None if they don't fit."""
    try:
        bound = inspect.signature(result.task.func).bind(*result.args, **result.kwargs)
    except TypeError:
        return None
    return dict(bound.arguments)


def _json(response):
    try:
        return response.json()
    except ValueError:
        return None




async def _request(path, method="GET"):
    """One request in its own ThreadSensitiveContext, as ASGIHandler runs a request. A POST
    sends the query string's fields as form fields (request.POST), on the bare path."""
    _in_request.set(True)
    if method == "POST":
        route, _, query = path.partition("?")
        fields = dict(parse_qsl(query, keep_blank_values=True))
        return await as_a_request(AsyncClient().post, route, fields)
    return await as_a_request(AsyncClient().get, path)


@contextmanager
def _asyncio_sleeps():
    """Note each asyncio.sleep(seconds > 0) made in a request the check makes, however the
    view names it (``from asyncio import sleep`` too): it is the only caller of
    ``loop.call_later`` with ``futures._set_result_unless_cancelled``."""
    loop = asyncio.get_running_loop()
    original = loop.call_later

    def call_later(delay, callback, *args, **kwargs):
        if callback is asyncio.futures._set_result_unless_cancelled and _in_request.get():
            _sleeps_in_request.append(delay)
        return original(delay, callback, *args, **kwargs)

    loop.call_later = call_later
    try:
        yield _sleeps_in_request
    finally:
        del loop.call_later  # the class's method again


@contextmanager
def _waits_off_the_loop():
    """What a request the check makes waited for without holding the loop: each time.sleep run
    in a thread it handed work to (run_in_executor, asyncio.to_thread, sync_to_async all go
    through ``loop.run_in_executor``), and each timer of its own that ran out (wait_for,
    asyncio.timeout). asyncio.sleep is left to _asyncio_sleeps; a deadline that never ran out
    (``wait_for(task.aenqueue(...), 5)``) is no wait."""
    loop, waits = asyncio.get_running_loop(), []
    noted = "time.sleep in a thread (run_in_executor, to_thread, sync_to_async)"

    def hands_sleep(func, depth=0):  # time.sleep itself, maybe in partials (to_thread, asgiref)
        if func is _REAL_SLEEP:
            return True
        if isinstance(func, functools.partial) and depth < 4:
            return any(hands_sleep(part, depth + 1) for part in (func.func, *func.args))
        return False

    def watched(func):
        def run(*args):
            def hook(frame, event, arg):  # a sync helper's own time.sleep (Python calls C)
                if event == "c_call" and arg is _REAL_SLEEP:
                    waits.append(noted)
            if hands_sleep(func) or any(hands_sleep(arg) for arg in args):
                waits.append(noted)
            sys.setprofile(hook)
            try:
                return func(*args)
            finally:
                sys.setprofile(None)
        return run

    def run_in_executor(executor, func, *args):
        if _in_request.get():
            func = watched(func)
        return type(loop).run_in_executor(loop, executor, func, *args)

    def call_at(when, callback, *args, **kwargs):
        delay = when - loop.time()
        if (_in_request.get() and delay > 0.01
                and callback is not asyncio.futures._set_result_unless_cancelled):
            real_callback = callback

            def callback(*args):
                waits.append(f"a {delay:.2g} s timeout that ran out (wait_for, asyncio.timeout)")
                return real_callback(*args)
        return type(loop).call_at(loop, when, callback, *args, **kwargs)

    loop.run_in_executor, loop.call_at = run_in_executor, call_at
    try:
        yield waits
    finally:
        del loop.run_in_executor, loop.call_at  # the class's methods again


PARTIAL_ROBUST_NOTE = (
    "  note: when the queue was down, your on_commit(partial(...), robust=True) callback "
    "raised AttributeError, not the ConnectionError: Django before 6.1 reads the callback's "
    "__qualname__ to log the error, and a partial has none (fixed in Django 6.1, ticket "
    "#36487). The check accepts the 500, but robust=True protected nothing: before 6.1 give "
    "on_commit a def or a lambda")


def _partial_broke_robust(error):
    """Whether ``error`` is Django 5.2's robust on_commit failing on a partial's missing
    __qualname__ (BaseDatabaseWrapper.run_and_clear_commit_hooks and on_commit, before 6.1)."""
    while error is not None:
        if isinstance(error, AttributeError) and "__qualname__" in str(error) and (
                "partial" in str(error)):
            return True
        error = error.__cause__ or error.__context__
    return False


async def _probe(view, suffix="", method="GET", timeout=None):
    """(response, exception, seconds): the view's answer, or what it raised, and how long.

    A request that does not answer within ``timeout`` (NO_ANSWER_SECONDS) is cancelled:
    _NoAnswer."""
    route = "exercise-11-3/"
    mount(route, view)
    started = time.perf_counter()
    request = asyncio.ensure_future(_request(f"/{route}{suffix}", method))
    try:
        done, _ = await asyncio.wait({request}, timeout=timeout or NO_ANSWER_SECONDS)
        if not done:
            request.cancel()
            await asyncio.wait({request}, timeout=NO_ANSWER_SECONDS)
            return None, _NoAnswer(), time.perf_counter() - started
        return request.result(), None, time.perf_counter() - started
    except Exception as error:  # the learner's view failed: the check turns it into a hint
        return None, error, time.perf_counter() - started
    finally:
        unmount(route)


@contextmanager
def _enqueued():
    """Every TaskResult enqueued in the block, whichever context or thread enqueued it.

    Backends are held per context (an asgiref Local with thread_critical=False): a backend
    first used inside a child asyncio task (gather, create_task, wait_for on Python 3.11) is
    not the one this check's context sees. The task_enqueued signal reaches every receiver.
    """
    results = []

    def record(sender, task_result, **kwargs):
        results.append(task_result)

    tasks_api.task_enqueued.connect(record, weak=False)
    try:
        yield results
    finally:
        tasks_api.task_enqueued.disconnect(record)


@contextmanager
def _report_runs():
    """Count the runs of build_stock_report's function (acall(), call(), .func()) in the block."""
    report = stock_report.build_stock_report
    original = report.func
    runs = []

    @functools.wraps(original)
    async def counted(*args, **kwargs):
        runs.append(args or kwargs)
        return await original(*args, **kwargs)

    object.__setattr__(report, "func", counted)  # a frozen dataclass: the check's own patch
    try:
        yield runs
    finally:
        object.__setattr__(report, "func", original)


async def _reference_view(request):
    """What the answer's timing is compared with: validate, aenqueue, answer 202."""
    fields = request.POST if request.method == "POST" else request.GET
    result = await stock_report.build_stock_report.aenqueue(fields["category"])
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def _baseline_seconds(method):
    """The fastest of three reference requests, in this run, on this (loaded) machine."""
    times = []
    for _ in range(3):
        *_, seconds = await _probe(_reference_view, "?category=coffee", method)
        times.append(seconds)
    return min(times)


async def _method(view):
    """GET, or POST for a view that answers a GET without a category with 405 (require_POST)."""
    response, _, _ = await _probe(view)
    return "POST" if response is not None and response.status_code == 405 else "GET"


def _refuse(check, failed, hint):
    """End the check with ``failed`` and ``hint`` (for guards that print nothing when fine)."""
    check.that(False, "", failed, hint=hint)


def _failure_hint(failure):
    if SYNC_ENQUEUE_REFUSED in failure:
        return ("a sync enqueue() ran on the event loop: in an async view use "
                "`await task.aenqueue(...)`")
    if "SynchronousOnlyOperation" in failure:
        return ("a sync ORM call (`.exists()`, `.get()`, `.count()`, a plain `for` over a "
                "QuerySet) ran on the event loop: use its async twin "
                "(`await Category.objects.filter(...).aexists()`)")
    if "AsyncToSync" in failure:
        return ("async_to_sync() was called on the event loop: in an async view await the "
                "coroutine itself")
    return "see the error: the view must answer, not raise"


@exercise("11.3", "Hand the report to a task")
async def check_start_report_view(check, view):
    must_be_async(check, view, "start_report_view", "request", kind="view")
    with warnings.catch_warnings(action="ignore", category=RuntimeWarning):
        gc.collect()  # an earlier run's leftover coroutine must not be blamed on this answer
    with (override_settings(TASKS=PROBE_QUEUE), quiet_request_log(),
          warnings.catch_warnings(record=True) as caught, sleeps_on_this_thread() as sleeps):
        warnings.simplefilter("always")
        method = await _method(view)
        baseline = await _baseline_seconds(method)
        probe = functools.partial(_probe, method=method)
        fields = f"request.{method}"  # where the view reads the category, for the hints
        late = min(LATE_CAP, max(LATE_FLOOR, LATE_FACTOR * baseline))
        _off_thread_enqueues.clear()
        _lookups.clear()
        _sleeps_in_request.clear()
        _down_attempts.clear()
        _stored_then_failed.clear()
        with (_enqueued() as enqueued, _report_runs() as runs, _asyncio_sleeps(),
              recorded_statements() as statements):
            response, error, seconds = await probe(view, "?category=coffee")
            sums = [s for s in statements if "SUM(" in s.upper() and "catalog_product" in s]
            queued = list(enqueued)
            lookups = len(_lookups)  # in this one request (the later probes poll too)
            hung = isinstance(error, _NoAnswer)
            if not hung:  # each probe of a view that never answers costs NO_ANSWER_SECONDS
                bad, _, _ = await probe(view)
                queued_after_bad = len(enqueued) - len(queued)
                empty, _, _ = await probe(view, "?category=")
                queued_after_empty = len(enqueued) - len(queued) - queued_after_bad
                blank, _, _ = await probe(view, "?category=%20%20")
                queued_after_blank = (len(enqueued) - len(queued) - queued_after_bad
                                      - queued_after_empty)
                before_padded = len(enqueued)
                await probe(view, "?category=%20coffee%20")
                padded = [_arguments(result) for result in enqueued[before_padded:]]
                for _ in range(2):  # a stall under load, or late?
                    if seconds <= late or response is None:
                        break
                    _, _, again = await probe(view, "?category=coffee")
                    seconds = min(seconds, again)
        off_thread = list(_off_thread_enqueues)
        queried_off_thread = any(statement.off_request_thread for statement in statements)
        waits = [f"asyncio.sleep({seconds:g})" for seconds in _sleeps_in_request]
        if lookups:
            waits.append(f"{lookups} lookup(s) of the job (arefresh(), aget_result())")
        if not hung:
            with (override_settings(TASKS=DOWN_QUEUE),  # the enqueue fails: what does it say?
                  _asyncio_sleeps() as backoff):
                for _ in range(2):  # stopped once: a stall under load, or a long backoff?
                    _down_attempts.clear()
                    backoff.clear()
                    down, down_error, _ = await probe(view, "?category=coffee",
                                                      timeout=DOWN_ANSWER_SECONDS)
                    down_hung = isinstance(down_error, _NoAnswer)
                    backed_off = sum(backoff)
                    if not down_hung or backed_off > BACKOFF_SECONDS:
                        break
                backoff.clear()
            partial_not_robust = _partial_broke_robust(down_error)
            down_error = None
            # The job is stored, then the enqueue raises: a retry would queue it twice.
            with override_settings(TASKS=STORED_THEN_FAILS):
                after_store, _, _ = await probe(view, "?category=coffee")
            # A backend that runs the task at once: the status must be read from the result.
            with (override_settings(TASKS=RUNS_AT_ONCE), tasks_api.captured_log(),
                  _enqueued() as enqueued_at_once):
                ran, _, _ = await probe(view, "?category=coffee")
            # Untimed (the profile hook slows the loop): every blocking call, however short.
            with (loop_blocking_calls() as blocking, sync_cache_calls_on_this_thread() as
                  cache_calls, _waits_off_the_loop() as waited, _enqueued() as enqueued_last):
                await probe(view, "?category=coffee")
            waits += waited
            # Every request for ?category=coffee must enqueue once, whatever the backend says.
            extra = {"on a backend that runs the task at once": len(enqueued_at_once),
                     "in a second request": len(enqueued_last),
                     "after an error raised once the job was stored":
                         len(_stored_then_failed)}
            twice = {where: count for where, count in extra.items() if count > 1}
        failure = f"{type(error).__name__}: {error}" if error and not hung else None
        error = _ = None  # drop the tracebacks, so that a never-awaited coroutine is collected
        gc.collect()  # now and its warning caught here, not shown in the notebook
    if hung:
        _refuse(check, f"?category=coffee got no answer within {NO_ANSWER_SECONDS} s: the "
                "check stopped the request", hint="the view waits for the job (a loop on "
                "`arefresh()` until it is finished?): on a real queue a worker elsewhere runs "
                "it, whenever it can. Answer 202 with the id at once; the client polls a "
                "status view")
    never_awaited = [w for w in caught if "never awaited" in str(w.message)]
    if never_awaited:
        _refuse(check, f"a coroutine was never awaited ({failure or 'no error'})",
                hint="`await stock_report.build_stock_report.aenqueue(...)`: without await "
                "nothing is enqueued")
    if failure:
        _refuse(check, f"?category=coffee raised {failure}", hint=_failure_hint(failure))
    if not hung and cache_calls:
        _refuse(check, "the view called the sync cache on the event loop: "
                + ", ".join(f"cache.{name}()" for name in cache_calls),
                hint=SYNC_CACHE_HINT)
    if sleeps or blocking:
        named = _named(["time.sleep"] * len(sleeps) + blocking)
        _refuse(check, f"the view made blocking calls on the event loop's thread: {named}",
                hint="a blocking call (time.sleep under any name, Event.wait, a sync client) "
                "holds the event loop, and every request on it, however short; a view that "
                "hands the work to a task has nothing to wait for")
    if queried_off_thread:  # review 11-s32c: a category check in asyncio.to_thread passed
        _refuse(check, "the view ran queries on a thread other than the request's",
                hint=OFF_THREAD_HINT)
    if off_thread:
        _refuse(check, "the view enqueued on a thread other than the request's "
                "(a database-backed queue writes the job with the ORM there)",
                hint=OFF_THREAD_HINT.replace("`sync_to_async(that_function)(...)`",
                                             "`await task.aenqueue(...)`"))
    if runs or sums:
        _refuse(check, "the report itself ran in the web server's process, not on a worker " + (
                    f"({len(runs)} time(s))" if runs else "(its SUM query on catalog_product)"),
                hint=("`acall()`, `call()` or calling the function runs the report now, in the "
                      "request (the client waits) or in an asyncio task the server's loop runs "
                      "after it (lost if the process stops)"
                      if runs else "the report's totals computed in the view (aaggregate(Sum"
                      "(...))) are the report's work, done now, and the client waits for it")
                + ": only `await task.aenqueue(slug)` hands it to the queue, and the worker "
                "runs the query")
    if waits:
        _refuse(check, f"the view waited before answering: {', '.join(sorted(set(waits)))}",
                hint="after `await task.aenqueue(...)` answer 202 at once: a sleep or a poll "
                "in the view keeps the client waiting for a job a worker runs whenever it "
                "can, which is what a task avoids; the client polls a status view instead")
    if not queued and response is not None and response.status_code == 400:
        sent = ("`category=coffee` as a form field (request.POST), not a JSON body"
                if method == "POST" else "`?category=coffee` in the query string (request.GET)")
        _refuse(check, f"your view answered 400 to a {method} with {sent}, and enqueued "
                "nothing", hint=f"the check sends {sent}: read the category from {fields}")
    check.that(len(queued) == 1, "one task enqueued for ?category=coffee",
               f"{len(queued)} tasks enqueued for ?category=coffee",
               hint="enqueue the task once, with `await task.aenqueue(slug)`; an `except` "
               "that hides a failed enqueue hides a lost job")
    if not hung and (down_hung or len(_down_attempts) > MOST_TRIES_WHEN_DOWN
                     or backed_off > BACKOFF_SECONDS):
        tries = ", ".join([f"{len(_down_attempts)} tries"]
                          + ([f"asyncio.sleep() for {backed_off:g} s in all"]
                             if backed_off > BACKOFF_SECONDS else [])
                          + ([f"no answer within {DOWN_ANSWER_SECONDS} s"] if down_hung else []))
        _refuse(check, f"when the queue was down, the view kept retrying: {tries}",
                hint=f"retry a failed enqueue a few times at most ({MOST_TRIES_WHEN_DOWN} tries "
                f"in all passes), with a short backoff ({BACKOFF_SECONDS} s in all at most), "
                "then answer a 5xx: a queue that is down stays down longer than a client waits")
    check.that(not twice, "one enqueue per request, on every backend the check used",
               "; ".join(f"{count} enqueues {where}" for where, count in twice.items()),
               hint="call aenqueue() once per request and answer from that result: a second "
               "enqueue queues the job twice (a status other than READY means the backend ran "
               "or started it). Retry only an error most likely raised before the job was stored "
               "(a ConnectionError from the queue), a few times; any other error may follow the "
               "store (a task_enqueued receiver that raised, as here: the job was stored): "
               "answer a 5xx and let the client's retry, with its idempotency key, decide")
    result = queued[0]
    check.that(
        down is None or not 200 <= down.status_code < 300,
        "when the enqueue fails, the view does not claim the job was accepted",
        f"when the queue was down, the view still answered {getattr(down, 'status_code', '')}",
        hint="an `except` that turns a failed enqueue into a 2xx loses the job and tells the "
        "client it is coming: let the error through (a 500), or answer 503 with a JSON error",
    )
    check.that(
        down is None or 500 <= down.status_code < 600,
        "when the queue is down: a 5xx, the server's failure",
        f"when the queue was down, the view answered {getattr(down, 'status_code', '')}, "
        "not a 5xx",
        hint="the client's request was fine, the server could not take the job: a 4xx tells "
        "the client to change its request, and it will not retry. Let the error through "
        "(a 500), or answer 503 (or 502) with a JSON error; a 5xx invites a retry, and an "
        "enqueue can fail after the job is stored, so the client sends an idempotency key",
    )
    if not hung:  # review 11-s32d: this answer was never read
        check.that(
            after_store is None or 500 <= after_store.status_code < 600,
            "when the enqueue raises after the job was stored: a 5xx as well",
            f"when the enqueue raised after the job was stored, the view answered "
            f"{after_store.status_code if after_store is not None else ''}, not a 5xx",
            hint="an error from aenqueue() is the server's, whenever it came: a 2xx without "
            "a usable id hides it, and a 4xx tells the client its request was wrong. Let it "
            "through (a 500), or answer 503 with a JSON error",
        )
    if not hung and partial_not_robust:
        check.lines.append(PARTIAL_ROBUST_NOTE)
    check.that(
        down is None or (isinstance(_json(down), dict)
                         and DOWN_DETAIL.encode() not in down.content
                         and DOWN_ERROR.encode() not in down.content),
        "when the queue is down: the error let through, or a JSON error in your own words",
        "when the queue was down, the view answered " + (
            f"{down.content[:120]!r}" if down is not None else ""),
        hint="the exception's text names your servers (here the queue's host and port), and "
        "its class names your code: answer a JSON error in your own words, such as "
        "{\"error\": \"the report queue is unavailable\"}, and log the exception for yourself "
        "(logger.exception)",
    )
    check.that(
        getattr(result.task.func, "__wrapped__", result.task.func)
        is stock_report.build_stock_report.func
        and _arguments(result) == {"category_slug": "coffee"},
        "it is build_stock_report('coffee')",
        f"enqueued {result.task.name} with {result.args} {result.kwargs}",
        hint="enqueue stock_report.build_stock_report with the category slug as its argument",
    )
    check.that(
        seconds <= late,
        "it answered at once, without waiting for the job",
        f"it answered after {seconds:.2f} s; the same request with a plain aenqueue() took "
        f"{baseline:.3f} s here",
        hint="after `await task.aenqueue(...)` answer 202 at once: awaiting the job's work, "
        "a sleep or a poll in the view keeps the client waiting, which is what a task avoids",
    )
    body = _json(response)
    check.that(
        response.status_code == 202,
        "answered 202 Accepted",
        f"answered {response.status_code}",
        hint="the work is accepted, not done: JsonResponse(..., status=202)",
    )
    check.that(  # more keys (a status URL, say) are welcome
        isinstance(body, dict) and body.get("id") == result.id
        and body.get("status") == TaskResultStatus.READY,
        "the JSON holds the result's id and its status, READY",
        f"the JSON was {body!r}",
        hint='answer {"id": result.id, "status": result.status} from the TaskResult',
    )
    ran_body = _json(ran)
    check.that(
        isinstance(ran_body, dict) and ran_body.get("status") == TaskResultStatus.SUCCESSFUL,
        "on a backend that runs the task at once, the JSON says SUCCESSFUL: the status is read "
        "from the result",
        "on a backend that runs the task at once (its result SUCCESSFUL), the JSON was "
        f"{ran_body!r}",
        hint="answer the result's own status (`result.status`), not a fixed \"READY\": a "
        "backend may have run or started the job by the time aenqueue() returns",
    )
    check.that(
        bad is not None and bad.status_code == 400 and isinstance(_json(bad), dict),
        "no category: 400 with a JSON error",
        "no category: " + (f"{bad.status_code} {bad.content[:80]!r}" if bad else "it raised"),
        hint=f"check {fields}.get('category') first and answer 400 with a JSON error",
    )
    check.that(
        queued_after_bad == 0,
        "no category: nothing enqueued",
        f"no category: {queued_after_bad} task(s) enqueued for the bad request",
        hint="check the category before you enqueue: a refused request must not leave a job "
        "in the queue (a worker would build a report for no category)",
    )
    check.that(
        empty is not None and empty.status_code == 400 and not queued_after_empty,
        "?category= (empty): 400, nothing enqueued",
        "?category= (empty): " + (f"{empty.status_code}, {queued_after_empty} task(s) "
                                  "enqueued" if empty else "it raised"),
        hint="an empty slug is no category either: test `if not category`, not "
        "`if category is None`",
    )
    check.that(
        blank is not None and blank.status_code == 400 and not queued_after_blank,
        "?category=%20%20 (only spaces): 400, nothing enqueued",
        "?category=%20%20 (only spaces): " + (f"{blank.status_code}, {queued_after_blank} "
                                              "task(s) enqueued" if blank else "it raised"),
        hint=f'spaces name no category either: {fields}.get("category", "").strip()',
    )
    check.that(
        padded == [{"category_slug": "coffee"}],
        "?category=%20coffee%20: the report enqueued for 'coffee', spaces removed",
        f"?category=%20coffee%20: enqueued with {padded}",
        hint="strip the slug once and use the stripped value for the test and for the "
        f"enqueue: `category = {fields}.get(\"category\", \"\").strip()`",
    )


__all__ = ["JOBS", "check_page_skus", "check_start_report_view",
           "check_task_or_await"]
