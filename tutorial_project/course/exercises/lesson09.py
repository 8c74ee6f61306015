"""Checks for lesson 09 · Auth, sessions, cache and signals without blocking."""

import _thread
import asyncio
import contextlib
import gc
import logging
import sys
import sysconfig
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from importlib import import_module
from unittest import mock

import django
from asgiref.sync import ThreadSensitiveContext
from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.locmem import LocMemCache
from django.core.exceptions import SynchronousOnlyOperation
from django.http import HttpResponse
from django.test import AsyncClient, override_settings

from tutorial_project.course.exercises.core import exercise
from tutorial_project.course.exercises.expect import (
    LoopCPU,
    async_unsafe_noted,
    loop_blocking_calls,
    made_by_the_surroundings,
    must_be_async,
)
from tutorial_project.course.exercises.probes import call_view, default_executor
from tutorial_project.instruments.heartbeat import Heartbeat
from tutorial_project.playground import mount, unmount

EXERCISE_USER = "exercise-09-grace"


async def _exercise_user():
    user, _ = await User.objects.aget_or_create(username=EXERCISE_USER)
    return user


def _json_or_none(response):
    try:
        return response.json()
    except ValueError:
        return None


@contextlib.contextmanager
def _learner_code_watched():
    """Quiet the check's own probe requests, and catch "coroutine ... was never awaited".

    Yields a list that holds, after the block, the names of the coroutines the learner's code
    created and never awaited (a forgotten ``await``), instead of a RuntimeWarning that would
    point into the checker.
    """
    logger = logging.getLogger("django.request")
    was_disabled, logger.disabled = logger.disabled, True
    never_awaited = []
    with warnings.catch_warnings(action="ignore", category=RuntimeWarning):
        gc.collect()  # an earlier run's leftover coroutine must not be blamed on this answer
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield never_awaited
            gc.collect()  # a dropped coroutine warns when it is collected: collect it here
        never_awaited += [str(w.message) for w in caught if "never awaited" in str(w.message)]
    finally:
        logger.disabled = was_disabled




def _named(blocking):
    return ", ".join(sorted(set(blocking))) or "none"


async def _logged_in_then_revoked():
    """Two logged-in clients, each with an ``end()`` that ends its login: one changes the
    password (the session's stored auth hash goes stale), one deactivates the account.
    aget_user() (behind request.auser()) then answers AnonymousUser for both; a view that
    reads SESSION_KEY from the session and loads the User by hand answers the username, and
    so does one that remembers the user of a session it served before the login ended."""
    logins = []
    for suffix, revoke in (("-stale", "password"), ("-banned", "is_active")):
        user, _ = await User.objects.aget_or_create(username=EXERCISE_USER + suffix)
        user.is_active = True
        user.set_unusable_password()  # a fresh random "!..." value: no hashing on the loop
        await user.asave()
        client = AsyncClient()
        await client.aforce_login(user)

        async def end(user=user, revoke=revoke):
            if revoke == "password":
                user.set_unusable_password()  # another random value: the session hash is stale
            else:
                user.is_active = False
            await user.asave()

        logins.append((client, end))
    return logins


async def _anonymous_with_a_session():
    """A client that is not logged in but holds a session cookie (a cart), as a visitor who
    has put something in a cart does: their request.user has a session to look into."""
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    await store.aset("cart", ["BK-001"])
    await store.asave()
    client = AsyncClient()
    client.cookies[settings.SESSION_COOKIE_NAME] = store.session_key
    return client


async def _get(client, path, **query):
    """(response, error): the view's answer, or what it raised (the client re-raises it)."""
    try:
        return await client.get(path, query), None
    except Exception as error:  # the learner's view failed: turned into a hint below
        return None, f"{type(error).__name__}: {error}"


async def _ok(request):
    return HttpResponse("ok")


FORGOTTEN_AWAIT = "an `await` is missing: {}"


def _guard_left_on(check, unsafe, the_async_way):
    """Refuse an answer run with DJANGO_ALLOW_ASYNC_UNSAFE set (``unsafe``, from
    expect.async_unsafe_noted): the sync call it lets through passes every probe here."""
    if unsafe:
        check.that(
            False, "", f"Django's guard was switched off: {unsafe[0]}",
            hint="it is not a fix: it only hides SynchronousOnlyOperation. The sync query still "
            "runs on the event loop and blocks every request there, and every coroutine on the "
            "loop then shares its thread's database connection, which is not safe to use from "
            f"several at once. Never set it; use {the_async_way}",
        )
POOL_THREAD = "exercise-09-pool"  # the names of the loop's default executor's threads


@contextlib.contextmanager
def _connections_opened():
    """The names of the threads in which a database connection was opened in the block."""
    from django.db.backends.signals import connection_created

    names = []

    def opened(sender, connection, **kwargs):
        names.append(threading.current_thread().name)

    connection_created.connect(opened, weak=False)
    try:
        yield names
    finally:
        connection_created.disconnect(opened)


