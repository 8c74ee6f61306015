"""Lesson 09's exercise checks: the reference answers pass; placeholders and the wrong answers
learners write fail with a hint that names the mistake; right answers written differently pass."""

import asyncio
import hashlib
import json
import multiprocessing
import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from time import sleep

from asgiref.sync import sync_to_async
from django.http import JsonResponse


def run(check, answer):
    return asyncio.run(check(answer))


def no_never_awaited_warning(recwarn):
    return not [w for w in recwarn if "never awaited" in str(w.message)]


# --- 09.1 -------------------------------------------------------------------------------------


async def whoami_reference(request):
    user = await request.auser()
    return JsonResponse({"username": user.username if user.is_authenticated else None})


def _login_required(view):  # imported on use: the project is set up by the fixture
    from django.contrib.auth.decorators import login_required

    return login_required(view)


async def whoami_for_logged_in_only(request):  # anonymous visitors redirected: 302
    return await _login_required(whoami_reference)(request)


async def whoami_aget_user(request):  # right, written differently
    from django.contrib.auth import aget_user

    user = await aget_user(request)
    return JsonResponse({"username": user.get_username() or None})


async def whoami_in_a_thread(request):  # right: the sync lookup, in a thread
    name = await sync_to_async(lambda: request.user.username)()
    return JsonResponse({"username": name or None})


async def whoami_user_in_a_thread(request):  # right: the whole lookup in one thread hop
    return JsonResponse({"username": await sync_to_async(lambda: request.user.username or None)()})


async def whoami_in_a_pool_thread(request):  # the ORM in the loop's pool: never closed there
    name = await sync_to_async(lambda: request.user.username, thread_sensitive=False)()
    return JsonResponse({"username": name or None})


async def whoami_to_thread(request):  # the same pool, by asyncio.to_thread
    name = await asyncio.to_thread(lambda: request.user.username)
    return JsonResponse({"username": name or None})


async def whoami_manual_session(request):  # skips the session hash, is_active, the backend
    from django.contrib.auth import SESSION_KEY
    from django.contrib.auth.models import User

    uid = await request.session.aget(SESSION_KEY)
    user = await User.objects.filter(pk=uid).afirst() if uid else None
    return JsonResponse({"username": user.username if user else None})


async def whoami_manual_session_hash_checked(request):  # still skips is_active, the backend
    from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User

    uid = await request.session.aget(SESSION_KEY)
    user = await User.objects.filter(pk=uid).afirst() if uid else None
    if user and await request.session.aget(HASH_SESSION_KEY) != user.get_session_auth_hash():
        user = None
    return JsonResponse({"username": user.username if user else None})


async def whoami_remembered_in_the_session(request):  # a ban or a password change is missed
    username = await request.session.aget("who")
    if username is None:
        user = await request.auser()
        if not user.is_authenticated:
            return JsonResponse({"username": None})
        username = user.username
        await request.session.aset("who", username)
    return JsonResponse({"username": username})


_WHO_BY_SESSION = {}


async def whoami_remembered_by_cookie(request):  # the same, in the process's memory
    from django.conf import settings

    key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if key not in _WHO_BY_SESSION:
        user = await request.auser()
        _WHO_BY_SESSION[key] = user.username if user.is_authenticated else None
    return JsonResponse({"username": _WHO_BY_SESSION[key]})


async def whoami_lazy_user(request):  # works for anonymous users only
    return JsonResponse({"username": request.user.username or None})


async def whoami_forgot_await(request):
    user = request.auser()
    return JsonResponse({"username": user.username if user.is_authenticated else None})


async def whoami_str(request):  # str(AnonymousUser()) is "AnonymousUser"
    return JsonResponse({"username": str(await request.auser())})


async def whoami_empty_string(request):  # "" instead of null for the anonymous user
    return JsonResponse({"username": (await request.auser()).username})


async def whoami_created(request):  # the right body, with 201
    user = await request.auser()
    return JsonResponse({"username": user.username if user.is_authenticated else None},
                        status=201)


async def whoami_sleeps_on_the_loop(request):  # right answer, but blocks every request
    time.sleep(0.2)
    user = await request.auser()
    return JsonResponse({"username": user.username if user.is_authenticated else None})


async def whoami_short_sleep_on_the_loop(request):  # too short to time: counted instead
    time.sleep(0.01)
    user = await request.auser()
    return JsonResponse({"username": user.username or None})


async def whoami_waits_on_an_event(request):  # blocks the loop under another name
    threading.Event().wait(0.05)
    user = await request.auser()
    return JsonResponse({"username": user.username if user.is_authenticated else None})


async def whoami_sleep_imported_by_name(request):  # `from time import sleep`: still blocking
    sleep(0.01)
    user = await request.auser()
    return JsonResponse({"username": user.username if user.is_authenticated else None})


