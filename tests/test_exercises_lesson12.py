"""Lesson 12's checks: the reference pieces pass, other right answers pass, placeholders wait,
and the mistakes learners make fail with a hint that says what to change."""

import asyncio
import json
import threading
import time
import warnings
from time import sleep
from urllib.parse import urlencode

import pytest
from django.core.cache import cache
from django.utils.decorators import async_only_middleware, sync_and_async_middleware

from tutorial_project.course.exercises import lesson12


def run(check, answer):
    return asyncio.run(check(answer))


def fails_with(verdict, *hints):
    text = str(verdict)
    assert not verdict and verdict.solved, text
    for hint in hints:
        assert hint in text, f"{hint!r} not in:\n{text}"
    assert "your code raised" not in text, text  # the check explains; it does not just crash


# 12.1 -------------------------------------------------------------------------------------
def test_12_1_reference_passes(project):
    from tutorial_project.capstone.service import catalog_summary

    verdict = run(lesson12.check_catalog_summary, catalog_summary)
    assert verdict, str(verdict)


def test_12_1_one_aggregate_query_also_passes(project):
    from django.db.models import Count, Q

    from tutorial_project.catalog.models import Category, Product

    async def catalog_summary():
        counts = await Product.objects.aaggregate(
            products=Count("pk"), in_stock=Count("pk", filter=Q(stock__gt=0)))
        return {**counts, "categories": await Category.objects.acount()}

    verdict = run(lesson12.check_catalog_summary, catalog_summary)
    assert verdict, str(verdict)


def test_12_1_placeholder_is_not_solved(project):
    assert not run(lesson12.check_catalog_summary, ...).solved


def test_12_1_a_thread_pool_fails_with_a_hint(project):
    from asgiref.sync import sync_to_async

    from tutorial_project.catalog.models import Category, Product

    def summary():
        return {"products": Product.objects.count(),
                "in_stock": Product.objects.filter(stock__gt=0).count(),
                "categories": Category.objects.count()}

    async def catalog_summary():  # right numbers, on a pool thread's never-closed connection
        return await sync_to_async(summary, thread_sensitive=False)()

    fails_with(run(lesson12.check_catalog_summary, catalog_summary), "another thread",
               "thread_sensitive=False")


def test_12_1_sync_orm_fails_with_a_hint(project):
    from tutorial_project.catalog.models import Category, Product

    async def catalog_summary():
        return {"products": Product.objects.count(), "in_stock": 0,
                "categories": Category.objects.count()}

    fails_with(run(lesson12.check_catalog_summary, catalog_summary),
               "SynchronousOnlyOperation", "acount")


def test_12_1_a_wrong_lookup_is_not_blamed_on_the_sync_orm(project):
    from tutorial_project.catalog.models import Category, Product

    async def catalog_summary():  # a FieldError: the a-methods are already there
        return {"products": await Product.objects.acount(),
                "in_stock": await Product.objects.filter(stock__greater=0).acount(),
                "categories": await Category.objects.acount()}

    verdict = run(lesson12.check_catalog_summary, catalog_summary)
    fails_with(verdict, "FieldError", "the error is in your queries")
    assert "use the a-methods" not in str(verdict), str(verdict)


def test_12_1_forgotten_await_fails_with_a_hint_and_no_warning(project):
    from tutorial_project.catalog.models import Category, Product

    async def catalog_summary():
        return {"products": Product.objects.acount(),
                "in_stock": Product.objects.filter(stock__gt=0).acount(),
                "categories": Category.objects.acount()}

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning escaping the check fails this test
        verdict = run(lesson12.check_catalog_summary, catalog_summary)
    fails_with(verdict, "gave a coroutine", "`await` is missing")


def test_12_1_wrong_filter_fails_with_a_hint(project):
    from tutorial_project.catalog.models import Category, Product

    async def catalog_summary():
        return {"products": await Product.objects.acount(),
                "in_stock": await Product.objects.filter(stock__gte=0).acount(),
                "categories": await Category.objects.acount()}

    fails_with(run(lesson12.check_catalog_summary, catalog_summary), "stock__gt=0")


def test_12_1_numbers_copied_from_the_output_fail_with_a_hint(project):
    from tutorial_project.capstone.service import catalog_summary as reference

    copied = asyncio.run(reference())

    async def catalog_summary():
        return dict(copied)

    fails_with(run(lesson12.check_catalog_summary, catalog_summary), "do not return fixed numbers")


def test_12_1_counting_only_categories_with_products_fails_with_a_hint(project):
    from tutorial_project.catalog.models import Category, Product

    async def catalog_summary():  # every demo category has products: equal until one is empty
        return {
            "products": await Product.objects.acount(),
            "in_stock": await Product.objects.filter(stock__gt=0).acount(),
            "categories": await Category.objects.filter(products__isnull=False)
            .distinct().acount(),
        }

    fails_with(run(lesson12.check_catalog_summary, catalog_summary),
               "one of them still empty", "an empty one too")


def test_12_1_the_check_leaves_the_catalog_as_it_found_it(project):
    from tutorial_project.capstone.service import catalog_summary

    before = asyncio.run(catalog_summary())
    assert run(lesson12.check_catalog_summary, catalog_summary)
    assert asyncio.run(catalog_summary()) == before


# 12.2 -------------------------------------------------------------------------------------
def test_12_2_reference_passes(project):
    from tutorial_project.capstone.service import gather_sources

    verdict = run(lesson12.check_gather_sources, gather_sources)
    assert verdict, str(verdict)


def test_12_2_gather_with_return_exceptions_also_passes(project):
    from tutorial_project.dashboard.sources import SOURCES, SourceError, fetch_source

    async def gather_sources(client, modes=None):
        modes = modes or {}
        results = await asyncio.gather(
            *(fetch_source(client, name, mode=(modes or {}).get(name, "ok")) for name in SOURCES),
            return_exceptions=True,
        )
        answers = dict(zip(SOURCES, results, strict=True))
        for result in results:
            if isinstance(result, Exception) and not isinstance(result, SourceError):
                raise result  # a bug, not an upstream failure: Django answers 500
        errors = {name: r.as_json() for name, r in answers.items() if isinstance(r, SourceError)}
        return {name: None if name in errors else r for name, r in answers.items()}, errors

    verdict = run(lesson12.check_gather_sources, gather_sources)
    assert verdict, str(verdict)


def test_12_2_return_exceptions_keeping_any_exception_as_an_error_fails_with_a_hint(project):
    # reviewer s25: a TypeError in our own code became a silent 200 "partial", not a 500
    from tutorial_project.dashboard.sources import SOURCES, SourceError, fetch_source

    async def gather_sources(client, modes=None):
        modes = modes or {}
        results = await asyncio.gather(
            *(fetch_source(client, name, mode=modes.get(name, "ok")) for name in SOURCES),
            return_exceptions=True)
        data, errors = {}, {}
        for name, result in zip(SOURCES, results, strict=True):
            if isinstance(result, BaseException):
                data[name] = None
                errors[name] = (result.as_json() if isinstance(result, SourceError)
                                else {"error": "bug", "detail": repr(result)})
            else:
                data[name] = result
        return data, errors

    fails_with(run(lesson12.check_gather_sources, gather_sources),
               "a RuntimeError raised while fetching news was returned",
               "catch SourceError, not every exception", "raise again")


def test_12_2_placeholder_is_not_solved(project):
    assert not run(lesson12.check_gather_sources, ...).solved


def test_12_2_gather_without_catching_fails_with_a_hint(project):
    from tutorial_project.dashboard.sources import SOURCES, fetch_source

    async def gather_sources(client, modes=None):
        modes = modes or {}
        results = await asyncio.gather(
            *(fetch_source(client, name, mode=modes.get(name, "ok")) for name in SOURCES)
        )
        return dict(zip(SOURCES, results, strict=True)), {}

    fails_with(run(lesson12.check_gather_sources, gather_sources), "SourceError")


def test_12_2_sequential_loop_fails_with_a_hint(project):
    from tutorial_project.dashboard.sources import SOURCES, SourceError, fetch_source

    async def gather_sources(client, modes=None):
        modes = modes or {}
        data, errors = {}, {}
        for name in SOURCES:  # one after another: 0.6 s instead of 0.3 s
            try:
                data[name] = await fetch_source(client, name, mode=modes.get(name, "ok"))
            except SourceError as error:
                data[name], errors[name] = None, error.as_json()
        return data, errors

    fails_with(run(lesson12.check_gather_sources, gather_sources),
               "one after the other", "asyncio.gather")


def test_12_2_leaving_a_failed_source_out_fails_with_a_hint(project):
    from tutorial_project.dashboard.sources import SOURCES, SourceError, fetch_source

    async def gather_sources(client, modes=None):
        modes = modes or {}
        results = await asyncio.gather(
            *(fetch_source(client, name, mode=modes.get(name, "ok")) for name in SOURCES),
            return_exceptions=True,
        )
        answers = dict(zip(SOURCES, results, strict=True))
        errors = {name: r.as_json() for name, r in answers.items() if isinstance(r, SourceError)}
        return {name: r for name, r in answers.items() if name not in errors}, errors

    fails_with(run(lesson12.check_gather_sources, gather_sources), "data had only",
               "as None")


def test_12_2_forgotten_await_fails_with_a_hint(project):
    from tutorial_project.dashboard.sources import SOURCES, fetch_source

    async def gather_sources(client, modes=None):
        data = {name: fetch_source(client, name) for name in SOURCES}
        return data, {}

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        verdict = run(lesson12.check_gather_sources, gather_sources)
    fails_with(verdict, "`await` is missing")


def test_12_2_a_task_group_also_passes(project):
    from tutorial_project.dashboard.sources import SOURCES, SourceError, fetch_source

    async def gather_sources(client, modes=None):
        modes = modes or {}
        data, errors = {}, {}

        async def one(name):
            try:
                data[name] = await fetch_source(client, name, mode=modes.get(name, "ok"))
            except SourceError as error:
                data[name], errors[name] = None, error.as_json()

        async with asyncio.TaskGroup() as group:
            for name in SOURCES:
                group.create_task(one(name))
        return data, errors

    verdict = run(lesson12.check_gather_sources, gather_sources)
    assert verdict, str(verdict)


def test_12_2_plain_gather_leaves_the_other_fetches_running_after_a_bug_fails(project):
    # reviewer s33: the old reference; gather raises the bug at once and lets the others run on
    gather_sources = _gathered()  # plain gather: the reference before this review

    fails_with(run(lesson12.check_gather_sources, gather_sources),
               "the other fetches ran on", "answered 2 more call(s)", "TaskGroup",
               "cancel them in a finally")


def test_12_2_gather_of_own_tasks_cancelled_in_finally_also_passes(project):
    from tutorial_project.dashboard.sources import SOURCES, SourceError, fetch_source

    async def gather_sources(client, modes=None):
        async def one(name):
            try:
                return await fetch_source(client, name, mode=(modes or {}).get(name, "ok"))
            except SourceError as error:
                return error

        tasks = [asyncio.create_task(one(name)) for name in SOURCES]
        try:
            results = await asyncio.gather(*tasks)
        finally:  # a bug: gather raised it, the others still run; a no-op on finished tasks
            for task in tasks:
                task.cancel()
        failed = {n: r for n, r in zip(SOURCES, results, strict=True) if isinstance(r, Exception)}
        return ({n: None if n in failed else r for n, r in zip(SOURCES, results, strict=True)},
                {n: r.as_json() for n, r in failed.items()})

    verdict = run(lesson12.check_gather_sources, gather_sources)
    assert verdict, str(verdict)


def test_12_2_the_reference_raises_the_bug_itself_and_cancels_the_others(project):
    from tutorial_project.capstone.service import gather_sources
    from tutorial_project.dashboard.clients import in_process_client
    from tutorial_project.dashboard.sources import SOURCES
    from tutorial_project.instruments.upstream import FakeUpstream

    async def main():
        upstream = FakeUpstream()
        async with in_process_client(upstream) as client:
            with pytest.raises(RuntimeError, match="a bug in our own code"):
                await gather_sources(lesson12._BuggyClient(client, SOURCES["news"]))
            left = upstream.in_flight
            await asyncio.sleep(0.4)
        return left, sum(upstream.answered.values()), sum(upstream.abandoned.values())

    assert asyncio.run(main()) == (0, 0, 2)


def test_12_2_the_budget_passed_explicitly_also_passes(project):
    from tutorial_project.dashboard import sources

    async def gather_sources(client, modes=None):
        async def one(name):
            try:
                return await sources.fetch_source(client, name, mode=(modes or {}).get(
                    name, "ok"), budget=sources.BUDGET)
            except Exception as error:  # noqa: BLE001  (not BaseException: cancellation passes)
                return error

        results = dict(zip(sources.SOURCES, await asyncio.gather(
            *(one(name) for name in sources.SOURCES)), strict=True))
        return ({name: None if isinstance(r, Exception) else r for name, r in results.items()},
                {name: r.as_json() for name, r in results.items() if isinstance(r, Exception)})

    verdict = run(lesson12.check_gather_sources, gather_sources)
    assert verdict, str(verdict)


