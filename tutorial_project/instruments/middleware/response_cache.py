"""Serve repeated anonymous GETs from the cache, awaiting the cache before the view runs.

Async only: it awaits ``cache.aget``/``cache.aset`` (Django 4.0+). With the local-memory
backend those are sync_to_async wrappers; with an async-native backend they are real I/O.
A real site would use Django's cache framework (UpdateCacheMiddleware); this shows the shape.
"""

from django.core.cache import cache
from django.utils.decorators import async_only_middleware

TTL = 30  # seconds


@async_only_middleware
def async_response_cache(get_response):
    async def middleware(request):
        if request.method != "GET":
            return await get_response(request)
        key = f"page:{request.get_full_path()}"
        cached = await cache.aget(key)
        if cached is not None:
            cached["X-Cache"] = "HIT"
            return cached
        response = await get_response(request)
        if response.status_code == 200 and not response.streaming:
            await cache.aset(key, response, TTL)
        response["X-Cache"] = "MISS"
        return response

    return middleware
