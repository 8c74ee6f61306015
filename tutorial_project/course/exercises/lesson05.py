"""Checks for lesson 05 · Async middleware."""

import ast
import asyncio
import concurrent.futures
import contextlib
import inspect
import json
import secrets
import selectors
import statistics
import sys
import textwrap
import threading
import time
import types

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.cache import cache, caches
from django.core.cache.backends.base import BaseCache, CacheKeyWarning
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpResponse, HttpResponseNotFound, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase, ResponseHeaders
from django.test import AsyncClient, Client
from django.utils.deprecation import MiddlewareMixin

from tutorial_project.course.exercises.core import exercise
from tutorial_project.course.exercises.expect import (
    blocking_calls_on_this_thread,
    file_opens_on_this_thread,
    made_by_the_surroundings,
)
from tutorial_project.course.exercises.quiet import quiet_probe
from tutorial_project.instruments.middleware.overhead import asgi_get, thread_hops_per_request
from tutorial_project.instruments.middleware.passthrough import async_passthrough, sync_passthrough
from tutorial_project.playground import mount, unmount, use_middleware

PROBE = "exercise-05-probe/"
DJANGO_OUTER = "django.middleware.security.SecurityMiddleware"  # a MiddlewareMixin built-in


@contextlib.contextmanager
def _one_chain(middleware, view):
    """A client whose requests to ``view`` all go through one chain of ``middleware``: the
    chain is built at the first request and kept, as a server keeps its handler, so what a
    middleware instance or its factory's closure remembers lasts from request to request."""
    mount(PROBE, view)
    try:
        with use_middleware(*middleware):
            yield AsyncClient(raise_request_exception=False)
    finally:
        unmount(PROBE)


async def _send(client, **request):
    """GET the probe's view with ``client``; a raw exception is returned, not raised."""
    try:
        response = await client.get(f"/{PROBE}", **request)
    except Exception as error:  # escaped Django's handling: that is what the check reports
        return error.with_traceback(None)  # the traceback would keep the learner's frames alive
    if response.exc_info:  # Django turned an exception into this 500: name it, drop its frames
        response.error = response.exc_info[1].with_traceback(None)
        response.exc_info = None
    return response


async def _get(middleware, view, **request):
    """GET a view through exactly ``middleware``, in a chain built for this one request."""
    with _one_chain(middleware, view) as client:
        return await _send(client, **request)


def _sync_ok_view(request):
    return HttpResponse("ok")


def _get_through_a_sync_handler(middleware):
    """GET a sync view through ``middleware`` with Django's sync test Client (a sync chain
    under a sync handler, as WSGIHandler builds it). Run in a thread with no event loop:
    Client is sync code. A raw exception is returned, not raised."""
    mount(PROBE, _sync_ok_view)
    try:
        with use_middleware(middleware):
            return Client(raise_request_exception=False).get(f"/{PROBE}")
    except Exception as error:  # escaped Django's handling: that is what the check reports
        return error.with_traceback(None)
    finally:
        unmount(PROBE)