def test_12_2_a_catch_all_that_lets_cancellation_out_fails_with_a_hint(project):
    # cancellation is handled, but a bug in our own code is swallowed: a 200, not a 500
    from tutorial_project.dashboard.sources import SOURCES, SourceError, fetch_source

    async def gather_sources(client, modes=None):
        modes = modes or {}
        data, errors = {}, {}

        async def one(name):
            try:
                data[name] = await fetch_source(client, name, mode=modes.get(name, "ok"))
            except asyncio.CancelledError:
                raise
            except BaseException as error:  # noqa: BLE001
                data[name] = None
                if isinstance(error, SourceError):
                    errors[name] = error.as_json()

        await asyncio.gather(*(one(name) for name in SOURCES))
        return data, errors

    fails_with(run(lesson12.check_gather_sources, gather_sources),
               "a RuntimeError raised while fetching news was returned",
               "catch SourceError, not every exception")


def _gathered(wrap_error=lambda error: error.as_json(), budget=None):
    """The old reference's shape (a plain gather), with the stored error and the fetch's
    budget changed."""
    from tutorial_project.dashboard.sources import SOURCES, SourceError, fetch_source

    async def gather_sources(client, modes=None):
        modes = modes or {}
        budget_kw = {} if budget is None else {"budget": budget}

        async def one(name):
            try:
                return await fetch_source(client, name, mode=modes.get(name, "ok"), **budget_kw)
            except SourceError as error:
                return error

        results = await asyncio.gather(*(one(name) for name in SOURCES))
        data, errors = {}, {}
        for name, result in zip(SOURCES, results, strict=True):
            if isinstance(result, SourceError):
                data[name], errors[name] = None, wrap_error(result)
            else:
                data[name] = result
        return data, errors

    return gather_sources


def test_12_2_a_budget_three_times_the_services_fails_with_a_hint(project):
    # 1.5 s passes the 2 s bound kept for loaded machines; the error names the budget.
    fails_with(run(lesson12.check_gather_sources, _gathered(budget=1.5)),
               "the hanging news was given 1.5 s", "keep its budget (0.5 s")


def test_12_2_errors_kept_as_strings_fail_with_a_hint(project):
    fails_with(run(lesson12.check_gather_sources, _gathered(wrap_error=str)),
               "errors held", "errors[name] = error.as_json()")


def test_12_2_errors_kept_as_exceptions_fail_with_a_hint(project):
    fails_with(run(lesson12.check_gather_sources, _gathered(wrap_error=lambda error: error)),
               "errors held", "errors[name] = error.as_json()")


def test_12_2_catching_base_exception_in_each_fetch_fails_with_a_hint(project):
    from tutorial_project.dashboard.sources import SOURCES, SourceError, fetch_source

    async def gather_sources(client, modes=None):
        modes = modes or {}
        data, errors = {}, {}

        async def one(name):
            try:
                data[name] = await fetch_source(client, name, mode=modes.get(name, "ok"))
            except BaseException as error:  # noqa: BLE001  (the mistake: swallows CancelledError)
                data[name] = None
                errors[name] = (error.as_json() if isinstance(error, SourceError)
                                else {"error": type(error).__name__})

        await asyncio.gather(*(one(name) for name in SOURCES))
        return data, errors

    fails_with(run(lesson12.check_gather_sources, gather_sources),
               "caught the cancellation", "not BaseException")


def test_12_2_tasks_awaited_in_turn_with_a_bare_except_fail_with_a_hint(project):
    from tutorial_project.dashboard.sources import SOURCES, fetch_source

    async def gather_sources(client, modes=None):
        modes = modes or {}
        tasks = {name: asyncio.create_task(fetch_source(client, name, mode=modes.get(name, "ok")))
                 for name in SOURCES}
        data, errors = {}, {}
        for name, task in tasks.items():
            try:
                data[name] = await task
            except:  # noqa: E722  (the mistake: the server's cancellation is swallowed here)
                data[name] = None
                if not task.cancelled() and hasattr(task.exception(), "as_json"):
                    errors[name] = task.exception().as_json()
        return data, errors

    fails_with(run(lesson12.check_gather_sources, gather_sources),
               "cancelled while its fetches ran (its client left), it returned",
               "let CancelledError out")


def test_12_2_tasks_of_its_own_left_running_when_cancelled_fail_with_a_hint(project):
    from tutorial_project.dashboard.sources import SOURCES, SourceError, fetch_source

    async def gather_sources(client, modes=None):
        modes = modes or {}
        tasks = {name: asyncio.create_task(fetch_source(client, name, mode=modes.get(name, "ok")))
                 for name in SOURCES}
        data, errors = {}, {}
        for name, task in tasks.items():  # cancelled at the first await: the others run on
            try:
                data[name] = await task
            except SourceError as error:
                data[name], errors[name] = None, error.as_json()
        return data, errors

    fails_with(run(lesson12.check_gather_sources, gather_sources),
               "left 2 of them running", "in a finally:")


def test_12_2_tasks_of_its_own_cancelled_in_a_finally_also_pass(project):
    from tutorial_project.dashboard.sources import SOURCES, SourceError, fetch_source

    async def gather_sources(client, modes=None):
        modes = modes or {}
        tasks = {name: asyncio.create_task(fetch_source(client, name, mode=modes.get(name, "ok")))
                 for name in SOURCES}
        data, errors = {}, {}
        try:
            for name, task in tasks.items():
                try:
                    data[name] = await task
                except SourceError as error:
                    data[name], errors[name] = None, error.as_json()
        finally:
            for task in tasks.values():
                task.cancel()
        return data, errors

    verdict = run(lesson12.check_gather_sources, gather_sources)
    assert verdict, str(verdict)


# 12.3 -------------------------------------------------------------------------------------
def test_12_3_reference_passes(project):
    from tutorial_project.capstone.service import cached

    verdict = run(lesson12.check_cached, cached)
    assert verdict, str(verdict)


def test_12_3_reference_retrieves_an_error_no_caller_stayed_for(project, caplog):
    # Every caller left, then compute() raised: nobody awaits the shared task. Without its
    # done callback reading the error, asyncio logs "Task exception was never retrieved"
    # (with a traceback, outside any request) when the task is collected.
    import gc
    import logging

    from tutorial_project.capstone.service import cached

    async def fails_later():
        await asyncio.sleep(0.1)
        raise ValueError("upstream parse bug")

    async def scenario():
        caller = asyncio.create_task(cached("12-3-abandoned", fails_later))
        await asyncio.sleep(0.02)
        caller.cancel()  # its client left
        await asyncio.gather(caller, return_exceptions=True)
        await asyncio.sleep(0.3)  # the computation fails, awaited by nobody
        gc.collect()

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        asyncio.run(scenario())
        gc.collect()
    assert "never retrieved" not in caplog.text, caplog.text


def _cached_with_locks(slot, start=None, forget_locks=False):
    """A lock per ``slot(key)`` and a shared task; ``start(coroutine)`` makes the task (by
    default in the caller's context, closing the connections of whatever thread it ran on).
    The task is dropped when done; the lock too if ``forget_locks``."""
    from collections import defaultdict

    from asgiref.sync import sync_to_async
    from django.core.cache import cache
    from django.db import connections

    locks = defaultdict(asyncio.Lock)
    running = {}  # slot -> the task computing it

    async def cached(key, compute, seconds=30):
        value = await cache.aget(key)
        if value is not None:
            return value
        where = slot(key)
        async with locks[where]:
            value = await cache.aget(key)  # filled while we waited?
            if value is not None:
                return value
            task = running.get(where)
            if task is None:
                async def compute_and_store():
                    value = await compute()
                    await cache.aset(key, value, timeout=seconds)
                    return value

                async def closing_what_it_opened():
                    try:
                        return await compute_and_store()
                    finally:  # a request that left no longer closes this thread's connection
                        await sync_to_async(connections.close_all)()

                task = running[where] = (start(compute_and_store()) if start else
                                         asyncio.ensure_future(closing_what_it_opened()))
                task.add_done_callback(lambda _: running.pop(where, None))
                if forget_locks:
                    task.add_done_callback(lambda _: locks.pop(where, None))
        return await asyncio.shield(task)

    return cached


def test_12_3_a_lock_per_loop_and_key_dropped_when_done_also_passes(project):
    cached = _cached_with_locks(lambda key: (asyncio.get_running_loop(), key),
                                _like_the_reference, forget_locks=True)
    verdict = run(lesson12.check_cached, cached)
    assert verdict, str(verdict)


LOOP_LEAK = ("after 6 requests, each in an event loop of its own", "leak",
             "drop what you keep for a loop once its computation is done")


def test_12_3_locks_per_loop_and_key_kept_forever_fail_with_a_hint(project):
    # Under WSGI each request's async view runs in a new loop: one more lock, and with it one
    # more closed loop (a lock that was waited on refers to it), for every request.
    cached = _cached_with_locks(lambda key: (asyncio.get_running_loop(), key),
                                _like_the_reference)
    fails_with(run(lesson12.check_cached, cached), *LOOP_LEAK,
               "closed loops were still referenced")


def test_12_3_locks_keyed_by_the_loops_id_kept_forever_fail_with_a_hint(project):
    cached = _cached_with_locks(lambda key: (id(asyncio.get_running_loop()), key),
                                _like_the_reference)
    fails_with(run(lesson12.check_cached, cached), *LOOP_LEAK)


def test_12_3_locks_in_a_weak_key_dictionary_of_loops_fail_with_a_hint(project):
    # The loop is a weak key, but its value holds a lock that was waited on, which refers to
    # the loop: the entry never goes.
    import weakref
    from collections import defaultdict

    per_loop = weakref.WeakKeyDictionary()  # loop -> {key: its lock}
    running = {}  # (loop, key) -> the task computing it, dropped when done

    async def cached(key, compute, seconds=30):
        if (value := await cache.aget(key)) is not None:
            return value
        loop = asyncio.get_running_loop()
        async with per_loop.setdefault(loop, defaultdict(asyncio.Lock))[key]:
            if (value := await cache.aget(key)) is not None:
                return value
            task = running.get((loop, key))
            if task is None:
                async def compute_and_store():
                    value = await compute()
                    await cache.aset(key, value, seconds)
                    return value

                task = running[loop, key] = _like_the_reference(compute_and_store())
                task.add_done_callback(lambda _: running.pop((loop, key), None))
        return await asyncio.shield(task)

    fails_with(run(lesson12.check_cached, cached), *LOOP_LEAK,
               "WeakKeyDictionary keyed by the loop does not free it")


def test_12_3_a_record_per_loop_id_that_grows_fails_with_a_hint(project):
    # Nothing in it refers to the loop, so the loops are freed; the dict still grows.
    computed_in = {}  # id(loop) -> the keys computed there, never dropped
    right = _cached_keyed_by(lambda key: (asyncio.get_running_loop(), key), _aset,
                             _like_the_reference)

    async def cached(key, compute, seconds=30):
        computed_in.setdefault(id(asyncio.get_running_loop()), set()).add(key)
        return await right(key, compute, seconds)

    fails_with(run(lesson12.check_cached, cached), *LOOP_LEAK, "computed_in grew by")


def test_12_3_tasks_in_a_weak_key_dictionary_dropped_when_done_also_pass(project):
    import weakref

    per_loop = weakref.WeakKeyDictionary()  # loop -> {key: its task}, emptied as tasks end

    def running():
        return per_loop.setdefault(asyncio.get_running_loop(), {})

    async def cached(key, compute, seconds=30):
        if (value := await cache.aget(key)) is not None:
            return value
        tasks = running()
        if key not in tasks:
            async def compute_and_store():
                value = await compute()
                await cache.aset(key, value, seconds)
                return value

            tasks[key] = _like_the_reference(compute_and_store())
            tasks[key].add_done_callback(lambda _: tasks.pop(key, None))
        return await asyncio.shield(tasks[key])

    verdict = run(lesson12.check_cached, cached)
    assert verdict, str(verdict)


FALSY_HINT = ("a falsy value was taken for a missing one",
              "`if value:` is false", "MISSING = object()")


def test_12_3_if_value_recomputes_a_cached_falsy_value_fails_with_a_hint(project):
    cached = _cached_keyed_by(lambda key: (asyncio.get_running_loop(), key), _aset,
                              _like_the_reference, hit=bool)  # `if value:`
    fails_with(run(lesson12.check_cached, cached), *FALSY_HINT,
               "for 0 two calls gave [0, 0] and compute() ran 2 time(s)")


def test_12_3_a_default_of_its_own_also_passes(project):
    missing = object()
    cached = _cached_keyed_by(lambda key: (asyncio.get_running_loop(), key), _aset,
                              _like_the_reference, read=lambda key: cache.aget(key, missing),
                              hit=lambda value: value is not missing)
    verdict = run(lesson12.check_cached, cached)
    assert verdict, str(verdict)


def test_12_3_closing_connections_on_a_sync_callers_thread_fails_with_a_hint(project):
    # The task keeps the caller's context and closes its thread's connections at the end: under
    # ASGI that is a thread of its own once the first request has gone, but under a sync caller
    # (Django's TestCase) it is the caller's thread, in the middle of its transaction.
    cached = _cached_with_locks(lambda key: (asyncio.get_running_loop(), key),
                                forget_locks=True)
    fails_with(run(lesson12.check_cached, cached), "a sync caller in transaction.atomic()",
               "closed the caller's connection in the middle of its transaction",
               "ThreadSensitiveContext")


