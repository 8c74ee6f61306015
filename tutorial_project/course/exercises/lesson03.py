"""Checks for lesson 03 · Bridging sync and async."""

import asyncio
import gc
import inspect
import sys
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from itertools import pairwise

from asgiref.local import Local
from asgiref.sync import (
    AsyncToSync,
    SyncToAsync,
    ThreadSensitiveContext,
    iscoroutinefunction,
    markcoroutinefunction,
    sync_to_async,
)
from django.core.exceptions import SynchronousOnlyOperation

from tutorial_project.course.exercises.core import exercise
from tutorial_project.course.exercises.expect import (
    LoopCPU,
    blocking_calls_on_this_thread,
    file_opens_on_this_thread,
    forgotten_awaits,
    lock_withs_on_this_thread,
    made_by_the_surroundings,
    must_be_async,
    no_forgotten_await,
    sleeps_on_this_thread,
    sync_cache_calls_on_this_thread,
)

SKUS = ["BK-001", "CF-003", "GM-002", "TL-003"]
# Stands for Django's per-request state in asgiref's Local (the active language): check
# 03.2 sets it, and its lookup notes whether it reached the lookup's thread.
REQUEST_LOCAL = Local()
# A second, quieter call of prices_for: eight skus with eight different prices, so that an
# answer that pairs skus with prices in completion or set order (1 chance in 24 to look right
# with four skus) is caught, 1 chance in 40,320 to slip through.
MORE_SKUS = [f"P-{n}" for n in range(8, 0, -1)]
# The blocking calls known by name (a sleep under any name, Event.wait, a socket, a DNS
# lookup, a wait for a child process, a sync cache call, a thread lock held elsewhere, taken
# with acquire() or `with`) are caught however short: expect's watchers name them. CPU work
# is caught by the loop's CPU time (LOOP_CPU_STEP). The loop's
# pauses catch the rest (a read from a file), and only the long ones: with two threads
# burning CPU on a 2-core machine at load 13-18, a right answer's loop stood still for up
# to 0.34 s; a 0.3 s file read passes.
LONGEST_FAIR_PAUSE = 0.5
# The loop's CPU time is measured apart from its pauses (time.thread_time, which a busy
# machine does not add to): a right answer spends well under 10 ms of CPU in one step of
# the loop; 0.1 s is a computation of its own (signing, hashing) that holds every request.
LOOP_CPU_STEP = 0.1


class Concurrency:
    """Counts how many calls run at once, and on which threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.running = 0
        self.most_running = 0
        self.threads = set()
        self.first_start = self.last_end = None  # time.perf_counter() values

    def enter(self):
        with self.lock:
            if self.first_start is None:
                self.first_start = time.perf_counter()
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            self.threads.add(threading.current_thread())

    def leave(self):
        with self.lock:
            self.running -= 1
            self.last_end = time.perf_counter()


class LoopTicks:
    """A task that notes the time every 10 ms, whenever the event loop lets it run."""

    async def __aenter__(self):
        self.times = []
        self._task = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, *exc_info):
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self.times.append(time.perf_counter())  # a pause just before the end counts too

    async def _tick(self):
        while True:
            self.times.append(time.perf_counter())
            await asyncio.sleep(0.01)

    def any_between(self, start, end):
        return start is not None and end is not None and any(start < t < end for t in self.times)

    def longest_pause(self):
        """The longest time, in seconds, the loop let no tick run."""
        return max((b - a for a, b in pairwise(self.times)), default=0.0)


# A thread-sensitive call in fetch_price waits at most this long for its thread: a right
# answer runs it within milliseconds, a deadlocked one never (it would hang the check).
THREAD_SENSITIVE_DEADLINE = 3.0
DEADLOCKED = "deadlock"


def _no_op():
    return None


def price_of(sku):
    return Decimal(f"{10 + sum(map(ord, sku)) % 40}.50")


class PriceUnavailable(Exception):
    """What the check's fetch_price raises for one sku in one run: its service failed."""


# The run in which fetch_price fails asks for skus no other run asks for: an answer that keeps
# prices from an earlier call (judged on its own) must still fetch these.
FAILING_RUN_SKUS = ["F-1", "F-2", "F-3"]
FAILING_PRICE_SKU = FAILING_RUN_SKUS[1]


