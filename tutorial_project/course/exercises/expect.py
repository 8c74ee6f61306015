"""Expectations that several lessons' checks share."""

import asyncio
import dis
import gc
import inspect
import io
import os
import socket
import stat
import sys
import threading
import time
import warnings
from contextlib import contextmanager

from asgiref.sync import iscoroutinefunction


class LoopCPU:
    """The most CPU the loop's thread spent in one step: one callback the loop ran (a task's
    run from one await to its next), timed in the thread's own CPU time, which other
    processes on a busy machine do not add to. Steps are timed one by one because requests
    that wake together (their upstream calls end in the same turn) run back to back in one
    turn of the loop: a beat between turns would add up their steps. A garbage collection is
    left out: it is nobody's step, and it falls wherever the allocations happen to cross the
    threshold."""

    def __init__(self):
        self.longest = 0.0
        self._gc_cpu = 0.0  # CPU the thread's garbage collections took so far
        self._open = False

    async def __aenter__(self):
        thread, gc_began = threading.get_ident(), [0.0]
        run_step = self._run_step = asyncio.events.Handle._run

        def timed_step(handle):
            if threading.get_ident() != thread or not self._open:  # another thread's loop
                return run_step(handle)
            if self._first_step_open:  # the step that ran __aenter__ ended before this one
                self._record()
                self._first_step_open = False
            self._step_began, self._gc_at_step = time.thread_time(), self._gc_cpu
            try:
                return run_step(handle)
            finally:
                self._record()

        def gc_timed(phase, info):
            if threading.get_ident() == thread:
                if phase == "start":
                    gc_began[0] = time.thread_time()
                else:
                    self._gc_cpu += time.thread_time() - gc_began[0]

        self._gc_timed = gc_timed
        gc.callbacks.append(gc_timed)
        asyncio.events.Handle._run = timed_step
        self._open = True
        # The step running this line goes on into the body: it counts from here, and ends at
        # the next step (it began before the timing did, so no wrapper ends it).
        self._first_step_open = True
        self._step_began, self._gc_at_step = time.thread_time(), self._gc_cpu
        return self

    async def __aexit__(self, *exc_info):
        self._record()  # the body may have worked right up to its end, in this step
        self._open = False
        asyncio.events.Handle._run = self._run_step
        gc.callbacks.remove(self._gc_timed)

    def _record(self):
        if self._open:
            spent = time.thread_time() - self._step_began - (self._gc_cpu - self._gc_at_step)
            self.longest = max(self.longest, spent)


async def cancelled_outcome(task, give_up, returned):
    """Cancel ``task`` (the answer, waiting) and say how it ended within ``give_up`` seconds:
    "cancelled" (right), "kept running" (cancelled again, and not waited for past
    ``give_up``), "raised <Error>", or ``returned(result)`` for a value it gave instead."""
    task.cancel()
    await asyncio.wait({task}, timeout=give_up)
    if not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=give_up)
        return "kept running"
    if task.cancelled():
        return "cancelled"
    if task.exception() is not None:
        return f"raised {type(task.exception()).__name__}"
    return returned(task.result())


def must_be_async(check, function, name, params="...", *, kind="function", hint=None):
    """Stop the check with a hint unless ``function`` is an async function (or marked as one).

    ``kind`` names what it is in the passing line ("function", "view"); ``hint`` replaces the
    default "define it with `async def name(params):`".
    """
    check.that(
        iscoroutinefunction(function),
        f"{name} is an async {kind}",
        f"{name} is not an async function",
        hint=hint or f"define it with `async def {name}({params}):`",
    )


ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"