def test_12_3_a_future_filled_by_a_background_task_also_passes(project):
    import contextvars

    from asgiref.sync import ThreadSensitiveContext, sync_to_async
    from django.core.cache import cache
    from django.db import connections

    waiting, workers = {}, set()  # (loop, key) -> its Future; the running fill() tasks

    async def cached(key, compute, seconds=30):
        if (value := await cache.aget(key)) is not None:
            return value
        loop = asyncio.get_running_loop()
        future = waiting.get((loop, key))
        if future is None:
            future = waiting[loop, key] = loop.create_future()

            async def fill_on_the_callers_thread():
                try:
                    value = await compute()
                    await cache.aset(key, value, seconds)
                except Exception as error:  # noqa: BLE001  (handed to every waiting caller)
                    future.set_exception(error)
                else:
                    future.set_result(value)
                finally:
                    del waiting[loop, key]

            async def fill():
                async with ThreadSensitiveContext():  # a thread of its own, closed at the end
                    try:
                        await fill_on_the_callers_thread()
                    finally:
                        await sync_to_async(connections.close_all)()

            worker = contextvars.Context().run(loop.create_task, fill())  # not the request's
            workers.add(worker)
            worker.add_done_callback(workers.discard)
        return await asyncio.shield(future)

    verdict = run(lesson12.check_cached, cached)
    assert verdict, str(verdict)


def test_12_3_a_module_level_lock_per_key_fails_in_a_second_loop(project):
    # Bound to the loop that first waited on it: the second loop (a second Django async
    # test) gets "RuntimeError: ... is bound to a different event loop".
    cached = _cached_with_locks(lambda key: key)
    fails_with(run(lesson12.check_cached, cached), "second event loop",
               "bound to a different event loop", "get_running_loop")


def test_12_3_a_shared_task_awaited_without_shield_fails_with_a_hint(project):
    from django.core.cache import cache

    computing = {}

    async def cached(key, compute, seconds=30):
        value = await cache.aget(key)
        if value is not None:
            return value
        slot = (asyncio.get_running_loop(), key)
        if slot not in computing:
            computing[slot] = asyncio.create_task(compute())
            computing[slot].add_done_callback(lambda _: computing.pop(slot, None))
        value = await computing[slot]  # cancelling this caller cancels the shared task
        await cache.aset(key, value, seconds)
        return value

    fails_with(run(lesson12.check_cached, cached), "CancelledError", "asyncio.shield(task)")


def test_12_3_a_lock_around_compute_recomputes_when_a_caller_leaves(project):
    from collections import defaultdict

    from django.core.cache import cache

    locks = defaultdict(asyncio.Lock)

    async def cached(key, compute, seconds=30):
        value = await cache.aget(key)
        if value is None:
            async with locks[asyncio.get_running_loop(), key]:
                value = await cache.aget(key)  # filled while we waited?
                if value is None:
                    value = await compute()  # cancelled with the caller holding the lock
                    await cache.aset(key, value, timeout=seconds)
        return value

    fails_with(run(lesson12.check_cached, cached), "which stopped the computation: compute() ran 2 "
               "times, another caller starting it again", "asyncio.shield")


def test_12_3_a_computation_kept_forever_fails_with_a_hint(project):
    from django.core.cache import cache

    tasks = {}  # never forgets a task: a first failure, or an expired value, sticks

    async def cached(key, compute, seconds=30):
        value = await cache.aget(key)
        if value is not None:
            return value
        if key not in tasks:
            async def compute_and_store():
                value = await compute()
                await cache.aset(key, value, seconds)
                return value

            tasks[key] = asyncio.ensure_future(compute_and_store())
        return await asyncio.shield(tasks[key])

    fails_with(run(lesson12.check_cached, cached), "the failure was kept", "forget")


def _cached_keyed_by(slot, store, start=asyncio.create_task, read=None,
                     hit=lambda value: value is not None):
    """A shared, shielded task per ``slot(key)``, made by ``start(coroutine)``;
    ``store(key, value, seconds)`` keeps it; ``hit(await read(key))`` tells a cached value."""
    from django.core.cache import cache

    running = {}

    async def cached(key, compute, seconds=30):
        if hit(value := await (read or cache.aget)(key)):
            return value
        where = slot(key)
        if where not in running:
            async def compute_and_store():
                value = await compute()
                await store(key, value, seconds)
                return value

            running[where] = start(compute_and_store())
            running[where].add_done_callback(lambda _: running.pop(where, None))
        return await asyncio.shield(running[where])

    return cached


async def _close_all_here():
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(connections.close_all)()


def _a_task_with_a_thread_of_its_own(close=_close_all_here, empty_context=True):
    """What starts the computation: a task with its own ThreadSensitiveContext that awaits
    ``close()`` when done, in an empty context (the reference) or a copy of the caller's."""
    import contextvars

    from asgiref.sync import ThreadSensitiveContext

    def start(coroutine):
        async def run():
            async with ThreadSensitiveContext():
                try:
                    return await coroutine
                finally:
                    await close()

        return asyncio.create_task(
            run(), context=contextvars.Context() if empty_context else None)

    return start


_on_its_own = _a_task_with_a_thread_of_its_own()
_like_the_reference = _on_its_own


def _aset(key, value, seconds):
    from django.core.cache import cache

    return cache.aset(key, value, seconds)


def test_12_3_tasks_keyed_by_the_key_alone_fail_when_two_loops_overlap(project):
    # One loop after the other passes; two at once (WSGI, runserver) await another loop's task.
    cached = _cached_keyed_by(lambda key: key, _aset)
    fails_with(run(lesson12.check_cached, cached), "two event loops at the same moment",
               "attached to a different loop", "(asyncio.get_running_loop(), key)")


def test_12_3_storing_with_aadd_also_passes(project):
    from django.core.cache import cache

    cached = _cached_keyed_by(lambda key: (asyncio.get_running_loop(), key),
                              lambda key, value, seconds: cache.aadd(key, value, seconds),
                              _like_the_reference)
    verdict = run(lesson12.check_cached, cached)
    assert verdict, str(verdict)


def test_12_3_a_context_of_its_own_that_closes_also_passes(project):
    # The hint about a request that leaves, and nothing more: under a sync caller (Django's
    # TestCase) compute() runs on a thread of its own too, and leaves the caller's alone.
    cached = _cached_keyed_by(lambda key: (asyncio.get_running_loop(), key), _aset, _on_its_own)
    verdict = run(lesson12.check_cached, cached)
    assert verdict, str(verdict)


def test_12_3_under_a_sync_caller_the_reference_sees_only_committed_rows(project):
    # The documented limit (cell after check 12.3): under a sync caller in a transaction, the
    # shared computation runs on a thread of its own, with a connection of its own, so it
    # counts the committed categories, not the one the caller has just added.
    import threading

    from tutorial_project.capstone.service import cached

    outcome = {}
    with lesson12._own_cache():
        thread = threading.Thread(target=lesson12._sync_caller_in_a_transaction,
                                  args=(cached, outcome))
        thread.start()
        thread.join(2 * lesson12.GIVE_UP)
    assert outcome.get("problem", "did not return") is None, outcome
    assert outcome["got"] == {"categories": outcome["seen"] - 1}, outcome


def test_12_3_a_shared_task_in_the_first_requests_context_leaks_a_connection(project):
    # create_task + shield, right in every other way: the task keeps the first request's
    # ThreadSensitiveContext; once that client has left, its query gets a thread (and a
    # database connection) that no request_finished closes.
    cached = _cached_keyed_by(lambda key: (asyncio.get_running_loop(), key), _aset)
    fails_with(run(lesson12.check_cached, cached), "a request that leaves does not fail",
               "that connection was still open", "contextvars.Context()",
               "ThreadSensitiveContext", "connections.close_all")


def test_12_3_a_context_of_its_own_that_never_closes_fails_with_a_hint(project):
    import contextvars

    from asgiref.sync import ThreadSensitiveContext

    async def in_its_own_thread(coroutine):
        async with ThreadSensitiveContext():  # its own thread, whose connection stays open
            return await coroutine

    cached = _cached_keyed_by(
        lambda key: (asyncio.get_running_loop(), key), _aset,
        lambda coroutine: asyncio.create_task(in_its_own_thread(coroutine),
                                              context=contextvars.Context()))
    fails_with(run(lesson12.check_cached, cached), "that connection was still open",
               "connections.close_all")


def test_12_3_closing_only_after_a_successful_compute_fails_with_a_hint(project):
    # Its own context and thread, close_all after compute() and aset(), not in a finally: a
    # compute() that queries and then raises (a source down) leaves that connection open.
    import contextvars

    from asgiref.sync import ThreadSensitiveContext, sync_to_async
    from django.core.cache import cache
    from django.db import connections

    running = {}

    async def cached(key, compute, seconds=30):
        if (value := await cache.aget(key)) is not None:
            return value
        where = (asyncio.get_running_loop(), key)
        if where not in running:
            async def work():
                async with ThreadSensitiveContext():
                    value = await compute()
                    await cache.aset(key, value, seconds)
                    await sync_to_async(connections.close_all)()
                    return value

            running[where] = asyncio.create_task(work(), context=contextvars.Context())
            running[where].add_done_callback(lambda _: running.pop(where, None))
        return await asyncio.shield(running[where])

    fails_with(run(lesson12.check_cached, cached),
               "each one's compute() queried the database and then raised",
               "3 of those connections were still open", "finally:")


def test_12_3_an_empty_context_alone_fails_with_a_hint(project):
    # No ThreadSensitiveContext at all: the query runs on asgiref's one process-wide thread,
    # whose connection nothing closes either (and every such task waits for that one thread).
    import contextvars

    cached = _cached_keyed_by(
        lambda key: (asyncio.get_running_loop(), key), _aset,
        lambda coroutine: asyncio.create_task(coroutine, context=contextvars.Context()))
    fails_with(run(lesson12.check_cached, cached), "that connection was still open",
               "ThreadSensitiveContext")


def test_12_3_an_empty_context_that_closes_without_its_own_thread_fails_with_a_hint(project):
    import contextvars

    from asgiref.sync import sync_to_async
    from django.core.cache import cache
    from django.db import connections

    computing = {}

    async def cached(key, compute, seconds=30):
        value = await cache.aget(key)
        if value is not None:
            return value
        slot = (asyncio.get_running_loop(), key)
        if slot not in computing:
            async def compute_and_store():
                try:
                    value = await compute()
                    await cache.aset(key, value, seconds)
                    return value
                finally:  # no ThreadSensitiveContext: under a sync caller, its thread
                    await sync_to_async(connections.close_all)()

            task = computing[slot] = asyncio.create_task(compute_and_store(),
                                                         context=contextvars.Context())
            task.add_done_callback(lambda done: (computing.pop(slot, None),
                                                 done.cancelled() or done.exception()))
        return await asyncio.shield(computing[slot])

    verdict = run(lesson12.check_cached, cached)
    fails_with(verdict, "Under a sync caller", "ThreadSensitiveContext",
               "an empty context alone is sent to the thread that called async_to_sync")
    assert "in the caller's context runs" not in str(verdict), str(verdict)


def test_12_3_a_thread_of_its_own_in_a_copied_context_fails_with_a_hint(project):
    # A ThreadSensitiveContext and close_all, but in the caller's (copied) context: under a
    # sync caller the task inherits the caller's executor, which asgiref prefers, so its
    # close_all closes the caller's connection. Through ASGIHandler it passes.
    cached = _cached_keyed_by(lambda key: (asyncio.get_running_loop(), key), _aset,
                              _a_task_with_a_thread_of_its_own(empty_context=False))
    verdict = run(lesson12.check_cached, cached)
    fails_with(verdict, "Cannot operate on a closed database", "contextvars.Context()",
               "a copied context carries the caller's executor")
    assert "a request that leaves leaves no database connection open" in str(verdict)


def _closing_with(close):
    """Like the reference, with ``await close()`` in the finally."""
    return _cached_keyed_by(lambda key: (asyncio.get_running_loop(), key), _aset,
                            _a_task_with_a_thread_of_its_own(close))


@pytest.mark.parametrize("close", ["thread_sensitive=False", "asyncio.to_thread"])
def test_12_3_closing_on_a_pool_thread_fails_with_a_hint_that_names_it(project, close):
    # The reference's design, but the close runs on a thread of the loop's pool: it closes
    # that thread's connections, not the one the computation queried with.
    from asgiref.sync import sync_to_async
    from django.db import connections

    cached = _closing_with(
        (lambda: sync_to_async(connections.close_all, thread_sensitive=False)())
        if close == "thread_sensitive=False" else
        (lambda: asyncio.to_thread(connections.close_all)))
    verdict = run(lesson12.check_cached, cached)
    fails_with(verdict, "that connection was still open", "thread of the event loop's pool",
               "thread_sensitive=False", "belongs to the thread that opened it",
               "leave thread_sensitive at its default")
    assert "contextvars.Context()" not in str(verdict), str(verdict)  # done already


