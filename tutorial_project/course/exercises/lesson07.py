"""Checks for lesson 07 · Streaming responses, Server-Sent Events, and client disconnects."""

import asyncio
import concurrent.futures
import contextlib
import gc
import itertools
import json
import logging
import statistics
import sys
import threading
import time

import httpx
from asgiref.sync import SyncToAsync
from django.core.exceptions import SynchronousOnlyOperation
from django.http import StreamingHttpResponse

from tutorial_project.course.exercises.core import exercise
from tutorial_project.course.exercises.expect import loop_blocking_calls, made_by_the_surroundings
from tutorial_project.course.exercises.probes import call_view
from tutorial_project.course.exercises.quiet import quiet_probe
from tutorial_project.instruments.servers import serve_in_process
from tutorial_project.instruments.streaming import SlowJob, events_in, read_events, sse_event
from tutorial_project.playground import mount, unmount

COUNTDOWN = b"3\n2\n1\nliftoff\n"
PACED = 0.03  # seconds from the first line to the last, at least: there are pauses between
ASKED = 0.05  # seconds between two lines, as the exercise asks
# seconds between any two lines, at least: 60 % of what was asked. asyncio.sleep(0.05) never
# returns early by more than the clock's resolution (15.6 ms on Windows at worst), and a
# loaded machine only makes gaps longer; a 16 ms pause is refused
GAP = 0.6 * ASKED
# seconds between two lines, at most, for the closest two: 5 times what was asked. A load
# that delays one wake-up of the loop rarely delays all three; a 0.5 s pause is refused
LONGEST = 5 * ASKED
TOGETHER = 0.01  # seconds: two lines closer than this came with no pause between them
# seconds: lines all this far apart or more, but all within PACED, had a pause each, too short
# (`asyncio.sleep(0.005)`, a units slip, never returns early); lines with no pause come
# well under a millisecond apart. Only the message depends on it: both are refused
SHORT = 0.004
# The share of the countdown the answer's calls in threads may last, in all: a pause in a
# thread, in one wait or in ten of 5 ms, lasts nearly all of it; a short sync call per line
# (an async ORM query) lasts a few ms, tens on a loaded machine, against 0.2 s of pauses
HELD_SHARE = 1 / 3
# The event loop is held while one of its steps runs (a task's run from one await to the
# next): a blocking call, whatever it is (time.sleep under any name, select, a sync socket, a
# loop on the clock), lengthens the step that makes it. Timed in wall time, garbage
# collections left out. A right answer's steps last well under a millisecond: in 290 runs of
# five right answers (2 cores, loads of 8-17, 6 CPU burners in part, 3.11 and 3.13) the least
# held pause of a run held it 0.3 ms at most, and none needed a second try; a countdown that
# blocks 40 ms of each 50 ms pause held it 40-56 ms. A busy machine that takes the core away
# lengthens one now and then, so a countdown whose loop was held is run again, RUNS times at
# most, and judged by the least held run, while an answer that blocks holds it in every run.
# Held: HELD_STEP at a stretch in each of the three pauses. A poller's thousands of short steps are
# judged by its turns, first: a busy machine may hold one in every pause. uvloop's handles cannot be
# patched: there no step is timed.
HELD_STEP, RUNS = 0.01, 3
# CPU time of the event loop's thread while the countdown streams. Pausing costs next to none
# (3 ms at most for the reference's 0.2 s); a loop that polls the clock with
# `await asyncio.sleep(0)` keeps the thread computing. CPU time does not grow while a loaded
# machine makes the thread wait for a core, so a busy machine lowers the poller's share (to 10-22 %
# at a load of 21 on 2 cores), never the reference's: the bar is both a share and an absolute
# floor above Windows' 15.6 ms clock tick.
BUSY_CPU, BUSY_SHARE = 0.02, 0.06
# Turns of the event loop while the countdown streams: a poller makes the loop turn once per
# `await asyncio.sleep(0)`, thousands of times, however little CPU a busy machine grants it;
# a pause makes it turn a few times. Measured on 2 cores (3.11, 3.13, in a script and in a
# kernel): right answers 60-90 turns (with a 5 ms ticker task beside them), a poller
# 7,000-20,000 at load 4 (7 us a turn), so still about 2,000 on the 14 ms of CPU a load of 28
# leaves it.
POLL_TURNS = 500
# Where the turns are counted, they judge a poller; the CPU bar then only refuses a view that
# computes for a good part of its pauses, set above what a garbage collection or a leftover
# task adds to a right answer's run (one measured 20 ms of CPU in 205 ms, with 79 turns, once
# in about 120 runs). Without turns (uvloop) the lower bar above judges alone.
COMPUTES_CPU, COMPUTES_SHARE = 0.05, 0.25


@contextlib.contextmanager
def _loop_turns():
    """Count the event loop's turns in the block: each turn polls its selector once (the
    proactor on Windows). Yields a one-item list, or None for a loop without a selector to
    watch (uvloop): the CPU bar alone judges there."""
    selector = getattr(asyncio.get_running_loop(), "_selector", None)
    select = getattr(selector, "select", None)
    if select is None or "select" in vars(selector):  # someone else is watching it already
        yield None
        return
    turns = [0]

    def counting(*args, **kwargs):
        turns[0] += 1
        return select(*args, **kwargs)

    selector.select = counting
    try:
        yield turns
    finally:
        del selector.select  # the class's own method again


@contextlib.contextmanager
def _blocking_sleeps():
    """Record each ``time.sleep`` made on a thread that runs an event loop (it blocks it)."""
    calls = []
    real_sleep = time.sleep

    def watched_sleep(seconds):
        with contextlib.suppress(RuntimeError):  # RuntimeError: no loop here, a worker thread
            asyncio.get_running_loop()
            calls.append(seconds)
        real_sleep(seconds)

    time.sleep = watched_sleep
    try:
        yield calls
    finally:
        time.sleep = real_sleep


@contextlib.contextmanager
def _loop_steps():
    """Time each step the event loop runs in the block, in wall time, with the garbage
    collections made during it left out (they are nobody's step). Yields a list of
    ``[start, end]``."""
    thread, steps, run = threading.get_ident(), [], asyncio.events.Handle._run
    collecting, collected = [0.0], [0.0]  # when the current collection began; their total
    # the step that runs the `with` goes on into the block (a generator that never awaits
    # runs in it whole): it counts from here to the next step, or to the block's end
    entered = [time.perf_counter(), 0.0]

    def first_step_ended():
        if entered:
            steps.append([entered[0], time.perf_counter() - (collected[0] - entered[1])])
            entered.clear()

    asyncio.get_running_loop().call_soon(first_step_ended)  # runs once that step has ended

    def timed(handle):
        if threading.get_ident() != thread:  # another thread's loop
            return run(handle)
        first_step_ended()
        began, before = time.perf_counter(), collected[0]
        try:
            return run(handle)
        finally:
            steps.append([began, time.perf_counter() - (collected[0] - before)])

    def gc_timed(phase, info):
        if threading.get_ident() == thread:
            if phase == "start":
                collecting[0] = time.perf_counter()
            else:
                collected[0] += time.perf_counter() - collecting[0]

    gc.callbacks.append(gc_timed)
    asyncio.events.Handle._run = timed
    try:
        yield steps
    finally:
        first_step_ended()
        asyncio.events.Handle._run = run
        gc.callbacks.remove(gc_timed)


def _loop_held(steps, arrivals):
    """(the longest step in each pause between two lines, the steps' total from the first
    line to the last), in s."""
    pauses = [_held_during(steps, earlier, later)[0]
              for earlier, later in itertools.pairwise(arrivals)]
    return pauses, _held_during(steps, arrivals[0], arrivals[-1])[1] if arrivals else 0.0


@contextlib.contextmanager
def _unraisable_kept_quiet():
    """Keep "Exception ignored in: <async_generator ...>" out of the learner's cell: a wrong
    answer's generator, collected half-way (a TaskGroup left at a ``yield``), raises there.
    The verdict says what went wrong."""
    real, dropped = sys.unraisablehook, []
    sys.unraisablehook = dropped.append
    try:
        yield dropped
    finally:
        gc.collect()
        sys.unraisablehook = real


_REAL_SLEEP = time.sleep  # taken before any watcher replaces it
_thread_sensitive = threading.local()  # .on: this thread runs a thread-sensitive sync_to_async


POOL_THREADS = ("asyncio_", "ThreadPoolExecutor")  # name prefixes: the loop's default pool, others


@contextlib.contextmanager
def _sleeps_in_threads():
    """Record (held, pooled): each ``time.sleep`` run by a thread-sensitive ``sync_to_async``
    (the default), and each run in a pool's thread (``asyncio.to_thread``,
    ``run_in_executor``, ``thread_sensitive=False``). Either keeps the loop free but holds a
    thread for the whole pause: the one that runs the request's sync code, or one of a pool's
    few. The thread-sensitive ones are seen in asgiref's worker thread:
    ``SyncToAsync.thread_handler`` runs every call there, under any name the answer uses."""
    held, pooled = [], []
    real_handler, real_sleep = SyncToAsync.thread_handler, time.sleep

    def thread_handler(self, loop, exc_info, task_context, func, child, *args, **kwargs):
        sensitive = getattr(self, "_thread_sensitive", False)
        if sensitive and self.func is _REAL_SLEEP:  # a name bound before the check began
            held.append(child.args[0] if getattr(child, "args", None) else None)
        before, _thread_sensitive.on = getattr(_thread_sensitive, "on", False), sensitive
        try:
            return real_handler(self, loop, exc_info, task_context, func, child, *args,
                                **kwargs)
        finally:
            _thread_sensitive.on = before

    def watched_sleep(seconds):
        if getattr(_thread_sensitive, "on", False):
            held.append(seconds)
        elif threading.current_thread().name.startswith(POOL_THREADS):
            pooled.append(seconds)
        real_sleep(seconds)

    SyncToAsync.thread_handler, time.sleep = thread_handler, watched_sleep
    try:
        yield held, pooled
    finally:
        SyncToAsync.thread_handler, time.sleep = real_handler, real_sleep


