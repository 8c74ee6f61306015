"""Lesson 03 checks: the reference solutions and answers written differently pass; placeholders
are "not solved yet"; the wrong answers learners write fail with a hint, and print nothing."""

import asyncio
import contextvars
import hashlib
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from time import sleep as imported_sleep

import pytest
from asgiref.sync import ThreadSensitiveContext, async_to_sync, sync_to_async

pytestmark = pytest.mark.usefixtures("project")  # tests/conftest.py: start() in this process


def verdict_of(check, answer):
    from tutorial_project.course.exercises import lesson03

    return asyncio.run(getattr(lesson03, check)(answer))


def failed_with(verdict, *fragments):
    text = str(verdict)
    assert not verdict.passed and verdict.solved, text
    assert "hint:" in text, text
    for fragment in fragments:
        assert fragment in text, text


# --- 03.1 prices_for: sync code calls async code -------------------------------------------


def prices_for(fetch_price, skus):  # the reference, as in the notebook
    async def fetch_all():
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(fetch_price(sku)) for sku in skus]
        except* Exception as failed:  # the view's plain `except` catches the first error
            raise failed.exceptions[0]  # noqa: B904  (the error itself, not a new one)
        return [task.result() for task in tasks]

    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))


async def together(fetch_price, skus):  # the reference's fetches, for the answers below
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(fetch_price(sku)) for sku in skus]
    except* Exception as failed:
        raise failed.exceptions[0]  # noqa: B904
    return [task.result() for task in tasks]


def gathers_and_leaves_the_others_running(fetch_price, skus):  # the old reference: orphans
    async def fetch_all():
        return await asyncio.gather(*(fetch_price(sku) for sku in skus))

    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))


def gathers_and_cancels_the_others(fetch_price, skus):  # right: gather, cancel, wait, raise
    async def fetch_all():
        tasks = [asyncio.ensure_future(fetch_price(sku)) for sku in skus]
        try:
            return await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))


def cancels_the_others_without_waiting(fetch_price, skus):  # their cleanup finds no bridge
    async def fetch_all():
        tasks = [asyncio.ensure_future(fetch_price(sku)) for sku in skus]
        try:
            return await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            raise

    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))


def reads_the_cancelled_results(fetch_price, skus):  # CancelledError, not the fetch's error
    async def fetch_all():
        tasks = [asyncio.ensure_future(fetch_price(sku)) for sku in skus]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return [task.result() for task in tasks]

    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))


def prices_for_with_a_task_group(fetch_price, skus):  # right, written differently
    @async_to_sync
    async def fetch_all():
        try:
            async with asyncio.TaskGroup() as group:
                tasks = {sku: group.create_task(fetch_price(sku)) for sku in skus}
        except* Exception as failed:  # a plain `except` in the view catches the first error
            raise failed.exceptions[0]  # noqa: B904  (the error itself, not a new one)
        return {sku: task.result() for sku, task in tasks.items()}

    return fetch_all()


def prices_in_a_task_group_left_wrapped(fetch_price, skus):  # a group reaches the view: 500
    @async_to_sync
    async def fetch_all():
        async with asyncio.TaskGroup() as group:
            tasks = {sku: group.create_task(fetch_price(sku)) for sku in skus}
        return {sku: task.result() for sku, task in tasks.items()}

    return fetch_all()


def returns_the_failures_as_prices(fetch_price, skus):  # an exception object as a "price"
    async def fetch_all():
        return await asyncio.gather(*(fetch_price(s) for s in skus), return_exceptions=True)

    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))


def prices_a_failure_as_none(fetch_price, skus):  # the failure becomes a missing price
    async def one(sku):
        try:
            return await fetch_price(sku)
        except Exception:  # noqa: BLE001
            return None

    async def fetch_all():
        return await asyncio.gather(*(one(sku) for sku in skus))

    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))


class PricesUnavailable(Exception):
    pass


def raises_its_own_error_from_the_fetches(fetch_price, skus):  # right: the cause is kept
    async def fetch_all():
        return await together(fetch_price, skus)

    try:
        return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))
    except Exception as error:
        raise PricesUnavailable("the price service failed") from error


def hides_the_fetch_error_from_none(fetch_price, skus):  # the cause is gone from the traceback
    async def fetch_all():
        return await asyncio.gather(*(fetch_price(sku) for sku in skus))

    try:
        return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))
    except Exception:
        raise PricesUnavailable("the price service failed") from None


def sync_orm_in_the_bridged_coroutine(fetch_price, skus):  # runs on the loop: refused
    from tutorial_project.catalog.models import Product

    async def fetch_all():
        Product.objects.count()
        return await asyncio.gather(*(fetch_price(sku) for sku in skus))

    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))


def sync_orm_in_prices_for_itself(fetch_price, skus):  # right: prices_for's thread may query
    from tutorial_project.catalog.models import Product

    async def fetch_all():
        return await together(fetch_price, skus)

    assert Product.objects.count() >= 0
    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))


def one_async_to_sync_per_sku(fetch_price, skus):  # sequential
    return {sku: async_to_sync(fetch_price)(sku) for sku in skus}


def with_asyncio_run(fetch_price, skus):  # a second event loop in the worker thread
    async def fetch_all():
        return await asyncio.gather(*(fetch_price(sku) for sku in skus))

    return dict(zip(skus, asyncio.run(fetch_all()), strict=True))


def forgot_the_bridge(fetch_price, skus):  # coroutines, never run
    return {sku: fetch_price(sku) for sku in skus}


