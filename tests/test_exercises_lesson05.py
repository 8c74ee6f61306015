"""Lesson 05's checks: the reference answers and answers written differently pass, the
placeholder waits, and the wrong answers learners write fail with a hint that says why."""

import asyncio
import concurrent.futures
import contextlib
import functools
import http.server
import inspect
import json
import logging
import os
import queue
import re
import select
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from time import sleep  # the usual notebook spelling: bound before any check runs

import pytest
from asgiref.sync import (
    async_to_sync,
    iscoroutinefunction,
    markcoroutinefunction,
    sync_to_async,
)
from django.core.cache import caches
from django.http import HttpResponse, JsonResponse
from django.utils.decorators import (
    async_only_middleware,
    sync_and_async_middleware,
    sync_only_middleware,
)
from django.utils.deprecation import MiddlewareMixin
from IPython.core.interactiveshell import _modified_open as _ipythons_open

from tutorial_project.course.exercises import lesson05


def run(check, answer):
    return asyncio.run(check(answer))


# --- 05.1 LessonHeader ----------------------------------------------------------------------


class LessonHeader:  # the reference
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        response = self.get_response(request)
        response["X-Lesson"] = "05"
        return response

    async def __acall__(self, request):
        response = await self.get_response(request)
        response["X-Lesson"] = "05"
        return response


class LessonHeaderWrittenDifferently:
    """Right too: decides on each call, and shares the header code between the two modes."""

    async_capable = sync_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self.get_response):
            return self._async_call(request)
        return self._stamp(self.get_response(request))

    async def _async_call(self, request):
        return self._stamp(await self.get_response(request))

    @staticmethod
    def _stamp(response):
        response.headers["X-Lesson"] = "05"
        return response


class UnmarkedLessonHeader(LessonHeader):
    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)


class BlogPostLessonHeader:  # the popular sample: async __call__, no flags
    def __init__(self, get_response):
        self.get_response = get_response

    async def __call__(self, request):
        response = await self.get_response(request)
        response["X-Lesson"] = "05"
        return response


class MixinLessonHeader(MiddlewareMixin):  # works, but each request hops to a thread
    def process_response(self, request, response):
        response["X-Lesson"] = "05"
        return response


class BridgesItself(LessonHeader):  # no MiddlewareMixin: its own sync_to_async, a crossing
    async def __acall__(self, request):
        response = await self.get_response(request)
        await sync_to_async(response.__setitem__)("X-Lesson", "05")
        return response


class FlagsOnly:  # says it can do async, but its __call__ is sync
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response["X-Lesson"] = "05"
        return response


class ForgotAwait(LessonHeader):
    async def __acall__(self, request):
        response = self.get_response(request)  # no await
        response["X-Lesson"] = "05"
        return response


class AlwaysAsync(LessonHeader):  # marks itself even when Django gives it a sync get_response
    def __init__(self, get_response):
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request):
        response = await self.get_response(request)
        response["X-Lesson"] = "05"
        return response


class OnlyWhenOk(LessonHeader):
    async def __acall__(self, request):
        response = await self.get_response(request)
        if response.status_code == 200:
            response["X-Lesson"] = "05"
        return response


class StampsInAnExecutor(LessonHeader):
    async def __acall__(self, request):
        response = await self.get_response(request)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, response.__setitem__, "X-Lesson", "05")
        return response


class SleepsOnTheLoop(LessonHeader):
    async def __acall__(self, request):
        time.sleep(0.05)  # "simulate work": blocks the event loop
        return await super().__acall__(request)


class OldMarker(LessonHeader):  # the pre-3.12 idiom: works on Python 3.11, not on 3.12+
    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            self._is_coroutine = asyncio.coroutines._is_coroutine


class CommentsOnTheOldMarker(LessonHeader):
    """Right: only a comment and a string mention the old marker."""

    def __init__(self, get_response):
        # not the old _is_coroutine attribute: Python 3.12 ignores it
        super().__init__(get_response)
        self.note = "no _is_coroutine here"


class SleepImportedFromTime(LessonHeader):
    async def __acall__(self, request):
        sleep(0.05)  # `from time import sleep`: the name is bound before the check runs
        return await super().__acall__(request)


class BusyWaits(LessonHeader):
    async def __acall__(self, request):
        started = time.perf_counter()
        while time.perf_counter() - started < 0.05:  # "simulate work" without time.sleep
            pass
        return await super().__acall__(request)


class BusyWaitsBriefly(LessonHeader):  # 25 ms: the size the lesson says is caught under load
    async def __acall__(self, request):
        started = time.perf_counter()
        while time.perf_counter() - started < 0.025:
            pass
        return await super().__acall__(request)


_one_at_a_time = asyncio.Lock()


class SerialisesRequests(LessonHeader):  # "avoid races": every request of the site waits its turn
    async def __acall__(self, request):
        async with _one_at_a_time:
            response = await self.get_response(request)
        response["X-Lesson"] = "05"
        return response


class SleepsEverySecondRequest(LessonHeader):  # "flush the audit log every N requests"
    def __init__(self, get_response):
        super().__init__(get_response)
        self.served = 0

    async def __acall__(self, request):
        response = await self.get_response(request)
        self.served += 1
        if self.served % 2 == 0:
            time.sleep(0.05)  # on the loop: every second request holds every other one
        response["X-Lesson"] = "05"
        return response


class FsyncsEveryThirdRequest(LessonHeader):  # the same, the audit log written to disk
    served = 0  # on the class: counts across instances

    async def __acall__(self, request):
        response = await self.get_response(request)
        FsyncsEveryThirdRequest.served += 1
        if FsyncsEveryThirdRequest.served % 3 == 0:
            with tempfile.TemporaryFile() as log:
                log.write(b"x\n")
                log.flush()
                os.fsync(log.fileno())
        response["X-Lesson"] = "05"
        return response


class CapsAtTwo(LessonHeader):  # "at most 2 requests at once": a semaphore across the view
    def __init__(self, get_response):
        super().__init__(get_response)
        self.two = asyncio.Semaphore(2)

    async def __acall__(self, request):
        async with self.two:
            response = await self.get_response(request)
        response["X-Lesson"] = "05"
        return response


class CapsItsSyncBranchAtTwo(LessonHeader):  # the same in the sync branch, across threads
    two = threading.BoundedSemaphore(2)

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        with self.two:
            response = self.get_response(request)
        response["X-Lesson"] = "05"
        return response


class CountsUnderALock(LessonHeader):
    """Right too: a lock, held only around its own counter, never across get_response."""

    def __init__(self, get_response):
        super().__init__(get_response)
        self.served, self.counting = 0, asyncio.Lock()

    async def __acall__(self, request):
        response = await self.get_response(request)
        async with self.counting:
            self.served += 1
        response["X-Lesson"] = "05"
        return response