@contextlib.contextmanager
def _thread_calls():
    """Time every call the event loop hands to a thread while the block runs: ``to_thread``,
    ``run_in_executor`` (any executor) and ``sync_to_async`` (either kind) all go through
    ``loop.run_in_executor``. Yields a list of ``[start, end]`` (end None while it runs),
    from the moment the call starts running in its thread, whatever function it is: a pause
    or a wait (``Event().wait``, ``queue.Queue().get``, ``select``) holds its thread for as
    long as it lasts, whatever its name. A call submitted to any ``ThreadPoolExecutor`` (a
    pool of the answer's own, awaited with ``asyncio.wrap_future``, included) is timed too,
    on any event loop."""
    loop, calls = asyncio.get_running_loop(), []
    real, real_submit = loop.run_in_executor, concurrent.futures.ThreadPoolExecutor.submit

    def timing(func):
        if getattr(func, "_timed_by_the_check", False):  # run_in_executor submits it again
            return func

        def timed(*args, **kwargs):
            calls.append(call := [time.perf_counter(), None])  # None: still running
            try:
                return func(*args, **kwargs)
            finally:
                call[1] = time.perf_counter()

        timed._timed_by_the_check = True
        return timed

    def run_in_executor(executor, func, *args):
        return real(executor, timing(func), *args)

    def submit(self, fn, /, *args, **kwargs):
        return real_submit(self, timing(fn), *args, **kwargs)

    concurrent.futures.ThreadPoolExecutor.submit = submit
    try:
        try:
            loop.run_in_executor = run_in_executor
        except AttributeError:  # a loop without a __dict__ (uvloop): only pools are timed
            yield calls
            return
        try:
            yield calls
        finally:
            del loop.run_in_executor  # the class's own method again
    finally:
        concurrent.futures.ThreadPoolExecutor.submit = real_submit


@contextlib.contextmanager
def _threads_started():
    """Record the name of each thread started in the block that is not a pool's worker
    (``ThreadPoolExecutor`` starts those, and they wait for calls, which are timed above)
    nor asgiref's own: a ``threading.Timer``, or a ``Thread`` that waits and then wakes the
    loop (``call_soon_threadsafe``), does its waiting in a thread."""
    started, real_start = [], threading.Thread.start

    def start(self):
        target = getattr(self, "_target", None)
        module = getattr(target, "__module__", None) or ""
        if not module.startswith(("concurrent.futures", "asgiref")):
            started.append(type(self).__name__)
        return real_start(self)

    threading.Thread.start = start
    try:
        yield started
    finally:
        threading.Thread.start = real_start


@contextlib.contextmanager
def _tasks_created():
    """Every task created on this loop in the block, held here (a task nobody holds can be
    collected while pending, and then no one sees it was left)."""
    loop = asyncio.get_running_loop()
    factory, created = loop.get_task_factory(), []

    def recording(loop, coro, **kwargs):
        task = (factory(loop, coro, **kwargs) if factory is not None
                else asyncio.Task(coro, loop=loop, **kwargs))
        created.append(task)
        return task

    loop.set_task_factory(recording)
    try:
        yield created
    finally:
        loop.set_task_factory(factory)


async def _left_pending(created, grace=0.3):
    """The tasks of ``created`` still pending ``grace`` s after the check's last stream ended,
    by their coroutine's name; they are cancelled, so that none outlives the check."""
    await asyncio.sleep(grace)
    left = [task for task in created if not task.done() and task is not asyncio.current_task()]
    for task in left:
        task.cancel()
    await asyncio.gather(*left, return_exceptions=True)
    return [getattr(task.get_coro(), "__qualname__", repr(task.get_coro())) for task in left]


def _held_during(calls, start, end):
    """The longest of ``calls`` that ran within ``start``..``end``, and their total, in s."""
    during = [max(0.0, min(ended or end, end) - max(begun, start)) for begun, ended in calls]
    return max(during, default=0.0), sum(during)


class _Resumed(list):
    """When the answer's generator was resumed (a profile hook's "call" event for its frame:
    at its start, after each ``yield`` and after each ``await`` that suspended, in it or in a
    coroutine it awaits); ``codes`` holds the code objects watched."""

    def __init__(self):
        super().__init__()
        self.codes = set()


@contextlib.contextmanager
def _loop_watch():
    """Watch the event loop's thread whatever names the learner imported: ``sleeps`` notes each
    call of the real ``time.sleep`` (``from time import sleep`` binds the same function), and
    ``open_timeouts`` the task of each ``asyncio.Timeout`` block entered and not yet left
    (``timeout()`` and ``timeout_at()`` make one, under any name). A profile hook sees the
    objects, not the names. ``resumed`` notes when a frame of a code put in ``resumed.codes``
    was resumed."""
    sleeps, open_timeouts = [], {}
    enter, leave = asyncio.Timeout.__aenter__.__code__, asyncio.Timeout.__aexit__.__code__
    resumed = _Resumed()

    def watch(frame, event, arg):
        if event == "c_call" and arg is _REAL_SLEEP:
            sleeps.append(arg)
        elif event == "call" and frame.f_code is enter:
            open_timeouts[frame.f_locals["self"]] = asyncio.current_task()
        elif event == "call" and frame.f_code is leave:
            open_timeouts.pop(frame.f_locals["self"], None)
        elif event == "call" and frame.f_code in resumed.codes:
            resumed.append(time.perf_counter())

    previous = sys.getprofile()
    sys.setprofile(watch)  # this thread only: the event loop's, where blocking matters
    try:
        yield sleeps, open_timeouts, resumed
    finally:
        sys.setprofile(previous)


SYNC_CACHE_METHODS = ("get", "set", "add", "delete", "get_many", "set_many", "delete_many",
                      "has_key", "incr", "decr", "touch", "get_or_set", "clear")


@contextlib.contextmanager
def _sync_cache_calls():
    """Note each sync method of Django's default cache called on an event loop's thread.

    With Redis or Memcached each one is a network round trip that holds the loop; the
    ``a``-methods (``await cache.aset(...)``) run the sync ones in a worker thread instead.
    """
    from django.core.cache import caches

    backend, calls, real = type(caches["default"]), [], {}

    def watched(name, method):
        def call(self, *args, **kwargs):
            with contextlib.suppress(RuntimeError):  # no loop here: a worker thread
                asyncio.get_running_loop()
                calls.append(f"cache.{name}()")
            return method(self, *args, **kwargs)

        return call

    for name in SYNC_CACHE_METHODS:
        real[name] = backend.__dict__.get(name)
        setattr(backend, name, watched(name, getattr(backend, name)))
    try:
        yield calls
    finally:
        for name, method in real.items():
            if method is None:
                delattr(backend, name)
            else:
                setattr(backend, name, method)


@contextlib.contextmanager
def _sync_orm_refused():
    """Note each ``SynchronousOnlyOperation`` made while the block runs, wherever the answer
    then loses it: a stream cut short, a worker task's error sent as a failure event."""
    refused, real = [], SynchronousOnlyOperation.__init__

    def noted(self, *args):
        refused.append(self)
        real(self, *args)

    SynchronousOnlyOperation.__init__ = noted
    try:
        yield refused
    finally:
        del SynchronousOnlyOperation.__init__  # Exception's own again


def _made_by_the_check(frame):
    """``made_by_the_surroundings``, and the check's own httpx client: before it reuses a
    connection, httpcore asks whether its socket is readable with a poll that does not wait
    (``httpcore._utils.is_socket_readable``). A sync httpx call of the answer's still shows:
    its socket operations are made in ``httpcore._backends.sync``, on a blocking socket."""
    return made_by_the_surroundings(frame) or (
        frame is not None and frame.f_globals.get("__name__") == "httpcore._utils")


def _refuse_sync_orm(check, where):
    check.that(
        False,
        "",
        f"{where} called the sync ORM on the event loop, and Django raised "
        "SynchronousOnlyOperation",
        hint="use the async ORM: `await Product.objects.acount()`, `await "
        "Product.objects.aget(...)`, `async for product in Product.objects.all()`; or run "
        "a sync function with `await sync_to_async(function)()`",
    )


class _Run:
    """One request of the countdown, its stream read and timed."""

    arrivals, chunks, steps, pauses, in_timeout = (), (), (), (), ()
    turns, began, took, cpu, held, blocks, sync_orm = None, 0.0, 0.0, 0.0, 0.0, False, False


