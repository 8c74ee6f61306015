"""Lesson 09's exercise checks: the reference answers pass, placeholders and wrong answers don't."""

import asyncio

from django.http import JsonResponse


def run(check, answer):
    return asyncio.run(check(answer))


async def whoami_reference(request):
    user = await request.auser()
    return JsonResponse({"username": user.username if user.is_authenticated else None})


async def whoami_lazy_user(request):  # works for anonymous users only
    return JsonResponse({"username": request.user.username or None})


def whoami_sync(request):
    return JsonResponse({"username": None})


async def cart_reference(request):
    cart = await request.session.aget("cart", [])
    sku = request.GET.get("add")
    if sku:
        cart = [*cart, sku]
        await request.session.aset("cart", cart)
    return JsonResponse({"cart": cart})


async def cart_sync_session(request):
    cart = request.session.get("cart", [])  # sync session load: fails on the event loop
    return JsonResponse({"cart": cart})


SHARED_CART = []


async def cart_in_a_global(request):
    if request.GET.get("add"):
        SHARED_CART.append(request.GET["add"])
    return JsonResponse({"cart": SHARED_CART})


def test_whoami(project):
    from tutorial_project.course.exercises.lesson09 import check_whoami_view

    assert run(check_whoami_view, whoami_reference)
    placeholder = run(check_whoami_view, ...)
    assert not placeholder and not placeholder.solved
    lazy = run(check_whoami_view, whoami_lazy_user)
    assert not lazy and "request.auser()" in str(lazy)
    sync = run(check_whoami_view, whoami_sync)
    assert not sync and "async def whoami_view" in str(sync)


def test_cart(project):
    from tutorial_project.course.exercises.lesson09 import check_cart_view

    assert run(check_cart_view, cart_reference)
    assert not run(check_cart_view, ...).solved
    sync = run(check_cart_view, cart_sync_session)
    assert not sync and "request.session.aget" in str(sync)
    SHARED_CART.clear()
    shared = run(check_cart_view, cart_in_a_global)
    assert not shared and "not in a global variable" in str(shared)