def test_12_3_closing_connection_looked_up_on_the_loop_fails_with_a_hint(project):
    # Lesson 12's own counter-example: `connection` is looked up on the loop's thread.
    from asgiref.sync import sync_to_async
    from django.db import connection

    verdict = run(lesson12.check_cached, _closing_with(lambda: sync_to_async(connection.close)()))
    fails_with(verdict, "raised DatabaseError", "can only be used in that same thread",
               "`connection.close` looks `connection` up on the thread that evaluates it",
               "sync_to_async(connections.close_all)")
    assert "await compute(), then store it" not in str(verdict), str(verdict)


def test_12_3_closing_connection_looked_up_on_the_task_s_thread_also_passes(project):
    from asgiref.sync import sync_to_async
    from django.db import connection

    verdict = run(lesson12.check_cached,
                  _closing_with(lambda: sync_to_async(lambda: connection.close())()))
    assert verdict, str(verdict)


def test_12_3_a_sync_has_key_on_the_loop_fails_with_a_hint(project):
    from django.core.cache import cache

    reference = _cached_keyed_by(lambda key: (asyncio.get_running_loop(), key), _aset)

    async def cached(key, compute, seconds=30):
        if cache.has_key(key):  # with Redis a network round trip on the loop
            return await cache.aget(key)
        return await reference(key, compute, seconds)

    fails_with(run(lesson12.check_cached, cached), "sync cache.has_key()", "cache.aget")


def test_12_3_ignoring_seconds_with_aadd_fails_with_a_hint(project):
    from django.core.cache import cache

    cached = _cached_keyed_by(lambda key: (asyncio.get_running_loop(), key),
                              lambda key, value, seconds: cache.aadd(key, value))
    fails_with(run(lesson12.check_cached, cached), "stored for 300 more seconds", "300 s")


def test_12_3_a_caller_that_goes_on_waiting_when_cancelled_fails_with_a_hint(project):
    from django.core.cache import cache

    running = {}

    async def cached(key, compute, seconds=30):
        if (value := await cache.aget(key)) is not None:
            return value
        slot = (asyncio.get_running_loop(), key)
        if slot not in running:
            async def compute_and_store():
                value = await compute()
                await cache.aset(key, value, seconds)
                return value

            running[slot] = asyncio.create_task(compute_and_store())
            running[slot].add_done_callback(lambda _: running.pop(slot, None))
        task = running[slot]
        while True:
            try:
                return await asyncio.shield(task)
            except asyncio.CancelledError:
                if task.done():
                    raise
                continue  # keeps waiting though its client left

    fails_with(run(lesson12.check_cached, cached), "still waiting a second later",
               "let CancelledError out")


def test_12_3_placeholder_is_not_solved(project):
    assert not run(lesson12.check_cached, ...).solved


def test_12_3_sync_cache_calls_fail_with_a_hint(project):
    from django.core.cache import cache

    async def cached(key, compute, seconds=30):
        value = cache.get(key)
        if value is None:
            value = await compute()
            cache.set(key, value, seconds)
        return value

    fails_with(run(lesson12.check_cached, cached), "sync cache.get/set()", "cache.aget")


def test_12_3_forgetting_to_store_fails_with_a_hint(project):
    from django.core.cache import cache

    async def cached(key, compute, seconds=30):
        value = await cache.aget(key)
        return value if value is not None else await compute()

    fails_with(run(lesson12.check_cached, cached), "aset")


def test_12_3_ignoring_seconds_fails_with_a_hint(project):
    from django.core.cache import cache

    async def cached(key, compute, seconds=30):
        value = await cache.aget(key)
        if value is None:
            value = await compute()
            await cache.aset(key, value)
        return value

    fails_with(run(lesson12.check_cached, cached), "300 s")


def test_12_3_a_dict_instead_of_djangos_cache_fails(project):
    store = {}

    async def cached(key, compute, seconds=30):
        if key not in store:
            store[key] = await compute()
        return store[key]

    fails_with(run(lesson12.check_cached, cached), "cache.aset")


def test_12_3_swallowed_exception_fails_with_a_hint(project):
    from django.core.cache import cache

    async def cached(key, compute, seconds=30):
        value = await cache.aget(key)
        if value is None:
            try:
                value = await compute()
            except Exception:
                return None
            await cache.aset(key, value, seconds)
        return value

    fails_with(run(lesson12.check_cached, cached), "do not catch compute()'s errors")


def test_12_3_waiters_that_read_the_cache_again_lose_a_failure(project):
    from tutorial_project.capstone.service import _start, cache

    computing = {}

    async def cached(key, compute, seconds=30):  # double-checked: waiters re-read the cache
        value = await cache.aget(key)
        if value is not None:
            return value
        slot = (asyncio.get_running_loop(), key)
        task = computing.get(slot)
        if task is None:
            async def run():
                try:
                    value = await compute()
                    await cache.aset(key, value, seconds)
                    return value
                finally:
                    computing.pop(slot, None)

            task = computing[slot] = _start(run())
            return await asyncio.shield(task)
        await asyncio.wait([task])
        return await cache.aget(key)  # None after a failure

    fails_with(run(lesson12.check_cached, cached), "compute() raised RuntimeError",
               "got None instead", "asyncio.shield(task)")


def test_12_3_no_stampede_protection_fails_with_a_hint(project):
    from tutorial_project.capstone.service import cache

    async def cached(key, compute, seconds=30):
        value = await cache.aget(key)
        if value is None:
            value = await compute()
            await cache.aset(key, value, seconds)
        return value

    fails_with(run(lesson12.check_cached, cached), "stampede", "asyncio.shield(task)")


# 12.4 -------------------------------------------------------------------------------------
def test_12_4_reference_passes(project):
    from tutorial_project.capstone.service import dashboard_events

    verdict = run(lesson12.check_dashboard_events, dashboard_events)
    assert verdict, str(verdict)


def _source_events():
    from tutorial_project.dashboard.sources import SOURCES, SourceError, fetch_source

    async def one(client, name):
        try:
            return name, await fetch_source(client, name)
        except SourceError as error:
            return name, error.as_json()

    return SOURCES, one


def test_12_4_asyncio_wait_with_finally_also_passes(project):
    from tutorial_project.instruments.streaming import sse_event

    sources, one = _source_events()

    async def dashboard_events(client):
        pending = {asyncio.ensure_future(one(client, name)) for name in sources}
        order = []
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    name, data = task.result()
                    order.append(name)
                    yield sse_event({"source": name, "data": data}, event="source")
            yield sse_event({"arrived": order}, event="done")
        finally:
            for task in pending:
                task.cancel()

    verdict = run(lesson12.check_dashboard_events, dashboard_events)
    assert verdict, str(verdict)


def test_12_4_yield_inside_a_task_group_fails_with_a_hint(project):
    from tutorial_project.instruments.streaming import sse_event

    sources, one = _source_events()

    async def dashboard_events(client):
        arrived = asyncio.Queue()

        async def fetch(name):
            await arrived.put(await one(client, name))

        async with asyncio.TaskGroup() as group:  # looks safe; closing the generator is not
            for name in sources:
                group.create_task(fetch(name))
            order = []
            for _ in sources:
                name, data = await arrived.get()
                order.append(name)
                yield sse_event({"source": name, "data": data}, event="source")
        yield sse_event({"arrived": order}, event="done")

    fails_with(run(lesson12.check_dashboard_events, dashboard_events),
               "BaseExceptionGroup", "finally")


def _events_as_they_come(fetch):
    """A dashboard_events() right in every way but ``fetch(client, name)``: (name, data), or
    None for a source to leave out."""
    from tutorial_project.instruments.streaming import sse_event

    sources, _ = _source_events()

    async def dashboard_events(client):
        tasks = [asyncio.create_task(fetch(client, name)) for name in sources]
        try:
            arrived = []
            for next_done in asyncio.as_completed(tasks):
                name, data = await next_done
                arrived.append(name)
                if data is not None:
                    yield sse_event({"source": name, "data": data}, event="source")
            yield sse_event({"arrived": arrived}, event="done")
        finally:
            for task in tasks:
                task.cancel()

    return dashboard_events


def test_12_4_no_source_error_handling_fails_with_a_hint(project):
    from tutorial_project.dashboard.sources import fetch_source

    async def fetch(client, name):  # a failed source raises out of the stream
        return name, await fetch_source(client, name)

    fails_with(run(lesson12.check_dashboard_events, _events_as_they_come(fetch)),
               "with the news source answering 500", "raised SourceError", "as_json()")


def test_12_4_a_failed_source_left_out_fails_with_a_hint(project):
    from tutorial_project.dashboard.sources import SourceError, fetch_source

    async def fetch(client, name):
        try:
            return name, await fetch_source(client, name)
        except SourceError:
            return name, None  # no event for it

    fails_with(run(lesson12.check_dashboard_events, _events_as_they_come(fetch)),
               "with the news source answering 500", "error.as_json()")


def test_12_4_a_failed_source_sent_as_a_string_fails_with_a_hint(project):
    from tutorial_project.dashboard.sources import SourceError, fetch_source

    async def fetch(client, name):
        try:
            return name, await fetch_source(client, name)
        except SourceError as error:
            return name, str(error)

    fails_with(run(lesson12.check_dashboard_events, _events_as_they_come(fetch)),
               "its event's data was 'bad_status: upstream answered 500'", "error.as_json()")


def test_12_4_source_events_without_data_fail_with_a_hint(project):
    from tutorial_project.dashboard.sources import SOURCES, fetch_source
    from tutorial_project.instruments.streaming import sse_event

    async def dashboard_events(client):
        tasks = [asyncio.create_task(fetch_source(client, name)) for name in SOURCES]
        names = dict(zip(tasks, SOURCES, strict=True))
        pending, arrived = set(tasks), []
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    arrived.append(names[task])
                    yield sse_event({"source": names[task]}, event="source")
            yield sse_event({"arrived": arrived}, event="done")
        finally:
            for task in tasks:
                task.cancel()

    fails_with(run(lesson12.check_dashboard_events, dashboard_events),
               "the `source` events sent", "(no data)",
               "what fetch_source() returned")


def test_12_4_placeholder_is_not_solved(project):
    assert not run(lesson12.check_dashboard_events, ...).solved


def test_12_4_waiting_for_all_sources_fails_with_a_hint(project):
    from tutorial_project.capstone.service import gather_sources
    from tutorial_project.instruments.streaming import sse_event

    async def dashboard_events(client):
        data, _errors = await gather_sources(client)  # everything first: nothing streams
        for name, value in data.items():
            yield sse_event({"source": name, "data": value}, event="source")
        yield sse_event({"arrived": list(data)}, event="done")

    fails_with(run(lesson12.check_dashboard_events, dashboard_events), "as_completed")


def test_12_4_one_source_after_another_fails_with_a_hint(project):
    from tutorial_project.instruments.streaming import sse_event

    sources, one = _source_events()

    async def dashboard_events(client):
        for name in sources:
            name, data = await one(client, name)
            yield sse_event({"source": name, "data": data}, event="source")
        yield sse_event({"arrived": list(sources)}, event="done")

    fails_with(run(lesson12.check_dashboard_events, dashboard_events), "at once", "tasks")


def test_12_4_cancelling_only_on_generator_exit_fails_with_a_hint(project):
    # Right for aclose() at a yield; but a server cancels the stream's task while it awaits,
    # and the CancelledError passes by `except GeneratorExit:`: the fetches keep running.
    from tutorial_project.instruments.streaming import sse_event

    sources, one = _source_events()

    async def dashboard_events(client):
        tasks = [asyncio.create_task(one(client, name)) for name in sources]
        try:
            arrived = []
            for next_done in asyncio.as_completed(tasks):
                name, data = await next_done
                arrived.append(name)
                yield sse_event({"source": name, "data": data}, event="source")
            yield sse_event({"arrived": arrived}, event="done")
        except GeneratorExit:
            for task in tasks:
                task.cancel()
            raise

    fails_with(run(lesson12.check_dashboard_events, dashboard_events),
               "cancelled while it awaited", "CancelledError", "finally")


def test_12_4_as_completed_without_cancelling_fails_with_a_hint(project):
    from tutorial_project.instruments.streaming import sse_event

    sources, one = _source_events()

    async def dashboard_events(client):
        arrived = []
        for next_done in asyncio.as_completed([one(client, name) for name in sources]):
            name, data = await next_done
            arrived.append(name)
            yield sse_event({"source": name, "data": data}, event="source")
        yield sse_event({"arrived": arrived}, event="done")

    fails_with(run(lesson12.check_dashboard_events, dashboard_events),
               "kept running", "answered for nobody", "finally")


# 12.5 -------------------------------------------------------------------------------------
def test_12_5_reference_passes(project):
    from tutorial_project.capstone.middleware import cache_control_middleware

    verdict = run(lesson12.check_middleware, cache_control_middleware)
    assert verdict, str(verdict)


def test_12_5_an_async_only_class_also_passes(project):
    from asgiref.sync import markcoroutinefunction

    class CacheControlMiddleware:
        async_capable, sync_capable = True, False

        def __init__(self, get_response):
            self.get_response = get_response
            markcoroutinefunction(self)

        async def __call__(self, request):
            response = await self.get_response(request)
            if "Cache-Control" not in response:
                response.headers["Cache-Control"] = (
                    "max-age=30" if response.status_code == 200 else "no-store")
            return response

    verdict = run(lesson12.check_middleware, CacheControlMiddleware)
    assert verdict, str(verdict)