# A free loop, even on a busy 2-core machine, does not stand still a quarter of a second
# (lesson 02's bound); a shorter time.sleep on the loop is counted, not timed.
STALL = 0.25
# Yet a busy machine held a right answer's loop 0.48 s once (4 test workers on 2 cores, with
# other work): a stall with no blocking call named is timed again, TIMINGS runs at most; an
# answer that blocks stalls every time.
TIMINGS = 3
# CPU work on the loop calls nothing the watch names (hashing a password, parsing a big
# payload): its longest step is timed in the thread's own CPU time, which the machine's load
# adds far less to than to the wall clock (a hash's CPU grew by up to half at load 10-15).
# The reference's is a few ms.
CPU_STALL = 0.05
CPU_HINT = ("CPU work belongs in a thread: run it (hashing a password, as the lesson's first "
            "section shows, or parsing a large payload) with sync_to_async(...) or "
            "asyncio.to_thread(...), or keep it out of the request")


def _cpu_on_the_loop(what, loop_cpu):
    return (f"{what} computed on the event loop for {loop_cpu * 1000:.0f} ms of CPU in one "
            "step (on every run): every other request on the loop waits meanwhile")


@exercise("09.1", "Who am I, without the lazy-user trap")
async def check_whoami_view(check, view):
    must_be_async(check, view, "whoami_view", "request", kind="view")
    route = "exercise-09-1/"
    await call_view(_ok)  # a first request imports and builds things: not the learner's stall
    mount(route, view)
    try:
        client = AsyncClient()
        await client.aforce_login(await _exercise_user())
        with_a_session = await _anonymous_with_a_session()
        logins = await _logged_in_then_revoked()
        (stale, _), (banned, _) = logins
        with (async_unsafe_noted() as unsafe, _learner_code_watched() as never_awaited,
              loop_blocking_calls() as blocking, _connections_opened() as opened_in,
              _a_fresh_default_executor(asyncio.get_running_loop(), POOL_THREAD)):
            # each session served once while its login holds, then the login ends: a view
            # that remembers who a session was (in the session, in a dict) is caught next
            for logged_in_still, end in logins:
                await _get(logged_in_still, f"/{route}")
                await end()
            loop_cpu = None
            for _ in range(TIMINGS):
                async with Heartbeat(every=0.005) as heartbeat, LoopCPU() as cpu:
                    anonymous, anonymous_error = await _get(AsyncClient(), f"/{route}")
                    visitor, visitor_error = await _get(with_a_session, f"/{route}")
                    logged_in, error = await _get(client, f"/{route}")
                    revoked = [(what, *await _get(c, f"/{route}")) for what, c in (
                        ("password changed after login", stale),
                        ("account deactivated after login", banned))]
                loop_cpu = cpu.longest if loop_cpu is None else min(loop_cpu, cpu.longest)
                if (heartbeat.longest_gap < STALL and loop_cpu < CPU_STALL) or blocking:
                    break
    finally:
        unmount(route)
    _guard_left_on(check, unsafe, "`user = await request.auser()`")
    if never_awaited:
        check.that(False, "", never_awaited[0],
                   hint=FORGOTTEN_AWAIT.format("`user = await request.auser()`"))
    stall_hint = ("blocking calls (time.sleep, requests, the sync ORM) in an async view stop "
                  "every other request on the loop: await asyncio.sleep(...), or run them with "
                  "sync_to_async")
    check.that(  # a blocking call named: that is the bug, whatever the answers
        not blocking,
        "the view made no blocking call on the event loop",
        f"the view blocked the event loop (blocking calls on it: {_named(blocking)}; longest "
        f"stall {heartbeat.longest_gap:.2f} s)",
        hint=stall_hint,
    )
    check.that(
        anonymous is not None
        and anonymous.status_code == 200 and _json_or_none(anonymous) == {"username": None},
        'anonymous: 200 {"username": null}',
        "anonymous: "
        + (anonymous_error or f"{anonymous.status_code} {_json_or_none(anonymous)!r}"),
        hint=("the body is right but the status is not 200: answer with JsonResponse(...), "
              "whose default status is 200")
        if anonymous is not None and _json_or_none(anonymous) == {"username": None}
        else ("the view redirected an anonymous visitor (302): this view answers everyone, "
              "so no login_required (or a mixin, a middleware rule) on it")
        if anonymous is not None and anonymous.status_code == 302
        else 'answer JsonResponse({"username": None}) when the user is not authenticated '
        "(an anonymous user's username is the empty string, and str() of it is 'AnonymousUser')",
    )
    check.that(
        anonymous is None or settings.SESSION_COOKIE_NAME not in anonymous.cookies,
        "an anonymous visitor leaves with no session: the view only reads",
        "an anonymous visitor got a session cookie: the view stored something in "
        "request.session, so every visitor who only asks who they are costs a session (a row "
        "in the database here) and a cookie",
        hint="the view only reads: `user = await request.auser()`, and nothing stored in "
        "request.session",
    )
    check.that(
        visitor is not None
        and visitor.status_code == 200 and _json_or_none(visitor) == {"username": None},
        'anonymous with a session (a cart in it): 200 {"username": null}',
        "anonymous with a session: "
        + (visitor_error or f"{visitor.status_code} {_json_or_none(visitor)!r}"),
        hint="SynchronousOnlyOperation here is the lazy-user trap: a visitor with a session "
        "cookie makes request.user read the session from the database, logged in or not; use "
        "`user = await request.auser()`"
        if visitor_error and "SynchronousOnlyOperation" in visitor_error
        else 'answer JsonResponse({"username": None}) for every visitor who is not logged in',
    )
    check.that(
        logged_in is not None and logged_in.status_code == 200
        and _json_or_none(logged_in) == {"username": EXERCISE_USER},
        f'logged in as {EXERCISE_USER}: 200 {{"username": "{EXERCISE_USER}"}}',
        "logged in: " + (error or f"{logged_in.status_code} {_json_or_none(logged_in)!r}"),
        hint="SynchronousOnlyOperation here is the lazy-user trap: use "
        "`user = await request.auser()`, not request.user"
        if error and "SynchronousOnlyOperation" in error
        else "answer the logged-in user's username",
    )
    for what, response, revoked_error in revoked:
        check.that(
            response is not None
            and response.status_code == 200 and _json_or_none(response) == {"username": None},
            f'{what}: 200 {{"username": null}}',
            f"{what}: "
            + (revoked_error or f"{response.status_code} {_json_or_none(response)!r}"),
            hint="this login is no longer valid, yet the view still names the user: reading "
            "SESSION_KEY from the session and loading the User by hand, or remembering the "
            "user a session had on an earlier request, skips what auth.aget_user() checks on "
            "every request (the session's password hash, is_active through the backend); use "
            "`user = await request.auser()` each time",
        )
    _refuse_pool_thread_connections(
        check, opened_in,
        hint="Django closes a request's database connections in the request's own thread when "
        "it finishes (close_old_connections on request_finished): a connection opened in a "
        "pool thread is never closed by it and stays open. Run ORM work with the default "
        "sync_to_async (thread_sensitive=True), or `user = await request.auser()`",
    )
    # A stall with no blocking call named comes last: on a loaded machine a wrong answer's
    # error (SynchronousOnlyOperation above) is the more useful verdict.
    check.that(
        loop_cpu < CPU_STALL,
        f"no step of the view held the loop for {CPU_STALL * 1000:.0f} ms of CPU or more",
        _cpu_on_the_loop("the view", loop_cpu),
        hint=CPU_HINT,
    )
    check.that(
        heartbeat.longest_gap < STALL,
        f"the event loop never stalled for {STALL} s or more",
        f"the event loop stalled {heartbeat.longest_gap:.2f} s while the view ran",
        hint=stall_hint,
    )


