"""Checks for lesson 06 · Calling external APIs with httpx."""

import asyncio
import contextlib
import gzip
import itertools
import threading
import time
import weakref
from collections import Counter

import anyio
import httpx
from django.core.exceptions import SynchronousOnlyOperation

from tutorial_project.course.exercises.attempt import Raised, attempt, fail
from tutorial_project.course.exercises.core import exercise
from tutorial_project.course.exercises.expect import (
    blocking_calls_on_this_thread,
    cancelled_outcome,
    made_by_the_surroundings,
    must_be_async,
    sleeps_on_this_thread,
    sync_cache_calls_on_this_thread,
)
from tutorial_project.instruments.upstream import FakeUpstream

LATENCY = 0.2  # /weather in 06.1
# /news answers sooner than /weather, so an answer that returns the calls in the order they
# ended (asyncio.as_completed) returns them in the wrong order.
NEWS_LATENCY = 0.15
# /weather in 06.1's second run: an answer that stops waiting after a fixed time
# (asyncio.wait(..., timeout=0.3), then .result()) raises, or returns with a call still running.
SLOW_LATENCY = 0.6
GIVE_UP = 3.0  # the check stops waiting for an answer after this long
# The longest the second call of 06.1 may start after the first, as a share of LATENCY. A right
# answer starts it while the first waits: 0.4 ms apart at the median, 66 ms at most, in 700 runs
# of five right answers at load 11-17 on 2 cores (Django 5.2 and 6.1). One that awaits other work
# (or a "polite" pause) before starting it overlaps only in part: the upstream counts two calls
# at once even then. A gap is judged late only if LoopWatch also beat START_GAP_BEATS times in
# it: a right answer starts the second call before the loop turns again (0 beats in all 170 runs
# that counted them, however long a loaded machine kept the thread off its core); a 0.12 s pause
# let it beat 15 to 18 times. So the time bound can be short (0.02 s): a 0.09 s pause, or 0.03 s
# of awaited work, between the two calls fails.
START_GAP_SHARE, START_GAP_BEATS = 0.1, 3
# How much later than its budget get_or_none may return. Not a fixed time: a baseline
# `asyncio.timeout(budget)` around a wait that never ends runs next to the answer on the same
# loop, and the answer may end at most SLACK_FIXED + SLACK_SHARE x budget after the baseline did.
# Both wake up late by the same loop lag, so a loaded machine moves both: a budget + 0.35 s
# timeout, a 1.5 x budget timeout (0.3 s over at the 0.6 s budget, 0.21 s allowed), a fixed 1 s
# timeout or a full budget per retry (on a timeout, or on each slow 500) overshoots on any
# machine. The reference overshot the baseline by at most 0.11 s in 20 runs at load 23-27 on
# 2 cores (Django 5.2 and 6.1).
SLACK_FIXED, SLACK_SHARE = 0.15, 0.1
# A stall of the event loop this long means the answer blocked it (a sync call): LoopWatch does
# not count the stalls of a busy machine, but does count those of a profile hook, so stalls are
# judged only in windows run without one. A time.sleep on the loop is not left to timing:
# LoopWatch counts every one, however short. 0.25 s, lesson 02's bound: the reference stood
# still 0.15 s once in a full test run at load 14-25 on 2 cores.
STALL = 0.25
# CPU time the loop's thread may spend between two beats of LoopWatch (a stretch of code that
# never yields). CPU time does not grow while a loaded machine makes the thread wait for a core,
# so this bound holds on a busy machine too; the reference answers stay under 0.02 s.
CPU_STALL = 0.06
USE_THE_CLIENT = "use the client you are given (await client.get(...)): it reaches the upstream"
SLEPT_ON_THE_LOOP = ("it called time.sleep on the event loop, which stops every other request "
                     "however short the sleep: `await asyncio.sleep(...)` instead")
DONT_BLOCK = ("time.sleep (or any sync call that waits) holds the event loop, so nothing else "
              "runs meanwhile: use await asyncio.sleep(...) and the async client (a first "
              "import inside the function blocks too: import at the top of the cell)")
DONT_COMPUTE = ("code that runs long without an await (a loop, a big parse, a sync library "
                "call) holds the event loop like time.sleep does: hand a sync call that waits "
                "(network, files) to `await asyncio.to_thread(...)`; on the standard (GIL) "
                "build, computing in a thread still holds the GIL the loop needs (a big "
                "json.loads holds it throughout), so run it in another process, split it up, "
                "or await more often")
NOT_BLOCKED = (f"no time.sleep on the event loop, no stall over {STALL} s and no stretch of over "
               f"{CPU_STALL} s of CPU without an await: it did not hold the loop that we could see")


SYNC_ORM_HINT = ("the ORM's sync calls refuse to run on the event loop: await the a-method "
                 "(`await Product.objects.acount()`, `aget`, `async for`), or wrap the sync "
                 "code in `await sync_to_async(...)()`")


@contextlib.contextmanager
def _sync_orm_refusals():
    """Every SynchronousOnlyOperation Django makes while the answer runs, even one the answer
    catches (``except Exception: pass``): a sync ORM call on the event loop is wrong code
    whether or not its error escapes. Django raises it before any query (``async_unsafe``)."""
    refused, own_init = [], "__init__" in vars(SynchronousOnlyOperation)
    original = SynchronousOnlyOperation.__init__

    def noting(self, *args):
        refused.append(args[0] if args else "")
        original(self, *args)

    SynchronousOnlyOperation.__init__ = noting
    try:
        yield refused
    finally:
        if own_init:
            SynchronousOnlyOperation.__init__ = original
        else:
            del SynchronousOnlyOperation.__init__


def _check_no_sync_orm_call(check, refused, what):
    if refused:
        fail(check, f"while {what} ran, it called the sync ORM on the event loop: Django "
                    "refused it with SynchronousOnlyOperation (caught, but the call never ran)",
             SYNC_ORM_HINT)