async def _countdown_run(countdown, timeouts=None):
    """Request ``countdown`` and read its stream, timing the event loop's steps meanwhile.
    With ``timeouts`` (``_loop_watch``'s), note each line that came while a timeout block
    entered in this task, the one that reads the stream, was open: a ``yield`` inside it."""
    gc.collect()  # a full collection now is not one in the countdown
    run = _Run()
    run.response = await call_view(countdown)
    if getattr(run.response, "is_async", False):
        run.arrivals, run.chunks, run.in_timeout = [], [], []
        with _loop_steps() as run.steps:
            cpu, run.began = time.thread_time(), time.perf_counter()
            try:
                with _loop_turns() as run.turns:
                    async for chunk in run.response:
                        run.arrivals.append(time.perf_counter())
                        run.chunks.append(chunk)
                        if timeouts and asyncio.current_task() in timeouts.values():
                            run.in_timeout.append(chunk)
            except SynchronousOnlyOperation:
                run.sync_orm = True
            finally:
                run.cpu, run.took = time.thread_time() - cpu, time.perf_counter() - run.began
        run.pauses, run.held = _loop_held(run.steps, run.arrivals)
        run.blocks = bool(run.pauses) and min(run.pauses) >= HELD_STEP
    return run


async def _body_again(countdown):
    """The body of one more request of ``countdown``, read untimed; None if it broke off."""
    response = await call_view(countdown)
    if response.status_code != 200 or not getattr(response, "is_async", False):
        return None
    try:
        return b"".join([chunk async for chunk in response])
    except Exception:  # noqa: BLE001 (reported as a second stream that broke off)
        return None


@exercise("07.1", "Stream a countdown with an async iterator")
async def check_countdown(check, countdown):
    named = []
    with (quiet_probe() as probe, _blocking_sleeps() as blocking,
          _sleeps_in_threads() as (held, pooled), _sync_cache_calls() as cached,
          _thread_calls() as in_threads, _threads_started() as threads):
        runs = []
        while len(runs) < RUNS and (not runs or runs[-1].blocks and not runs[-1].sync_orm):
            runs.append(await _countdown_run(countdown))
        run = min(runs, key=lambda run: (run.blocks, run.held))
        # name what held the loop, however short: a sync call of 1-10 ms per line (a sync
        # Redis or HTTP client) holds it less than HELD_STEP; and see a `yield` inside a
        # timeout. The profile hooks slow the loop: no timing in this run
        with _loop_watch() as (_sleeps, timeouts, _resumed), loop_blocking_calls() as named:
            watched = await _countdown_run(countdown, timeouts)
        # a generator runs once: one made outside the view serves only the first request
        again = await _body_again(countdown) if run.response.status_code == 200 else None
    if threads:  # starting its thread blocks the loop briefly; the thread is the fault
        named = [name for name in named if name != "threading.Thread.start"]
    if run.sync_orm:
        _refuse_sync_orm(check, "the stream broke off: your generator")
    response, arrivals, chunks = run.response, run.arrivals, run.chunks
    turns, cpu, began, took = run.turns, run.cpu, run.began, run.took
    raised = response.view_error or (
        f"{type(response.exc_info[1]).__name__}: {response.exc_info[1]}"
        if getattr(response, "exc_info", None) else None)
    if "SynchronousOnlyOperation" in (raised or ""):
        _refuse_sync_orm(check, "the view answered 500: it")
    check.that(
        response.status_code == 200,
        "the view answers 200",
        f"the view answered {response.status_code}" + (f": it raised {raised}" if raised else ""),
    )
    check.that(
        getattr(response, "streaming", False),
        "it returns a StreamingHttpResponse",
        f"it returns a {type(response).__name__}, which is sent all at once",
        hint="return StreamingHttpResponse(your_generator(), content_type='text/plain')",
    )
    check.that(
        response.is_async,
        "its content is an async iterator",
        "its content is a sync iterator: under ASGI Django consumes it whole before sending",
        hint="write the generator with `async def` and `yield`, and `await asyncio.sleep(...)`",
    )
    body = b"".join(chunks)
    check.that(
        body == COUNTDOWN,
        "the body is 3, 2, 1, liftoff, one per line",
        f"the body is {body!r}, expected {COUNTDOWN!r}",
    )
    check.that(
        again == COUNTDOWN,
        "a second request gets the whole countdown too",
        f"a second request got {again!r}" if again is not None
        else "a second request got no whole stream: it failed or broke off",
        hint="make a new generator in the view, for every request (`lines()` called inside "
        "`countdown`): a generator runs once, so one made outside the view (at module level, "
        "as a default argument, in a response built once) is used up by the first request "
        "and every later one gets an empty body",
    )
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    paced = arrivals[-1] - arrivals[0] >= PACED
    together = [chunk for chunk in chunks if chunk.count(b"\n") > 1]
    listed = ", ".join(f"{gap * 1000:.0f}" for gap in gaps)
    if together:  # paused, maybe, but not before each line
        failure = f"some lines came together, in one chunk: {together[0]!r}"
        hint = "yield one line at a time, each after its pause: `yield f\"{word}\\n\"`"
    elif paced and min(gaps) > LONGEST:  # a pause before each line, each far too long
        failure = (f"the pauses between the lines were {listed} ms: the exercise asks for "
                   f"about {ASKED * 1000:.0f} ms, and up to {LONGEST * 1000:.0f} ms passes")
        hint = f"pause before every line with `await asyncio.sleep({ASKED})`, in seconds"
    elif paced and min(gaps) >= TOGETHER:  # a pause before each line, each too short
        failure = (f"the pauses between the lines were {listed} ms: the exercise asks for "
                   f"about {ASKED * 1000:.0f} ms, and {GAP * 1000:.0f} ms at least passes")
        hint = f"pause before every line with `await asyncio.sleep({ASKED})`"
    elif paced and min(gaps) < SHORT:
        failure = (f"some lines came together: the gaps between them were {listed} ms, and "
                   "each line needs its pause")
        hint = "pause before every line, inside the loop: `await asyncio.sleep(0.05)`"
    elif min(gaps) >= SHORT:  # a pause before each line, all far too short (a busy machine
        # may stretch one 5 ms pause past PACED: still a pause, not lines that came together)
        failure = (f"the pauses between the lines were {listed} ms: the exercise asks for "
                   f"about {ASKED * 1000:.0f} ms, and {GAP * 1000:.0f} ms at least passes")
        hint = f"pause before every line with `await asyncio.sleep({ASKED})`, in seconds"
    else:
        failure = "the lines all came at once: there is no pause between them"
        hint = probe.hint("pause between lines with `await asyncio.sleep(0.05)`")
    check.that(
        paced and GAP <= min(gaps) <= LONGEST and not together,
        "the lines come one by one, with pauses between them",
        failure,
        hint=hint,
    )
    if blocking:  # no line when none was seen: `from time import sleep` hides it from us
        check.that(
            False,
            "",
            "it calls time.sleep() on the event loop: every other request waits meanwhile",
            hint="pause with `await asyncio.sleep(0.05)`, not time.sleep",
        )
    if held:  # no line when none was seen: a pause that holds no thread is the usual case
        check.that(
            False,
            "",
            "it pauses with `sync_to_async(time.sleep)`: the event loop stays free, but each "
            "pause runs in the thread that runs this request's sync code (sync_to_async is "
            "thread-sensitive by default) and holds it: the request's other sync calls wait "
            "behind it",
            hint="`await asyncio.sleep(0.05)` pauses without holding any thread",
        )
    if pooled:  # no line when none was seen, as above
        check.that(
            False,
            "",
            "it pauses in a pool's thread (`asyncio.to_thread`, `run_in_executor`, "
            "`sync_to_async(..., thread_sensitive=False)`): the event loop stays free, but "
            "each pause holds one of the pool's threads, and the default pool has "
            "min(32, CPUs + 4) of them unless the server sets its own, shared with DNS "
            "lookups: past that many countdowns at once, the pauses wait for each other",
            hint="`await asyncio.sleep(0.05)` pauses without holding any thread",
        )
    if threads:  # no line when none was seen: the usual case
        check.that(
            False,
            "",
            f"it starts a thread for its pauses ({', '.join(dict.fromkeys(threads))}): the "
            "event loop stays free, but a thread does each pause's waiting, held for as long "
            "as it waits",
            hint="`await asyncio.sleep(0.05)` pauses without any thread; `loop.call_later` "
            "does what a `threading.Timer` does, on the event loop",
        )
    _longest, held_s = _held_during(in_threads, began, began + took)
    named_above = held or pooled or threads  # time.sleep in a thread, a thread of its own
    if held_s >= max(GAP, HELD_SHARE * took) and not named_above:
        check.that(
            False,
            "",
            f"calls it ran in threads lasted {held_s * 1000:.0f} ms of the countdown's "
            f"{took * 1000:.0f} ms (`asyncio.to_thread`, `run_in_executor`, `sync_to_async` "
            "or a pool's `submit`, "
            "whatever it calls: `Event().wait`, `select`, a queue's `get`, in one wait or many "
            "short ones): the event loop stays free, but each pause holds that thread for as "
            "long as it waits, the request's own (it runs the request's sync calls, which wait "
            "behind it) or one of a pool's few",
            hint="`await asyncio.sleep(0.05)` pauses without holding any thread",
        )
    if cached:  # the same rule as in 07.2
        check.that(
            False,
            "",
            f"it calls {', '.join(dict.fromkeys(cached))} on the event loop: with Redis or "
            "Memcached each sync cache call is a network round trip, and every other request "
            "waits meanwhile",
            hint="use the async cache API: `await cache.aset(...)`",
        )
    if turns is None:
        busy = cpu >= BUSY_CPU and cpu >= BUSY_SHARE * took
    else:
        busy = turns[0] > POLL_TURNS or (cpu >= COMPUTES_CPU and cpu >= COMPUTES_SHARE * took)
    if turns is not None and turns[0] > POLL_TURNS:  # a poller: judged before its steps
        _judge_busy(check, True, cpu, took, turns)
    check.that(
        not run.blocks and not named,
        "the event loop stayed free during the pauses: no blocking call seen on it, nor a "
        f"step that held it {HELD_STEP * 1000:.0f} ms or more in each of the pauses",
        "the pauses block the event loop: it was held "
        + ", ".join(f"{pause * 1000:.0f}" for pause in run.pauses)
        + f" ms at a stretch in the pauses, {run.held * 1000:.0f} ms of the countdown's "
        f"{took * 1000:.0f} ms in all (the least of {len(runs)} tries)"
        + (f": it calls {', '.join(dict.fromkeys(named))} there" if named else "")
        + ", and every other request waits meanwhile"
        if run.blocks
        else f"it calls {', '.join(dict.fromkeys(named))} on the event loop: while it runs, "
        "every other request waits, however short the call (it held the loop "
        + ", ".join(f"{pause * 1000:.0f}" for pause in run.pauses)
        + " ms at most at a stretch in the pauses)",
        hint="pause with `await asyncio.sleep(0.05)`: it hands the loop to other tasks"
        if run.blocks or any(name.startswith("time.sleep") for name in named)
        else "await instead (`await asyncio.sleep(...)`, an async client); a sync call you "
        "cannot avoid goes to a thread: `await asyncio.to_thread(...)`",
    )
    if watched.in_timeout:  # no line when none was seen: the usual case
        check.that(
            False,
            "",
            "it yields inside an `asyncio.timeout()` block: when the deadline passes while "
            "Django's `await send(...)` waits for a slow client, the timeout cancels the "
            "response's task there, outside your generator; the connection is cut, and your "
            "`except TimeoutError` never runs",
            hint="put the timeout around the `await` alone (`async with "
            "asyncio.timeout_at(deadline): await asyncio.sleep(0.05)`), then yield outside it",
        )
    _judge_busy(check, busy, cpu, took, turns)