class LoopBoundFetch(Concurrency):
    """An async price client bound to the event loop it was made on.

    Like an ``httpx.AsyncClient`` or a database pool created at start-up, it works only on
    its own loop; on another loop it fails the way those do.
    """

    def __init__(self, delay, fails_for=None, others_delay=None):
        super().__init__()
        self.delay = delay
        self.fails_for = fails_for  # a sku whose fetch raises PriceUnavailable
        # the other fetches' wait when one fails: they are still running when it fails
        self.others_delay = delay if others_delay is None else others_delay
        self.orphans = []  # fetches whose thread-sensitive call after the wait found no bridge
        self.home_loop = asyncio.get_running_loop()
        self.skus = set()  # the skus it was asked for
        self.tasks = set()  # the asyncio tasks that awaited it: one task awaits one at a time
        self.made = weakref.WeakSet()  # the coroutines it returned
        markcoroutinefunction(self)

    def __call__(self, sku):
        coroutine = self.fetch_price(sku)  # named so: a warning about it reads "fetch_price"
        self.made.add(coroutine)
        return coroutine

    def close_unstarted(self):
        """Close the coroutines that never started, which Python would report as "never
        awaited": when the answer failed before it could await them, that is not the news."""
        for coroutine in list(self.made):
            if inspect.getcoroutinestate(coroutine) == inspect.CORO_CREATED:
                coroutine.close()

    async def fetch_price(self, sku):
        if asyncio.get_running_loop() is not self.home_loop:
            raise RuntimeError("fetch_price's connection is attached to a different event loop")
        # Like a real client with an ORM lookup in it (a cached token, a rate-limit row): one
        # thread-sensitive call. async_to_sync runs it on the thread that waits for the
        # coroutine; a bridge that only blocks that thread (run_coroutine_threadsafe(...)
        # .result()) leaves it queued for that very thread: a deadlock, cut short here.
        try:
            await asyncio.wait_for(sync_to_async(_no_op)(), THREAD_SENSITIVE_DEADLINE)
        except TimeoutError:
            raise RuntimeError(
                f"{DEADLOCKED}: fetch_price's thread-sensitive call (an ORM query, "
                f"a sync_to_async call) waited {THREAD_SENSITIVE_DEADLINE} s for the thread "
                "that was waiting for fetch_price") from None
        self.skus.add(sku)
        self.tasks.add(asyncio.current_task())
        self.enter()
        try:
            if sku == self.fails_for:
                await asyncio.sleep(self.delay)
                raise PriceUnavailable(f"the price service failed for {sku}")
            try:
                await asyncio.sleep(self.others_delay)
            except asyncio.CancelledError:
                # Cleanup when cancelled (giving back a connection, an audit row): one more
                # thread-sensitive call, which needs the bridge still open: a fetch cancelled
                # but not awaited before async_to_sync returns finds it gone.
                await self._thread_sensitive_call()
                raise
            # A second thread-sensitive call, after the wait (caching the price, an audit
            # row): a fetch left running after async_to_sync has returned finds its bridge
            # gone here ("CurrentThreadExecutor already quit or is broken").
            if not await self._thread_sensitive_call():
                return None  # noted; judged by the check, not logged as never retrieved
        finally:
            self.leave()
        return price_of(sku)

    async def _thread_sensitive_call(self):
        """Whether a thread-sensitive call went through; the error is noted if not."""
        try:
            await sync_to_async(_no_op)()
        except RuntimeError as error:
            self.orphans.append(f"{type(error).__name__}: {error}")
            return False
        return True

    async def settled(self, patience=2.0):
        """Wait (at most ``patience`` s) for fetches the answer left running: gather does not
        cancel the others when one fails, and they must not run into the next check."""
        until = time.perf_counter() + patience
        while self.running and time.perf_counter() < until:
            await asyncio.sleep(0.01)


@contextmanager
def async_to_sync_calls():
    """Yield a list that ends up holding, for each ``async_to_sync(...)(...)`` call made in the
    block, on any thread: ``(thread, inside_sync_to_async)``, the second true when the call ran
    inside a sync_to_async call's worker (which had just noted its loop on that thread)."""
    calls = []
    real_call = AsyncToSync.__call__

    def noted_call(self, *args, **kwargs):
        frame, inside = sys._getframe(1), False
        while frame is not None and not inside:
            inside = (frame.f_code is SyncToAsync.thread_handler.__code__)
            frame = frame.f_back
        calls.append((threading.current_thread(), inside))
        return real_call(self, *args, **kwargs)

    AsyncToSync.__call__ = noted_call
    try:
        yield calls
    finally:
        AsyncToSync.__call__ = real_call


# What the 03.1 hints suggest for fetching together: a plain `await asyncio.gather(...)` is
# not it, since it leaves the other fetches running when one fails (refused further down).
TOGETHER = (
    "in a TaskGroup, which runs them at the same time and, when one fails, cancels the others "
    "and waits for them: `async with asyncio.TaskGroup() as group: tasks = "
    "[group.create_task(fetch_price(sku)) for sku in skus]`, then `return [task.result() for "
    "task in tasks]`; a plain `except` misses the group it raises, so unwrap it (`except* "
    "Exception as group: raise group.exceptions[0]`)"
)


AWAITED_TOGETHER = (
    "Awaiting it is not enough either: when a fetch fails, gather leaves the others running, "
    f"and they fail the same way. Await the fetches {TOGETHER}"
)


