"""The cache objects that requests served through ASGIHandler build, and those Django closes.

    built, closed = await cache_objects_of_requests("/reads-the-cache/", requests=20)
    built, closed = await cache_objects_of_requests(path, 20, used_before=True)

A server runs each request in a task of its own, whose context is a copy of the server's;
``caches`` keeps one backend object per context (asgiref's ``Local``), and ``close_caches``,
a ``request_finished`` receiver, closes the objects it can see. Each request here goes
straight into ``ASGIHandler.__call__`` in such a task, with a local-memory cache that counts
the objects made and the ``close()`` calls. ``used_before``: the cache is used once in this
context before the requests, as a project that touches it at import or in
``AppConfig.ready()`` does.
"""

import asyncio
import contextvars

from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.test import override_settings

from tutorial_project.instruments.handler_cost import asgi_get


class CountedLocMemCache(LocMemCache):
    """The local-memory cache, counting its objects and their ``close()`` calls."""

    built = 0
    closed = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        CountedLocMemCache.built += 1

    def close(self, **kwargs):
        CountedLocMemCache.closed += 1
        super().close(**kwargs)


COUNTED = {"default": {"BACKEND": f"{__name__}.CountedLocMemCache",
                       "LOCATION": "counted-per-request"}}


async def cache_objects_of_requests(path, requests, used_before=False):
    """GET ``path`` ``requests`` times, one after another, each in a task of its own with a
    copy of this context; (cache objects built, ``close()`` calls)."""
    from django.core.handlers.asgi import ASGIHandler

    handler = ASGIHandler()
    loop = asyncio.get_running_loop()
    with override_settings(CACHES=COUNTED):  # a new `caches`: no object exists yet
        CountedLocMemCache.built = CountedLocMemCache.closed = 0
        if used_before:
            caches["default"]  # noqa: B018 (built here, in this context, as at import)
        for _ in range(requests):
            await loop.create_task(asgi_get(handler, path), context=contextvars.copy_context())
        return CountedLocMemCache.built, CountedLocMemCache.closed