async def whoami_hashes_on_the_loop(request):  # CPU work on the loop: no call to name
    hashlib.pbkdf2_hmac("sha256", b"secret", b"salt", 400_000)  # ~0.1 s of CPU
    user = await request.auser()
    return JsonResponse({"username": user.username if user.is_authenticated else None})


async def whoami_marks_every_visitor(request):  # review 09-s33b: a session for everyone
    await request.session.aset("seen", True)
    user = await request.auser()
    return JsonResponse({"username": user.username if user.is_authenticated else None})


def whoami_sync(request):
    return JsonResponse({"username": None})


async def whoami_guard_off(request):  # silences SynchronousOnlyOperation: sync ORM on the loop
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        return JsonResponse({"username": request.user.username or None})
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


async def whoami_guard_left_off(request):  # the same, and it stays off for the whole kernel
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
    return JsonResponse({"username": request.user.username or None})


def guard_off_in_an_earlier_cell(check, answer, value="false"):
    """The verdict on ``answer`` with the variable set before the check (any non-empty value
    switches Django's guard off), and the variable's value after the check."""
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = value
    try:
        return run(check, answer), os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def assert_guard_refused(verdict, where, the_async_way):
    text = str(verdict)
    assert not verdict and verdict.solved, text
    for part in ("Django's guard was switched off", where, "it is not a fix",
                 "blocks every request", "not safe to use from several at once", the_async_way):
        assert part in text, (part, text)


def test_whoami(project, recwarn):
    from tutorial_project.course.exercises.lesson09 import check_whoami_view

    for right in (whoami_reference, whoami_aget_user, whoami_in_a_thread,
                  whoami_user_in_a_thread):
        assert run(check_whoami_view, right), right.__name__
    redirected = run(check_whoami_view, whoami_for_logged_in_only)
    assert not redirected and "redirected an anonymous visitor (302)" in str(redirected), str(
        redirected)
    manual = run(check_whoami_view, whoami_manual_session)
    assert not manual and "password changed after login" in str(manual), str(manual)
    assert "request.auser()" in str(manual) and "aget_user()" in str(manual), str(manual)
    for remembers in (whoami_remembered_in_the_session, whoami_remembered_by_cookie):
        _WHO_BY_SESSION.clear()
        verdict = run(check_whoami_view, remembers)
        assert not verdict and "password changed after login" in str(verdict), str(verdict)
        assert "an earlier request" in str(verdict), str(verdict)
    manual = run(check_whoami_view, whoami_manual_session_hash_checked)
    assert not manual and "account deactivated after login" in str(manual), str(manual)
    assert "request.auser()" in str(manual), str(manual)
    placeholder = run(check_whoami_view, ...)
    assert not placeholder and not placeholder.solved
    lazy = run(check_whoami_view, whoami_lazy_user)
    assert not lazy and "request.auser()" in str(lazy) and "lazy-user trap" in str(lazy)
    forgot = run(check_whoami_view, whoami_forgot_await)
    assert not forgot and "`await` is missing" in str(forgot)
    for wrong in (whoami_str, whoami_empty_string):
        verdict = run(check_whoami_view, wrong)
        assert not verdict and 'JsonResponse({"username": None})' in str(verdict), wrong.__name__
    marks = run(check_whoami_view, whoami_marks_every_visitor)
    assert not marks and "an anonymous visitor got a session cookie" in str(marks), str(marks)
    created = run(check_whoami_view, whoami_created)  # the hint names the status, not the body
    assert not created and "the status is not 200" in str(created), str(created)
    for blocking in (whoami_sleeps_on_the_loop, whoami_short_sleep_on_the_loop,
                     whoami_waits_on_an_event, whoami_sleep_imported_by_name):
        verdict = run(check_whoami_view, blocking)
        assert not verdict and "blocked the event loop" in str(verdict), blocking.__name__
    verdict = run(check_whoami_view, whoami_hashes_on_the_loop)  # review 09-s31b #3
    assert not verdict and "ms of CPU in one step" in str(verdict), str(verdict)
    assert "sync_to_async" in str(verdict), str(verdict)
    verdict = run(check_whoami_view, whoami_waits_on_an_event)
    assert "Event.wait" in str(verdict), str(verdict)
    lazy = run(check_whoami_view, whoami_lazy_user)  # a visitor with a session fails too
    assert "anonymous with a session" in str(lazy) and "logged in or not" in str(lazy), str(lazy)
    sync = run(check_whoami_view, whoami_sync)
    assert not sync and "async def whoami_view" in str(sync)
    for pooled in (whoami_in_a_pool_thread, whoami_to_thread):
        verdict = run(check_whoami_view, pooled)
        text = str(verdict)
        assert not verdict and "default executor" in text, (pooled.__name__, text)
        assert "stays open" in text and "thread_sensitive=True" in text, text
    assert no_never_awaited_warning(recwarn)