def sleeps_in_the_bridged_coroutine(fetch_price, skus):  # blocks the serving loop
    async def fetch_all():
        time.sleep(0.2)  # "a rate limit": runs on the loop async_to_sync sends it back to
        return await asyncio.gather(*(fetch_price(sku) for sku in skus))

    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))


def sleeps_by_its_imported_name(fetch_price, skus):  # `from time import sleep`, and short:
    async def fetch_all():  # well under the loop-pause bound, yet it holds every request
        imported_sleep(0.05)
        return await asyncio.gather(*(fetch_price(sku) for sku in skus))

    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))


def waits_for_an_event_in_the_bridged_coroutine(fetch_price, skus):  # any blocking call
    async def fetch_all():
        threading.Event().wait(0.05)
        return await asyncio.gather(*(fetch_price(sku) for sku in skus))

    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))


TOKEN_LOCK = threading.Lock()  # "another request" holds it while it refreshes a token


def hold_the_token_lock(seconds):
    """Hold TOKEN_LOCK on another thread for ``seconds``; return once it is held."""
    held = threading.Event()

    def hold():
        with TOKEN_LOCK:
            held.set()
            time.sleep(seconds)

    threading.Thread(target=hold).start()
    held.wait()


def waits_for_a_held_lock_in_the_bridged_coroutine(fetch_price, skus):  # `with`, not acquire()
    hold_the_token_lock(0.3)  # shorter than the loop-pause bound: only its name gives it away

    async def fetch_all():
        with TOKEN_LOCK:  # "protect the shared client": the loop waits for the other request
            pass
        return await asyncio.gather(*(fetch_price(sku) for sku in skus))

    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))


class TokenClient:
    def __init__(self):
        self.lock = threading.RLock()


TOKEN_CLIENT = TokenClient()


def waits_for_a_held_rlock_attribute_in_the_bridged_coroutine(fetch_price, skus):
    held, release = threading.Event(), threading.Event()

    def hold():  # another request holds the client's RLock until the coroutine has tried
        with TOKEN_CLIENT.lock:
            held.set()
            release.wait(0.3)

    threading.Thread(target=hold).start()
    held.wait()

    async def fetch_all():
        with TOKEN_CLIENT.lock:
            return await asyncio.gather(*(fetch_price(sku) for sku in skus))

    try:
        return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))
    finally:
        release.set()


def takes_a_free_lock_in_the_bridged_coroutine(fetch_price, skus):  # right: nobody holds it,
    async def fetch_all():  # so taking it costs microseconds (a counter, a shared dict)
        with TOKEN_LOCK:
            pass
        return await together(fetch_price, skus)

    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))


def waits_for_the_lock_in_prices_for_itself(fetch_price, skus):  # right: its own thread waits
    hold_the_token_lock(0.1)
    with TOKEN_LOCK:
        pass

    async def fetch_all():
        return await together(fetch_price, skus)

    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))


def computes_in_the_bridged_coroutine(fetch_price, skus):  # ~0.8 s of CPU on the loop
    async def fetch_all():
        sum(i * i for i in range(8_000_000))  # "warm up": CPU work holds the loop too
        return await asyncio.gather(*(fetch_price(sku) for sku in skus))

    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))


def reads_a_slow_pipe_in_the_bridged_coroutine(fetch_price, skus):  # a wait nobody names
    reader, writer = os.pipe()
    threading.Timer(0.8, os.write, (writer, b"token")).start()  # on prices_for's thread

    async def fetch_all():
        os.read(reader, 5)  # holds the loop 0.8 s, with no CPU and no name the check knows
        return await asyncio.gather(*(fetch_price(sku) for sku in skus))

    try:
        return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))
    finally:
        os.close(reader)
        os.close(writer)


def computes_briefly_in_the_bridged_coroutine(fetch_price, skus):  # ~0.25 s of CPU: under
    async def fetch_all():  # the pause bound, yet every request waits for it
        sum(i * i for i in range(5_000_000))  # a fixed amount of work, not a wall-clock wait
        return await asyncio.gather(*(fetch_price(sku) for sku in skus))

    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))


def signs_the_request_in_the_bridged_coroutine(fetch_price, skus):  # ~0.25 s of hashing
    async def fetch_all():
        hashlib.pbkdf2_hmac("sha256", b"request", b"salt", 1_000_000)
        return await asyncio.gather(*(fetch_price(sku) for sku in skus))

    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))


def signs_the_request_in_its_own_thread(fetch_price, skus):  # right: the CPU work off the loop
    hashlib.pbkdf2_hmac("sha256", b"request", b"salt", 400_000)

    async def fetch_all():
        return await together(fetch_price, skus)

    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))


def sync_cache_in_the_bridged_coroutine(fetch_price, skus):  # a Redis round trip on the loop
    from django.core.cache import cache

    async def fetch_all():
        prices = await asyncio.gather(*(fetch_price(sku) for sku in skus))
        cache.set_many(dict(zip(skus, prices, strict=True)), 60)
        return prices

    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))


def sync_cache_in_its_own_thread(fetch_price, skus):  # right: the sync cache off the loop
    from django.core.cache import cache

    async def fetch_all():
        return await together(fetch_price, skus)

    prices = dict(zip(skus, async_to_sync(fetch_all)(), strict=True))
    cache.set_many(prices, 60)
    return prices


def awaits_in_turn_in_one_bridge(fetch_price, skus):  # one bridge call, sequential awaits
    async def fetch_all():
        return {sku: await fetch_price(sku) for sku in skus}

    return async_to_sync(fetch_all)()


kept_prices = {}