def _judge_busy(check, busy, cpu, took, turns):
    """The countdown's CPU verdict: ``busy`` refuses it."""
    check.that(
        not busy,
        "the pauses cost next to no CPU: the event loop's thread idled while it waited",
        f"the event loop's thread computed for {cpu * 1000:.0f} ms of the countdown's "
        f"{took * 1000:.0f} ms"
        + (f" and the loop turned {turns[0]} times" if turns is not None else "")
        + ": a loop that polls the clock, even one that awaits "
        "`asyncio.sleep(0)`, keeps a core busy for the whole pause",
        hint="sleep for the whole pause at once: `await asyncio.sleep(0.05)`",
    )


class _WatchedJob(SlowJob):
    """A ``SlowJob`` that notes the task it runs in, to tell whether it got its own task."""

    ran_in, tasks = None, ()

    async def run(self):
        self.ran_in = asyncio.current_task()
        self.tasks = [self.ran_in]  # every task that advanced the job, in order
        async for step in super().run():
            yield step
            if (task := asyncio.current_task()) not in self.tasks:  # anext() in a new task
                self.tasks.append(task)

    async def stopped(self, grace=1.0):
        """Whether every task that ran the job has ended, waiting up to ``grace`` s."""
        deadline = time.monotonic() + grace
        while not all(task.done() for task in self.tasks) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return all(task.done() for task in self.tasks)


class _FailingJob(_WatchedJob):
    """A job that raises at step ``fails_at``, as real work sometimes does."""

    def __init__(self, fails_at=3, **kwargs):
        super().__init__(**kwargs)
        self.fails_at = fails_at

    async def run(self):
        self.failed = asyncio.Event()
        async for step in super().run():
            if step == self.fails_at:
                self.failed.set()
                raise RuntimeError(FAILURE_DETAIL)
            yield step


FAILURE_DETAIL = "db.internal:5432 rejected the password for user report"  # never for a browser
# No part of it either, nor its type or a traceback: what only the exception holds, matched
# in any case; not the plain words a generic message may say ("rejected", "password")
SECRETS = ("db.internal", "5432", "rejected the password", "for user report", "RuntimeError",
           "Traceback")
FAILURE_EVENT = "failed"  # the lesson's name; any name but EventSource's own `error` will do
# seconds: one step of a real job may take this long, and more. Longer than FAILED_READ, the
# failing run's read timeout: an answer that takes silence for failure either misreports this
# slow step (its timeout is shorter) or keeps the failing job's client waiting (longer)
SLOW_STEP = 3.0
FAILED_READ = 2.0
# seconds the answer's calls in threads may last, in all, while the job with the SLOW_STEP
# streams: a third of that step. A wait for the step in a thread lasts the whole step; a short
# sync call moved to a thread (10 ms a step) and Django's own sync_to_async calls for the
# request last milliseconds, tens of them on a busy machine
HELD_WAIT = SLOW_STEP / 3


def _errors_in(error):
    """``error``, the exceptions it groups, its cause and its context, and theirs."""
    seen, todo = [], [error]
    while todo:
        if (each := todo.pop()) is None or any(each is other for other in seen):
            continue
        seen.append(each)
        todo += [each.__cause__, each.__context__, *getattr(each, "exceptions", ())]
    return seen


class _ProbeFailureUnlogged(logging.Filter):
    """Drops the log records of the check's own failing jobs: ``FAILURE_DETAIL`` in the
    exception (its group, its cause or context) or the message. An answer that logs the job's
    error, as it should, would print a traceback of an error the check made on purpose above
    the verdict; its other records pass. ``logged`` keeps each dropped record of level
    WARNING or above, once, though every handler sees it: the check asks for one."""

    def __init__(self):
        super().__init__()
        self.logged = []

    def filter(self, record):
        error = record.exc_info[1] if isinstance(record.exc_info, tuple) else None
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit the format: not ours
            message = str(record.msg)
        if not any(FAILURE_DETAIL in str(each) for each in [message, *_errors_in(error)]):
            return True
        if record.levelno >= logging.WARNING and not any(record is r for r in self.logged):
            self.logged.append(record)
        return False


@contextlib.contextmanager
def _probe_failures_unlogged():
    """Keep the check's failing jobs out of every log handler there is, whatever logger the
    answer logs with (``logging.getLogger(__name__)``, the root logger, its own name), and out
    of ``logging.lastResort``, which prints to stderr when no handler is configured. Outside
    the check the records reach the handlers as usual. Yields the list of the failures'
    records that were logged (and dropped)."""
    loggers = [logging.getLogger(), *(logger for logger in logging.Logger.manager.loggerDict
                                      .values() if isinstance(logger, logging.Logger))]
    handlers = {handler for logger in loggers for handler in logger.handlers}
    handlers |= {logging.lastResort} if logging.lastResort else set()
    drop = _ProbeFailureUnlogged()
    for handler in handlers:
        handler.addFilter(drop)
    try:
        yield drop.logged
    finally:
        for handler in handlers:
            handler.removeFilter(drop)


class _SlowStepJob(_WatchedJob):
    """A job that succeeds, but whose second step takes ``SLOW_STEP`` seconds."""

    async def run(self):
        async for step in super().run():
            yield step
            if step == 1:
                await asyncio.sleep(SLOW_STEP)


async def _closed_after_two(progress_events):
    """Read two events straight from the generator, slowly (a queue of up to READ_SLOWLY /
    0.05 steps fills meanwhile: a bounded one makes the worker wait in `put`), pause again
    while the worker fills the room the second read made, then close it
    with ``aclose()``: the ``GeneratorExit`` path (a server's or middleware's ``send`` waited
    as the client left). Returns the job's outcome, how many steps it produced afterwards,
    whether the answer's CancelledError came out, and whether every task of the job ended."""
    job = _WatchedJob(steps=20, delay=0.05)
    events = progress_events(job)
    try:
        await asyncio.wait_for(anext(events), 2)
        await asyncio.sleep(READ_SLOWLY)
        await asyncio.wait_for(anext(events), 2)
        await asyncio.sleep(READ_SLOWLY / 2)  # the worker fills the room that read made
    except Exception:  # noqa: BLE001 (a stream that breaks or hangs is judged by the served run)
        pass
    finally:
        cancelled_out = await _closed_quietly(events)
    closed = time.perf_counter()
    await asyncio.sleep(0.3)  # time for 6 more steps, if the job were still running
    stopped = await job.stopped()
    outcome, after = job.outcome, job.produced_after(closed)
    await _let_leaked_job_end(job)
    return outcome, after, cancelled_out, stopped


READ_SLOWLY = 0.3  # seconds between the first two events the close probe reads


async def _cancelled_while_waiting(progress_events):
    """Read two events straight from the generator, then cancel the read of the third while
    the generator waits for it (a disconnect lands there more often than at a `yield`): what
    the answer started for that wait must end with it, which _left_pending judges."""
    job = _WatchedJob(steps=20, delay=0.2)
    events = progress_events(job)
    try:
        await asyncio.wait_for(anext(events), 2)
        await asyncio.wait_for(anext(events), 2)
        waiting = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0.05)  # well inside the job's 0.2 s step
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
    except Exception:  # noqa: BLE001 (a stream that breaks or hangs is judged by the served run)
        pass
    finally:
        await _closed_quietly(events)
    await _let_leaked_job_end(job)