def test_whoami_refuses_the_guard_switched_off(project):
    from tutorial_project.course.exercises.lesson09 import check_whoami_view

    for wrong in (whoami_guard_off, whoami_guard_left_off):
        verdict = run(check_whoami_view, wrong)
        assert_guard_refused(verdict, "was set by your code", "await request.auser()")
        assert "DJANGO_ALLOW_ASYNC_UNSAFE" not in os.environ, wrong.__name__
    # set in an earlier cell: refused even with a right view, and put back as it was
    verdict, after = guard_off_in_an_earlier_cell(check_whoami_view, whoami_reference)
    assert_guard_refused(verdict, "='false' was set before the check ran", "request.auser()")
    assert after == "false"
    verdict, after = guard_off_in_an_earlier_cell(check_whoami_view, whoami_lazy_user, "")
    assert not verdict and "guard" not in str(verdict) and after == "", str(verdict)  # "": on
    assert run(check_whoami_view, whoami_reference)


# --- 09.2 -------------------------------------------------------------------------------------


async def cart_reference(request):
    cart = await request.session.aget("cart", [])
    sku = request.GET.get("add")
    if sku:
        cart = [*cart, sku]
        await request.session.aset("cart", cart)
    return JsonResponse({"cart": cart})


async def cart_copied_then_appended(request):  # right, written differently
    cart = list(await request.session.aget("cart") or [])
    if sku := request.GET.get("add"):
        cart.append(sku)
        await request.session.aset("cart", cart)
    return JsonResponse({"cart": cart})


async def cart_saved_on_every_request(request):  # review 09-s32b: a session for every visitor
    cart = await request.session.aget("cart", [])
    if request.GET.get("add"):
        cart.append(request.GET["add"])
    await request.session.aset("cart", cart)
    return JsonResponse({"cart": cart})


async def cart_sync_session(request):  # the sync session API: its load fails on the loop
    cart = request.session.get("cart", [])  # (only once a cookie brings a session to load)
    if request.GET.get("add"):
        cart = [*cart, request.GET["add"]]
        request.session["cart"] = cart
    return JsonResponse({"cart": cart})


async def cart_forgot_await(request):
    cart = await request.session.aget("cart", [])
    if request.GET.get("add"):
        cart = [*cart, request.GET["add"]]
        request.session.aset("cart", cart)  # never awaited: nothing stored
    return JsonResponse({"cart": cart})


async def cart_mutated_in_place(request):  # the session is not marked modified: not saved
    cart = await request.session.aget("cart")
    if cart is None:
        cart = []
        await request.session.aset("cart", cart)
    if request.GET.get("add"):
        cart.append(request.GET["add"])
    return JsonResponse({"cart": cart})


async def cart_sorted(request):  # stored every time, but answered in sorted order
    cart = await request.session.aget("cart", [])
    if request.GET.get("add"):
        cart = sorted([*cart, request.GET["add"]])
        await request.session.aset("cart", cart)
    return JsonResponse({"cart": cart})


async def cart_in_a_thread(request):  # right: sync session code, kept off the loop
    def add():
        cart = request.session.get("cart", [])
        if request.GET.get("add"):
            cart = [*cart, request.GET["add"]]
            request.session["cart"] = cart
        return cart

    return JsonResponse({"cart": await sync_to_async(add)()})


def _add_to_the_sync_session(request):
    cart = request.session.get("cart", [])
    if request.GET.get("add"):
        cart = [*cart, request.GET["add"]]
        request.session["cart"] = cart
    return cart


async def cart_in_a_pool_thread(request):  # the session's query in the loop's pool: never closed
    cart = await sync_to_async(_add_to_the_sync_session, thread_sensitive=False)(request)
    return JsonResponse({"cart": cart})


async def cart_to_thread(request):  # the same pool, by asyncio.to_thread
    return JsonResponse({"cart": await asyncio.to_thread(_add_to_the_sync_session, request)})


async def cart_appends_an_empty_sku(request):  # "add" in request.GET: ?add= appends ""
    cart = await request.session.aget("cart", [])
    if "add" in request.GET:
        cart = [*cart, request.GET["add"]]
        await request.session.aset("cart", cart)
    return JsonResponse({"cart": cart})


async def cart_checks_the_product_in_a_pool_thread(request):
    """The async session, but the learner's own query (is the SKU sold?) in the loop's pool:
    its connection is the learner's, not the session's, and nothing closes it either."""
    from tutorial_project.catalog.models import Product

    cart = await request.session.aget("cart", [])
    sku = request.GET.get("add")
    if sku and await asyncio.to_thread(lambda: Product.objects.filter(sku=sku).exists()):
        cart = [*cart, sku]
        await request.session.aset("cart", cart)
    return JsonResponse({"cart": cart})


async def cart_in_the_request_thread(request):  # right, written differently: thread_sensitive
    cart = await sync_to_async(_add_to_the_sync_session, thread_sensitive=True)(request)
    return JsonResponse({"cart": cart})