def test_12_5_an_async_only_class_without_markcoroutinefunction_fails_with_a_hint(project):
    # Django's load_middleware takes the instance for sync (asgiref's iscoroutinefunction):
    # the chain still works, but an exception raised in it escapes the handler, no 500.
    class CacheControlMiddleware:
        async_capable, sync_capable = True, False

        def __init__(self, get_response):
            self.get_response = get_response

        async def __call__(self, request):
            response = await self.get_response(request)
            if "Cache-Control" not in response:
                response.headers["Cache-Control"] = (
                    "max-age=30" if response.status_code == 200 else "no-store")
            return response

    fails_with(run(lesson12.check_middleware, CacheControlMiddleware),
               "escapes as a raw error instead of a 500 when it is the outermost middleware",
               "taken for sync too", "markcoroutinefunction(self)")


def test_12_5_where_an_unmarked_class_lets_its_exception_escape(project):
    # What step 5's prose and check 12.5's message say, on the running Django (5.2 or 6.1):
    # only a sync-only middleware or a recognised async one outside the unmarked class
    # turns its exception into Django's 500; a MiddlewareMixin outside it is taken for sync.
    from asgiref.sync import markcoroutinefunction
    from django.http import JsonResponse
    from django.test import AsyncClient
    from django.utils.decorators import sync_only_middleware
    from django.utils.deprecation import MiddlewareMixin

    from tutorial_project import mount, unmount, use_middleware

    class Unmarked:
        async_capable, sync_capable = True, False

        def __init__(self, get_response):
            self.get_response = get_response

        async def __call__(self, request):
            raise ValueError("boom in an unmarked middleware")

    class UnmarkedPassThrough(Unmarked):
        async def __call__(self, request):
            return await self.get_response(request)

    started = []

    class Recorded(UnmarkedPassThrough):  # unmarked too; keeps its coroutines to close them
        def __call__(self, request):
            started.append(super().__call__(request))
            return started[-1]

    class Marked(UnmarkedPassThrough):
        def __init__(self, get_response):
            super().__init__(get_response)
            markcoroutinefunction(self)

    class Mixin(MiddlewareMixin):
        def process_response(self, request, response):
            return response

    @sync_only_middleware
    def sync_outer(get_response):
        def middleware(request):
            return get_response(request)
        return middleware

    @async_only_middleware
    def async_outer(get_response):
        async def middleware(request):
            return await get_response(request)
        return middleware

    async def view(request):
        return JsonResponse({})

    async def outcome(*chain):
        with use_middleware(*chain):
            try:
                response = await AsyncClient(raise_request_exception=False).get("/mw-order/")
            except Exception as error:  # noqa: BLE001  (escaped past Django: what we look for)
                return type(error).__name__
            return response.status_code

    async def main():
        return {
            "alone": await outcome(Unmarked),
            "sync-only outside": await outcome(sync_outer, Unmarked),
            "async function outside": await outcome(async_outer, Unmarked),
            "marked class outside": await outcome(Marked, Unmarked),
            "unmarked class outside": await outcome(UnmarkedPassThrough, Unmarked),
            "MiddlewareMixin outside": await outcome(Mixin, Unmarked),
            "sync-only outside the MiddlewareMixin": await outcome(sync_outer, Mixin, Unmarked),
            "CommonMiddleware around a pass-through": await outcome(
                "django.middleware.common.CommonMiddleware", Recorded),
        }

    mount("mw-order/", view)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # async_to_sync warns about the unmarked callable
            seen = asyncio.run(main())
    finally:
        unmount("mw-order/")
        for coroutine in started:
            coroutine.close()  # CommonMiddleware never awaited it: no "never awaited" warning
    assert seen == {
        "alone": "ValueError",
        "sync-only outside": 500,
        "async function outside": 500,
        "marked class outside": 500,
        "unmarked class outside": "ValueError",
        "MiddlewareMixin outside": "ValueError",
        "sync-only outside the MiddlewareMixin": 500,
        "CommonMiddleware around a pass-through": "TypeError",
    }, seen


def test_12_5_a_factory_that_returns_nothing_fails_with_its_own_hint(project):
    @async_only_middleware
    def cache_control_middleware(get_response):
        async def middleware(request):
            response = await get_response(request)
            response.setdefault("Cache-Control",
                                "max-age=30" if response.status_code == 200 else "no-store")
            return response
        # no `return middleware`

    verdict = run(lesson12.check_middleware, cache_control_middleware)
    fails_with(verdict, "your factory returned None", "return middleware")
    assert "sync callable" not in str(verdict), str(verdict)


def test_12_5_an_async_only_function_with_a_sync_inner_function_fails_with_a_hint(project):
    # No class here: the hint names the inner function, not markcoroutinefunction(self).
    @async_only_middleware
    def cache_control_middleware(get_response):
        def middleware(request):
            return get_response(request)

        return middleware

    verdict = run(lesson12.check_middleware, cache_control_middleware)
    fails_with(verdict, "Django takes for a sync callable", "async def middleware(request):")
    assert "markcoroutinefunction" not in str(verdict), str(verdict)


def test_12_5_placeholder_is_not_solved(project):
    assert not run(lesson12.check_middleware, ...).solved


def test_12_5_undecorated_middleware_fails_with_a_hint(project):
    def cache_control_middleware(get_response):
        async def middleware(request):
            response = await get_response(request)
            response["Cache-Control"] = "max-age=30"
            return response

        return middleware

    fails_with(run(lesson12.check_middleware, cache_control_middleware), "async_only_middleware")


def test_12_5_sync_and_async_middleware_is_not_async_only(project):
    @sync_and_async_middleware
    def cache_control_middleware(get_response):
        async def middleware(request):
            return await get_response(request)

        return middleware

    fails_with(run(lesson12.check_middleware, cache_control_middleware), "async_only_middleware")


def test_12_5_overwriting_the_view_header_fails_with_a_hint(project):
    @async_only_middleware
    def cache_control_middleware(get_response):
        async def middleware(request):
            response = await get_response(request)
            response["Cache-Control"] = "max-age=30" if response.status_code == 200 else "no-store"
            return response

        return middleware

    fails_with(run(lesson12.check_middleware, cache_control_middleware), "has_header")


def test_12_5_overwriting_only_an_error_s_header_fails_with_a_hint(project):
    @async_only_middleware
    def cache_control_middleware(get_response):
        async def middleware(request):
            response = await get_response(request)
            if response.status_code != 200:
                response["Cache-Control"] = "no-store"  # clobbers the view's own header
            elif not response.has_header("Cache-Control"):
                response["Cache-Control"] = "max-age=30"
            return response

        return middleware

    fails_with(run(lesson12.check_middleware, cache_control_middleware),
               "'max-age=60' became 'no-store'", "has_header")


def test_12_5_max_age_on_every_success_names_only_the_wrong_status(project):
    @async_only_middleware
    def cache_control_middleware(get_response):
        async def middleware(request):
            response = await get_response(request)
            if not response.has_header("Cache-Control"):
                ok = 200 <= response.status_code < 300  # a 201 is kept too: wrong
                response["Cache-Control"] = "max-age=30" if ok else "no-store"
            return response

        return middleware

    text = str(run(lesson12.check_middleware, cache_control_middleware))
    assert "a 201 got Cache-Control 'max-age=30'" in text, text
    assert "a 502 got" not in text, text  # its no-store was right


def test_12_5_patching_the_view_s_header_fails_with_a_hint(project):
    from django.utils.cache import patch_cache_control

    @async_only_middleware
    def cache_control_middleware(get_response):
        async def middleware(request):
            response = await get_response(request)
            if response.status_code == 200:
                patch_cache_control(response, max_age=30)  # merges into the view's no-store
            else:
                patch_cache_control(response, no_store=True)
            return response

        return middleware

    fails_with(run(lesson12.check_middleware, cache_control_middleware),
               "'no-store' became", "patch_cache_control() merges")


def test_12_5_setdefault_and_patch_cache_control_also_pass(project):
    from django.utils.cache import patch_cache_control

    @async_only_middleware
    def cache_control_middleware(get_response):
        async def middleware(request):
            response = await get_response(request)
            if "cache-control" not in response.headers:  # the headers ignore case
                if response.status_code == 200:
                    patch_cache_control(response, max_age=30)
                else:
                    response.headers.setdefault("Cache-Control", "no-store")
            return response

        return middleware

    verdict = run(lesson12.check_middleware, cache_control_middleware)
    assert verdict, str(verdict)


def test_12_5_caching_every_success_status_fails_with_a_hint(project):
    @async_only_middleware
    def cache_control_middleware(get_response):
        async def middleware(request):
            response = await get_response(request)
            if not response.has_header("Cache-Control"):
                ok = response.status_code < 400  # a 201 is not the page a browser may keep
                response["Cache-Control"] = "max-age=30" if ok else "no-store"
            return response

        return middleware

    fails_with(run(lesson12.check_middleware, cache_control_middleware), "status_code == 200")


def _setting_cache_control(header_for):
    """An async-only middleware that sets Cache-Control to ``header_for(response)`` when the
    view set none (``None`` leaves it unset): the status rules the 12.5 tests vary."""
    @async_only_middleware
    def cache_control_middleware(get_response):
        async def middleware(request):
            response = await get_response(request)
            if not response.has_header("Cache-Control") and (value := header_for(response)):
                response["Cache-Control"] = value
            return response

        return middleware

    return cache_control_middleware


def test_12_5_max_age_on_203_204_206_fails_with_a_hint(project):
    middleware = _setting_cache_control(  # a 204 is kept too
        lambda response: "max-age=30" if response.status_code in (200, 203, 204, 206)
        else "no-store")
    fails_with(run(lesson12.check_middleware, middleware),
               "a 204 got Cache-Control 'max-age=30'", "status_code == 200")


def test_12_5_no_store_only_on_5xx_and_201_fails_with_a_hint(project):
    def header_for(response):  # a 400, 404, 3xx, 204: nothing
        if response.status_code == 200:
            return "max-age=30"
        return "no-store" if response.status_code >= 500 or response.status_code == 201 else None

    fails_with(run(lesson12.check_middleware, _setting_cache_control(header_for)),
               "a 400 got no Cache-Control at all", "a 404 got no Cache-Control at all",
               "a 204 got no Cache-Control at all", "an `else:`")


def test_12_5_a_status_test_written_the_other_way_round_also_passes(project):
    @async_only_middleware
    def cache_control_middleware(get_response):
        async def middleware(request):
            response = await get_response(request)
            if response.get("Cache-Control") is None:
                if response.status_code != 200:
                    response.headers["Cache-Control"] = "no-store"
                else:
                    response.headers["Cache-Control"] = "max-age=30"
            return response

        return middleware

    verdict = run(lesson12.check_middleware, cache_control_middleware)
    assert verdict, str(verdict)


def test_12_5_reading_the_body_breaks_a_stream_and_fails_with_a_hint(project):
    """An ETag-like touch of response.content: fine on a JsonResponse, an AttributeError (a
    500) on the dashboard's StreamingHttpResponse (review 12-s34d)."""
    middleware = _setting_cache_control(
        lambda response: "max-age=30" if response.status_code == 200 and response.content
        else "no-store")
    verdict = run(lesson12.check_middleware, middleware)
    assert not verdict and "a StreamingHttpResponse came out as 500" in str(verdict), str(
        verdict)
    assert "never the body" in str(verdict), str(verdict)


def test_12_5_forgotten_await_fails_with_a_hint(project):
    @async_only_middleware
    def cache_control_middleware(get_response):
        async def middleware(request):
            response = get_response(request)
            response["Cache-Control"] = "max-age=30"
            return response

        return middleware

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        verdict = run(lesson12.check_middleware, cache_control_middleware)
    fails_with(verdict, "`await` is missing", "get_response(request) was called but never awaited")


def test_12_5_a_returned_coroutine_is_named_as_the_missing_await(project):
    @async_only_middleware
    def cache_control_middleware(get_response):
        async def middleware(request):
            response = get_response(request)
            return response  # Django's handler then meets a coroutine, not a response

        return middleware

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        verdict = run(lesson12.check_middleware, cache_control_middleware)
    fails_with(verdict, "`await` is missing", "get_response(request) was called but never awaited")
    assert "_get_response_async" not in str(verdict), str(verdict)


# 12.6 -------------------------------------------------------------------------------------
async def partial_failure_test(client):
    response = await client.get("?news=fail")
    body = json.loads(response.content)
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert body["partial"] is True and body["news"] is None
    assert body["errors"]["news"]["error"] == "bad_status"
    assert body["weather"] and body["stocks"]
    assert await cache.aget("capstone:widgets:weather=ok&stocks=ok&news=fail") is None


def test_12_6_reference_passes(project):
    verdict = run(lesson12.check_partial_test, partial_failure_test)
    assert verdict, str(verdict)