async def _closed_quietly(events):
    """``aclose()`` the answer's generator; whether the answer's own CancelledError came out
    of it (`await worker` after `worker.cancel()`). Its other errors are judged by the served
    run (a TaskGroup left at a yield raises GeneratorExit in an exception group)."""
    try:
        await events.aclose()
    except asyncio.CancelledError:
        if asyncio.current_task().cancelling():
            raise  # ours: the check itself is being cancelled
        return True
    except (Exception, BaseExceptionGroup):  # noqa: BLE001 (judged by the served run)
        pass
    return False


# steps of the job the behind probe reads only once it has finished: more than the lesson's
# `asyncio.Queue(maxsize=100)` holds, so a bounded queue of the lesson's size or smaller is
# full when the end marker is put, as it is for a client that fell that far behind
BEHIND_STEPS = 150


async def _read_when_finished(progress_events):
    """Read one event, then nothing until the job has finished (or its worker waits for room
    in a bounded queue: no step for 0.3 s), then the rest, one at a time, each after the
    worker refilled the room the last read made. A reader this far behind finds any bounded
    queue smaller than the job full at its end: a ``put_nowait`` of the end marker raises
    QueueFull there. Returns how the stream ended ("ended", "hung", "raised"), the
    events read, and whether a task of the job ended with QueueFull."""
    job = _WatchedJob(steps=BEHIND_STEPS, delay=0)
    events, read, ending = progress_events(job), 0, "ended"
    try:
        await asyncio.wait_for(anext(events), 2)
        read, last, still = 1, -1, time.monotonic()
        deadline = time.monotonic() + 3
        while job.outcome == "running" and time.monotonic() < deadline:
            if len(job.produced) != last:
                last, still = len(job.produced), time.monotonic()
            elif time.monotonic() - still > 0.3:
                break  # the worker waits in `await progress.put(...)`: it is bounded
            await asyncio.sleep(0.05)
        while True:
            seen = len(job.produced)
            await asyncio.wait_for(anext(events), 2)
            read += 1
            # a slow client: its server waits in `send` while the worker fills the room this
            # read made (on 3.12+ wait_for does not suspend when a step is ready at once)
            for _ in range(20):
                if len(job.produced) != seen or job.outcome != "running":
                    break
                await asyncio.sleep(0)
    except StopAsyncIteration:
        pass
    except TimeoutError:
        ending = "hung"
    except Exception:  # noqa: BLE001 (other errors are judged by the served runs)
        ending = "raised"
    finally:
        await _closed_quietly(events)
    await _let_leaked_job_end(job)
    queue_full = any(task.done() and not task.cancelled()
                     and isinstance(task.exception(), asyncio.QueueFull) for task in job.tasks)
    return ending, read, queue_full


class _RaisedInTheGenerator(Exception):
    """What ``_raised_in_after_two`` raises in the answer's generator at its ``yield``."""


async def _raised_in_after_two(progress_events):
    """Read two events straight from the generator, then raise an error in it at its
    ``yield`` (``athrow``), as an error of its own code there would: the generator ends
    neither by cancellation nor by ``GeneratorExit``. Returns the job's outcome and how many
    steps it produced afterwards."""
    job = _WatchedJob(steps=20, delay=0.05)
    events = progress_events(job)
    try:
        for _ in range(2):
            await asyncio.wait_for(anext(events), 2)
        await asyncio.wait_for(events.athrow(_RaisedInTheGenerator(FAILURE_DETAIL)), 2)
    except asyncio.CancelledError:  # `await worker` after `worker.cancel()`: judged by aclose
        if asyncio.current_task().cancelling():
            raise  # ours: the check itself is being cancelled
    except Exception:  # noqa: BLE001 (ours coming back, or a stream judged by the served run)
        pass
    finally:
        await _closed_quietly(events)
    raised = time.perf_counter()
    await asyncio.sleep(0.3)  # time for 6 more steps, if the job were still running
    outcome, after = job.outcome, job.produced_after(raised)
    await _let_leaked_job_end(job)
    return outcome, after


# A pause that computes: `while time.perf_counter() < until: pass` holds the event loop's
# thread for the whole pause. Caught as in lesson 05: the most CPU time the thread spends
# between two beats of a heartbeat task, in the median of BUSY_TRIES runs of a short job, next
# to a generator that only forwards the steps (measured in turns with the answer, so a change
# of load hits both). CPU time, not wall time: waiting for a core is nobody's fault; the
# median, because a spinning loop gets a different share of a core in each try. Measured on 2
# cores at load average 11 (3 runs each): right answers 0.2-0.5 ms, the baseline 0.2-0.3 ms,
# a 50 ms busy pause per step 24-25 ms. The limit: at a load of 25, lesson 05 saw a 50 ms
# spin get 1-8 ms of CPU in a try, so on a very busy machine a short spin can slip through.
BUSY_TRIES, BUSY_FACTOR, BUSY_EXTRA_MS = 5, 3, 3


async def _forwarded(job):
    """The baseline: the job's steps as events, nothing else."""
    async for step in job.run():
        yield sse_event({"step": step, "of": job.steps})


async def _busiest_stretch_ms(events_of):
    """The most CPU ms the event loop's thread spent between two heartbeats while
    ``events_of`` streamed a 4-step job to its end (or for 2 s at most)."""
    job, most, running = _WatchedJob(steps=4, delay=0.02), [0.0], [True]

    async def heartbeat():
        last = time.thread_time()
        while running[0]:
            await asyncio.sleep(0)
            now = time.thread_time()
            most[0], last = max(most[0], now - last), now

    async def read():
        events = events_of(job)
        try:
            async for _event in events:
                pass
        finally:
            with contextlib.suppress(Exception):
                await events.aclose()

    beat = asyncio.create_task(heartbeat())
    await asyncio.sleep(0)
    ended = False
    try:
        with contextlib.suppress(Exception):  # a failing answer is judged by the served run
            await asyncio.wait_for(read(), 2)
            ended = True
    finally:
        running[0] = False
        await beat
        await _let_leaked_job_end(job)
    return most[0] * 1000 if ended else None


async def _busy_ms(progress_events):
    """(the answer's, the baseline's) busiest stretch in ms, each the median of its tries;
    (0, 0) for an answer whose stream does not end (judged by the served run)."""
    answer, baseline = [], []
    for _ in range(BUSY_TRIES):
        if (ms := await _busiest_stretch_ms(progress_events)) is None:
            return 0.0, 0.0
        answer.append(ms)
        baseline.append(await _busiest_stretch_ms(_forwarded))
    return statistics.median(answer), statistics.median(baseline)


# A pause that polls, `while progress.empty(): await asyncio.sleep(0)`, hands the loop back at
# every turn: no stretch between two heartbeats is long, but the event loop's thread computes
# for as long as the job waits. Caught by the thread's CPU time while a job with 0.1 s steps
# streams (no heartbeat runs meanwhile), against the baseline generator's, measured in turns
# with the answer: right answers use a few ms, as the baseline does, whatever the load, while a
# poller gets as much CPU as the machine leaves it: 32-67 % of the wall time on 2 cores at loads
# of 3.5-10, a 7 % share at a load of 28, still 40 ms over the 0.6 s stream. Bar: POLL_FACTOR
# times the baseline, and at least BUSY_CPU (above Windows' 15.6 ms clock tick). The lower of
# two runs each, so that one garbage collection cannot refuse a right answer.
POLL_STEPS, POLL_DELAY, POLL_FACTOR = 6, 0.1, 5
# A pause that polls slowly, `queue.get_nowait()` then `await asyncio.sleep(0.5)` while it is
# empty, costs little CPU but makes every event wait for the next look: the same runs time each
# step from the moment the job produced it to the moment the generator yielded it. Awaiting the
# queue, the step comes at the next turn of the loop: a right answer's median delay was
# 0.1 ms (2 cores, load 15, 3.11 and 3.13); a 0.5 s poller's 340-350 ms with these
# 0.1 s steps. Bar: the median delay of the better of the two runs. A poller every 50 ms or
# less may pass: with 0.1 s steps its looks can fall just after each step.
LATE = 0.05


# A poller with a short period (`await asyncio.sleep(0.02)` while the queue is empty) passes
# LATE when its looks fall just after the steps, but it wakes all the time: while the served
# job takes SLOW_STEP s over its second step, the answer's generator is resumed at every look.
# A right answer sleeps through it: awaiting the queue, it is resumed only for a step, and a
# heartbeat (a comment every 0.5 s in the tests) is resumed once to send it and once after,
# not counted. The bar: more than one wake with nothing to send per POLL_EVERY s; a 40 ms
# poller wakes about 70 times in those 3 s, and a busy machine only makes its sleeps longer.
POLL_EVERY = 0.2


def _idle_wakes(job, resumed, yielded):
    """(seconds the served ``job`` took over its slow step, less a margin at each end; how
    many times the answer's generator was resumed meanwhile beyond two per event it sent)."""
    if len(job.produced) < 2:
        return 0.0, 0
    start, end = job.produced[0] + 0.1, job.produced[1] - 0.05
    sent = sum(start < moment < end for moment in yielded)
    return end - start, max(0, sum(start < moment < end for moment in resumed) - 2 * sent)


def _step_delays(arrivals, job):
    """Seconds from the job producing each step to its event reaching the reader."""
    delays = []
    for arrived, event in arrivals:
        text = event.decode(errors="replace") if isinstance(event, bytes) else str(event)
        try:
            parsed = events_in(text)
        except ValueError:  # data that is not JSON (a failure said in plain text): no step
            continue
        for kind, data in parsed:
            step = _json_or_text(data) if isinstance(data, str | bytes) else data
            step = step.get("step") if kind == "message" and isinstance(step, dict) else None
            if isinstance(step, int) and 0 < step <= len(job.produced):
                delays.append(arrived - job.produced[step - 1])
    return delays