async def cart_de_duplicated(request):  # drops the repeated SKU
    cart = await request.session.aget("cart", [])
    sku = request.GET.get("add")
    if sku and sku not in cart:
        cart = [*cart, sku]
        await request.session.aset("cart", cart)
    return JsonResponse({"cart": cart})


async def cart_in_a_cookie(request):  # a cookie of its own: the visitor can change it
    cart = json.loads(request.COOKIES.get("cart", "[]"))
    if request.GET.get("add"):
        cart = [*cart, request.GET["add"]]
    response = JsonResponse({"cart": cart})
    response.set_cookie("cart", json.dumps(cart))
    return response


async def cart_under_another_key(request):  # the session, but not the key "cart"
    cart = await request.session.aget("basket", [])
    if request.GET.get("add"):
        cart = [*cart, request.GET["add"]]
        await request.session.aset("basket", cart)
    return JsonResponse({"cart": cart})


async def cart_created(request):  # the right cart, but 201 for every request
    response = await cart_reference(request)
    response.status_code = 201
    return response


async def cart_404_without_an_add(request):  # "every request answers" the cart: not an error
    response = await cart_reference(request)
    if not request.GET.get("add"):
        response.status_code = 404
    return response


async def cart_hashes_on_the_loop(request):  # review 09-s33 F1: ~0.3 s of CPU on the loop
    hashlib.pbkdf2_hmac("sha256", b"secret", b"salt", 1_000_000)  # what make_password does
    return await cart_reference(request)


async def cart_hashes_in_a_thread(request):  # right: the same hash, off the loop
    await asyncio.to_thread(hashlib.pbkdf2_hmac, "sha256", b"secret", b"salt", 100_000)
    return await cart_reference(request)


SHARED_CART = []


async def cart_in_a_global(request):
    if request.GET.get("add"):
        SHARED_CART.append(request.GET["add"])
    return JsonResponse({"cart": SHARED_CART})


async def cart_sleeps_on_the_loop(request):  # right cart, but blocks every request
    sleep(0.01)
    return await cart_reference(request)


async def cart_guard_off(request):  # the sync session API with the guard switched off
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        return await cart_sync_session(request)
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


async def cart_guard_off_in_a_thread(request):  # switched off from sync code, in a thread
    def switch_off():
        os.environ.update(DJANGO_ALLOW_ASYNC_UNSAFE="yes")

    await sync_to_async(switch_off)()
    try:
        return await cart_sync_session(request)
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE")


def test_cart_refuses_the_guard_switched_off(project):
    from tutorial_project.course.exercises.lesson09 import check_cart_view

    for wrong in (cart_guard_off, cart_guard_off_in_a_thread):
        verdict = run(check_cart_view, wrong)
        assert_guard_refused(verdict, "was set by your code", "await request.session.aset")
        assert "DJANGO_ALLOW_ASYNC_UNSAFE" not in os.environ, wrong.__name__
    verdict, after = guard_off_in_an_earlier_cell(check_cart_view, cart_reference, "0")
    assert_guard_refused(verdict, "='0' was set before the check ran", "request.session.aget")
    assert after == "0"
    assert run(check_cart_view, cart_copied_then_appended)


def test_cart(project, recwarn):
    from tutorial_project.course.exercises.lesson09 import check_cart_view

    assert run(check_cart_view, cart_reference)
    assert run(check_cart_view, cart_copied_then_appended)
    assert run(check_cart_view, cart_in_a_thread)
    assert run(check_cart_view, cart_in_the_request_thread)
    for wrong in (cart_in_a_pool_thread, cart_to_thread):
        pool = run(check_cart_view, wrong)
        assert not pool and "database connection(s) in the event loop's default executor" in str(
            pool) and "request.session.aget" in str(pool), (wrong.__name__, str(pool))
    empty = run(check_cart_view, cart_appends_an_empty_sku)
    assert not empty and "?add= with no SKU" in str(empty) and "non-empty SKU" in str(empty)
    own = run(check_cart_view, cart_checks_the_product_in_a_pool_thread)
    assert not own and "an ORM call of your own" in str(own), str(own)
    every = run(check_cart_view, cart_saved_on_every_request)
    assert not every and "got a session cookie" in str(every), str(every)
    assert "inside the `if`" in str(every), str(every)
    unique = run(check_cart_view, cart_de_duplicated)
    assert not unique and "repeats included" in str(unique), str(unique)
    assert not run(check_cart_view, ...).solved
    sync = run(check_cart_view, cart_sync_session)
    assert not sync and "request.session.aget" in str(sync)
    forgot = run(check_cart_view, cart_forgot_await)
    assert not forgot and "`await` is missing" in str(forgot)
    blocking = run(check_cart_view, cart_sleeps_on_the_loop)
    assert not blocking and "blocking calls on it: time.sleep" in str(blocking), str(blocking)
    hashed = run(check_cart_view, cart_hashes_on_the_loop)  # review 09-s33 F1
    text = str(hashed)
    assert not hashed and "ms of CPU in one step" in text and "never blocked" not in text, text
    assert "CPU work belongs in a thread" in text and "asyncio.to_thread" in text, text
    assert run(check_cart_view, cart_hashes_in_a_thread)
    in_place = run(check_cart_view, cart_mutated_in_place)
    assert not in_place and "does not mark the session as modified" in str(in_place)
    cookie = run(check_cart_view, cart_in_a_cookie)
    assert not cookie and "no session cookie" in str(cookie), str(cookie)
    basket = run(check_cart_view, cart_under_another_key)
    assert not basket and "'basket'" in str(basket) and 'key "cart"' in str(basket), str(basket)
    ordered = run(check_cart_view, cart_sorted)
    assert not ordered and "do not sort" in str(ordered), str(ordered)
    created = run(check_cart_view, cart_created)
    assert not created and "the status is not 200" in str(created), str(created)
    assert "does not mark the session as modified" not in str(created), str(created)
    no_add = run(check_cart_view, cart_404_without_an_add)
    assert not no_add and "?add= with no SKU: 404" in str(no_add), str(no_add)
    assert "answer it 200" in str(no_add), str(no_add)
    SHARED_CART.clear()
    shared = run(check_cart_view, cart_in_a_global)
    assert not shared and "not in a global variable" in str(shared)
    assert no_never_awaited_warning(recwarn)