_one_thread_at_a_time = threading.Lock()


class SerialisesItsSyncBranch(LessonHeader):  # async path right; under WSGI threads take turns
    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        with _one_thread_at_a_time:
            response = self.get_response(request)
        response["X-Lesson"] = "05"
        return response


class CountsUnderAThreadLock(LessonHeader):
    """Right too: a threading lock in the sync branch, held only around its own counter."""

    def __init__(self, get_response):
        super().__init__(get_response)
        self.served, self.counting = 0, threading.Lock()

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        response = self.get_response(request)
        with self.counting:
            self.served += 1
        response["X-Lesson"] = "05"
        return response


class OldMarkerBySetattr(LessonHeader):
    def __init__(self, get_response):
        super().__init__(get_response)
        setattr(self, "_is_coroutine", asyncio.coroutines._is_coroutine)  # noqa: B010


class SelectWaits(LessonHeader):
    async def __acall__(self, request):
        select.select([], [], [], 0.1)  # a blocking wait that uses no CPU (as sync I/O does)
        return await super().__acall__(request)


class EventWaits(LessonHeader):
    async def __acall__(self, request):
        threading.Event().wait(0.1)  # "wait a little": blocks the loop, no CPU, no time.sleep
        return await super().__acall__(request)


class AuditLogToThread(LessonHeader):  # an audit line in asyncio.to_thread, header on the loop
    async def __acall__(self, request):
        response = await self.get_response(request)
        await asyncio.to_thread(lambda: None)
        response["X-Lesson"] = "05"
        return response


class AuditLogInExecutor(LessonHeader):
    async def __acall__(self, request):
        response = await self.get_response(request)
        await asyncio.get_running_loop().run_in_executor(None, lambda: None)
        response["X-Lesson"] = "05"
        return response


class LessonHeaderChosenInInit:
    """Right too: picks a bound method once, in __init__, and writes through .headers."""

    sync_capable = async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)
            self._handle = self._async
        else:
            self._handle = self._sync

    def __call__(self, request):
        return self._handle(request)

    def _sync(self, request):
        response = self.get_response(request)
        response.headers["X-Lesson"] = "05"
        return response

    async def _async(self, request):
        response = await self.get_response(request)
        response.headers["X-Lesson"] = "05"
        return response


@sync_and_async_middleware
def lesson_header_function(get_response):  # right too: the function form
    if iscoroutinefunction(get_response):

        async def middleware(request):
            response = await get_response(request)
            response["X-Lesson"] = "05"
            return response

    else:

        def middleware(request):
            response = get_response(request)
            response["X-Lesson"] = "05"
            return response

    return middleware


class KeepsTheResponseOnSelf(LessonHeader):  # one instance serves every request: a race
    async def __acall__(self, request):
        self.response = await self.get_response(request)
        await asyncio.sleep(0)  # any await: a log line, a metric
        self.response["X-Lesson"] = "05"
        return self.response


class KeepsTheResponseOnSelfInSync(LessonHeader):  # the same race, between WSGI threads
    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        self.response = self.get_response(request)
        time.sleep(0.001)  # any work in between: a log line, a metric
        self.response["X-Lesson"] = "05"
        return self.response


class KeepsTheResponseOnSelfInSyncNoPause(LessonHeader):  # the race, with nothing in between
    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        self.response = self.get_response(request)
        self.response["X-Lesson"] = "05"
        return self.response


class KeepsTheResponseOnSelfAfterStamping(LessonHeader):  # stored once the header is set
    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        response = self.get_response(request)
        response["X-Lesson"] = "05"
        self.response = response
        return self.response


class KeepsTheStartOnSelf(LessonHeader):  # right: state on self, but no await in between
    async def __acall__(self, request):
        self.last_path = request.path  # overwritten by the next request, never read after
        response = await self.get_response(request)
        await asyncio.sleep(0)
        response["X-Lesson"] = "05"
        return response


class WrittenOnceAsync:
    """Wrong: the sync path bridges to the async one ("write it once, async"): in a sync stack
    each request starts an event loop and crosses threads twice more."""

    sync_capable = async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        return async_to_sync(self.__acall__)(request)

    async def __acall__(self, request):
        if self.is_async:
            response = await self.get_response(request)
        else:
            response = await sync_to_async(self.get_response)(request)
        response["X-Lesson"] = "05"
        return response


class WrongValue(LessonHeader):
    async def __acall__(self, request):
        response = await self.get_response(request)
        response["X-Lesson"] = "5"
        return response


class SkipsStreaming(LessonHeader):  # over-applies "a body-rewriting middleware skips streaming"
    async def __acall__(self, request):
        response = await self.get_response(request)
        if not response.streaming:
            response["X-Lesson"] = "05"
        return response


class SwallowsTheDisconnect(LessonHeader):  # "add the header even on errors"
    async def __acall__(self, request):
        try:
            response = await self.get_response(request)
        except BaseException:  # CancelledError too: Django then sends and logs a 500
            response = HttpResponse(status=500)
        response["X-Lesson"] = "05"
        return response


class BareExceptOnTheWayIn(LessonHeader):  # the same with a bare except
    async def __acall__(self, request):
        try:
            response = await self.get_response(request)
        except:  # noqa: E722 (the shape under test)
            response = HttpResponse(status=503)
        response["X-Lesson"] = "05"
        return response


class SwallowsTheDisconnectWithA200(LessonHeader):  # no 500, no log line: still sent
    async def __acall__(self, request):
        try:
            response = await self.get_response(request)
        except BaseException:  # Django sends this 200, unlogged, to a client that left
            response = HttpResponse("sorry")
        response["X-Lesson"] = "05"
        return response


class ShieldsTheView(LessonHeader):  # "let the view finish even if the client leaves"
    async def __acall__(self, request):
        response = await asyncio.shield(self.get_response(request))
        response["X-Lesson"] = "05"
        return response


class CleansUpInFinally(LessonHeader):
    """Right too: catches Exception (CancelledError passes), cleans up in finally."""

    async def __acall__(self, request):
        in_flight.append(request)
        try:
            response = await self.get_response(request)
        except Exception:  # never reached for a view's error (Django made it a 500 already)
            raise
        finally:
            in_flight.remove(request)
        response["X-Lesson"] = "05"
        return response


in_flight = []


class ReadsTheHeaderFromTheCache(LessonHeader):  # "configurable": a sync cache call on the loop
    async def __acall__(self, request):
        from django.core.cache import cache

        response = await self.get_response(request)
        response["X-Lesson"] = cache.get("lesson-number", "05")  # fast with LocMemCache only
        return response