async def _loop_cpu_while_streamed(events_of):
    """CPU seconds of the event loop's thread while ``events_of`` streamed a job with slow
    steps to its end, the lower of two runs, and the median delay of its steps (see
    ``LATE``), the lower of the two runs'; None for a stream that does not end (judged by
    the served run)."""
    runs, late = [], []
    for _ in range(2):
        job = _WatchedJob(steps=POLL_STEPS, delay=POLL_DELAY)
        events, arrivals = events_of(job), []

        async def read(events=events, arrivals=arrivals):
            async for event in events:
                arrivals.append((time.perf_counter(), event))

        cpu = time.thread_time()
        try:
            await asyncio.wait_for(read(), 3)
        except Exception:  # noqa: BLE001 (a failing answer is judged by the served run)
            return None
        finally:
            runs.append(time.thread_time() - cpu)
            with contextlib.suppress(Exception):
                await events.aclose()
            await _let_leaked_job_end(job)
        if delays := _step_delays(arrivals, job):
            late.append(statistics.median(delays))
    return min(runs), min(late, default=0.0)


async def _poll_cpu(progress_events):
    """(the answer's, the baseline's) CPU seconds while a slow job streams, and the answer's
    median step delay; (0, 0, 0) for an answer whose stream does not end."""
    baseline = await _loop_cpu_while_streamed(_forwarded)
    answer = await _loop_cpu_while_streamed(progress_events)
    if answer is None:
        return 0.0, 0.0, 0.0
    return answer[0], baseline[0] if baseline else 0.0, answer[1]


async def _read_slowly(progress_events):
    """Read one event of a job that fails at step 3, pause while it fails, read the rest.

    Returns "cancelled" when the reader's own task was cancelled during its pause: a
    ``TaskGroup`` around a ``yield`` cancels whatever task reads the generator, under Django
    its ``await send(...)``. The pause lasts until the job has failed, however busy the
    machine.
    """
    job = _FailingJob(fails_at=3, steps=20, delay=0.05)
    events = progress_events(job)

    async def reader():
        try:
            await anext(events)
            try:  # a slow reader: the job fails meanwhile (at ~0.15 s, later on a busy machine)
                for _ in range(40):  # not wait_for: on 3.11 it can swallow a cancellation
                    await asyncio.sleep(0.05)
                    if job.failed.is_set():
                        break
                await asyncio.sleep(0.1)  # a TaskGroup cancels a few loop turns after the failure
            except asyncio.CancelledError:
                return "cancelled"
            async for _event in events:
                pass
        except Exception:  # noqa: BLE001 (raising is judged by the served run)
            return "raised"
        finally:
            with contextlib.suppress(BaseException):
                await events.aclose()
        return "read"

    task = asyncio.create_task(reader())
    done, _ = await asyncio.wait({task}, timeout=5)
    if not done:  # it hangs: judged by the served run
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
    await _let_leaked_job_end(job)
    return task.result() if done else "hung"


async def _streamed_in(tasks, events, swallowed, timeouts, yields_in_timeout, reraised,
                       resumed, yielded):
    """Yield what ``events`` yields, noting the task that streams the response, whether
    ``events`` ended normally while that task was being cancelled (it swallowed the
    ``CancelledError`` of a disconnect), and whether it yielded inside a timeout block.
    ``reraised`` gets True when an exception came out of ``events`` that was first raised
    in it before its last ``yield``: re-raised after that event (`raise` in the except that
    sent the failure event), not raised after it (`await worker` in `finally`). Its code goes
    in ``resumed.codes`` (an async iterator's ``__anext__``'s, if it is no generator), and
    the time of each event in ``yielded``."""
    task = asyncio.current_task()
    tasks.append(task)
    code = getattr(events, "ag_code", None) or getattr(
        getattr(type(events), "__anext__", None), "__code__", None)
    if code is not None:
        resumed.codes.add(code)
    last_yield = None  # (the generator's frame, the line of its last yield)
    try:
        async for event in events:
            yielded.append(time.perf_counter())
            if task in timeouts.values():
                yields_in_timeout.append(event)
            if (frame := getattr(events, "ag_frame", None)) is not None:
                last_yield = frame, frame.f_lineno
            yield event
        if task.cancelling():
            swallowed.append(task)
    except Exception as error:
        traceback = error.__traceback__
        while last_yield and traceback is not None:
            if traceback.tb_frame is last_yield[0]:
                reraised.append(traceback.tb_lineno < last_yield[1])
                break
            traceback = traceback.tb_next
        raise
    finally:
        if hasattr(events, "aclose"):
            await events.aclose()


def _json_or_text(data):
    """An event's data as JSON where it is JSON, else its text: the exercise asks for JSON
    only in the progress events (``sse_event``); a failure event may say its message in plain
    text, which EventSource hands to the page as it is."""
    try:
        return json.loads(data)
    except ValueError:
        return data


async def _read_steps(url, *, stop_after=None, read_timeout):
    """Read the stream's events; stop after ``stop_after`` of them (leaving), or at its end.

    Returns ``((event type, data) of each event, how it ended)``: "left", "ended", "broken"
    (the connection was cut mid-response) or "hung" (no byte for ``read_timeout`` seconds).
    """
    received = []
    timeout = httpx.Timeout(10, read=read_timeout)
    async with httpx.AsyncClient(timeout=timeout) as client:
        try:
            async with client.stream("GET", url) as response:
                async for event, data in read_events(response, decode=_json_or_text):
                    received.append((event, data))
                    if len(received) == stop_after:
                        return received, "left"
        except httpx.ReadTimeout:
            return received, "hung"
        except (httpx.RemoteProtocolError, httpx.ReadError):
            return received, "broken"
    return received, "ended"


def _steps(received):
    """The steps of the progress (``message``) events; other event types are left out."""
    return [
        data.get("step") if isinstance(data, dict) else None
        for event, data in received
        if event == "message"
    ]