def _refuse_bridges_from_other_threads(check, calls, own_thread):
    """async_to_sync belongs on prices_for's own thread. Called on another one, it reaches the
    serving loop only if that thread carries asgiref's note of it (a sync_to_async call ran
    there before), else it starts a new loop: a verdict that would depend on what ran on a
    pool thread earlier in the kernel. Judged by where it was called, it does not."""
    elsewhere = [(thread, inside) for thread, inside in calls if thread is not own_thread]
    if not elsewhere:
        check.that(True, "no async_to_sync call was made on another thread than prices_for's", "")
        return
    if any(inside for _, inside in elsewhere):
        what = ("inside a sync_to_async call, on a pool thread: that call noted its loop on the "
                "thread for async_to_sync to find, and each fetch held a thread while it waited")
    elif all(thread.name.startswith("asyncio_") for thread, _ in elsewhere):
        what = ("on threads of the event loop's default pool (asyncio.to_thread, "
                "run_in_executor(None, ...)): there it reaches fetch_price's loop only if an "
                "earlier thread_sensitive=False call left asgiref's note of that loop on the "
                "thread, else it starts a new loop, where fetch_price fails; so whether it "
                "works depends on what ran on those threads before")
    else:
        what = ("on threads of a pool or threads of your own: nothing noted this loop there, "
                "so async_to_sync started a new event loop on each, where fetch_price fails")
    check.that(
        False, "",
        f"async_to_sync was called on another thread than prices_for's own, {what}",
        hint="call async_to_sync once, in prices_for itself, with one async function "
        f"(`async def fetch_all():`) that awaits the fetches together, {TOGETHER}; in async "
        "code, await fetch_price directly, with no thread in between",
    )


def _hint_for_runtime_error(message):
    if message.startswith((f"RuntimeError: {DEADLOCKED}", "TimeoutError")):
        return ("`async_to_sync` runs the coroutine's thread-sensitive calls (every ORM "
                "a-method) on prices_for's thread while that thread waits; "
                "`asyncio.run_coroutine_threadsafe(...).result()` only blocks the thread, so "
                "the call waits for a thread that waits for it, and the request hangs: "
                "bridge with `async_to_sync(fetch_all)()`")
    if "different event loop" in message:
        return ("a second event loop ran the fetches (`asyncio.run()`, a loop of your own, "
                "`force_new_loop=True`); `async_to_sync(an_async_function)(...)`, called in "
                "prices_for, runs it on the loop that is already running, where "
                "fetch_price's connection lives")
    if message.startswith("SynchronousOnlyOperation"):  # a sync query in the coroutine
        return ("the coroutine you pass to async_to_sync runs on the event loop, where Django "
                "refuses the sync ORM: in it, use the a-methods (`await "
                "Product.objects.acount()`), or run the query in prices_for itself, before "
                "or after the async_to_sync call: its own thread may query")
    if "no current event loop" in message:  # async_to_sync(asyncio.gather)(...)
        return ("async_to_sync calls the function you give it at once, on prices_for's "
                "thread, where no loop runs: give it an async function (`async def "
                f"fetch_all():`) that awaits the fetches {TOGETHER}")
    if "already quit" in message:  # `return asyncio.gather(...)`: fetch_price's hop, late
        return ("fetch_price was still running after async_to_sync had returned, so its "
                "thread-sensitive call found the bridge gone: did the async function return "
                f"asyncio.gather(...) unawaited? {AWAITED_TOGETHER}")
    if "await wasn't used with future" in message:  # `return asyncio.gather(...)`
        return ("a Future was used without `await`: did the async function return "
                f"asyncio.gather(...) unawaited? {AWAITED_TOGETHER}")
    return ("read the error above; bridge once, with `async_to_sync(an_async_function)(...)`, "
            "from prices_for's own thread")