@contextlib.contextmanager
def _sync_cache_calls():
    """expect.sync_cache_calls_on_this_thread once Django's settings are loaded (the notebook
    starts the project); before that, no cache can be called and nothing is watched."""
    from django.conf import settings

    if not settings.configured:
        yield []
        return
    with sync_cache_calls_on_this_thread() as calls:
        yield calls


def _check_no_sync_cache_call(check, cache_calls, what):
    """Fail if the answer called Django's sync cache API on the loop's thread. The project's
    local-memory cache answers at once; with Redis or Memcached each call is a network round
    trip that holds the loop (expect.sync_cache_calls_on_this_thread)."""
    if cache_calls:
        fail(check, f"while {what} ran, it called the sync cache.{cache_calls[0]}() on the event "
                    "loop: with Redis or Memcached that is a network round trip that holds every "
                    "request", "in async code use the a-twins: `await cache.aget(...)`, "
                    "`await cache.aset(...)` (each runs the sync call in a thread)")


def _check_no_blocking_call(check, named, what):
    """Fail if the answer made a blocking call on the loop's thread, however short: named by
    expect.blocking_calls_on_this_thread (time.sleep under another name, Event.wait, a sync
    socket or DNS call). Its profile hook slows the loop, so no time measured under it is
    judged: not the answer's, and not LoopWatch's stalls (``watch.check(..., timed=False)``)."""
    if named:
        fail(check, f"while {what} ran, it made a blocking call on the event loop's thread "
                    f"({', '.join(sorted(set(named)))}), which holds every other request "
                    "however short it is", DONT_BLOCK)


def _client(upstream):
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=upstream), base_url="http://upstream"
    )


class LoopNoter:
    """The upstream, noting the event loop each call arrives on. In-process the app runs in
    the caller's task, so this is the loop the answer called client.get on."""

    def __init__(self, app):
        self.app, self.loops, self.paths = app, [], Counter()  # paths: every one, 404s too
        self.starts = []  # when each call reached the upstream: (time.perf_counter, beats)
        self.tries = []  # each call's (start, beats), (end, beats): the gaps between tries
        self.cut = []  # the loop's time (loop.time()) when a call was cancelled: a budget ended
        self.watch = None  # a LoopWatch, whose beats count the loop's turns

    def clear(self):
        self.loops.clear()
        self.paths.clear()
        self.starts.clear()
        self.tries.clear()
        self.cut.clear()

    def _now(self):
        return time.perf_counter(), self.watch.beats if self.watch else 0

    async def __call__(self, scope, receive, send):
        started = self._now()
        self.starts.append(started)
        self.loops.append(asyncio.get_running_loop())
        self.paths[scope["path"]] += 1
        try:
            await self.app(scope, receive, send)
        except asyncio.CancelledError:
            self.cut.append(asyncio.get_running_loop().time())
            raise
        finally:
            self.tries.append((started, self._now()))


OTHER_LOOPS_HINT = (
    "await client.get(...) on the loop you are called on (asyncio.gather or a TaskGroup), not "
    "asyncio.run(...) in threads: a client's pooled connections belong to the loop that opened "
    "them, and on a real socket a call from another loop fails with 'Event loop is closed' or "
    "hangs (the section 'One client, shared, closed at the end')"
)


def _stop_if_raised(check, outcome, what, hint):
    if isinstance(outcome, Raised):
        if isinstance(outcome.error, httpx.TransportError):
            hint = USE_THE_CLIENT  # requests.get / httpx.get try the network, which is not here
        elif isinstance(outcome.error, SynchronousOnlyOperation):
            hint = SYNC_ORM_HINT
        fail(check, f"{what} raised {outcome}", hint)