@contextmanager
def async_unsafe_noted():
    """Run the block with Django's async-safety guard on, and note who switched it off.

    Django's guard (``async_unsafe`` in django/utils/asyncio.py) lets a sync ORM or session
    call run on the event loop when ``os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")`` is not
    empty ("false" and "0" too). Yields a list that holds, after the block, a line for each
    time it was set: before the block (it is unset for the block) or inside it, by the answer
    (in ``os.environ``, from any thread, even if unset again before the block ends). When the
    block ends the variable is back as it was before the block.
    """
    before = os.environ.pop(ASYNC_UNSAFE, None)
    found = [f"{ASYNC_UNSAFE}={before!r} was set before the check ran (the check unset it "
             "for its run and has put it back)"] if before else []
    environ, unsafe_key = type(os.environ), os.environ.encodekey(ASYNC_UNSAFE)
    real_setitem = environ.__setitem__

    def noted_setitem(self, key, value):  # os.environb shares os.environ's data
        if self._data is os.environ._data and value and self.encodekey(key) == unsafe_key:
            found.append(f"{ASYNC_UNSAFE}={value!r} was set by your code (the check has "
                         "unset it)")
        real_setitem(self, key, value)

    environ.__setitem__ = noted_setitem
    try:
        yield found
    finally:
        environ.__setitem__ = real_setitem
        os.environ.pop(ASYNC_UNSAFE, None)
        if before is not None:
            os.environ[ASYNC_UNSAFE] = before


@contextmanager
def forgotten_awaits():
    """Collect the "coroutine ... was never awaited" warnings of the block instead of printing.

    A forgotten ``await`` drops a coroutine; Python then prints a RuntimeWarning that points
    into the checker. Inside this block such warnings are gathered in the list it yields
    (as their messages), so the check can say "you forgot an await" with a hint instead.
    Other warnings are shown as usual. Coroutines dropped before the block are collected
    (silently) on entry, so only the block's own count.
    """
    found = []
    # Coroutines dropped before the block (an earlier attempt's, kept in a reference cycle)
    # would warn at the collection below and be blamed on this answer: collect them now.
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield found
        finally:
            gc.collect()  # a dropped coroutine in a reference cycle warns only when collected
    for warning in caught:
        if "was never awaited" in str(warning.message):
            found.append(str(warning.message))
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )


def no_forgotten_await(check, found, value=None):
    """Stop the check with a hint if ``found`` (from ``forgotten_awaits``) holds a warning, or
    ``value`` is, or directly holds, an awaitable nobody awaited. Coroutines are closed first,
    so that Python does not print its own warning about them."""
    items = list(value.values()) if isinstance(value, dict) else value
    items = list(items) if isinstance(items, list | tuple) else [value]
    unawaited = [item for item in items if inspect.isawaitable(item)]
    for item in unawaited:
        if inspect.iscoroutine(item):
            item.close()
    if unawaited:
        found = [*found, f"the answer holds {type(unawaited[0]).__name__} objects, not results"]
    if found:
        check.that(
            False,
            "",
            f"an `await` is missing: {found[0]}",
            hint="calling an async function (or a sync_to_async wrapper) only creates a "
            "coroutine; `await` it to run it and get its result",
        )


@contextmanager
def sleeps_on_this_thread():
    """The seconds of each ``time.sleep`` called on this (the event loop's) thread in the block.

    However short, each one holds the loop. Calls from other threads (``to_thread``,
    ``sync_to_async``) are not counted; the real ``time.sleep`` is back when the block ends.
    """
    loop_thread, real_sleep, sleeps = threading.get_ident(), time.sleep, []

    def noted_sleep(seconds):
        if threading.get_ident() == loop_thread:
            sleeps.append(seconds)
        real_sleep(seconds)

    time.sleep = noted_sleep
    try:
        yield sleeps
    finally:
        time.sleep = real_sleep


# Django's sync cache API: with Redis or Memcached each call is a network round trip.
SYNC_CACHE_CALLS = ("get", "set", "add", "delete", "get_many", "set_many", "delete_many",
                    "has_key", "incr", "decr", "get_or_set", "touch", "clear")