@pytest.mark.parametrize(
    "answer",
    [
        LessonHeader,
        LessonHeaderWrittenDifferently,
        CommentsOnTheOldMarker,
        LessonHeaderChosenInInit,
        lesson_header_function,
        KeepsTheStartOnSelf,
        CountsUnderALock,
        CountsUnderAThreadLock,
        CleansUpInFinally,
    ],
)
def test_05_1_right_answers_pass(project, answer, capsys):
    verdict = run(lesson05.check_lesson_header, answer)
    assert verdict, str(verdict)
    assert "ERROR" not in capsys.readouterr().out  # the probes' 500 is not logged in the cell


def test_05_1_placeholder_is_not_solved(project):
    verdict = run(lesson05.check_lesson_header, ...)
    assert not verdict and not verdict.solved
    assert "not solved yet" in str(verdict)


@pytest.mark.parametrize(
    "answer, message",
    [
        (UnmarkedLessonHeader, "markcoroutinefunction"),
        (BlogPostLessonHeader, "async_capable"),
        (FlagsOnly, "markcoroutinefunction"),
        (MixinLessonHeader, "Django runs the MiddlewareMixin hooks"),
        (BridgesItself, "each sync_to_async or async_to_sync in the async path"),
        (ForgotAwait, "did you forget `await`"),
        (AlwaysAsync, "in a sync stack the request failed"),
        (WrongValue, "no X-Lesson: 05"),
        (OnlyWhenOk, "answer has no X-Lesson: 05"),
        (StampsInAnExecutor, "not set on the event loop's thread"),
        (SleepsOnTheLoop, "called time.sleep on the event loop"),
        (SleepImportedFromTime, "called time.sleep on the event loop"),
        (BusyWaits, "kept the event loop busy"),
        (BusyWaitsBriefly, "kept the event loop busy"),
        (SerialisesRequests, "the middleware lets one request through at a time"),
        (SerialisesItsSyncBranch, "the sync branch lets one request through at a time"),
        (SelectWaits, "blocking call on the event loop: select.select"),
        (EventWaits, "blocking call on the event loop: threading.Event.wait"),
        (AuditLogToThread, "sent work to a thread with asyncio.to_thread"),
        (AuditLogInExecutor, "sent work to a thread with run_in_executor"),
        (OldMarker, "_is_coroutine by hand"),
        (OldMarkerBySetattr, "_is_coroutine by hand"),
        (KeepsTheResponseOnSelf, "with 8 requests at once a request got the wrong response"),
        (
            KeepsTheResponseOnSelfInSync,
            "in a sync handler (8 threads at once) a request got the wrong response",
        ),
        (
            KeepsTheResponseOnSelfInSyncNoPause,
            "in a sync handler (8 threads at once) a request got the wrong response",
        ),
        (
            KeepsTheResponseOnSelfAfterStamping,
            "the instance still holds a response in self.response",
        ),
        (SleepsEverySecondRequest, "called time.sleep on the event loop"),
        (FsyncsEveryThirdRequest, "os.fsync"),
        (CapsAtTwo, "the middleware lets only 2 requests through at a time"),
        (CapsItsSyncBranchAtTwo, "the sync branch lets only 2 requests through at a time"),
        (WrittenOnceAsync, "in a sync stack each request crosses threads more"),
        (SkipsStreaming, "a streamed answer (StreamingHttpResponse) has no X-Lesson: 05"),
        (SwallowsTheDisconnect, "it still answered 500"),
        (BareExceptOnTheWayIn, "it still answered 503"),
        (SwallowsTheDisconnectWithA200, "it still answered 200"),
        (ShieldsTheView, "the request ended but the view ran on"),
        (ReadsTheHeaderFromTheCache, "it called the sync cache.get() on the event loop"),
    ],
)
def test_05_1_wrong_answers_fail_with_a_hint(project, answer, message, recwarn):
    verdict = run(lesson05.check_lesson_header, answer)
    assert not verdict and verdict.solved
    assert message in str(verdict), str(verdict)
    assert not [w for w in recwarn if "never awaited" in str(w.message)]


# --- blocking calls too short for the stall measurement (< WAIT_EXTRA_MS) -------------------


class _QuietHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def local_http_url():
    """A loopback HTTP server that answers at once: a sync client call to it takes ~1 ms."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()
    thread.join()


def _sleeps_briefly():
    time.sleep(0.01)


def _held_lock_briefly():
    lock = threading.Lock()
    lock.acquire()
    lock.acquire(timeout=0.02)  # "wait for the other request" on a threading lock


def _condition_waits_briefly():
    condition = threading.Condition()
    with condition:
        condition.wait(0.02)


def _queue_waits_briefly():
    with pytest.raises(queue.Empty):
        queue.Queue().get(timeout=0.02)


def _future_result():
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(time.sleep, 0.1).result()  # waits on the loop for a worker thread


def _starts_a_thread():  # "log in the background": start() waits for the thread to run
    threading.Thread(target=lambda: None).start()


def _socket_waits_briefly():
    mine, other = socket.socketpair()
    mine.settimeout(0.02)
    try:
        with pytest.raises(TimeoutError):
            mine.recv(1)
    finally:
        mine.close()
        other.close()


_PIPE_READER, _PIPE_WRITER = os.pipe()
_WRITE_SOON = queue.SimpleQueue()


def _write_to_the_pipe_soon():
    while True:
        time.sleep(_WRITE_SOON.get())
        os.write(_PIPE_WRITER, b"x")


# Started here, not in the answer: Thread.start waits for the thread (a wait the checks name).
threading.Thread(target=_write_to_the_pipe_soon, daemon=True).start()


def _pipe_read():
    """A blocking wait the checks do not know by name (os.read): only the gap shows it."""
    _WRITE_SOON.put(0.2)
    os.read(_PIPE_READER, 1)


def _runs_a_child_process():
    subprocess.run(["sleep", "0.01"], check=True)  # 10 ms blocked in os.waitpid


def _writes_an_audit_row():  # a sync sqlite3 driver on the loop: a few ms, no time.sleep
    with contextlib.closing(sqlite3.connect(_AUDIT_DB)) as db:
        db.execute("CREATE TABLE IF NOT EXISTS audit (path TEXT)")
        db.execute("INSERT INTO audit VALUES ('/')")
        db.commit()


def _appends_and_fsyncs():
    with open(_AUDIT_LOG, "a") as log:
        log.write("GET /\n")
        log.flush()
        os.fsync(log.fileno())


_AUDIT_DIR = tempfile.mkdtemp(prefix="lesson05-audit-")
_AUDIT_DB = os.path.join(_AUDIT_DIR, "audit.sqlite3")
_AUDIT_LOG = os.path.join(_AUDIT_DIR, "audit.log")


def _as_in_a_cell(source, name):
    """A function defined as a notebook cell defines it: its module is __main__ and the
    ``open`` it sees is IPython's wrapper (_modified_open, a Python function calling
    io.open), not io.open itself."""
    namespace = {"__name__": "__main__", "open": _ipythons_open, "_AUDIT_LOG": _AUDIT_LOG,
                 "_REVOCATIONS": __file__}
    exec(compile(source, "<cell>", "exec"), namespace)  # noqa: S102
    return namespace[name]


_appends_with_the_notebooks_open = _as_in_a_cell(
    """