# --- 09.3 -------------------------------------------------------------------------------------


def default_cache():
    from django.core.cache import cache

    return cache


async def count_reference(page):
    cache, key = default_cache(), f"hits:{page}"
    await cache.aadd(key, 0, timeout=None)
    return await sync_to_async(cache.incr)(key)


async def count_that_expires(page):  # right count, but gone with every hit 300 s later
    cache, key = default_cache(), f"hits:{page}"
    await cache.aadd(key, 0)
    return await sync_to_async(cache.incr)(key)


async def count_that_expires_in_31_years(page):  # a long timeout is still not "never"
    cache, key = default_cache(), f"hits:{page}"
    await cache.aadd(key, 0, timeout=10**9)
    return await sync_to_async(cache.incr)(key)


async def count_touches_on_the_loop(page):  # a sync touch(): a round trip on the loop
    cache, key = default_cache(), f"hits:{page}"
    await cache.aadd(key, 0)
    cache.touch(key, None)
    return await sync_to_async(cache.incr)(key)


async def count_add_or_incr(page):  # right, written differently: one hop for a new counter
    cache, key = default_cache(), f"hits:{page}"
    if await cache.aadd(key, 1, None):
        return 1
    return await sync_to_async(cache.incr)(key)


async def count_in_one_thread(page):  # right: both sync calls in one thread hop
    cache, key = default_cache(), f"hits:{page}"

    def add_then_incr():
        cache.add(key, 0, timeout=None)
        return cache.incr(key)

    return await sync_to_async(add_then_incr)()


async def count_locked_elsewhere(page):  # right, written differently: not thread-sensitive
    cache, key = default_cache(), f"hits:{page}"
    if await cache.aadd(key, 1, timeout=None):
        return 1
    return await sync_to_async(cache.incr, thread_sensitive=False)(key)


async def count_get_set_in_one_hop(page):  # read-modify-write inside one thread hop: loses hits
    cache, key = default_cache(), f"hits:{page}"

    def bump():
        count = cache.get(key, 0) + 1
        cache.set(key, count)
        return count

    return await sync_to_async(bump)()


async def count_get_then_set(page):  # read-modify-write: loses hits
    cache, key = default_cache(), f"hits:{page}"
    count = await cache.aget(key, 0) + 1
    await cache.aset(key, count)
    return count


async def count_with_aincr(page):  # atomic on 6.1's LocMemCache only; loses hits on 5.2
    cache, key = default_cache(), f"hits:{page}"
    await cache.aadd(key, 0)
    return await cache.aincr(key)


async def count_aincr_on_6_1_only(page):  # right on both: on 6.1 aincr is incr in one hop
    import django

    cache, key = default_cache(), f"hits:{page}"
    await cache.aadd(key, 0, timeout=None)
    if django.VERSION >= (6, 1):
        return await cache.aincr(key)
    return await sync_to_async(cache.incr)(key)


async def count_with_aadd_then_aincr(page):  # atomic on 6.1 (LocMem, Redis, Memcached), not 5.2
    cache, key = default_cache(), f"hits:{page}"
    await cache.aadd(key, 0, timeout=None)
    return await cache.aincr(key)


async def count_checks_then_creates(page):  # a check, then a create: two hits can both create
    cache, key = default_cache(), f"hits:{page}"
    if not await cache.ahas_key(key):
        await cache.aset(key, 0, timeout=None)
    return await sync_to_async(cache.incr)(key)


