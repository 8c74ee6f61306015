"""Bridging: thread_sensitive inside one request, and a blocking library in async views.

Lesson 03's claims, measured through Django's real ASGIHandler (httpx.ASGITransport):
gathering 4 x 0.5 s sync_to_async calls in one request takes ~2 s with the default
thread_sensitive=True and ~0.5 s with False; four concurrent requests to an async view that
calls a 0.3 s blocking library take ~1.2 s when it is called directly, ~0.3 s when wrapped.
"""

import asyncio
import time

WIDGETS, WIDGET_SECONDS = 4, 0.5


def sync_widget():
    time.sleep(WIDGET_SECONDS)


async def dashboard(request):
    from asgiref.sync import sync_to_async
    from django.http import JsonResponse

    sensitive = request.GET["thread_sensitive"] == "true"
    call = sync_to_async(sync_widget, thread_sensitive=sensitive)
    await asyncio.gather(*(call() for _ in range(WIDGETS)))
    return JsonResponse({"widgets": WIDGETS})


async def stock_blocking(request, sku):
    from django.http import JsonResponse

    from tutorial_project.instruments import slowlib

    return JsonResponse(slowlib.lookup_stock(sku))


async def stock_wrapped(request, sku):
    from asgiref.sync import sync_to_async
    from django.http import JsonResponse

    from tutorial_project.instruments import slowlib

    return JsonResponse(await sync_to_async(slowlib.lookup_stock)(sku))


async def seconds_for(client, *paths):
    started = time.perf_counter()
    responses = await asyncio.gather(*(client.get(path) for path in paths))
    assert all(r.status_code == 200 for r in responses), [r.status_code for r in responses]
    return time.perf_counter() - started


async def measure():
    import httpx
    from django.core.handlers.asgi import ASGIHandler

    transport = httpx.ASGITransport(app=ASGIHandler())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        sensitive = await seconds_for(client, "/bench-dashboard/?thread_sensitive=true")
        free = await seconds_for(client, "/bench-dashboard/?thread_sensitive=false")
        skus = [f"/bench-stock-{{}}/GM-00{n}/" for n in range(1, 5)]
        blocking = await seconds_for(client, *(p.format("blocking") for p in skus))
        wrapped = await seconds_for(client, *(p.format("wrapped") for p in skus))
    return sensitive, free, blocking, wrapped


def run(notebooks):
    from tutorial_project import mount, start, unmount

    start(quiet=True)
    routes = {
        "bench-dashboard/": dashboard,
        "bench-stock-blocking/<str:sku>/": stock_blocking,
        "bench-stock-wrapped/<str:sku>/": stock_wrapped,
    }
    for route, view in routes.items():
        mount(route, view)
    try:
        sensitive, free, blocking, wrapped = asyncio.run(measure())
    finally:
        for route in routes:
            unmount(route)
    serial, one = WIDGETS * WIDGET_SECONDS, WIDGET_SECONDS
    return [
        ("one request, 4 x 0.5 s, thread_sensitive=True, s",
         f"{sensitive:.2f}  ({sensitive / serial:.2f}x of 4 in a row; lesson asserts 1.8 to 4)"),
        ("one request, 4 x 0.5 s, thread_sensitive=False, s",
         f"{free:.2f}  ({free / one:.2f}x of one call; lesson asserts under 1.2)"),
        ("True / False", f"{sensitive / free:.1f}x"),
        ("4 requests, blocking lib called on the loop, s",
         f"{blocking:.2f}  (lesson asserts 1.1 or more)"),
        ("4 requests, blocking lib via sync_to_async, s",
         f"{wrapped:.2f}  (lesson asserts under 0.9)"),
    ]