def appends():
    with open(_AUDIT_LOG, "a") as log:
        log.write("GET /\\n")
""",
    "appends",
)
_reads_with_the_notebooks_open = _as_in_a_cell(
    """
def reads():
    with open(_REVOCATIONS, encoding="utf-8") as revoked:
        return revoked.read()
""",
    "reads",
)


SHORT_BLOCKING = [
    (_sleeps_briefly, "called time.sleep"),
    (lambda: sleep(0.01), "called time.sleep"),
    (lambda: select.select([], [], [], 0.02), "blocking call on the event loop: select.select"),
    (lambda: threading.Event().wait(0.02), "threading.Event.wait (a wait for a lock)"),
    (_held_lock_briefly, "Lock.acquire (a wait for a lock)"),
    (_condition_waits_briefly, "threading.Condition.wait (a wait for a lock)"),
    (_queue_waits_briefly, "queue.Queue.get (a wait for a lock)"),
    (_future_result, "concurrent.futures._base.Future.result (a wait for a lock)"),
    (_starts_a_thread, "threading.Thread.start (a wait for a lock)"),
    (_socket_waits_briefly, "socket.recv on a blocking socket"),
    (_runs_a_child_process, "blocking call on the event loop: os.waitpid"),
    (_writes_an_audit_row, "sqlite3.Connection.execute (a sync database driver)"),
    (_appends_and_fsyncs, "blocking call on the event loop: open() (sync file I/O), os.fsync"),
    (_appends_with_the_notebooks_open, "blocking call on the event loop: open() (sync file I/O)"),
    (_reads_with_the_notebooks_open, "blocking call on the event loop: open() (sync file I/O)"),
]
SHORT_IDS = ["sleep", "from-time-sleep", "select", "event", "lock", "condition", "queue",
             "future", "thread-start", "socket", "subprocess", "sqlite3", "fsync",
             "notebook-open-append", "notebook-open-read"]


def _reads_a_revocation_list():
    with open(__file__, encoding="utf-8") as revoked:
        return revoked.read()


def _reads_a_revocation_list_with_pathlib():
    return Path(__file__).read_text(encoding="utf-8")


def _before(wait):
    class BlocksBriefly(LessonHeader):
        async def __acall__(self, request):
            wait()
            return await super().__acall__(request)

    return BlocksBriefly


@pytest.mark.parametrize("wait, message", SHORT_BLOCKING, ids=SHORT_IDS)
def test_05_1_short_blocking_calls_fail_by_what_they_are(project, wait, message):
    verdict = run(lesson05.check_lesson_header, _before(wait))
    assert not verdict and verdict.solved
    assert message in str(verdict), str(verdict)
    assert "however short" in str(verdict) or "time.sleep" in str(verdict)


def test_05_1_a_fast_sync_http_call_fails(project, local_http_url):
    verdict = run(
        lesson05.check_lesson_header, _before(lambda: urllib.request.urlopen(local_http_url))
    )
    assert not verdict and verdict.solved
    assert "socket.connect on a blocking socket" in str(verdict), str(verdict)


def test_05_1_a_blocking_call_not_known_by_name_fails_on_the_gap(project):
    verdict = run(lesson05.check_lesson_header, _before(_pipe_read))
    assert not verdict and verdict.solved
    assert "it blocked the event loop for" in str(verdict), str(verdict)


def test_05_1_unmarked_class_fails_below_django_middleware_even_if_marker_check_is_fooled(
    project,
):
    """Django's own middleware above an unmarked async class calls it as sync code."""

    class FoolsTheMarkerCheck(UnmarkedLessonHeader):
        def __init__(self, get_response):
            super().__init__(get_response)
            if get_response.__name__ == "get_response":  # only the check's direct probe
                markcoroutinefunction(self)

    verdict = run(lesson05.check_lesson_header, FoolsTheMarkerCheck)
    assert not verdict
    assert "SecurityMiddleware the request failed" in str(verdict), str(verdict)


def _defined_in_a_cell(source, name):
    """A class defined as a notebook cell defines it: its source cannot be read back (on
    Python 3.11 inspect.getsource raises OSError for a class defined in a Jupyter cell)."""
    namespace = {"__name__": "__main__", "asyncio": asyncio, "HttpResponse": HttpResponse,
                 "iscoroutinefunction": iscoroutinefunction,
                 "markcoroutinefunction": markcoroutinefunction}
    exec(compile(source, "<cell>", "exec"), namespace)  # noqa: S102
    klass = namespace[name]
    with pytest.raises((OSError, TypeError)):
        inspect.getsource(klass)
    return klass


_CELL_HEADER = """
class {name}:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            {mark}

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        response = self.get_response(request)
        response["X-Lesson"] = "05"
        return response

    async def __acall__(self, request):
        response = await self.get_response(request)
        response["X-Lesson"] = "05"
        return response
"""


@pytest.mark.parametrize(
    "mark",
    [
        "self._is_coroutine = asyncio.coroutines._is_coroutine",
        'setattr(self, "_is_coroutine", asyncio.coroutines._is_coroutine)',
        "self.__dict__['_is_coroutine'] = asyncio.coroutines._is_coroutine",
    ],
)
def test_05_1_old_marker_in_a_notebook_cell_fails(project, mark):
    """Without source to read, the check sees the marker on the instance (F1 of review s28)."""
    verdict = run(
        lesson05.check_lesson_header,
        _defined_in_a_cell(_CELL_HEADER.format(name="CellMarker", mark=mark), "CellMarker"),
    )
    assert not verdict and verdict.solved
    assert "_is_coroutine by hand" in str(verdict), str(verdict)


def test_05_1_right_answer_in_a_notebook_cell_passes(project):
    verdict = run(
        lesson05.check_lesson_header,
        _defined_in_a_cell(
            _CELL_HEADER.format(name="CellHeader", mark="markcoroutinefunction(self)"),
            "CellHeader",
        ),
    )
    assert verdict, str(verdict)


# --- 05.2 require_api_key -------------------------------------------------------------------


API_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what a key can look like


@async_only_middleware
def require_api_key(get_response):  # the reference
    from django.core.cache import cache

    async def middleware(request):
        key = request.headers.get("X-API-Key", "")
        if not API_KEY.fullmatch(key) or not await cache.aget(f"api-key:{key}"):
            response = JsonResponse({"error": "missing or unknown X-API-Key"}, status=401)
            response["WWW-Authenticate"] = 'ApiKey realm="tutorial"'
            return response
        return await get_response(request)

    return middleware