def _waits_between_two_requests(wait):
    """A test that asks twice for ?news=fail, waiting with ``wait`` in between, and checks
    that the upstream's /news was asked again: the partial answer was not kept."""
    from tutorial_project.dashboard.clients import default_upstream

    async def test_partial_failure(client):
        await partial_failure_test(client)  # the first answer, checked as the reference does
        before = default_upstream.calls["/news"]
        await wait()
        await client.get("?news=fail")
        assert default_upstream.calls["/news"] == before + 1

    return test_partial_failure


def test_12_6_a_test_that_waits_with_asyncio_sleep_passes(project):
    verdict = run(lesson12.check_partial_test,
                  _waits_between_two_requests(lambda: asyncio.sleep(0.01)))
    assert verdict, str(verdict)


def test_12_6_a_test_that_waits_with_time_sleep_fails_with_a_hint(project):
    async def blocking_wait():
        time.sleep(0.01)  # the whole loop stops: the view's tasks too

    fails_with(run(lesson12.check_partial_test, _waits_between_two_requests(blocking_wait)),
               "your test made blocking calls on the event loop's thread: time.sleep",
               "an async test runs on the event loop, with the view it calls",
               "The exercise asks for `await asyncio.sleep()`")


def test_12_6_a_test_that_fails_on_the_bug_by_a_key_error_passes(project):
    async def test_partial_failure(client):
        response = await client.get("?news=fail")
        assert response.status_code == 200
        body = response.json()
        assert body["errors"]["news"]["error"] == "bad_status"  # KeyError: errors left empty
        assert body["weather"]["city"] == "Lyon"  # TypeError: weather dropped (None)
        assert body["stocks"] and body["partial"] and body["news"] is None
        assert "no-store" in response.headers["Cache-Control"]
        key = "capstone:widgets:" + urlencode({"weather": "ok", "stocks": "ok", "news": "fail"})
        assert await cache.aget(key) is None  # the view's key for this query: nothing kept

    verdict = run(lesson12.check_partial_test, test_partial_failure)
    assert verdict, str(verdict)


def test_12_6_a_test_that_only_looks_at_the_failed_widget_fails_with_a_hint(project):
    async def test_partial_failure(client):
        response = await client.get("?news=fail")
        assert json.loads(response.content)["news"] is None

    fails_with(run(lesson12.check_partial_test, test_partial_failure),
               "calls a partial answer complete", 'body["partial"] is True')


def test_12_6_a_test_that_never_looks_at_the_other_widgets_fails_with_a_hint(project):
    async def test_partial_failure(client):
        response = await client.get("?news=fail")
        body = response.json()
        assert response.status_code == 200 and body["partial"] is True
        assert body["news"] is None and "news" in body["errors"]

    fails_with(run(lesson12.check_partial_test, test_partial_failure),
               "passes on a view that drops the widgets that did arrive", 'body["weather"]')


def test_12_6_a_test_that_only_checks_the_partial_flag_fails_with_a_hint(project):
    async def test_partial_failure(client):  # catches the old three bugs, says little else
        response = await client.get("?news=fail")
        assert json.loads(response.content)["partial"]

    fails_with(run(lesson12.check_partial_test, test_partial_failure),
               "passes on a view that hides the failed source", 'body["news"] is None')


def test_12_6_a_test_that_asserts_nothing_fails_with_a_hint(project):
    async def test_partial_failure(client):
        response = await client.get("?news=fail")
        assert response is not None

    fails_with(run(lesson12.check_partial_test, test_partial_failure),
               "passes on a view that calls a partial answer complete")


def test_12_6_a_test_with_a_weak_status_check_fails_with_a_hint(project):
    async def test_partial_failure(client):
        response = await client.get("?news=fail")
        body = json.loads(response.content)
        assert response.status_code < 300 and response["Cache-Control"] == "no-store"
        assert body["partial"] is True and body["news"] is None and body["errors"]["news"]
        assert body["weather"] and body["stocks"]
        assert json.loads((await client.get("")).content)["news"]

    fails_with(run(lesson12.check_partial_test, test_partial_failure),
               "passes on a view that sends the partial page with status 206", "Partial Content")


def test_12_6_a_test_that_ignores_cache_control_fails_with_a_hint(project):
    async def test_partial_failure(client):
        response = await client.get("?news=fail")
        body = json.loads(response.content)
        assert response.status_code == 200
        assert body["partial"] is True and body["news"] is None and body["errors"]["news"]
        assert body["weather"] and body["stocks"]
        assert json.loads((await client.get("")).content)["news"]

    fails_with(run(lesson12.check_partial_test, test_partial_failure),
               "passes on a view that lets browsers keep the partial page", "no-store")


def test_12_6_a_test_that_counts_the_upstream_calls_of_a_second_request_passes(project):
    async def test_partial_failure(client):
        from tutorial_project.dashboard.clients import default_upstream

        first = await client.get("?news=fail")
        body = first.json()
        assert first.status_code == 200 and first["Cache-Control"] == "no-store"
        assert body["partial"] and body["news"] is None and "news" in body["errors"]
        assert body["weather"] and body["stocks"]
        asked = default_upstream.calls["/news"]
        again = await client.get("?news=fail")  # the same key: a kept answer would come back
        assert again.json()["partial"] and default_upstream.calls["/news"] > asked

    verdict = run(lesson12.check_partial_test, test_partial_failure)
    assert verdict, str(verdict)


def test_12_6_a_test_that_asks_for_the_healthy_page_next_fails_with_a_hint(project):
    async def test_partial_failure(client):  # the old reference: "" is another cache key
        response = await client.get("?news=fail")
        body = json.loads(response.content)
        assert response.status_code == 200 and response["Cache-Control"] == "no-store"
        assert body["partial"] is True and body["news"] is None and body["errors"]["news"]
        assert body["weather"] and body["stocks"]
        recovered = json.loads((await client.get("")).content)  # news is back
        assert recovered["news"] and not recovered["partial"]

    fails_with(run(lesson12.check_partial_test, test_partial_failure),
               "passes on a view that caches the partial answer", "never cached",
               'cache.aget("capstone:widgets:weather=ok&stocks=ok&news=fail")')


def test_12_6_a_test_that_reads_the_wrong_cache_key_fails_with_a_hint(project):
    async def test_partial_failure(client):
        response = await client.get("?news=fail")
        body = json.loads(response.content)
        assert response.status_code == 200 and response["Cache-Control"] == "no-store"
        assert body["partial"] is True and body["news"] is None and body["errors"]["news"]
        assert body["weather"] and body["stocks"]
        assert await cache.aget("capstone:widgets:news=fail") is None  # never the view's key

    fails_with(run(lesson12.check_partial_test, test_partial_failure),
               "passes on a view that caches the partial answer")


def test_12_6_a_sync_cache_get_in_the_async_test_fails_with_a_hint(project):
    # Right in every assertion, but cache.get() on the loop, which check 12.3 refuses too.
    async def test_partial_failure(client):
        response = await client.get("?news=fail")
        body = json.loads(response.content)
        assert response.status_code == 200 and response["Cache-Control"] == "no-store"
        assert body["partial"] is True and body["news"] is None and body["errors"]["news"]
        assert body["weather"] and body["stocks"]
        assert cache.get("capstone:widgets:weather=ok&stocks=ok&news=fail") is None

    verdict = run(lesson12.check_partial_test, test_partial_failure)
    fails_with(verdict, "it called the sync cache.get() in async code", "await cache.aget(key)")


def test_12_6_a_test_that_never_asks_again_fails_with_a_hint(project):
    async def test_partial_failure(client):  # one request cannot see a cached partial answer
        response = await client.get("?news=fail")
        body = json.loads(response.content)
        assert response.status_code == 200 and response["Cache-Control"] == "no-store"
        assert body["partial"] is True and body["news"] is None and body["errors"]["news"]
        assert body["weather"] and body["stocks"]

    fails_with(run(lesson12.check_partial_test, test_partial_failure),
               "passes on a view that caches the partial answer", "never cached")


def test_12_6_placeholder_is_not_solved(project):
    assert not run(lesson12.check_partial_test, ...).solved


def test_12_6_status_only_test_fails_with_a_hint(project):
    async def status_only(client):
        response = await client.get("?news=fail")
        assert response.status_code == 200

    fails_with(run(lesson12.check_partial_test, status_only), "passes on", "partial")


def test_12_6_body_only_test_misses_the_wrong_status(project):
    async def body_only(client):
        response = await client.get("?news=fail")
        body = response.json()  # every field of the body, read with defaults; no status_code
        assert body.get("news") is None and body.get("partial", True)
        assert "news" in body.get("errors", {"news": 1})
        assert body.get("weather", 1) and body.get("stocks", 1)

    fails_with(run(lesson12.check_partial_test, body_only), "status_code == 200")


def test_12_6_swallowed_assertion_fails_with_a_hint(project):
    async def swallowed(client):
        response = await client.get("?news=fail")
        try:
            assert json.loads(response.content)["partial"] is True
        except (AssertionError, KeyError):
            pass

    fails_with(run(lesson12.check_partial_test, swallowed), "passes on")


def test_12_6_test_failing_on_the_correct_view_is_refused(project):
    async def wrong_expectation(client):
        response = await client.get("?news=fail")
        assert response.status_code == 502

    fails_with(run(lesson12.check_partial_test, wrong_expectation),
               "on the correct view it failed: AssertionError")


def test_12_6_a_test_that_requests_the_full_path_is_told_to_pass_the_query_only(project):
    async def full_path(client):  # how AsyncClient is used elsewhere; this client adds the path
        response = await client.get("/capstone/?news=fail")
        assert response.status_code == 200

    verdict = run(lesson12.check_partial_test, full_path)
    fails_with(verdict, "on the correct view it failed: ValueError",
               "takes the query string only", 'client.get("?news=fail")')
    assert "JSONDecodeError" not in str(verdict), str(verdict)


def test_12_6_forgotten_await_fails_with_a_hint(project):
    async def no_await(client):
        response = client.get("?news=fail")
        assert response.status_code == 200

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        verdict = run(lesson12.check_partial_test, no_await)
    fails_with(verdict, "`await` is missing")


# 12.7 -------------------------------------------------------------------------------------
def _load(concurrency, *, path="/capstone/", requests=5, middleware=True):
    from contextlib import nullcontext

    from tutorial_project import use_middleware
    from tutorial_project.capstone.middleware import cache_control_middleware
    from tutorial_project.instruments.loadtest.loadgen import run_load
    from tutorial_project.instruments.middleware.request_id import request_id_middleware
    from tutorial_project.instruments.servers import serve_in_process

    chain = (use_middleware(request_id_middleware, cache_control_middleware) if middleware
             else nullcontext())

    async def load_capstone():
        with chain:
            async with serve_in_process() as url:
                return await run_load(f"{url}{path}", concurrency=concurrency,
                                      requests_per_client=requests)

    return load_capstone


def _check_with_capstone_mounted(load_capstone):
    from tutorial_project import mount, unmount
    from tutorial_project.capstone.views import dashboard

    mount("capstone/", dashboard)
    try:
        return asyncio.run(lesson12.check_load_test(load_capstone))
    finally:
        unmount("capstone/")


def test_12_7_reference_passes(project):
    verdict = _check_with_capstone_mounted(_load(20))
    assert verdict, str(verdict)


def test_12_7_more_clients_fewer_rounds_also_passes(project):
    verdict = _check_with_capstone_mounted(_load(25, requests=4))
    assert verdict, str(verdict)


def test_12_7_without_the_middleware_fails_with_a_hint(project):
    fails_with(_check_with_capstone_mounted(_load(20, middleware=False)),
               "X-Request-ID and Cache-Control", "use_middleware")


def test_12_7_a_sleep_by_another_name_fails_with_a_hint(project):
    from time import sleep as settle  # a learner "lets the server start"

    from tutorial_project import use_middleware
    from tutorial_project.capstone.middleware import cache_control_middleware
    from tutorial_project.instruments.loadtest.loadgen import run_load
    from tutorial_project.instruments.middleware.request_id import request_id_middleware
    from tutorial_project.instruments.servers import serve_in_process

    async def load_capstone():  # right in every other way
        with use_middleware(request_id_middleware, cache_control_middleware):
            async with serve_in_process() as url:
                settle(0.05)
                return await run_load(f"{url}/capstone/", concurrency=20,
                                      requests_per_client=5)

    fails_with(_check_with_capstone_mounted(load_capstone), "blocking calls", "time.sleep",
               "await asyncio.sleep")


def test_12_7_placeholder_is_not_solved(project):
    assert not asyncio.run(lesson12.check_load_test(...)).solved


def test_12_7_one_client_fails_with_a_hint(project):
    fails_with(_check_with_capstone_mounted(_load(1)), "concurrency=20")


def test_12_7_wrong_path_fails_with_a_hint(project):
    fails_with(_check_with_capstone_mounted(_load(20, path="/capstone")), "/capstone/")


def test_12_7_forgotten_await_fails_with_a_hint(project):
    from tutorial_project.instruments.loadtest.loadgen import run_load
    from tutorial_project.instruments.servers import serve_in_process

    async def load_capstone():
        async with serve_in_process() as url:
            return run_load(f"{url}/capstone/", concurrency=20, requests_per_client=5)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        verdict = _check_with_capstone_mounted(load_capstone)
    fails_with(verdict, "`await` is missing")