class LoopWatch:
    """Tells a blocked event loop from a busy machine.

    A task on the loop beats every 5 ms; a watchdog thread wakes every 10 ms and, while the
    beat stands still, adds 10 ms per wake-up. A loop held by time.sleep adds up at the
    watchdog's pace. When the machine is overloaded, the watchdog is late as well and adds
    less, so a busy machine alone does not make a blocked loop out of a slow one. A profile
    hook (expect.blocking_calls_on_this_thread) does: it makes every Python call on the loop's
    thread slower, and on a starved core tens of ms of CPU stretch to hundreds of ms of wall
    time, which the watchdog counts. So a window run under the hook is judged with
    ``check(..., timed=False)``: its time.sleep calls, not its stalls.
    A time.sleep on the loop's thread is counted however short it is (time.sleep is patched
    meanwhile; calls from other threads, such as to_thread, are not counted).
    """

    TICK = 0.01

    async def __aenter__(self):
        self.longest, self._still, self._beats = 0.0, 0.0, 0
        self.longest_cpu, self._cpu = 0.0, time.thread_time()
        self._stop = threading.Event()
        self._beater = asyncio.ensure_future(self._beat())
        self._watchdog = threading.Thread(target=self._watch, name="loop-watch", daemon=True)
        self._watchdog.start()
        self._sleeps_watch = sleeps_on_this_thread()
        self._sleeps = self._sleeps_watch.__enter__()
        return self

    @property
    def beats(self):
        """How many times the beat ran so far: the loop turned at least this often."""
        return self._beats

    @property
    def loop_sleeps(self):
        return len(self._sleeps)

    async def _beat(self):
        while True:
            await asyncio.sleep(self.TICK / 2)
            self._beats += 1
            self._cpu_since_beat()

    def _cpu_since_beat(self):
        # CPU time of the loop's thread: it stands still while the thread waits for a core.
        now = time.thread_time()
        self.longest_cpu, self._cpu = max(self.longest_cpu, now - self._cpu), now

    def _watch(self):
        seen = self._beats
        while not self._stop.wait(self.TICK):
            if self._beats != seen:
                seen, self._still = self._beats, 0.0
            else:
                self._still += self.TICK
                self.longest = max(self.longest, self._still)

    async def __aexit__(self, *exc_info):
        self._cpu_since_beat()  # the stretch since the last beat counts too
        self._sleeps_watch.__exit__(None, None, None)
        self._stop.set()
        self._beater.cancel()
        await asyncio.wait({self._beater})
        self._watchdog.join()

    def forget(self):
        """Start counting afresh (after a warm-up whose one-time imports are not the answer's)."""
        self._cpu_since_beat()
        self.longest = self.longest_cpu = 0.0
        self._sleeps.clear()

    def take(self):
        """What was seen since the last take or check: (time.sleep calls, longest stall,
        longest CPU stretch); then count afresh."""
        if not self._stop.is_set():
            self._cpu_since_beat()  # the stretch since the last beat counts too
        seen = self.loop_sleeps, self.longest, self.longest_cpu
        self.longest = self.longest_cpu = 0.0
        self._sleeps.clear()
        return seen

    def check(self, check, what, *, timed=True):
        """Fail if time.sleep ran on the loop, or the loop was held ``STALL`` s at once, or ran
        ``CPU_STALL`` s of CPU between two beats, since the last check (then reset). With
        ``timed=False`` (a window run under a profile hook) only time.sleep is judged."""
        sleeps, longest, longest_cpu = self.take()
        if not timed:
            longest = longest_cpu = 0.0  # the hook's slowness, not the answer's
        self.judge(check, what, sleeps, longest, longest_cpu)

    @staticmethod
    def judge(check, what, sleeps, longest, longest_cpu):
        if sleeps:
            fail(check, f"while {what} ran, time.sleep was called on the event loop's thread "
                        f"({sleeps} time{'s' if sleeps > 1 else ''})", SLEPT_ON_THE_LOOP)
        if longest_cpu >= CPU_STALL:
            fail(check, f"while {what} ran, the event loop's thread computed for "
                        f"{longest_cpu:.2f} s without an await (nothing else ran meanwhile)",
                 DONT_COMPUTE)
        if longest >= STALL:
            fail(check, f"while {what} ran, the event loop was blocked for {longest:.1f} s "
                        "at once", DONT_BLOCK)


@contextlib.contextmanager
def _tasks_in_set_order(*, reverse):
    """While it lasts, the tasks made on the running loop iterate in a set in the order they
    were first hashed (made), or in the reverse order. Set order is hash order, and a task's
    hash is its address: an answer that returns the bodies in the order of asyncio.wait's
    `done` set (neither the order the calls were made nor the order they ended) got them right
    in some runs only. Run once each way, it gets them wrong in one of the two runs. A right
    answer never looks at set order. Slots 0-7 of a small set's table: the first 8 tasks."""
    loop, made, hashes = asyncio.get_running_loop(), itertools.count(), {}

    class SetOrderTask(asyncio.Task):
        def __hash__(self):  # first called in __init__ (all_tasks is a WeakSet): no __dict__
            key = id(self)
            if key not in hashes:
                n = next(made)
                # Dropped when the task is, so a new task at the same address gets its own.
                hashes[key] = 8007 - n if reverse else 8000 + n, weakref.ref(
                    self, lambda _, key=key: hashes.pop(key, None))  # slot 7-n or n
            return hashes[key][0]

    previous = loop.get_task_factory()
    loop.set_task_factory(lambda loop, coro, **options: SetOrderTask(coro, loop=loop, **options))
    try:
        yield
    finally:
        loop.set_task_factory(previous)


async def _warm_up(client, upstream):
    # The first call of a process imports and sets up a few things: not the answer's cost.
    await client.get("/weather", params={"delay": 0})
    await anyio.sleep(0)  # anyio loads its asyncio backend on first use (0.2 s on py313)
    upstream.reset()