@contextmanager
def sync_cache_calls_on_this_thread():
    """The names of the sync cache methods (``"get"``, ``"set"``...) called on this (the event
    loop's) thread in the block, in order.

    However fast the project's local-memory cache answers, with Redis or Memcached each one
    waits on the network and holds the loop. The a-twins (``await cache.aget(...)``) run in a
    worker thread and are not counted; neither are calls from other threads. Every configured
    backend's methods are back as they were when the block ends.
    """
    from django.core.cache import caches

    loop_thread, calls, depth = threading.get_ident(), [], [0]

    def noted(name, real):
        def call(*args, **kwargs):
            if threading.get_ident() != loop_thread:
                return real(*args, **kwargs)
            if not depth[0]:  # the call made, not those it makes (locmem's get_many calls get)
                calls.append(name)
            depth[0] += 1
            try:
                return real(*args, **kwargs)
            finally:
                depth[0] -= 1
        return call

    backends = {type(caches[alias]) for alias in caches}
    saved = [(backend, name, backend.__dict__.get(name))
             for backend in backends for name in SYNC_CACHE_CALLS]
    for backend, name, _ in saved:
        setattr(backend, name, noted(name, getattr(backend, name)))
    try:
        yield calls
    finally:
        for backend, name, own in saved:
            if own is None:
                delattr(backend, name)
            else:
                setattr(backend, name, own)


_REAL_SLEEP = time.sleep  # taken at import, before any watcher replaces it
_POLLS = frozenset({"poll.poll", "epoll.poll", "kqueue.control", "devpoll.poll"})
_SOCKET_WAITS = frozenset({
    "accept", "_accept", "connect", "connect_ex", "recv", "recv_into", "recvfrom",
    "recvfrom_into", "recvmsg", "recvmsg_into", "send", "sendall", "sendto", "sendmsg",
})
_NAME_LOOKUPS = frozenset({
    "getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo",
})
# os functions that wait for a child process or for the disk (subprocess.run waits in waitpid;
# os.system runs a shell and waits for it, in C: no waitpid call for the hook to see).
_OS_WAITS = frozenset({
    "system", "waitpid", "wait", "wait3", "wait4", "waitid", "fsync", "fdatasync",
})
# sqlite3 (C) methods that run SQL or wait for the database file: a sync database driver.
_SQLITE_WAITS = frozenset({
    "execute", "executemany", "executescript", "commit", "rollback",
    "fetchone", "fetchmany", "fetchall",
})
_LOCK_WAITS = frozenset({"acquire", "__enter__", "acquire_lock"})
# Modules whose functions learners call to wait on a lock: the verdict names the outermost.
_LOCK_WRAPPERS = ("threading", "queue", "concurrent.futures._base")
LOCK_WAIT_MS = 0.5  # a lock held elsewhere that this long kept the thread waiting for it
# Event.wait, Queue.get, Future.result, Semaphore.acquire and Thread.start wait here whenever
# they wait at all: its call is a wait, even one that a notify ends within microseconds.
_CONDITION_WAIT = threading.Condition.wait.__code__


def _module(frame):
    return frame.f_globals.get("__name__", "") if frame is not None else ""


def _held_elsewhere(lock):
    """Whether acquiring ``lock`` now would wait: a Lock held by anyone, an RLock held by
    another thread (an RLock's repr says whether it is locked, on every version)."""
    if hasattr(lock, "_is_owned"):
        return not lock._is_owned() and repr(lock).startswith("<locked")
    locked = getattr(lock, "locked", None)
    return bool(locked and locked())


def _waits_by_what_it_is(function):
    """The name of a C function that blocks the thread by what it is (not by how long it
    took), or None: ``time.sleep``, a select or poll, an operation on a blocking socket (its
    timeout is not 0: the event loop's own sockets are non-blocking), a DNS lookup, a wait for
    a child process (``subprocess.run``) or for the disk (``os.fsync``), a sqlite3 query."""
    owner = getattr(function, "__self__", None)
    name = getattr(function, "__name__", "")
    qualname = getattr(function, "__qualname__", name)
    if function is _REAL_SLEEP:
        return "time.sleep"
    if getattr(owner, "__name__", None) == "select" and name == "select" or qualname in _POLLS:
        return f"select.{qualname}"
    if isinstance(owner, socket.socket) or type(owner).__name__ == "socket":
        if name in _SOCKET_WAITS and owner.gettimeout() != 0:
            return f"socket.{name.lstrip('_')} on a blocking socket"
    if name in _NAME_LOOKUPS and getattr(owner, "__name__", None) == "_socket":
        return f"socket.{name} (a DNS lookup)"
    if name in _OS_WAITS and getattr(owner, "__name__", None) in ("posix", "nt"):
        return f"os.{name}"
    if name in _SQLITE_WAITS and type(owner).__module__ == "sqlite3":
        return f"sqlite3.{type(owner).__name__}.{name} (a sync database driver)"
    return None