def _at_once_through_a_sync_handler(middleware):
    """AT_ONCE requests at once, from as many threads, through one sync chain of
    ``middleware`` under Django's sync test Client (one instance, as a threaded WSGI server
    such as gunicorn --threads shares it). Each sync view waits at a barrier until every
    request has reached a view; returns the statuses (or raw exceptions), how many views
    waited in vain (other requests were held back above them), the most requests that were
    in views at the same time, and the requests that got another's response or no X-Lesson
    (each view answers its own body, and the first X-Lesson set on each response waits
    until every thread has set its own: a response kept on ``self`` between the call and
    the return is overwritten by another thread's every time, not only when the OS switches
    threads there). Run in a thread with no event loop."""
    everyone = threading.Barrier(AT_ONCE, timeout=OVERLAP_WAIT_S)
    stamped = threading.Barrier(AT_ONCE, timeout=OVERLAP_WAIT_S)  # the forced interleave
    waited_in_vain, inside, counting = [], [0, 0], threading.Lock()  # inside: now, most
    mixed = []

    class InterleavingHeaders(ResponseHeaders):
        waited = False

        def __setitem__(self, key, value):
            super().__setitem__(key, value)
            if key.lower() == "x-lesson" and not self.waited:
                self.waited = True
                with contextlib.suppress(threading.BrokenBarrierError):
                    stamped.wait()

    def view(request):
        with counting:
            inside[0] += 1
            inside[1] = max(inside)
        try:
            everyone.wait()
        except threading.BrokenBarrierError:  # others are held back above the view
            waited_in_vain.append(request.path)
            stamped.abort()  # they would not stamp together either: do not wait twice
        finally:
            with counting:
                inside[0] -= 1
        response = HttpResponse(f"request {request.GET.get('n')}")
        response.headers = InterleavingHeaders(response.headers)
        return response

    mount(PROBE, view)
    try:
        with use_middleware(middleware):
            client = Client(raise_request_exception=False)
            client.handler.load_middleware()  # one chain for both threads, built before them
            results = [None] * AT_ONCE

            def send(at):
                try:
                    response = client.get(f"/{PROBE}", {"n": at})
                except Exception as error:  # escaped Django's handling: reported, not raised
                    results[at] = error.with_traceback(None)
                    return
                finally:  # passed the stamp or never set X-Lesson: the others need not wait
                    stamped.abort()
                results[at] = response.status_code
                body = f"request {at}".encode()
                if response.content != body or response.get("X-Lesson") != "05":
                    mixed.append(f"request {at} got {response.content!r}")

            threads = [threading.Thread(target=send, args=(at,)) for at in range(AT_ONCE)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            instance = getattr(client.handler._middleware_chain, "__wrapped__", None)
            kept = [name for name, value in vars(instance).items()
                    if isinstance(value, HttpResponseBase)] if hasattr(instance, "__dict__") else []
            if kept:
                mixed.append(f"the instance still holds a response in self.{kept[0]}")
    finally:
        unmount(PROBE)
    return results, len(waited_in_vain), inside[1], mixed


def _status(response):
    return getattr(response, "status_code", response)


def _failure(response):
    """How a probe's request went wrong, for a verdict."""
    if isinstance(response, Exception):
        return f"{type(response).__name__} escaped Django: {response}"
    error = getattr(response, "error", None)
    cause = f" ({type(error).__name__}: {error})" if error is not None else ""
    return f"it answered {response.status_code}{cause}"


async def _ok_view(request):
    return HttpResponse("ok")


async def _not_found_view(request):
    return HttpResponseNotFound("no such page")


async def _failing_view(request):
    raise RuntimeError("the view failed")


async def _streaming_view(request):
    async def body():
        yield b"ok"

    return StreamingHttpResponse(body())


# The disconnect probe's client leaves LEAVES_AFTER_S after the view has started (not after
# the request: a lookup that finishes as the cancellation arrives makes Python 3.11's
# asyncio.wait_for return its result and drop the cancellation, a CPython bug, not the
# answer's); the view would answer only after VIEW_WAITS_S, so it is still waiting then.
LEAVES_AFTER_S, VIEW_WAITS_S = 0.05, 5


def _view_the_client_leaves(ended, leave):
    """A view that would answer only after VIEW_WAITS_S; how it ended goes into ``ended``.
    ``leave`` is set LEAVES_AFTER_S after it starts."""

    async def view(request):
        ended.append(asyncio.current_task())
        asyncio.get_running_loop().call_later(LEAVES_AFTER_S, leave.set)
        try:
            await asyncio.sleep(VIEW_WAITS_S)
        except asyncio.CancelledError:
            ended.append("cancelled")
            raise
        ended.append("finished")
        return HttpResponse("too late")

    return view


async def _probe_disconnect(check, middleware, headers=()):
    """A client that leaves while the view waits, through ``ASGIHandler`` as a server calls
    it: Django (5.0+) cancels the request, and the ``CancelledError`` must rise through the
    middleware, so no response is sent. A middleware that catches it (``except BaseException``,
    a bare ``except:``) and returns a response makes Django send that response, whatever its
    status, to a client that is gone, on every disconnect (and log it if it is a 4xx/5xx).
    The cancellation must also reach the view: behind ``asyncio.shield`` the view runs on
    after the request has ended (after ``request_finished``, outside the request's thread
    context), with nobody to answer."""
    ended, leave = [], asyncio.Event()  # the view's task, then "cancelled" or "finished"
    mount(PROBE, _view_the_client_leaves(ended, leave))
    started = time.perf_counter()
    try:
        with quiet_probe() as probe, use_middleware(middleware):
            status = await asyncio.wait_for(
                asgi_get(ASGIHandler(), f"/{PROBE}", disconnect_when=leave, headers=headers),
                VIEW_WAITS_S * 2,
            )
    except Exception as error:  # escaped Django, or the request never ended
        status = f"{type(error).__name__}: {error}".rstrip(": ")
    finally:
        unmount(PROBE)
    took = time.perf_counter() - started
    view_ran_on = len(ended) == 1 and not ended[0].done()
    if view_ran_on:  # the check's own leftover: stop it
        ended[0].cancel()
        await asyncio.gather(ended[0], return_exceptions=True)
    check.that(
        status is None and took < VIEW_WAITS_S,
        "when the client leaves, the request ends with no response sent",
        f"when the client left {LEAVES_AFTER_S * 1000:.0f} ms into the view's wait, "
        + (f"it still answered {status} ({took:.1f} s later), to a client that was gone"
           if isinstance(status, int) else f"the request ended with {status}"),
        hint=probe.hint(
            "Django cancels the request when the client leaves: let asyncio.CancelledError "
            "go through (it is a BaseException: catch Exception, not BaseException, and "
            "never a bare except:), and put cleanup in finally"
        ),
    )
    check.that(
        not view_ran_on,
        "the view was cancelled with the request",
        "when the client left, the request ended but the view ran on",
        hint="await get_response(request) itself: asyncio.shield (or a task that nothing "
        "cancels) keeps the view running after Django has cancelled the request, its "
        "thread context left and request_finished sent, with nobody to answer",
    )


def _on_event_loop():
    """Whether this thread is running an event loop (where blocking stalls every request)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


# A stall has two kinds, each judged over TRIES tries against a middleware that only passes
# the request on (its baseline, measured in turns with the answer):
# - busy: the event loop's thread spent at least 3 times the baseline's CPU time between two
#   beats of the loop (and 2 ms more), in the median try. CPU time, not wall time: on a busy
#   machine the thread also waits for a core and for the GIL, which is nobody's fault. The
#   median, not every try: a loop that spins for a wall-clock time gets only the share of a
#   core the machine grants it, and that share changes from try to try. Measured on 2 cores
#   at load average 15 (medians of 7 tries, min-max): a right answer 0.5 ms (0.5-0.8), a
#   10 ms busy loop 3.9 (2.3-6.2), 25 ms 7.3 (4.2-11), 50 ms 12 (5.1-14); at load average
#   25: right 0.6, 10 ms 1.9, 25 ms 4.2 (3.4-6.9), 50 ms 4.2 (0.9-8.5: every try's would have
#   missed it). So a busy loop is caught from about 25 ms on a loaded machine, and from a
#   few ms on an idle one.
# - waiting: the loop went WAIT_EXTRA_MS longer than the baseline without a beat, in every
#   try (the shortest). This catches the blocking calls that use no CPU: Event.wait, select,
#   a sync socket or HTTP client; their length does not depend on the load. An added margin,
#   not a factor: on 2 cores at load average 25 the baseline's longest gap (shortest of the
#   tries) reached 15-40 ms, all of it waiting for a core; a 100 ms wait adds 100 ms to
#   every try.
STALL_FACTOR, STALL_EXTRA_MS = 3, 2
WAIT_EXTRA_MS = 40
# The blocking calls known by name are caught however short (expect.blocking_calls_on_this_
# thread); the gap is the backstop for the others. A gap with no long call in the answer's
# code to explain it (see LONG_CALL_MS) must be this many times longer: on 2 cores at load
# average 15 a right answer that makes two thread crossings showed 75 ms on all 5 tries.
LONE_GAP_FACTOR = 4
TRIES = 5
LONG_CALL_MS = 20  # a single C call this long on the loop is named in the verdict


def _module_of(frame):
    return frame.f_globals.get("__name__", "") if frame is not None else ""


@contextlib.contextmanager
def _watching_blocking_calls():
    """Note the long C calls made on this (the event loop's) thread while the block runs: each
    one outside the event loop's own code that took LONG_CALL_MS or more of wall time, each the
    innermost of its kind (in ``.long_calls``, as ``(ms, "name, called in caller")``).

    A profile hook sees the calls themselves; it is set for this thread only, and any profiler
    already set still runs. The long calls only name a culprit of a stall measured apart
    (a blocking call that expect.blocking_calls_on_this_thread does not know by name).
    """

    seen = types.SimpleNamespace(long_calls=[])
    previous, started = sys.getprofile(), []

    def noting(frame, event, arg):
        if event == "c_call":
            started.append([arg, time.perf_counter(), False])  # False: no long call inside yet
        elif event in ("c_return", "c_exception"):
            depth = next((i for i in range(len(started) - 1, -1, -1) if started[i][0] is arg), None)
            if depth is None:  # a call begun before the hook was set
                return _previous(frame, event, arg)
            _, start, long_call_inside = started[depth]
            del started[depth:]  # and any call above it whose return was not reported
            ms = (time.perf_counter() - start) * 1000
            if ms >= LONG_CALL_MS:  # the innermost long call
                if not long_call_inside and not made_by_the_surroundings(frame):
                    name = getattr(arg, "__qualname__", None) or repr(arg)
                    caller = getattr(frame.f_code, "co_qualname", frame.f_code.co_name)
                    seen.long_calls.append((ms, f"{name}, called in {caller}"))
                if started:
                    started[-1][2] = True
        _previous(frame, event, arg)

    def _previous(frame, event, arg):
        if previous is not None:
            previous(frame, event, arg)

    sys.setprofile(noting)
    try:
        yield seen
    finally:
        sys.setprofile(previous)


async def _longest_stall_ms(awaitable):
    """Await ``awaitable`` next to a heartbeat task; return (its result, the most CPU time in
    ms the event loop's thread spent between two beats, the longest wall time in ms between
    two beats). Code that computes in a coroutine instead of awaiting shows in both; code
    that waits in a blocking call (no CPU) shows in the wall time only."""
    cpu, wall, running = [0.0], [0.0], [True]

    async def heartbeat():
        last_cpu, last_wall = time.thread_time(), time.perf_counter()
        while running[0]:
            await asyncio.sleep(0)
            now_cpu, now_wall = time.thread_time(), time.perf_counter()
            cpu[0], last_cpu = max(cpu[0], now_cpu - last_cpu), now_cpu
            wall[0], last_wall = max(wall[0], now_wall - last_wall), now_wall

    beat = asyncio.ensure_future(heartbeat())
    await asyncio.sleep(0)  # the heartbeat starts before the request does
    try:
        result = await awaitable
    finally:
        running[0] = False
        await beat
    return result, cpu[0] * 1000, wall[0] * 1000


class _Blocking:
    """What the check saw of ``middleware`` blocking the event loop."""

    def __init__(self):
        self.sleeps = False
        self.blocking_calls = []  # the names of the other blocking calls made on the loop
        self.busy = {}  # label: ms of CPU at a stretch, in the median try
        self.waits = {}  # label: ms of wall time without a beat, on every try
        self.long_calls = []  # (ms, name) of the blocking C calls seen


@contextlib.contextmanager
def _watching_named_calls():
    """Name each blocking call known by name (expect.blocking_calls_on_this_thread, and each
    file the answer opens) made on this (the event loop's) thread in the block, however short:
    a set, filled when the block ends. A check keeps it on over every request it sends on the
    loop, so a call made on some requests only (every second one, say) is named too. Its
    profile hook slows the loop: no gap is measured inside it."""
    names = set()
    with (
        blocking_calls_on_this_thread(made_by_the_surroundings) as blocking,
        file_opens_on_this_thread() as file_opens,
    ):
        yield names
    names.update(blocking, file_opens)


# The labelled requests go this many times through one kept chain under the name watchers: a
# blocking call made on every Nth request only is named for N up to this, on top of the
# requests of the rest of the check (watched too).
NAMED_ROUNDS = 10


async def _blocking(middleware, view, requests, named=()):
    """How ``middleware`` blocks the event loop: the blocking calls named on its requests
    (``named``, from the rest of the check, and NAMED_ROUNDS rounds of ``requests`` through
    one chain), and for each labelled request (keyword arguments of ``AsyncClient.get``) its
    stall in ms, busy or waiting, if it stalls the loop, next to a pass-through middleware's
    (see STALL_FACTOR)."""
    seen = _Blocking()
    with (
        _watching_blocking_calls() as calls,
        _watching_named_calls() as names,
        quiet_probe(),
        _one_chain(middleware, view) as client,
    ):
        for _ in range(NAMED_ROUNDS):
            for _, request in requests:
                await _send(client, **request)
    names.update(named)
    seen.sleeps = "time.sleep" in names
    seen.blocking_calls = sorted(names - {"time.sleep"})
    seen.long_calls = sorted(calls.long_calls, reverse=True)
    for label, request in requests:
        (base_cpu, base_wall), (cpu, wall) = await _longest_stretches(
            [(async_passthrough,), middleware], view, request
        )
        if cpu > max(STALL_FACTOR * base_cpu, base_cpu + STALL_EXTRA_MS):
            seen.busy[label] = cpu
        elif wall > base_wall + WAIT_EXTRA_MS * (1 if seen.long_calls else LONE_GAP_FACTOR):
            seen.waits[label] = wall
    return seen


async def _longest_stretches(stacks, view, request):
    """For each middleware stack, each try's longest stretch on the loop over TRIES tries, as
    (the median try's CPU ms, the shortest try's wall ms): a busy machine lengthens one
    try's wall time now and then, and grants a busy loop less CPU in some tries than in
    others; blocking code lengthens every try. The stacks take turns, so a change of load
    hits them alike."""
    tries = [([], []) for _ in stacks]
    for _ in range(TRIES):
        for middleware, (cpus, walls) in zip(stacks, tries, strict=True):
            with quiet_probe():
                _, cpu, wall = await _longest_stall_ms(_get(middleware, view, **request))
            cpus.append(cpu)
            walls.append(wall)
    return [(statistics.median(cpus), min(walls)) for cpus, walls in tries]


# Two requests sent at once through a right answer reach their views within milliseconds: on
# 2 cores at load average 24, 0.4 ms apart in the median of 30 runs, 43 ms at most. A
# middleware that lets one request in at a time holds the second back for all of this wait.
OVERLAP_WAIT_S = 2
# Requests sent at once: more than a small cap (a Semaphore of 2 or 4 held across
# get_response) lets through, so such a cap holds some of them back too.
AT_ONCE = 8

BLOCKING_CALLS = (
    "time.sleep, threading.Event.wait, Lock.acquire, select, a sync socket, "
    "a sync HTTP client (requests, urllib) or a sync Redis client"
)


def _check_no_blocking(check, seen, hint):
    check.that(
        not seen.sleeps,
        "it never calls time.sleep on the event loop",
        "it called time.sleep on the event loop (however it was imported)",
        hint=hint,
    )
    check.that(
        not seen.blocking_calls,
        "it makes no other blocking call on the event loop (select, a sync socket, a lock "
        "wait, a file read)",
        f"it made a blocking call on the event loop: {', '.join(seen.blocking_calls)}",
        hint="however short, each such call stops every request the event loop serves: "
        "await an async API instead (asyncio.sleep, asyncio.Event, asyncio.Lock, an async "
        "client such as httpx.AsyncClient), or run the sync call with sync_to_async (a "
        "file read too)",
    )
    check.that(
        not seen.busy,
        "it never keeps the event loop busy between two awaits",
        "it kept the event loop busy "
        + ", ".join(f"for {ms:.0f} ms of CPU at a stretch {at}" for at, ms in seen.busy.items())
        + f" (the median of {TRIES} tries)",
        hint="a busy loop or any long computation in async code stops every request the "
        "event loop serves, however few requests run it. A wait written as a loop: await "
        "asyncio.sleep(...). Work that needs the CPU does not belong in this exercise; in "
        "a real middleware move it off the loop: sync_to_async(fn, thread_sensitive=False) "
        "for non-Django code that is short or releases the GIL (hashlib on large data, "
        "zlib), a process pool (loop.run_in_executor(ProcessPoolExecutor(), ...)) for long "
        "pure-Python work",
    )
    culprit = ""
    if seen.waits and seen.long_calls:  # name the blocking call that lasted about as long
        stall = max(seen.waits.values())
        ms, name = min(seen.long_calls, key=lambda call: abs(call[0] - stall))
        if abs(ms - stall) < stall / 4:  # else the profile hook missed it: name nothing
            culprit = f" (a call that took {ms:.0f} ms: {name})"
    check.that(
        not seen.waits,
        "it never blocks the event loop in a waiting call (wall time between two beats)",
        "it blocked the event loop "
        + ", ".join(f"for {ms:.0f} ms at a stretch {label}" for label, ms in seen.waits.items())
        + f", on each of {TRIES} tries{culprit}",
        hint=f"a blocking wait ({BLOCKING_CALLS}) stops every request the event loop serves, "
        "even though it uses no CPU: await an async API (asyncio.sleep, cache.aget, "
        "httpx.AsyncClient) or run the sync call with sync_to_async",
    )


def _thread_insensitive_call_by_the_answer(caller):
    """Whether asgiref's ``SyncToAsync.__call__`` (``caller``) runs a function the answer
    wrapped with ``thread_sensitive=False``: like ``asyncio.to_thread``, that sends it to a
    pool shared by every request (the loop's default one, or the executor passed), not to
    the request's own thread. Django's own such calls (log_response...) are not the answer's."""
    if getattr(caller.f_locals.get("self"), "_thread_sensitive", True) is not False:
        return False
    frame = caller.f_back
    while frame is not None and _module_of(frame).startswith("asgiref"):
        frame = frame.f_back
    return frame is not None and not made_by_the_surroundings(frame)


@contextlib.contextmanager
def _counting_executor_calls():
    """Note each call of the running loop's ``run_in_executor`` not made by asgiref (whose
    crossings thread_hops_per_request counts): ``asyncio.to_thread`` ends up there too."""
    loop, calls = asyncio.get_running_loop(), []
    run_in_executor = loop.run_in_executor

    def noting(executor, func, *args):
        caller = sys._getframe(1)
        if not _module_of(caller).startswith("asgiref"):
            to_thread = _module_of(caller) == "asyncio.threads"
            calls.append("asyncio.to_thread" if to_thread else "run_in_executor")
        elif _thread_insensitive_call_by_the_answer(caller):
            calls.append("sync_to_async(thread_sensitive=False)")
        return run_in_executor(executor, func, *args)

    loop.run_in_executor = noting  # this loop only, for the block: the instance attribute
    try:
        yield calls
    finally:
        del loop.run_in_executor


class _ThreadNotingHeaders(ResponseHeaders):
    """Response headers that note on which thread X-Lesson was set."""

    def __init__(self, data):
        self.x_lesson_set_on = []
        super().__init__(data)

    def __setitem__(self, key, value):
        if key.lower() == "x-lesson":
            self.x_lesson_set_on.append(threading.get_ident())
        super().__setitem__(key, value)


async def _thread_noting_view(request):
    response = HttpResponse("ok")
    response.headers = _ThreadNotingHeaders(response.headers)
    return response


def _sets_the_old_marker(tree):
    """Whether code assigns or setattr()s ``_is_coroutine`` (comments and strings aside)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute | ast.Name) and isinstance(node.ctx, ast.Store):
            if getattr(node, "attr", getattr(node, "id", None)) == "_is_coroutine":
                return True
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "setattr"
            and any(getattr(arg, "value", None) == "_is_coroutine" for arg in node.args)
        ):
            return True
    return False


def _uses_the_old_marker(cls):
    """Whether the class (or a base of the learner's) sets ``_is_coroutine`` by hand, in any
    branch, read from its source. A class whose source cannot be read (defined in a notebook
    cell on Python 3.11) is judged by what it does instead: ``_marked_by_hand``."""
    for klass in getattr(cls, "__mro__", ()):
        if klass.__module__ in ("builtins", "django.utils.deprecation"):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):  # no source to read (a C class, a lost cell)
            continue
        if _sets_the_old_marker(tree):
            return True
    return False


def _marked_by_hand(LessonHeader):
    """Whether an instance built with an async get_response carries ``_is_coroutine`` that
    markcoroutinefunction did not set: the behaviour, for when the source cannot be read (a
    class defined in a notebook cell has none on Python 3.11). From Python 3.12 on,
    markcoroutinefunction sets ``_is_coroutine_marker``, so any ``_is_coroutine`` is by hand;
    on 3.11 asgiref's sets ``_is_coroutine`` itself, so the objects it marked are noted."""
    marked, previous = [], sys.getprofile()
    marker = getattr(markcoroutinefunction, "__code__", None)

    def noting(frame, event, arg):
        if event == "call" and frame.f_code is marker:
            marked.append(frame.f_locals.get("func"))
        if previous is not None:
            previous(frame, event, arg)

    async def get_response(request):
        return HttpResponse()

    sys.setprofile(noting)
    try:
        instance = LessonHeader(get_response)
    except Exception:  # the checks that build it report the failure
        return False
    finally:
        sys.setprofile(previous)
    if getattr(instance, "_is_coroutine", None) is None:
        return False
    return sys.version_info >= (3, 12) or not any(func is instance for func in marked)


@exercise("05.1", "A middleware for both stacks")
async def check_lesson_header(check, LessonHeader):
    check.that(
        getattr(LessonHeader, "sync_capable", True)
        and getattr(LessonHeader, "async_capable", False),
        "it declares sync_capable = True and async_capable = True",
        "Django would adapt it: it does not declare both sync_capable and async_capable as True",
        hint="add the class attributes sync_capable = True and async_capable = True",
    )

    check.that(
        not _uses_the_old_marker(LessonHeader) and not _marked_by_hand(LessonHeader),
        "it does not set the private _is_coroutine marker by hand",
        "it sets _is_coroutine by hand: that marker works up to Python 3.11 but is ignored "
        "from Python 3.12 on, where the instance looks sync again",
        hint="call markcoroutinefunction(self) (from asgiref.sync): it marks the instance "
        "the right way on every Python version",
    )

    async def get_response(request):
        return HttpResponse()

    check.that(
        iscoroutinefunction(LessonHeader(get_response)),
        "given an async get_response, the instance is marked as a coroutine function",
        "given an async get_response, Django cannot tell the instance is async",
        hint="in __init__, if iscoroutinefunction(get_response): markcoroutinefunction(self)",
    )
    with _watching_named_calls() as named, _watching_sync_cache_calls() as cache_calls:
        await _probe_lesson_header(check, LessonHeader)
    _check_no_sync_cache_calls(check, cache_calls)
    seen = await _blocking((LessonHeader,), _ok_view, [("in an async stack", {})], named)
    _check_no_blocking(
        check,
        seen,
        hint="time.sleep blocks every request the event loop serves: "
        "in async code, await asyncio.sleep(...), or better, do not wait at all",
    )


async def _probe_lesson_header(check, LessonHeader):
    """05.1's requests, in both stacks, under both handlers; the check watches them all for
    blocking calls made on the event loop."""
    for stack, label in [
        ((LessonHeader,), "an async stack"),
        ((LessonHeader, sync_passthrough), "a sync stack"),
        ((DJANGO_OUTER, LessonHeader), "an async stack below Django's SecurityMiddleware"),
    ]:
        with quiet_probe() as probe:
            response = await _get(stack, _ok_view)
        hint = "sync mode: call get_response(request); async mode: await it in an async method"
        check.that(
            not isinstance(response, Exception) and response.status_code == 200,
            f"in {label} the view answers 200",
            f"in {label} the request failed: {_failure(response)}",
            hint=probe.hint(hint),
        )
        check.that(
            response.get("X-Lesson") == "05",
            f"in {label} the response has X-Lesson: 05",
            f"in {label} the response has no X-Lesson: 05 header",
            hint='set response["X-Lesson"] = "05" before returning the response',
        )
    with quiet_probe() as probe:
        response = await asyncio.to_thread(_get_through_a_sync_handler, LessonHeader)
    answered = not isinstance(response, Exception) and response.status_code == 200
    check.that(
        answered and response.get("X-Lesson") == "05",
        "in a sync handler (WSGI, Django's test Client) the view answers 200 with X-Lesson: 05",
        "in a sync handler (WSGI, Django's test Client) "
        + ("the response has no X-Lesson: 05 header" if answered else
           f"the request failed: {_failure(response)}"),
        hint=probe.hint("sync mode: call get_response(request), set the header, return it"),
    )
    mount(PROBE, _ok_view)
    try:
        baseline = await thread_hops_per_request((), f"/{PROBE}")
        with quiet_probe(), _counting_executor_calls() as executor_calls:
            hops = await thread_hops_per_request((LessonHeader,), f"/{PROBE}")
        sync_baseline = await thread_hops_per_request((sync_passthrough,), f"/{PROBE}")
        with quiet_probe():
            sync_hops = await thread_hops_per_request(
                (LessonHeader, sync_passthrough), f"/{PROBE}"
            )
    finally:
        unmount(PROBE)
    check.that(
        hops == baseline,
        "in an async stack it makes no sync_to_async / async_to_sync crossing",
        f"in an async stack each request crosses threads more: {hops} instead of {baseline}",
        hint="Django runs the MiddlewareMixin hooks (process_request, process_response) "
        "through sync_to_async: write the async path as an async method of your own"
        if inspect.isclass(LessonHeader) and issubclass(LessonHeader, MiddlewareMixin)
        else "each sync_to_async or async_to_sync in the async path is a crossing: await "
        "self.get_response(request) and set the header right there, on the event loop",
    )
    check.that(
        sync_hops == sync_baseline,
        "in a sync stack it adds no crossing to those of a sync-only middleware alone",
        f"in a sync stack each request crosses threads more: {sync_hops} instead of "
        f"{sync_baseline} (a sync-only middleware alone)",
        hint="in sync mode, call self.get_response(request) and set the header in plain "
        "sync code: async_to_sync(...) there starts an event loop (and a thread) per request",
    )
    with quiet_probe():
        response = await _get((LessonHeader,), _failing_view)
    check.that(
        not isinstance(response, Exception) and response.status_code == 500,
        "a failing view still becomes a normal 500 response",
        f"a failing view did not become a 500 response: {_failure(response)}",
        hint="async mode must return a coroutine from a marked instance (markcoroutinefunction)",
    )
    check.that(
        not isinstance(response, Exception) and response.get("X-Lesson") == "05",
        "the 500 answer has X-Lesson: 05 too",
        "the 500 answer has no X-Lesson: 05 header",
        hint="every response gets the header, whatever its status",
    )
    with quiet_probe():
        response = await _get((LessonHeader,), _thread_noting_view)
    set_on = getattr(getattr(response, "headers", None), "x_lesson_set_on", None)
    check.that(
        set_on == [threading.get_ident()],
        "in an async stack it sets the header on the event loop's thread",
        "in an async stack the header was not set on the event loop's thread",
        hint="set the header right after `response = await self.get_response(request)`; "
        "sending that to an executor or a thread costs a crossing for nothing",
    )
    check.that(
        not executor_calls,
        "in an async stack it sends no work to an executor (asyncio.to_thread, run_in_executor)",
        f"in an async stack it sent work to a thread with {(executor_calls or ['?'])[0]}"
        f" ({len(executor_calls)} call(s) for two requests)",
        hint="this middleware only sets a header: do it on the event loop. Work that must "
        "run in a thread belongs in sync_to_async (thread_sensitive: the request's own "
        "worker thread, where Django's database connections live), not in asyncio.to_thread",
    )
    await _probe_own_responses(check, LessonHeader)
    with quiet_probe() as probe:
        statuses, waited_in_vain, most_inside, mixed = await asyncio.to_thread(
            _at_once_through_a_sync_handler, LessonHeader
        )
    let_in = "one request" if most_inside == 1 else f"only {most_inside} requests"
    check.that(
        statuses == [200] * AT_ONCE and not waited_in_vain,
        f"in a sync handler {AT_ONCE} requests at once ({AT_ONCE} threads) are in the chain "
        "together",
        f"in a sync handler ({AT_ONCE} threads at once, as under gunicorn --threads) "
        + (f"requests waited {OVERLAP_WAIT_S} s in their views for others held back above "
           f"them: the sync branch lets {let_in} through at a time"
           if waited_in_vain else f"{AT_ONCE} requests at once got {statuses}"),
        hint=probe.hint(
            "do not hold a threading.Lock or a Semaphore (or any lock) across "
            "self.get_response(request) in the sync branch: under a threaded WSGI server "
            "every other request of the process then waits for those inside. Setting a "
            "header needs no lock"
        ),
    )
    check.that(
        not mixed,
        f"in a sync handler {AT_ONCE} requests at once each get their own response, with "
        "X-Lesson: 05",
        f"in a sync handler ({AT_ONCE} threads at once) a request got the wrong response: "
        f"{'; '.join(mixed[:2])}",
        hint="one instance serves every thread of a WSGI server: keep the response in a "
        "local variable (response = self.get_response(request)), not on self, where "
        "another thread overwrites it",
    )
    with quiet_probe():
        response = await _get((LessonHeader,), _not_found_view)
    check.that(
        getattr(response, "status_code", None) == 404 and response.get("X-Lesson") == "05",
        "a 404 answer has X-Lesson: 05 too",
        "a 404 answer has no X-Lesson: 05 header",
        hint="every response gets the header, whatever its status",
    )
    with quiet_probe():
        response = await _get((LessonHeader,), _streaming_view)
    check.that(
        getattr(response, "status_code", None) == 200 and response.get("X-Lesson") == "05",
        "a streamed answer (StreamingHttpResponse) has X-Lesson: 05 too",
        "a streamed answer (StreamingHttpResponse) has no X-Lesson: 05 header",
        hint="every response gets the header, streamed ones too: a header is sent before the "
        "body, so setting it does not touch the stream (only code that reads or rewrites "
        "the body must skip response.streaming)",
    )
    await _probe_disconnect(check, LessonHeader)


async def _probe_concurrent_requests(check, middleware, hint, **request):
    """AT_ONCE requests at once through one instance of ``middleware`` (one instance serves
    every request), each with ``request`` (keyword arguments of ``AsyncClient.get``). Each view
    waits until every request has reached a view, so they are all in the chain together (a
    middleware that lets one or a few in at a time, with a lock or a small semaphore held
    across get_response, makes those inside wait in vain: OVERLAP_WAIT_S), and the views
    return at the same moment, so a response kept on ``self`` across an await is overwritten
    by another request's. Checks that all were in the chain together; returns
    ``[(path, body, response)]`` and the probe (for a hint on the responses)."""
    all_arrived, arrived, waited_in_vain, inside = asyncio.Event(), [], [], [0, 0]

    def view_for(body):
        async def view(request):
            arrived.append(body)
            inside[0] += 1
            inside[1] = max(inside)  # the most requests in views at the same time
            if len(arrived) == AT_ONCE:
                all_arrived.set()
            try:
                await asyncio.wait_for(all_arrived.wait(), OVERLAP_WAIT_S)
            except TimeoutError:  # other requests are held back above the view
                waited_in_vain.append(body)
            finally:
                inside[0] -= 1
            return HttpResponse(body)

        return view

    paths = {f"{PROBE}{at}/": f"request {at}".encode() for at in range(1, AT_ONCE + 1)}
    for path, body in paths.items():
        mount(path, view_for(body))
    try:
        with quiet_probe() as probe, use_middleware(middleware):
            client = AsyncClient(raise_request_exception=False)
            responses = await asyncio.gather(
                *(client.get(f"/{path}", **request) for path in paths), return_exceptions=True
            )
    finally:
        for path in paths:
            unmount(path)
    let_in = "one request" if inside[1] == 1 else f"only {inside[1]} requests"
    check.that(
        not waited_in_vain,
        f"{AT_ONCE} requests at once are all in the chain at the same time",
        f"with {AT_ONCE} requests at once, requests waited {OVERLAP_WAIT_S} s in their views "
        f"for others held back above them: the middleware lets {let_in} through at a time",
        hint="do not hold an asyncio.Lock or an asyncio.Semaphore across "
        "`await get_response(request)`: every other request of the site then waits "
        f"for those inside. {hint}",
    )
    return [
        (f"/{path}", body, response)
        for (path, body), response in zip(paths.items(), responses, strict=True)
    ], probe


async def _probe_own_responses(check, LessonHeader):
    """05.1: requests sent at once are in the chain together, and each gets its own response
    with the header."""
    answered, probe = await _probe_concurrent_requests(
        check, LessonHeader, "Setting a header needs no lock"
    )
    mixed = [
        f"{path} got {getattr(response, 'content', response)!r}"
        for path, body, response in answered
        if getattr(response, "content", None) != body or response.get("X-Lesson") != "05"
    ]
    check.that(
        not mixed,
        f"{AT_ONCE} requests at once each get their own response, with X-Lesson: 05",
        f"with {AT_ONCE} requests at once a request got the wrong response: "
        f"{'; '.join(mixed[:2])}",
        hint=probe.hint(
            "one instance serves every request: keep the response in a local variable "
            "(response = await self.get_response(request)), not on self, where the other "
            "request overwrites it during an await"
        ),
    )


# Every sync method of the cache API that has an async twin (get / aget, touch / atouch...).
WATCHED_METHODS = tuple(
    sorted(
        name[1:]
        for name in vars(BaseCache)
        if name.startswith("a") and callable(getattr(BaseCache, name[1:], None))
    )
)


@contextlib.contextmanager
def _watching_sync_cache_calls():
    """Note each sync call of the default cache's backend class (``get``, ``touch``, ``incr``...:
    every method that has an ``a`` twin) made on the event loop's thread. There a sync cache
    call blocks every request the loop serves (with Redis or Memcached it waits on the
    network); ``aget`` and friends run these same methods in a worker thread. The backend
    class is patched, not the settings: an answer that captured ``caches["default"]`` at
    import time is watched too.
    """
    backend = type(caches["default"])
    calls, originals = [], {name: backend.__dict__.get(name) for name in WATCHED_METHODS}

    def noting(name, method):
        def sync_call(self, *args, **kwargs):
            if _on_event_loop():
                calls.append(name)
            return method(self, *args, **kwargs)

        return sync_call

    for name in WATCHED_METHODS:
        setattr(backend, name, noting(name, getattr(backend, name)))
    try:
        yield calls
    finally:
        for name, original in originals.items():
            if original is None:
                delattr(backend, name)
            else:
                setattr(backend, name, original)


def _check_no_sync_cache_calls(check, calls):
    calls = sorted(set(calls))
    check.that(
        not calls,
        "it makes no sync cache call on the event loop",
        f"it called the sync cache.{', cache.'.join(calls)}() on the event loop",
        hint="in async code use await cache.aget(...): the sync call blocks the event loop "
        "(with Redis or Memcached, for a network round trip; LocMemCache is fast only "
        "because it is in the process)",
    )


# What the check stores for a known key: a truthy value that is not True, as a real key store
# keeps the key's owner or scopes, so `is True` and `== True` refuse every key.
KEY_RECORD = {"owner": "the check", "scopes": ["read"]}
# Header values that cannot be a key: as cache keys, Memcached refuses the first three
# (InvalidCacheKey, a 500) and every other backend warns (CacheKeyWarning): over 250
# characters, a space, a control character (both of uvicorn's HTTP parsers let a tab
# through). The others break only the rule of the exercise (ASCII letters, digits, - and _, up
# to 64): an answer must not build a cache key from them either. Django decodes a header's
# bytes as Latin-1, so a client's byte 0xE9 reaches the middleware as "é".
NOT_A_KEY = [({"X-API-Key": "x" * 300}, "a 300-character key"),
             ({"X-API-Key": "guess again"}, "a key with a space"),
             ({"X-API-Key": "guess\tagain"}, "a key with a tab"),
             ({"X-API-Key": "k" * 65}, "a 65-character key"),
             ({"X-API-Key": "clé"}, "a key with a non-ASCII letter"),  # the byte 0xE9
             ({"X-API-Key": "guess.again!"}, "a key with punctuation"),
             # re.match(r"^...$") passes it: $ also matches before a final newline
             ({"X-API-Key": "guess\n"}, "a key with a trailing newline")]


@exercise("05.2", "Reject before the view, asynchronously")
async def check_require_api_key(check, require_api_key):
    check.that(
        getattr(require_api_key, "async_capable", False)
        and not getattr(require_api_key, "sync_capable", True),
        "it is async only",
        "it is not declared async only",
        hint="set sync_capable = False and async_capable = True on the class (async_capable "
        "alone leaves sync_capable at its default, True)"
        if inspect.isclass(require_api_key)
        else "decorate the function with @async_only_middleware",
    )
    if inspect.isclass(require_api_key):

        async def get_response(request):
            return HttpResponse()

        check.that(
            iscoroutinefunction(require_api_key(get_response)),
            "the class marks its instances as coroutine functions",
            "Django cannot tell an instance of the class is async: it is not marked",
            hint="in __init__, call markcoroutinefunction(self) (from asgiref.sync)",
        )
    calls = []

    async def view(request):
        calls.append(request)
        return JsonResponse({"secret": 42})

    # A key of the check's own (an answer cannot know it in advance), as long as a key may be,
    # with both - and _ in it: as secrets.token_urlsafe() makes them.
    known = f"Ab-_{secrets.token_urlsafe(45)}"[:64]
    await cache.aset(f"api-key:{known}", KEY_RECORD, 60)
    try:
        with (
            _watching_sync_cache_calls() as blocking,
            _counting_executor_calls() as hops,
            _watching_named_calls() as named,
        ):
            await _probe_api_key(check, require_api_key, view, calls, known)
            await _probe_revocation(check, require_api_key, view, calls, known)
            await _probe_concurrent_requests(
                check,
                require_api_key,
                "A lock is not needed around cache.aget either; if you keep one, hold it "
                "around the lookup only, and release it before awaiting the view",
                headers={"X-API-Key": known},
            )
            await _probe_disconnect(check, require_api_key, [(b"x-api-key", known.encode())])
            await _probe_broken_key_store(check, require_api_key, view, calls, known)
        requests = [
            ("with no key", {}),
            ("with a wrong key", {"headers": {"X-API-Key": "guess"}}),
            ("with a known key", {"headers": {"X-API-Key": known}}),
        ]
        seen = await _blocking((require_api_key,), view, requests, named)
    finally:
        await cache.adelete(f"api-key:{known}")
    _check_no_sync_cache_calls(check, blocking)
    check.that(
        not hops,
        "it sends no work to asyncio.to_thread, an executor or a thread-insensitive "
        "sync_to_async",
        f"it sent work to a thread with {(hops or ['?'])[0]} ({len(hops)} call(s))",
        hint="look the key up with await cache.aget(...): it runs the backend's get with "
        "sync_to_async, in the request's own worker thread. asyncio.to_thread, "
        "run_in_executor and sync_to_async(..., thread_sensitive=False) use a pool shared by "
        "every request, where Django code escapes the request's cleanup (a DatabaseCache "
        "connection opened there outlives the request)",
    )
    _check_no_blocking(
        check,
        seen,
        hint="time.sleep blocks every request the event loop serves: to slow down guessing, "
        "await asyncio.sleep(...), or leave rate limiting to the front server",
    )


def _not_a_json_error(response):
    """Why a rejection is not a JSON object with an "error" key, or None if it is one.
    Any JSON media type passes, parameters aside: ``application/json; charset=utf-8``, or
    ``application/problem+json`` (RFC 9457)."""
    media_type = response.get("Content-Type", "").split(";")[0].strip().lower()
    if not (media_type == "application/json" or media_type.startswith("application/")
            and media_type.endswith("+json")):
        return f"its Content-Type is {media_type or 'missing'!r}"
    try:
        body = json.loads(response.content)
    except ValueError:
        return "its body does not parse as JSON"
    if not isinstance(body, dict) or "error" not in body:
        return f"its body is {body!r}"[:120]
    return None


@contextlib.contextmanager
def _noting_keys_looked_up():
    """Note the key of each ``get`` of the default cache's backend class in the block, on any
    thread (``aget`` runs ``get`` in a worker thread), in the list it yields."""
    backend, asked = type(caches["default"]), []
    own, get = backend.__dict__.get("get"), backend.get

    def noting(self, key, *args, **kwargs):
        asked.append(str(key))
        return get(self, key, *args, **kwargs)

    backend.get = noting
    try:
        yield asked
    finally:
        if own is None:
            del backend.get
        else:
            backend.get = own


async def _probe_api_key(check, require_api_key, view, calls, known):
    no_challenge, cache_key_warned, looked_up, refusals_sent = [], [], [], []
    with _one_chain((require_api_key,), view) as client:
        for headers, label in [({}, "no key"), ({"X-API-Key": "guess"}, "a wrong key"), *NOT_A_KEY]:
            with quiet_probe() as probe, _noting_keys_looked_up() as asked:
                response = await _send(client, headers=headers)
            if isinstance(response, HttpResponseBase):
                refusals_sent.append(response)  # kept alive: id() is not reused
            if any(issubclass(category, CacheKeyWarning) for category in probe.warned):
                cache_key_warned.append(label)
            elif (headers, label) in NOT_A_KEY and any(headers["X-API-Key"] in key
                                                       for key in asked):
                looked_up.append(label)
            refusals = (401, 403, 400) if (headers, label) in NOT_A_KEY else (401, 403)
            hint = "return JsonResponse({...}, status=401) when the cache has no api-key:<key>"
            check.that(
                not isinstance(response, Exception) and response.status_code in refusals,
                f"with {label} it answers {_status(response)}",
                f"with {label} it answered {_status(response)!r}, not 401 (or "
                + " or ".join(map(str, refusals[1:])) + ")",
                hint=probe.hint(hint),
            )
            if _status(response) == 401 and not response.get("WWW-Authenticate", "").strip():
                no_challenge.append(label)
            problem = _not_a_json_error(response)
            check.that(
                problem is None,
                f"with {label} the answer is JSON with an error",
                f'with {label} the answer is not JSON with an "error" key: {problem}',
                hint='answer JsonResponse({"error": "..."}, status=401)',
            )
        # The known key anywhere but the X-API-Key header, and no such header: the spec reads
        # the header only. A key in a URL lands in access logs, proxy logs and Referer headers.
        elsewhere = []
        for request, label in [
            ({"data": {"api_key": known, "key": known}},
             "a known key in the query string (?api_key=...)"),
            ({"headers": {"Authorization": f"Bearer {known}"}},
             "a known key in an Authorization: Bearer header"),
        ]:
            with quiet_probe():
                response = await _send(client, **request)
            if _status(response) not in (401, 403):
                elsewhere.append(f"with {label} and no X-API-Key it answered {_status(response)!r}")
        check.that(
            not elsewhere,
            "a known key sent in the query string or an Authorization header, with no X-API-Key "
            "header, is refused",
            "; ".join(elsewhere) + ", not 401 (or 403)",
            hint="read the key from the X-API-Key header only: a key in the query string ends "
            "up in access logs, proxy logs and Referer headers",
        )
        check.that(
            not calls,
            "the view never ran for a rejected request",
            "the view ran for a rejected request",
            hint="return before awaiting get_response",
        )
        with quiet_probe() as probe:
            response = await _send(client, headers={"X-API-Key": known})
    check.that(
        not isinstance(response, Exception) and response.status_code == 200 and len(calls) == 1,
        "with a key stored in the cache (64 characters, with - and _) the view runs and "
        "answers 200",
        f"with a key stored in the cache ({len(known)} characters, with - and _) the answer "
        f"was {_status(response)!r}",
        hint=probe.hint(
            'look the key up with await cache.aget(f"api-key:{key}") and let in any truthy '
            "value: the check stores a dict (a key's owner and scopes), not True. A key may "
            "hold - and _ (as secrets.token_urlsafe() makes them) and be 64 characters long: "
            'isalnum() refuses it, re.fullmatch(r"[A-Za-z0-9_-]{1,64}", key) does not'
        ),
    )
    with quiet_probe() as probe:
        response = await _get((DJANGO_OUTER, require_api_key), view, headers={"X-API-Key": known})
    check.that(
        not isinstance(response, Exception) and response.status_code == 200,
        "below Django's SecurityMiddleware it answers 200 too",
        f"below Django's SecurityMiddleware the request failed: {_failure(response)}",
        hint=probe.hint("a class must call markcoroutinefunction(self) in __init__"),
    )
    check.that(
        len({id(response) for response in refusals_sent}) == len(refusals_sent),
        "each refusal is a response object of its own",
        "it returned one response object for several refusals: Django logs a response once "
        "(log_response marks it _has_been_logged), so every refusal after the first goes "
        "unlogged, a run of key guesses included, and each layer above writes to that one "
        "object",
        hint="build the JsonResponse inside the middleware function, for each request, not "
        "once at import or in the factory",
    )
    check.that(
        not no_challenge,
        "its 401 answers carry a WWW-Authenticate challenge",
        f"with {' and '.join(no_challenge)} the 401 has no WWW-Authenticate challenge "
        "(RFC 9110 requires one, not empty)",
        hint='add response["WWW-Authenticate"] = \'ApiKey realm="api"\' to the 401, '
        "or answer 403",
    )
    check.that(
        not cache_key_warned,
        "it refuses a header that cannot be a key without building a cache key from it",
        f"with {' and '.join(cache_key_warned)} it asked the cache for a key Django warns "
        "about (CacheKeyWarning): on Memcached that lookup raises InvalidCacheKey, a 500",
        hint="the header is the client's input: refuse one that cannot be a key (longer than "
        "64 characters, or anything but letters, digits, - and _) before asking the cache, "
        'e.g. re.fullmatch(r"[A-Za-z0-9_-]{1,64}", key)',
    )
    check.that(
        not looked_up,
        "it asks the cache only for keys of ASCII letters, digits, - and _, up to 64 characters",
        f"with {' and '.join(looked_up)} it asked the cache for that key: the exercise refuses "
        "such a header before it reaches a cache key",
        hint='check the whole key, e.g. re.fullmatch(r"[A-Za-z0-9_-]{1,64}", key): "no space" '
        "lets a tab or a dot through, str.isalnum() lets non-ASCII letters through, and "
        "re.match without fullmatch (or $, which also matches before a final newline) checks "
        "the start only",
    )


# The key store fails in two ways. It refuses at once (each lookup raises ConnectionError, as
# a Redis client does when the connection is refused), and it hangs (each lookup waits until
# the check gives up, as a client with no socket timeout waits for a server that stopped
# answering). The hung lookups run on an event loop of the check's own, in a thread, whose
# clock runs FAST_CLOCK times faster than the wall clock: whatever bounds the lookup
# (asyncio.timeout, wait_for, asyncio.wait) fires after 1/FAST_CLOCK of its length, so a
# timeout of up to HUNG_STORE_WAIT_S * FAST_CLOCK seconds (25 minutes) is exercised within
# HUNG_STORE_WAIT_S of wall time. A timeout that lets the request in shows, however long.
FAST_CLOCK = 1000
HUNG_STORE_WAIT_S = 1.5
ANSWER_WAIT_S = 10  # once the hung lookups are released (with ConnectionError)


class _FastSelector(selectors.DefaultSelector):
    """Waits 1/speed of the timeout it is given: the loop's timers are in its own time."""

    speed = 1

    def select(self, timeout=None):
        return super().select(None if timeout is None else timeout / self.speed)


class _FastClockLoop(asyncio.SelectorEventLoop):
    """A loop whose clock runs at the wall clock's speed until ``speed_up()``, then
    FAST_CLOCK times faster."""

    def __init__(self):
        super().__init__(_FastSelector())
        self._base = self._mark = time.monotonic()

    def time(self):
        return self._base + (time.monotonic() - self._mark) * self._selector.speed

    def speed_up(self):
        if self._selector.speed != FAST_CLOCK:
            mark = time.monotonic()
            self._base, self._mark = self._base + (mark - self._mark) * self._selector.speed, mark
            self._selector.speed = FAST_CLOCK


def _send_while_the_store_hangs(client, headers, slow_headers, started, release):
    """On a fast-clock loop (in this thread), send a request with ``slow_headers`` (a key the
    store answers, for the slow view) and, once that view has started (the asyncio.Event
    ``started`` is set) or the request has ended, speed the clock up and send one with
    ``headers`` (a key the store hangs on). The clock runs at wall speed until then, so a short
    timeout around the slow request's own lookup does not fire. After HUNG_STORE_WAIT_S of
    wall time, release the hung lookups (from a timer thread: a sync lookup made on the loop
    blocks the loop too). Return both answers (hung, slow), None for one not given in time."""

    async def send():
        slow = asyncio.ensure_future(_send(client, headers=slow_headers))
        view_started = asyncio.ensure_future(started.wait())  # not to_thread: counted
        await asyncio.wait([slow, view_started], return_when=asyncio.FIRST_COMPLETED,
                           timeout=ANSWER_WAIT_S)
        view_started.cancel()
        asyncio.get_running_loop().speed_up()
        hung = asyncio.ensure_future(_send(client, headers=headers))
        await asyncio.wait([slow, hung], timeout=(HUNG_STORE_WAIT_S + ANSWER_WAIT_S) * FAST_CLOCK)
        answers = []
        for request in (hung, slow):
            if not request.done():
                request.cancel()
            answers.append(None if request.cancelled() or not request.done()
                           else request.result())
        return answers

    releaser = threading.Timer(HUNG_STORE_WAIT_S, release.set)  # then each lookup raises
    releaser.start()
    try:
        with asyncio.Runner(loop_factory=_FastClockLoop) as runner:
            return runner.run(send())
    finally:
        releaser.cancel()
        release.set()


async def _probe_broken_key_store(check, require_api_key, view, calls, known):
    """With the check's own key, while the key store fails (an error at once, or no answer
    until the check gives up), the view must not run, and the answer is a 5xx: Django's 500,
    or the answer's own 503 / 504 (fail closed). While the store hangs, a request with a key
    it does answer reaches a view that takes as long as the hang: whatever timeout the answer
    sets must not cover the view."""
    backend, release, running = type(caches["default"]), threading.Event(), []
    own, get = backend.__dict__.get("get"), backend.get
    slow_key = f"Sl-_{secrets.token_urlsafe(45)}"[:64]
    started, slow_view_ran = asyncio.Event(), []

    def failing_get(self, key, *args, **kwargs):
        if slow_key in str(key):
            return get(self, key, *args, **kwargs)
        running.append(key)
        try:
            release.wait()  # in the worker thread of aget; set at once for the first probe
            raise ConnectionError("the key store did not answer")
        finally:
            running.remove(key)

    async def slow_or_not(request):  # on the fast-clock loop for the slow key
        if request.headers.get("X-API-Key") != slow_key:
            return await view(request)
        asyncio.get_running_loop().speed_up()
        started.set()
        try:
            await asyncio.sleep(HUNG_STORE_WAIT_S * FAST_CLOCK)
        except asyncio.CancelledError:
            slow_view_ran.append("cancelled")
            raise
        slow_view_ran.append("finished")
        return JsonResponse({"secret": 42})

    answers, got_in = [], []
    await cache.aset(f"api-key:{slow_key}", KEY_RECORD, 60)
    backend.get = failing_get
    try:
        release.set()
        before = len(calls)
        with quiet_probe():
            answers.append(await _get((require_api_key,), view, headers={"X-API-Key": known}))
        got_in.append(len(calls) > before)
        release.clear()
        before = len(calls)
        done = concurrent.futures.Future()  # not asyncio.to_thread: the check counts those

        def hung():
            try:
                with quiet_probe(), _one_chain((require_api_key,), slow_or_not) as client:
                    both = _send_while_the_store_hangs(
                        client, {"X-API-Key": known}, {"X-API-Key": slow_key}, started, release)
            except BaseException as error:
                done.set_exception(error)
            else:  # once the probe's settings and log filters are undone
                done.set_result(both)

        threading.Thread(target=hung, name="05.2 hung key store", daemon=True).start()
        try:
            hung_answer, slow_answer = await asyncio.wrap_future(done)
            answers.append(hung_answer)
        finally:
            release.set()
            for _ in range(int(ANSWER_WAIT_S / 0.02)):  # a lookup given up on still runs
                if not running:
                    break
                await asyncio.sleep(0.02)
        got_in.append(len(calls) > before)
    finally:
        if own is None:
            del backend.get
        else:
            backend.get = own
        await cache.adelete(f"api-key:{slow_key}")
    minutes = f"{HUNG_STORE_WAIT_S * FAST_CLOCK / 60:.0f} minutes, on the check's fast clock"
    slow_status = _status(slow_answer) if slow_answer is not None else "no answer"
    check.that(
        slow_view_ran == ["finished"] and slow_status == 200,
        f"with a known key, a view that takes {minutes}, runs to the end and its answer is sent",
        f"with a known key, a view that takes {minutes}, "
        + {(): "never ran", ("cancelled",): "was cancelled"}.get(tuple(slow_view_ran), "ran")
        + f", and the answer was {slow_status!r}"
        + (": the timeout covers the view too" if "cancelled" in slow_view_ran else ""),
        hint="bound the lookup only (async with asyncio.timeout(...): around await "
        "cache.aget(...), or asyncio.wait_for(cache.aget(...), ...)), and await "
        "get_response(request) outside it: a timeout around get_response cancels every view "
        "slower than it and blames the key store",
    )
    failures = ["each lookup raised ConnectionError", f"no lookup answered for {minutes}"]
    statuses = [_status(answer) if answer is not None else "no answer" for answer in answers]
    outcomes = list(zip(failures, statuses, got_in, strict=True))
    opened = [(failure, status) for failure, status, got in outcomes if got]
    check.that(
        not opened,
        "when the key store fails (an error, or no answer), the view does not run (fail closed)",
        "; ".join(f"when the key store failed ({failure}) the answer was {status!r}"
                  for failure, status in opened)
        + ": the request got in without a checked key (fail open)",
        hint="if the lookup raises or times out, nobody knows whether the key is valid: "
        "refuse the request (let the error become Django's 500, or answer a 503 or 504 JSON), "
        "never let it through, however long you waited",
    )
    refused = [(failure, status) for failure, status, got in outcomes
               if not got and isinstance(status, int) and status < 500]
    check.that(
        not refused,
        "when the key store fails, the answer is a 5xx (the outage is the server's)",
        "; ".join(f"when the key store failed ({failure}), it answered {status}"
                  for failure, status in refused) + ": a client whose key may well be "
        "valid is told it is wrong, and the outage never shows as a server error",
        hint="answer a 503 (or a 504 for a timeout) JSON, or let the error become Django's "
        "500: a 401 or 403 is for a key the store said no to",
    )


async def _probe_revocation(check, require_api_key, view, calls, known):
    """A key deleted from the cache (revoked) is refused at once, and a key stored later is
    accepted: the answer asks the cache on every request instead of remembering its answers.
    Every request goes through one chain, as on a server, so memory kept in the factory's
    closure or on the instance counts. The check's key is stored again afterwards."""
    with _one_chain((require_api_key,), view) as client:
        with quiet_probe():
            await _send(client, headers={"X-API-Key": known})  # accepted: remembered, maybe
        ran = len(calls)
        await cache.adelete(f"api-key:{known}")
        try:
            with quiet_probe():
                response = await _send(client, headers={"X-API-Key": known})
        finally:
            await cache.aset(f"api-key:{known}", KEY_RECORD, 60)
        check.that(
            _status(response) in (401, 403) and len(calls) == ran,
            "once its key is deleted from the cache (revoked), the next request is refused",
            f"after its key was deleted from the cache the answer was {_status(response)!r}: "
            "a revoked key still opens the view",
            hint="ask the cache on every request: a key remembered in a variable, a set, an "
            "attribute or an lru_cache stays valid after it is revoked (a server keeps one "
            "chain, so the middleware's memory lasts as long as the process)",
        )
        disabled = secrets.token_hex(8)
        await cache.aset(f"api-key:{disabled}", False, 60)  # stored, but not truthy: disabled
        try:
            with quiet_probe():
                response = await _send(client, headers={"X-API-Key": disabled})
        finally:
            await cache.adelete(f"api-key:{disabled}")
        check.that(
            _status(response) in (401, 403) and len(calls) == ran,
            "a key stored with a false value (disabled) is refused",
            f"a key stored in the cache as False answered {_status(response)!r}: a disabled "
            "key opens the view",
            hint="a known key is one whose cached value is truthy: test `if not await "
            "cache.aget(...)`, not `is None` or ahas_key, which let in a key stored as False or 0",
        )
        fresh = secrets.token_hex(8)
        with quiet_probe():
            before = await _send(client, headers={"X-API-Key": fresh})
        await cache.aset(f"api-key:{fresh}", KEY_RECORD, 60)
        try:
            with quiet_probe() as probe:
                after = await _send(client, headers={"X-API-Key": fresh})
        finally:
            await cache.adelete(f"api-key:{fresh}")
    check.that(
        _status(before) in (401, 403) and _status(after) == 200,
        "a key refused once and then stored in the cache is accepted",
        f"a key refused once answered {_status(after)!r} after it was stored in the cache",
        hint=probe.hint("ask the cache on every request: do not remember refused keys either"),
    )