@exercise("06.1", "Fetch two sources at the same time")
async def check_fetch_both(check, fetch_both):
    must_be_async(check, fetch_both, "fetch_both", "client")
    upstream = FakeUpstream(
        {"/weather": (LATENCY, {"celsius": 14}), "/news": (NEWS_LATENCY, {"headlines": []})}
    )
    noter = LoopNoter(upstream)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=noter),
                                 base_url="http://upstream") as client:
        await _warm_up(client, upstream)
        noter.clear()
        async with LoopWatch() as watch:
            noter.watch = watch
            tasks_before = asyncio.all_tasks()
            with _tasks_in_set_order(reverse=True):
                result = await attempt(
                    check, lambda: fetch_both(client), "fetch_both(client)",
                    give_up=GIVE_UP, hint="each call answers in 0.2 s: is one stuck?",
                )
            timed_window = watch.take()
            returned_future = _quiet_if_future(result)
            # A task it started and never awaited runs on after it returned: give it a moment
            # to reach the upstream, count its call, then stop it.
            await asyncio.sleep(0.05)
            calls, starts = dict(noter.paths), sorted(noter.starts)
            most_at_once = upstream.max_in_flight
            left_running = _stop_tasks_left_running(tasks_before)
            # Once more, with /weather slow and set order the other way round, and to name
            # each blocking call however short. The profile hook slows the loop, so only this
            # run's time.sleep calls are judged, not its stalls.
            upstream.reset()
            upstream.endpoints["/weather"] = (SLOW_LATENCY, {"celsius": 14})
            with _sync_cache_calls() as cache_calls, _tasks_in_set_order(reverse=False), \
                    _sync_orm_refusals() as refused, \
                    blocking_calls_on_this_thread(made_by_the_surroundings) as named:
                slow_result = await attempt(
                    check, lambda: fetch_both(client), SLOW_RUN, give_up=GIVE_UP,
                    hint=f"weather answers in {SLOW_LATENCY} s this time: is one stuck?")
            _quiet_if_future(slow_result)
            slow_left_running = _stop_tasks_left_running(tasks_before)
            watch.check(check, "fetch_both", timed=False)
    here = asyncio.get_running_loop()
    elsewhere = sum(loop is not here for loop in noter.loops)
    if elsewhere:
        fail(check, f"{elsewhere} of the {len(noter.loops)} calls of its two runs ran on another "
                    "event loop than the one fetch_both was called on", OTHER_LOOPS_HINT)
    _stop_if_raised(check, result, "fetch_both(client)", "return (weather.json(), news.json())")
    _stop_if_raised(check, slow_result, SLOW_RUN,
                    NO_BUDGET_HINT if isinstance(getattr(slow_result, "error", None),
                                                 TimeoutError) else WAIT_FOR_BOTH)
    if returned_future:
        fail(check, f"it returned {type(result).__name__} (a gather or a task it did not await) "
                    "where the tuple was expected", "an `await` is missing: "
                    "`weather, news = await asyncio.gather(...)`, then return the two bodies")
    _check_no_sync_orm_call(check, refused, "fetch_both")
    _check_no_sync_cache_call(check, cache_calls, "fetch_both")
    _check_no_blocking_call(check, named, "fetch_both")
    expected = ({"celsius": 14}, {"headlines": []})
    check.that(
        result == slow_result == expected,
        "it returns (weather JSON, news JSON), in both runs",
        f"it returned {result!r}" if result != expected
        else f"{SLOW_RUN} returned {slow_result!r}",
        hint="return a tuple of the two decoded bodies: (weather.json(), news.json()), in "
        "that order whichever answers first (asyncio.gather keeps the order you gave; "
        "asyncio.wait's `done` is a set, in neither the order you started the calls nor the "
        "order they ended)",
    )
    check.that(
        calls == {"/weather": 1, "/news": 1},
        "it made one call to each source",
        f"the upstream received {calls}",
        hint="make exactly two calls, and await every task you start (a task you never "
        "await runs on for nobody)",
    )
    left, when = (left_running, "") if left_running else (slow_left_running, f" {SLOW_WHEN}")
    check.that(
        not left,
        "it left nothing running once it returned",
        f"{left} task{'s it started were' if left > 1 else ' it started was'} "
        f"still running after it returned{when}",
        hint="await every task you start (a task you never await runs on for nobody)",
    )
    # Counted by the upstream, not timed: a loaded machine cannot make this pass or fail.
    check.that(
        most_at_once >= 2,
        "the two calls waited at the same time",
        "the upstream never had both calls at once: they ran one after the other",
        hint="start both before awaiting either: asyncio.gather(...) or a TaskGroup",
    )
    # Timed, but only the gap between the two starts, and only if the loop turned in between.
    (first, first_beats), (second, second_beats) = starts[:2]
    gap, most_gap = second - first, START_GAP_SHARE * LATENCY
    check.that(
        gap <= most_gap or second_beats - first_beats < START_GAP_BEATS,
        "the second call started as the first began to wait",
        f"but the second call started {gap:.2f} s after the first, after other awaited work, "
        "so they waited together only in part",
        hint="start both calls before you await anything else: asyncio.gather(...) or a "
        "TaskGroup, with any other work before or after them",
    )
    watch.judge(check, "fetch_both", *timed_window)
    check.that(True, NOT_BLOCKED, "")


SLOW_WHEN = f"with /weather answering in {SLOW_LATENCY} s"
SLOW_RUN = f"{SLOW_WHEN}, fetch_both(client)"
WAIT_FOR_BOTH = ("wait for both calls however long they take (asyncio.gather or a TaskGroup): "
                 "asyncio.wait(..., timeout=...) returns with the slow one still running, and "
                 "its .result() then raises InvalidStateError")
NO_BUDGET_HINT = ("fetch_both has no budget: do not put a timeout around the calls "
                  "(asyncio.wait_for, asyncio.timeout); wait for both however long they take, "
                  "with asyncio.gather or a TaskGroup")


def _quiet_if_future(result):
    """Whether the answer returned an asyncio Future or Task (`return asyncio.gather(...)`, an
    `await` forgotten). Its outcome is read once it ends, so that asyncio does not print the
    "exception was never retrieved" traceback of its cancelled calls above the verdict."""
    if not asyncio.isfuture(result):
        return False
    result.add_done_callback(lambda future: future.cancelled() or future.exception())
    return True


def _stop_tasks_left_running(tasks_before):
    """Cancel the tasks started since ``tasks_before`` that are still running; how many."""
    left = [task for task in asyncio.all_tasks() - tasks_before if not task.done()]
    for task in left:
        task.cancel()
    return len(left)


STATUS_HINT = ("any 4xx or 5xx answer is an error status: call response.raise_for_status() "
               "and catch httpx.HTTPStatusError (or test response.is_error)")
NOT_JSON_HINT = ("response.json() raises json.JSONDecodeError on text that is not JSON, and "
                 "UnicodeDecodeError on bytes that are not UTF-8: catch ValueError, the base "
                 "class of both")
BUDGET_HINT = ("use the budget you are given, once for the whole call (retries included): "
               "`async with asyncio.timeout(budget):` around it")