def keeps_prices_from_earlier_calls(fetch_price, skus):  # the second call fetches nothing
    async def fetch_missing(missing):
        return await together(fetch_price, missing)

    missing = [sku for sku in skus if sku not in kept_prices]
    if missing:
        kept_prices.update(zip(missing, async_to_sync(fetch_missing)(missing), strict=True))
    return {sku: kept_prices[sku] for sku in skus}


def sleeps_in_its_own_thread(fetch_price, skus):  # right: the sleep holds only this thread
    time.sleep(0.05)

    async def fetch_all():
        return await together(fetch_price, skus)

    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))


def async_to_sync_of_gather(fetch_price, skus):  # gather is not async: called on this thread
    return dict(zip(skus, async_to_sync(asyncio.gather)(*map(fetch_price, skus)), strict=True))


def returns_gather_unawaited(fetch_price, skus):  # the async function forgot its await
    async def fetch_all():
        return asyncio.gather(*(fetch_price(sku) for sku in skus))

    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))


def async_to_sync_on_the_default_pool(fetch_price, skus):  # works or not by the pool's past
    async def fetch_all():
        fetch_one = async_to_sync(fetch_price)
        return await asyncio.gather(*(asyncio.to_thread(fetch_one, sku) for sku in skus))

    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))


def async_to_sync_on_a_pool_of_its_own(fetch_price, skus):  # a new loop on each thread
    with ThreadPoolExecutor(len(skus)) as pool:
        return dict(zip(skus, pool.map(async_to_sync(fetch_price), skus), strict=True))


def async_to_sync_inside_sync_to_async(fetch_price, skus):  # reaches the loop, a thread each
    async def fetch_all():
        fetch_one = sync_to_async(async_to_sync(fetch_price), thread_sensitive=False)
        return await asyncio.gather(*(fetch_one(sku) for sku in skus))

    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))


def pairs_prices_in_done_set_order(fetch_price, skus):  # a set has no order: skus mixed up
    async def fetch_all():
        done, _ = await asyncio.wait([asyncio.ensure_future(fetch_price(s)) for s in skus])
        return [task.result() for task in done]

    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))


def pairs_prices_in_completion_order(fetch_price, skus):  # as_completed: finishing order
    async def fetch_all():
        return [await next_done for next_done in asyncio.as_completed(
            [fetch_price(s) for s in skus])]

    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))


def pairs_skus_as_they_complete(fetch_price, skus):  # right: each result carries its sku
    async def priced(sku):
        return sku, await fetch_price(sku)

    async def fetch_all():
        tasks = [asyncio.ensure_future(priced(sku)) for sku in skus]
        try:
            return dict([await pair for pair in asyncio.as_completed(tasks)])
        finally:  # on an error, the others must not run on after async_to_sync returns
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    return async_to_sync(fetch_all)()


def waits_on_run_coroutine_threadsafe(fetch_price, skus):  # deadlocks on an ORM a-method
    from asgiref.sync import SyncToAsync

    loop = SyncToAsync.threadlocal.main_event_loop  # the loop noted on this thread (cell 10)

    async def fetch_all():
        return await asyncio.gather(*(fetch_price(sku) for sku in skus))

    future = asyncio.run_coroutine_threadsafe(fetch_all(), loop)
    return dict(zip(skus, future.result(), strict=True))


def waits_on_run_coroutine_threadsafe_with_a_timeout(fetch_price, skus):  # gives up, 1 s
    from asgiref.sync import SyncToAsync

    async def fetch_all():
        return await asyncio.gather(*(fetch_price(sku) for sku in skus))

    future = asyncio.run_coroutine_threadsafe(fetch_all(),
                                              SyncToAsync.threadlocal.main_event_loop)
    return dict(zip(skus, future.result(timeout=1), strict=True))


def reads_a_file_in_the_bridged_coroutine(fetch_price, skus):  # a price list, on the loop
    async def fetch_all():
        with open(__file__, "rb") as prices_file:
            prices_file.read()
        return await together(fetch_price, skus)

    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))


def reads_a_file_in_prices_for_itself(fetch_price, skus):  # right: its own thread reads
    with open(__file__, "rb") as prices_file:
        prices_file.read()

    async def fetch_all():
        return await together(fetch_price, skus)

    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))


def at_most_two_at_a_time(fetch_price, skus):  # one bridge, but a semaphore caps it
    async def fetch_all():
        limit = asyncio.Semaphore(2)

        async def one(sku):
            async with limit:
                return await fetch_price(sku)

        return await asyncio.gather(*(one(sku) for sku in skus))

    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))


async def async_prices_for(fetch_price, skus):  # its callers are sync: they cannot await it
    return dict(zip(skus, await asyncio.gather(*(fetch_price(s) for s in skus)), strict=True))


@pytest.mark.parametrize(
    "answer",
    [prices_for, prices_for_with_a_task_group, gathers_and_cancels_the_others,
     reads_a_file_in_prices_for_itself, sleeps_in_its_own_thread,
     sync_cache_in_its_own_thread, pairs_skus_as_they_complete,
     raises_its_own_error_from_the_fetches, sync_orm_in_prices_for_itself,
     signs_the_request_in_its_own_thread, takes_a_free_lock_in_the_bridged_coroutine,
     waits_for_the_lock_in_prices_for_itself],
)
def test_03_1_right_answers_pass(answer):
    verdict = verdict_of("check_prices_for", answer)
    assert verdict.passed, str(verdict)