@exercise("07.2", "Stop the job when the client leaves")
async def check_progress_events(check, progress_events):
    job = _WatchedJob(steps=20, delay=0.1)
    failing = _FailingJob(fails_at=3, steps=20, delay=0.05)
    succeeding = _SlowStepJob(steps=3, delay=0.02)
    jobs = {
        "exercise-07-2/": job,
        "exercise-07-2-fails/": failing,
        "exercise-07-2-succeeds/": succeeding,
    }
    streaming_tasks, swallowed, yields_in_timeout, reraised, yielded = [], [], [], [], []

    def progress(job):
        async def view(request):
            events = _streamed_in(streaming_tasks, progress_events(job), swallowed, timeouts,
                                  yields_in_timeout, reraised, resumed, yielded)
            return StreamingHttpResponse(events, content_type="text/event-stream")

        return view

    for route, each in jobs.items():
        mount(route, progress(each))
    try:
        with (_tasks_created() as created, _unraisable_kept_quiet(), quiet_probe() as probe,
              _blocking_sleeps() as sleeps,
              _sync_cache_calls() as cache_calls, _loop_watch() as (any_sleeps, timeouts, resumed),
              _probe_failures_unlogged() as failures_logged, _thread_calls() as in_threads,
              _sync_orm_refused() as sync_orm):
            # blocking calls are watched on every path: when the job succeeds, fails, or
            # is left; no verdict on timing in here, its profile hook slows the loop down
            with loop_blocking_calls(_made_by_the_check) as waits:
                async with serve_in_process() as url:
                    received, _ = await _read_steps(f"{url}/exercise-07-2/", stop_after=2,
                                                    read_timeout=5)
                    left = time.perf_counter()
                    await asyncio.sleep(0.5)  # time for 5 more steps, if the job still ran
                    stopped = job.ran_in is None or await job.stopped()
                    worker = job.tasks[-1] if job.ran_in is not None else None
                    # the worker's task ended normally though the job in it was cancelled: it
                    # caught the CancelledError (cancelled as asked, a task ends cancelled)
                    worker_swallowed = (
                        stopped and worker is not None and worker not in streaming_tasks
                        and job.outcome == "cancelled" and not worker.cancelled()
                        and worker.exception() is None)
                    logged_before = len(failures_logged)
                    after_failure, ending = await _read_steps(f"{url}/exercise-07-2-fails/",
                                                              read_timeout=FAILED_READ)
                    logged = failures_logged[logged_before:]
                    # with the job's error attached (logger.exception, exc_info=True)
                    traced = [r for r in logged if isinstance(r.exc_info, tuple) and any(
                        FAILURE_DETAIL in str(each) for each in _errors_in(r.exc_info[1]))]
                    success_began = time.perf_counter()
                    after_success, success_ending = await _read_steps(
                        f"{url}/exercise-07-2-succeeds/", read_timeout=SLOW_STEP + 2
                    )
                    success_took = time.perf_counter() - success_began
                    _longest, held_s = _held_during(in_threads, success_began,
                                                    success_began + success_took)
                queue_full = [task for each in jobs.values() for task in each.tasks
                              if task.done() and not task.cancelled()
                              and isinstance(task.exception(), asyncio.QueueFull)]
                closed_outcome, after_close, close_cancelled, close_stopped = (
                    await _closed_after_two(progress_events))
                raised_outcome, after_raise = await _raised_in_after_two(progress_events)
                behind_ending, behind_read, behind_full = await _read_when_finished(
                    progress_events)
                paused = await _read_slowly(progress_events)
            busy_ms, base_ms = await _busy_ms(progress_events)
            poll_cpu, poll_base, step_delay = await _poll_cpu(progress_events)
            await _cancelled_while_waiting(progress_events)
            tasks_left = await _left_pending(created)
        if sync_orm:  # no line when none was seen: the usual case
            _refuse_sync_orm(check, "your generator or its worker")
        after = job.produced_after(left)
        of = [data.get("of") if isinstance(data, dict) else None for _event, data in received]
        # the 3-step job's events too: an answer that writes "of": 20 fits only the first job
        of_3 = {data.get("of") if isinstance(data, dict) else None
                for event, data in after_success if event == "message"}
        check.that(
            _steps(received) == [1, 2] and of == [job.steps] * 2 and of_3 <= {succeeding.steps},
            f'the first two events carry steps 1 and 2, "of" {job.steps}',
            f'the events of a {succeeding.steps}-step job said "of": '
            f"{', '.join(map(str, sorted(of_3, key=str)))}: take the number from the job, "
            "`job.steps`, not from the example"
            if _steps(received) == [1, 2] and of == [job.steps] * 2
            else f"the first two events were {[data for _event, data in received]!r}"
            + (f': each needs "of": {job.steps}, the job\'s number of steps, for the page\'s '
               "progress bar" if _steps(received) == [1, 2] else ""),
            hint=probe.hint('yield sse_event({"step": step, "of": job.steps}) for each step'),
        )
        inside = job.ran_in is None or any(task in streaming_tasks for task in job.tasks)
        check.that(
            not inside and len(job.tasks) == 1,
            "the job runs in one task of its own",
            "the job runs inside the generator, in the response's task: a slow reader slows "
            "the job down"
            if inside
            else "each step of the job ran in a new task, started when the generator asked "
            "for the next step: the job still advances only as fast as the client reads",
            hint="iterate job.run() in `async def work()`, start it once with `worker = "
            "asyncio.create_task(work())`, and pass the steps on through an asyncio.Queue",
        )
        ran_first = job.outcome == "finished" and after == 0  # done before the first event
        check.that(
            after <= 1 and job.outcome == "cancelled",
            "the job was cancelled when the client left",
            f"the job had run all {job.steps} steps before the first event reached the client: "
            "the generator waited for the whole job, so the page saw no progress and the job "
            "could not be stopped"
            if ran_first
            else f"the job went on: {after} steps produced after the client left ({job.outcome})",
            hint="yield each step as the worker puts it in the queue: `while (step := await "
            "progress.get()) is not None: yield ...`"
            if ran_first
            else "wrap the loop in try/finally and cancel the worker task in the finally block",
        )
        check.that(
            stopped and not worker_swallowed,
            "the worker's task ended when it was cancelled",
            "the job was cancelled, but the worker task "
            + ("was still running a second after the client left"
               if not stopped else "ended normally")
            + ": it caught the CancelledError and went on, so the task that cancelled it "
            "is told that it did not happen, and whatever the worker does afterwards runs "
            "for a client that is gone",
            hint="in work(), put cleanup in `finally`; if you catch asyncio.CancelledError, "
            "end the except block with `raise`",
        )
        check.that(
            paused != "cancelled",
            "a failing job does not cancel the task that reads the stream",
            "when the job failed while the reader paused, the reader's own task was "
            "cancelled: a TaskGroup whose block holds a `yield` cancels whatever task reads "
            "the generator, under Django its `await send(...)`, and the connection is cut "
            "with no failure event",
            hint="start the worker with `asyncio.create_task` and cancel it in `finally`; "
            "never `yield` inside `async with asyncio.TaskGroup()` or `asyncio.timeout()`",
        )
        check.that(
            paused == "cancelled" or not swallowed,  # a TaskGroup also leaves cancelling() set
            "the generator lets the disconnect's CancelledError go on",
            "the generator caught the CancelledError of the disconnect and ended normally: "
            "the task that asked for the cancellation (Django's handler, a TaskGroup, "
            "asyncio.timeout) is told it did not happen, and code after your except runs on",
            hint="cancel the worker in a `finally` block; if you catch asyncio.CancelledError, "
            "end the except block with `raise`",
        )
        check.that(
            not yields_in_timeout,
            "no `yield` seen inside an `asyncio.timeout()` block",
            "the generator yields inside an `asyncio.timeout()` block: when the deadline "
            "passes while Django's `await send(...)` waits for a slow client, the timeout "
            "cancels the response's task there, outside your generator; the connection is cut "
            "with no event, and your `except TimeoutError` never runs",
            hint="put the timeout around the `await` alone: `async with "
            "asyncio.timeout_at(deadline): step = await progress.get()`, then yield outside it",
        )
        blocking = [f"time.sleep({seconds})" for seconds in sleeps] or [
            "time.sleep() (under another name)" for _ in any_sleeps]
        blocking += cache_calls
        # the sleeps are named above, with their seconds; these are the other waits
        waits = [name for name in waits if not name.startswith("time.sleep")]
        check.that(
            not blocking and not waits,
            "no blocking call seen on the event loop (time.sleep, Event.wait, select, a sync "
            "socket or subprocess, the sync cache API)",
            f"it calls {', '.join(dict.fromkeys(blocking + waits))} on the event loop: while "
            "it runs, every other request and stream of this server waits, however short "
            "the call"
            + (" (with Redis or Memcached each sync cache call is a network round trip)"
               if cache_calls else ""),
            hint="await instead: `await asyncio.sleep(...)`, `await cache.aset(...)`"
            + ("; a sync call you cannot avoid goes to a thread: `await "
               "asyncio.to_thread(...)`" if waits else ""),
        )
        if held_s >= HELD_WAIT:  # no line when none was seen: the usual case
            check.that(
                False,
                "",
                f"while a job with a {SLOW_STEP:.0f} s step streamed, calls it ran in threads "
                f"lasted {held_s:.1f} s of the stream's {success_took:.1f} s: a wait for the "
                "next step in a thread (`asyncio.to_thread(queue.get)`, `sync_to_async(...)`) "
                "leaves the event loop free but holds that thread for as long as the job "
                "takes, one per open stream: the request's own, or one of the default pool's "
                "min(32, CPUs + 4) unless the server sets its own, shared with "
                "`sync_to_async(thread_sensitive=False)` and "
                "DNS lookups, which then wait behind the streams",
                hint="wait on an asyncio.Queue: `step = await progress.get()` holds no thread",
            )
        spins = busy_ms > max(BUSY_FACTOR * base_ms, base_ms + BUSY_EXTRA_MS)
        polls = poll_cpu >= max(BUSY_CPU, POLL_FACTOR * poll_base)
        check.that(
            not spins and not polls,
            "no busy pause seen: the event loop's thread idles while the job waits",
            f"the event loop's thread computed for {busy_ms:.0f} ms at a stretch (the median "
            f"of {BUSY_TRIES} tries; {base_ms:.1f} ms for a generator that only forwards the "
            "steps): a pause that loops until the clock says so keeps the loop busy, and every "
            "other request and stream of this server waits meanwhile"
            if spins
            else f"the event loop's thread computed for {poll_cpu * 1000:.0f} ms while a "
            f"{POLL_STEPS}-step job with {POLL_DELAY} s steps streamed ({poll_base * 1000:.0f} "
            "ms for a generator that only forwards the steps): a loop that polls (`await "
            "asyncio.sleep(0)` until the queue holds a step) keeps a core busy for as long as "
            "the job waits, for every open stream",
            hint="pause with `await asyncio.sleep(...)`, never a loop that reads the clock"
            if spins
            else "wait on the queue itself: `step = await progress.get()` wakes when a step "
            "arrives, and costs nothing meanwhile",
        )
        idle, wakes = _idle_wakes(succeeding, resumed, yielded)
        if wakes > idle / POLL_EVERY:  # no line when it slept through the step: the usual case
            check.that(
                False,
                "",
                f"while the job took {idle:.1f} s over one step, your generator woke {wakes} "
                f"times with nothing to send (once every {idle / wakes * 1000:.0f} ms; the "
                f"check refuses more often than every {POLL_EVERY * 1000:.0f} ms): it looks at "
                "its queue now and then and sleeps between looks, so every event waits for the "
                "next look, and every open stream wakes the event loop at each look",
                hint="wait on an asyncio.Queue: `step = await progress.get()` wakes as soon as "
                "the worker puts a step, and not before",
            )
        if step_delay > LATE:  # no line when the steps came at once: the usual case
            check.that(
                False,
                "",
                f"each step reached the reader {step_delay * 1000:.0f} ms after the job had "
                f"produced it (the median, while a {POLL_STEPS}-step job with {POLL_DELAY} s "
                "steps streamed): the generator looks at its queue now and then and sleeps "
                "between looks, so every event waits for the next look, and every open stream "
                "wakes the event loop at each look",
                hint="wait on an asyncio.Queue: `step = await progress.get()` wakes as soon as "
                "the worker puts a step",
            )
        check.that(
            closed_outcome != "running" and after_close <= 1,
            "the job stops when the generator is closed (aclose) rather than cancelled",
            f"when the generator was closed with aclose() after two events, the job went on "
            f"({after_close} steps afterwards): a server or middleware whose `send` waits as "
            "the client leaves closes your generator with GeneratorExit at its `yield`, not "
            "CancelledError, and cleanup in `except CancelledError` does not run",
            hint="cancel the worker in a `finally` block: it runs on cancellation and on close",
        )
        check.that(
            raised_outcome != "running" and after_raise <= 1,
            "the job stops when an error ends the generator",
            f"when an error was raised in the generator at its `yield` after two events, the "
            f"job went on ({after_raise} steps afterwards): an error of your own code there "
            "(a step `json.dumps` cannot encode, an id `sse_event` refuses) ends the stream "
            "too, and cleanup in `except CancelledError` or `except GeneratorExit` does not "
            "run",
            hint="cancel the worker in a `finally` block: it runs however the generator ends",
        )
        if not close_stopped:  # no line when the worker ended: the usual case
            check.that(
                False,
                "",
                "when the generator was closed after a slow read, the worker's task was still "
                "waiting a second later, and would for ever: with a bounded queue "
                "(`asyncio.Queue(maxsize=...)`) that a slow reader has filled, an `await "
                "progress.put(...)` made after the cancellation (in work()'s `finally`) waits "
                "for room that nobody will make: a task leaks with every stream that ends so",
                hint=BOUNDED_HINT,
            )
        if close_cancelled:  # no line when it closed cleanly: the usual case
            check.that(
                False,
                "",
                "when the generator was closed with aclose(), it raised CancelledError though "
                "nobody cancelled its task: `await worker` after `worker.cancel()` re-raises the "
                "worker's cancellation, and after a failed job it re-raises the job's error, "
                "which cuts the connection after your failure event",
                hint="cancelling is enough; to wait for the worker, `if not worker.done(): "
                "worker.cancel()`, then `with contextlib.suppress(asyncio.CancelledError): "
                "await worker`",
            )
        check.that(
            ending != "hung",
            "when the job fails, the stream ends instead of hanging",
            "when the job failed at step 3, the stream hung: the generator waited for a step "
            "that never came" + (QUEUE_FULL if queue_full else ""),
            hint=BOUNDED_HINT if queue_full else "the worker stopped without putting the end "
            "marker in the queue: put it in a finally block in work(), then `await worker` "
            "after the loop to learn its error",
        )
        kinds = [event for event, _data in after_failure]
        told = any(event not in ("message", "done") for event in kinds)
        check.that(
            ending != "broken",
            "when the job fails, the response ends normally",
            "when the job failed, the connection was cut mid-response: an exception raised "
            "from the generator aborts the response, and EventSource reconnects and starts "
            "the failing job again"
            + (": your failure event arrived, then the job's error, caught before it, was "
               "raised again (a `raise` in the except block that sent the event)"
               if told and any(reraised)
               else ": your failure event arrived, so what raised runs after it, in `finally` "
               "(`await worker` re-raises the job's error)" if told else ""),
            hint="after the failure event raise nothing: the event and the log record are "
            "the error's whole handling; end the except block there"
            if told and any(reraised)
            else "after the failure event raise nothing: in `finally`, cancel the worker and "
            "leave it, or `await asyncio.gather(worker, return_exceptions=True)`, which hands "
            "back the worker's error or CancelledError instead of raising it, yet still "
            "raises a cancellation of this task (`suppress(asyncio.CancelledError)` around "
            "`await worker` would swallow that one too)"
            if told
            else "catch the job's error, `yield sse_event({...}, event=\"failed\")`, and end "
            "the generator (return)",
        )
        failures = [event for event in kinds if event not in ("message", "done")]
        check.that(
            failures and "done" not in kinds,
            "the client is told that the job failed, with an event of its own",
            f"when the job failed, the client got events of types {kinds}: it cannot tell "
            "the failure from a finished job",
            hint="after the loop, `await worker` in try/except: on an exception, "
            f'`yield sse_event({{"error": "the job failed"}}, event="{FAILURE_EVENT}")`; send '
            "`done` only on success",
        )
        check.that(
            "error" not in failures,
            "its name is not `error`, the name of EventSource's own event",
            "the failure event is named `error`: EventSource fires an `error` event of its own "
            "whenever the connection drops or reconnects, so a page that closes the stream on "
            "`error` also gives up at the first network hiccup, and reads `event.data` as "
            "undefined",
            hint=f'name it something else: `event="{FAILURE_EVENT}"`',
        )
        check.that(
            _steps(after_failure) == [1, 2],
            "the steps before the failure reached the client",
            f"before the job failed, the client got {after_failure!r}",
        )
        check.that(
            success_ending == "ended",
            "when the job succeeds, the stream ends",
            f"when a 3-step job succeeded, the stream {_ENDINGS.get(success_ending, 'ended')}"
            + (QUEUE_FULL if queue_full and success_ending == "hung" else ""),
            hint="end the generator normally: raise nothing out of it"
            if success_ending == "broken"
            else BOUNDED_HINT if queue_full
            else "the worker must put the end marker in the queue when the job finishes too, "
            "not only when it fails: put it in a finally block in work()",
        )
        success_kinds = [event for event, _data in after_success]
        success_failures = [event for event in success_kinds if event not in ("message", "done")]
        check.that(
            not success_failures or _steps(after_success) == [1, 2, 3],
            "a slow step is waited for, not taken for a failure",
            f"a job whose second step took {SLOW_STEP} s was reported as failed: "
            f"{after_success!r}. A timeout only guesses that the job failed; real steps are "
            "slower than any guess",
            hint="learn the job's fate from the worker itself: an end marker put in the queue "
            "in a `finally` block in work(), then `await worker`",
        )
        check.that(
            _steps(after_success) == [1, 2, 3] and success_kinds[-1:] == ["done"]
            and not success_failures,
            "when the job succeeds, the client gets every step, then a `done` event",
            f"when a 3-step job succeeded, the client got {after_success!r}: EventSource "
            "reconnects after any end of the stream, so without a `done` event the page's "
            "script cannot tell success from a dropped connection, nor know to close the "
            "stream before the job starts again",
            hint='after the loop, if the job succeeded: `yield sse_event({"total": job.steps}, '
            'event="done")`',
        )
        if behind_full or behind_ending == "hung":  # no line when it ended: the usual case
            check.that(
                False,
                "",
                f"when the reader read nothing until a {BEHIND_STEPS}-step job had finished, "
                f"as a slow client does, the stream hung after {behind_read} events"
                + (QUEUE_FULL + ": a client that falls that far behind waits for ever"
                   if behind_full else ": the end marker never came"),
                hint=BOUNDED_HINT if behind_full else "the worker must put the end marker in "
                "the queue when the job finishes: `await progress.put(None)` after the loop",
            )
        leaked = [word for word in SECRETS if word.lower() in str(after_failure).lower()]
        check.that(
            not leaked,
            "the failure event carries a generic message",
            f"the failure event sent the exception to the browser, or part of it "
            f"({', '.join(leaked)}): {after_failure[-1:]!r}",
            hint='log the exception and send a generic message: `yield sse_event({"error": '
            f'"the job failed"}}, event="{FAILURE_EVENT}")`',
        )
        check.that(
            logged,  # reached only once a failure event was sent
            "the job's error went to the log",
            "when the job failed, no log record carried its error: the browser rightly gets a "
            "generic message, so the log is the only place where the details can be found, "
            "and nobody learns why the job failed",
            hint='in the `except` that catches the job\'s error: `logger.exception("the job '
            'failed")` (a logger of your own: `logger = logging.getLogger(__name__)`)',
        )
        check.that(
            traced,
            "the log record carries the job's traceback",
            "the job's error was logged without its traceback (`logger.error(\"...: %s\", "
            "error)` keeps the message only): the traceback is what tells where the job failed",
            hint='`logger.exception("the job failed")` in the `except` block (it logs at ERROR '
            'with the traceback), or `exc_info=True` on another call: `logger.warning(..., '
            'exc_info=True)`',
        )
        if tasks_left:  # no line when every task ended: the usual case
            check.that(
                False,
                "",
                f"after its streams had ended, tasks your code started were still pending: "
                f"{', '.join(sorted(set(tasks_left)))} ({len(tasks_left)} in all). A task left "
                "waiting (a `Queue.get()` wrapped in a task for `asyncio.wait`, a worker "
                "waiting to `put`) lives on after its stream, one more with every stream, "
                "until it is garbage-collected with \"Task was destroyed but it is pending!\"",
                hint="cancel every task you start in the `finally` block, not only the worker "
                "(`getter.cancel()`), or await the queue directly: `step = await "
                "progress.get()`",
            )
    finally:
        for route in jobs:
            unmount(route)
        for each in jobs.values():
            await _let_leaked_job_end(each)
            for task in getattr(each, "tasks", ()):  # a worker that swallowed its cancellation
                task.cancel()


QUEUE_FULL = (": the worker's `put_nowait` of the end marker raised asyncio.QueueFull, "
              "so the marker was lost: the queue is bounded (`asyncio.Queue(maxsize=...)`) "
              "and was full")
BOUNDED_HINT = ("put the end marker with `await progress.put(None)` (it waits for room), "
                "only when the job finished or failed: nobody reads it after a cancellation. "
                "In work(): `except Exception: await progress.put(None); raise`, and `await "
                "progress.put(None)` after the loop")

_ENDINGS = {
    "hung": "hung: the generator waited for a step that never came",
    "broken": "was cut mid-response: the generator raised",
    "left": "was left",
}


async def _let_leaked_job_end(job, timeout=4.0):
    """A wrong answer may leave the job running: wait for it, so nothing leaks into later cells."""
    deadline = time.monotonic() + timeout
    while job.outcome == "running" and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