@exercise("09.2", "A shopping cart in the session")
async def check_cart_view(check, view):
    # Sync session code run inside the default sync_to_async (thread_sensitive=True) passes: it
    # keeps the loop free and stores the same cart, so it is a right answer (the lesson asks for
    # the async API, a hop per call). Run in the loop's default executor (thread_sensitive=False,
    # asyncio.to_thread), the session's query opens a connection nothing closes: refused, as 09.1.
    must_be_async(check, view, "cart_view", "request", kind="view")
    route = "exercise-09-2/"
    await call_view(_ok)  # a first request imports and builds things: not the learner's CPU
    mount(route, view)
    try:
        with (async_unsafe_noted() as unsafe, _learner_code_watched() as never_awaited,
              loop_blocking_calls() as blocking, _connections_opened() as opened_in,
              _a_fresh_default_executor(asyncio.get_running_loop(), POOL_THREAD)):
            loop_cpu = None
            for _ in range(TIMINGS):  # a new visitor each run, timed as 09.1 times its view
                steps = []
                async with LoopCPU() as cpu:
                    client = AsyncClient()
                    for sku in ["BK-001", "CF-002", "BK-001"]:
                        steps.append((sku, *await _get(client, f"/{route}", add=sku)))
                    empty, empty_error = await _get(client, f"/{route}", add="")
                    other, other_error = await _get(AsyncClient(), f"/{route}")
                loop_cpu = cpu.longest if loop_cpu is None else min(loop_cpu, cpu.longest)
                if loop_cpu < CPU_STALL or blocking:
                    break
            session_key = client.cookies.get(settings.SESSION_COOKIE_NAME)
            stored = None
            if session_key is not None and session_key.value:
                session = import_module(settings.SESSION_ENGINE).SessionStore(session_key.value)
                stored = await session.aget("cart")
                keys = sorted(await session.akeys())
    finally:
        unmount(route)
    _guard_left_on(check, unsafe, "`await request.session.aget(...)` and "
                   "`await request.session.aset(...)`")
    if never_awaited:
        check.that(False, "", never_awaited[0],
                   hint=FORGOTTEN_AWAIT.format("`await request.session.aset(...)`; without it "
                                               "nothing is stored"))
    check.that(loop_cpu < CPU_STALL,  # CPU work calls nothing the watch below names
               f"no step of the view held the loop for {CPU_STALL * 1000:.0f} ms of CPU or more",
               _cpu_on_the_loop("the view", loop_cpu), hint=CPU_HINT)
    check.that(not blocking, "the view never blocked the event loop",
               f"the view blocked the event loop (blocking calls on it: {_named(blocking)})",
               hint="blocking calls (time.sleep, requests, a sync cache or ORM call) in an async "
               "view stop every other request on the loop: await the a-methods, or run them "
               "with sync_to_async")
    expected = []
    for sku, response, error in steps:
        expected.append(sku)
        body = _json_or_none(response) if response is not None else None
        if error and "SynchronousOnlyOperation" in error:
            hint = ("a sync session access on the event loop: use "
                    "`await request.session.aget(...)` and `await request.session.aset(...)`")
        elif response is not None and response.status_code != 200 and body == {"cart": expected}:
            hint = ("the cart is right but the status is not 200: answer every request with "
                    "`JsonResponse({'cart': cart})`, whose default status is 200")
        elif (isinstance(body, dict) and body.get("cart") == list(dict.fromkeys(expected))
              and len(expected) > len(set(expected))):
            hint = "keep every SKU added, repeats included: append it, do not de-duplicate"
        elif (isinstance(body, dict) and isinstance(body.get("cart"), list)
              and body["cart"] != expected and sorted(map(str, body["cart"])) == sorted(expected)):
            hint = "keep the SKUs in the order they were added: append each one, do not sort"
        else:
            hint = ("store the whole list again with `await request.session.aset('cart', cart)` "
                    "after adding: changing the list in place does not mark the session as "
                    "modified, so it is not saved")
        check.that(
            response is not None and response.status_code == 200 and body == {"cart": expected},
            f"after adding {sku}: {{'cart': {expected}}}",
            f"after adding {sku}: {error or f'{response.status_code} {body!r}'}, expected "
            f"{{'cart': {list(expected)}}}",
            hint=hint,
        )
    empty_body = _json_or_none(empty) if empty is not None else None
    check.that(  # review 09-s34d: an empty SKU appended passed
        empty is not None and empty.status_code == 200 and empty_body == {"cart": expected},
        "?add= with no SKU adds nothing",
        f"?add= with no SKU: {empty_error or f'{empty.status_code} {empty_body!r}'}, "
        f"expected {{'cart': {expected}}}",
        hint=("a request without a SKU is an ordinary request for the cart: answer it 200 "
              "with the cart")
        if empty is not None and empty_body == {"cart": expected} else
        "append only a non-empty SKU: `if sku:` is false for a missing ?add= and for an "
        "empty one alike",
    )
    other_body = _json_or_none(other) if other is not None else None
    check.that(
        other is not None and other.status_code == 200 and other_body == {"cart": []},
        "another visitor starts with an empty cart",
        f"another visitor got {other_error or f'{other.status_code} {other_body!r}'}",
        hint=("a request without ?add= is an ordinary request for the cart: answer it 200 "
              "with {'cart': []}, not with an error status"
              if other is not None and other_body == {"cart": []}
              else "keep the cart in request.session, not in a global variable"),
    )
    check.that(  # review 09-s32b: a session saved on every request
        other is None or settings.SESSION_COOKIE_NAME not in other.cookies,
        "a visitor who only looks at the cart gets no session cookie",
        "a visitor who added nothing got a session cookie: the view saved the session on a "
        "request that changed nothing, so every visitor who looks (a crawler, a health check) "
        "costs a session row, and with the cookie request.user queries the database",
        hint="store the cart only when ?add= changed it: call `await request.session.aset("
        "'cart', cart)` inside the `if`",
    )
    if session_key is None or not session_key.value:
        where = "no session cookie: the view never stored anything in request.session"
    else:
        where = f"the session holds {stored!r} under \"cart\" (its keys: {keys})"
    check.that(
        stored == expected,
        f'the session holds {expected} under "cart"',
        where,
        hint='keep the cart in the session, under the key "cart": '
        '`await request.session.aset("cart", cart)` (a cookie of your own is not the session: '
        "the visitor can read and change it)",
    )
    _refuse_pool_thread_connections(
        check, opened_in,
        hint="a query run in a pool thread (asyncio.to_thread, run_in_executor, or "
        "sync_to_async(thread_sensitive=False)), whether the session's load or save or an ORM "
        "call of your own, opens a connection there, and Django closes a request's connections "
        "only in the request's own thread: it stays open. Use `await request.session.aget(...)` "
        "/ `aset(...)` and the ORM's a-methods, or the default sync_to_async "
        "(thread_sensitive=True)",
    )