ERROR_CASES = [  # path, what, budget, hint
    ("/weather?mode=fail", "a 500 answer", 0.3, STATUS_HINT),
    ("/nowhere", "a 404 answer", 0.3, STATUS_HINT),
    ("/weather?mode=malformed", "a body that is not JSON", 0.3, NOT_JSON_HINT),
    ("/weather?mode=hang", "an upstream that never answers", 0.2,
     "wrap the call in `async with asyncio.timeout(budget):` and catch TimeoutError "
     "(ASGITransport ignores httpx's own timeout)"),
    ("/weather?mode=hang", "an upstream that never answers", 0.6, BUDGET_HINT),
    # Each 500 comes late in the budget (0.8 x): a fresh budget per retry shows here, even for
    # two tries (0.4 + 0.05 + 0.4 s = 0.85 s, allowed 0.7 s plus the loop's lag).
    # The 0.1 s left is loop time: had a loaded machine pushed the first 500 past the budget,
    # that answer's own timeout fires first, and the case proves nothing (a right one passes).
    ("/weather?mode=fail&delay=0.4", "a 500 answer after 0.4 s", 0.5, BUDGET_HINT),
    # A 500 that comes at once (an overloaded load balancer answers in microseconds): an answer
    # that retries without waiting asks hundreds of times. Calls are counted.
    ("/weather?mode=fail&delay=0", "a 500 answer at once", 0.3, STATUS_HINT),
]
DOWN_HINT = ("when the upstream is down, client.get raises httpx.ConnectError: catch "
             "httpx.HTTPError, the base class of every httpx error")


class _RefuseConnections:
    """A MockTransport handler for an upstream that is down, counting the tries. A real
    refused connect yields to the loop before it raises: so does this one, or an answer that
    retries at once would never let its budget (or the check's give-up) fire."""

    tries = in_flight = 0

    async def __call__(self, request):
        self.tries += 1
        self.in_flight += 1
        try:
            await asyncio.sleep(0)
            raise httpx.ConnectError("connection refused", request=request)
        finally:
            self.in_flight -= 1


_refuse_connections = _RefuseConnections()
# Tries at a refused connection, or calls that get a 500 at once, within a 0.3 s budget: a retry
# that waits 0.05 s, then 0.1 s (the lesson's get_json) makes 3 or 4, one that waits a steady
# 0.02 s about 15; one that retries at once makes hundreds or thousands.
MAX_TRIES = 20
STORM_HINT = ("wait between tries, longer each time (`await asyncio.sleep(0.05 * 2 ** n)`), "
              "inside the one budget: retrying at once, or after a few ms, hammers an upstream "
              "that is down")
# A retry waited if, between the end of one try at the 500-at-once endpoint and the start of the
# next, at least PAUSE passed and the loop turned (LoopWatch beat). Both, because a retry with no
# wait does not let the loop turn (0 beats in 120 gaps, 3.11 and 3.13) but a busy machine can
# stretch its gap (0.5 ms at the median, 21 ms once), while `await asyncio.sleep(d)` never ends
# sooner than d and lets the 5 ms beat run at least once when d >= 5 ms. The floor is a tenth of
# the reference's first pause (get_json waits 0.05 s) and under any wait that stays within
# MAX_TRIES (20 tries in 0.3 s need about 15 ms each). Only a pause between some two tries is
# asked: a random wait ("full jitter", 0 to 0.05 x 2**n s) may be short once.
PAUSE = 0.005
PAUSE_JUDGED = "/weather?mode=fail&delay=0"
NO_PAUSE_HINT = ("wait between tries: `await asyncio.sleep(0.05 * 2 ** n)` before the next "
                 "try (a 500 that comes at once comes again at once, so tries in a row are a "
                 "burst for an upstream that is already failing)")


def _paused_between_tries(tries):
    """Whether the loop turned, and PAUSE passed, between the end of some try and the start of
    the next (see PAUSE); True when there was one try or none."""
    if len(tries) < 2:
        return True
    pairs = zip(tries, tries[1:], strict=False)  # each try with the next
    return any(start - end >= PAUSE and start_beats > end_beats
               for (_, (end, end_beats)), ((start, start_beats), _) in pairs)


async def _baseline(budget):
    """How long `asyncio.timeout(budget)` around a wait that never ends takes on this loop now."""
    started = time.perf_counter()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(budget):
            await asyncio.Event().wait()
    return time.perf_counter() - started


def _timed(get_or_none, client, path, budget):
    """The answer's result, its time, and the time the baseline took next to it (None when the
    answer ended first: then it was within its budget anyway)."""

    async def call():  # times the answer alone, not the check around it
        baseline = asyncio.ensure_future(_baseline(budget))
        started = time.perf_counter()
        try:
            result = await get_or_none(client, path, budget)
        finally:
            took = time.perf_counter() - started
            if not baseline.done():
                baseline.cancel()
            await asyncio.wait({baseline})
        return result, took, None if baseline.cancelled() else baseline.result()

    return call


# A late answer is timed again, up to this many runs in all: a loaded machine can delay the
# unwinding of one right answer by 0.25 s (load 20 on 2 cores, after the baseline had ended on
# time), while an answer that spends a fresh budget on each try is late on every run.
TIMED_TRIES = 3


def _allowed(budget, baseline):
    """The longest the answer may take: the baseline's time (the budget plus this loop's lag)
    plus a margin."""
    return (budget if baseline is None else baseline) + SLACK_FIXED + SLACK_SHARE * budget


# Failures that would come back the same on a second try: the exercise says not to retry them.
NOT_TRANSIENT = {"/nowhere": "a 404 answer", "/weather?mode=malformed": "a body that is not JSON"}
# The statuses the lesson's get_json retries (sources.RETRYABLE); a 501 ("not implemented") is
# an error status that comes back the same.
RETRYABLE = "a 408, 429, 500, 502, 503 or 504"
NO_RETRY_HINT = (f"retry only what may pass on a second try ({RETRYABLE}, no answer, a refused "
                 "connection): a 401, a 404 or a 501 comes back the same, and a body that is "
                 "not JSON (or that httpx cannot decode) "
                 "cannot be told from an API that changed its format, so return None at once "
                 "(`if response.status_code not in RETRYABLE: break` before the retry)")