# Handing the answers to the capstone -----------------------------------------------------------
def test_passing_answers_are_used_and_unsolved_steps_fall_back_to_the_labelled_reference(project):
    from tutorial_project.capstone import service

    async def my_summary():
        return await service.catalog_summary()

    lesson12._answers.clear()
    assert run(lesson12.check_catalog_summary, my_summary)
    run(lesson12.check_gather_sources, ...)

    async def broken_cache(key, compute, seconds=30):
        return await compute()

    assert not run(lesson12.check_cached, broken_cache)
    capstone = lesson12.your_capstone()
    assert capstone.pieces.catalog_summary is my_summary
    assert capstone.pieces.gather_sources is service.gather_sources
    assert capstone.pieces.cached is service.cached
    lines = str(capstone).splitlines()
    assert lines[0].split()[3:] == ["yours"]
    assert "reference (not solved yet)" in lines[1]
    assert "reference (yours does not pass check 12.3 yet)" in lines[2]
    lesson12._answers.clear()


# The learner copy --------------------------------------------------------------------------
def test_learner_copy_of_lesson_12_runs_to_the_end_and_says_not_solved_yet(tmp_path):
    from pathlib import Path

    import nbformat
    from test_learner_copies import NOT_SOLVED, execute, verdicts

    from tutorial_project.course.learner_copies import write_copies

    lesson = Path(__file__).resolve().parents[1] / "notebooks" / "12_capstone_async_dashboard.ipynb"
    [(path, _)] = write_copies([lesson], tmp_path)
    started = time.perf_counter()
    notebook = execute(nbformat.read(path, as_version=4), tmp_path)
    results = verdicts(notebook)
    assert len(results) == 8 and all(NOT_SOLVED in text for text in results), results
    shown = "".join(
        "".join(output.get("text", "")) for cell in notebook.cells if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )
    assert "reference (not solved yet)" in shown  # the demos say whose code they run
    assert time.perf_counter() - started < 300


# Blocking calls on the event loop, however short and under any name -----------------------
def _blocking_answers(reference):
    """Two wrong answers a learner writes: `from time import sleep`, an Event.wait; each
    then does exactly what the reference does."""

    async def sleeps(*args):
        sleep(0.001)
        return await reference(*args)

    async def waits(*args):
        threading.Event().wait(0.05)
        return await reference(*args)

    return {"time.sleep": sleeps, "Event.wait": waits}


def _refused_for_blocking(check, answers):
    for name, answer in answers.items():
        verdict = run(check, answer)
        fails_with(verdict, "blocking calls on the event loop's thread", name, "asyncio.sleep")


def test_12_1_blocking_calls_fail_with_a_hint(project):
    from tutorial_project.capstone.service import catalog_summary

    _refused_for_blocking(lesson12.check_catalog_summary, _blocking_answers(catalog_summary))


def test_12_2_blocking_calls_fail_with_a_hint(project):
    from tutorial_project.capstone.service import gather_sources

    _refused_for_blocking(lesson12.check_gather_sources, _blocking_answers(gather_sources))


def test_12_3_blocking_calls_fail_with_a_hint(project):
    from tutorial_project.capstone.service import cached

    _refused_for_blocking(lesson12.check_cached, _blocking_answers(cached))


def test_12_4_blocking_calls_fail_with_a_hint(project):
    from tutorial_project.capstone.service import dashboard_events

    async def sleeps(client):
        async for event in dashboard_events(client):
            sleep(0.001)
            yield event

    async def waits(client):
        async for event in dashboard_events(client):
            threading.Event().wait(0.05)
            yield event

    _refused_for_blocking(lesson12.check_dashboard_events,
                          {"time.sleep": sleeps, "Event.wait": waits})


def test_12_5_blocking_calls_fail_with_a_hint(project):
    from tutorial_project.capstone.middleware import cache_control_middleware

    def blocking(block):
        @async_only_middleware
        def middleware(get_response):
            inner = cache_control_middleware(get_response)

            async def call(request):
                block()
                return await inner(request)

            return call

        return middleware

    _refused_for_blocking(lesson12.check_middleware, {
        "time.sleep": blocking(lambda: sleep(0.001)),
        "Event.wait": blocking(lambda: threading.Event().wait(0.05)),
    })


def test_12_6_blocking_calls_fail_with_a_hint(project):
    _refused_for_blocking(lesson12.check_partial_test, _blocking_answers(partial_failure_test))


# 12.8 -------------------------------------------------------------------------------------
def test_12_8_reference_passes(project):
    from tutorial_project.capstone.stock import reserve

    verdict = run(lesson12.check_reserve, reserve)
    assert verdict, str(verdict)


def test_12_8_select_for_update_and_save_also_passes(project):
    from asgiref.sync import sync_to_async
    from django.db import transaction

    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product

    @sync_to_async
    def take(sku, quantity):
        with transaction.atomic():
            product = Product.objects.select_for_update().get(sku=sku)
            if product.stock < quantity:
                raise OutOfStock(f"only {product.stock}")
            product.stock -= quantity
            product.save(update_fields=["stock"])
            return product.stock

    async def reserve(sku, quantity):
        return await take(sku, quantity)

    verdict = run(lesson12.check_reserve, reserve)
    assert verdict, str(verdict)


def _locking_take(atomic=True, **flags):
    """select_for_update(**flags), the check, save(): run in atomic() or in autocommit."""
    from contextlib import nullcontext

    from asgiref.sync import sync_to_async
    from django.db import transaction

    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product

    @sync_to_async
    def take(sku, quantity):
        with transaction.atomic() if atomic else nullcontext():
            product = Product.objects.select_for_update(**flags).get(sku=sku)
            if product.stock < quantity:
                raise OutOfStock(f"only {product.stock}")
            product.stock -= quantity
            product.save(update_fields=["stock"])
            return product.stock

    async def reserve(sku, quantity):
        return await take(sku, quantity)

    return reserve


def test_12_8_skip_locked_is_refused_though_sqlite_runs_it(project):
    # PostgreSQL 15, 20 requests at once for 1 each of 5: a few ok, the rest DoesNotExist
    fails_with(run(lesson12.check_reserve, _locking_take(skip_locked=True)),
               "skip_locked=True", "DoesNotExist", "PostgreSQL", "plain select_for_update()")


def test_12_8_nowait_is_refused_though_sqlite_runs_it(project):
    # PostgreSQL 15, the same 20 requests: a few ok, the rest OperationalError
    fails_with(run(lesson12.check_reserve, _locking_take(nowait=True)),
               "nowait=True", "OperationalError", "plain select_for_update()")


def _lock_then_write_in_two_blocks(decorated=False):
    """select_for_update() in one atomic() block, the write in a second one: the lock went at
    the first block's commit, so the value written is stale."""
    from asgiref.sync import sync_to_async
    from django.db import transaction

    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product

    in_a_block = transaction.atomic(lambda run: run())  # one Atomic object for both blocks

    def block(run):
        if decorated:
            return in_a_block(run)
        with transaction.atomic():
            return run()

    @sync_to_async
    def take(sku, quantity):
        product = block(lambda: Product.objects.select_for_update().get(sku=sku))
        if product.stock < quantity:
            raise OutOfStock(f"only {product.stock}")
        product.stock -= quantity
        block(lambda: product.save(update_fields=["stock"]))
        return product.stock

    async def reserve(sku, quantity):
        return await take(sku, quantity)

    return reserve


def test_12_8_lock_and_write_in_two_atomic_blocks_is_refused(project):
    # PostgreSQL 15, 20 requests at once for 1 each of 5 (reviewer s25): 20 reserved, stock 1-3
    # Under load SQLite's 20 at once may oversell first (then that is the refusal shown).
    for decorated in (False, True):
        verdict = run(lesson12.check_reserve, _lock_then_write_in_two_blocks(decorated))
        fails_with(verdict)
        assert "reserved, stock now" in str(verdict) or all(hint in str(verdict) for hint in (
            "after the transaction in which you locked the row had committed",
            "lasts only until the end of the outermost atomic()",
            "same outermost atomic() block")), str(verdict)


def test_12_8_lock_and_write_in_one_block_then_return_after_it_passes(project):
    from asgiref.sync import sync_to_async
    from django.db import transaction

    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product

    @sync_to_async
    def take(sku, quantity):
        with transaction.atomic():
            product = Product.objects.select_for_update().get(sku=sku)
            if product.stock < quantity:
                raise OutOfStock(f"only {product.stock}")
            product.stock -= quantity
            product.save(update_fields=["stock"])
        return product.stock  # read in the block, returned after it: still its own take

    async def reserve(sku, quantity):
        return await take(sku, quantity)

    verdict = run(lesson12.check_reserve, reserve)
    assert verdict, str(verdict)


def test_12_8_select_for_update_outside_atomic_is_refused(project):
    # PostgreSQL: TransactionManagementError on every call; SQLite runs it as a plain SELECT
    fails_with(run(lesson12.check_reserve, _locking_take(atomic=False)),
               "outside transaction.atomic()", "TransactionManagementError",
               "with transaction.atomic()")


def test_12_8_select_for_update_outside_atomic_in_async_code_is_refused(project):
    from django.db.models import F

    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product

    async def reserve(sku, quantity):  # aget() runs in its own autocommit call: no lock held
        product = await Product.objects.select_for_update().aget(sku=sku)
        if not await Product.objects.filter(pk=product.pk, stock__gte=quantity).aupdate(
                stock=F("stock") - quantity):
            raise OutOfStock(f"only {product.stock}")
        return product.stock - quantity

    fails_with(run(lesson12.check_reserve, reserve), "outside transaction.atomic()",
               "TransactionManagementError")


def test_12_8_one_conditional_aupdate_reading_back_outside_a_transaction_is_refused(project):
    from django.db.models import F

    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product

    async def reserve(sku, quantity):  # no oversell (one UPDATE is atomic on its own), but
        # the read-back may see other requests' takes: two buyers can be told the same number
        taken = await Product.objects.filter(sku=sku, stock__gte=quantity).aupdate(
            stock=F("stock") - quantity)
        left = await Product.objects.values_list("stock", flat=True).aget(sku=sku)
        if not taken:
            raise OutOfStock(f"only {left}")
        return left

    fails_with(run(lesson12.check_reserve, reserve), "not the stock left right after its own take",
               "inside the same transaction")


def test_12_8_a_stock_read_before_a_conditional_aupdate_is_refused(project):
    from django.db.models import F

    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product

    async def reserve(sku, quantity):  # takes safely, but tells what it read before the take
        product = await Product.objects.aget(sku=sku)
        taken = await Product.objects.filter(pk=product.pk, stock__gte=quantity).aupdate(
            stock=F("stock") - quantity)
        if not taken:
            raise OutOfStock(f"only {product.stock}")
        return product.stock - quantity

    fails_with(run(lesson12.check_reserve, reserve), "not the stock left right after its own take",
               "inside the same transaction")


def test_12_8_a_conditional_update_whose_row_count_is_ignored_is_named_so(project):
    # A plain read, the check against it, then a conditional UPDATE whose count is ignored:
    # when another request took the stock in between, it takes nothing and answers success.
    from asgiref.sync import sync_to_async
    from django.db import transaction
    from django.db.models import F

    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product

    def take(sku, quantity):
        with transaction.atomic():
            stock = Product.objects.values_list("stock", flat=True).get(sku=sku)
            if stock < quantity:
                raise OutOfStock(f"only {stock}")
            Product.objects.filter(sku=sku, stock__gte=quantity).update(
                stock=F("stock") - quantity)
            return stock - quantity

    async def reserve(sku, quantity):
        return await sync_to_async(take)(sku, quantity)

    verdict = run(lesson12.check_reserve, reserve)
    fails_with(verdict, "took nothing (the stock is still 1), yet answered success",
               "its write changed no row", "raise OutOfStock when it is 0")
    assert "still took" not in str(verdict), str(verdict)


def test_12_8_a_stale_return_is_refused_by_the_rival_probe_alone(project):
    """The 20-request probe catches a stale return only if the requests interleave (they do,
    with its slow reads); the rival probe catches it on any machine, under any load."""
    from django.db.models import F

    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product

    async def reserve(sku, quantity):
        product = await Product.objects.aget(sku=sku)
        taken = await Product.objects.filter(pk=product.pk, stock__gte=quantity).aupdate(
            stock=F("stock") - quantity)
        if not taken:
            raise OutOfStock(f"only {product.stock}")
        return product.stock - quantity

    async def probe():
        async with lesson12._a_product_in_stock() as product:
            return await lesson12._reserve_with_a_rival(reserve, product, lesson12.RIVALS[0])

    assert lesson12.NOT_YOURS in asyncio.run(probe())


def test_12_8_a_conditional_update_written_with_gt_also_passes(project):
    from asgiref.sync import sync_to_async
    from django.db import transaction
    from django.db.models import F

    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product

    def take(sku, quantity):
        with transaction.atomic():
            taken = Product.objects.filter(sku=sku, stock__gt=quantity - 1).update(
                stock=F("stock") - quantity)
            left = Product.objects.values_list("stock", flat=True).get(sku=sku)
            if not taken:
                raise OutOfStock(f"only {left}")
            return left

    async def reserve(sku, quantity):
        return await sync_to_async(take)(sku, quantity)

    verdict = run(lesson12.check_reserve, reserve)
    assert verdict, str(verdict)