@pytest.mark.parametrize(
    "answer, fragments",
    [
        (one_async_to_sync_per_sku, ["at most 1 of 4 fetches", "awaits all the fetches together",
                                     "TaskGroup"]),
        (with_asyncio_run, ["different event loop", "async_to_sync"]),
        (forgot_the_bridge, ["an `await` is missing", "coroutine"]),
        (async_prices_for, ["is an async function", "def prices_for"]),
        (sleeps_in_the_bridged_coroutine, ["time.sleep(0.2) ran on the event loop's thread",
                                           "asyncio.sleep"]),
        (sleeps_by_its_imported_name, ["made a blocking call on the event loop: time.sleep",
                                       "imported from time"]),
        (waits_for_an_event_in_the_bridged_coroutine, ["blocking call on the event loop: "
                                                       "threading.Event.wait", "Event.wait"]),
        (waits_for_a_held_lock_in_the_bridged_coroutine, [
            "blocking call on the event loop: a `with` on a threading lock",
            "asyncio.Lock"]),
        (waits_for_a_held_rlock_attribute_in_the_bridged_coroutine, [
            "blocking call on the event loop: a `with` on a threading lock"]),
        (computes_in_the_bridged_coroutine, ["s of CPU in one go on the event loop",
                                             "belongs in prices_for itself"]),
        (reads_a_slow_pipe_in_the_bridged_coroutine, ["the event loop stood still",
                                                      "only await"]),
        (computes_briefly_in_the_bridged_coroutine, ["s of CPU in one go on the event loop",
                                                     "belongs in prices_for itself"]),
        (signs_the_request_in_the_bridged_coroutine, ["s of CPU in one go on the event loop",
                                                      "belongs in prices_for itself"]),
        (sync_cache_in_the_bridged_coroutine, ["called the sync cache.set_many()",
                                               "await cache.aset_many"]),
        (at_most_two_at_a_time, ["at most 2 of 4 fetches", "asyncio.Semaphore",
                                 "with no limit"]),
        (awaits_in_turn_in_one_bridge, ["at most 1 of 4 fetches",
                                        "even inside one async_to_sync call", "TaskGroup"]),
        (async_to_sync_of_gather, ["There is no current event loop",
                                   "calls the function you give it at once",
                                   "TaskGroup"]),
        # Either error comes first: "await wasn't used with future" in prices_for, or
        # fetch_price's thread-sensitive call, run after the bridge returned: one hint
        (returns_gather_unawaited, ["gather(...) unawaited?", "Awaiting it is not enough",
                                    "TaskGroup"]),
        (async_to_sync_on_the_default_pool, ["called on another thread than prices_for's",
                                             "default pool", "what ran on those threads",
                                             "async_to_sync once, in prices_for itself"]),
        (async_to_sync_on_a_pool_of_its_own, ["called on another thread than prices_for's",
                                              "a pool or threads of your own",
                                              "started a new event loop"]),
        (waits_on_run_coroutine_threadsafe, ["deadlock", "waited 3.0 s for the thread",
                                              "only blocks the thread",
                                              "async_to_sync(fetch_all)()"]),
        (waits_on_run_coroutine_threadsafe_with_a_timeout, ["prices_for raised TimeoutError",
                                                             "only blocks the thread"]),
        (async_to_sync_inside_sync_to_async, ["called on another thread than prices_for's",
                                              "inside a sync_to_async call",
                                              "held a thread while it waited"]),
        (returns_the_failures_as_prices, ["fetch_price raised PriceUnavailable for F-2",
                                          "prices_for returned {", "return_exceptions=True"]),
        (prices_a_failure_as_none, ["fetch_price raised PriceUnavailable for F-2",
                                    "'F-2': None", "return None` hides it"]),
        (prices_in_a_task_group_left_wrapped, ["prices_for raised it inside an ExceptionGroup",
                                               "answers 500, not 502",
                                               "except* PriceUnavailable"]),
        (hides_the_fetch_error_from_none, ["from None: the traceback no longer shows",
                                           "PriceUnavailable that caused it", "from error"]),
        (reads_a_file_in_the_bridged_coroutine, [
            "made a blocking call on the event loop: open() (sync file I/O)", "a file read"]),
        (cancels_the_others_without_waiting, [
            "fetches ran on after prices_for had raised",
            "CurrentThreadExecutor already quit", "wait for them"]),
        (reads_the_cancelled_results, [
            "prices_for raised CancelledError", "cannot answer 502",
            "re-raise the fetch's error"]),
        (gathers_and_leaves_the_others_running, [
            "fetches ran on after prices_for had raised",
            "CurrentThreadExecutor already quit", "TaskGroup", "cancel the unfinished"]),
        (sync_orm_in_the_bridged_coroutine, ["prices_for raised SynchronousOnlyOperation",
                                             "refuses the sync ORM", "acount()",
                                             "in prices_for itself"]),
    ],
)
def test_03_1_wrong_answers_fail_with_a_hint_and_no_warning(answer, fragments, recwarn):
    verdict = verdict_of("check_prices_for", answer)
    failed_with(verdict, *fragments)
    assert "never awaited" not in str(verdict), str(verdict)  # not the news: it failed before
    assert not [w for w in recwarn if "never awaited" in str(w.message)]


# Every 03.1 hint that says how to fetch together: what it says, followed to the letter.
HINTED_BY_TOGETHER = [one_async_to_sync_per_sku, awaits_in_turn_in_one_bridge,
                      at_most_two_at_a_time, async_to_sync_of_gather, returns_gather_unawaited,
                      async_to_sync_on_the_default_pool, async_to_sync_on_a_pool_of_its_own,
                      async_to_sync_inside_sync_to_async]