@exercise("06.2", "An answer or None, never a hang")
async def check_get_or_none(check, get_or_none):
    must_be_async(check, get_or_none, "get_or_none", "client, path, budget")
    upstream = FakeUpstream()
    noter = LoopNoter(upstream)  # counts the 404s too, which the upstream does not
    retried = {}  # what -> calls, for a failure a retry cannot mend
    async with _client(noter) as client, LoopWatch() as watch:
        noter.watch = watch
        await _warm_up(client, upstream)
        watch.forget()
        calls_before = noter.paths.total()
        with _sync_cache_calls() as cache_calls, _sync_orm_refusals() as refused, \
                blocking_calls_on_this_thread(made_by_the_surroundings) as named:
            got = await attempt(check, _timed(get_or_none, client, "/weather", 1.0),
                                "a healthy call", give_up=GIVE_UP)
        reached = noter.paths.total() > calls_before
        _stop_if_raised(check, got, "a healthy call", "return response.json()")
        _check_no_sync_orm_call(check, refused, "a healthy call")
        _check_no_sync_cache_call(check, cache_calls, "a healthy call")
        _check_no_blocking_call(check, named, "a healthy call")
        watch.check(check, "a healthy call", timed=False)  # its stalls were the hook's
        await _check_no_blocking_on_errors(check, client, upstream, get_or_none, watch)
        check.that(
            got[0] == {"city": "Lyon", "celsius": 14},
            "a healthy source gives its JSON",
            f"a healthy source gave {got[0]!r}" + ("" if reached else
                                                    ", and no call reached the upstream"),
            # An error it caught itself (requests or a new client, which find no network here)
            # leaves only None: point at the call, not at response.json().
            hint="return response.json()" if reached else USE_THE_CLIENT,
        )
        await _check_slow_but_in_budget(check, client, upstream, get_or_none)
        watch.check(check, "a slow healthy call")
        for path, what, budget, hint in ERROR_CASES:
            for tries_left in reversed(range(TIMED_TRIES)):
                upstream.reset()
                noter.clear()
                tasks_before = asyncio.all_tasks()
                called_at = asyncio.get_running_loop().time()  # before the answer starts
                got = await attempt(check, _timed(get_or_none, client, path, budget),
                                    f"with {what}, get_or_none", give_up=GIVE_UP, hint=hint)
                # The answer's own TimeoutError is an error it let escape, not the check's
                # deadline.
                _stop_if_raised(check, got, f"with {what} it", hint)
                result, took, baseline = got
                if took <= _allowed(budget, baseline) or not tries_left:
                    break
                await _check_nothing_left_running(check, upstream, tasks_before, what)
            check.that(result is None, f"{what} gives None", f"{what} gave {result!r}",
                       hint=hint)
            check.that(
                took <= _allowed(budget, baseline), f"{what} gives up within a {budget} s budget",
                f"{what} took {took:.2f} s with a budget of {budget} s (`asyncio.timeout({budget})`"
                f" took {baseline or budget:.2f} s next to it on this loop)", hint=BUDGET_HINT)
            await _check_nothing_left_running(check, upstream, tasks_before, what)
            if "mode=hang" in path and noter.cut:
                early = called_at + budget - min(noter.cut)
                if early > EARLY_BY:
                    fail(check, f"with {what}, it gave up on the request {early:.2f} s before "
                                f"its {budget} s budget ran out", EARLY_HINT)
            watch.check(check, f"get_or_none with {what}")
            if len(noter.starts) > MAX_TRIES:
                fail(check, f"with {what}, it asked {len(noter.starts)} times in its {budget} s "
                            f"budget, over {MAX_TRIES}: too many tries", STORM_HINT)
            if path == PAUSE_JUDGED and not _paused_between_tries(sorted(noter.tries)):
                fail(check, f"with {what}, it tried {len(noter.tries)} times with no wait "
                            "between the tries", NO_PAUSE_HINT)
            if path in NOT_TRANSIENT and len(noter.starts) > 1:
                retried[NOT_TRANSIENT[path]] = len(noter.starts)
        check.that(not retried, "a 404 and a body that is not JSON are not retried",
                   " and ".join(f"{what} was asked {calls} times"
                                for what, calls in retried.items()), hint=NO_RETRY_HINT)
        await _check_upstream_down(check, get_or_none)
        await _check_cancellation(check, client, upstream, get_or_none)
        await _check_cancellation_in_a_pause(check, get_or_none)
    watch.check(check, "get_or_none")
    check.that(True, NOT_BLOCKED, "")


async def _check_no_blocking_on_errors(check, client, upstream, get_or_none, watch):
    """A retry's backoff runs on an error: an error answer and a refused connection, untimed
    (the timed cases below run without the profile hook), must not block the loop either.
    What the watch saw meanwhile is reported under each case's own name."""
    async with httpx.AsyncClient(transport=httpx.MockTransport(_refuse_connections),
                                 base_url="http://upstream") as down:
        for on, path, what in ((client, "/weather?mode=fail", "a 500 answer"),
                               (down, "/weather", "the upstream down")):
            upstream.reset()
            with blocking_calls_on_this_thread(made_by_the_surroundings) as named:
                await attempt(check, lambda: get_or_none(on, path, 1.0),  # noqa: B023
                              f"with {what}, get_or_none", give_up=GIVE_UP)
            _check_no_blocking_call(check, named, f"get_or_none with {what}")
            watch.check(check, f"get_or_none with {what}", timed=False)