class RequireApiKeyClass:
    """Right too: a class, reading META, with a default for aget, answering 403, checking the
    key's shape without a regular expression."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request):
        from django.core.cache import cache

        key = request.META.get("HTTP_X_API_KEY")
        if (
            key is None
            or len(key) > 64
            or not key.isascii()
            or not key.replace("-", "").replace("_", "").isalnum()
            or not await cache.aget(f"api-key:{key}", default=False)
        ):
            return JsonResponse({"error": "forbidden"}, status=403)
        return await self.get_response(request)


def _api_key_middleware(
    lookup, *, status=401, challenge='ApiKey realm="api"', before=None, reject=None,
    checks_the_shape=True, shape=API_KEY.fullmatch, key_of=lambda request: request.headers.get(
        "X-API-Key", ""),
):
    @async_only_middleware
    def middleware_factory(get_response):
        async def middleware(request):
            key = key_of(request)
            if checks_the_shape and not shape(key):
                key = ""  # refused below, without asking the cache
            if not key or not await lookup(key):
                if before:
                    before()
                if reject:
                    response = reject(status)
                else:
                    response = JsonResponse({"error": "no"}, status=status)
                if challenge is not None:
                    response["WWW-Authenticate"] = challenge
                return response
            return await get_response(request)

        return middleware

    return middleware_factory


async def _aget(key):
    from django.core.cache import cache

    return await cache.aget(f"api-key:{key}")


async def _sync_get(key):
    from django.core.cache import cache

    return cache.get(f"api-key:{key}")  # sync cache call in async code


def _every(n, blocking):
    """A lookup that does ``blocking`` on the loop on every nth request only (a cache of the
    revocation list, refreshed now and then), then asks the cache."""
    lookups = [0]

    async def lookup(key):
        lookups[0] += 1
        if lookups[0] % n == 0:
            blocking()
        return await _aget(key)

    return lookup


async def _fails_closed(key):  # right: a store that does not answer in time fails the request
    try:
        return await asyncio.wait_for(_aget(key), 0.5)
    except (TimeoutError, ConnectionError) as error:
        raise RuntimeError("the key store is unavailable") from error  # Django's 500


async def _refuses_when_the_store_fails(key):  # closed, but a 401 for a key that may be valid
    try:
        return await asyncio.wait_for(_aget(key), 0.5)
    except (TimeoutError, ConnectionError):
        return False


async def _fails_open_on_a_timeout(key):  # "don't lock users out when Redis is slow"
    try:
        return await asyncio.wait_for(_aget(key), 0.5)
    except TimeoutError:
        return True


async def _fails_open_after_two_seconds(key):  # a generous timeout, still failing open
    try:
        return await asyncio.wait_for(_aget(key), 2.0)
    except TimeoutError:
        return True


async def _fails_open_after_a_minute(key):  # "Redis is never that slow": a hung one is
    try:
        return await asyncio.wait_for(_aget(key), 60)
    except TimeoutError:
        return True


async def _fails_open_when_asyncio_wait_gives_up(key):  # no exception to catch: still open
    lookup = asyncio.ensure_future(_aget(key))
    done, _ = await asyncio.wait([lookup], timeout=5)
    return lookup.result() if done else True


async def _refuses_after_a_long_timeout(key):  # closed, but a 401 once the store hangs
    try:
        return await asyncio.wait_for(_aget(key), 30)
    except TimeoutError:
        return False


class StoreTimedOut(Exception):
    pass


async def _fails_closed_after_a_long_timeout(key):  # right: a 504 after 2 minutes
    try:
        async with asyncio.timeout(120):
            return await _aget(key)
    except TimeoutError as error:
        raise StoreTimedOut from error  # answered with a 504 by times_out_with_a_504


@async_only_middleware
def times_out_with_a_504(get_response):  # right: its own 504 JSON, after a long timeout
    async def middleware(request):
        key = request.headers.get("X-API-Key", "")
        if API_KEY.fullmatch(key):
            try:
                known = await _fails_closed_after_a_long_timeout(key)
            except StoreTimedOut:
                return JsonResponse({"error": "the key store did not answer"}, status=504)
            if known:
                return await get_response(request)
        response = JsonResponse({"error": "unknown key"}, status=401)
        response["WWW-Authenticate"] = 'ApiKey realm="api"'
        return response

    return middleware


@async_only_middleware
def times_out_around_the_view_too(get_response):  # wrong: the review's, one timeout for all
    async def middleware(request):
        key = request.headers.get("X-API-Key", "")
        try:
            async with asyncio.timeout(2):
                if API_KEY.fullmatch(key) and await _aget(key):
                    return await get_response(request)  # the view is inside the timeout too
        except TimeoutError:
            return JsonResponse({"error": "timeout"}, status=504)
        except ConnectionError:
            return JsonResponse({"error": "store down"}, status=503)
        response = JsonResponse({"error": "unknown key"}, status=401)
        response["WWW-Authenticate"] = 'ApiKey realm="api"'
        return response

    return middleware


@async_only_middleware
def times_out_the_lookup_only(get_response):  # right, the same answer with the view outside
    async def middleware(request):
        key = request.headers.get("X-API-Key", "")
        try:
            async with asyncio.timeout(2):
                known = API_KEY.fullmatch(key) and await _aget(key)
        except TimeoutError:
            return JsonResponse({"error": "timeout"}, status=504)
        except ConnectionError:
            return JsonResponse({"error": "store down"}, status=503)
        if known:
            return await get_response(request)
        response = JsonResponse({"error": "unknown key"}, status=401)
        response["WWW-Authenticate"] = 'ApiKey realm="api"'
        return response

    return middleware


@async_only_middleware
def waits_an_hour_for_the_view(get_response):  # wrong: a long timeout, around the view too
    async def middleware(request):
        key = request.headers.get("X-API-Key", "")
        if API_KEY.fullmatch(key) and await asyncio.wait_for(_aget(key), 0.5):
            return await asyncio.wait_for(get_response(request), 600)
        return JsonResponse({"error": "no"}, status=401, headers={"WWW-Authenticate": "ApiKey"})

    return middleware


@functools.cache
def _one_refusal(status):  # "built once, an optimisation": every refusal is this one object
    return JsonResponse({"error": "no"}, status=status)


async def _fails_open_on_an_error(key):
    try:
        return await _aget(key)
    except Exception:
        return True


ALLOWED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


async def _reads_the_list_in_the_requests_thread(key):  # right: the file read off the loop
    await sync_to_async(_reads_a_revocation_list)()
    return await _aget(key)


async def _to_thread_get(key):  # off the loop, but in the shared pool, not the request's thread
    from django.core.cache import cache

    return await asyncio.to_thread(cache.get, f"api-key:{key}")


async def _sync_to_async_get(key):
    from django.core.cache import cache

    return await sync_to_async(cache.get)(f"api-key:{key}")


async def _thread_insensitive_get(key):  # the loop's default pool, like asyncio.to_thread
    from django.core.cache import cache

    return await sync_to_async(cache.get, thread_sensitive=False)(f"api-key:{key}")


async def _is_true(key):  # "the spec says True": refuses a key stored with its owner
    from django.core.cache import cache

    return await cache.aget(f"api-key:{key}") is True


async def _is_not_none(key):  # lets in a key stored as False (disabled)
    from django.core.cache import cache

    return await cache.aget(f"api-key:{key}") is not None


async def _has_key(key):
    from django.core.cache import cache

    return await cache.ahas_key(f"api-key:{key}")


async def _lock_waits_then_aget(key):  # "one lookup at a time", with a threading lock
    _held_lock_briefly()
    return await _aget(key)


async def _http_lookup(url):
    async def lookup(key):
        urllib.request.urlopen(url)  # "ask the key service": a sync HTTP call, ~1 ms here
        return await _aget(key)

    return lookup


_remembered = set()


async def _remembers_known_keys(key):  # "saves a cache round trip": a revoked key stays valid
    if key in _remembered:
        return True
    if await _aget(key):
        _remembered.add(key)
        return True
    return False


@async_only_middleware
def remembers_keys_in_its_closure(get_response):  # one chain per server: a revoked key stays valid
    from django.core.cache import cache

    known = set()

    async def middleware(request):
        key = request.headers.get("X-API-Key", "")
        if key not in known:
            if not API_KEY.fullmatch(key) or not await cache.aget(f"api-key:{key}"):
                response = JsonResponse({"error": "unknown key"}, status=401)
                response["WWW-Authenticate"] = "ApiKey"
                return response
            known.add(key)
        return await get_response(request)

    return middleware


class RemembersKeysOnSelf(RequireApiKeyClass):  # the same memo, on the one instance
    def __init__(self, get_response):
        super().__init__(get_response)
        self.known = set()

    async def __call__(self, request):
        key = request.META.get("HTTP_X_API_KEY")
        if key in self.known:
            return await self.get_response(request)
        response = await super().__call__(request)
        if response.status_code != 403:
            self.known.add(key)
        return response


@async_only_middleware
def remembers_refusals_in_its_closure(get_response):  # a key stored later stays refused
    from django.core.cache import cache

    refused = set()

    async def middleware(request):
        key = request.headers.get("X-API-Key", "")
        if key in refused or not API_KEY.fullmatch(key) or not await cache.aget(f"api-key:{key}"):
            refused.add(key)
            return JsonResponse({"error": "unknown key"}, status=403)
        return await get_response(request)

    return middleware


class CountsRefusalsOnSelf(RequireApiKeyClass):
    """Right too: state on the one instance (a refusal count), never an answer about a key."""

    def __init__(self, get_response):
        super().__init__(get_response)
        self.refused = 0

    async def __call__(self, request):
        response = await super().__call__(request)
        if response.status_code == 403:
            self.refused += 1
            response["X-Refused-So-Far"] = str(self.refused)
        return response


_refused = set()


async def _remembers_refused_keys(key):  # a key stored later stays refused
    if key in _refused:
        return False
    if await _aget(key):
        return True
    _refused.add(key)
    return False


@async_only_middleware
def logs_refusals(get_response):
    """Right too: logs each refusal, answers 400 to a header that cannot be a key, awaits the
    lookup under a timeout and an asyncio.Lock."""
    from django.core.cache import cache

    log, lookups = logging.getLogger("tutorial.api_key"), asyncio.Lock()

    async def middleware(request):
        key = request.META.get("HTTP_X_API_KEY", "")
        if key and not re.fullmatch(r"[\w-]{1,64}", key, re.ASCII):
            return JsonResponse({"error": "malformed X-API-Key"}, status=400)
        async with lookups:
            known = key and await asyncio.wait_for(cache.aget(f"api-key:{key}", False), 5)
        if not known:
            log.warning("refused a request with key %r", key[:4])
            response = JsonResponse({"error": "unknown key"}, status=401)
            response.headers["WWW-Authenticate"] = "ApiKey"
            return response
        return await get_response(request)

    return middleware


@async_only_middleware
def one_lookup_lock(get_response):  # "one lookup at a time", the lock held across the view
    from django.core.cache import cache

    lock = asyncio.Lock()

    async def middleware(request):
        async with lock:  # every other request of the site waits for the one inside
            key = request.headers.get("X-API-Key", "")
            if not API_KEY.fullmatch(key) or not await cache.aget(f"api-key:{key}"):
                response = JsonResponse({"error": "unknown key"}, status=401)
                response["WWW-Authenticate"] = "ApiKey"
                return response
            return await get_response(request)

    return middleware


class TwoLookupsAtATime(RequireApiKeyClass):  # "protect the cache": a Semaphore of 2
    def __init__(self, get_response):
        super().__init__(get_response)
        self.two_at_a_time = asyncio.Semaphore(2)

    async def __call__(self, request):
        async with self.two_at_a_time:
            return await super().__call__(request)


class OneRequestAtATimeOnSelf(RequireApiKeyClass):  # "protect the cache": a Semaphore of 1
    def __init__(self, get_response):
        super().__init__(get_response)
        self.one_at_a_time = asyncio.Semaphore(1)

    async def __call__(self, request):
        async with self.one_at_a_time:
            return await super().__call__(request)


async def _touches(key):
    from django.core.cache import cache

    cache.touch(f"api-key:{key}")  # "keep it alive": a sync cache call the old check missed
    return await cache.aget(f"api-key:{key}")


def _json_with_charset(status):
    body = json.dumps({"error": "unknown key"})
    return HttpResponse(body, status=status, content_type="application/json; charset=utf-8")


def _problem_json(status):  # RFC 9457's media type for error bodies
    return JsonResponse(
        {"error": "unknown key"}, status=status, content_type="application/problem+json"
    )


def _json_without_error(status):
    return JsonResponse({"detail": "unknown key"}, status=status)


def _busy_wait():
    started = time.perf_counter()
    while time.perf_counter() - started < 0.05:
        pass


async def _hard_coded(key):
    return key == "letmein"


class AsyncCapableOnlyRequireApiKey(RequireApiKeyClass):  # sync_capable left at True
    sync_capable = True


class UnmarkedRequireApiKey(RequireApiKeyClass):  # flags set, markcoroutinefunction forgotten
    def __init__(self, get_response):
        self.get_response = get_response


@async_only_middleware
def forgot_await(get_response):
    from django.core.cache import cache

    async def middleware(request):
        key = request.headers.get("X-API-Key", "")
        if not key or not cache.aget(f"api-key:{key}"):  # a coroutine is always truthy
            return JsonResponse({"error": "no"}, status=401)
        return await get_response(request)

    return middleware


@async_only_middleware
def checks_only_presence(get_response):
    async def middleware(request):
        if "X-API-Key" not in request.headers:
            return JsonResponse({"error": "no key"}, status=401)
        return await get_response(request)

    return middleware


@async_only_middleware
def view_runs_first(get_response):
    async def middleware(request):
        response = await get_response(request)
        if not await _aget(request.headers.get("X-API-Key", "")):
            return JsonResponse({"error": "no"}, status=401)
        return response

    return middleware


@async_only_middleware
def plain_text_401(get_response):
    async def middleware(request):
        if not await _aget(request.headers.get("X-API-Key", "")):
            return HttpResponse("no", status=401)
        return await get_response(request)

    return middleware


@async_only_middleware
def swallows_the_disconnect(get_response):  # "never let the client see a traceback"
    async def middleware(request):
        key = request.headers.get("X-API-Key", "")
        if not API_KEY.fullmatch(key) or not await _aget(key):
            response = JsonResponse({"error": "unknown key"}, status=401)
            response["WWW-Authenticate"] = "ApiKey"
            return response
        try:
            return await get_response(request)
        except BaseException:  # CancelledError too: a 500, logged, for a client that left
            return JsonResponse({"error": "internal error"}, status=500)

    return middleware


@async_only_middleware
def shields_the_view(get_response):  # "a request that got past the key check finishes"
    async def middleware(request):
        key = request.headers.get("X-API-Key", "")
        if not API_KEY.fullmatch(key) or not await _aget(key):
            response = JsonResponse({"error": "unknown key"}, status=401)
            response["WWW-Authenticate"] = "ApiKey"
            return response
        return await asyncio.shield(get_response(request))

    return middleware


@sync_only_middleware
def sync_api_key(get_response):
    def middleware(request):
        return get_response(request)

    return middleware


def no_flags(get_response):
    async def middleware(request):
        return await get_response(request)

    return middleware


@pytest.mark.parametrize(
    "answer",
    [
        require_api_key,
        RequireApiKeyClass,
        _api_key_middleware(_aget, status=403, challenge=None),
        _api_key_middleware(_aget, reject=_json_with_charset),
        _api_key_middleware(_aget, reject=_problem_json),
        _api_key_middleware(_sync_to_async_get),  # what cache.aget does, in Django 5.2 and 6.1
        _api_key_middleware(_reads_the_list_in_the_requests_thread),
        logs_refusals,
        CountsRefusalsOnSelf,
        _api_key_middleware(_fails_closed),
        times_out_with_a_504,
        times_out_the_lookup_only,
        _api_key_middleware(_aget, shape=lambda key: re.fullmatch(r"[\w-]{1,64}", key, re.ASCII)),
        _api_key_middleware(_aget, shape=lambda key: 0 < len(key) <= 64 and set(key) <= ALLOWED),
        _api_key_middleware(_aget, shape=lambda key: re.match(r"\A[A-Za-z0-9_-]{1,64}\Z", key)),
        _api_key_middleware(  # right, differently: header whitespace stripped first
            _aget, key_of=lambda request: request.headers.get("X-API-Key", "").strip()
        ),
    ],
)
def test_05_2_right_answers_pass(project, answer, capsys):
    verdict = run(lesson05.check_require_api_key, answer)
    assert verdict, str(verdict)
    assert "Unauthorized" not in capsys.readouterr().out


def test_05_2_an_answer_that_captured_the_cache_before_the_check_passes(project):
    """A learner's cell may hold caches["default"] in a global: the check must read the same."""
    captured = caches["default"]

    async def captured_aget(key):
        return await captured.aget(f"api-key:{key}")

    verdict = run(lesson05.check_require_api_key, _api_key_middleware(captured_aget))
    assert verdict, str(verdict)


