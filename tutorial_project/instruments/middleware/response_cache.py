"""Serve repeated GETs from the cache, awaiting the cache before the view runs.

A shared cache may only hand a page to Bob if that page would have been the same for Bob.
So this middleware follows the rules of HTTP caching (RFC 9111), as Django's own
``UpdateCacheMiddleware`` / ``FetchFromCacheMiddleware`` do, a little more strictly:

- it stores only a 200 answer to a GET, not streamed, without ``Set-Cookie`` (a cookie, such
  as a new session id, belongs to one visitor; Django refuses only those that also vary on
  ``Cookie``), without ``Cache-Control: private``, ``no-store`` or ``no-cache``, and without
  ``Vary: *``;
- the key holds the absolute URL (scheme, host, path, query), so two hosts served by one
  project never share a page;
- it honours ``Vary``: the headers a response varies on (``SessionMiddleware`` adds
  ``Vary: Cookie`` whenever the view read the session) are part of the key, so a page made
  for one session cookie is served only to requests with that same cookie;
- requests with ``Authorization`` bypass it (a shared cache must not reuse those by default;
  Django adds ``Vary: Authorization`` instead).

Async only: it awaits ``cache.aget`` / ``cache.aset`` (Django 4.0+). With the local-memory
backend those run the sync methods in a thread; with an async-native backend they are real
I/O. Put it above ``SessionMiddleware`` in ``MIDDLEWARE``, so it sees the ``Vary`` header
that the session middleware adds on the way out.
"""

import hashlib
import re

from django.core.cache import cache
from django.utils.decorators import async_only_middleware

TTL = 30  # seconds
PREFIX = "async-page"
NOT_SHARED = {"private", "no-store", "no-cache"}
COMMA = re.compile(r"\s*,\s*")  # list separator of Cache-Control and Vary


def _cache_control(response):
    """The directive names of the response's Cache-Control header, lower-cased."""
    header = response.headers.get("Cache-Control", "")
    return {part.split("=", 1)[0].strip().lower() for part in COMMA.split(header) if part}


def _vary(response):
    """The header names the response varies on, lower-cased, in a stable order."""
    header = response.headers.get("Vary", "")
    return sorted({name.strip().lower() for name in COMMA.split(header) if name.strip()})


def storable(response):
    """Whether a response may be given to another visitor who asks for the same URL."""
    return (
        response.status_code == 200
        and not response.streaming
        and not response.cookies  # Set-Cookie: this answer belongs to one visitor
        and not _cache_control(response) & NOT_SHARED
        and "*" not in _vary(response)
    )


def _page_key(url, vary, request):
    """One key per URL and per combination of the values of the headers in ``vary``."""
    digest = hashlib.sha256(url.encode())
    for name in vary:
        value = request.headers.get(name)
        # An absent header must not share a key with a present but empty one.
        digest.update(b"\0-" if value is None else b"\0+" + value.encode())
    return f"{PREFIX}:page:{digest.hexdigest()}"


@async_only_middleware
def async_response_cache(get_response):
    async def middleware(request):
        if request.method != "GET" or "Authorization" in request.headers:
            return await get_response(request)
        url = request.build_absolute_uri()  # scheme, host, path and query string
        vary_key = f"{PREFIX}:vary:{hashlib.sha256(url.encode()).hexdigest()}"
        vary = await cache.aget(vary_key)  # what the last stored page of this URL varied on
        if vary is not None:
            cached = await cache.aget(_page_key(url, vary, request))
            if cached is not None:
                cached["X-Cache"] = "HIT"
                return cached
        response = await get_response(request)
        if storable(response):
            vary = _vary(response)
            await cache.aset(vary_key, vary, TTL)
            await cache.aset(_page_key(url, vary, request), response, TTL)
        response["X-Cache"] = "MISS"
        return response

    return middleware