# A healthy answer late in its budget (0.925 x): an answer that gives up before the budget
# (budget x 0.9, budget - 0.2, a fixed time) misses it: its earlier deadline fires first, however
# late the loop runs. The 0.15 s left is loop time: a loaded machine delays the upstream's sleep
# and the budget's timeout alike, and the reference passed with it at load 20 on 2 cores.
SLOW_BUDGET = 2.0
SLOW_DELAY = 1.85
# Giving up a little early (`asyncio.timeout(budget - 0.05)`) is judged by the loop's own clock,
# on the calls that never answer: a timer never fires before its time (loop.time() >= the
# deadline), and a deadline set once the answer runs is at least `called_at + budget`. So a
# right answer's request is never cancelled before that, however loaded the machine; one that
# cuts its budget short is, unless the loop ran that much late (then it slips through).
EARLY_BY = 0.002
EARLY_HINT = ("it gave up before its budget: wait as long as the budget you are given allows "
              "(`async with asyncio.timeout(budget):`), not a fixed or shorter time")


async def _check_slow_but_in_budget(check, client, upstream, get_or_none):
    upstream.reset()
    got = await attempt(
        check, _timed(get_or_none, client, f"/weather?delay={SLOW_DELAY}", SLOW_BUDGET),
        f"a healthy call answering in {SLOW_DELAY} s", give_up=GIVE_UP, hint=EARLY_HINT)
    _stop_if_raised(check, got, f"a healthy call answering in {SLOW_DELAY} s", EARLY_HINT)
    result, took, _ = got
    check.that(
        result == {"city": "Lyon", "celsius": 14},
        f"a source answering in {SLOW_DELAY} s gives its JSON within a {SLOW_BUDGET} s budget",
        f"a source answering in {SLOW_DELAY} s gave {result!r} after {took:.1f} s, with a "
        f"budget of {SLOW_BUDGET} s",
        hint=EARLY_HINT if result is None else "return response.json()",
    )


LEFT_RUNNING_HINT = ("let the timeout cancel the request itself: asyncio.shield(...) or a task you "
                     "do not await keeps it running, for nobody")
CANCEL_IT_TOO = ("await the request itself (inside `async with asyncio.timeout(budget):`), so "
                 "that cancelling your function cancels it too; a task you started and wait on "
                 "with asyncio.wait(...) runs on when you are cancelled (asyncio.wait_for "
                 "cancels it)")


async def _check_nothing_left_running(check, upstream, tasks_before, what,
                                      hint=LEFT_RUNNING_HINT):
    """The request it gave up on must stop with it (in-process, cancelling reaches the app)."""
    await asyncio.sleep(0.05)
    unfinished = sum(upstream.calls.values()) - sum(upstream.answered.values()) - sum(
        upstream.abandoned.values())  # a leaked request the garbage collector destroyed
    if upstream.in_flight == 0 and unfinished <= 0:
        return
    for task in asyncio.all_tasks() - tasks_before:  # the leaked request: stop it here
        task.cancel()
    fail(check, f"with {what}, the request it gave up on was not cancelled: it kept running "
                "at the upstream", hint)


LYING_HINT = ("a body its content-encoding header lies about raises httpx.DecodingError, which "
              "is not a TransportError: catch httpx.HTTPError, the base class of every httpx "
              "error")
async def _disconnect(request):
    # A stale keep-alive connection: the server closed it as the request went out.
    await asyncio.sleep(0)
    raise httpx.RemoteProtocolError("Server disconnected without sending a response.",
                                    request=request)


DISCONNECT_HINT = ("a connection the server closed raises httpx.RemoteProtocolError (and a slow "
                   "read on a real socket httpx.ReadTimeout): catch httpx.HTTPError, the base "
                   "class of every httpx error, not a list of the ones you have seen")
class _Answer:
    """A MockTransport handler giving one answer at once, counting the tries and the calls in
    flight (in_flight is 0 between tries: a retrying answer is then in its pause)."""

    def __init__(self, status, **content):
        self.status, self.content, self.tries, self.in_flight = status, content, 0, 0

    async def __call__(self, request):
        self.tries += 1
        self.in_flight += 1
        try:
            await asyncio.sleep(0)
            return httpx.Response(self.status, **self.content)
        finally:
            self.in_flight -= 1


_not_implemented = _Answer(501, json={"error": "not implemented"})
# Error answers whose JSON has no "error" key: an answer that reads the body, not the status,
# returns them as data.
_unauthorized = _Answer(401, json={"detail": "token expired"})
_maintenance = _Answer(503, json={"detail": "down for maintenance"})
# A 500 at once: every answer that retries must pause on it (PAUSE_JUDGED).
_internal_error = _Answer(500, json={"detail": "internal error"})
# The body is plain JSON, the header says gzip: httpx raises DecodingError while reading.
_lie_about_encoding = _Answer(200, headers={"content-encoding": "gzip"},
                              content=b'{"celsius": 14}')
# Any 2xx is a success (raise_for_status and is_success agree): 203 is a proxy's copy.
_non_authoritative = _Answer(203, json={"celsius": 14})
# Gzip sent without its content-encoding header: bytes that are not UTF-8, so response.json()
# raises UnicodeDecodeError (a ValueError, not a json.JSONDecodeError) on httpx 0.28.
_unlabelled_gzip = _Answer(200, headers={"content-type": "application/json"},
                           content=gzip.compress(b'{"celsius": 14}', mtime=0))
STATUS_NOT_BODY_HINT = ("judge the status, not the body: an error answer may carry any JSON "
                        "(here {'detail': ...}); call response.raise_for_status() and catch "
                        "httpx.HTTPStatusError, or test response.is_error")
SUCCESS_HINT = ("every 2xx is a success, not only 200 (a 203 is a proxy's copy of the answer): "
                "return its JSON; test response.is_success or call raise_for_status(), not "
                "`status_code == 200`")