@exercise("03.1", "Sync code that needs async code")
async def check_prices_for(check, prices_for):
    check.that(
        callable(prices_for) and not iscoroutinefunction(prices_for),
        "prices_for is a plain (sync) function",
        "prices_for is an async function: its callers are sync code and cannot await it",
        hint="define it with `def prices_for(fetch_price, skus):` and bridge inside it",
    )
    fetch_price = LoopBoundFetch(delay=0.3)
    # Called the way an async view calls sync code under ASGIHandler: through a
    # thread-sensitive sync_to_async, inside the request's ThreadSensitiveContext.
    # async_to_sync sends the bridged coroutine back to this loop (the one serving every
    # request): a blocking call in it freezes the whole server, however short. A time.sleep
    # is counted with its seconds; the other blocking calls (a sleep imported by name, an
    # Event.wait, a socket, a sync cache call) are named; one nobody knows by name shows as
    # a pause between the loop's ticks.
    own_thread = []

    def called_as_a_view_would(fetch_price, skus):
        own_thread.append(threading.current_thread())
        return prices_for(fetch_price, skus)

    failure = None
    with (
        forgotten_awaits() as missed,
        sleeps_on_this_thread() as sleeps,
        sync_cache_calls_on_this_thread() as cache_calls,
        blocking_calls_on_this_thread(made_by_the_surroundings) as blocking,
        lock_withs_on_this_thread() as lock_withs,
        file_opens_on_this_thread() as file_opens,
        async_to_sync_calls() as bridges,
    ):
        try:
            async with ThreadSensitiveContext(), LoopTicks() as ticks:
                result = await sync_to_async(called_as_a_view_would)(fetch_price, SKUS)
        # TimeoutError: a wait of the answer's own; SynchronousOnlyOperation: a sync query
        except (RuntimeError, TimeoutError, SynchronousOnlyOperation) as error:
            fetch_price.close_unstarted()
            failure = f"{type(error).__name__}: {error}"
    # Before the error it may have caused: where async_to_sync was called decides whether it
    # fails, and the verdict must not depend on what ran on a pool thread before.
    _refuse_bridges_from_other_threads(check, bridges, own_thread[0] if own_thread else None)
    if failure is not None:
        check.that(False, "", f"prices_for raised {failure}",
                   hint=_hint_for_runtime_error(failure))
    no_forgotten_await(check, missed, result)
    expected = {sku: price_of(sku) for sku in SKUS}
    loop_cpu = None  # measured in the second call, where no watcher slows the loop
    if result == expected:  # right by chance? Eight skus make chance hopeless
        more_expected = {sku: price_of(sku) for sku in MORE_SKUS}
        gc.collect()  # a full collection falling in this call would count as the answer's
        try:
            async with ThreadSensitiveContext(), LoopCPU() as loop_cpu:
                more = await sync_to_async(prices_for)(LoopBoundFetch(delay=0.05), MORE_SKUS)
        except Exception as error:  # noqa: BLE001  (judged below)
            more = error
        if more != more_expected:
            result, expected = more, more_expected
    check.that(
        result == expected,
        "it returns {sku: price} for every sku",
        f"it returned {result!r}, expected {expected!r}",
        hint="return a dict: {sku: price}, one entry per sku, each price paired with the sku "
        "it was fetched for: gather returns the results in the order of its arguments, "
        "asyncio.wait's done set and as_completed in no such order",
    )
    _refuse_loop_blockers(
        check, sleeps, blocking + lock_withs + file_opens, cache_calls,
        who="the coroutine you pass to async_to_sync", named_ok="the bridged coroutine",
        sleep_hint="in async code wait with `await asyncio.sleep(...)`; keep blocking calls in "
        "prices_for itself (its own thread), outside the async function",
        named_hint="in the async function, only await (`await asyncio.sleep(...)`, "
        "`await fetch_price(...)`); a blocking call (`sleep` imported from time, "
        "`Event.wait`, a sync client, a `with` on a threading lock, a file read) belongs in "
        "prices_for itself, outside the async function; async code that must wait for "
        "another request takes an `asyncio.Lock`",
        cache_hint="in the async function use the a-twins (`await cache.aget_many(...)`, "
        "`await cache.aset_many(...)`), or call the sync cache in prices_for itself, "
        "outside the async function",
    )
    # CPU work first, by the loop's CPU time: a busy machine stretches its pause, not its CPU.
    cpu = loop_cpu.longest if loop_cpu is not None else 0.0
    check.that(
        cpu < LOOP_CPU_STEP,
        f"the bridged coroutine computed less than {LOOP_CPU_STEP} s of CPU at a time on the "
        "event loop",
        f"the coroutine you pass to async_to_sync computed {cpu:.2f} s of CPU in one go on "
        "the event loop: no other request moved meanwhile",
        hint="in the async function, only await; CPU work (hashing, signing, parsing a large "
        "document) belongs in prices_for itself, on its own thread, before or after the "
        "async_to_sync call",
    )
    # The loop ticks every 10 ms; a right answer leaves it free (longest pause ~0.01-0.05 s
    # on a quiet machine, see LONGEST_FAIR_PAUSE for a busy one), a blocking call in the
    # bridged coroutine holds it for as long as it blocks.
    pause = ticks.longest_pause()
    check.that(
        pause < LONGEST_FAIR_PAUSE,
        f"the event loop never stood still for {LONGEST_FAIR_PAUSE} s or more (a shorter "
        "wait with no name, such as reading a file opened earlier, is not seen)",
        f"the event loop stood still for {pause:.2f} s: something in the coroutine you pass "
        "to async_to_sync blocked the loop that serves every request",
        hint="in the async function, only await (`await asyncio.sleep(...)`, "
        "`await fetch_price(...)`); a blocking call (`sleep` imported from time, "
        "`Event.wait`, a sync client) belongs in prices_for itself, outside the async function",
    )
    check.that(
        fetch_price.skus == set(SKUS),
        f"fetch_price was called for every one of the {len(SKUS)} skus",
        f"fetch_price was called for {len(fetch_price.skus)} of the {len(SKUS)} skus",
        hint="call fetch_price for every sku in this call: the check counts the fetches, and "
        "a price kept from an earlier call (in a cache, a global) is not fetched again",
    )
    one_task = len(fetch_price.tasks) == 1  # awaited one after another in one coroutine
    one_bridge = len(bridges) == 1  # one async_to_sync call, several tasks: a limit held some
    if one_task:
        hint = ("awaiting each fetch in turn waits for it before the next starts, even inside "
                f"one async_to_sync call: start them all and wait for them together, {TOGETHER}")
    elif one_bridge:
        hint = ("the fetches ran in separate tasks, but something let only some run at once "
                "(an asyncio.Semaphore, batches, a worker queue): this exercise asks for all "
                f"of them at the same time, with no limit: {TOGETHER}")
    else:
        hint = ("one async_to_sync call per sku waits for each before the next starts: write "
                f"one async function that awaits all the fetches together, {TOGETHER}, and call "
                "it once with async_to_sync")
    check.that(
        fetch_price.most_running == len(SKUS),
        f"all {len(SKUS)} prices were fetched at the same time",
        f"at most {fetch_price.most_running} of {len(SKUS)} fetches ran at the same time",
        hint=hint,
    )
    # A fetch that fails: its error must reach prices_for's caller, which answers 502.
    # The failing fetch fails after 0.05 s, the others end 0.3 s later: still running then.
    failing = LoopBoundFetch(delay=0.05, fails_for=FAILING_PRICE_SKU, others_delay=0.35)
    try:
        async with ThreadSensitiveContext():
            outcome = await sync_to_async(prices_for)(failing, FAILING_RUN_SKUS)
    except Exception as error:  # noqa: BLE001  (judged below)
        outcome = error
    except asyncio.CancelledError as error:  # the answer's own: a cancelled task's result()
        if asyncio.current_task().cancelling():
            raise  # the check itself was cancelled
        outcome = error
    await failing.settled()
    failing.close_unstarted()
    if isinstance(outcome, asyncio.CancelledError):
        check.that(
            False, "",
            f"fetch_price raised PriceUnavailable for {FAILING_PRICE_SKU}, and prices_for "
            "raised CancelledError: the view's `except PriceUnavailable:` does not catch it, "
            "so it cannot answer 502, and nor does Django's 500 handling (it catches "
            "Exception; CancelledError is a BaseException)",
            hint="after cancelling the other tasks, re-raise the fetch's error, not a "
            "cancelled task's: a cancelled task's result() raises CancelledError (a "
            "TaskGroup does this for you)",
        )
    _refuse_lost_errors(
        check, outcome, PriceUnavailable, who="prices_for",
        failed=f"fetch_price raised PriceUnavailable for {FAILING_PRICE_SKU}",
        kept_ok="when a fetch raises, prices_for raises its error",
        lost_hint="let fetch_price's error propagate: a `TaskGroup` raises it in an "
        "ExceptionGroup, which you unwrap (`except* Exception as group: raise "
        "group.exceptions[0]`), and async_to_sync raises it again in prices_for; "
        "`return_exceptions=True` puts it among the prices, and `except Exception: return "
        "None` hides it",
        gather_ok=False,  # it leaves the other fetches running: refused just below
    )
    check.that(
        not failing.orphans and not failing.running,
        "when a fetch fails, the other fetches stop before async_to_sync returns",
        f"{len(failing.orphans)} fetches ran on after prices_for had raised, and their next "
        f"thread-sensitive call (an ORM a-method) failed: {'; '.join(failing.orphans[:1])}"
        if failing.orphans else  # a starved thread can leave the call queued, not refused
        f"{failing.running} fetches were still running 2 s after prices_for had raised: "
        "their next thread-sensitive call (an ORM a-method) waits for a bridge that is gone",
        hint="`asyncio.gather` raises the first error and leaves the other fetches running "
        "on the server's loop, and a task cancelled but not awaited still runs its cleanup "
        "after that; once async_to_sync has returned, their thread-sensitive calls "
        "find its executor gone. Fetch in a TaskGroup, which cancels the others and waits for "
        "them, and unwrap its ExceptionGroup (`except* Exception as group: raise "
        "group.exceptions[0]`), or cancel the unfinished tasks and wait for them "
        "(`await asyncio.gather(*tasks, return_exceptions=True)`) before re-raising",
    )