def test_05_2_placeholder_is_not_solved(project):
    verdict = run(lesson05.check_require_api_key, ...)
    assert not verdict.solved


@pytest.mark.parametrize(
    "answer, message",
    [
        (checks_only_presence, "with a wrong key it answered 200"),
        (forgot_await, "did you forget `await`"),
        (_api_key_middleware(_sync_get), "sync cache.get() on the event loop"),
        (
            _api_key_middleware(_hard_coded),
            "with a key stored in the cache (64 characters, with - and _) the answer was 401",
        ),
        (_api_key_middleware(_aget, status=400), "answered 400, not 401 (or 403)"),
        (_api_key_middleware(_aget, challenge=None), "no WWW-Authenticate challenge"),
        (_api_key_middleware(_aget, before=lambda: time.sleep(0.05)), "called time.sleep"),
        (_api_key_middleware(_aget, before=lambda: sleep(0.05)), "called time.sleep"),
        (_api_key_middleware(_aget, before=_busy_wait), "kept the event loop busy"),
        (  # "slow down guessing" with a wait that is not time.sleep
            _api_key_middleware(_aget, before=lambda: threading.Event().wait(0.02)),
            "threading.Event.wait (a wait for a lock)",
        ),
        (
            _api_key_middleware(_aget, before=lambda: select.select([], [], [], 0.02)),
            "blocking call on the event loop: select.select",
        ),
        (_api_key_middleware(_aget, before=_pipe_read), "it blocked the event loop for"),
        (_api_key_middleware(_touches), "sync cache.touch() on the event loop"),
        (_api_key_middleware(_to_thread_get), "sent work to a thread with asyncio.to_thread"),
        (
            _api_key_middleware(_thread_insensitive_get),
            "sent work to a thread with sync_to_async(thread_sensitive=False)",
        ),
        (_api_key_middleware(_is_not_none), "a disabled key opens the view"),
        (_api_key_middleware(_has_key), "a disabled key opens the view"),
        (_api_key_middleware(_remembers_known_keys), "a revoked key still opens the view"),
        (_api_key_middleware(_remembers_refused_keys), "a key refused once answered 401"),
        (remembers_keys_in_its_closure, "a revoked key still opens the view"),
        (RemembersKeysOnSelf, "a revoked key still opens the view"),
        (remembers_refusals_in_its_closure, "a key refused once answered 403"),
        (_api_key_middleware(_aget, challenge=""), "no WWW-Authenticate challenge"),
        (
            _api_key_middleware(_aget, before=lambda: time.sleep(0.005)),
            "called time.sleep",
        ),
        (_api_key_middleware(_lock_waits_then_aget), "Lock.acquire (a wait for a lock)"),
        (
            _api_key_middleware(_aget, before=_socket_waits_briefly),
            "socket.recv on a blocking socket",
        ),
        (  # shelling out for 35 ms: under the gap's threshold, named by what it is
            _api_key_middleware(_aget, before=lambda: subprocess.run(["sleep", "0.035"])),
            "blocking call on the event loop: os.waitpid",
        ),
        (
            _api_key_middleware(_aget, before=_writes_an_audit_row),
            "sqlite3.Connection.commit (a sync database driver)",
        ),
        (_api_key_middleware(_aget, before=_appends_and_fsyncs), "os.fsync"),
        (  # a revocation list read on every request: fast from a local disk, not from NFS
            _api_key_middleware(_aget, before=_reads_a_revocation_list),
            "blocking call on the event loop: open() (sync file I/O)",
        ),
        (
            _api_key_middleware(_aget, before=_reads_a_revocation_list_with_pathlib),
            "blocking call on the event loop: open() (sync file I/O)",
        ),
        (  # the plain open() of a notebook cell: IPython's wrapper around io.open
            _api_key_middleware(_aget, before=_appends_with_the_notebooks_open),
            "blocking call on the event loop: open() (sync file I/O)",
        ),
        (
            _api_key_middleware(_aget, before=_reads_with_the_notebooks_open),
            "blocking call on the event loop: open() (sync file I/O)",
        ),
        (  # a refresh of the revocation list now and then, on the loop
            _api_key_middleware(_every(4, _reads_a_revocation_list)),
            "blocking call on the event loop: open() (sync file I/O)",
        ),
        (_api_key_middleware(_every(2, lambda: time.sleep(0.05))), "called time.sleep"),
        (_api_key_middleware(_aget, reject=_json_without_error), "its body is {'detail'"),
        (UnmarkedRequireApiKey, "not marked"),
        (view_runs_first, "the view ran for a rejected request"),
        (plain_text_401, "its Content-Type is 'text/html'"),
        (sync_api_key, "async only"),
        (no_flags, "decorate the function with @async_only_middleware"),
        (AsyncCapableOnlyRequireApiKey, "set sync_capable = False and async_capable = True"),
        (one_lookup_lock, "the middleware lets one request through at a time"),
        (OneRequestAtATimeOnSelf, "the middleware lets one request through at a time"),
        (TwoLookupsAtATime, "the middleware lets only 2 requests through at a time"),
        (
            _api_key_middleware(_is_true),
            "with a key stored in the cache (64 characters, with - and _) the answer was 401",
        ),
        (
            _api_key_middleware(_aget, checks_the_shape=False),
            "with a 300-character key and a key with a space and a key with a tab and a key "
            "with a trailing newline it asked the cache for a key Django warns about "
            "(CacheKeyWarning)",
        ),
        (swallows_the_disconnect, "it still answered 500"),
        (shields_the_view, "the request ended but the view ran on"),
        (  # the reviewer's: no space, up to 64
            _api_key_middleware(_aget, shape=lambda key: len(key) <= 64 and " " not in key),
            "with a key with a tab and a key with a trailing newline it asked the cache for a "
            "key Django warns about",
        ),
        (
            _api_key_middleware(_aget, shape=lambda key: len(key) <= 64 and key.isalnum()),
            "with a key stored in the cache (64 characters, with - and _) the answer was 401",
        ),
        (
            _api_key_middleware(_aget, shape=lambda key: re.fullmatch("[0-9a-f]{16}", key)),
            "with a key stored in the cache (64 characters, with - and _) the answer was 401",
        ),
        (
            _api_key_middleware(_aget, shape=lambda key: re.fullmatch(r"[A-Za-z0-9_-]+", key)
                                and len(key) < 250),
            "with a 65-character key it asked the cache for that key",
        ),
        (
            _api_key_middleware(_aget, shape=lambda key: re.fullmatch(r"[\w-]{1,64}", key)),
            "with a key with a non-ASCII letter it asked the cache for that key",
        ),
        (
            _api_key_middleware(
                _aget, shape=lambda key: len(key) <= 64 and key.isascii() and key.isprintable()
                and " " not in key
            ),
            "with a key with punctuation it asked the cache for that key",
        ),
        (
            _api_key_middleware(_aget, shape=lambda key: re.match(r"[A-Za-z0-9_-]{1,64}", key)),
            "it asked the cache for a key Django warns about",
        ),
        (  # the review's: $ also matches before a final newline
            _api_key_middleware(
                _aget, shape=lambda key: re.match(r"^[A-Za-z0-9_-]{1,64}$", key)
            ),
            "with a key with a trailing newline it asked the cache for a key Django warns about",
        ),
        (  # "a query-string key is handy for curl"
            _api_key_middleware(
                _aget, key_of=lambda request: request.headers.get("X-API-Key")
                or request.GET.get("api_key", ""),
            ),
            "with a known key in the query string (?api_key=...) and no X-API-Key it answered 200",
        ),
        (
            _api_key_middleware(
                _aget, key_of=lambda request: request.headers.get("X-API-Key")
                or request.headers.get("Authorization", "").removeprefix("Bearer "),
            ),
            "with a known key in an Authorization: Bearer header and no X-API-Key it answered 200",
        ),
        (_api_key_middleware(_fails_open_on_a_timeout), "the request got in without a checked"),
        (_api_key_middleware(_fails_open_after_two_seconds),
         "the request got in without a checked"),
        (_api_key_middleware(_fails_open_on_an_error), "the request got in without a checked"),
        (_api_key_middleware(_refuses_when_the_store_fails),
         "when the key store failed (each lookup raised ConnectionError), it answered 401"),
        (_api_key_middleware(_fails_open_after_a_minute),
         "(no lookup answered for 25 minutes, on the check's fast clock) the answer was 200: "
         "the request got in without a checked key"),
        (_api_key_middleware(_fails_open_when_asyncio_wait_gives_up),
         "the request got in without a checked key"),
        (_api_key_middleware(_refuses_after_a_long_timeout),
         "(no lookup answered for 25 minutes, on the check's fast clock), it answered 401"),
        (_api_key_middleware(_aget, reject=_one_refusal),
         "it returned one response object for several refusals"),
        (times_out_around_the_view_too,
         "a view that takes 25 minutes, on the check's fast clock, was cancelled, and the "
         "answer was 504: the timeout covers the view too"),
        (waits_an_hour_for_the_view, "was cancelled, and the answer was 500"),
    ],
)
def test_05_2_wrong_answers_fail_with_a_hint(project, answer, message, recwarn):
    verdict = run(lesson05.check_require_api_key, answer)
    assert not verdict and verdict.solved
    assert message in str(verdict), str(verdict)
    assert not [w for w in recwarn if "never awaited" in str(w.message)]


def test_05_2_a_fast_sync_http_call_fails(project, local_http_url):
    async def check():
        return await lesson05.check_require_api_key(
            _api_key_middleware(await _http_lookup(local_http_url))
        )

    verdict = asyncio.run(check())
    assert not verdict and verdict.solved
    assert "socket.connect on a blocking socket" in str(verdict), str(verdict)