def answer_written_from_the_hint():
    """prices_for built from the code the hint quotes, and nothing else."""
    from tutorial_project.course.exercises.lesson03 import TOGETHER

    quoted = re.findall(r"`([^`]*)`", TOGETHER)
    group, result, unwrap = (next(code for code in quoted if code.startswith(start))
                             for start in ("async with", "return", "except*"))
    group_head, group_body = group.split(": ", 1)
    unwrap_head, unwrap_body = unwrap.split(": ", 1)
    source = (
        "def prices_for(fetch_price, skus):\n"
        "    async def fetch_all():\n"
        "        try:\n"
        f"            {group_head}:\n"
        f"                {group_body}\n"
        f"        {unwrap_head}:\n"
        f"            {unwrap_body}\n"
        f"        {result}\n"
        "    return dict(zip(skus, async_to_sync(fetch_all)(), strict=True))\n"
    )
    namespace = {"asyncio": asyncio, "async_to_sync": async_to_sync}
    exec(source, namespace)  # noqa: S102  (the hint's own code)
    return namespace["prices_for"]


@pytest.mark.parametrize("answer", HINTED_BY_TOGETHER)
def test_03_1_hints_suggest_what_the_check_accepts(answer, recwarn):  # asgiref's warning kept
    from tutorial_project.course.exercises.lesson03 import TOGETHER

    verdict = verdict_of("check_prices_for", answer)
    failed_with(verdict, TOGETHER)
    # A plain gather of the fetches is refused (it leaves them running): no hint offers it.
    assert "await asyncio.gather(*(fetch_price" not in str(verdict), str(verdict)
    assert "return await asyncio.gather(...)`" not in str(verdict), str(verdict)


def test_03_1_the_hinted_answer_passes():
    verdict = verdict_of("check_prices_for", answer_written_from_the_hint())
    assert verdict.passed, str(verdict)


@pytest.mark.parametrize("answer", [pairs_prices_in_done_set_order,
                                    pairs_prices_in_completion_order])
def test_03_1_prices_paired_in_another_order_fail_every_time(answer):
    for _ in range(3):  # with four skus, a random order looks right 1 time in 24
        failed_with(verdict_of("check_prices_for", answer), "each price paired with the sku")


def test_03_1_prices_kept_from_an_earlier_call_are_named_not_blamed_on_concurrency():
    kept_prices.clear()
    first = verdict_of("check_prices_for", keeps_prices_from_earlier_calls)
    assert first.passed, str(first)
    failed_with(verdict_of("check_prices_for", keeps_prices_from_earlier_calls),
                "fetch_price was called for 0 of the 4 skus", "earlier call")


@pytest.mark.parametrize("order", [["check", "run off-loop calls", "check"],
                                   ["run off-loop calls", "check", "check"]])
def test_03_1_a_bridge_on_the_default_pool_gets_one_verdict_whatever_ran_there_before(order):
    """async_to_sync on a thread of the loop's default pool reaches the serving loop only if
    an earlier thread_sensitive=False call noted that loop on the thread. Same answer, same
    verdict: on the new pool of a fresh kernel, and on one whose threads all carry the note."""
    from tutorial_project.course.exercises.lesson03 import check_prices_for

    async def in_one_kernel():
        verdicts = []
        for step in order:
            if step == "check":
                verdicts.append(str(await check_prices_for(async_to_sync_on_the_default_pool)))
            else:  # more calls than the pool has threads, long enough to start every thread
                call = sync_to_async(time.sleep, thread_sensitive=False)
                await asyncio.gather(*(call(0.1) for _ in range(40)))
        return verdicts

    first, second = asyncio.run(in_one_kernel())
    assert first == second, (first, second)
    assert "called on another thread than prices_for's" in first, first


# --- 03.2 lookup_many: a blocking library, concurrently, off the loop ----------------------


async def lookup_many(lookup, skus):  # the reference
    call = sync_to_async(lookup, thread_sensitive=False)
    return await asyncio.gather(*(call(sku) for sku in skus))


async def lookup_many_with_to_thread(lookup, skus):  # right, written differently
    results = await asyncio.gather(*(asyncio.to_thread(lookup, sku) for sku in skus))
    return list(results)


lookup_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="lookup")  # built once


async def lookup_many_with_own_pool(lookup, skus):  # right: a module-level pool, a TaskGroup
    call = sync_to_async(lookup, thread_sensitive=False, executor=lookup_pool)
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(call(sku)) for sku in skus]
    except ExceptionGroup as failed:  # unwrapped: the view's plain `except` catches it
        raise failed.exceptions[0] from None  # the lookup's own error: nothing is hidden
    return tuple(task.result() for task in tasks)


async def lookups_in_a_task_group_left_wrapped(lookup, skus):  # `except LookupFailed`: a 500
    call = sync_to_async(lookup, thread_sensitive=False)
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(call(sku)) for sku in skus]
    return [task.result() for task in tasks]


async def waits_for_the_first_exception(lookup, skus):  # right, written differently
    call = sync_to_async(lookup, thread_sensitive=False)
    tasks = [asyncio.ensure_future(call(sku)) for sku in skus]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    for task in pending:
        task.cancel()
    for task in done:
        if task.exception() is not None:
            raise task.exception()
    return [task.result() for task in tasks]


async def a_new_pool_per_call(lookup, skus):  # new threads on every request, never shut down
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(len(skus))
    return await asyncio.gather(*(loop.run_in_executor(pool, lookup, sku) for sku in skus))


async def a_pool_per_call_shut_down(lookup, skus):  # shut down, but new threads every time
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=len(skus)) as pool:
        return await asyncio.gather(*(loop.run_in_executor(pool, lookup, s) for s in skus))