async def count_reads_back(page):  # atomic increment, then returns a count read back later
    cache, key = default_cache(), f"hits:{page}"
    await cache.aadd(key, 0, timeout=None)
    await sync_to_async(cache.incr)(key)
    return await cache.aget(key)


async def count_sync_on_the_loop(page):  # sync cache calls in async code
    cache, key = default_cache(), f"hits:{page}"
    cache.add(key, 0)
    return cache.incr(key)


async def count_forgot_await(page):
    cache, key = default_cache(), f"hits:{page}"
    await cache.aadd(key, 0)
    return sync_to_async(cache.incr)(key)


async def count_swallowed_missing_key(page):  # incr, and on "not found" set 1: a race
    cache, key = default_cache(), f"hits:{page}"
    try:
        return await sync_to_async(cache.incr)(key)
    except ValueError:
        await cache.aset(key, 1)
        return 1


async def count_sleeps_on_the_loop(page):  # right count, but blocks the loop on every hit
    time.sleep(0.001)
    return await count_reference(page)


async def count_waits_on_an_event(page):  # right count, but blocks the loop on every hit
    threading.Event().wait(0.001)
    return await count_reference(page)


HITS_LOCK = asyncio.Lock()  # one process's lock: nothing to a second worker


async def count_under_a_module_lock(page):  # counts right on one event loop only
    cache, key = default_cache(), f"hits:{page}"
    async with HITS_LOCK:
        count = await cache.aget(key, 0) + 1
        await cache.aset(key, count)
    return count


THREAD_LOCK = threading.Lock()  # one process's lock too, shared by its threads and loops


def _get_set_under_a_thread_lock(key):
    with THREAD_LOCK:
        count = default_cache().get(key, 0) + 1
        default_cache().set(key, count)
        return count


async def count_under_a_thread_lock(page):  # counts right in one process only
    return await sync_to_async(_get_set_under_a_thread_lock)(f"hits:{page}")


def _get_set_under_a_thread_lock_with_a_version(key):  # review 09-s33c: version=1, the default
    with THREAD_LOCK:
        count = default_cache().get(key, 0, version=1) + 1
        default_cache().set(key, count, version=1)
        return count


async def count_under_a_thread_lock_with_a_version(page):  # the same entry: loses hits too
    return await sync_to_async(_get_set_under_a_thread_lock_with_a_version)(f"hits:{page}")


RLOCK = threading.RLock()


def _acquired_by_hand(key):  # the same, with acquire/release and an RLock
    RLOCK.acquire()
    try:
        count = default_cache().get(key, 0) + 1
        default_cache().set(key, count)
    finally:
        RLOCK.release()
    return count


async def count_under_an_rlock_in_any_thread(page):  # the loop's default executor runs it
    return await sync_to_async(_acquired_by_hand, thread_sensitive=False)(f"hits:{page}")


MP_LOCK = multiprocessing.Lock()  # one host's semaphore: uvicorn's workers each make their own


def _get_set_under_a_multiprocessing_lock(key):
    with MP_LOCK:
        count = default_cache().get(key, 0) + 1
        default_cache().set(key, count, timeout=None)
        return count


async def count_under_a_multiprocessing_lock(page):  # serializes this process's hits only
    return await sync_to_async(_get_set_under_a_multiprocessing_lock)(f"hits:{page}")


MP_SEMAPHORE = multiprocessing.Semaphore(1)


def _acquired_mp_semaphore_by_hand(key):
    MP_SEMAPHORE.acquire()
    try:
        count = default_cache().get(key, 0) + 1
        default_cache().set(key, count, timeout=None)
    finally:
        MP_SEMAPHORE.release()
    return count


async def count_under_a_multiprocessing_semaphore(page):
    return await sync_to_async(_acquired_mp_semaphore_by_hand, thread_sensitive=False)(
        f"hits:{page}")


ONE_THREAD = ThreadPoolExecutor(max_workers=1)  # serializes this process's hits, no lock object


async def count_in_a_one_thread_executor(page):  # get + set, one at a time in this process only
    key = f"hits:{page}"

    def get_then_set():
        count = default_cache().get(key, 0) + 1
        default_cache().set(key, count, timeout=None)
        return count

    return await asyncio.get_running_loop().run_in_executor(ONE_THREAD, get_then_set)


TOKEN = queue.Queue(maxsize=1)  # a mutex made of a queue: its lock is taken inside queue.py
TOKEN.put(None)


async def count_under_a_queue_mutex(page):
    key = f"hits:{page}"

    def get_then_set():
        TOKEN.get()
        try:
            count = default_cache().get(key, 0) + 1
            default_cache().set(key, count, timeout=None)
            return count
        finally:
            TOKEN.put(None)

    return await sync_to_async(get_then_set, thread_sensitive=False)()