class InstrumentedLookup(Concurrency):
    """A blocking lookup that records how many calls ran at once, and on which threads.

    Each call blocks ``delay`` seconds, then keeps blocking (up to ``patience`` seconds)
    until all ``expected`` calls have started: on a loaded machine, threads may start late,
    and a right answer must not fail for that. Once a call has waited in vain (the calls
    are not concurrent), the others block ``delay`` only, so a wrong answer fails soon.
    """

    def __init__(self, delay, expected, patience=2.0):
        super().__init__()
        self.delay = delay
        self.expected = expected
        self.patience = patience
        self.all_started = threading.Condition(self.lock)
        self.gave_up = False
        self.saw_request_local = []

    def __call__(self, sku):
        self.enter()
        # Django keeps the active language, time zone and URLconf in asgiref's Local: note
        # whether the request's value reached this thread (sync_to_async carries it;
        # asyncio.to_thread and run_in_executor do not, from asgiref 3.12.0).
        self.saw_request_local.append(getattr(REQUEST_LOCAL, "request", False))
        try:
            time.sleep(self.delay)
            with self.all_started:
                self.all_started.notify_all()
                if not self.all_started.wait_for(
                    lambda: self.most_running >= self.expected or self.gave_up,
                    timeout=self.patience,
                ):
                    self.gave_up = True
        finally:
            self.leave()
        return {"sku": sku, "in_stock": not sku.endswith("3")}


class LookupFailed(Exception):
    """What the check's failing lookup raises: the vendor library's own error."""


FAILING_SKU = SKUS[1]