def _lock_wait_name(frame):
    """Name a wait on a lock by the outermost threading / queue / Future function that made
    it (Event.wait, Condition.wait, Queue.get, Future.result), else Lock.acquire."""
    name = "Lock.acquire"
    while frame is not None and _module(frame).startswith(_LOCK_WRAPPERS):
        code = frame.f_code
        name = f"{_module(frame)}.{getattr(code, 'co_qualname', code.co_name)}"
        frame = frame.f_back
    return name, frame


def made_by_the_surroundings(frame):
    """Whether a call in ``frame`` belongs to what runs around an answer, not to the answer:
    the running event loop's own selector (it waits for I/O), asgiref, Django, the course's
    own code, logging, an import, or the Jupyter kernel. An ``ignore`` for the watcher below.
    A selector the answer makes and waits on (``select(0.04)``) holds the loop as
    ``time.sleep`` does: only the running loop's own is the surroundings'."""
    module = frame.f_globals.get("__name__", "") if frame is not None else ""
    if module == "selectors":
        loop = asyncio._get_running_loop()  # None on a thread with no running loop
        return loop is not None and frame.f_locals.get("self") is getattr(loop, "_selector", None)
    return module.startswith(
        ("asyncio.", "tornado.", "tutorial_project.", "importlib", "_frozen_importlib",
         "logging", "concurrent.futures.thread", "django.", "asgiref.", "zmq.", "ipykernel.")
    )


@contextmanager
def blocking_calls_on_this_thread(ignore=lambda frame: False):
    """Name each blocking call made on this (the event loop's) thread in the block, however
    short: ``time.sleep``, ``select.select`` and other polls, an operation on a blocking socket
    (a sync HTTP, Redis or database client makes them), a DNS lookup, a wait for a child
    process (``subprocess.run``: ``os.waitpid``; ``os.system``) or for the disk
    (``os.fsync``), a ``sqlite3`` query or commit, and a wait for a lock
    held elsewhere (``Lock.acquire``, and each ``Condition.wait``: ``Event.wait``,
    ``Queue.get``, ``Future.result``, ``Thread.start`` wait there). Each one holds every
    request the loop serves.

    A profile hook sees the calls themselves, so names bound before the block (``from time
    import sleep``) are seen too; it is set for this thread only, and a profiler already set
    still runs. ``ignore(frame)`` says whether a call made in ``frame`` belongs to the
    surroundings (the check's own code); the event loop's own selector is always left out.
    """
    found, previous, lock_calls = [], sys.getprofile(), []
    try:
        selector = asyncio.get_running_loop()._selector
    except (RuntimeError, AttributeError):
        selector = None

    def hook(frame, event, arg):
        if event == "call" and frame.f_code is _CONDITION_WAIT:
            timeout = frame.f_locals.get("timeout")
            if timeout is None or timeout > 0:  # it waits, however soon it is notified
                name, caller = _lock_wait_name(frame)
                if not ignore(caller):
                    found.append(f"{name} (a wait for a lock)")
        elif event == "c_call":
            name = _waits_by_what_it_is(arg)
            if name is not None:
                loops_own = name.startswith("select.") and frame.f_locals.get("self") is selector
                if not loops_own and not ignore(frame):
                    found.append(name)
            elif getattr(arg, "__name__", "") in _LOCK_WAITS:
                owner = getattr(arg, "__self__", None)
                held = owner is not None and _held_elsewhere(owner)
                lock_calls.append((arg, time.perf_counter(), held))
        elif event in ("c_return", "c_exception") and lock_calls and lock_calls[-1][0] == arg:
            _, started, held = lock_calls.pop()
            waited = held and (time.perf_counter() - started) * 1000 >= LOCK_WAIT_MS
            if waited and frame.f_code is not _CONDITION_WAIT:  # that one is noted on its call
                name, caller = _lock_wait_name(frame)
                if not ignore(caller):
                    found.append(f"{name} (a wait for a lock)")
        if previous is not None:
            previous(frame, event, arg)

    sys.setprofile(hook)
    try:
        yield found
    finally:
        sys.setprofile(previous)