async def count_has_key_then_incr(page):  # right, written differently: has_key, add, incr
    cache, key = default_cache(), f"hits:{page}"
    if not await cache.ahas_key(key):
        await cache.aadd(key, 0, timeout=None)
    return await sync_to_async(cache.incr)(key)


def _add_then_incr(key):  # `cache` looked up in the thread that runs it
    default_cache().add(key, 0, timeout=None)
    return default_cache().incr(key)


async def count_to_thread(page):  # a new cache object for every call
    return await asyncio.to_thread(_add_then_incr, f"hits:{page}")


async def count_run_in_executor(page):  # a new cache object in each pool thread, never closed
    return await asyncio.get_running_loop().run_in_executor(None, _add_then_incr, f"hits:{page}")


async def count_to_thread_bound(page):  # right: `cache.incr` is looked up on the loop
    cache, key = default_cache(), f"hits:{page}"
    await cache.aadd(key, 0, timeout=None)
    return await asyncio.to_thread(cache.incr, key)


def test_count_hit_refuses_a_cache_object_built_in_a_pool_thread(project):
    import asgiref

    from tutorial_project.course.exercises.lesson09 import check_count_hit

    # asgiref 3.12 made Local ignore values a thread inherits: up to 3.11, asyncio.to_thread's
    # copied context carried the request's cache object, and count_to_thread built none
    assert tuple(map(int, asgiref.__version__.split(".")[:2])) >= (3, 12), asgiref.__version__
    for pooled in (count_to_thread, count_run_in_executor):
        verdict = run(check_count_hit, pooled)
        text = str(verdict)
        assert not verdict and "new cache objects were built" in text, (pooled.__name__, text)
        assert "asyncio.to_thread and run_in_executor do not" in text, text
        assert "loses hits" not in text, text  # it counts right: only the objects are wrong
    verdict = run(check_count_hit, count_to_thread_bound)
    assert verdict, str(verdict)


POOL_NOTE = "note: your cache calls ran in the event loop's default executor"


def test_count_hit_notes_the_default_executor(project):
    """Right on this cache (and Redis, Memcached), but on the database cache each pool thread
    would open a connection nothing closes: accepted, with a note that says so."""
    from tutorial_project.course.exercises.lesson09 import check_count_hit

    for pooled in (count_to_thread_bound, count_locked_elsewhere):
        verdict = run(check_count_hit, pooled)
        text = str(verdict)
        assert verdict and POOL_NOTE in text and "database cache" in text, (pooled.__name__, text)
    for in_the_request in (count_reference, count_in_one_thread):
        verdict = run(check_count_hit, in_the_request)
        assert verdict and POOL_NOTE not in str(verdict), (in_the_request.__name__, str(verdict))


def test_count_hit_explains_refusing_aincr(project):
    """aadd + aincr is right on 6.1 and loses hits on 5.2: refused on both, and the hint says
    which version it is right on and why the exercise asks for both."""
    from tutorial_project.course.exercises.lesson09 import check_count_hit

    verdict = run(check_count_hit, count_with_aadd_then_aincr)
    text = str(verdict)
    assert not verdict and "with Django 5.2's aincr (this check's, on every version)" in text, text
    assert "is right on Django 6.1" in text and "loses hits on 5.2" in text, text
    assert "5.2 LTS" in text and "sync_to_async(cache.incr)(key)` is atomic on both" in text, text
    verdict = run(check_count_hit, count_checks_then_creates)  # no aincr: the create is the bug
    text = str(verdict)
    assert not verdict and "loses hits" in text and "right on Django 6.1" not in text, text
    assert text.split("hint: ")[-1].startswith("create the counter with `await cache.aadd("), text


def test_count_hit_refuses_serializing_in_this_process_without_a_lock(project):
    from tutorial_project.course.exercises.lesson09 import check_count_hit

    for serialized in (count_in_a_one_thread_executor, count_under_a_queue_mutex):
        verdict = run(check_count_hit, serialized)
        text = str(verdict)
        assert not verdict and "another worker process counted" in text, (serialized.__name__,
                                                                           text)
        assert "one-thread executor" in text and "sync_to_async(cache.incr)" in text, text
    assert run(check_count_hit, count_has_key_then_incr)


def test_count_hit_refuses_multiprocessing_locks(project):
    from tutorial_project.course.exercises.lesson09 import check_count_hit

    for locked, name in [
            (count_under_a_multiprocessing_lock, "took multiprocessing.synchronize.Lock"),
            (count_under_a_multiprocessing_semaphore, "took multiprocessing.Semaphore")]:
        verdict = run(check_count_hit, locked)
        text = str(verdict)
        assert not verdict and name in text and "multiprocessing.Lock only among" in text, text
    assert run(check_count_hit, count_reference)