def failing_lookup(sku):
    """A lookup that fails for one sku, as a vendor library does when its service is down."""
    time.sleep(0.01)
    if sku == FAILING_SKU:
        raise LookupFailed(f"the stock service failed for {sku}")
    return {"sku": sku, "in_stock": not sku.endswith("3")}


def _how_it_reached_the_caller(outcome, kind):
    """How an error of ``kind``, raised inside the answer, reached the answer's caller:

    - "kept": the answer raised it, or an error of its own raised from it (``raise ... from
      error``, or while handling it): a plain ``except`` in the view catches it, and the
      traceback shows the cause;
    - "grouped": inside an ExceptionGroup (what a TaskGroup raises), which a plain
      ``except LookupFailed:`` does not catch: the view answers 500;
    - "hidden": an error of its own raised ``from None``: the cause is gone from the traceback;
    - "lost": the answer returned (the error among the results, or swallowed).
    """
    seen, error, hidden = set(), outcome, False
    while isinstance(error, BaseException) and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, kind) or (
            isinstance(error, BaseExceptionGroup) and error.subgroup(kind) is not None
        ):
            if isinstance(outcome, BaseExceptionGroup):
                return "grouped"
            return "hidden" if hidden else "kept"
        hidden = hidden or (error.__cause__ is None and error.__suppress_context__)
        error = error.__cause__ or error.__context__
    return "lost"


def _refuse_lost_errors(check, outcome, kind, *, who, failed, kept_ok, lost_hint,
                        gather_ok=True):
    """The answer's caller (a view that answers 502) must get the error: refuse a result that
    hides it, a group a plain ``except`` misses, and an error raised ``from None``."""
    how = _how_it_reached_the_caller(outcome, kind)
    did = (f"raised {type(outcome).__name__}: {outcome}" if isinstance(outcome, BaseException)
           else f"returned {outcome!r}")
    name = kind.__name__
    if how == "grouped":
        check.that(
            False, "",
            f"{failed}, and {who} raised it inside an {type(outcome).__name__}: the view's "
            f"`except {name}:` does not catch a group, so it answers 500, not 502",
            hint="a TaskGroup raises its tasks' errors inside an ExceptionGroup: unwrap it in "
            f"{who} (`except* {name} as group: raise group.exceptions[0]`, or `except "
            "ExceptionGroup as group: raise group.exceptions[0]`)"
            + (", or use `await asyncio.gather(...)`, which raises the first error itself"
               if gather_ok else ""),
        )
    if how == "hidden":
        check.that(
            False, "",
            f"{failed}, and {who} raised {type(outcome).__name__}({str(outcome)!r}) from None: "
            f"the traceback no longer shows the {name} that caused it",
            hint=f"keep the cause: `raise YourError(...) from error` (in `except {name} as "
            "error:`), or let the error propagate",
        )
    check.that(how == "kept", kept_ok,
               f"{failed}, and {who} {did}: the view cannot tell the failure from a result, "
               "or answer 502", hint=lost_hint)


# Pools and threads that asyncio, asgiref and a pool start are not the answer's own. Other
# libraries' pools (anyio's worker threads: reused while idle, at most 40 at once) are
# judged like the answer's: by whether a second call starts new ones.
_BUILT_FOR_IT = ("asyncio", "asgiref", "concurrent.futures", "threading")


@contextmanager
def pools_and_threads_built_here(request_context):
    """The ThreadPoolExecutors the code in the block built, and the threads it started,
    itself (``threading.Thread(...).start()``), and the ThreadSensitiveContexts it opened
    that got a thread of their own from asgiref: ``(pools, threads, contexts)``.

    The loop's default pool and asgiref's per-request thread are built by asyncio and asgiref
    (once per loop, once per request: ``request_context``'s), and a pool starts its own
    threads: not counted. A ThreadSensitiveContext opened in a fresh contextvars.Context is
    the outer-most one there, and asgiref builds it a one-thread pool of its own: counted.
    """
    pools, threads, contexts = [], [], []
    real_init, real_start = ThreadPoolExecutor.__init__, threading.Thread.start
    real_exit = ThreadSensitiveContext.__aexit__

    async def noted_exit(self, *exc_info):
        if (self is not request_context and self.token is not None
                and getattr(self, "_executor", None) is None  # not a pool the caller owns
                and self in SyncToAsync.context_to_thread_executor):
            contexts.append(self)
        return await real_exit(self, *exc_info)

    def noted_init(self, *args, **kwargs):
        if not sys._getframe(1).f_globals.get("__name__", "").startswith(_BUILT_FOR_IT):
            pools.append(self)
        real_init(self, *args, **kwargs)

    def noted_start(self):
        if not sys._getframe(1).f_globals.get("__name__", "").startswith(_BUILT_FOR_IT):
            threads.append(self)
        real_start(self)

    ThreadPoolExecutor.__init__, threading.Thread.start = noted_init, noted_start
    ThreadSensitiveContext.__aexit__ = noted_exit
    try:
        yield pools, threads, contexts
    finally:
        ThreadPoolExecutor.__init__, threading.Thread.start = real_init, real_start
        ThreadSensitiveContext.__aexit__ = real_exit