# A `with lock:` statement enters the lock in the interpreter (BEFORE_WITH), with no call
# that a profile hook sees: watched line by line instead, in the answer's own frames only.
_BEFORE_WITH = "BEFORE_WITH"  # 3.11-3.13 (3.14 enters with LOAD_SPECIAL)
_C_LOCKS = (type(threading.Lock()), type(threading.RLock()))
_LOADS = {"LOAD_FAST": "local", "LOAD_DEREF": "local", "LOAD_NAME": "local",
          "LOAD_GLOBAL": "global"}


def _withs_by_line(code, known={}):  # noqa: B006  (a cache per code object)
    """For each line of ``code`` that enters a ``with`` on a plainly named object (``with
    lock:``, ``with self.lock:``, ``with module.LOCK:``): how to find that object, as (load
    instruction, attribute names)."""
    if code not in known:
        found, instructions = {}, list(dis.get_instructions(code))
        for at, ins in enumerate(instructions):
            if ins.opname != _BEFORE_WITH:
                continue
            attributes, before = [], at - 1
            while before >= 0 and instructions[before].opname in ("LOAD_ATTR", "LOAD_METHOD"):
                attributes.insert(0, instructions[before].argval)
                before -= 1
            if before >= 0 and instructions[before].opname in _LOADS:
                found.setdefault(ins.positions.lineno, []).append((instructions[before],
                                                                  attributes))
        known[code] = found
    return known[code]


def _held_lock_entered_on(frame):
    """A threading Lock or RLock held elsewhere that a ``with`` on this line of ``frame``
    enters, else None."""
    for load, attributes in _withs_by_line(frame.f_code).get(frame.f_lineno, ()):
        space = frame.f_locals if _LOADS[load.opname] == "local" else frame.f_globals
        target = space.get(load.argval, frame.f_globals.get(load.argval))
        for name in attributes:
            target = inspect.getattr_static(target, name, None)
        if isinstance(target, _C_LOCKS) and _held_elsewhere(target):
            return target
    return None


def answers_own(frame):
    """Whether ``frame`` runs the answer's own code: not the standard library's, not the
    surroundings', not the notebook's machinery."""
    module = _module(frame)
    return not (
        module.split(".")[0] in sys.stdlib_module_names
        or module.startswith("IPython.")
        or made_by_the_surroundings(frame)
    )


@contextmanager
def lock_withs_on_this_thread(answers=answers_own):
    """Name each ``with lock:`` on this (the event loop's) thread, in a frame for which
    ``answers(frame)`` is true, that waited for a threading Lock or RLock held elsewhere: the
    wait ``blocking_calls_on_this_thread`` names when the lock is taken with ``acquire()``.
    Off while another trace function (a debugger, coverage) is set."""
    found, previous = [], sys.gettrace()
    if previous is not None:
        yield found
        return
    entering = {}  # frame -> when its line that enters a lock held elsewhere started

    def local(frame, event, arg):
        started = entering.pop(frame, None)
        if started is not None and (time.perf_counter() - started) * 1000 >= LOCK_WAIT_MS:
            found.append("a `with` on a threading lock (a wait for a lock)")
        if event == "line" and _held_lock_entered_on(frame) is not None:
            entering[frame] = time.perf_counter()
        return local

    def tracer(frame, event, arg):
        return local if event == "call" and answers(frame) else None

    sys.settrace(tracer)
    try:
        yield found
    finally:
        sys.settrace(None)


# open() and os.open, whatever name the answer calls them by (Path.read_text, Path.open and
# friends end up in io.open): file I/O waits for the disk, which on a network file system or
# under memory pressure is as slow as a network call.
_FILE_OPENS = (io.open, os.open)


def _is_ipythons_open(frame):
    """Whether ``frame`` runs the ``open`` a notebook cell sees: IPython puts its own wrapper
    (``IPython.core.interactiveshell._modified_open``, which calls ``io.open``) in the user
    namespace, so an answer's plain ``open()`` reaches ``io.open`` through it."""
    return frame.f_code.co_name == "_modified_open" and _module(frame).startswith("IPython.")