def test_count_hit_names_a_cache_taken_before_the_check(project):
    from django.core.cache import caches

    from tutorial_project.course.exercises.lesson09 import check_count_hit

    kept = caches["default"]  # as a learner's earlier cell keeps it

    async def count_in_a_kept_cache(page):  # counts right, in a cache object kept from before
        key = f"hits:{page}"
        await kept.aadd(key, 0, timeout=None)
        return await sync_to_async(kept.incr)(key)

    verdict = run(check_count_hit, count_in_a_kept_cache)
    assert not verdict and "taken before the check ran" in str(verdict), str(verdict)
    assert "from django.core.cache import cache" in str(verdict), str(verdict)
    assert "create the counter" not in str(verdict), str(verdict)
    assert run(kept.aget, "hits:exercise") is None  # the check cleaned up after it


def _spin(seconds):  # a fixed amount of work, as a hash is: CPU seconds, whatever the load
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


async def count_spins_on_the_loop(page):  # review 09-s33 F1: 200 ms of CPU on every hit
    _spin(0.2)
    return await count_reference(page)


HITS_SERVED = threading.local()  # per thread: per event loop, as per worker


async def count_spins_now_and_then(page):  # 100 ms of CPU on every 25th hit a loop serves
    HITS_SERVED.n = getattr(HITS_SERVED, "n", 0) + 1  # (the first hit passes)
    if HITS_SERVED.n % 25 == 0:
        _spin(0.1)
    return await count_reference(page)


def test_count_hit_refuses_cpu_work_on_the_loop(project):
    from tutorial_project.course.exercises.lesson09 import check_count_hit

    started = time.perf_counter()
    verdict = run(check_count_hit, count_spins_on_the_loop)
    text = str(verdict)
    assert not verdict and "a hit computed on the event loop for" in text, text
    assert "never blocked" not in text and "CPU work belongs in a thread" in text, text
    assert time.perf_counter() - started < 10, "refused at the first hit, not after 220 more"
    HITS_SERVED.n = 0
    verdict = run(check_count_hit, count_spins_now_and_then)
    text = str(verdict)
    assert not verdict and "a later hit computed on the event loop" in text, text


def test_count_hit(project, recwarn):
    from tutorial_project.course.exercises.lesson09 import check_count_hit

    for right in (count_reference, count_add_or_incr, count_in_one_thread, count_locked_elsewhere,
                  count_aincr_on_6_1_only):
        verdict = run(check_count_hit, right)
        assert verdict, (right.__name__, str(verdict))
    assert not run(check_count_hit, ...).solved
    wrong_answers = (count_get_then_set, count_with_aincr, count_swallowed_missing_key,
                     count_get_set_in_one_hop)
    for wrong in wrong_answers:
        verdict = run(check_count_hit, wrong)
        assert not verdict and "loses hits" in str(verdict), (wrong.__name__, str(verdict))
    verdict = run(check_count_hit, count_with_aincr)  # the hint says which aincr was run
    assert "runs 5.2's aincr" in str(verdict), str(verdict)
    assert "with Django 5.2's aincr (this check's, on every version)" in str(verdict), str(verdict)
    verdict = run(check_count_hit, count_reads_back)  # the counter is right, the counts are not
    assert not verdict and "did not each get their own count" in str(verdict), str(verdict)
    assert "loses hits" not in str(verdict), str(verdict)
    verdict = run(check_count_hit, count_sync_on_the_loop)
    assert not verdict and "blocks the loop" in str(verdict)
    verdict = run(check_count_hit, count_sleeps_on_the_loop)
    assert not verdict and "blocking calls on the loop: time.sleep" in str(verdict), str(verdict)
    verdict = run(check_count_hit, count_waits_on_an_event)
    assert not verdict and "Event.wait" in str(verdict), str(verdict)
    verdict = run(check_count_hit, count_under_a_module_lock)
    assert not verdict and "one process only" in str(verdict), str(verdict)
    assert "belongs to the first loop" in str(verdict), str(verdict)
    expires = run(check_count_hit, count_that_expires)
    assert not expires and "timeout=None" in str(expires), str(expires)
    assert "the default TIMEOUT is 300 s" in str(expires), str(expires)
    touched = run(check_count_hit, count_touches_on_the_loop)
    assert not touched and "cache.touch() ran on the event loop" in str(touched), str(touched)
    far = run(check_count_hit, count_that_expires_in_31_years)
    assert not far and "a long timeout is still a timeout" in str(far), str(far)
    assert "lost with it" not in str(far), str(far)
    for locked in (count_under_a_thread_lock, count_under_an_rlock_in_any_thread,
                   count_under_a_thread_lock_with_a_version):
        verdict = run(check_count_hit, locked)
        assert not verdict and "one process only" in str(verdict), (locked.__name__, str(verdict))
    verdict = run(check_count_hit, count_under_a_thread_lock)
    assert "took threading.Lock" in str(verdict), str(verdict)
    verdict = run(check_count_hit, count_forgot_await)
    assert not verdict and "`await` is missing" in str(verdict)
    assert no_never_awaited_warning(recwarn)