def _refuse_pool_thread_connections(check, opened_in, *, hint):
    """Fail the check if the view opened a database connection in one of the event loop's
    default executor threads (``opened_in``: the names of the threads that opened one)."""
    pool_threads = sorted({name for name in opened_in if name.startswith(POOL_THREAD)})
    check.that(
        not pool_threads,
        "the view used the database only in the request's own thread",
        f"the view opened {len(pool_threads)} database connection(s) in the event loop's "
        "default executor (sync_to_async(..., thread_sensitive=False) or asyncio.to_thread "
        "run there)",
        hint=hint,
    )


ROUND_TRIP = 0.001  # seconds: a networked cache's call is not instant


class _NetworkLikeLocMemCache(LocMemCache):
    """The local-memory cache, held to what a networked cache (Redis, Memcached) demands.

    Its sync methods refuse to run on the event loop's thread (there they would block the
    loop for a network round trip), and each waits ROUND_TRIP before it acts, so a read and
    a write of one answer have a gap between them (a get + set in one thread hop loses
    concurrent hits, as it would on Redis). Its ``aincr`` is Django 5.2's (``aget`` then
    ``aset``, two thread hops), so an answer that counts on Django 6.1's atomic ``aincr``
    fails on 6.1 as it would on 5.2 (``aincr_calls`` counts its calls, to say so). While
    ``_AnotherProcess.key`` is set, each sync call on that key is followed by a hit that
    another worker process counts (see there). ``built`` counts the objects made: ``caches``
    makes one in a thread that has none (``asyncio.to_thread``, ``run_in_executor``: asgiref's
    ``Local`` does not follow them there on asgiref 3.12+, as it follows ``sync_to_async``).
    """

    built = 0
    aincr_calls = 0
    ran_in = set()  # the names of the threads its sync methods ran in


    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _NetworkLikeLocMemCache.built += 1

    def _refuse_on_the_loop(self, name):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            _NetworkLikeLocMemCache.ran_in.add(threading.current_thread().name)
            time.sleep(ROUND_TRIP)  # in a worker thread: the round trip
            return
        raise SynchronousOnlyOperation(
            f"cache.{name}() ran on the event loop: a networked cache would block it"
        )

    def get(self, key, default=None, version=None):
        self._refuse_on_the_loop("get")
        with _AnotherProcess.counts_after(self, key, version):
            return super().get(key, default, version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        self._refuse_on_the_loop("set")
        with _AnotherProcess.counts_after(self, key, version):
            return super().set(key, value, timeout, version)

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        self._refuse_on_the_loop("add")
        with _AnotherProcess.counts_after(self, key, version):
            return super().add(key, value, timeout, version)

    def incr(self, key, delta=1, version=None):
        self._refuse_on_the_loop("incr")
        with _AnotherProcess.counts_after(self, key, version):
            return super().incr(key, delta, version)

    def has_key(self, key, version=None):
        self._refuse_on_the_loop("has_key")
        with _AnotherProcess.counts_after(self, key, version):
            return super().has_key(key, version)

    # The other sync calls a counter might make (review 09-s34b: a sync touch() on the loop
    # passed); set_many, delete_many and get_many go through the methods here.
    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        self._refuse_on_the_loop("touch")
        return super().touch(key, timeout, version)

    def delete(self, key, version=None):
        self._refuse_on_the_loop("delete")
        return super().delete(key, version)

    def clear(self):
        self._refuse_on_the_loop("clear")
        return super().clear()

    async def aincr(self, key, delta=1, version=None):  # Django 5.2's BaseCache.aincr
        _NetworkLikeLocMemCache.aincr_calls += 1
        value = await self.aget(key, self._missing_key, version=version)
        if value is self._missing_key:
            raise ValueError(f"Key '{key}' not found")
        new_value = value + delta
        await self.aset(key, new_value, version=version)
        return new_value


class _AnotherProcess:
    """A second worker process that counts hits of the same page in the same cache server.

    While ``key`` is set, each sync call of the probe cache on that key (``get``, ``set``,
    ``add``, ``incr``, ``has_key``; the a-methods and ``get_many``, ``get_or_set``... go
    through them) is followed at once by a hit of the other process: ``add(key, 0)`` then
    ``incr``, each atomic, as a right answer counts. So it lands in the gap between the
    answer's read and its write, the moment a real second process can land there, and a
    read-then-write loses it whatever keeps this process's own hits apart (a lock, a
    one-thread executor, a queue used as a mutex: none of them reaches another process).
    What it cannot see: whether the backend you deploy has an atomic ``incr`` (the file and
    database caches do not); this is the local-memory cache's, like Redis's and Memcached's.
    """

    key = None
    hits = 0
    _count_lock = threading.Lock()

    @classmethod
    @contextlib.contextmanager
    def counts_after(cls, cache, key, version):
        try:
            yield
        finally:
            # version=1 names the same entry as no version (the cache's default)
            if key == cls.key and version in (None, cache.version):
                LocMemCache.add(cache, key, 0, timeout=None)
                LocMemCache.incr(cache, key)
                with cls._count_lock:
                    cls.hits += 1

    @classmethod
    @contextlib.contextmanager
    def counting(cls, key):
        cls.key, cls.hits = key, 0
        try:
            yield cls
        finally:
            cls.key = None


PROBE_CACHES = {"default": {"BACKEND": f"{__name__}._NetworkLikeLocMemCache",
                            "LOCATION": "exercise-09-3"}}
HITS = 200
SHARED_HITS = 20  # hits of a page that another worker process counts too (_AnotherProcess)


async def _as_a_request(count_hit, page):
    """One hit the way ASGIHandler runs a request: in its own ThreadSensitiveContext, so its
    sync_to_async calls run on a thread of their own, beside the other requests'. Without it
    every default sync_to_async call would queue on asgiref's one shared thread, and a get +
    set inside one sync_to_async would count right (a read and a write split across awaits,
    aget then aset, loses hits either way: the loop interleaves them on one thread)."""
    async with ThreadSensitiveContext():
        return await count_hit(page)


HITS_DEADLINE = 30  # seconds; far beyond what the hits take even on a loaded machine


async def _hits(count_hit, n, page="home"):
    """n concurrent hits; if they are still waiting at the deadline (a lock shared by two event
    loops can miss its wake-up and wait forever), each counts as a TimeoutError."""
    try:
        async with asyncio.timeout(HITS_DEADLINE):
            return await asyncio.gather(*(_as_a_request(count_hit, page) for _ in range(n)),
                                        return_exceptions=True)
    except TimeoutError:
        stuck = TimeoutError(f"hits still waiting after {HITS_DEADLINE} s")
        return [stuck] * n


def _hits_on_another_loop(count_hit, n):
    """n hits from an event loop of their own, in this thread: what a second server process
    (or worker) sharing the cache does, except that it is a thread of this process, so
    anything in this process's memory that serializes hits (a lock, a one-thread executor)
    still serializes them with the first loop's and the count holds here. _AnotherProcess
    is the hits that such an answer loses."""
    loop = asyncio.new_event_loop()
    try:
        with _a_fresh_default_executor(loop):
            return loop.run_until_complete(_hits(count_hit, n))
    finally:
        loop.close()


# A lock in the process's memory: its methods are C functions (a profile hook sees their calls,
# `with lock:` included, by its __exit__) or Python ones (seen by the call of their frame).
_C_LOCKS = (_thread.LockType, _thread.RLock)
_PY_LOCKS = (asyncio.Lock, asyncio.Semaphore, asyncio.Condition, threading.Condition,
             threading.Semaphore)
try:  # multiprocessing's locks: shared only with the processes they are handed to, on one host
    from _multiprocessing import SemLock as _SemLock
    from multiprocessing import synchronize as _mp_synchronize
except ImportError:  # a platform without sem_open has none
    pass
else:
    _C_LOCKS += (_SemLock,)  # lock.acquire(), lock.release(): the C semaphore's own methods
    _PY_LOCKS += (_mp_synchronize.SemLock, _mp_synchronize.Condition)  # `with lock:`
_LOCK_METHODS = {"acquire", "__enter__", "__exit__", "__aenter__", "release", "wait"}


# Python's own modules and the installed packages: their locks (a Thread.start, a Future, a
# client library's pool) are not the answer's.
_NOT_THE_ANSWERS = tuple({sysconfig.get_paths()[name] for name in
                          ("stdlib", "platstdlib", "purelib", "platlib")})


def _the_answers(frame):
    """Whether ``frame`` runs the answer's own code (a notebook cell, the learner's module)."""
    return (frame is not None and not made_by_the_surroundings(frame)
            and not frame.f_code.co_filename.startswith(_NOT_THE_ANSWERS))


def _c_lock_name(lock):
    kind = type(lock).__name__
    if kind == "SemLock":  # multiprocessing's: its kind 0 is a recursive lock
        return "multiprocessing." + (
            "RLock" if lock.kind == 0 else "Lock" if lock.maxvalue == 1 else "Semaphore")
    return f"threading.{'Lock' if kind == 'lock' else kind}"


@contextlib.contextmanager
def _locks_taken_by_the_answer():
    """The locks in this process's memory that the answer's own code takes in the block
    (threading.Lock, RLock, Semaphore, Condition; asyncio.Lock, Semaphore, Condition), and
    multiprocessing's (Lock, RLock, Semaphore, Condition), named by type, to name them in a
    hint (_AnotherProcess judges; a lock taken inside the stdlib is not seen). A profile hook
    watches this thread and the threads started in the block (the threads of each request's
    sync_to_async, the second event loop's); locks taken by Django, asgiref, asyncio or the
    course's code are left out."""
    found, active = set(), [True]
    previous_here, previous_new = sys.getprofile(), threading.getprofile()

    def hook(frame, event, arg):
        if active[0]:
            if event == "c_call" and isinstance(getattr(arg, "__self__", None), _C_LOCKS):
                if _the_answers(frame):
                    found.add(_c_lock_name(arg.__self__))
            elif event == "call" and frame.f_code.co_name in _LOCK_METHODS:
                owner = frame.f_locals.get("self")
                if isinstance(owner, _PY_LOCKS) and _the_answers(frame.f_back):
                    found.add(f"{type(owner).__module__}.{type(owner).__name__}")
        if previous_here is not None and threading.current_thread() is here:
            previous_here(frame, event, arg)

    here = threading.current_thread()
    sys.setprofile(hook)
    threading.setprofile(hook)
    try:
        yield found
    finally:
        active[0] = False
        threading.setprofile(previous_new)
        sys.setprofile(previous_here)


def _a_fresh_default_executor(loop, thread_name_prefix=""):
    """New threads for the loop's default executor (sync_to_async(thread_sensitive=False)
    and asyncio.to_thread run there) during the block, so that a profile hook set for new
    threads sees them, and a database connection used there is a new one."""
    return default_executor(loop, ThreadPoolExecutor(thread_name_prefix=thread_name_prefix))


def _blocked(blocking, stall):
    return f"blocking calls on the loop: {_named(blocking)}" + (
        f", longest stall {stall:.2f} s" if stall is not None else "")


BLOCKING_HINT = ("blocking calls (time.sleep, requests, a sync cache or ORM call) in async code "
                 "stop every other request on the loop: await the a-methods, or run them with "
                 "sync_to_async")
LOCK_HINT = ("a lock in the process's memory (asyncio.Lock, threading.Lock, ...), like a "
             "one-thread executor or a queue used as a mutex, serializes hits inside one "
             "process only, and a multiprocessing.Lock only among the processes "
             "it is handed to, on one host (uvicorn's workers each import your module and make "
             "their own): a server runs several worker processes, often on several hosts, "
             "sharing one cache. Let the cache count, atomically for every process: "
             "`await sync_to_async(cache.incr)(key)`")


AINCR_HINT = ("`aadd` + `aincr` is right on Django 6.1 with a backend that has its own incr "
              "(local memory, Redis, Memcached: 6.1's aincr hands off to it in one hop), and "
              "loses hits on 5.2, where aincr is an aget then an aset. The exercise asks for a "
              "counter right on both (a project still on 5.2 LTS, an app that supports both), "
              "so this check runs 5.2's aincr on every version (and shows your code 5.2's "
              "django.VERSION; a VERSION imported before the check keeps its own). `await "
              "sync_to_async(cache.incr)(key)` is atomic on both, and on 6.1 it is that same "
              "one hop")


# What the answer reads as django.VERSION during the check: its cache's aincr is 5.2's, so an
# answer that branches on the version (aincr on 6.1 only) takes its 5.2 branch, as on 5.2.
AS_DJANGO_5_2 = (5, 2, 0, "final", 0)


@exercise("09.3", "A hit counter that loses no hit")
async def check_count_hit(check, count_hit):
    must_be_async(check, count_hit, "count_hit", "page")
    outside = caches["default"]  # this thread's cache object before the check swaps its own in
    as_5_2 = django.VERSION if django.VERSION < (6, 1) else AS_DJANGO_5_2
    with override_settings(CACHES=PROBE_CACHES), mock.patch.object(django, "VERSION", as_5_2):
        probe = caches["default"]
        await probe.aclear()
        with _learner_code_watched() as never_awaited, loop_blocking_calls() as blocking:
            built_before = _NetworkLikeLocMemCache.built
            async with Heartbeat(every=0.005) as heartbeat, LoopCPU() as cpu:
                try:
                    first = await count_hit("exercise")
                    error = None
                except Exception as raised:
                    first, error = None, f"{type(raised).__name__}: {raised}"
            built = _NetworkLikeLocMemCache.built - built_before
            loop_cpu, stall = cpu.longest, heartbeat.longest_gap
            for retry in range(1, TIMINGS):  # timed again, on pages of their own, as 09.1 does
                if ((loop_cpu < CPU_STALL and stall < STALL) or blocking or error
                        or hasattr(first, "close")):
                    break
                async with Heartbeat(every=0.005) as heartbeat, LoopCPU() as cpu:
                    with contextlib.suppress(Exception):
                        await count_hit(f"exercise-{retry}")
                loop_cpu, stall = min(loop_cpu, cpu.longest), min(stall, heartbeat.longest_gap)
            if hasattr(first, "close"):  # a coroutine returned, not awaited
                first.close()
                never_awaited.append("count_hit returned a coroutine")
        if never_awaited:
            check.that(False, "", never_awaited[0],
                       hint=FORGOTTEN_AWAIT.format("await every cache call and sync_to_async()"))
        if error and "event loop" in error:
            check.that(False, "", error,
                       hint="a sync cache call blocks the loop on a networked cache: use the "
                       "a-methods, or `await sync_to_async(cache.incr)(key)`")
        check.that(loop_cpu < CPU_STALL,  # CPU work calls nothing the watch names
                   f"no step of a hit held the loop for {CPU_STALL * 1000:.0f} ms of CPU or more",
                   _cpu_on_the_loop("a hit", loop_cpu), hint=CPU_HINT)
        check.that(not blocking and stall < STALL,
                   "a hit never blocked the event loop",
                   f"a hit blocked the event loop ({_blocked(blocking, stall)})",
                   hint=BLOCKING_HINT)
        if first == 1 and await probe.aget("hits:exercise") is None:
            counted_outside = await outside.aget("hits:exercise")
            await outside.adelete("hits:exercise")
            if counted_outside is not None:
                check.that(False, "",
                           "the hit was counted in a cache object taken before the check ran "
                           "(caches['default'] kept in a variable), not in the cache the "
                           "check set up",
                           hint="Django keeps a cache object per thread and per async "
                           "context: look it up when you count, with `from django.core.cache "
                           "import cache` (a proxy that does that) or `caches['default']` "
                           "inside count_hit")
        check.that(first == 1 and await probe.aget("hits:exercise") == 1,
                   "the first hit on a new page counts 1",
                   f"the first hit returned {error or repr(first)}, the counter holds "
                   f"{await probe.aget('hits:exercise')!r}",
                   hint="create the counter when it is missing (cache.aadd(key, 0, timeout=None) "
                   "does that only if it is absent), then add 1 and return the new count")
        await probe.aclear()
        _NetworkLikeLocMemCache.aincr_calls = 0
        _NetworkLikeLocMemCache.ran_in.clear()
        with (_learner_code_watched(), _locks_taken_by_the_answer() as locks,
              _a_fresh_default_executor(asyncio.get_running_loop(), POOL_THREAD),
              loop_blocking_calls() as blocking,
              ThreadPoolExecutor(max_workers=1) as second_process):
            async with LoopCPU() as cpu:
                here, there = await asyncio.gather(
                    _hits(count_hit, HITS // 2),
                    asyncio.get_running_loop().run_in_executor(
                        second_process, _hits_on_another_loop, count_hit, HITS - HITS // 2))
            rounds_cpu = cpu.longest
        results = [*here, *there]
        stored = await probe.aget("hits:home")
        expiry = probe._expire_info.get(probe.make_and_validate_key("hits:home"), 0)
        aincr_used = _NetworkLikeLocMemCache.aincr_calls > 0
        in_the_pool = any(name.startswith(POOL_THREAD) for name in _NetworkLikeLocMemCache.ran_in)
        built_before = _NetworkLikeLocMemCache.built
        with (_learner_code_watched(), _AnotherProcess.counting("hits:shared") as other):
            async with LoopCPU() as cpu:
                shared = await _hits(count_hit, SHARED_HITS, page="shared")
            rounds_cpu = max(rounds_cpu, cpu.longest)
        built += _NetworkLikeLocMemCache.built - built_before
        shared_stored = await probe.aget("hits:shared")
    check.that(rounds_cpu < CPU_STALL,  # this loop's steps (the second loop runs the same code)
               f"no step of the hits that followed held the loop for {CPU_STALL * 1000:.0f} ms "
               "of CPU or more",
               "a later hit computed on the event loop for "
               f"{rounds_cpu * 1000:.0f} ms of CPU in one step: every other request on the "
               "loop waits meanwhile",
               hint=CPU_HINT)
    check.that(not blocking, f"{HITS} hits at once never blocked the event loop",
               f"{HITS} hits at once: " + _blocked(blocking, None), hint=BLOCKING_HINT)
    failures = [r for r in results if isinstance(r, BaseException)]
    lock_bound = any("different event loop" in str(f) or isinstance(f, TimeoutError)
                     for f in failures)
    check.that(not failures, f"{HITS} hits at once, from two event loops, raised nothing",
               f"{len(failures)} of {HITS} concurrent hits raised "
               f"{type(failures[0]).__name__ if failures else ''}: "
               f"{failures[0] if failures else ''}",
               hint=("the hits come from two event loops here, as from two workers: an "
                     "asyncio.Lock made at import belongs to the first loop that waits on it, "
                     "hence the error, and even in one loop it would only serialize one "
                     "process. " + LOCK_HINT) if lock_bound
               else "a hit must not fail because another one is creating the counter")
    counts = sorted(r for r in results if isinstance(r, int))
    if stored == HITS and not failures and counts != list(range(1, HITS + 1)):
        check.that(False, "",
                   f"{HITS} hits at once: the counter holds {HITS}, but the hits did not each "
                   f"get their own count ({len(set(counts))} different counts returned)",
                   hint="return the value the increment gives you: a count read back "
                   "afterwards (`await cache.aget(key)`) may already include later hits")
    check.that(
        stored == HITS and not failures and counts == list(range(1, HITS + 1)),
        f"{HITS} hits at once: the counter holds {HITS}, each hit got its own count",
        f"{HITS} hits at once"
        + (", with Django 5.2's aincr (this check's, on every version)" if aincr_used else "")
        + f": the counter holds {stored!r}",
        hint=AINCR_HINT if aincr_used else
        "create the counter with `await cache.aadd(key, 0, timeout=None)` (it adds only if the "
        "key is missing), then let the backend count: `await sync_to_async(cache.incr)(key)` "
        "runs its own atomic incr. A read, then a write (aget + aset, a check then a create, "
        "or get + set inside one sync_to_async) loses hits that happen in between",
    )
    shared_failures = [r for r in shared if isinstance(r, BaseException)]
    took = f" (your code took {', '.join(sorted(locks))})" if locks else ""
    check.that(
        not shared_failures and shared_stored == SHARED_HITS + other.hits,
        f"{SHARED_HITS} hits while another worker process counted the same page: no hit lost",
        f"another worker process counted {other.hits} hits of the same page between your "
        f"cache calls, and you {SHARED_HITS}: the counter holds {shared_stored!r}, not "
        f"{SHARED_HITS + other.hits}{took}"
        + (f"; {len(shared_failures)} hits raised {shared_failures[0]!r}"
           if shared_failures else ""),
        hint=LOCK_HINT if locks else "nothing in this process reaches another process: a "
        "one-thread executor, a queue used as a mutex or a lock keeps this process's hits "
        "apart, not the other's, which land between your read and your write. Let the cache "
        "count, atomically for every process: `await sync_to_async(cache.incr)(key)`",
    )
    check.that(
        built == 0, "every hit used the request's cache object",
        f"{built} new cache objects were built during {SHARED_HITS + 1} hits, in threads "
        "where the request's one was not visible",
        hint="`caches['default']` and the `cache` proxy keep a cache object per thread and "
        "async context (asgiref's Local): sync_to_async carries the request's into its thread, "
        "asyncio.to_thread and run_in_executor do not (asgiref 3.12+; up to 3.11 "
        "asyncio.to_thread carried it too), so `cache` used in there builds a new "
        "one (with asyncio.to_thread, one per call; with Django's RedisCache each has its own "
        "connection pool, "
        "which nothing closes). Run it with sync_to_async, or look the method up on the loop: "
        "`await sync_to_async(cache.incr)(key)`",
    )
    # A long but finite timeout (10**9 s) is still a timeout: the task asks for none, and
    # Memcached reads a timeout over 30 days as a date (review 09-s34).
    far = expiry is not None and expiry - time.time() > 30 * 24 * 3600
    check.that(expiry is None, "the counter never expires",
               "the counter expires "
               + (f"in {expiry - time.time():.0f} s" if expiry else "at once")
               + ("" if far else ": every hit counted so far is lost with it"),
               hint="a long timeout is still a timeout: `timeout=None` is Django's \"never "
               "expires\" (`await cache.aadd(key, 0, timeout=None)`)" if far else
               "create it with `timeout=None` (`await cache.aadd(key, 0, timeout=None)`): "
               "the default TIMEOUT is 300 s. Only a backend's own incr keeps that (local "
               "memory, Redis, Memcached); the file and database caches' incr, and 5.2's aincr "
               "on every backend, re-save the key with the default TIMEOUT")
    if in_the_pool:  # right here, and on Redis or Memcached; not on the database cache
        check.lines.append(
            "  note: your cache calls ran in the event loop's default executor (asyncio.to_thread, "
            "run_in_executor or sync_to_async(..., thread_sensitive=False)): right for this cache, "
            "and for Redis or Memcached; on the database cache each of those threads would open "
            "a database connection that nothing closes. `sync_to_async(cache.incr)` runs in the "
            "request's thread, whose connections Django closes")