async def a_thread_per_sku(lookup, skus):  # raw threads: new OS threads on every request
    results = {}

    def one(sku):
        results[sku] = lookup(sku)

    threads = [threading.Thread(target=one, args=(sku,)) for sku in skus]
    for thread in threads:
        thread.start()
    for thread in threads:
        await asyncio.to_thread(thread.join)
    return [results[sku] for sku in skus]


async def lookup_many_with_run_in_executor(lookup, skus):  # right: the loop's default pool
    loop = asyncio.get_running_loop()
    return await asyncio.gather(*(loop.run_in_executor(None, lookup, sku) for sku in skus))


async def lookup_many_with_anyio(lookup, skus):  # right: Starlette's way, anyio's capped pool
    import anyio.to_thread  # its worker threads are started by anyio, and reused while idle

    return await asyncio.gather(*(anyio.to_thread.run_sync(lookup, sku) for sku in skus))


lazy_pool = None


async def lookup_many_with_a_pool_made_on_first_use(lookup, skus):  # right: one pool, kept
    global lazy_pool
    if lazy_pool is None:
        lazy_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="lazy-lookup")
    loop = asyncio.get_running_loop()
    return await asyncio.gather(*(loop.run_in_executor(lazy_pool, lookup, s) for s in skus))


async def a_thread_sensitive_context_per_call(lookup, skus):  # one request thread in a view
    async def one(sku):
        async with ThreadSensitiveContext():
            return await sync_to_async(lookup)(sku)

    return await asyncio.gather(*(one(sku) for sku in skus))


async def a_request_thread_per_lookup(lookup, skus):  # asgiref builds 4 new pools per call
    async def one(sku):  # a fresh context: this ThreadSensitiveContext is the outer-most one
        async with ThreadSensitiveContext():
            return await sync_to_async(lookup)(sku)

    tasks = [asyncio.create_task(one(sku), context=contextvars.Context()) for sku in skus]
    return await asyncio.gather(*tasks)


def copy_without_the_request(function, *args):  # the same, written with Context.run
    async def in_a_context_of_its_own():
        async with ThreadSensitiveContext():
            return await sync_to_async(function)(*args)

    return contextvars.Context().run(asyncio.ensure_future, in_a_context_of_its_own())


async def a_request_thread_per_lookup_with_context_run(lookup, skus):
    return await asyncio.gather(*(copy_without_the_request(lookup, sku) for sku in skus))


async def counts_products_on_the_request_thread(lookup, skus):  # right: one ORM query there
    from tutorial_project.catalog.models import Product

    assert await Product.objects.acount() >= 0  # thread-sensitive: the request's own thread
    call = sync_to_async(lookup, thread_sensitive=False)
    tasks = [asyncio.create_task(call(sku), context=contextvars.Context()) for sku in skus]
    return await asyncio.gather(*tasks)


async def blocks_the_loop(lookup, skus):
    return [lookup(sku) for sku in skus]


async def blocking_sleep_then_threads(lookup, skus):  # one lookup on the loop "to warm up"
    first = lookup(skus[0])
    call = sync_to_async(lookup, thread_sensitive=False)
    return [first, *await asyncio.gather(*(call(sku) for sku in skus[1:]))]


async def thread_sensitive(lookup, skus):
    return await asyncio.gather(*(sync_to_async(lookup)(sku) for sku in skus))


async def one_call_that_loops(lookup, skus):  # thread_sensitive=False, but one thread in turn
    return await sync_to_async(lambda: [lookup(s) for s in skus], thread_sensitive=False)()


async def one_after_another(lookup, skus):
    call = sync_to_async(lookup, thread_sensitive=False)
    return [await call(sku) for sku in skus]


async def gather_not_awaited(lookup, skus):
    call = sync_to_async(lookup, thread_sensitive=False)
    return asyncio.gather(*(call(sku) for sku in skus))


async def calls_not_awaited(lookup, skus):
    call = sync_to_async(lookup, thread_sensitive=False)
    return [call(sku) for sku in skus]


async def pool_map_on_the_loop(lookup, skus):  # threads, but the loop waits for them
    with ThreadPoolExecutor(len(skus)) as pool:
        return list(pool.map(lookup, skus))


async def submit_then_result(lookup, skus):  # the same, written with futures
    with ThreadPoolExecutor(len(skus)) as pool:
        futures = [pool.submit(lookup, sku) for sku in skus]
        return [future.result() for future in futures]


async def sleeps_while_the_threads_start(lookup, skus):  # "give the threads time to start"
    call = sync_to_async(lookup, thread_sensitive=False)
    tasks = [asyncio.ensure_future(call(sku)) for sku in skus]
    time.sleep(0.2)
    return await asyncio.gather(*tasks)


async def sync_cache_around_the_threads(lookup, skus):  # the sync cache API, on the loop
    from django.core.cache import cache

    keys = {f"stock:{sku}": sku for sku in skus}
    found = {keys[key]: value for key, value in cache.get_many(list(keys)).items()}
    missing = [sku for sku in skus if sku not in found]
    call = sync_to_async(lookup, thread_sensitive=False)
    fresh = dict(zip(missing, await asyncio.gather(*(call(sku) for sku in missing)), strict=True))
    cache.set_many({f"stock:{sku}": value for sku, value in fresh.items()}, 0)
    return [found.get(sku) or fresh[sku] for sku in skus]


async def async_cache_around_the_threads(lookup, skus):  # right: the a-twins
    from django.core.cache import cache

    keys = {f"stock:{sku}": sku for sku in skus}
    found = {keys[key]: value for key, value in (await cache.aget_many(list(keys))).items()}
    missing = [sku for sku in skus if sku not in found]
    call = sync_to_async(lookup, thread_sensitive=False)
    fresh = dict(zip(missing, await asyncio.gather(*(call(sku) for sku in missing)), strict=True))
    await cache.aset_many({f"stock:{sku}": value for sku, value in fresh.items()}, 0)
    return [found.get(sku) or fresh[sku] for sku in skus]