def test_12_8_an_update_guard_that_ignores_the_quantity_is_refused(project):
    from asgiref.sync import sync_to_async
    from django.db import transaction
    from django.db.models import F

    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product

    def take(sku, quantity):  # on PostgreSQL two reads of 1 both pass; the second UPDATE
        # finds 0 (stock >= 0 holds) and takes it to -1, which the stock's CHECK refuses
        with transaction.atomic():
            product = Product.objects.get(sku=sku)
            if product.stock < quantity:
                raise OutOfStock(f"only {product.stock}")
            Product.objects.filter(pk=product.pk, stock__gte=0).update(
                stock=F("stock") - quantity)
            return product.stock - quantity

    async def reserve(sku, quantity):
        return await sync_to_async(take)(sku, quantity)

    fails_with(run(lesson12.check_reserve, reserve), "on PostgreSQL", "raised IntegrityError",
               "was not locked", "select_for_update()", "stock__gte=quantity")


def test_12_8_a_lock_taken_after_a_plain_read_and_a_write_from_that_read_is_refused(project):
    from asgiref.sync import sync_to_async
    from django.db import transaction

    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product

    def take(sku, quantity):  # locks, but writes the stock it read before the lock
        with transaction.atomic():
            product = Product.objects.get(sku=sku)
            locked = Product.objects.select_for_update().get(sku=sku)
            if locked.stock < quantity:
                raise OutOfStock(f"only {locked.stock}")
            Product.objects.filter(pk=product.pk).update(stock=product.stock - quantity)
            return product.stock - quantity

    async def reserve(sku, quantity):
        return await sync_to_async(take)(sku, quantity)

    fails_with(run(lesson12.check_reserve, reserve), "on PostgreSQL", "lost",
               "select_for_update()")


def test_12_8_a_lock_inside_atomic_after_a_plain_read_there_is_refused(project):
    from asgiref.sync import sync_to_async
    from django.db import transaction

    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product

    def take(sku, quantity):
        with transaction.atomic():
            product = Product.objects.get(sku=sku)
            Product.objects.select_for_update().get(pk=product.pk)  # locked, result unused
            if product.stock < quantity:
                raise OutOfStock(f"only {product.stock}")
            product.stock -= quantity
            product.save(update_fields=["stock"])
            return product.stock

    async def reserve(sku, quantity):
        return await sync_to_async(take)(sku, quantity)

    fails_with(run(lesson12.check_reserve, reserve), "on PostgreSQL", "select_for_update()")


def test_12_8_a_lock_on_other_rows_is_refused(project):
    from asgiref.sync import sync_to_async
    from django.db import transaction

    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product

    def take(sku, quantity):  # locks some product, not this one
        with transaction.atomic():
            list(Product.objects.select_for_update().exclude(sku=sku).order_by("pk")[:1])
            product = Product.objects.get(sku=sku)
            if product.stock < quantity:
                raise OutOfStock(f"only {product.stock}")
            product.stock -= quantity
            product.save(update_fields=["stock"])
            return product.stock

    async def reserve(sku, quantity):
        return await sync_to_async(take)(sku, quantity)

    fails_with(run(lesson12.check_reserve, reserve), "on PostgreSQL", "select_for_update()")


def test_12_8_a_lock_on_the_whole_category_read_back_also_passes(project):
    from asgiref.sync import sync_to_async
    from django.db import transaction

    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product

    def take(sku, quantity):  # the lock's filter does not name the row, but it covers it
        with transaction.atomic():
            category = Product.objects.values_list("category", flat=True).get(sku=sku)
            rows = Product.objects.select_for_update().filter(category=category)
            product = next(row for row in rows if row.sku == sku)
            if product.stock < quantity:
                raise OutOfStock(f"only {product.stock}")
            product.stock -= quantity
            product.save(update_fields=["stock"])
            return product.stock

    async def reserve(sku, quantity):
        return await sync_to_async(take)(sku, quantity)

    verdict = run(lesson12.check_reserve, reserve)
    assert verdict, str(verdict)


def test_12_8_a_compare_and_set_retry_loop_also_passes(project):
    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product

    async def reserve(sku, quantity):  # take only if nobody changed it since the read
        while True:
            product = await Product.objects.aget(sku=sku)
            if product.stock < quantity:
                raise OutOfStock(f"only {product.stock}")
            changed = await Product.objects.filter(pk=product.pk, stock=product.stock).aupdate(
                stock=product.stock - quantity)
            if changed:
                return product.stock - quantity

    verdict = run(lesson12.check_reserve, reserve)
    assert verdict, str(verdict)


def test_12_8_an_f_take_that_relies_on_the_stock_constraint_also_passes(project):
    from asgiref.sync import sync_to_async
    from django.db import IntegrityError, transaction
    from django.db.models import F

    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product

    def take(sku, quantity):  # stock is a PositiveIntegerField: CHECK ("stock" >= 0)
        try:
            with transaction.atomic():
                if not Product.objects.filter(sku=sku).update(stock=F("stock") - quantity):
                    raise Product.DoesNotExist(sku)
                return Product.objects.values_list("stock", flat=True).get(sku=sku)
        except IntegrityError:
            raise OutOfStock(f"fewer than {quantity} left") from None

    async def reserve(sku, quantity):
        return await sync_to_async(take)(sku, quantity)

    verdict = run(lesson12.check_reserve, reserve)
    assert verdict, str(verdict)

def test_12_8_placeholder_is_not_solved(project):
    assert not run(lesson12.check_reserve, ...).solved


def test_12_8_a_methods_with_no_transaction_oversell(project):
    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product

    async def reserve(sku, quantity):
        product = await Product.objects.aget(sku=sku)
        if product.stock < quantity:
            raise OutOfStock(f"only {product.stock}")
        product.stock -= quantity
        await product.asave(update_fields=["stock"])
        return product.stock

    fails_with(run(lesson12.check_reserve, reserve), "20 requests at once", "reserved",
               "transaction.atomic()")


def test_12_8_a_process_local_asyncio_lock_is_refused_with_a_hint(project):
    # Serialised inside one process, so the 20 requests pass; another worker's take does not.
    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product

    locks = {}

    async def reserve(sku, quantity):
        async with locks.setdefault(asyncio.get_running_loop(), asyncio.Lock()):
            product = await Product.objects.aget(sku=sku)
            if product.stock < quantity:
                raise OutOfStock(f"only {product.stock}")
            product.stock -= quantity
            await product.asave(update_fields=["stock"])
            return product.stock

    fails_with(run(lesson12.check_reserve, reserve), "on PostgreSQL this can happen",
               "A lock in Python (asyncio.Lock, threading.Lock) does not help")


def test_12_8_saving_an_f_take_after_a_lock_depends_on_the_version(project):
    # Django 6.0+ reads the new stock back with UPDATE ... RETURNING; 5.2 leaves F() on it.
    import django
    from asgiref.sync import sync_to_async
    from django.db import transaction
    from django.db.models import F

    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product

    @sync_to_async
    def take(sku, quantity):
        with transaction.atomic():
            product = Product.objects.select_for_update().get(sku=sku)
            if product.stock < quantity:
                raise OutOfStock(f"only {product.stock}")
            product.stock = F("stock") - quantity
            product.save(update_fields=["stock"])
            return product.stock

    async def reserve(sku, quantity):
        return await take(sku, quantity)

    verdict = run(lesson12.check_reserve, reserve)
    if django.VERSION >= (6, 0):
        assert verdict, str(verdict)
    else:
        fails_with(verdict, "CombinedExpression", "refresh_from_db(fields=['stock'])")


def test_12_8_a_methods_inside_atomic_fail_with_a_hint(project):
    from django.db import transaction

    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product

    async def reserve(sku, quantity):
        with transaction.atomic():
            product = await Product.objects.aget(sku=sku)
            if product.stock < quantity:
                raise OutOfStock(f"only {product.stock}")
            product.stock -= quantity
            await product.asave(update_fields=["stock"])
            return product.stock

    fails_with(run(lesson12.check_reserve, reserve), "SynchronousOnlyOperation",
               "one sync function", "sync_to_async")


def test_12_8_read_then_save_in_atomic_is_refused_as_unsafe_on_postgresql(project):
    from asgiref.sync import sync_to_async
    from django.db import transaction

    from tutorial_project.capstone.stock import OutOfStock
    from tutorial_project.catalog.models import Product

    def take(sku, quantity):  # right on SQLite (BEGIN IMMEDIATE), oversells on PostgreSQL
        with transaction.atomic():
            product = Product.objects.get(sku=sku)
            if product.stock < quantity:
                raise OutOfStock(f"only {product.stock}")
            product.stock -= quantity
            product.save(update_fields=["stock"])
            return product.stock

    async def reserve(sku, quantity):
        return await sync_to_async(take)(sku, quantity)

    fails_with(run(lesson12.check_reserve, reserve), "on PostgreSQL", "select_for_update()",
               "stock__gte")


def test_12_8_a_thread_pool_fails_with_a_hint(project):
    from asgiref.sync import sync_to_async

    from tutorial_project.capstone.stock import reserve_stock

    async def reserve(sku, quantity):
        return await sync_to_async(reserve_stock, thread_sensitive=False)(sku, quantity)

    fails_with(run(lesson12.check_reserve, reserve), "thread_sensitive=False")


def test_12_8_no_out_of_stock_error_fails_with_a_hint(project):
    from asgiref.sync import sync_to_async
    from django.db.models import F

    from tutorial_project.catalog.models import Product

    def take(sku, quantity):  # takes nothing when short, but says nothing either
        Product.objects.filter(sku=sku, stock__gte=quantity).update(stock=F("stock") - quantity)
        return Product.objects.get(sku=sku).stock

    async def reserve(sku, quantity):
        return await sync_to_async(take)(sku, quantity)

    fails_with(run(lesson12.check_reserve, reserve), "raise OutOfStock")


def test_12_8_blocking_calls_fail_with_a_hint(project):
    from tutorial_project.capstone.stock import reserve

    _refused_for_blocking(lesson12.check_reserve, _blocking_answers(reserve))


def test_12_8_view_answers_bad_input_with_4xx_json_and_writes_nothing(project):
    from tutorial_project.capstone import views
    from tutorial_project.course.exercises.probes import call_view

    async def scenario():
        from tutorial_project.catalog.models import Product

        async with lesson12._a_product_in_stock() as product:
            answers = {}
            for label, body in [("not json", b"{"), ("a list", b"[1]"),
                                ("no quantity", json.dumps({"sku": product.sku}).encode()),
                                ("a string", json.dumps({"sku": product.sku,
                                                         "quantity": "2"}).encode()),
                                ("zero", json.dumps({"sku": product.sku, "quantity": 0}).encode()),
                                ("unknown", json.dumps({"sku": "NOPE", "quantity": 1}).encode()),
                                ("too many", json.dumps({"sku": product.sku,
                                                         "quantity": 6}).encode()),
                                ("two", json.dumps({"sku": product.sku, "quantity": 2}).encode())]:
                response = await call_view(views.reserve, method="post", data=body,
                                           content_type="application/json")
                answers[label] = (response.status_code, json.loads(response.content))
            left = (await Product.objects.aget(pk=product.pk)).stock
        return answers, left

    answers, left = asyncio.run(scenario())
    statuses = {label: status for label, (status, _) in answers.items()}
    assert statuses == {"not json": 400, "a list": 400, "no quantity": 400, "a string": 400,
                        "zero": 400, "unknown": 404, "too many": 409, "two": 200}, answers
    assert all("error" in body for status, body in answers.values() if status >= 400), answers
    assert answers["two"][1] == {"sku": lesson12.CHECK_SKU, "reserved": 2, "left": 3}
    assert left == 3  # only the one good request wrote


def test_12_8_the_reserve_view_is_csrf_exempt_and_a_view_of_ones_own_gets_403(project):
    # Lesson 12, step 8: under the project's MIDDLEWARE (CsrfViewMiddleware), a POST with no
    # CSRF token reaches make_reserve's view, and gets 403 from a POST view without the exemption.
    from django.http import JsonResponse

    from tutorial_project import mount, unmount
    from tutorial_project.capstone.views import make_reserve
    from tutorial_project.course.exercises.probes import quiet_request_log
    from tutorial_project.instruments.request_burst import asgi_client

    async def reserve(sku, quantity):
        return 7

    async def mine(request):
        return JsonResponse({"ok": True})

    async def scenario():
        mount("exercise-12-8/reserve/", make_reserve(reserve))
        mount("exercise-12-8/mine/", mine)
        try:
            async with asgi_client() as client:
                with quiet_request_log():
                    return [(await client.post(f"/exercise-12-8/{route}/",
                                               json={"sku": "CF-001", "quantity": 1})).status_code
                            for route in ("reserve", "mine")]
        finally:
            unmount("exercise-12-8/reserve/")
            unmount("exercise-12-8/mine/")

    assert asyncio.run(scenario()) == [200, 403]