def _called_by_the_answer(frame):
    """Whether the innermost frame of ``frame``'s stack outside the standard library is the
    answer's: a file read by pathlib for the answer is the answer's, one read by linecache
    for a traceback that Django or the course formats is not, nor one read by linecache for a
    logged traceback (asyncio's "Task exception was never retrieved"), whoever logs it. The
    notebook's ``open`` wrapper is looked through, like the standard library: its caller
    opened the file."""
    while frame is not None and (
        _module(frame).split(".")[0] in sys.stdlib_module_names or _is_ipythons_open(frame)
    ):
        if _module(frame) == "linecache":  # source lines for a traceback, never the answer's
            return False
        frame = frame.f_back
    return (
        frame is not None
        and not made_by_the_surroundings(frame)
        and not _module(frame).startswith("IPython.")  # the notebook's own machinery
    )


@contextmanager
def file_opens_on_this_thread():
    """Name each file the answer opens on this (the event loop's) thread in the block, however
    fast: a list of names such as ``"open() (sync file I/O)"``.

    A profile hook sees the calls themselves (``open``, ``os.open``, and pathlib's reads,
    which end up in ``io.open``); it is set for this thread only, and a profiler already set
    still runs. Opens made by the surroundings (``made_by_the_surroundings``, and the
    notebook's own IPython machinery) are left out.
    """
    opened, previous = [], sys.getprofile()

    def noting(frame, event, arg):
        if event == "c_call" and any(arg is function for function in _FILE_OPENS):
            if _called_by_the_answer(frame):
                opened.append(f"{'os.open' if arg is os.open else 'open'}() (sync file I/O)")
        if previous is not None:
            previous(frame, event, arg)

    sys.setprofile(noting)
    try:
        yield opened
    finally:
        sys.setprofile(previous)


# Reads, writes and flushes of a file object already open (a module-level log, a
# logging.FileHandler's stream): each waits for the disk like the open did.
_FILE_OBJECTS = (io.FileIO, io.BufferedReader, io.BufferedWriter, io.BufferedRandom,
                 io.TextIOWrapper)
_FILE_IO = frozenset({"read", "readline", "readlines", "readinto", "write", "writelines",
                      "flush"})


def _on_a_disk_file(stream):
    """Whether ``stream`` is a file object on a regular file, not the console: the process's
    stdin, stdout and stderr (a terminal, a pipe, or pytest's capture file) are left out."""
    if stream in (sys.stdin, sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        return False
    try:
        descriptor = stream.fileno()
        return descriptor > 2 and stat.S_ISREG(os.fstat(descriptor).st_mode)
    except (OSError, ValueError):  # closed, or no descriptor (an in-memory file)
        return False


@contextmanager
def file_io_on_this_thread():
    """Name each read, write or flush the answer makes on this (the event loop's) thread, in
    the block, on a file object already open on a regular file: ``"write() on an open file
    (sync file I/O)"``. A ``logging.FileHandler`` writes and flushes its file in the thread
    that logs, so a log line from an async view lands here. Calls made by the surroundings
    (Django's own log, the course's code) are left out, as in ``file_opens_on_this_thread``."""
    found, previous = [], sys.getprofile()

    def noting(frame, event, arg):
        if event == "c_call" and getattr(arg, "__name__", "") in _FILE_IO:
            stream = getattr(arg, "__self__", None)
            if isinstance(stream, _FILE_OBJECTS) and _on_a_disk_file(stream):
                if _called_by_the_answer(frame):
                    found.append(f"{arg.__name__}() on an open file (sync file I/O)")
        if previous is not None:
            previous(frame, event, arg)

    sys.setprofile(noting)
    try:
        yield found
    finally:
        sys.setprofile(previous)


@contextmanager
def loop_blocking_calls(ignore=made_by_the_surroundings):
    """Each blocking call made on the event loop's thread in the block, named however short:
    ``time.sleep`` (patched, and under any name), Event.wait, a sync socket or DNS call; calls
    made where ``ignore(frame)`` holds (by default the check's own code and Django's) are left
    out. Its profile hook slows the loop: never time inside it. Yields a list, filled when the
    block ends."""
    blocking = []
    with sleeps_on_this_thread() as sleeps, blocking_calls_on_this_thread(ignore) as named:
        yield blocking
    blocking += ["time.sleep"] * len(sleeps) + named