def _refuse_loop_blockers(check, sleeps, blocking, cache_calls, *, who, named_ok, sleep_hint,
                          named_hint, cache_hint):
    """Refuse what the watchers saw on the event loop's thread: a time.sleep (with its
    seconds), another blocking call known by name, a sync cache call. ``who`` ran there."""
    check.that(
        not sleeps,
        "the event loop was never blocked by a time.sleep",
        f"time.sleep({sleeps[0] if sleeps else ''}) ran on the event loop's thread: {who} "
        "runs on the loop that serves every request, and the whole server froze meanwhile",
        hint=sleep_hint,
    )
    # time.sleep itself is counted above; a "time.sleep" named here was imported by name.
    named = list(dict.fromkeys(blocking))
    check.that(
        not named,
        f"{named_ok} made no other blocking call known by name on the event loop",
        f"{who} made a blocking call on the event loop: {', '.join(named)}; however short, "
        "it held the loop that serves every request",
        hint=named_hint,
    )
    first_cache_call = cache_calls[0] if cache_calls else ""
    check.that(
        not cache_calls,
        "it made no sync cache call on the event loop",
        f"{who} called the sync cache.{first_cache_call}() on the event loop: with Redis or "
        "Memcached that is a network round trip that holds every request",
        hint=cache_hint,
    )