BROKEN_TRANSPORTS = [  # the transport's handler, who, what, hint, the right result
    (_not_implemented, "a 501 answer", "a 501 answer (not implemented)", STATUS_HINT, None),
    (_unauthorized, "a 401 answer", "a 401 answer with JSON and no \"error\" key",
     STATUS_NOT_BODY_HINT, None),
    (_maintenance, "a 503 answer", "a 503 answer with JSON and no \"error\" key",
     STATUS_NOT_BODY_HINT, None),
    (_non_authoritative, "a 203 answer", "a 203 answer with JSON (a 2xx other than 200)",
     SUCCESS_HINT, {"celsius": 14}),
    (_unlabelled_gzip, "a body that is not UTF-8", "a body that is not UTF-8 (gzip sent "
     "without its content-encoding header)", NOT_JSON_HINT, None),
    (_refuse_connections, "the upstream down", "an upstream that is down", DOWN_HINT, None),
    (_lie_about_encoding, "a body its headers lie about",
     "a body its headers lie about (httpx.DecodingError)", LYING_HINT, None),
    (_disconnect, "the server disconnected", "a server that disconnected "
     "(httpx.RemoteProtocolError)", DISCONNECT_HINT, None),
]


# Failures a second try cannot mend: each must be asked once (the exercise's list of what may
# be retried leaves them out).
NOT_RETRIED = {_not_implemented: "a 501 answer", _unauthorized: "a 401 answer",
               _unlabelled_gzip: "a body that is not UTF-8",
               _lie_about_encoding: "a body its headers lie about"}


async def _check_upstream_down(check, get_or_none):
    """Answers the in-process upstream cannot make: a refused connection, a lying header, error
    statuses with JSON bodies, a 203, bytes that are not UTF-8."""
    retried = {}  # what -> tries, for a failure a retry cannot mend
    for handler, who, what, hint, right in BROKEN_TRANSPORTS:
        handler.tries = 0
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler),
                                     base_url="http://upstream") as broken:
            got = await attempt(check, _timed(get_or_none, broken, "/weather", 0.3),
                                f"with {who}, get_or_none", give_up=GIVE_UP, hint=hint)
        if isinstance(got, Raised):
            fail(check, f"with {who}, it raised {got}", hint)
        check.that(got[0] == right, f"{what} gives {'None' if right is None else 'its JSON'}",
                   f"{what} gave {got[0]!r}", hint=hint)
        if handler is _refuse_connections and _refuse_connections.tries > MAX_TRIES:
            fail(check, f"with {who}, it tried {_refuse_connections.tries} times in its 0.3 s "
                        f"budget, over {MAX_TRIES}: too many tries", STORM_HINT)
        if handler in NOT_RETRIED and handler.tries > 1:
            retried[NOT_RETRIED[handler]] = handler.tries
    check.that(not retried, "a 401, a 501, and a body that is not UTF-8 or that its headers lie "
               "about are not retried",
               " and ".join(f"{what} was asked {tries} times" for what, tries in retried.items()),
               hint=NO_RETRY_HINT)


async def _check_cancellation(check, client, upstream, get_or_none):
    """A caller that cancels (Django, when the client disconnects) must really cancel it: the
    answer ends cancelled, and so does the request it made."""
    upstream.reset()
    tasks_before = asyncio.all_tasks()
    task = asyncio.ensure_future(get_or_none(client, "/weather?mode=hang", 5.0))
    await asyncio.sleep(0.1)
    outcome = await cancelled_outcome(task, GIVE_UP, lambda value: f"returned {value!r}")
    check.that(
        outcome == "cancelled",
        "a cancelled call stays cancelled",
        f"cancelled while it waited, it {outcome} instead of letting the cancellation through",
        hint="let asyncio.CancelledError out: do not catch it by name (or re-raise it), and "
        "remember that a bare `except:` or `except BaseException:` catches it too; catch "
        "Exception, or the errors you expect",
    )
    await _check_nothing_left_running(check, upstream, tasks_before | {task},
                                      "the caller cancelling it", CANCEL_IT_TOO)


# Failures an answer may retry, in turn: the first it pauses on is cancelled in that pause. Every
# retrying answer pauses on a 500 that comes at once (PAUSE_JUDGED), so it is asked first.
PAUSED_ON = [(_internal_error, "a 500 answer"), (_maintenance, "a 503 answer"),
             (_refuse_connections, "a refused connection")]


async def _paused_task(get_or_none, client, handler):
    """get_or_none running on client against handler, once it waits in a pause between two
    tries; None when it returned first (it does not retry that failure)."""
    handler.tries = 0
    task = asyncio.ensure_future(get_or_none(client, "/weather", 5.0))
    loop = asyncio.get_running_loop()
    until, paused_at = loop.time() + GIVE_UP, None
    while not task.done() and loop.time() < until:
        await asyncio.sleep(0.005)
        # No call in flight at two looks in a row, with the same tries: it waits in a pause.
        now = (handler.tries, handler.in_flight)
        if now[0] and not now[1] and now == paused_at:
            return task
        paused_at = now
    if not task.done():
        return task
    with contextlib.suppress(BaseException):
        task.result()  # it did not retry this failure: judged by the other cases
    return None


async def _check_cancellation_in_a_pause(check, get_or_none):
    """Cancelled between two tries (in its retry pause), an answer that retries must end
    cancelled too. One that retries none of PAUSED_ON has nothing to judge here."""
    for handler, what in PAUSED_ON:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler),
                                     base_url="http://upstream") as client:
            task = await _paused_task(get_or_none, client, handler)
            if task is None:
                continue
            outcome = await cancelled_outcome(task, GIVE_UP, lambda value: f"returned {value!r}")
        check.that(
            outcome == "cancelled",
            "a call cancelled in its pause between two tries stays cancelled",
            f"cancelled while it waited to try {what} again, it {outcome} instead of letting "
            "the cancellation through",
            hint="do not catch asyncio.CancelledError around the pause "
            "(`await asyncio.sleep(...)`) either: let it out, or re-raise it",
        )
        return