_REFRESH, _REFRESHING = threading.Event(), threading.Event()


def refresh_the_token_forever():  # one background thread, started once: takes TOKEN_LOCK
    while True:  # for 0.2 s whenever a refresh is asked for
        _REFRESH.wait()
        _REFRESH.clear()
        with TOKEN_LOCK:
            _REFRESHING.set()
            time.sleep(0.2)


threading.Thread(target=refresh_the_token_forever, daemon=True).start()


def start_a_token_refresh():  # returns once the refresher holds TOKEN_LOCK
    _REFRESHING.clear()
    _REFRESH.set()
    _REFRESHING.wait()


async def waits_for_a_held_lock_on_the_loop(lookup, skus):  # the loop waits for a thread's lock
    await asyncio.to_thread(start_a_token_refresh)
    with TOKEN_LOCK:  # shorter than any pause bound: only its name gives it away
        call = sync_to_async(lookup, thread_sensitive=False)
        return await asyncio.gather(*(call(sku) for sku in skus))


async def signs_each_request_on_the_loop(lookup, skus):  # ~1 s of CPU on the loop, per call
    for sku in skus:
        hashlib.pbkdf2_hmac("sha256", sku.encode(), b"salt", 300_000)
    call = sync_to_async(lookup, thread_sensitive=False)
    return await asyncio.gather(*(call(sku) for sku in skus))


async def computes_a_little_on_the_loop(lookup, skus):  # right: a few ms of CPU per call
    for sku in skus:
        hashlib.pbkdf2_hmac("sha256", sku.encode(), b"salt", 1_000)
    call = sync_to_async(lookup, thread_sensitive=False)
    return await asyncio.gather(*(call(sku) for sku in skus))


async def returns_the_exceptions(lookup, skus):  # a failure becomes an item of the list
    call = sync_to_async(lookup, thread_sensitive=False)
    return await asyncio.gather(*(call(sku) for sku in skus), return_exceptions=True)


async def swallows_the_errors(lookup, skus):  # a failure becomes None
    async def one(sku):
        try:
            return await sync_to_async(lookup, thread_sensitive=False)(sku)
        except Exception:  # noqa: BLE001
            return None

    return await asyncio.gather(*(one(sku) for sku in skus))


class StockUnavailable(Exception):
    pass


async def raises_its_own_error_from_the_lookups(lookup, skus):  # right: the cause is kept
    call = sync_to_async(lookup, thread_sensitive=False)
    try:
        return await asyncio.gather(*(call(sku) for sku in skus))
    except Exception as error:
        raise StockUnavailable("the stock service failed") from error


async def raises_its_own_error_while_handling_it(lookup, skus):  # right: chained implicitly
    call = sync_to_async(lookup, thread_sensitive=False)
    try:
        return await asyncio.gather(*(call(sku) for sku in skus))
    except Exception:
        raise StockUnavailable("the stock service failed")  # noqa: B904  (the context is kept)


async def hides_the_lookup_error_from_none(lookup, skus):  # the traceback loses the cause
    call = sync_to_async(lookup, thread_sensitive=False)
    try:
        return await asyncio.gather(*(call(sku) for sku in skus))
    except Exception:
        raise StockUnavailable("the stock service failed") from None


def sync_lookup_many(lookup, skus):
    return [lookup(sku) for sku in skus]


@pytest.mark.parametrize(
    "answer",
    [
        lookup_many,
        lookup_many_with_to_thread,
        lookup_many_with_own_pool,
        lookup_many_with_run_in_executor,
        lookup_many_with_anyio,
        lookup_many_with_a_pool_made_on_first_use,
        async_cache_around_the_threads,
        computes_a_little_on_the_loop,
        counts_products_on_the_request_thread,
        raises_its_own_error_from_the_lookups,
        raises_its_own_error_while_handling_it,
        waits_for_the_first_exception,
    ],
)
def test_03_2_right_answers_pass(answer):
    verdict = verdict_of("check_lookup_many", answer)
    assert verdict.passed, str(verdict)