@exercise("03.2", "Call a blocking library concurrently, off the loop")
async def check_lookup_many(check, lookup_many):
    must_be_async(check, lookup_many, "lookup_many")
    lookup = InstrumentedLookup(delay=0.3, expected=len(SKUS))
    loop_thread = threading.current_thread()
    # Called inside a ThreadSensitiveContext, as ASGIHandler calls a view: there, a
    # ThreadSensitiveContext the answer opens itself is not the outer-most one and gives no
    # new thread, so thread-sensitive calls take turns on the request's one thread.
    with forgotten_awaits() as missed:
        async with ThreadSensitiveContext(), LoopTicks() as ticks:
            # The request's thread, where its thread-sensitive calls run: named in a hint.
            request_thread = await sync_to_async(threading.current_thread)()
            REQUEST_LOCAL.request = True  # as LocaleMiddleware activates a language
            try:
                result = await lookup_many(lookup, SKUS)
            finally:
                del REQUEST_LOCAL.request
        if isinstance(result, asyncio.Future):  # `return asyncio.gather(...)`, not awaited
            missed.append("it returned the Future of asyncio.gather, not its result")
            await asyncio.gather(result, return_exceptions=True)
    no_forgotten_await(check, missed, result)
    expected = [{"sku": sku, "in_stock": not sku.endswith("3")} for sku in SKUS]
    check.that(
        list(result) == expected if isinstance(result, list | tuple) else False,
        "it returns the lookups' results, in the order of the skus",
        f"it returned {result!r}, expected {expected!r}",
        hint="gather the calls and return the list gather gives you",
    )
    # Exact, unlike a timing: no lookup may run on the loop's thread, whatever the load.
    check.that(
        loop_thread not in lookup.threads,
        "the event loop kept running during the lookups",
        "the blocking lookup ran on the event loop's thread: the loop froze meanwhile",
        hint="wrap it: `sync_to_async(lookup, thread_sensitive=False)(sku)`",
    )
    # Waiting for the threads on the loop's thread (pool.map, future.result()) freezes the
    # loop from before the first lookup starts until the last one ends (0.3 s or more): then
    # not one tick runs in between. Exact, unlike a gap length, on a loaded machine too.
    check.that(
        ticks.any_between(lookup.first_start, lookup.last_end),
        "the event loop kept running while lookup_many waited",
        "the event loop did not run at all while the lookups ran: lookup_many waited for "
        "the threads on the loop's thread",
        hint="`pool.map()` and `future.result()` block the thread that calls them; await "
        "instead: `await asyncio.gather(*(sync_to_async(lookup, thread_sensitive=False)(s) "
        "for s in skus))` (or `loop.run_in_executor(pool, lookup, s)`)",
    )
    if request_thread in lookup.threads:
        in_turn = ("lookups ran on the request's thread: thread-sensitive calls (the default) "
                   "take turns on it, even inside a ThreadSensitiveContext of your own; this "
                   "lookup touches no database, so `sync_to_async(lookup, "
                   "thread_sensitive=False)`, one call per sku, gathered")
    else:
        in_turn = ("start one call per sku, then wait for them together with asyncio.gather: "
                   "awaiting each call before the next waits for each, and one call whose "
                   "function loops over the skus (`sync_to_async(lambda: [lookup(s) for s in "
                   "skus], ...)`) runs them one after another on its one thread; wrap lookup "
                   "itself, `sync_to_async(lookup, thread_sensitive=False)(sku)`")
    check.that(
        lookup.most_running == len(SKUS),
        f"all {len(SKUS)} lookups ran at the same time",
        f"at most {lookup.most_running} of {len(SKUS)} lookups ran at the same time",
        hint=in_turn,
    )
    # A first call may start threads that later calls reuse (a pool made on first use,
    # anyio's workers); what every request would pay shows in a second call: judge that one.
    # Its loop CPU is measured here too: a first call may import (anyio) or build a pool
    # once, which no request pays again. A collection first, so that a full garbage
    # collection (~0.15 s at load 20) does not fall in this call and count as the answer's.
    gc.collect()
    request_context = ThreadSensitiveContext()  # what ASGIHandler opens for each request
    with pools_and_threads_built_here(request_context) as (pools, threads, contexts):
        async with request_context, LoopCPU() as loop_cpu:
            await lookup_many(InstrumentedLookup(delay=0.05, expected=len(SKUS)), SKUS)
    own_pool_hint = (
        "use the loop's pool, `sync_to_async(lookup, thread_sensitive=False)` (in Django "
        "code rather than `asyncio.to_thread`, which drops asgiref's Local values such as the "
        "active language: fine for this lookup, which reads none), or build your own pool "
        "once, at module level, and pass it: "
        "`sync_to_async(lookup, thread_sensitive=False, executor=lookup_pool)`"
    )
    check.that(
        not pools,
        "a second call built no new thread pool",
        f"it built {len(pools)} ThreadPoolExecutor again in a second call: every request "
        "would start threads of its own, so requests at once would run that many pools, "
        "with no cap on their threads",
        hint=own_pool_hint,
    )
    check.that(
        not threads,
        "a second call started no new thread",
        f"it started {len(threads)} new threads (threading.Thread) again in a second call: "
        "every request would start as many, with no cap on how many run at once",
        hint=own_pool_hint,
    )
    opened = len(contexts)
    check.that(
        not contexts,
        "a second call opened no request context of its own (no new thread from asgiref)",
        f"it opened {opened} ThreadSensitiveContext{'s' if opened != 1 else ''} of its own in a "
        "second call, each the outer-most one in a fresh context, so asgiref built a new "
        f"thread for each: every request would start {opened} threads, with no cap on how "
        "many run at once",
        hint="a ThreadSensitiveContext is the server's, one per request (ASGIHandler opens "
        "it); this lookup touches no database, so run it on the loop's shared pool: "
        "`sync_to_async(lookup, thread_sensitive=False)(sku)`",
    )
    # A blocking call on the loop holds every request however short, so it is not judged by
    # a timing: a third call (its threads and pools are started by now), watched for
    # time.sleep, other named blocking calls and the sync cache API (the watchers slow the
    # loop: nothing is timed in this call).
    with (
        sleeps_on_this_thread() as sleeps,
        sync_cache_calls_on_this_thread() as cache_calls,
        blocking_calls_on_this_thread(made_by_the_surroundings) as blocking,
        lock_withs_on_this_thread() as lock_withs,
    ):
        async with ThreadSensitiveContext():
            await lookup_many(InstrumentedLookup(delay=0.05, expected=len(SKUS)), SKUS)
    _refuse_loop_blockers(
        check, sleeps, blocking + lock_withs, cache_calls, who="lookup_many",
        named_ok="lookup_many",
        sleep_hint="in async code wait with `await asyncio.sleep(...)`; a blocking call belongs "
        "in a thread: `sync_to_async(fn, thread_sensitive=False)`",
        named_hint="in lookup_many, only await; a blocking call (`sleep` imported from time, "
        "`Event.wait`, a sync client) belongs in a thread: "
        "`sync_to_async(fn, thread_sensitive=False)`",
        cache_hint="in async code use the a-twins (`await cache.aget_many(...)`, "
        "`await cache.aset_many(...)`)",
    )
    check.that(
        loop_cpu.longest < LOOP_CPU_STEP,
        f"lookup_many computed less than {LOOP_CPU_STEP} s of CPU at a time on the event loop",
        f"lookup_many computed {loop_cpu.longest:.2f} s of CPU in one go on the event loop: "
        "no other request moved meanwhile",
        hint="in lookup_many, only await; CPU work (hashing, signing, parsing a large "
        "document) belongs in a thread too: `await sync_to_async(work, "
        "thread_sensitive=False)(...)`",
    )
    # A lookup that fails: the error must reach lookup_many's caller, which answers 502.
    try:
        async with ThreadSensitiveContext():
            outcome = await lookup_many(failing_lookup, SKUS)
    except Exception as error:  # noqa: BLE001  (judged below)
        outcome = error
    _refuse_lost_errors(
        check, outcome, LookupFailed, who="lookup_many",
        failed=f"lookup raised LookupFailed for {FAILING_SKU}",
        kept_ok="when a lookup raises, lookup_many raises its error",
        lost_hint="let the lookup's error propagate (plain `await asyncio.gather(...)` raises "
        "the first one); `return_exceptions=True` puts it in the list, and `except Exception: "
        "return None` hides it",
    )
    # Not a failure: this lookup reads no Local. But Django code usually does.
    if not all(lookup.saw_request_local):
        check.lines.append(
            "  note: your lookups ran where asgiref's Local values did not reach (as with "
            "asyncio.to_thread or loop.run_in_executor): right for this lookup, which reads "
            "none; in Django code, whose active language, time zone and URLconf live in such "
            "values, use `sync_to_async(fn, thread_sensitive=False)`"
        )