@pytest.mark.parametrize(
    "answer, fragments",
    [
        (blocks_the_loop, ["ran on the event loop's thread"]),
        (blocking_sleep_then_threads, ["ran on the event loop's thread"]),
        (thread_sensitive, ["at most 1 of 4 lookups", "ran on the request's thread",
                            "thread_sensitive=False"]),
        (one_after_another, ["at most 1 of 4 lookups", "asyncio.gather", "awaiting each call"]),
        (one_call_that_loops, ["at most 1 of 4 lookups", "loops over the skus",
                               "wrap lookup itself"]),
        (
            a_thread_sensitive_context_per_call,
            ["at most 1 of 4 lookups", "ran on the request's thread",
             "ThreadSensitiveContext of your own"],
        ),
        (pool_map_on_the_loop, ["did not run at all", "pool.map()"]),
        (submit_then_result, ["did not run at all", "future.result()"]),
        (gather_not_awaited, ["an `await` is missing", "Future of asyncio.gather"]),
        (calls_not_awaited, ["an `await` is missing"]),
        (sync_lookup_many, ["not an async function"]),
        (sleeps_while_the_threads_start, ["time.sleep(0.2) ran on the event loop's thread",
                                          "asyncio.sleep"]),
        (sync_cache_around_the_threads, ["called the sync cache.get_many() on the event loop",
                                         "aget_many"]),
        (a_new_pool_per_call, ["built 1 ThreadPoolExecutor again in a second call",
                                 "at module level"]),
        (a_pool_per_call_shut_down, ["built 1 ThreadPoolExecutor", "no cap",
                                     "at module level"]),
        (a_thread_per_sku, ["started 4 new threads", "second call", "no cap",
                              "at module level"]),
        (a_request_thread_per_lookup, ["4 ThreadSensitiveContexts of its own",
                                       "a new thread for each", "thread_sensitive=False"]),
        (a_request_thread_per_lookup_with_context_run, ["4 ThreadSensitiveContexts of its own",
                                                        "thread_sensitive=False"]),
        (waits_for_a_held_lock_on_the_loop, ["made a blocking call on the event loop: "
                                             "a `with` on a threading lock"]),
        (signs_each_request_on_the_loop, ["s of CPU in one go on the event loop",
                                          "belongs in a thread too"]),
        (returns_the_exceptions, ["lookup raised LookupFailed for CF-003",
                                  "lookup_many returned [", "return_exceptions=True"]),
        (swallows_the_errors, ["lookup raised LookupFailed for CF-003",
                               "lookup_many returned [", "return None` hides it"]),
        (lookups_in_a_task_group_left_wrapped, ["lookup_many raised it inside an ExceptionGroup",
                                                "`except LookupFailed:` does not catch a group",
                                                "answers 500, not 502",
                                                "raise group.exceptions[0]"]),
        (hides_the_lookup_error_from_none, ["lookup_many raised StockUnavailable",
                                            "from None: the traceback no longer shows",
                                            "LookupFailed that caused it", "from error"]),
    ],
)
def test_03_2_wrong_answers_fail_with_a_hint_and_no_warning(answer, fragments, recwarn):
    failed_with(verdict_of("check_lookup_many", answer), *fragments)
    assert not [w for w in recwarn if "never awaited" in str(w.message)]


NO_LOCAL_NOTE = "your lookups ran where asgiref's Local values did not reach"


@pytest.mark.parametrize(
    "answer, noted",
    [
        (lookup_many, False),
        (lookup_many_with_own_pool, False),  # sync_to_async(executor=...) carries Local too
        (lookup_many_with_to_thread, True),
        (lookup_many_with_run_in_executor, True),
        (lookup_many_with_a_pool_made_on_first_use, True),
        (lookup_many_with_anyio, True),
    ],
)
def test_03_2_lookups_without_asgiref_local_pass_with_a_note(answer, noted):
    """Right for this lookup, which reads no Local, but not for Django code (cell 45): the
    check passes such an answer and says so, and says nothing to sync_to_async answers."""
    verdict = verdict_of("check_lookup_many", answer)
    assert verdict.passed, str(verdict)
    assert (NO_LOCAL_NOTE in str(verdict)) == noted, str(verdict)
    if noted:
        assert "sync_to_async(fn, thread_sensitive=False)" in str(verdict), str(verdict)


def test_03_2_answers_that_start_their_threads_once_pass_every_time_in_one_loop():
    """anyio's workers, or a pool made on first use, are new in the first call only: the
    verdict is the same on the first check in a loop as on the next ones."""
    from tutorial_project.course.exercises.lesson03 import check_lookup_many

    global lazy_pool
    lazy_pool = None

    async def three_checks_in_one_loop(answer):
        return [await check_lookup_many(answer) for _ in range(3)]

    for answer in [lookup_many_with_anyio, lookup_many_with_a_pool_made_on_first_use]:
        verdicts = asyncio.run(three_checks_in_one_loop(answer))
        assert all(verdicts), [str(verdict) for verdict in verdicts]


@pytest.mark.parametrize("check", ["check_prices_for", "check_lookup_many"])
def test_placeholders_are_not_solved_yet(check):
    verdict = verdict_of(check, ...)
    assert not verdict.passed and not verdict.solved
    assert "not solved yet" in str(verdict)


@pytest.mark.parametrize("check, answer", [("check_prices_for", prices_for),
                                            ("check_lookup_many", lookup_many)])
def test_right_answers_pass_while_the_machine_is_busy(check, answer):
    """Timing margins: a CPU-bound thread competing for the GIL does not fail a right answer."""
    stop = threading.Event()

    def burn():
        while not stop.is_set():
            sum(range(10_000))

    burners = [threading.Thread(target=burn) for _ in range(2)]
    for burner in burners:
        burner.start()
    try:
        started = time.perf_counter()
        verdict = verdict_of(check, answer)
    finally:
        stop.set()
        for burner in burners:
            burner.join()
    assert verdict.passed, (str(verdict), time.perf_counter() - started)


def test_an_earlier_attempts_coroutines_are_not_blamed_on_the_next_answer(recwarn):
    """The wrong attempt's coroutines stay in a reference cycle (its failure's traceback)
    until some garbage collection: the right answer checked next must not fail for them."""
    from tutorial_project.course.exercises.lesson03 import check_prices_for

    async def one_after_the_other():  # in one kernel: one event loop for both checks
        return [await check_prices_for(answer) for answer in attempts]

    attempts = [async_to_sync_of_gather, prices_for_with_a_task_group]
    wrong, right = asyncio.run(one_after_the_other())
    assert not wrong.passed, str(wrong)
    assert right.passed, str(right)


def test_03_2_one_call_that_loops_is_not_told_to_pass_thread_sensitive_false():
    verdict = verdict_of("check_lookup_many", one_call_that_loops)  # it already passes False
    failed_with(verdict, "loops over the skus")
    assert "ran on the request's thread" not in str(verdict), str(verdict)
